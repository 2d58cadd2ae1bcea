package directory

import (
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// NormalizeDN returns a comparison key for a DN: two spellings of one DN (any case of
// attribute types and values, spaces around separators, escaped or hex-escaped characters,
// the attributes of a multi-valued RDN in any order) give the same key, and different DNs
// give different keys. ok is false for what is not a DN.
//
// The key is for comparing, not for showing: RDNs are separated by "\x00" and the attributes
// of a multi-valued RDN by "\x01", so that a decoded escaped comma cannot make two DNs equal
// (DNText renders a key readably). A DN without escapes, quotes or multi-valued RDNs (a big
// group's member list is thousands of them) takes a one-pass fast path that gives the
// parser's key. Every source and the mapping compare DNs through it.
func NormalizeDN(dn string) (key string, ok bool) {
	if !strings.Contains(dn, "=") {
		return "", false
	}
	if k, ok := normSimpleDN(dn); ok {
		return k, true
	}
	return normParsedDN(dn)
}

// DNText renders a key of NormalizeDN as a DN-like text ("uid=ann,ou=people,dc=example"):
// readable, but no longer unambiguous (decoded escapes are not escaped again).
func DNText(key string) string {
	return strings.NewReplacer("\x00", ",", "\x01", "+").Replace(key)
}

// normSimpleDN is NormalizeDN's fast path for the common DN without escapes, quotes or
// multi-valued RDNs: the same key, built in one pass. ok is false for anything else.
func normSimpleDN(s string) (string, bool) {
	if strings.ContainsAny(s, "\\\"+#;<>") {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(s))
	rdns := 0
	for rdn := range strings.SplitSeq(s, ",") {
		typ, val, ok := strings.Cut(rdn, "=")
		typ, val = strings.TrimSpace(typ), strings.TrimSpace(val)
		if !ok || typ == "" || strings.Contains(val, "=") {
			return "", false
		}
		if rdns > 0 {
			b.WriteByte(0)
		}
		rdns++
		b.WriteString(strings.ToLower(typ))
		b.WriteByte('=')
		b.WriteString(strings.ToLower(val))
	}
	return b.String(), true
}

// normParsedDN is NormalizeDN through ldap.ParseDN, for every DN.
func normParsedDN(s string) (string, bool) {
	d, err := ldap.ParseDN(s)
	if err != nil || len(d.RDNs) == 0 {
		return "", false
	}
	var b strings.Builder
	for i, rdn := range d.RDNs {
		if i > 0 {
			b.WriteByte(0)
		}
		parts := make([]string, len(rdn.Attributes))
		for j, atv := range rdn.Attributes {
			parts[j] = strings.ToLower(atv.Type) + "=" + strings.ToLower(strings.TrimSpace(atv.Value))
		}
		slices.Sort(parts)
		b.WriteString(strings.Join(parts, "\x01"))
	}
	return b.String(), true
}
