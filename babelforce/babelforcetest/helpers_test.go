package babelforcetest

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce"
)

func TestSCIMMultiValuedPatch(t *testing.T) {
	sim := New(t, Options{})
	a := newAPI(t, sim)
	a.token = sim.SCIMToken
	var u babelforce.SCIMUser
	a.post("/auth/scim/v2/Users", scimUserBody("mv@example.com", map[string]any{
		"phoneNumbers": []map[string]any{{"value": "+1", "type": "work"}},
		"emails":       []map[string]any{{"value": "mv@example.com", "type": "work", "primary": true}},
		"roles":        []map[string]any{{"value": "agent"}},
	})).want(http.StatusCreated).decode(&u)
	patch := func(want int, ops ...map[string]any) babelforce.SCIMUser {
		t.Helper()
		var out babelforce.SCIMUser
		res := a.patch("/auth/scim/v2/Users/"+u.ID, patchBody(ops...)).want(want)
		if want == http.StatusOK {
			res.decode(&out)
		}
		return out
	}
	got := patch(http.StatusOK,
		map[string]any{"op": "add", "path": "phoneNumbers", "value": []map[string]any{{"value": "+2", "type": "work"}, {"value": "+3", "type": "mobile"}}},
		map[string]any{"op": "replace", "path": `emails[type eq "work"].value`, "value": "mv2@example.com"},
		map[string]any{"op": "replace", "path": `roles[value eq "agent"]`, "value": map[string]any{"value": "supervisor"}},
	)
	if !slices.Equal(got.PhoneNumbers, []babelforce.SCIMValue{{Value: "+2", Type: "work"}, {Value: "+3", Type: "mobile"}}) {
		t.Errorf("phones %+v", got.PhoneNumbers)
	}
	if len(got.Emails) != 1 || got.Emails[0].Value != "mv2@example.com" || !got.Emails[0].Primary || got.UserName != "mv@example.com" {
		t.Errorf("emails %+v userName %q", got.Emails, got.UserName)
	}
	if !slices.Equal(roleList(got), []string{"supervisor"}) {
		t.Errorf("roles %v", roleList(got))
	}
	got = patch(http.StatusOK, map[string]any{"op": "remove", "path": `phoneNumbers[type eq "work"].value`})
	if !slices.Equal(got.PhoneNumbers, []babelforce.SCIMValue{{Value: "+3", Type: "mobile"}}) {
		t.Errorf("phones after remove %+v", got.PhoneNumbers)
	}
	got = patch(http.StatusOK, map[string]any{"op": "add", "path": `phoneNumbers[type eq "work"].value`, "value": "+4"})
	if len(got.PhoneNumbers) != 2 || got.PhoneNumbers[1] != (babelforce.SCIMValue{Value: "+4", Type: "work"}) {
		t.Errorf("phones after filtered add %+v", got.PhoneNumbers)
	}
	patch(http.StatusBadRequest, map[string]any{"op": "replace", "path": `roles[value eq "supervisor"].value`, "value": "duke"})
	patch(http.StatusBadRequest, map[string]any{"op": "replace", "path": `addresses[type eq "work"].value`, "value": "x"})
	patch(http.StatusBadRequest, map[string]any{"op": "replace", "path": `phoneNumbers[display eq "x"].value`, "value": "x"})
}

func TestSeedingHelpers(t *testing.T) {
	sim := New(t, Options{})
	g := sim.PutAgentGroup(babelforce.AgentGroup{Name: "Support", Tags: []string{"t1"}})
	ag := sim.PutAgent(babelforce.Agent{Name: "Ann", Groups: []babelforce.GroupRef{{Name: "Sales"}}})
	if len(ag.Groups) != 1 || ag.Groups[0].Name != "Sales" || len(sim.AgentGroups()) != 2 {
		t.Errorf("PutAgent with a new group: %+v, groups %+v", ag, sim.AgentGroups())
	}
	if !sim.AddAgentToGroup(g.ID, ag.ID) || sim.AddAgentToGroup(g.ID, "nope") {
		t.Error("AddAgentToGroup")
	}
	got, _ := sim.Agent(ag.ID)
	if len(got.Groups) != 2 {
		t.Errorf("groups %+v", got.Groups)
	}
	// re-putting with a hyphenated id updates the same agent
	hy := ag.ID[:8] + "-" + ag.ID[8:]
	ag2 := sim.PutAgent(babelforce.Agent{ID: hy, Name: "Ann 2", Groups: []babelforce.GroupRef{{ID: g.ID}}})
	if ag2.ID != ag.ID || len(sim.Agents()) != 1 || len(ag2.Groups) != 1 || ag2.Groups[0].ID != g.ID {
		t.Errorf("re-put %+v", ag2)
	}
	sim.SetExternalID(ag.ID, "zendesk", "z1")
	if ids := sim.ExternalIDs(hy); len(ids) != 1 || ids[0].ExternalID != "z1" {
		t.Errorf("external ids %v", ids)
	}
	if !sim.DeleteAgent(ag.ID) || sim.DeleteAgent(ag.ID) || len(sim.AgentGroupMembers(g.ID)) != 0 || len(sim.ExternalIDs(ag.ID)) != 0 {
		t.Error("DeleteAgent")
	}
	sim.SetSSOConfig(babelforce.SSOConfig{Enabled: true, ClientID: "x", ClientSecret: "s", RedirectURIs: map[string]string{"a": "b"}})
	if c := sim.SSOConfig(); c.ClientSecret != "s" || c.RedirectURIs != nil {
		t.Errorf("SSOConfig %+v", c)
	}
	// FastSleep waits (a thousandth of the time) and honours ctx
	if err := FastSleep(context.Background(), 2*time.Second); err != nil {
		t.Errorf("FastSleep: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if FastSleep(ctx, time.Hour) == nil {
		t.Error("FastSleep ignored a cancelled context")
	}
	a := newAPI(t, sim).login()
	a.post("/_simulator/faults", map[string]any{"paths": []string{"api"}}, unspecified()).want(http.StatusBadRequest)
}
