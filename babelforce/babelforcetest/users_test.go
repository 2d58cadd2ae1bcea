package babelforcetest

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/babelforce/bridge/babelforce"
)

func TestManagerUsers(t *testing.T) {
	sim := New(t, Options{})
	a := newAPI(t, sim).login()
	ag := sim.PutAgent(babelforce.Agent{Name: "Ann", Email: "ann@example.com", SourceID: "s-1", AgentSource: "ldap"})

	var one struct {
		Item    managedUser `json:"item"`
		Success bool        `json:"success"`
	}
	a.post("/api/v2/users", map[string]any{"email": "Ann@Example.com", "roles": []string{"agent"}, "activated": true}).want(http.StatusCreated).decode(&one)
	u := one.Item
	if !hexID.MatchString(u.ID) || u.Email != "ann@example.com" || !u.Enabled || !u.Activated || !slices.Equal(u.Roles, []string{"agent"}) {
		t.Fatalf("created user %+v", u)
	}
	if u.Agent == nil || u.Agent.UUID != ag.ID || u.Agent.SourceID != "s-1" {
		t.Errorf("user's agent link %+v", u.Agent)
	}
	a.post("/api/v2/users", map[string]any{"email": "ANN@example.com", "roles": []string{}}).want(http.StatusConflict)
	a.post("/api/v2/users", map[string]any{"email": "x@example.com", "roles": []string{"wizard"}}, invalidRequest()).want(http.StatusBadRequest)
	a.post("/api/v2/users", map[string]any{"email": "x@example.com"}, invalidRequest()).want(http.StatusBadRequest)
	a.post("/api/v2/users", map[string]any{"email": "nope", "roles": []string{}}, invalidRequest()).want(http.StatusBadRequest)
	one.Item = managedUser{}
	a.post("/api/v2/users", map[string]any{"email": "bob@example.com", "roles": []string{"manager", "reporter"}}).want(http.StatusCreated).decode(&one)
	bob := one.Item
	if bob.Enabled || bob.Activated || bob.Agent != nil {
		t.Errorf("user without activated: %+v", bob)
	}

	a.get("/api/v2/users/" + u.ID).want(http.StatusOK).decode(&one)
	if one.Item.ID != u.ID {
		t.Errorf("get by id %+v", one.Item)
	}
	a.get("/api/v2/users/" + u.ID[:8] + "-" + u.ID[8:]).want(http.StatusNotFound)
	a.get("/api/v2/users/by-email/" + url.PathEscape("ANN@example.com")).want(http.StatusOK).decode(&one)
	if one.Item.ID != u.ID {
		t.Errorf("by-email %+v", one.Item)
	}
	a.get("/api/v2/users/by-email/nobody@example.com").want(http.StatusNotFound)

	var list struct {
		Items      []managedUser `json:"items"`
		Pagination pagination    `json:"pagination"`
	}
	a.get("/api/v2/users").want(http.StatusOK).decode(&list)
	if len(list.Items) != 2 || list.Pagination.Total != 2 {
		t.Errorf("users %+v", list)
	}
	a.get("/api/v2/users?email=BOB@example.com").want(http.StatusOK).decode(&list)
	if len(list.Items) != 1 || list.Items[0].ID != bob.ID {
		t.Errorf("users?email= %+v", list.Items)
	}

	// enable/disable/reset-password/delete by e-mail
	res := a.post("/api/v2/users/enable", map[string]any{"emails": []string{"bob@example.com", "ghost@example.com"}}).want(http.StatusOK)
	if m := res.obj(); m["success"] != true || !strings.Contains(m["message"].(string), "ghost@example.com") {
		t.Errorf("enable message %s", res.Body)
	}
	if got := findUser(sim, "bob@example.com"); got == nil || !*got.Enabled {
		t.Errorf("bob not enabled: %+v", got)
	}
	a.post("/api/v2/users/disable", map[string]any{"emails": []string{"bob@example.com"}}).want(http.StatusOK)
	if got := findUser(sim, "bob@example.com"); *got.Enabled {
		t.Error("bob still enabled")
	}
	a.post("/api/v2/users/reset-password", map[string]any{"emails": []string{"bob@example.com"}}).want(http.StatusOK)
	if sim.PasswordResets("bob@example.com") != 1 {
		t.Error("password reset not recorded")
	}
	a.post("/api/v2/users/disable", map[string]any{"emails": []string{}}).want(http.StatusBadRequest)

	// roles
	a.post("/api/v2/users/roles", map[string]any{"emails": []string{"bob@example.com"}, "roles": []string{"agent", "manager"}}).want(http.StatusOK)
	if got := findUser(sim, "bob@example.com"); !slices.Equal(got.Roles, []string{"manager", "reporter", "agent"}) {
		t.Errorf("roles after add %v", got.Roles)
	}
	a.post("/api/v2/users/roles/remove", map[string]any{"emails": []string{"bob@example.com"}, "roles": []string{"manager"}}).want(http.StatusOK)
	if got := findUser(sim, "bob@example.com"); !slices.Equal(got.Roles, []string{"reporter", "agent"}) {
		t.Errorf("roles after remove %v", got.Roles)
	}
	a.post("/api/v2/users/roles", map[string]any{"emails": []string{"bob@example.com"}, "roles": []string{"god"}}, invalidRequest()).want(http.StatusBadRequest)
	var roles struct {
		Items []string `json:"items"`
	}
	a.get("/api/v2/users/roles").want(http.StatusOK).decode(&roles)
	if !slices.Equal(roles.Items, babelforce.Roles) {
		t.Errorf("available roles %v", roles.Items)
	}

	a.post("/api/v2/users/delete", map[string]any{"emails": []string{"bob@example.com"}}).want(http.StatusOK)
	a.get("/api/v2/users/" + bob.ID).want(http.StatusNotFound)
	if len(sim.Users()) != 1 {
		t.Errorf("users left: %+v", sim.Users())
	}
}

