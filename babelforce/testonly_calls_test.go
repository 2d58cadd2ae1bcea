package babelforce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Client calls that bridge itself never makes, kept for the tests: the Manager API's login
// users (bridge manages login users through SCIM), reading, updating and deleting one agent
// group, listing a group's members, and reading or deleting one SCIM user. The tests use them
// to check the simulator's API against the client and the published spec; production code
// cannot reach them.

// groupTmpl is the path of one agent group.
const groupTmpl = "/api/v2/agents/groups/{id}"

// GetAgentGroup returns one agent group; errors.Is(err, ErrNotFound) when there is none.
func (c *Client) GetAgentGroup(ctx context.Context, id string) (*AgentGroup, error) {
	p, err := pathID("agent group", id)
	if err != nil {
		return nil, err
	}
	return c.groupCall(ctx, http.MethodGet, groupTmpl, groupsPath+"/"+p, nil)
}

// UpdateAgentGroup replaces name and tags of agent group id (nil tags clear them).
func (c *Client) UpdateAgentGroup(ctx context.Context, id string, g *AgentGroup) (*AgentGroup, error) {
	p, err := pathID("agent group", id)
	if err != nil {
		return nil, err
	}
	if g == nil || g.Name == "" {
		return nil, errors.New("babelforce: update agent group: name is required")
	}
	// Tags always goes out (an empty list clears them): the update replaces name and tags.
	body := struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{g.Name, g.Tags}
	if body.Tags == nil {
		body.Tags = []string{}
	}
	out, err := c.groupCall(ctx, http.MethodPut, groupTmpl, groupsPath+"/"+p, &body)
	if err != nil {
		return nil, fmt.Errorf("update agent group %s: %w", NormalizeID(id), err)
	}
	return out, nil
}

// DeleteAgentGroup deletes agent group id.
func (c *Client) DeleteAgentGroup(ctx context.Context, id string) error {
	p, err := pathID("agent group", id)
	if err != nil {
		return err
	}
	if err := c.call(ctx, http.MethodDelete, groupTmpl, groupsPath+"/"+p, nil, nil, nil); err != nil {
		return fmt.Errorf("delete agent group %s: %w", NormalizeID(id), err)
	}
	return nil
}

// ListAgentGroupMembers returns the agents of group groupID, walking all pages.
func (c *Client) ListAgentGroupMembers(ctx context.Context, groupID string) ([]Agent, error) {
	p, err := pathID("agent group", groupID)
	if err != nil {
		return nil, err
	}
	agents, err := listAll(ctx, c, groupMembersTmpl, groupsPath+"/"+p+"/agents", nil, 0, agentID, listOptions{})
	if err != nil {
		return nil, fmt.Errorf("list members of agent group %s: %w", NormalizeID(groupID), err)
	}
	for i := range agents {
		normalizeAgent(&agents[i])
	}
	return agents, nil
}

func (c *Client) groupCall(ctx context.Context, method, tmpl, path string, body any) (*AgentGroup, error) {
	var env itemEnvelope[AgentGroup]
	if err := c.call(ctx, method, tmpl, path, nil, body, &env); err != nil {
		return nil, err
	}
	normalizeGroup(&env.Item)
	return &env.Item, nil
}

// SCIMGetUser returns SCIM user id; errors.Is(err, ErrNotFound) when there is none.
func (c *Client) SCIMGetUser(ctx context.Context, id string) (*SCIMUser, error) {
	p, err := scimPathID(id)
	if err != nil {
		return nil, err
	}
	return c.scimUserCall(ctx, http.MethodGet, scimUserTmpl, scimUsersPath+"/"+p, nil)
}

// SCIMDeleteUser deletes SCIM user id (babelforce removes the user from the account).
func (c *Client) SCIMDeleteUser(ctx context.Context, id string) error {
	p, err := scimPathID(id)
	if err != nil {
		return err
	}
	r, err := newRequest(http.MethodDelete, scimUserTmpl, scimUsersPath+"/"+p, nil)
	if err != nil {
		return err
	}
	if err := c.callRequest(ctx, r, nil); err != nil {
		return fmt.Errorf("delete SCIM user %s: %w", id, err)
	}
	return nil
}

// Manager API user endpoints.
const (
	usersPath       = "/api/v2/users"
	userTmpl        = "/api/v2/users/{id}"
	userByEmailTmpl = "/api/v2/users/by-email/{email}"
)

