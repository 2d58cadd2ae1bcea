package directory

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"testing"
)

// TestKeepAttributes: with KeepAttributes a source keeps of the raw attributes only those
// named (any case), reads the fields of User as without it, and an LDAP source asks the
// server for no extra_attributes beyond them; without it every attribute is kept.
func TestKeepAttributes(t *testing.T) {
	path := writeLDIF(t, openLDAPSample)
	whole, err := readLDIF(t, LDIFConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewLDIF(LDIFConfig{Path: path}, nil, KeepAttributes("HomePhone", "EntryUUID", "title"))
	if err != nil {
		t.Fatal(err)
	}
	narrow, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const annID = "6f1f0a2e-0000-4000-8000-000000000001"
	ann, wholeAnn := narrow.User(annID), whole.User(annID)
	if got := slices.Sorted(maps.Keys(ann.Attributes)); !slices.Equal(got, []string{"entryuuid", "homephone"}) {
		t.Errorf("kept %q, want entryuuid and homephone", got)
	}
	if len(wholeAnn.Attributes) < 8 || wholeAnn.Attr("mail") != "ann@example.com" {
		t.Errorf("without KeepAttributes: %v", wholeAnn.Attributes)
	}
	// the fields do not depend on what is kept
	a, w := *ann, *wholeAnn
	a.Attributes, w.Attributes = nil, nil
	if !reflect.DeepEqual(a, w) {
		t.Errorf("fields differ:\n%+v\n%+v", a, w)
	}
	if bob := narrow.User("uid=bob,ou=people,dc=example,dc=com"); bob.Attributes != nil {
		t.Errorf("bob keeps %v, want nothing", bob.Attributes)
	}

	// what an LDAP source asks for
	cfg := LDAPConfig{URLs: []string{"ldap://127.0.0.1:1"}, ExtraAttributes: []string{"title", "departmentNumber"}}
	all, err := NewLDAP(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	some, err := NewLDAP(cfg, nil, KeepAttributes("Title"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(all.userAttrs, "departmentNumber") || !slices.Contains(all.userAttrs, "title") {
		t.Errorf("without KeepAttributes the source asks for %q", all.userAttrs)
	}
	want := slices.DeleteFunc(slices.Clone(all.userAttrs), func(a string) bool { return a == "departmentNumber" })
	if !slices.Equal(some.userAttrs, want) {
		t.Errorf("with KeepAttributes(title) the source asks for %q, want %q", some.userAttrs, want)
	}

	// a SCIM user's flattened attributes
	u, err := SCIMUser(map[string]any{"id": "1", "userName": "ann", "title": "Lead",
		EnterpriseUserSchema: map[string]any{"department": "Sales"}})
	if err != nil {
		t.Fatal(err)
	}
	var o sourceOptions
	KeepAttributes("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:Department")(&o)
	got := o.keep.filter(u.Attributes)
	if len(got) != 1 || !slices.Equal(got["urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department"], []string{"Sales"}) {
		t.Errorf("scim attributes kept: %v (of %v)", got, u.Attributes)
	}
	if keptAttrs(nil).filter(map[string][]string{"a": {"1"}}) == nil {
		t.Error("no KeepAttributes dropped an attribute")
	}
}
