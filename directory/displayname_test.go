package directory

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestDisplayNameFallback: the name comes from attributes.display_name, else the first of
// display_name_fallback (default cn) that has one; "-" turns either off; the user says which
// attribute it came from.
func TestDisplayNameFallback(t *testing.T) {
	ldif := `dn: uid=ann,dc=example,dc=com
objectClass: inetOrgPerson
uid: ann
cn: Ann Cn
sn: Example
displayName: Ann Display
entryUUID: 00000000-0000-4000-8000-000000000001

dn: uid=hans,dc=example,dc=com
objectClass: inetOrgPerson
uid: hans
cn: Müller, Hans
sn: Müller
entryUUID: 00000000-0000-4000-8000-000000000002
`
	path := filepath.Join(t.TempDir(), "dir.ldif")
	if err := os.WriteFile(path, []byte(ldif), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		attrs       LDAPAttributes
		ann, annBy  string
		hans, hanBy string
	}{
		{"defaults", LDAPAttributes{}, "Ann Display", "displayName", "Müller, Hans", "cn"},
		{"fallback off", LDAPAttributes{DisplayNameFallback: []string{"-"}}, "Ann Display", "displayName", "", ""},
		{"display_name off", LDAPAttributes{DisplayName: "-"}, "Ann Cn", "cn", "Müller, Hans", "cn"},
		{"both off", LDAPAttributes{DisplayName: "-", DisplayNameFallback: []string{"-"}}, "", "", "", ""},
		{"another fallback", LDAPAttributes{DisplayNameFallback: []string{"sn", "cn"}}, "Ann Display", "displayName", "Müller", "sn"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewLDIF(LDIFConfig{Path: path, Attributes: tc.attrs}, nil)
			if err != nil {
				t.Fatal(err)
			}
			snap, err := src.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][2]string{}
			for _, u := range snap.Users {
				got[u.UserName] = [2]string{u.DisplayName, u.DisplayNameFrom}
			}
			if want := [2]string{tc.ann, tc.annBy}; got["ann"] != want {
				t.Errorf("ann: %q, want %q", got["ann"], want)
			}
			if want := [2]string{tc.hans, tc.hanBy}; got["hans"] != want {
				t.Errorf("hans: %q, want %q", got["hans"], want)
			}
		})
	}
}

// TestLDAPBindDNIsNoUser: the service account bridge binds as is left out of the users even
// when the user filter matches it.
func TestLDAPBindDNIsNoUser(t *testing.T) {
	cfg := LDAPConfig{URLs: []string{"ldap://127.0.0.1:1"}, BindDN: "CN=Bridge Reader, dc=example,dc=com"}
	cfg.SetDefaults()
	l := &LDAPSource{cfg: cfg}
	person := func(dn, uid, uuid string) *entry {
		return &entry{dn: dn, attrs: map[string][][]byte{"uid": {[]byte(uid)}, "entryuuid": {[]byte(uuid)},
			"mail": {[]byte(uid + "@example.com")}}}
	}
	l.logger = slog.New(slog.DiscardHandler)
	b := l.newBuild()
	b.addUser(person("cn=bridge reader,dc=example,dc=com", "bridge", "00000000-0000-4000-8000-000000000009"))
	b.addUser(person("uid=ann,dc=example,dc=com", "ann", "00000000-0000-4000-8000-000000000001"))
	snap, err := b.finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 1 || snap.Users[0].UserName != "ann" {
		t.Errorf("users %+v, want only ann", snap.Users)
	}
}