// createUserRequest is the body of POST /api/v2/users.
type createUserRequest struct {
	Email     string   `json:"email"`
	Roles     []string `json:"roles"`
	Activated *bool    `json:"activated,omitempty"`
}

// ListUsers returns the login users, all of them when email is empty, else those with that
// e-mail address; it walks all pages.
func (c *Client) ListUsers(ctx context.Context, email string) ([]User, error) {
	q := url.Values{}
	if email != "" {
		q.Set("email", email)
	}
	users, err := listAll(ctx, c, usersPath, usersPath, q, 0, userID, listOptions{})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	for i := range users {
		normalizeUser(&users[i])
	}
	return users, nil
}

// GetUser returns the login user id; errors.Is(err, ErrNotFound) when there is none.
func (c *Client) GetUser(ctx context.Context, id string) (*User, error) {
	p, err := pathID("user", id)
	if err != nil {
		return nil, err
	}
	return c.userCall(ctx, http.MethodGet, userTmpl, usersPath+"/"+p, nil)
}

// GetUserByEmail returns the login user with that e-mail; errors.Is(err, ErrNotFound) when
// there is none.
func (c *Client) GetUserByEmail(ctx context.Context, email string) (*User, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return nil, errors.New("babelforce: get user by email: email is empty")
	}
	return c.userCall(ctx, http.MethodGet, userByEmailTmpl, usersPath+"/by-email/"+url.PathEscape(email), nil)
}

// CreateUser creates a login user (email and at least one role are required); babelforce
// generates a password. It returns the created user with its id.
func (c *Client) CreateUser(ctx context.Context, u *User) (*User, error) {
	if u == nil || u.Email == "" {
		return nil, errors.New("babelforce: create user: email is required")
	}
	if len(u.Roles) == 0 {
		return nil, fmt.Errorf("babelforce: create user %q: at least one role is required", u.Email)
	}
	r, err := newRequest(http.MethodPost, usersPath, usersPath, &createUserRequest{Email: u.Email, Roles: u.Roles, Activated: u.Activated})
	if err != nil {
		return nil, err
	}
	var env itemEnvelope[User]
	lookup := func(ctx context.Context) (bool, error) {
		f, err := c.GetUserByEmail(ctx, u.Email)
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		env.Item = *f
		return true, nil
	}
	if err := c.create(ctx, r, &env, lookup); err != nil {
		return nil, fmt.Errorf("create user %q: %w", u.Email, err)
	}
	normalizeUser(&env.Item)
	return &env.Item, nil
}

// EnableUsers enables the users with these e-mails.
func (c *Client) EnableUsers(ctx context.Context, emails []string) error {
	return c.usersAction(ctx, "enable", emails, nil)
}

// DisableUsers disables the users with these e-mails.
func (c *Client) DisableUsers(ctx context.Context, emails []string) error {
	return c.usersAction(ctx, "disable", emails, nil)
}

// DeleteUsers deletes the users with these e-mails.
func (c *Client) DeleteUsers(ctx context.Context, emails []string) error {
	return c.usersAction(ctx, "delete", emails, nil)
}

// AddUserRoles gives the users with these e-mails the roles.
func (c *Client) AddUserRoles(ctx context.Context, emails, roles []string) error {
	if len(roles) == 0 {
		return nil
	}
	return c.usersAction(ctx, "roles", emails, roles)
}

// RemoveUserRoles takes the roles from the users with these e-mails.
func (c *Client) RemoveUserRoles(ctx context.Context, emails, roles []string) error {
	if len(roles) == 0 {
		return nil
	}
	return c.usersAction(ctx, "roles/remove", emails, roles)
}

func (c *Client) usersAction(ctx context.Context, action string, emails, roles []string) error {
	if len(emails) == 0 {
		return nil
	}
	for _, e := range emails {
		if strings.TrimSpace(e) == "" {
			return fmt.Errorf("babelforce: users %s: an email is empty", action)
		}
	}
	body := map[string][]string{"emails": emails}
	if roles != nil {
		body["roles"] = roles
	}
	path := usersPath + "/" + action
	var env messageEnvelope
	if err := c.call(ctx, http.MethodPost, path, path, nil, body, &env); err != nil {
		return fmt.Errorf("users %s for %d users: %w", action, len(emails), err)
	}
	return nil
}

func (c *Client) userCall(ctx context.Context, method, tmpl, path string, body any) (*User, error) {
	var env itemEnvelope[User]
	if err := c.call(ctx, method, tmpl, path, nil, body, &env); err != nil {
		return nil, err
	}
	normalizeUser(&env.Item)
	return &env.Item, nil
}
