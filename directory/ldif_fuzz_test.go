package directory_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/directory/directorytest"
)

// ldifSeeds are LDIF texts for the fuzzers: the demo directory, the conformance exports for
// OpenLDAP and Active Directory, and hand-made edge cases (folding, base64, binary GUIDs and
// SIDs, change records, URL values, broken lines, invalid UTF-8).
func ldifSeeds(f *testing.F) []string {
	demo, err := os.ReadFile(filepath.Join("..", "testdata", "demo", "directory.ldif"))
	if err != nil {
		f.Fatal(err)
	}
	d := directorytest.Conformance(f)
	guid := base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	sid := base64.StdEncoding.EncodeToString([]byte{1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x51, 4, 0, 0})
	return []string{
		string(demo),
		d.OpenLDAPExport("dc=example,dc=com"),
		d.ADExport("DC=example,DC=com"),
		"",
		"version: 1\n",
		"version: 2\n",
		"\xef\xbb\xbfversion: 1\r\ndn: uid=a,dc=x\r\nobjectClass: person\r\nuid: a\r\n",
		"dn: uid=ann,ou=people,\n dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: ann\ncn:: " +
			base64.StdEncoding.EncodeToString([]byte("Ann Ärcher")) + "\nmail: ann@example.com\n\n" +
			"dn: cn=team,dc=example,dc=com\nchangetype: add\nobjectClass: groupOfNames\nmember: UID=Ann, OU=People,DC=example,DC=com\nmember: cn=team,dc=example,dc=com\n",
		"dn: CN=Ann,DC=x\nobjectClass: user\nobjectGUID:: " + guid + "\nobjectSid:: " + sid +
			"\nsAMAccountName: ann\nuserPrincipalName: ann@x\nuserAccountControl: 514\nmemberOf: CN=G,DC=x\n\n" +
			"dn: CN=G,DC=x\nobjectClass: group\nobjectGUID:: AAEC\nmember: CN=Ann,DC=x\nmember;range=0-*: CN=Ann,DC=x\n",
		"dn: CN=Bad,DC=x\nobjectClass: user\nobjectGUID: not-binary\nobjectSid:: AQ==\nuserAccountControl: 99999999999999999999999\n",
		"dn: cn=g,dc=x\nobjectClass: posixGroup\ncn: g\nmemberUid: ann\nmemberUid: ghost\n\ndn: uid=ann,dc=x\nobjectClass: posixAccount\nuid: ann\n",
		"dn: cn=a,dc=x\nobjectClass: groupOfNames\nmember: cn=b,dc=x\n\ndn: cn=b,dc=x\nobjectClass: groupOfNames\nmember: cn=a,dc=x\n",
		"dn: uid=dup,dc=x\nobjectClass: person\nentryUUID: same\n\ndn: uid=dup2,dc=x\nobjectClass: person\nentryUUID: same\n\ndn: cn=same,dc=x\nobjectClass: groupOfNames\nentryUUID: same\nmember: uid=dup,dc=x\n",
		"dn: uid=dup,dc=x\nobjectClass: person\n\ndn: UID=dup, DC=x\nobjectClass: person\n",
		"dn: uid=a,dc=x\nchangetype: modify\nreplace: mail\nmail: a@b\n-\n",
		"dn: uid=a,dc=x\nchangetype: delete\n",
		"dn: uid=a,dc=x\ncontrol: 1.2.3 true\nobjectClass: person\n",
		"dn: uid=a,dc=x\njpegPhoto:< file:///etc/passwd\n",
		"dn: uid=a,dc=x\nobjectClass person\n",
		"dn: uid=a,dc=x\n: value\n",
		"dn:: " + base64.StdEncoding.EncodeToString([]byte("uid=ü,dc=x")) + "\nobjectClass: person\n",
		"dn:: !!!notbase64\n",
		"cn: no dn first\n",
		" leading continuation\n",
		"dn: uid=a,dc=x\n\n\n\n dangling continuation\n",
		"# comment only\n#  continued\n",
		"dn: uid=a,dc=x\nuserPassword: secret\nuserPassword:: c2VjcmV0\nobjectClass: person\n",
		"dn: uid=\xff\xfe,dc=x\nobjectClass: person\nuid: \xc3\x28\ncn:: //79\n",
		"dn: uid=a,dc=x\nobjectClass: person\n" + strings.Repeat(" x", 1000) + "\n",
		"dn:\nobjectClass: person\n",
		"version: 1\ndn: uid=a,dc=x\nobjectClass: person\nversion: 1\n",
	}
}

// FuzzParseLDIF: ParseLDIF never panics; an error is an *LDIFError naming a line ≥ 1; every
// entry has a line ≥ 1.
func FuzzParseLDIF(f *testing.F) {
	for _, s := range ldifSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		defer hangGuard(t)()
		entries, err := directory.ParseLDIF(strings.NewReader(in))
		if err != nil {
			var le *directory.LDIFError
			if !errors.As(err, &le) {
				t.Fatalf("error %T is not an *LDIFError: %v", err, err)
			}
			if le.Line < 1 {
				t.Fatalf("error names line %d: %v", le.Line, err)
			}
			if le.Msg == "" || err.Error() == "" {
				t.Fatalf("error without a message: %#v", le)
			}
			return
		}
		lines := bytes.Count([]byte(in), []byte("\n")) + 1
		for _, e := range entries {
			if e.Line < 1 || e.Line > lines {
				t.Fatalf("entry %q at line %d of %d", e.DN, e.Line, lines)
			}
		}
	})
}

