package directory

import (
	"reflect"
	"testing"
	"unsafe"
)

func TestUserCompactKeepsValuesAndSharesThem(t *testing.T) {
	u := User{ID: "id-1", UserName: "jdoe", DN: "uid=jdoe,ou=people,dc=example,dc=com", DisplayName: "Jane Doe",
		GivenName: "Jane", FamilyName: "Doe", Emails: []Email{{Value: "jane@example.com", Type: "work", Primary: true}},
		Phones:     []Phone{{Value: "+49 30 1234", Type: "work", Primary: true}, {Value: "", Type: "mobile"}},
		Attributes: map[string][]string{"uid": {"jdoe"}, "mail": {"jane@example.com", "j@example.com"}, "cn": {"Jane Doe"}, "empty": {""}},
		Active:     true}
	want := u
	want.Emails = append([]Email(nil), u.Emails...)
	want.Phones = append([]Phone(nil), u.Phones...)
	want.Attributes = map[string][]string{}
	for k, v := range u.Attributes {
		want.Attributes[k] = append([]string(nil), v...)
	}
	u.compact()
	if !reflect.DeepEqual(u, want) {
		t.Fatalf("compact changed the user:\n got %+v\nwant %+v", u, want)
	}
	same := func(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }
	if !same(u.UserName, u.Attributes["uid"][0]) || !same(u.Emails[0].Value, u.Attributes["mail"][0]) || !same(u.DisplayName, u.Attributes["cn"][0]) {
		t.Error("equal values are not one string")
	}
	// one allocation: every value lies in one block
	lo, hi := unsafe.StringData(u.ID), unsafe.StringData(u.ID)
	for _, s := range []string{u.UserName, u.DN, u.DisplayName, u.GivenName, u.FamilyName, u.Phones[0].Value, u.Attributes["mail"][1]} {
		p := unsafe.StringData(s)
		if uintptr(unsafe.Pointer(p)) < uintptr(unsafe.Pointer(lo)) {
			lo = p
		}
		if e := unsafe.Add(unsafe.Pointer(p), len(s)); uintptr(e) > uintptr(unsafe.Pointer(hi)) {
			hi = (*byte)(e)
		}
	}
	if span := uintptr(unsafe.Pointer(hi)) - uintptr(unsafe.Pointer(lo)); span > 200 {
		t.Errorf("values spread over %d bytes: not one block", span)
	}
}
