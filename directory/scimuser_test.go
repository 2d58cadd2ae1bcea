package directory

import (
	"strings"
	"testing"
)

func TestSCIMUserErrors(t *testing.T) {
	u, err := SCIMUser(map[string]any{"userName": "ann", "active": true})
	if err == nil || !strings.Contains(err.Error(), `user "ann" has no id`) || u.UserName != "ann" {
		t.Errorf("no id: %+v, %v", u, err)
	}
	// an active flag nobody can read is no read error, and never active: the user says why
	for _, v := range []any{"maybe", 1, map[string]any{"x": true}, ""} {
		u, err = SCIMUser(map[string]any{"id": "1", "userName": "ann", "active": v, "title": "Agent"})
		if err != nil || u.Active || !strings.Contains(u.Invalid, "not a boolean") || u.Attr("title") != "Agent" {
			t.Errorf("active %#v: %+v, %v; want no error, not active, Invalid set, the rest filled", v, u, err)
		}
	}
	if u, _ := SCIMUser(map[string]any{"id": "1", "active": "maybe"}); u.Invalid != `active is "maybe", not a boolean` {
		t.Errorf("Invalid = %q", u.Invalid)
	}
	for _, v := range []any{nil, true, "True", " true "} {
		if u, err := SCIMUser(map[string]any{"id": "1", "active": v}); err != nil || !u.Active || u.Invalid != "" {
			t.Errorf("active %#v: %+v, %v", v, u, err)
		}
	}
	for _, v := range []any{"False", " false ", false} {
		if u, err := SCIMUser(map[string]any{"id": "1", "active": v}); err != nil || u.Active || u.Invalid != "" {
			t.Errorf("active %#v: %+v, %v", v, u, err)
		}
	}
}

func TestSCIMUserFieldNamesIgnoreCase(t *testing.T) {
	u, err := SCIMUser(map[string]any{"ID": "1", "USERNAME": "ann", "Name": map[string]any{"GIVENNAME": "Ann", "familyname": "Archer"}})
	if err != nil || u.ID != "1" || u.UserName != "ann" || u.GivenName != "Ann" || u.FamilyName != "Archer" || u.DisplayName != "Ann Archer" {
		t.Errorf("%+v, %v", u, err)
	}
}
