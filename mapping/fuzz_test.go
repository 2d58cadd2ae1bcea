package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/nyaruka/phonenumbers"
	"go.yaml.in/yaml/v3"

	"github.com/babelforce/bridge/directory"
)

// configKeyPath is how every Compile error must start: a key of the mapping section, then
// optionally a path into it, then ": ".
var configKeyPath = regexp.MustCompile(`^(agent_source|scope|agent|phone|skills|static_tags|agent_groups|roles|default_roles|login_users|external_ids)([.\[][^:]*)?: \S`)

// FuzzCompile decodes arbitrary YAML into Config and compiles it: never a panic; an error
// lists one or more non-empty problems, each prefixed with its YAML key path; success gives
// rules that map an empty snapshot.
func FuzzCompile(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "mapping", "*.yaml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no mapping configurations in testdata/mapping (%v)", err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var doc struct {
			Mapping yaml.Node `yaml:"mapping"`
		}
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		out, err := yaml.Marshal(&doc.Mapping)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(out))
	}
	f.Add(richMappingYAML)
	for _, s := range []string{
		``,
		`agent_source: ""`,
		`agent_source: x
skills: [{match: "(", tag: "$1"}, {group: a, match: b, tag: x}, {attribute: a}, {tag: x}]`,
		`agent_source: x
agent_groups: [{match: "^(?P<n>.+)$", agent_group: "${n}${missing}$2"}, {match: "a{1001}", agent_group: x}]`,
		`agent_source: x
roles: [{group: g, role: emperor}, {match: "x", roles: []}]
default_roles: [agent, "", AGENT, root]`,
		`agent_source: x
scope: {conditions: [{attribute: a}, {attribute: "", equals: x}, {attribute: a, equals: x, matches: y}, {attribute: a, matches: "[z-a]"}, {attribute: a, one_of: []}, {attribute: a, present: false}]}`,
		`agent_source: x
scope: {include_groups: ["", " "], exclude_groups: [""]}`,
		`agent_source: x
agent: {name: "{{", email: "{{.Nope}}", number: "{{attr}}"}`,
		`agent_source: x
agent: {name: '{{template "x"}}', email: '{{define "a"}}{{end}}', number: '{{range .}}{{end}}'}`,
		`agent_source: x
phone: {default_region: ZZ, invalid: drop, region_attribute: " "}`,
		`agent_source: x
static_tags: ["", "  ", "a,b", "ok"]`,
		`agent_source: x
external_ids: [{integration: ""}, {integration: a, attribute: x, template: y}, {integration: a, attribute: b}, {integration: b, template: "{{"}]`,
		`agent_source: "\xff\xfe"
skills: [{match: "\xff", tag: "\xc3("}]`,
		`agent_source: x
skills: [{match: "(((((((((((((((((((((((((((((((a)))))))))))))))))))))))))))))))", tag: "$31"}]`,
		`agent_source: x
skills: [{match: "^skill-(.+)$", tag: "$1", lowercase: true}]
skills: []`,
		`{agent_source: x, scope: {include_inactive: maybe}}`,
		`- 1
- 2`,
		`agent_source: &a x
skills: [{match: *a, tag: *a}]`,
		// issue 17: recursion that an empty user does not reach
		`agent_source: x
agent: {name: '{{define "a"}}{{if .UserName}}{{template "a" .}}{{end}}{{end}}{{template "a" .}}'}`,
	} {
		f.Add(s)
	}
	snap := loadSnapshot(f, "snapshot.json")
	f.Fuzz(func(t *testing.T, text string) {
		var cfg Config
		dec := yaml.NewDecoder(strings.NewReader(text))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return // not a mapping section; the config loader reports that
		}
		r, err := Compile(cfg)
		if err != nil {
			var list []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				list = j.Unwrap()
			} else {
				list = []error{err}
			}
			if len(list) == 0 {
				t.Fatalf("Compile error %q lists no problem", err)
			}
			for _, e := range list {
				if e == nil || strings.TrimSpace(e.Error()) == "" {
					t.Fatalf("empty problem in %q", err)
				}
				if !configKeyPath.MatchString(e.Error()) {
					t.Fatalf("problem %q does not start with its key path", e.Error())
				}
			}
			if vErr := cfg.Validate(); vErr == nil || vErr.Error() != err.Error() {
				t.Fatalf("Validate says %v, Compile says %v", vErr, err)
			}
			return
		}
		if r == nil {
			t.Fatal("Compile returned neither rules nor an error")
		}
		d := Desire(&directory.Snapshot{}, r)
		if len(d.Agents) != 0 {
			t.Fatalf("agents from an empty snapshot: %+v", d.Agents)
		}
		// rules that compile map a real directory without panicking and keep Desire's promises
		d = Desire(snap, r)
		checkDesired(t, snap, r, d)
		for _, u := range snap.Users[:min(3, len(snap.Users))] {
			e := Explain(snap, r, u.ID)
			if !e.Found || e.UserID != u.ID {
				t.Fatalf("Explain(%q) did not find the user: %+v", u.ID, e)
			}
			if (e.Agent == nil) == (e.Skip == nil) {
				t.Fatalf("Explain(%q): agent %v and skip %v", u.ID, e.Agent, e.Skip)
			}
			if e.Text() == "" {
				t.Fatalf("Explain(%q): empty text", u.ID)
			}
		}
	})
}

