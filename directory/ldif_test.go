package directory

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseLDIF(t *testing.T) {
	in := "\xef\xbb\xbfversion: 1\r\n" +
		"# a comment\n" +
		"#  that continues\n" +
		" on a continuation line\n" +
		"\n" +
		"dn: uid=ann,ou=people,\n" +
		" dc=example,dc=com\n" +
		"objectClass: inetOrgPerson\n" +
		"cn:: " + base64.StdEncoding.EncodeToString([]byte("Ann Ärcher")) + "\n" +
		"description: a long value that was fol\n" +
		" ded across two lines\n" +
		"mail:ann@example.com\n" +
		"mail:   ann2@example.com\n" +
		"objectGUID:: AAECAwQFBgcICQoLDA0ODw==\n" +
		"\n" +
		"\n" +
		"# between records\n" +
		"dn: cn=team,ou=groups,dc=example,dc=com\n" +
		"changetype: add\n" +
		"objectClass: groupOfNames\n" +
		"member: uid=ann,ou=people,dc=example,dc=com\n" +
		"cn;lang-de: Mannschaft\n"
	entries, err := ParseLDIF(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("%d entries, want 2", len(entries))
	}
	ann := entries[0]
	if ann.DN != "uid=ann,ou=people,dc=example,dc=com" || ann.Line != 6 {
		t.Errorf("dn %q line %d", ann.DN, ann.Line)
	}
	if ann.First("CN") != "Ann Ärcher" {
		t.Errorf("base64 cn = %q", ann.First("cn"))
	}
	if ann.First("description") != "a long value that was folded across two lines" {
		t.Errorf("folded value = %q", ann.First("description"))
	}
	if !slices.Equal(ann.Get("mail"), []string{"ann@example.com", "ann2@example.com"}) {
		t.Errorf("mail = %q", ann.Get("mail"))
	}
	if g := ann.First("objectguid"); len(g) != 16 || g[15] != 15 {
		t.Errorf("binary objectGUID = %x", g)
	}
	if ann.Names["objectguid"] != "objectGUID" {
		t.Errorf("original spelling lost: %q", ann.Names["objectguid"])
	}
	team := entries[1]
	if team.Line != 18 || team.First("member") != "uid=ann,ou=people,dc=example,dc=com" || team.First("cn;lang-de") != "Mannschaft" {
		t.Errorf("team = %+v", team)
	}
	if _, ok := team.Attrs["changetype"]; ok {
		t.Error("changetype kept as an attribute")
	}
}

func TestParseLDIFErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int
		msg      string
	}{
		{"no dn", "objectClass: top\n", 1, `must start with "dn:"`},
		{"second dn", "dn: cn=a\ncn: a\ndn: cn=b\n", 3, `second "dn:"`},
		{"bad base64", "dn: cn=a\n\ncn: x\n", 3, `must start with "dn:"`},
		{"invalid base64", "dn: cn=a\ncn:: %%%\n", 2, "invalid base64"},
		{"url value", "dn: cn=a\njpegPhoto:< file:///etc/passwd\n", 2, "URL values"},
		{"modify", "dn: cn=a\nchangetype: modify\nadd: member\n", 2, `changetype "modify" is not supported`},
		{"delete", "version: 1\n\ndn: cn=a\nchangetype: delete\n", 4, "not supported"},
		{"late changetype", "dn: cn=a\ncn: a\nchangetype: add\n", 3, "directly follow"},
		{"no colon", "dn: cn=a\nthis line has no colon\n", 2, "expected \"attribute: value\""},
		{"bad name", "dn: cn=a\nc n: x\n", 2, "invalid attribute name"},
		{"leading continuation", " dn: cn=a\n", 1, "continuation line"},
		{"version later", "dn: cn=a\n\nversion: 1\n", 3, `"version:" is only allowed`},
		{"version 2", "version: 2\n", 1, "unsupported LDIF version"},
		{"control", "dn: cn=a\ncontrol: 1.2.3 true\n", 2, "controls are not supported"},
		{"latin1", "dn: cn=a\ncn: caf\xe9\n", 2, "not valid UTF-8"},
		{"modify separator", "dn: cn=a\ncn: a\n-\n", 3, "modify record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseLDIF(strings.NewReader(tc.in))
			var le *LDIFError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want *LDIFError", err)
			}
			if le.Line != tc.line || !strings.Contains(le.Msg, tc.msg) {
				t.Errorf("err = %v, want line %d containing %q", err, tc.line, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Errorf("error does not start with the line: %v", err)
			}
		})
	}
}

