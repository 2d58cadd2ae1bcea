package babelforce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// SCIM endpoints. ASSUMPTION (no public spec): RFC 7644 under /auth/scim/v2, see scimtypes.go.
// SCIM ids are opaque (RFC 7643): they are path-escaped but not normalised.
const (
	scimBase        = "/auth/scim/v2"
	scimUsersPath   = scimBase + "/Users"
	scimUserTmpl    = scimBase + "/Users/{id}"
	scimConfigPath  = scimBase + "/configuration"
	scimContentType = "application/scim+json"
)

func scimPathID(id string) (string, error) {
	if id == "" {
		return "", errors.New("babelforce: SCIM user id is empty")
	}
	return url.PathEscape(id), nil
}

// SCIMListUsers returns the SCIM users matching the SCIM filter (e.g. `userName eq "a@b.c"`;
// empty for all), walking startIndex/count pages until totalResults (each compacted as it is
// taken, see ListOption).
func (c *Client) SCIMListUsers(ctx context.Context, filter string, opts ...ListOption) ([]SCIMUser, error) {
	q := url.Values{}
	if filter != "" {
		q.Set("filter", filter)
	}
	users, err := scimListAll[SCIMUser](ctx, c, scimUsersPath, scimUsersPath, q, newListOptions(opts))
	if err != nil {
		return nil, fmt.Errorf("list SCIM users: %w", err)
	}
	return users, nil
}

// SCIMCreateUser creates u and returns the created user with its id.
func (c *Client) SCIMCreateUser(ctx context.Context, u *SCIMUser) (*SCIMUser, error) {
	if u == nil || u.UserName == "" {
		return nil, errors.New("babelforce: create SCIM user: userName is required")
	}
	r, err := newRequest(http.MethodPost, scimUsersPath, scimUsersPath, withUserSchema(u))
	if err != nil {
		return nil, err
	}
	r.ctype = scimContentType
	var out SCIMUser
	// bridge's login users carry the directory id as externalId; a user without one is
	// looked for by userName (unique in babelforce).
	attr, value := "externalId", u.ExternalID
	if value == "" {
		attr, value = "userName", u.UserName
	}
	lookup := func(ctx context.Context) (bool, error) {
		found, err := c.SCIMListUsers(ctx, attr+` eq "`+strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(value)+`"`)
		if err != nil {
			return false, err
		}
		for _, f := range found {
			if (attr == "externalId" && f.ExternalID == value) || (attr == "userName" && strings.EqualFold(f.UserName, value)) {
				out = f
				return true, nil
			}
		}
		return false, nil
	}
	if err := c.create(ctx, r, &out, lookup); err != nil {
		return nil, fmt.Errorf("create SCIM user %q: %w", u.UserName, err)
	}
	return &out, nil
}

// SCIMReplaceUser replaces SCIM user id with u (PUT).
func (c *Client) SCIMReplaceUser(ctx context.Context, id string, u *SCIMUser) (*SCIMUser, error) {
	p, err := scimPathID(id)
	if err != nil {
		return nil, err
	}
	if u == nil || u.UserName == "" {
		return nil, errors.New("babelforce: replace SCIM user: userName is required")
	}
	out, err := c.scimUserCall(ctx, http.MethodPut, scimUserTmpl, scimUsersPath+"/"+p, withUserSchema(u))
	if err != nil {
		return nil, fmt.Errorf("replace SCIM user %s: %w", id, err)
	}
	return out, nil
}

// SCIMPatchUser applies ops to SCIM user id (PATCH). bridge sends "replace" operations, which
// are idempotent, so a PATCH is retried like a PUT.
func (c *Client) SCIMPatchUser(ctx context.Context, id string, ops []SCIMPatchOp) (*SCIMUser, error) {
	p, err := scimPathID(id)
	if err != nil {
		return nil, err
	}
	if len(ops) == 0 {
		return nil, errors.New("babelforce: patch SCIM user: no operations")
	}
	body := struct {
		Schemas    []string      `json:"schemas"`
		Operations []SCIMPatchOp `json:"Operations"`
	}{[]string{SCIMPatchOpSchema}, ops}
	out, err := c.scimUserCall(ctx, http.MethodPatch, scimUserTmpl, scimUsersPath+"/"+p, body)
	if err != nil {
		return nil, fmt.Errorf("patch SCIM user %s: %w", id, err)
	}
	return out, nil
}

// GetSCIMConfiguration returns babelforce's SCIM configuration.
func (c *Client) GetSCIMConfiguration(ctx context.Context) (*SCIMConfiguration, error) {
	var env itemEnvelope[SCIMConfiguration]
	if err := c.call(ctx, http.MethodGet, scimConfigPath, scimConfigPath, nil, nil, &env); err != nil {
		return nil, fmt.Errorf("get SCIM configuration: %w", err)
	}
	return &env.Item, nil
}

// PutSCIMConfiguration replaces babelforce's SCIM configuration and returns what it stored.
func (c *Client) PutSCIMConfiguration(ctx context.Context, cfg *SCIMConfiguration) (*SCIMConfiguration, error) {
	if cfg == nil {
		return nil, errors.New("babelforce: put SCIM configuration: no configuration given")
	}
	body := *cfg
	if body.DefaultRoles == nil {
		body.DefaultRoles = []string{}
	}
	var env itemEnvelope[SCIMConfiguration]
	if err := c.call(ctx, http.MethodPut, scimConfigPath, scimConfigPath, nil, &body, &env); err != nil {
		return nil, fmt.Errorf("put SCIM configuration: %w", err)
	}
	return &env.Item, nil
}

func withUserSchema(u *SCIMUser) *SCIMUser {
	out := *u
	if len(out.Schemas) == 0 {
		out.Schemas = []string{SCIMUserSchema}
	}
	out.Meta = nil
	return &out
}

func (c *Client) scimUserCall(ctx context.Context, method, tmpl, path string, body any) (*SCIMUser, error) {
	r, err := newRequest(method, tmpl, path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		r.ctype = scimContentType
	}
	var u SCIMUser
	if err := c.callRequest(ctx, r, &u); err != nil {
		return nil, err
	}
	return &u, nil
}
