package babelforce

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
)

// recorder records each API request and answers with the next canned body.
type recorder struct {
	mu     sync.Mutex
	reqs   []recorded
	answer func(r *http.Request) (int, any)
}

type recorded struct {
	method, path, query, ctype string
	body                       map[string]any
	raw                        string
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec := recorded{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery, ctype: r.Header.Get("Content-Type"), raw: string(b)}
	_ = json.Unmarshal(b, &rec.body)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, rec)
	rc.mu.Unlock()
	status, body := 200, any(map[string]any{"success": true, "message": "ok"})
	if rc.answer != nil {
		status, body = rc.answer(r)
	}
	writeJSON(w, status, body)
}

func (rc *recorder) last() recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.reqs[len(rc.reqs)-1]
}

const hyphenated = "0123ABCD-4567-89EF-0123-456789ABCDEF"
const normalized = "0123abcd456789ef0123456789abcdef"

func TestUpdateAgentSendsOnlySetFields(t *testing.T) {
	rc := &recorder{answer: func(*http.Request) (int, any) {
		return 200, map[string]any{"item": map[string]any{"id": hyphenated, "name": "Ann"}, "success": true}
	}}
	e := newEnv(t, rc, nil)
	ctx := context.Background()
	num := "+49"
	a, err := e.c.UpdateAgent(ctx, hyphenated, AgentUpdate{Number: &num, Tags: &[]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != normalized {
		t.Errorf("returned id %q", a.ID)
	}
	got := rc.last()
	if got.method != "PUT" || got.path != "/api/v2/agents/"+normalized {
		t.Errorf("request %s %s", got.method, got.path)
	}
	if got.raw != `{"number":"+49","tags":[]}` {
		t.Errorf("body %s", got.raw)
	}
}

func TestRequestShapes(t *testing.T) {
	rc := &recorder{}
	e := newEnv(t, rc, nil)
	ctx := context.Background()
	tests := []struct {
		name   string
		call   func() error
		method string
		path   string
		body   string
	}{
		{"bulk enable", func() error { _, err := e.c.BulkEnableAgents(ctx, []string{hyphenated}); return err },
			"POST", "/api/v2/agents/bulk/enable", `{"ids":["` + normalized + `"]}`},
		{"bulk disable", func() error { _, err := e.c.BulkDisableAgents(ctx, []string{normalized}); return err },
			"POST", "/api/v2/agents/bulk/disable", `{"ids":["` + normalized + `"]}`},
		{"enable agent", func() error { return e.c.EnableAgent(ctx, hyphenated) }, "PUT", "/api/v2/agents/" + normalized + "/enable", ``},
		{"disable agent", func() error { return e.c.DisableAgent(ctx, hyphenated) }, "PUT", "/api/v2/agents/" + normalized + "/disable", ``},
		{"delete agent", func() error { return e.c.DeleteAgent(ctx, hyphenated) }, "DELETE", "/api/v2/agents/" + normalized, ``},
		{"add to group", func() error { return e.c.AddAgentToGroup(ctx, hyphenated, hyphenated) },
			"POST", "/api/v2/agents/groups/" + normalized + "/agents", `{"id":"` + normalized + `"}`},
		{"remove from group", func() error { return e.c.RemoveAgentFromGroup(ctx, hyphenated, hyphenated) },
			"DELETE", "/api/v2/agents/groups/" + normalized + "/agents/" + normalized, ``},
		{"delete group", func() error { return e.c.DeleteAgentGroup(ctx, hyphenated) }, "DELETE", "/api/v2/agents/groups/" + normalized, ``},
		{"enable users", func() error { return e.c.EnableUsers(ctx, []string{"a@x"}) }, "POST", "/api/v2/users/enable", `{"emails":["a@x"]}`},
		{"disable users", func() error { return e.c.DisableUsers(ctx, []string{"a@x"}) }, "POST", "/api/v2/users/disable", `{"emails":["a@x"]}`},
		{"delete users", func() error { return e.c.DeleteUsers(ctx, []string{"a@x"}) }, "POST", "/api/v2/users/delete", `{"emails":["a@x"]}`},
		{"add roles", func() error { return e.c.AddUserRoles(ctx, []string{"a@x"}, []string{"agent"}) },
			"POST", "/api/v2/users/roles", `{"emails":["a@x"],"roles":["agent"]}`},
		{"remove roles", func() error { return e.c.RemoveUserRoles(ctx, []string{"a@x"}, []string{"agent"}) },
			"POST", "/api/v2/users/roles/remove", `{"emails":["a@x"],"roles":["agent"]}`},
		{"set external id", func() error { return e.c.SetExternalID(ctx, hyphenated, "zen desk", "42") },
			"PUT", "/api/v2/agents/" + normalized + "/external-ids/zen%20desk", `{"externalId":"42"}`},
		{"delete external id", func() error { return e.c.DeleteExternalID(ctx, hyphenated, "zendesk") },
			"DELETE", "/api/v2/agents/" + normalized + "/external-ids/zendesk", ``},
		{"scim delete", func() error { return e.c.SCIMDeleteUser(ctx, "Opaque-ID") }, "DELETE", "/auth/scim/v2/Users/Opaque-ID", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err != nil {
				t.Fatal(err)
			}
			got := rc.last()
			if got.method != tt.method || got.path != tt.path || got.raw != tt.body {
				t.Errorf("got %s %s %s, want %s %s %s", got.method, got.path, got.raw, tt.method, tt.path, tt.body)
			}
			if tt.body != "" && got.ctype != "application/json" {
				t.Errorf("content type %q", got.ctype)
			}
		})
	}
}

func TestSCIMRequestShapes(t *testing.T) {
	rc := &recorder{answer: func(*http.Request) (int, any) {
		return 200, map[string]any{"schemas": []string{SCIMUserSchema}, "id": "u-1", "userName": "a@x"}
	}}
	e := newEnv(t, rc, func(c *Config) { c.SCIMToken = "scim-tok" })
	ctx := context.Background()
	if _, err := e.c.SCIMPatchUser(ctx, "u-1", []SCIMPatchOp{{Op: "replace", Path: "active", Value: false}}); err != nil {
		t.Fatal(err)
	}
	got := rc.last()
	if got.method != "PATCH" || got.ctype != "application/scim+json" ||
		got.raw != `{"schemas":["`+SCIMPatchOpSchema+`"],"Operations":[{"op":"replace","path":"active","value":false}]}` {
		t.Errorf("patch %+v", got)
	}
	if _, err := e.c.SCIMCreateUser(ctx, &SCIMUser{UserName: "a@x"}); err != nil {
		t.Fatal(err)
	}
	if got := rc.last(); got.raw != `{"schemas":["`+SCIMUserSchema+`"],"userName":"a@x"}` {
		t.Errorf("create body %s", got.raw)
	}
	if e.tok.Calls() != 0 {
		t.Errorf("SCIM calls with a SCIM token fetched an OAuth token")
	}
}

func TestEnvelopes(t *testing.T) {
	var answer any
	rc := &recorder{answer: func(*http.Request) (int, any) { return 200, answer }}
	e := newEnv(t, rc, nil)
	ctx := context.Background()

	answer = map[string]any{"success": false, "message": "agent is locked"}
	if err := e.c.EnableAgent(ctx, normalized); err == nil || !strings.Contains(err.Error(), "agent is locked") {
		t.Errorf("success:false not reported: %v", err)
	}
	answer = map[string]any{"items": []any{"vip", map[string]any{"name": "sales", "category": "agent"}, map[string]any{"key": "german"}}}
	tags, err := e.c.ListAgentTags(ctx)
	if err != nil || !slices.Equal(tags, []string{"vip", "sales", "german"}) {
		t.Errorf("tags %v, %v", tags, err)
	}
	answer = map[string]any{"enabled": true, "issuer": "https://idp"}
	sso, err := e.c.GetSSOConfig(ctx)
	if err != nil || sso.Issuer != "https://idp" {
		t.Errorf("bare SSO config %+v, %v", sso, err)
	}
	answer = map[string]any{"item": map[string]any{"enabled": true, "issuer": "https://idp2"}, "success": true}
	if sso, err = e.c.GetSSOConfig(ctx); err != nil || sso.Issuer != "https://idp2" {
		t.Errorf("enveloped SSO config %+v, %v", sso, err)
	}
	answer = []any{map[string]any{"integrationId": "z", "externalId": "1"}}
	ids, err := e.c.ListExternalIDs(ctx, normalized)
	if err != nil || len(ids) != 1 || ids[0].ExternalID != "1" {
		t.Errorf("bare external ids %+v, %v", ids, err)
	}
	answer = map[string]any{"item": map[string]any{"id": hyphenated, "email": "a@x", "agent": map[string]any{"uuid": hyphenated}}, "success": true}
	u, err := e.c.GetUserByEmail(ctx, "a+b@x")
	if err != nil || u.ID != normalized || u.Agent.UUID != normalized {
		t.Errorf("user %+v, %v", u, err)
	}
	if got := rc.last().path; got != "/api/v2/users/by-email/a+b@x" {
		t.Errorf("path %q", got)
	}
}

func TestBadInputIsAnErrorNotARequest(t *testing.T) {
	rc := &recorder{}
	e := newEnv(t, rc, nil)
	ctx := context.Background()
	checks := []error{
		func() error { _, err := e.c.GetAgent(ctx, ""); return err }(),
		func() error { _, err := e.c.CreateAgent(ctx, &Agent{}); return err }(),
		func() error { _, err := e.c.CreateAgent(ctx, nil); return err }(),
		func() error { _, err := e.c.CreateAgentGroup(ctx, nil); return err }(),
		func() error { _, err := e.c.UpdateAgentGroup(ctx, normalized, nil); return err }(),
		func() error { _, err := e.c.CreateUser(ctx, &User{Email: "a@x"}); return err }(),
		func() error { _, err := e.c.GetUserByEmail(ctx, " "); return err }(),
		func() error { _, err := e.c.BulkEnableAgents(ctx, []string{"-"}); return err }(),
		func() error { return e.c.DisableUsers(ctx, []string{""}) }(),
		func() error { _, err := e.c.SCIMPatchUser(ctx, "x", nil); return err }(),
		func() error { _, err := e.c.SCIMReplaceUser(ctx, "", &SCIMUser{UserName: "a"}); return err }(),
		func() error { _, err := e.c.PutSSOConfig(ctx, nil); return err }(),
		func() error { _, err := e.c.PutSCIMConfiguration(ctx, nil); return err }(),
		func() error { return e.c.SetExternalID(ctx, normalized, "", "x") }(),
		func() error { return e.c.DeleteExternalID(ctx, normalized, "") }(),
	}
	for i, err := range checks {
		if err == nil {
			t.Errorf("check %d: no error", i)
		}
		var ae *APIError
		if errors.As(err, &ae) {
			t.Errorf("check %d: reached the server: %v", i, err)
		}
	}
	if len(rc.reqs) != 0 {
		t.Errorf("%d requests sent", len(rc.reqs))
	}
}
