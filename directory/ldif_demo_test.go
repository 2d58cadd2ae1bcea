package directory_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/babelforce/bridge/directory"
)

// TestDemoDirectory keeps testdata/demo/directory.ldif what its README promises.
func TestDemoDirectory(t *testing.T) {
	src, err := directory.NewLDIF(directory.LDIFConfig{
		Path:       filepath.Join("..", "testdata", "demo", "directory.ldif"),
		Preset:     directory.PresetOpenLDAP,
		Attributes: directory.LDAPAttributes{Disabled: "pwdAccountLockedTime"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := src.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 12 || len(snap.Groups) != 8 {
		t.Fatalf("%d users, %d groups; want 12 and 8", len(snap.Users), len(snap.Groups))
	}
	byName := map[string]*directory.User{}
	for i := range snap.Users {
		byName[snap.Users[i].UserName] = &snap.Users[i]
	}
	groupID := map[string]string{}
	for _, g := range snap.Groups {
		groupID[g.Name] = g.ID
	}
	in := func(user, group string) bool {
		return slices.Contains(snap.Memberships[byName[user].ID], groupID[group])
	}
	var inactive []string
	agents := 0
	for name, u := range byName {
		if !u.Active {
			inactive = append(inactive, name)
		}
		if in(name, "babelforce-agents") {
			agents++
		}
		if u.PrimaryEmail() != name+"@example.com" {
			t.Errorf("%s: email %q", name, u.PrimaryEmail())
		}
	}
	if !slices.Equal(inactive, []string{"jonas.wagner"}) {
		t.Errorf("inactive users %v, want jonas.wagner", inactive)
	}
	if agents != 11 || in("katrin.vogel", "babelforce-agents") || !in("anna.schmidt", "babelforce-agents") {
		t.Errorf("%d users in babelforce-agents through nesting, want 11 without katrin.vogel", agents)
	}
	for user, phone := range map[string]string{
		"anna.schmidt": "030 1234567", "ben.mueller": "+49 30 1234 568", "finn.becker": "ext. 4711",
		"ines.kowalski": "", "lukas.braun": "+49 151 23456789",
	} {
		if got := byName[user].PrimaryPhone(); got != phone {
			t.Errorf("%s: phone %q, want %q", user, got, phone)
		}
	}
	if u := byName["elif.yilmaz"]; u.DisplayName != "Elif Yılmaz" || u.Attr("preferredLanguage") != "de" {
		t.Errorf("elif.yilmaz: %q %q", u.DisplayName, u.Attr("preferredLanguage"))
	}
	if !in("anna.schmidt", "skill-billing") || !in("greta.hoffmann", "babelforce-supervisors") {
		t.Error("skill or supervisor membership missing")
	}
}