// richMappingYAML uses every feature whose output Desire normalises: templates for every
// field, region attribute, rules with captures over group names and attributes, roles.
const richMappingYAML = `agent_source: "bridge:fuzz"
scope:
  exclude_groups: [excluded, "cn=Excluded,dc=x"]
  conditions:
    - {attribute: employeeType, not_equals: contractor}
  require_email: false
agent:
  name: '{{default .UserName .DisplayName}}'
  email: '{{default .Email (attr "mail")}}'
  number: '{{with attr "mobile"}}{{.}}{{else}}{{.Phone}}{{end}}'
phone:
  default_region: DE
  region_attribute: c
  invalid: omit
skills:
  - {match: "^skill-(.+)$", tag: "$1", lowercase: true}
  - {match: "(?i)^(?P<all>.*)$", tags: ["g-${all}"]}
  - {attribute: preferredLanguage, match: "^(..)", tag: "lang-${1}", lowercase: true}
static_tags: [bridge]
agent_groups:
  - {match: "^team-(.+)$", agent_group: "Team ${1}"}
  - {match: "(.*)", agent_group: "$1"}
roles:
  - {match: "^bf-role-(.+)$", role: "$1", lowercase: true}
  - {group: supervisors, roles: [supervisor, reporter]}
default_roles: [agent]
external_ids:
  - {integration: zendesk, attribute: employeeNumber}
  - {integration: crm, template: "{{.UserName}}@crm"}
`

var e164 = regexp.MustCompile(`^\+[1-9]\d{1,14}$`)

