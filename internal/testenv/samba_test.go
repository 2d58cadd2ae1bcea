package testenv

import (
	"fmt"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestStartSamba(t *testing.T) {
	s := StartSamba(t, SambaOptions{})
	ou := s.NewOU(t, "smoke")
	s.Add(t, fmt.Sprintf("dn: CN=Smoke User,%s\nobjectClass: user\nsAMAccountName: smoke1\nuserAccountControl: 544\n", ou))
	c, err := s.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(s.BindDN, s.BindPassword); err != nil {
		t.Fatal(err)
	}
	res, err := c.Search(ldap.NewSearchRequest(ou, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(sAMAccountName=smoke1)", []string{"objectGUID"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 1 {
		t.Fatalf("got %d entries, want 1", len(res.Entries))
	}
	if g := s.ObjectGUID(t, "smoke1"); len(g) != 36 {
		t.Fatalf("objectGUID %q", g)
	}
	// A second call shares the same domain controller.
	if s2 := StartSamba(t, SambaOptions{}); s2 != s {
		t.Fatal("second StartSamba started another domain controller")
	}
}
