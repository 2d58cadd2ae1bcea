package testenv

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestStartSlapd(t *testing.T) {
	s := StartSlapd(t, SlapdOptions{TLS: true, SeedLDIF: "dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n"})
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(s.BindDN, s.BindPassword); err != nil {
		t.Fatal(err)
	}
	res, err := c.Search(ldap.NewSearchRequest(s.Suffix, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 3 {
		t.Fatalf("got %d entries, want 3", len(res.Entries))
	}
}