// fuzzSnapshot builds a small directory from fuzz input: users named by the lines of names
// (also their e-mails and phones, cycling), groups named by the lines of groups, and
// memberships (users and nested groups, cycles possible) chosen by the bytes of shape.
func fuzzSnapshot(shape []byte, names, emails, phones, groups string) *directory.Snapshot {
	split := func(s string, max int) []string {
		parts := strings.Split(s, "\n")
		if len(parts) > max {
			parts = parts[:max]
		}
		return parts
	}
	nameList, emailList, phoneList, groupList := split(names, 12), split(emails, 12), split(phones, 12), split(groups, 12)
	next := func() byte {
		if len(shape) == 0 {
			return 0
		}
		b := shape[0]
		shape = shape[1:]
		return b
	}
	s := &directory.Snapshot{Source: "fuzz"}
	for i, g := range groupList {
		s.Groups = append(s.Groups, directory.Group{ID: "g" + string(rune('a'+i)), Name: g, DN: "cn=" + g + ",dc=x"})
	}
	for i, n := range nameList {
		b := next()
		u := directory.User{
			ID:          "u" + string(rune('a'+int(b%4))) + string(rune('a'+i)), // ids not in name order
			UserName:    n,
			DisplayName: strings.ToUpper(n),
			Active:      b&0x10 == 0,
			Attributes: map[string][]string{
				"mail":              {emailList[i%len(emailList)]},
				"mobile":            {phoneList[(i+1)%len(phoneList)]},
				"c":                 {n},
				"preferredLanguage": {n},
				"employeeType":      {groupList[i%len(groupList)]},
				"employeeNumber":    {n},
			},
		}
		if b&0x20 == 0 {
			u.Emails = []directory.Email{{Value: emailList[i%len(emailList)], Primary: b&0x40 != 0}}
		}
		if b&0x80 == 0 {
			u.Phones = []directory.Phone{{Value: phoneList[i%len(phoneList)]}}
		}
		for range int(b % 3) {
			// a membership held by the group, by the user, or both
			m := next()
			g := int(m) % len(s.Groups)
			if m&0x40 == 0 {
				s.Groups[g].MemberUsers = append(s.Groups[g].MemberUsers, u.ID)
			}
			if m&0x80 == 0 {
				u.Groups = append(u.Groups, s.Groups[g].ID)
			}
		}
		s.Users = append(s.Users, u)
	}
	for range len(s.Groups) {
		from, to := int(next())%len(s.Groups), int(next())%len(s.Groups)
		s.Groups[from].MemberGroups = append(s.Groups[from].MemberGroups, s.Groups[to].ID)
	}
	if next()&1 == 0 {
		s.Resolve()
	}
	return s
}

// FuzzDesire maps a small random directory (names, e-mails, phone numbers and group names
// with regular-expression metacharacters, nested and cyclic groups) with a fixed rich
// configuration: never a panic; agents sorted and unique by SourceID; e-mails lower-case;
// numbers empty or E.164; tags, agent groups and roles sorted and unique; skipped users and
// warnings sorted; the snapshot unchanged; the same result twice.
func FuzzDesire(f *testing.F) {
	var cfg Config
	dec := yaml.NewDecoder(strings.NewReader(richMappingYAML))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		f.Fatal(err)
	}
	rules, err := Compile(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, "ann\nbob\nCarla", "Ann@Example.COM\nbob@example.com", "030 1234567\n+49 30 1234567\n0049 (0)30 12", "skill-French\nteam-Support\nbf-role-Supervisor")
	f.Add([]byte{0x10, 0x20, 0x40, 0x80, 0xff}, "a.*b\n(x)\n$1\n${all}", "A@B\n\n ", "+1 (415) 555-2671\n12\ncall me", "skill-(.+)\n^team-$\n[\n\\\nexcluded")
	f.Add([]byte{1, 1, 1, 1, 0, 0, 0, 0}, "same\nsame\nSAME", "dup@example.com\nDUP@example.com", "+999 123\n+4930123456789012345", "Excluded\nsupervisors\nskill-")
	f.Add([]byte{}, "", "", "", "")
	f.Add([]byte{2, 5, 9}, "\xff\xfe\n\xc3(", "\xffÄ@ß.de\nİ@x", "\x00\n٠١٢٣٤٥٦٧٨٩\n+٤٩٣٠١٢٣٤٥٦٧", "skill-\xff\nteam-\u00a0\n\u200b")
	f.Add([]byte{3, 3, 3}, "x", "UPPER@EXAMPLE.COM", "+44 20 7946 0958", "skill-"+strings.Repeat("a", 300)+"\nteam-a  b\t c")
	f.Add([]byte{0x21, 0x42}, "u\nv", "mail", "tel:+49-30-1234567;ext=5\n+49 30 1234567 ext. 99", "bf-role-AGENT\nbf-role-emperor\nbf-role-")
	f.Fuzz(func(t *testing.T, shape []byte, names, emails, phones, groups string) {
		s := fuzzSnapshot(shape, names, emails, phones, groups)
		before, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		d := Desire(s, rules)
		after, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Fatalf("Desire modified the snapshot:\n%s\n%s", before, after)
		}
		checkDesired(t, s, rules, d)
		if again := Desire(s, rules); !reflect.DeepEqual(d, again) {
			t.Fatalf("Desire is not deterministic:\n%+v\n%+v", d, again)
		}
	})
}

