package babelforce_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"unsafe"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/babelforce/babelforcetest"
)

// TestListsCompacted: a list keeps a value that repeats from item to item once (the agent
// source, group references, tags, SCIM schemas and roles), and loses nothing by it; with Lean
// it leaves out timestamps, SCIM meta and e-mails and a SCIM name that is only the formatted
// one, and nothing else, and its items share repeated slices (an append copies).
func TestListsCompacted(t *testing.T) {
	sim := babelforcetest.New(t, babelforcetest.Options{})
	c := sim.Client(t)
	ctx := context.Background()
	g := sim.PutAgentGroup(babelforce.AgentGroup{Name: "support"})
	const n = 250 // three pages
	for i := range n {
		a := sim.PutAgent(babelforce.Agent{Name: fmt.Sprintf("P %d", i), Email: fmt.Sprintf("p%d@example.com", i),
			Tags: []string{"german"}, SourceID: fmt.Sprintf("uid=p%d", i), AgentSource: "bridge"})
		if !sim.AddAgentToGroup(g.ID, a.ID) {
			t.Fatal("agent not added to its group")
		}
		name := &babelforce.SCIMName{Formatted: fmt.Sprintf("P %d", i)}
		if i%2 == 1 {
			name.GivenName = "P" // kept by Lean: a replace keeps it
		}
		sim.PutSCIMUser(babelforce.SCIMUser{UserName: fmt.Sprintf("p%d@example.com", i), ExternalID: fmt.Sprintf("uid=p%d", i),
			DisplayName: fmt.Sprintf("P %d", i), Name: name,
			Emails: []babelforce.SCIMValue{{Value: fmt.Sprintf("p%d@example.com", i), Type: "work", Primary: true}},
			Roles:  []babelforce.SCIMValue{{Value: "agent"}}})
	}
	same := func(what string, a, b string) {
		t.Helper()
		if a != b || unsafe.StringData(a) != unsafe.StringData(b) {
			t.Errorf("%s: %q and %q are not one string", what, a, b)
		}
	}

	full, err := c.ListAgents(ctx, babelforce.AgentFilter{PageSize: 100})
	if err != nil || len(full) != n {
		t.Fatalf("%d agents, %v", len(full), err)
	}
	first, last := full[0], full[n-1]
	same("agentSource", first.AgentSource, last.AgentSource)
	same("tag", first.Tags[0], last.Tags[0])
	same("group id", first.Groups[0].ID, last.Groups[0].ID)
	same("group name", first.Groups[0].Name, last.Groups[0].Name)
	for _, a := range full {
		got, err := c.GetAgent(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*got, a) || a.DateCreated == "" || a.Groups[0].DateCreated == "" {
			t.Fatalf("listed %+v, got %+v", a, *got)
		}
	}
	lean, err := c.ListAgents(ctx, babelforce.AgentFilter{PageSize: 100}, babelforce.Lean())
	if err != nil || len(lean) != n {
		t.Fatalf("%d lean agents, %v", len(lean), err)
	}
	for i, a := range full {
		a.DateCreated, a.LastUpdated = "", ""
		a.Groups = []babelforce.GroupRef{{ID: a.Groups[0].ID, Name: a.Groups[0].Name}}
		if !reflect.DeepEqual(a, lean[i]) {
			t.Fatalf("lean %+v, want %+v", lean[i], a)
		}
	}
	// lean items share what they repeat whole, and an append does not reach the others
	l0, ln := lean[0], lean[n-1]
	if unsafe.SliceData(l0.Tags) != unsafe.SliceData(ln.Tags) || unsafe.SliceData(l0.Groups) != unsafe.SliceData(ln.Groups) || l0.Enabled != ln.Enabled {
		t.Errorf("lean agents do not share their tags, groups and enabled flag")
	}
	grown := append(l0.Tags, "extra")
	if len(ln.Tags) != 1 || unsafe.SliceData(grown) == unsafe.SliceData(ln.Tags) {
		t.Errorf("an append to a lean agent's tags reached another agent's: %q", ln.Tags)
	}
	if unsafe.SliceData(full[0].Tags) == unsafe.SliceData(full[n-1].Tags) {
		t.Errorf("a full list shares its items' slices")
	}

	users, err := c.SCIMListUsers(ctx, "")
	if err != nil || len(users) != n {
		t.Fatalf("%d login users, %v", len(users), err)
	}
	u0, un := users[0], users[n-1]
	same("schema", u0.Schemas[0], un.Schemas[0])
	same("role", u0.Roles[0].Value, un.Roles[0].Value)
	same("e-mail type", u0.Emails[0].Type, un.Emails[0].Type)
	if u0.Meta == nil || u0.Meta.Location == "" || u0.Emails[0].Value != u0.UserName {
		t.Fatalf("login user %+v", u0)
	}
	leanUsers, err := c.SCIMListUsers(ctx, "", babelforce.Lean())
	if err != nil || len(leanUsers) != n {
		t.Fatalf("%d lean login users, %v", len(leanUsers), err)
	}
	for i, u := range users {
		if u.Name == nil || u.Name.Formatted == "" || len(u.Emails) != 1 {
			t.Fatalf("login user %+v", u)
		}
		u.Meta, u.Emails = nil, nil // set whole by a reconcile
		if u.Name.GivenName == "" {
			u.Name = nil // nothing but the formatted name: set whole by a reconcile
		}
		if !reflect.DeepEqual(u, leanUsers[i]) {
			t.Fatalf("lean %+v, want %+v", leanUsers[i], u)
		}
	}
	if leanUsers[1].Name == nil || leanUsers[1].Name.GivenName != "P" {
		t.Errorf("lean dropped a given name: %+v", leanUsers[1])
	}
	v0, vn := leanUsers[0], leanUsers[n-1]
	if unsafe.SliceData(v0.Roles) != unsafe.SliceData(vn.Roles) || unsafe.SliceData(v0.Schemas) != unsafe.SliceData(vn.Schemas) || v0.Active != vn.Active {
		t.Errorf("lean login users do not share their roles, schemas and active flag")
	}
}
