package babelforcetest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/babelforce/bridge/babelforce"
)

// TestIndexesFollowChanges changes every indexed field through the API and the seeding
// helpers and checks that the filtered lists, uniqueness checks and memberships follow.
func TestIndexesFollowChanges(t *testing.T) {
	sim := New(t, Options{})
	a := newAPI(t, sim).login()
	grp := sim.PutAgentGroup(babelforce.AgentGroup{Name: "Team"})
	var ann, bob, cleo babelforce.Agent
	a.post("/api/v2/agents", map[string]any{"name": "Ann", "email": "Ann@Example.com", "sourceId": "s1", "agentSource": "ldap",
		"groups": []map[string]any{{"id": grp.ID}}}).want(http.StatusCreated).decode(&struct{ Item *babelforce.Agent }{&ann})
	a.post("/api/v2/agents", map[string]any{"name": "Bob", "email": "bob@example.com", "sourceId": "s2", "agentSource": "ldap"}).
		want(http.StatusCreated).decode(&struct{ Item *babelforce.Agent }{&bob})
	a.post("/api/v2/agents", map[string]any{"name": "Cleo", "sourceId": "s3", "agentSource": "scim"}).
		want(http.StatusCreated).decode(&struct{ Item *babelforce.Agent }{&cleo})
	names := func(query string) string {
		t.Helper()
		var l struct {
			Items []babelforce.Agent `json:"items"`
		}
		a.get("/api/v2/agents?max=100&" + query).want(http.StatusOK).decode(&l)
		var out []string
		for _, ag := range l.Items {
			out = append(out, ag.Name)
		}
		return strings.Join(out, ",")
	}
	check := func(step string, want map[string]string) {
		t.Helper()
		for q, w := range want {
			if got := names(q); got != w {
				t.Errorf("%s: ?%s = %q, want %q", step, q, got, w)
			}
		}
	}
	check("created", map[string]string{"source=ldap": "Ann,Bob", "sourceId=s1": "Ann", "source=scim&sourceId=s3": "Cleo",
		"source=ldap&sourceId=s3": "", "groupIds=" + grp.ID: "Ann"})

	// e-mail uniqueness ignores case and follows changes
	a.post("/api/v2/agents", map[string]any{"name": "Dup", "email": "ANN@example.com"}).want(http.StatusConflict)
	a.put("/api/v2/agents/"+bob.ID, map[string]any{"email": "ann@example.COM"}).want(http.StatusConflict)
	a.put("/api/v2/agents/"+ann.ID, map[string]any{"email": "ann2@example.com", "agentSource": "scim", "sourceId": "s9"}).want(http.StatusOK)
	a.post("/api/v2/agents", map[string]any{"name": "Ann again", "email": "ann@example.com"}).want(http.StatusCreated)
	// creation order survives moving between index entries
	check("updated", map[string]string{"source=ldap": "Bob", "source=scim": "Ann,Cleo", "sourceId=s1": "", "sourceId=s9": "Ann"})

	// the login user's agent is found by e-mail, in any case
	sim.PutUser(babelforce.User{Email: "ANN2@example.com", Roles: []string{"agent"}})
	var u struct{ Item babelforce.User }
	a.get("/api/v2/users/by-email/ann2@example.com").want(http.StatusOK).decode(&u)
	if u.Item.Agent == nil || u.Item.Agent.UUID != ann.ID {
		t.Errorf("user's agent %+v, want %s", u.Item.Agent, ann.ID)
	}

	// group deletion leaves the agents; agent deletion frees the e-mail and leaves the group
	sim.AddAgentToGroup(grp.ID, bob.ID)
	a.del("/api/v2/agents/" + ann.ID).want(http.StatusOK)
	if m := sim.AgentGroupMembers(grp.ID); !slices.Equal(m, []string{bob.ID}) {
		t.Errorf("members after deleting Ann: %v", m)
	}
	a.post("/api/v2/agents", map[string]any{"name": "Ann 3", "email": "ann2@example.com"}).want(http.StatusCreated)
	a.del("/api/v2/agents/groups/" + grp.ID).want(http.StatusOK)
	if got, _ := sim.Agent(bob.ID); len(got.Groups) != 0 {
		t.Errorf("Bob's groups after the group was deleted: %+v", got.Groups)
	}
	check("deleted", map[string]string{"source=scim": "Cleo", "": "Bob,Cleo,Ann again,Ann 3"})

	// PutAgent replacing an agent moves it between index entries too
	sim.PutAgent(babelforce.Agent{ID: cleo.ID, Name: "Cleo", AgentSource: "ldap", SourceID: "s3"})
	check("re-put", map[string]string{"source=ldap": "Bob,Cleo", "source=scim": ""})
}