// checkDesired checks what Desire promises whatever the rules and the directory: agents
// sorted and unique by SourceID, each for a user of the snapshot, with a lower-case e-mail, an
// E.164 number or none, and sorted, unique, non-empty tags, agent groups and roles; skipped
// users and warnings sorted, with a reason and a detail; nobody both mapped and skipped.
func checkDesired(t *testing.T, s *directory.Snapshot, rules *Rules, d *Desired) {
	t.Helper()
	ids := map[string]bool{} // Snapshot.User needs a resolved (sorted) snapshot
	for _, u := range s.Users {
		ids[u.ID] = true
	}
	for i, a := range d.Agents {
		if i > 0 && d.Agents[i-1].SourceID >= a.SourceID {
			t.Fatalf("agents not sorted and unique by SourceID: %q then %q", d.Agents[i-1].SourceID, a.SourceID)
		}
		if a.Email != strings.ToLower(a.Email) {
			t.Fatalf("agent %q: e-mail %q is not lower-case", a.SourceID, a.Email)
		}
		if a.Number != "" && !e164.MatchString(a.Number) {
			t.Fatalf("agent %q: number %q is not E.164", a.SourceID, a.Number)
		}
		if a.AgentSource != rules.AgentSource() {
			t.Fatalf("agent %q: agent source %q", a.SourceID, a.AgentSource)
		}
		for what, list := range map[string][]string{"tags": a.Tags, "agent groups": a.AgentGroups, "roles": a.Roles} {
			if !sortedUnique(list) {
				t.Fatalf("agent %q: %s not sorted and unique: %q", a.SourceID, what, list)
			}
			for _, v := range list {
				if strings.TrimSpace(v) == "" {
					t.Fatalf("agent %q: empty entry in %s: %q", a.SourceID, what, list)
				}
			}
		}
		if !ids[a.SourceID] {
			t.Fatalf("agent %q for no user of the snapshot", a.SourceID)
		}
	}
	if !sortedUnique(d.Tags) || !sortedUnique(d.AgentGroups) {
		t.Fatalf("desired tags %q or agent groups %q not sorted and unique", d.Tags, d.AgentGroups)
	}
	for _, list := range [][]Skip{d.Skipped, d.Warnings} {
		if !slices.IsSortedFunc(list, func(a, b Skip) int { return strings.Compare(a.UserID, b.UserID) }) {
			t.Fatalf("skips not sorted by user id: %+v", list)
		}
		for _, sk := range list {
			if sk.Detail == "" || (sk.Reason != ReasonInvalid && sk.Reason != ReasonOutOfScope) {
				t.Fatalf("skip without a detail or with reason %q: %+v", sk.Reason, sk)
			}
		}
	}
	seen := map[string]bool{}
	for _, a := range d.Agents {
		seen[a.SourceID] = true
	}
	for _, sk := range d.Skipped {
		if seen[sk.UserID] {
			t.Fatalf("user %q both mapped and skipped", sk.UserID)
		}
	}
}

func sortedUnique(list []string) bool {
	for i := 1; i < len(list); i++ {
		if list[i-1] >= list[i] {
			return false
		}
	}
	return true
}

