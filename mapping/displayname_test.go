package mapping

import (
	"testing"

	"github.com/babelforce/bridge/directory"
)

// TestExplainNamesTheNameAttribute: explain says which directory attribute the agent's name
// really came from (a cn fallback is not "displayName").
func TestExplainNamesTheNameAttribute(t *testing.T) {
	r, err := Compile(Config{AgentSource: "bridge:test"})
	if err != nil {
		t.Fatal(err)
	}
	snap := &directory.Snapshot{Users: []directory.User{
		{ID: "1", UserName: "hans", DisplayName: "Müller, Hans", DisplayNameFrom: "cn", Active: true,
			Emails: []directory.Email{{Value: "hans@example.com", Primary: true}}},
		{ID: "2", UserName: "ann", DisplayName: "Ann Example", Active: true,
			Emails: []directory.Email{{Value: "ann@example.com", Primary: true}}},
		{ID: "3", UserName: "eve", GivenName: "Eve", FamilyName: "Example", Active: true,
			Emails: []directory.Email{{Value: "eve@example.com", Primary: true}}},
	}}
	snap.Resolve()
	for id, want := range map[string]string{"1": "default: cn", "2": "default: displayName", "3": "default: givenName familyName"} {
		e := Explain(snap, r, id)
		got := ""
		for _, f := range e.Fields {
			if f.Field == "name" {
				got = f.Rule
			}
		}
		if got != want {
			t.Errorf("user %s: name from %q, want %q", id, got, want)
		}
	}
}