// An export that does not end with a complete record is an incomplete read, never a
// smaller directory.
func TestParseLDIFCutOff(t *testing.T) {
	whole := "dn: uid=ann,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: ann\n\n" +
		"dn: cn=team,ou=groups,dc=example,dc=com\nobjectClass: groupOfNames\n" +
		"member: uid=ann,ou=people,dc=example,dc=com\n" +
		"description: a long value that was fol\n ded across two lines\n"
	if _, err := ParseLDIF(strings.NewReader(whole)); err != nil {
		t.Fatalf("whole file: %v", err)
	}
	for _, tc := range []struct {
		name, in string
		line     int
		msg      string
	}{
		{"cut mid-attribute", "dn: uid=ann,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\n\ndn: cn=team,ou=groups,dc=example,dc=com\nmember: uid=user0224",
			5, `the file ends in the middle of a line ("member: uid=user0224", no final newline): the export was cut off, so the record that starts at line 4`},
		{"cut mid-line of the first record", "dn: uid=ann,ou=people,dc=example,dc=com\nobjectCla", 2, "record that starts at line 1"},
		{"cut in a folded value", whole[:len(whole)-10], 9, "ends in the middle of a line"},
		{"cut on the dn line", "dn: uid=ann,ou=people,dc=example,dc=com\nuid: ann\n\ndn: cn=te", 4, "record that starts at line 4"},
		{"dangling continuation", "dn: uid=ann,dc=example,dc=com\ndescription: folded\n \n", 3, "empty continuation line: the value folded at line 2 was cut off"},
		{"cut in a comment", "dn: uid=ann,dc=example,dc=com\nuid: ann\n# trailing comm", 3, "ends in the middle of a line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, err := ParseLDIF(strings.NewReader(tc.in))
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("err = %v (%d entries), want ErrIncomplete", err, len(entries))
			}
			var le *LDIFError
			if !errors.As(err, &le) || le.Line != tc.line || !strings.Contains(le.Msg, tc.msg) {
				t.Errorf("err = %v, want line %d containing %q", err, tc.line, tc.msg)
			}
		})
	}
	// The source says which file, and that it is incomplete.
	p := writeLDIF(t, "dn: uid=ann,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: ann\nentryUUID: 1\nmail: ann@exa")
	_, err := readLDIF(t, LDIFConfig{Path: p})
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), p+": line 5:") {
		t.Errorf("source read of a cut file: %v", err)
	}
}

func TestParseLDIFEmpty(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# only a comment\n", "version: 1\n"} {
		entries, err := ParseLDIF(strings.NewReader(in))
		if err != nil || len(entries) != 0 {
			t.Errorf("%q: %d entries, %v", in, len(entries), err)
		}
	}
}