// FuzzFindUser resolves arbitrary `bridge explain USER` arguments against the golden
// snapshot: never a panic; either one user that the query names (id, userName, e-mail or DN)
// or an error wrapping ErrNoUser or ErrAmbiguousUser.
func FuzzFindUser(f *testing.F) {
	snap := loadSnapshot(f, "snapshot.json")
	for _, u := range snap.Users[:min(4, len(snap.Users))] {
		f.Add(u.ID)
		f.Add(strings.ToUpper(u.UserName))
		f.Add(" " + u.PrimaryEmail() + " ")
		f.Add(strings.ToUpper(u.DN))
	}
	for _, s := range []string{"", " ", "=", "cn=", ",,,=,", `cn=a\,b,dc=x`, `cn=\`, "cn=#zz", "\xff", "uid=nobody,dc=example,dc=com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		u, err := FindUser(snap, q)
		if err != nil {
			if u != nil {
				t.Fatalf("FindUser(%q) gave a user and an error %v", q, err)
			}
			if !errors.Is(err, ErrNoUser) && !errors.Is(err, ErrAmbiguousUser) {
				t.Fatalf("FindUser(%q): error %v wraps neither ErrNoUser nor ErrAmbiguousUser", q, err)
			}
			return
		}
		if u == nil {
			t.Fatalf("FindUser(%q): neither a user nor an error", q)
		}
		tq := strings.TrimSpace(q)
		named := u.ID == tq || strings.EqualFold(u.ID, tq) || strings.EqualFold(u.UserName, tq) || strings.Contains(tq, "=")
		for _, e := range u.Emails {
			named = named || strings.EqualFold(strings.TrimSpace(e.Value), tq)
		}
		if !named {
			t.Fatalf("FindUser(%q) found %q, which the query does not name", q, u.ID)
		}
	})
}

// fuzzRegions are the regions FuzzNormalizePhone picks from ("" is no default region).
var fuzzRegions = []string{"", "DE", "US", "GB", "FR", "IT", "CH", "IN", "BR"}

// FuzzNormalizePhone normalises arbitrary numbers: never a panic; a number or a problem, never
// both or neither; a number is E.164, normalises to itself again, and every digit of its
// national part comes from a digit of the input in order (issue 17: letters were read as
// keypad digits, "030 123 call me" became +4930123225563, and "201000000AAA00" a number too
// long for E.164).
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{
		"030 1234567", "+49 30 1234567", "0049 30 1234567", "+1 (415) 555-2671", "(415) 555-2671", "020 7946 0958",
		"030 1234567 ext.", "030 123 call me", "201000000AAA00", "030 1234567 ext. 12", "030 1234567 x12",
		"030 1234567 Durchwahl 12", "tel:+49-30-1234567;ext=5", "1-800-FLOWERS", "+٤٩٣٠١٢٣٤٥٦٧", "\x00", "",
		"+4930123456789012345", "06 12 34 56 78", "+39 06 1234 5678", "++49 30 1234567", "030 1234567#",
	} {
		for i := range fuzzRegions {
			f.Add(s, uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, raw string, r uint8) {
		region := fuzzRegions[int(r)%len(fuzzRegions)]
		// normalizePhone skips its two regular expressions for a number without a letter or
		// '#': they must not match such a number
		if trimmed := strings.TrimSpace(raw); !strings.ContainsRune(trimmed, '#') && strings.IndexFunc(trimmed, unicode.IsLetter) < 0 &&
			(phoneExtension.MatchString(trimmed) || telScheme.MatchString(trimmed)) {
			t.Fatalf("%q has no letter and no '#', but an extension or tel: pattern matches it", raw)
		}
		n, problem := normalizePhone(raw, region)
		if (n == "") == (problem == "") {
			t.Fatalf("normalizePhone(%q, %q) = %q, %q: want a number or a problem", raw, region, n, problem)
		}
		if n == "" {
			return
		}
		if !e164.MatchString(n) {
			t.Fatalf("normalizePhone(%q, %q) = %q: not E.164", raw, region, n)
		}
		if again, p := normalizePhone(n, region); again != n {
			t.Fatalf("normalizePhone(%q, %q) = %q, but that normalises to %q (%s)", raw, region, n, again, p)
		}
		num, err := phonenumbers.Parse(n, "ZZ")
		if err != nil {
			t.Fatalf("normalizePhone(%q, %q) = %q, which does not parse: %v", raw, region, n, err)
		}
		nsn, digits := phonenumbers.GetNationalSignificantNumber(num), phonenumbers.NormalizeDigitsOnly(raw)
		rest := digits
		for _, c := range nsn {
			i := strings.IndexRune(rest, c)
			if i < 0 {
				t.Fatalf("normalizePhone(%q, %q) = %q: its digits %s are not all from the input's digits %s", raw, region, n, nsn, digits)
			}
			rest = rest[i+1:]
		}
	})
}
