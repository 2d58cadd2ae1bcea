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
	u, err = SCIMUser(map[string]any{"id": "1", "userName": "ann", "active": "maybe", "title": "Agent"})
	if err == nil || !strings.Contains(err.Error(), "active is maybe, not a boolean") {
		t.Errorf("bad active: %v", err)
	}
	if !u.Active || u.Attr("title") != "Agent" {
		t.Errorf("the user returned with the error should be filled and count as active: %+v", u)
	}
	for _, v := range []any{"False", " false ", false} {
		if u, err := SCIMUser(map[string]any{"id": "1", "active": v}); err != nil || u.Active {
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