func writeLDIF(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dir.ldif")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readLDIF(t *testing.T, cfg LDIFConfig) (*Snapshot, error) {
	t.Helper()
	s, err := NewLDIF(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s.Read(context.Background())
}

const openLDAPSample = `dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
dc: example
o: example

dn: uid=ann,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: ann
cn: Ann Archer
sn: Archer
mail: ann@example.com
telephoneNumber: +49 30 1
mobile: +49 171 2
homePhone: 030 3
userPassword: {SSHA}secret
entryUUID: 6f1f0a2e-0000-4000-8000-000000000001

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: person
objectClass: posixAccount
uid: bob
cn: Bob
sn: B
pwdAccountLockedTime: 000001010000Z

dn: cn=team,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: team
member: UID=Ann, OU=People,DC=Example,DC=COM
member: cn=sub,ou=groups,dc=example,dc=com
member: uid=nobody,ou=people,dc=example,dc=com
member: cn=team,ou=groups,dc=example,dc=com

dn: cn=sub,ou=groups,dc=example,dc=com
objectClass: groupOfUniqueNames
cn: sub
member: uid=bob,ou=people,dc=example,dc=com#'0101'B

dn: cn=posix,ou=groups,dc=example,dc=com
objectClass: posixGroup
cn: posix
memberUid: bob
memberUid: ann
memberUid: ghost
`

func TestLDIFSourceOpenLDAP(t *testing.T) {
	snap, err := readLDIF(t, LDIFConfig{Path: writeLDIF(t, openLDAPSample), Attributes: LDAPAttributes{Disabled: "pwdAccountLockedTime"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 2 || len(snap.Groups) != 3 {
		t.Fatalf("%d users, %d groups", len(snap.Users), len(snap.Groups))
	}
	ann := snap.User("6f1f0a2e-0000-4000-8000-000000000001")
	if ann == nil {
		t.Fatal("ann not found by entryUUID")
	}
	if ann.UserName != "ann" || ann.DisplayName != "Ann Archer" || !ann.Active || ann.PrimaryEmail() != "ann@example.com" {
		t.Errorf("ann = %+v", ann)
	}
	// the preset's phones: telephoneNumber and mobile (homePhone only when configured), the
	// first primary, as the LDAP source reads them
	if len(ann.Phones) != 2 || ann.Phones[0] != (Phone{Value: "+49 30 1", Type: "work", Primary: true}) || ann.Phones[1] != (Phone{Value: "+49 171 2", Type: "mobile"}) {
		t.Errorf("phones = %+v", ann.Phones)
	}
	if _, ok := ann.Attributes["userpassword"]; ok {
		t.Error("userPassword copied into Attributes")
	}
	if ann.Attr("homePhone") != "030 3" {
		t.Errorf("raw attribute homephone = %q", ann.Attr("homePhone"))
	}
	bobID := "uid=bob,ou=people,dc=example,dc=com" // no entryUUID: the normalized DN
	bob := snap.User(bobID)
	if bob == nil || bob.Active {
		t.Fatalf("bob = %+v, want inactive (pwdAccountLockedTime) with the DN as id", bob)
	}
	var team, sub, posix *Group
	for i := range snap.Groups {
		switch snap.Groups[i].Name {
		case "team":
			team = &snap.Groups[i]
		case "sub":
			sub = &snap.Groups[i]
		case "posix":
			posix = &snap.Groups[i]
		}
	}
	if !slices.Equal(team.MemberUsers, []string{ann.ID}) || !slices.Equal(team.MemberGroups, []string{sub.ID}) {
		t.Errorf("team = %+v (DN matched case- and space-insensitively, unknown and self dropped)", team)
	}
	if !slices.Equal(sub.MemberUsers, []string{bobID}) {
		t.Errorf("sub = %+v (uniqueMember #'…'B suffix)", sub)
	}
	if len(posix.MemberUsers) != 0 {
		t.Errorf("posix = %+v: the preset's member attribute is member, memberUid is not read", posix)
	}
	if got := snap.Memberships[bobID]; !slices.Equal(got, sortedIDs(sub.ID, team.ID)) {
		t.Errorf("bob transitive = %v", got)
	}

	// memberUid when configured: values that are not DNs are user names.
	snap, err = readLDIF(t, LDIFConfig{Path: writeLDIF(t, openLDAPSample), Attributes: LDAPAttributes{Member: "memberUid", Phone: []string{"homePhone"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range snap.Groups {
		if g.Name == "posix" && len(g.MemberUsers) != 2 {
			t.Errorf("posix via memberUid = %+v", g)
		}
	}
	if a := snap.User(ann.ID); len(a.Phones) != 1 || a.Phones[0] != (Phone{Value: "030 3", Type: "home", Primary: true}) {
		t.Errorf("phones override: %+v", a.Phones)
	}
	if b := snap.User(bobID); !b.Active {
		t.Error("bob inactive without a disabled attribute configured")
	}

	// nested_groups: false drops group members.
	f := false
	snap, err = readLDIF(t, LDIFConfig{Path: writeLDIF(t, openLDAPSample), NestedGroups: &f})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range snap.Groups {
		if len(g.MemberGroups) != 0 {
			t.Errorf("group %s has member groups with nested_groups false", g.Name)
		}
	}
}

func sortedIDs(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

func TestLDIFSourceMemberOf(t *testing.T) {
	in := `dn: uid=ann,dc=x
objectClass: inetOrgPerson
uid: ann
memberOf: CN=Team,DC=X

dn: cn=team,dc=x
objectClass: groupOfNames
cn: team
member: uid=someone-else,dc=x
`
	snap, err := readLDIF(t, LDIFConfig{Path: writeLDIF(t, in), Attributes: LDAPAttributes{Member: "-"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Memberships["uid=ann,dc=x"]; !slices.Equal(got, []string{"cn=team,dc=x"}) {
		t.Errorf("memberships via memberOf = %v", snap.Memberships)
	}
}

func TestLDIFSourceActiveDirectory(t *testing.T) {
	guid := []byte{0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x20}
	sid := []byte{1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0xe9, 3, 0, 0}
	in := "dn: CN=Ann,OU=Staff,DC=example,DC=test\n" +
		"objectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\n" +
		"sAMAccountName: ann\nuserAccountControl: 66050\n" +
		"objectGUID:: " + base64.StdEncoding.EncodeToString(guid) + "\n" +
		"objectSid:: " + base64.StdEncoding.EncodeToString(sid) + "\n" +
		"mS-DS-ConsistencyGuid:: " + base64.StdEncoding.EncodeToString(guid) + "\n" +
		"thumbnailPhoto:: /9j/4AAQ\n" +
		"unicodePwd:: IgBzAGUAYwByAGUAdAAiAA==\n\n" +
		"dn: CN=PC1,OU=Staff,DC=example,DC=test\n" +
		"objectClass: user\nobjectClass: computer\nsAMAccountName: PC1$\n" +
		"objectGUID: 00112233-4455-6677-8899-aabbccddee21\n\n" +
		"dn: CN=Agents,OU=Staff,DC=example,DC=test\n" +
		"objectClass: group\ncn: Agents\n" +
		"objectGUID: {00112233-4455-6677-8899-AABBCCDDEE22}\n" +
		"member: cn=ann,ou=staff,dc=example,dc=test\n" +
		"member: CN=PC1,OU=Staff,DC=example,DC=test\n"
	snap, err := readLDIF(t, LDIFConfig{Path: writeLDIF(t, in), Preset: PresetActiveDirectory})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 1 || len(snap.Groups) != 1 {
		t.Fatalf("%d users %d groups: the computer must not be a user", len(snap.Users), len(snap.Groups))
	}
	u := snap.Users[0]
	if u.ID != "00112233-4455-6677-8899-aabbccddee20" {
		t.Errorf("id = %q, want the canonical GUID", u.ID)
	}
	if u.Active {
		t.Error("userAccountControl 66050 has ACCOUNTDISABLE (2) set")
	}
	if u.UserName != "ann" {
		t.Errorf("userName = %q", u.UserName)
	}
	if u.Attr("objectSid") != "S-1-5-21-1-2-3-1001" || u.Attr("objectGUID") != u.ID || u.Attr("thumbnailPhoto") != "/9j/4AAQ" {
		t.Errorf("binary attributes: sid %q guid %q photo %q", u.Attr("objectSid"), u.Attr("objectGUID"), u.Attr("thumbnailPhoto"))
	}
	if got := u.Attr("mS-DS-ConsistencyGuid"); got != u.ID {
		t.Errorf("mS-DS-ConsistencyGuid = %q, want the GUID string as the LDAP source gives it", got)
	}
	if _, ok := u.Attributes["unicodepwd"]; ok {
		t.Error("unicodePwd copied")
	}
	g := snap.Groups[0]
	if g.ID != "00112233-4455-6677-8899-aabbccddee22" || !slices.Equal(g.MemberUsers, []string{u.ID}) {
		t.Errorf("group = %+v", g)
	}
}

func TestLDIFSourceErrors(t *testing.T) {
	if _, err := NewLDIF(LDIFConfig{}, nil); err == nil || !strings.Contains(err.Error(), "path:") {
		t.Errorf("empty path: %v", err)
	}
	if _, err := NewLDIF(LDIFConfig{Path: "x", Preset: "novell", Attributes: LDAPAttributes{ID: "-", IDFormat: "base32"}}, nil); err == nil ||
		!strings.Contains(err.Error(), "preset:") || !strings.Contains(err.Error(), "attributes.id:") || !strings.Contains(err.Error(), "attributes.id_format:") {
		t.Errorf("bad config: %v", err)
	}
	_, err := readLDIF(t, LDIFConfig{Path: filepath.Join(t.TempDir(), "missing.ldif")})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	p := writeLDIF(t, "dn: cn=a\nobjectClass: groupOfNames\n\nbroken line\n")
	_, err = readLDIF(t, LDIFConfig{Path: p})
	if err == nil || !strings.Contains(err.Error(), p+": line 4:") {
		t.Errorf("parse error does not name file and line: %v", err)
	}
	dup := "dn: uid=a,dc=x\nobjectClass: inetOrgPerson\nentryUUID: 1\n\ndn: uid=b,dc=x\nobjectClass: inetOrgPerson\nentryUUID: 1\n\n" +
		"dn: UID=A, DC=X\nobjectClass: inetOrgPerson\nentryUUID: 2\n"
	_, err = readLDIF(t, LDIFConfig{Path: writeLDIF(t, dup)})
	if err == nil || !strings.Contains(err.Error(), "line 5:") || !strings.Contains(err.Error(), "same id") ||
		!strings.Contains(err.Error(), "line 9:") || !strings.Contains(err.Error(), "appears again (first at line 1)") {
		t.Errorf("duplicates: %v", err)
	}
	badGUID := "dn: CN=a,DC=x\nobjectClass: user\nobjectGUID: not-a-guid\n"
	_, err = readLDIF(t, LDIFConfig{Path: writeLDIF(t, badGUID), Preset: PresetActiveDirectory})
	if err == nil || !strings.Contains(err.Error(), "line 1:") || !strings.Contains(err.Error(), "objectGUID") {
		t.Errorf("bad objectGUID: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, _ := NewLDIF(LDIFConfig{Path: p}, nil)
	if _, err := s.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// BenchmarkLDIFSource10k reads an export of 10,000 users in 50 groups.
func BenchmarkLDIFSource10k(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&sb, "dn: uid=user%05d,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: user%05d\ncn: User %d\nsn: %d\n"+
			"mail: user%05d@example.com\ntelephoneNumber: +49 30 %07d\nentryUUID: 00000000-0000-4000-8000-%012d\n\n", i, i, i, i, i, i, i)
	}
	for g := 0; g < 50; g++ {
		fmt.Fprintf(&sb, "dn: cn=group%02d,ou=groups,dc=example,dc=com\nobjectClass: groupOfNames\ncn: group%02d\n", g, g)
		for i := g; i < 10000; i += 50 {
			fmt.Fprintf(&sb, "member: uid=user%05d,ou=people,dc=example,dc=com\n", i)
		}
		sb.WriteString("\n")
	}
	p := filepath.Join(b.TempDir(), "big.ldif")
	if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	s, err := NewLDIF(LDIFConfig{Path: p}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		snap, err := s.Read(context.Background())
		if err != nil || len(snap.Users) != 10000 {
			b.Fatalf("%v", err)
		}
	}
}
