package directory

import (
	"strings"
	"testing"
)

func TestNormalizeDN(t *testing.T) {
	same := [][2]string{
		{"uid=a,ou=People,dc=example,dc=com", "UID=A, OU=people ,DC=Example,DC=COM"},
		{`cn=Pat O'Brien\, Jr.,ou=people,dc=x`, `CN=Pat O'Brien\2c Jr.,OU=People,DC=X`},
		{"cn=a+sn=b,dc=x", "sn=B+cn=A,dc=x"},
	}
	for _, p := range same {
		a, okA := NormalizeDN(p[0])
		b, okB := NormalizeDN(p[1])
		if !okA || !okB || a != b {
			t.Errorf("NormalizeDN(%q) != NormalizeDN(%q)", p[0], p[1])
		}
	}
	differ := [][2]string{
		{`cn=a\,b,dc=x`, "cn=a,b=,dc=x"},
		{"cn=a,dc=x", "cn=a,dc=y"},
	}
	for _, p := range differ {
		a, _ := NormalizeDN(p[0])
		b, _ := NormalizeDN(p[1])
		if a == b {
			t.Errorf("NormalizeDN(%q) == NormalizeDN(%q)", p[0], p[1])
		}
	}
	// the fast path gives the parser's key
	for _, dn := range []string{"uid=a,ou=People,dc=example,dc=com", " UID = A , OU=people ,DC=Example,DC=COM ",
		"cn=Ünïcödé Name,o=Örg", "cn=,dc=x", "2.5.4.3=x,dc=y", "uid=user000042,ou=people,dc=example,dc=com"} {
		fast, okF := normSimpleDN(dn)
		slow, okS := normParsedDN(dn)
		if !okF || !okS || fast != slow {
			t.Errorf("%q: fast key %q (%v), parsed key %q (%v)", dn, fast, okF, slow, okS)
		}
	}
	for _, notDN := range []string{"jdoe", "", "=,"} {
		if _, ok := NormalizeDN(notDN); ok {
			t.Errorf("NormalizeDN(%q) accepted", notDN)
		}
	}
}

func TestDNText(t *testing.T) {
	for _, tc := range [][2]string{
		{"UID=Ann, OU=People,DC=Example", "uid=ann,ou=people,dc=example"},
		{`cn=O\2CBrien\, Pat,dc=x`, "cn=o,brien, pat,dc=x"},
		{`CN=O\,Brien\, Pat,DC=X`, "cn=o,brien, pat,dc=x"},
		{"cn=b+uid=a,dc=x", "cn=b+uid=a,dc=x"},
		{"uid=a+cn=b,dc=x", "cn=b+uid=a,dc=x"},
		{" uid=a , dc=x ", "uid=a,dc=x"},
	} {
		k, ok := NormalizeDN(tc[0])
		if got := DNText(k); !ok || got != tc[1] {
			t.Errorf("DNText(NormalizeDN(%q)) = %q (%v), want %q", tc[0], got, ok, tc[1])
		}
	}
	if k := ldifDNKey(" Not A DN "); k != "not a dn" || strings.Contains(k, "\x00") {
		t.Errorf("ldifDNKey of a non-DN = %q", k)
	}
}

func TestUnderBase(t *testing.T) {
	for _, tc := range []struct {
		dn, base string
		want     bool
	}{
		{"uid=a,ou=People,dc=x", "ou=people,dc=x", true},
		{"ou=People,dc=x", "OU=people, DC=X", true},
		{`cn=Smith\, John,ou=Groups,dc=x`, `OU=groups,DC=x`, true},
		{`cn=a,ou=Sales\2C EMEA,dc=x`, `ou=sales\, emea,dc=x`, true},
		{"cn=a+sn=b,ou=p,dc=x", "ou=p,dc=x", true},
		{"uid=a,ou=people,dc=x", "", true},
		{"uid=a,ou=otherpeople,dc=x", "ou=people,dc=x", false},
		{`cn=x\,ou=people,dc=y`, "ou=people,dc=y", false}, // an escaped comma is no RDN boundary
		{"ou=people,dc=x", "uid=a,ou=people,dc=x", false},
		{"dc=x", "ou=people,dc=x", false},
		{"not a dn", "dc=x", false},
	} {
		if got := underBase(tc.dn, tc.base); got != tc.want {
			t.Errorf("underBase(%q, %q) = %v, want %v", tc.dn, tc.base, got, tc.want)
		}
	}
}