// FuzzLDIFSource: an LDIF file read by NewLDIF with both presets (and attribute overrides:
// memberOf, hex and uid ids, disabled flags) never panics; a snapshot has unique, non-empty
// user and group ids, and memberships that agree with Resolve (every direct group of a user is
// among its transitive ones, every group id exists).
func FuzzLDIFSource(f *testing.F) {
	for _, s := range ldifSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		defer hangGuard(t)()
		path := filepath.Join(t.TempDir(), "d.ldif")
		if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
			t.Fatal(err)
		}
		noNesting := false
		for preset, cfg := range map[string]directory.LDIFConfig{
			directory.PresetOpenLDAP:        {Path: path, Preset: directory.PresetOpenLDAP},
			directory.PresetActiveDirectory: {Path: path, Preset: directory.PresetActiveDirectory},
			"active_directory with memberOf": {Path: path, Preset: directory.PresetActiveDirectory, NestedGroups: &noNesting,
				Attributes: directory.LDAPAttributes{Member: "-", MemberOf: "memberOf", IDFormat: "hex", Disabled: "userAccountControl", DisabledMask: 2}},
			"openldap by uid": {Path: path, Preset: directory.PresetOpenLDAP,
				Attributes: directory.LDAPAttributes{ID: "uid", Member: "memberUid", Disabled: "pwdAccountLockedTime", DisabledValues: []string{"000001010000Z"}}},
		} {
			src, err := directory.NewLDIF(cfg, nil)
			if err != nil {
				t.Fatalf("%s: NewLDIF: %v", preset, err)
			}
			snap, err := src.Read(context.Background())
			if err != nil {
				if err.Error() == "" {
					t.Fatalf("%s: empty error", preset)
				}
				continue
			}
			checkSnapshot(t, preset, snap)
			// `bridge directory dump` shows any snapshot: JSON valid and deterministic, text too
			var a, b, txt bytes.Buffer
			if err := directory.WriteDump(&a, snap, directory.DumpJSON); err != nil {
				t.Fatalf("%s: json dump: %v", preset, err)
			}
			if err := directory.WriteDump(&b, snap, directory.DumpJSON); err != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatalf("%s: json dump differs between two calls (%v)", preset, err)
			}
			if !json.Valid(a.Bytes()) {
				t.Fatalf("%s: json dump is not JSON: %s", preset, a.Bytes())
			}
			if err := directory.WriteDump(&txt, snap, directory.DumpText); err != nil {
				t.Fatalf("%s: text dump: %v", preset, err)
			}
		}
	})
}

// hangGuard crashes the fuzz worker, so that the fuzzer reports the input, when one input
// takes longer than 30 s (an endless loop). Use as defer hangGuard(t)().
func hangGuard(t *testing.T) (stop func()) {
	name := t.Name()
	timer := time.AfterFunc(30*time.Second, func() {
		buf := make([]byte, 1<<20)
		panic(fmt.Sprintf("%s: one input took more than 30s; goroutines:\n%s", name, buf[:runtime.Stack(buf, true)]))
	})
	return func() { timer.Stop() }
}

// checkSnapshot checks what every source promises about a snapshot.
func checkSnapshot(t *testing.T, name string, snap *directory.Snapshot) {
	t.Helper()
	users := map[string]bool{}
	for _, u := range snap.Users {
		if u.ID == "" {
			t.Fatalf("%s: user %q without an id", name, u.UserName)
		}
		if users[u.ID] {
			t.Fatalf("%s: user id %q twice", name, u.ID)
		}
		users[u.ID] = true
	}
	groups := map[string]bool{}
	for _, g := range snap.Groups {
		if g.ID == "" {
			t.Fatalf("%s: group %q without an id", name, g.Name)
		}
		if groups[g.ID] {
			t.Fatalf("%s: group id %q twice", name, g.ID)
		}
		groups[g.ID] = true
	}
	for _, u := range snap.Users {
		all := snap.Memberships[u.ID]
		if !slices.IsSorted(all) {
			t.Fatalf("%s: memberships of %q not sorted: %q", name, u.ID, all)
		}
		for _, g := range u.Groups {
			if !groups[g] {
				t.Fatalf("%s: user %q in unknown group %q", name, u.ID, g)
			}
			if !slices.Contains(all, g) {
				t.Fatalf("%s: user %q is directly in %q but not in its memberships %q", name, u.ID, g, all)
			}
		}
		for _, g := range all {
			if !groups[g] {
				t.Fatalf("%s: user %q has membership in unknown group %q", name, u.ID, g)
			}
		}
	}
	for id := range snap.Memberships {
		if !users[id] {
			t.Fatalf("%s: memberships for unknown user %q", name, id)
		}
	}
	// Resolve is idempotent: resolving again changes nothing.
	again := *snap
	again.Users = slices.Clone(snap.Users)
	for i := range again.Users {
		again.Users[i].Groups = slices.Clone(again.Users[i].Groups)
	}
	again.Groups = slices.Clone(snap.Groups)
	again.Memberships = nil
	again.Resolve()
	for _, u := range snap.Users {
		if !slices.Equal(snap.Memberships[u.ID], again.Memberships[u.ID]) {
			t.Fatalf("%s: memberships of %q change on a second Resolve: %q then %q", name, u.ID,
				snap.Memberships[u.ID], again.Memberships[u.ID])
		}
	}
}