// TestUserIndexesFollowChanges changes userName and externalId through SCIM and the Manager
// API and checks the lookups.
func TestUserIndexesFollowChanges(t *testing.T) {
	sim := New(t, Options{})
	a := newAPI(t, sim)
	a.token = sim.SCIMToken
	var u babelforce.SCIMUser
	a.post("/auth/scim/v2/Users", scimUserBody("u1@example.com", map[string]any{"externalId": "e1"})).want(http.StatusCreated).decode(&u)
	a.post("/auth/scim/v2/Users", scimUserBody("u2@example.com", map[string]any{"externalId": "e2"})).want(http.StatusCreated)
	list := func(filter string) string {
		t.Helper()
		var l struct {
			Resources []babelforce.SCIMUser
		}
		a.get("/auth/scim/v2/Users?filter=" + strings.ReplaceAll(filter, " ", "%20")).want(http.StatusOK).decode(&l)
		var out []string
		for _, x := range l.Resources {
			out = append(out, x.UserName)
		}
		return strings.Join(out, ",")
	}
	a.patch("/auth/scim/v2/Users/"+u.ID, patchBody(map[string]any{"op": "replace", "path": "userName", "value": "U3@example.com"})).want(http.StatusOK)
	a.put("/auth/scim/v2/Users/"+u.ID, scimUserBody("u3@example.com", map[string]any{"externalId": "e3"})).want(http.StatusOK)
	for filter, want := range map[string]string{
		`userName eq "u1@example.com"`: "", `userName eq "U3@EXAMPLE.com"`: "u3@example.com",
		`externalId eq "e1"`: "", `externalId eq "e3"`: "u3@example.com", `id eq "` + u.ID + `"`: "u3@example.com",
		`externalId eq "e2"`: "u2@example.com",
	} {
		if got := list(filter); got != want {
			t.Errorf("%s: %q, want %q", filter, got, want)
		}
	}
	a.post("/auth/scim/v2/Users", scimUserBody("u1@example.com", nil)).want(http.StatusCreated)
	a.post("/auth/scim/v2/Users", scimUserBody("u3@example.com", nil)).want(http.StatusConflict)
	a.del("/auth/scim/v2/Users/" + u.ID).want(http.StatusNoContent)
	if got := list(`externalId eq "e3"`); got != "" {
		t.Errorf("deleted user still found: %q", got)
	}
	a.post("/auth/scim/v2/Users", scimUserBody("u3@example.com", nil)).want(http.StatusCreated)
}

// seedAgents fills sim with n agents of source "ldap", each in one of 100 groups, and as
// many login users.
func seedAgents(sim *Server, n int) {
	var groups []babelforce.GroupRef
	for i := range 100 {
		g := sim.PutAgentGroup(babelforce.AgentGroup{Name: fmt.Sprintf("team %d", i)})
		groups = append(groups, babelforce.GroupRef{ID: g.ID})
	}
	for i := range n {
		sim.PutAgent(babelforce.Agent{Name: fmt.Sprintf("Agent %d", i), Email: fmt.Sprintf("a%d@example.com", i),
			SourceID: fmt.Sprintf("s%d", i), AgentSource: "ldap", Tags: []string{"de"}, Groups: groups[i%100 : i%100+1]})
		sim.PutUser(babelforce.User{Email: fmt.Sprintf("a%d@example.com", i), Roles: []string{"agent"}})
	}
	runtime.GC() // the seeding's garbage is not the benchmark's
}

// BenchmarkListAgentsPage100k lists one page of 100 out of 100,000 agents (the last page, by
// source as bridge reads them) through the handler without the network.
func BenchmarkListAgentsPage100k(b *testing.B) {
	sim := NewServer(Options{})
	seedAgents(sim, 100_000)
	tok := sim.IssueToken()
	for _, q := range []string{"source=ldap&page=1000&max=100", "page=500&max=100", "sourceId=s99999"} {
		b.Run(q, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/api/v2/agents?"+q, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				rec := httptest.NewRecorder()
				sim.Handler().ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkSCIMListPage lists one page of 100 out of 100,000 login users, and one user by
// userName.
func BenchmarkSCIMListPage(b *testing.B) {
	sim := NewServer(Options{})
	seedAgents(sim, 100_000)
	for _, q := range []string{"startIndex=99901&count=100", "filter=userName%20eq%20%22a5000@example.com%22"} {
		b.Run(q, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/auth/scim/v2/Users?"+q, nil)
				req.Header.Set("Authorization", "Bearer "+sim.SCIMToken)
				rec := httptest.NewRecorder()
				sim.Handler().ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkCreateAgent creates agents (with a group) in a simulator that already holds
// 100,000: the e-mail uniqueness check must not scan them.
func BenchmarkCreateAgent(b *testing.B) {
	sim := NewServer(Options{})
	seedAgents(sim, 100_000)
	tok := sim.IssueToken()
	gid := sim.AgentGroups()[0].ID
	i := 0
	for b.Loop() {
		i++
		body := fmt.Sprintf(`{"name":"New %d","email":"new%d@example.com","sourceId":"n%d","agentSource":"ldap","groups":[{"id":%q}]}`, i, i, i, gid)
		req := httptest.NewRequest(http.MethodPost, "/api/v2/agents", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		sim.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