func findUser(sim *Server, email string) *babelforce.User {
	for _, u := range sim.Users() {
		if u.Email == email {
			return &u
		}
	}
	return nil
}

func TestExternalIDs(t *testing.T) {
	sim := New(t, Options{})
	a := newAPI(t, sim).login()
	ag := sim.PutAgent(babelforce.Agent{Name: "Ann"})
	base := "/api/v2/agents/" + ag.ID + "/external-ids"
	var l struct {
		Items []babelforce.ExternalID `json:"items"`
	}
	a.get(base).want(http.StatusOK).decode(&l)
	if len(l.Items) != 0 {
		t.Errorf("fresh agent has external ids %v", l.Items)
	}
	res := a.put(base+"/zendesk", map[string]any{"externalId": "z-1"}).want(http.StatusOK)
	if m := res.obj(); m["success"] != true {
		t.Errorf("set %s", res.Body)
	}
	a.put(base+"/salesforce", map[string]any{"externalId": "s-9"}).want(http.StatusOK)
	a.put(base+"/zendesk", map[string]any{"externalId": "z-2"}).want(http.StatusOK)
	a.put(base+"/zendesk", map[string]any{"externalId": ""}, invalidRequest()).want(http.StatusBadRequest)
	a.get(base).want(http.StatusOK).decode(&l)
	want := []babelforce.ExternalID{{IntegrationID: "salesforce", ExternalID: "s-9"}, {IntegrationID: "zendesk", ExternalID: "z-2"}}
	if !slices.Equal(l.Items, want) || !slices.Equal(sim.ExternalIDs(ag.ID), want) {
		t.Errorf("external ids %v", l.Items)
	}
	a.del(base + "/salesforce").want(http.StatusOK)
	a.del(base + "/salesforce").want(http.StatusNotFound)
	a.get("/api/v2/agents/" + strings.Repeat("e", 32) + "/external-ids").want(http.StatusNotFound)
	a.put("/api/v2/agents/"+strings.Repeat("e", 32)+"/external-ids/x", map[string]any{"externalId": "1"}).want(http.StatusNotFound)
	// deleting the agent drops them
	a.del("/api/v2/agents/" + ag.ID).want(http.StatusOK)
	if got := sim.ExternalIDs(ag.ID); len(got) != 0 {
		t.Errorf("external ids survive the agent: %v", got)
	}
}

func TestSSOConfiguration(t *testing.T) {
	sim := New(t, Options{})
	a := newAPI(t, sim).login()
	var c babelforce.SSOConfig
	a.get("/auth/sso/configuration").want(http.StatusOK).decode(&c)
	if c.Enabled || c.ClientSecret != "" || c.RedirectURIs["manager"] != sim.URL+"/auth/sso/callback/manager" || c.RedirectURIs["agent"] == "" {
		t.Errorf("initial SSO config %+v", c)
	}
	want := babelforce.SSOConfig{
		Enabled: true, Issuer: "https://accounts.example.com", AuthorizationEndpoint: "https://accounts.example.com/authorize",
		TokenEndpoint: "https://accounts.example.com/token", ClientID: "bf", ClientSecret: "s3cret",
		Scopes: []string{"openid", "email"}, Claims: map[string]string{"email": "email", "name": "name"},
	}
	c = babelforce.SSOConfig{}
	a.put("/auth/sso/configuration", want).want(http.StatusOK).decode(&c)
	if c.ClientSecret != SecretMask || c.Issuer != want.Issuer || c.RedirectURIs["agent"] == "" {
		t.Errorf("PUT answer %+v", c)
	}
	if got := sim.SSOConfig(); got.ClientSecret != "s3cret" || got.ClientID != "bf" {
		t.Errorf("stored %+v", got)
	}
	// a PUT with the mask (or without a secret) keeps the secret
	c.RedirectURIs = nil
	c.ClientID = "bf2"
	a.put("/auth/sso/configuration", c).want(http.StatusOK)
	c.ClientSecret = ""
	a.put("/auth/sso/configuration", c).want(http.StatusOK)
	if got := sim.SSOConfig(); got.ClientSecret != "s3cret" || got.ClientID != "bf2" {
		t.Errorf("secret not kept: %+v", got)
	}
	// redirectUris is read-only in the spec
	c.RedirectURIs = map[string]string{"manager": "https://evil.example.com"}
	a.put("/auth/sso/configuration", c, invalidRequest()).want(http.StatusOK)
	a.get("/auth/sso/configuration").want(http.StatusOK).decode(&c)
	if c.RedirectURIs["manager"] != sim.URL+"/auth/sso/callback/manager" {
		t.Errorf("redirect URIs were writable: %v", c.RedirectURIs)
	}
	// validation
	res := a.put("/auth/sso/configuration", map[string]any{"enabled": true, "issuer": "accounts.example.com"}).want(http.StatusBadRequest)
	if msg := res.obj()["message"].(string); !strings.Contains(msg, "issuer must be an absolute") || !strings.Contains(msg, "tokenEndpoint is required") {
		t.Errorf("validation message %q", msg)
	}
	a.put("/auth/sso/configuration", map[string]any{"enabled": false}).want(http.StatusOK)
	if got := sim.SSOConfig(); got.Enabled || got.ClientSecret != "s3cret" {
		t.Errorf("after disabling: %+v", got)
	}
}
