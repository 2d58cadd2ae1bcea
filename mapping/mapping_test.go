package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"go.yaml.in/yaml/v3"

	"github.com/babelforce/bridge/directory"
)

func boolp(b bool) *bool { return &b }

func TestCompileReportsEveryProblem(t *testing.T) {
	cfg := Config{
		Scope: ScopeConfig{
			IncludeGroups: []string{"agents", " "},
			Conditions: []Condition{
				{Attribute: "employeeType"},
				{Attribute: "title", Equals: "a", Matches: "b"},
				{Attribute: "mail", Matches: "[a-"},
				{Equals: "x"},
			},
		},
		Agent: AgentConfig{Name: "{{.Nope}}", Email: "{{foo .Email}}", Number: "{{.Phone"},
		Phone: PhoneConfig{DefaultRegion: "XX", Invalid: "drop"},
		Skills: []SkillRule{
			{Selector: Selector{Group: "team", Match: "x"}, Tag: "t"},
			{Selector: Selector{Match: "^skill-(.+)$"}, Tag: "$2"},
			{Selector: Selector{Match: "("}, Tag: "$1"},
			{Selector: Selector{Group: "team"}, Tag: "$1"},
			{Selector: Selector{Group: "team"}},
			{Selector: Selector{Attribute: "lang"}, Tag: "x"},
			{Selector: Selector{Match: "^(?P<lang>..)"}, Tag: "${language}"},
		},
		StaticTags:  []string{"ok", " ", "a,b"},
		AgentGroups: []AgentGroupRule{{AgentGroup: "Support"}},
		Roles: []RoleRule{
			{Selector: Selector{Group: "sup"}, Roles: []string{"supervisor", "admin"}},
		},
		DefaultRoles: []string{"boss"},
		ExternalIDs: []ExternalIDRule{
			{Attribute: "employeeNumber"},
			{Integration: "zendesk"},
			{Integration: "crm", Attribute: "a", Template: "b"},
			{Integration: "Zendesk", Attribute: "x"},
			{Integration: "sf", Template: "{{attr}}"},
		},
	}
	_, err := Compile(cfg)
	if err == nil {
		t.Fatal("Compile accepted a broken config")
	}
	want := []string{
		`agent_source: is required`,
		`scope.include_groups[1]: must not be empty`,
		`scope.conditions[0]: needs one of equals, not_equals, one_of, matches or present`,
		`scope.conditions[1]: set only one of equals, not_equals, one_of, matches or present`,
		`scope.conditions[2].matches: invalid regular expression "[a-": missing closing ]`,
		`scope.conditions[3].attribute: is required`,
		`agent.name: invalid template "{{.Nope}}": <.Nope>: can't evaluate field Nope`,
		`agent.email: invalid template "{{foo .Email}}": function "foo" not defined`,
		`agent.number: invalid template "{{.Phone": unclosed action`,
		`phone.default_region: unknown region "XX"`,
		`phone.invalid: must be skip or omit, got "drop"`,
		`skills[0]: set group, or match (optionally with attribute), not both`,
		`skills[1].tag: "$2" refers to capture 2 but the expression has 1`,
		`skills[2].match: invalid regular expression "(": missing closing )`,
		`skills[3].tag: "$1" uses $ captures, which only a match rule has`,
		`skills[4]: needs tag or tags`,
		`skills[5].match: is required with attribute`,
		`skills[6].tag: "${language}" refers to capture "language", which the expression does not have`,
		`static_tags[1]: tag " " is empty`,
		`static_tags[2]: tag "a,b" contains a comma`,
		`agent_groups[0]: needs group or match`,
		`roles[0].roles[1]: unknown role "admin": babelforce roles are manager, owner, reporter, user, agent, supervisor, sales, router, scheduler`,
		`default_roles[0]: unknown role "boss"`,
		`external_ids[0].integration: is required`,
		`external_ids[1]: set attribute or template`,
		`external_ids[2]: set attribute or template, not both`,
		`external_ids[3].integration: "Zendesk" is already mapped by external_ids[1]`,
		`external_ids[4].template: invalid template "{{attr}}"`,
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing problem %q", w)
		}
	}
	if n := len(strings.Split(msg, "\n")); n != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", n, len(want), msg)
	}
	if verr := cfg.Validate(); verr == nil || verr.Error() != msg {
		t.Errorf("Validate differs from Compile: %v", verr)
	}
}

func TestCompileDefaults(t *testing.T) {
	r, err := Compile(Config{AgentSource: " bridge:ldap "})
	if err != nil {
		t.Fatal(err)
	}
	if r.AgentSource() != "bridge:ldap" || !r.LoginUsers() || !r.includeInactive || !r.requireEmail {
		t.Errorf("defaults: source %q login %v inactive %v email %v", r.AgentSource(), r.LoginUsers(), r.includeInactive, r.requireEmail)
	}
	if !reflect.DeepEqual(r.defaultRoles, []string{"agent"}) {
		t.Errorf("default roles %v, want [agent]", r.defaultRoles)
	}
	r, err = Compile(Config{AgentSource: "x", DefaultRoles: []string{}, LoginUsers: boolp(false)})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.defaultRoles) != 0 || r.LoginUsers() {
		t.Errorf("explicit empty default_roles / login_users false not kept: %v %v", r.defaultRoles, r.LoginUsers())
	}
}

// TestConfigExampleCompiles decodes the YAML examples of the doc comments (Config's and the
// package's), so that they cannot drift from the code.
func TestConfigExampleCompiles(t *testing.T) {
	for _, file := range []string{"config.go", "doc.go"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var yml []string
		in := false
		for _, line := range strings.Split(string(src), "\n") {
			switch {
			case strings.HasPrefix(line, "//\tmapping:"):
				in = true
			case in && !strings.HasPrefix(line, "//\t"):
				in = false
			}
			if in {
				yml = append(yml, strings.TrimPrefix(line, "//\t"))
			}
		}
		if len(yml) < 5 {
			t.Fatalf("no YAML example found in %s's doc comment", file)
		}
		var doc struct {
			Mapping Config `yaml:"mapping"`
		}
		dec := yaml.NewDecoder(strings.NewReader(strings.Join(yml, "\n")))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("%s: example does not decode: %v", file, err)
		}
		if _, err := Compile(doc.Mapping); err != nil {
			t.Fatalf("%s: example does not compile: %v", file, err)
		}
		if file == "config.go" && (len(doc.Mapping.Skills) != 3 || doc.Mapping.Skills[1].Match != "^skill-(.+)$" || !doc.Mapping.Skills[1].Lowercase) {
			t.Errorf("inline selector fields not decoded: %+v", doc.Mapping.Skills)
		}
	}
}

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		raw, region, want, problem string
	}{
		{"030 1234567", "DE", "+49301234567", ""},
		{"+49 30 1234567", "DE", "+49301234567", ""},
		{"+49 (0)30 123 45 67", "GB", "+49301234567", ""},
		{"0049-30-1234567", "DE", "+49301234567", ""},
		{"0049 30 1234567", "", "+49301234567", ""},
		{"+1 (415) 555-2671", "", "+14155552671", ""},
		{"(415) 555-2671", "US", "+14155552671", ""},
		{"020 7946 0958", "GB", "+442079460958", ""},
		{"0151 23456789", "DE", "+4915123456789", ""},
		{"12", "DE", "", `number "12" is not a valid phone number for region DE`},
		{"call me", "DE", "", `number "call me" has letters in it (only an extension such as "ext. 12" may follow the number)`},
		{"030 1234567", "", "", `number "030 1234567" has no country code and phone.default_region is not set`},
		{"+999 123", "", "", `number "+999 123" is not a valid phone number`},
		// issue 17: an extension is split off, never dialled; other letters make a number invalid
		{"030 1234567 ext. 12", "DE", "+49301234567", ""},
		{"030 1234567 x12", "DE", "+49301234567", ""},
		{"030 1234567X 12", "DE", "+49301234567", ""},
		{"030 1234567, Durchwahl 12", "DE", "+49301234567", ""},
		{"030 1234567 DW 12", "DE", "+49301234567", ""},
		{"+1 415 555 2671 extension 7", "", "+14155552671", ""},
		{"tel:+49-30-1234567;ext=5", "", "+49301234567", ""},
		{"030 1234567 #5", "DE", "+49301234567", ""},
		{"030 1234567 ext.", "DE", "", `number "030 1234567 ext." has letters in it (only an extension such as "ext. 12" may follow the number)`},
		{"030 123 call me", "DE", "", `number "030 123 call me" has letters in it (only an extension such as "ext. 12" may follow the number)`},
		{"201000000AAA00", "DE", "", `number "201000000AAA00" has letters in it (only an extension such as "ext. 12" may follow the number)`},
		{"1-800-FLOWERS", "US", "", `number "1-800-FLOWERS" has letters in it (only an extension such as "ext. 12" may follow the number)`},
		{"030 1234567 Durchwahl", "DE", "", `number "030 1234567 Durchwahl" has letters in it (only an extension such as "ext. 12" may follow the number)`},
		{"201000000000000", "DE", "", `number "201000000000000" is not a valid phone number for region DE`},
	}
	for _, tt := range tests {
		got, problem := normalizePhone(tt.raw, tt.region)
		if got != tt.want || problem != tt.problem {
			t.Errorf("normalizePhone(%q, %q) = %q, %q; want %q, %q", tt.raw, tt.region, got, problem, tt.want, tt.problem)
		}
	}
}

// A rule names a group by DN as the directory's administrator writes it; the directory
// spells it its own way (escapes, hex escapes, case, spaces, order in a multi-valued RDN):
// both are compared through directory.NormalizeDN.
func TestGroupSelectorDNResolvesEscapes(t *testing.T) {
	groups := []directory.Group{
		{ID: "g1", Name: "Smith, John's team", DN: `CN=Smith\, John,OU=Groups,DC=example,DC=com`},
		{ID: "g2", Name: "Smith", DN: `cn=Smith,cn=John,ou=groups,dc=example,dc=com`},
		{ID: "g3", Name: "multi", DN: `cn=Ops+ou=Night,ou=groups,dc=example,dc=com`},
	}
	cfg := Config{AgentSource: "test", AgentGroups: []AgentGroupRule{
		{Selector: Selector{Group: `cn=smith\2c john, ou=groups, dc=example, dc=com`}, AgentGroup: "escaped"},
		{Selector: Selector{Group: `OU=night+CN=ops,OU=Groups,DC=Example,DC=Com`}, AgentGroup: "multi"},
	}}
	r := mustCompile(t, cfg)
	for _, tc := range []struct {
		group string
		want  []string
	}{{"g1", []string{"escaped"}}, {"g2", []string{}}, {"g3", []string{"multi"}}} {
		d := Desire(snap([]directory.User{user("u1", "ann", "ann@x.com", tc.group)}, slices.Clone(groups)), r)
		if len(d.Agents) != 1 {
			t.Fatalf("%s: agents %+v skipped %+v", tc.group, d.Agents, d.Skipped)
		}
		if got := d.Agents[0].AgentGroups; !slices.Equal(got, tc.want) {
			t.Errorf("member of %s: agent groups %q, want %q", tc.group, got, tc.want)
		}
	}
	// FindUser compares a DN query the same way
	u := user("u1", "ann", "ann@x.com")
	u.DN = `uid=ann,CN=Smith\, John,dc=example,dc=com`
	found, err := FindUser(snap([]directory.User{u}, nil), `UID=Ann,cn=smith\2C john,DC=example,DC=com`)
	if err != nil || found.ID != "u1" {
		t.Errorf("FindUser by escaped DN: %v, %v", found, err)
	}
}

// snap builds a resolved snapshot from users and groups.
func snap(users []directory.User, groups []directory.Group) *directory.Snapshot {
	s := &directory.Snapshot{Users: users, Groups: groups}
	s.Resolve()
	return s
}

func user(id, name, email string, groups ...string) directory.User {
	u := directory.User{ID: id, UserName: name, DisplayName: strings.ToUpper(name), Active: true, Groups: groups}
	if email != "" {
		u.Emails = []directory.Email{{Value: email, Primary: true}}
	}
	return u
}

func mustCompile(t testing.TB, cfg Config) *Rules {
	t.Helper()
	r, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRules(t *testing.T) {
	groups := []directory.Group{
		{ID: "g1", Name: "skill-French"},
		{ID: "g2", Name: "skill-", MemberGroups: nil},
		{ID: "g3", Name: "skill-a,b"},
		{ID: "g4", Name: "Team  Support ", DN: "CN=Team Support,DC=x"},
		{ID: "g5", Name: "role-Owner"},
		{ID: "g6", Name: "lang-parent", MemberGroups: []string{"g1"}},
	}
	tests := []struct {
		name     string
		cfg      Config
		user     directory.User
		tags     []string
		groups   []string
		roles    []string
		problems []string
	}{
		{
			name: "regex captures, lowercase, empty capture is no tag, comma is a problem",
			cfg:  Config{Skills: []SkillRule{{Selector: Selector{Match: "^skill-(.*)$", Lowercase: true}, Tags: []string{"$1", "x-${1}"}}}},
			user: user("u1", "ann", "ann@x.com", "g1", "g2", "g3"),
			tags: []string{"french", "x-", "x-french"},
			problems: []string{
				`skills[0] made tag "a,b" from group skill-a,b, which contains a comma, which babelforce's tag filters cannot take; ignored`,
				`skills[0] made tag "x-a,b" from group skill-a,b, which contains a comma, which babelforce's tag filters cannot take; ignored`,
			},
		},
		{
			name:   "nested membership and group by DN, static tags merged and unique",
			cfg:    Config{StaticTags: []string{"b", "a", "b"}, Skills: []SkillRule{{Selector: Selector{Group: "lang-parent"}, Tag: "a"}}, AgentGroups: []AgentGroupRule{{Selector: Selector{Group: "cn=team support, dc=x"}, AgentGroups: []string{" Support ", "Tier  1"}}}},
			user:   user("u1", "ann", "ann@x.com", "g1", "g4"),
			tags:   []string{"a", "b"},
			groups: []string{"Support", "Tier 1"},
		},
		{
			name:   "match over names that need trimming",
			cfg:    Config{AgentGroups: []AgentGroupRule{{Selector: Selector{Match: "^Team (.+)$"}, AgentGroup: "$1"}}},
			user:   user("u1", "ann", "ann@x.com", "g4"),
			groups: []string{"Support"},
		},
		{
			name:  "roles from captures are checked and lower-cased",
			cfg:   Config{Roles: []RoleRule{{Selector: Selector{Match: "^role-(.+)$"}, Role: "$1"}}},
			user:  user("u1", "ann", "ann@x.com", "g5"),
			roles: []string{"owner"},
		},
		{
			name:  "default roles when no rule matches",
			cfg:   Config{Roles: []RoleRule{{Selector: Selector{Group: "skill-French"}, Roles: []string{"Supervisor"}}}, DefaultRoles: []string{"agent", "reporter"}},
			user:  user("u1", "ann", "ann@x.com"),
			roles: []string{"agent", "reporter"},
		},
		{
			name:  "login_users false: no roles at all",
			cfg:   Config{LoginUsers: boolp(false), Roles: []RoleRule{{Selector: Selector{Group: "skill-French"}, Roles: []string{"supervisor"}}}},
			user:  user("u1", "ann", "ann@x.com", "g1"),
			roles: []string{},
		},
		{
			name: "attribute rule",
			cfg:  Config{Skills: []SkillRule{{Selector: Selector{Attribute: "languages", Match: "^(..)$", Lowercase: true}, Tag: "lang-$1"}}},
			user: func() directory.User {
				u := user("u1", "ann", "ann@x.com")
				u.Attributes = map[string][]string{"languages": {"DE", "EN", "klingon"}}
				return u
			}(),
			tags: []string{"lang-de", "lang-en"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.AgentSource = "test"
			r := mustCompile(t, tt.cfg)
			d := Desire(snap([]directory.User{tt.user}, slices.Clone(groups)), r)
			if len(d.Agents) != 1 {
				t.Fatalf("agents %+v skipped %+v", d.Agents, d.Skipped)
			}
			a := d.Agents[0]
			if tt.tags == nil {
				tt.tags = []string{}
			}
			if tt.groups == nil {
				tt.groups = []string{}
			}
			if tt.roles == nil {
				tt.roles = []string{"agent"}
			}
			if !reflect.DeepEqual(a.Tags, tt.tags) && !(len(a.Tags) == 0 && len(tt.tags) == 0) {
				t.Errorf("tags %q, want %q", a.Tags, tt.tags)
			}
			if !reflect.DeepEqual(a.AgentGroups, tt.groups) {
				t.Errorf("agent groups %q, want %q", a.AgentGroups, tt.groups)
			}
			if !reflect.DeepEqual(a.Roles, tt.roles) {
				t.Errorf("roles %q, want %q", a.Roles, tt.roles)
			}
			for _, p := range tt.problems {
				if !contains(d.Problems, p) {
					t.Errorf("missing problem %q in %q", p, d.Problems)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestEmailCollisionNamesEveryOther(t *testing.T) {
	s := snap([]directory.User{
		user("u1", "ann", "Team@x.com"),
		user("u2", "bob", "team@X.com"),
		user("u3", "carl", "TEAM@x.com"),
		user("u4", "dora", "dora@x.com"),
	}, nil)
	d := Desire(s, mustCompile(t, Config{AgentSource: "t"}))
	if len(d.Agents) != 1 || d.Agents[0].SourceID != "u4" {
		t.Fatalf("agents %+v", d.Agents)
	}
	want := map[string]string{
		"u1": "e-mail team@x.com is also the e-mail of bob (id u2), carl (id u3)",
		"u2": "e-mail team@x.com is also the e-mail of ann (id u1), carl (id u3)",
		"u3": "e-mail team@x.com is also the e-mail of ann (id u1), bob (id u2)",
	}
	if len(d.Skipped) != 3 {
		t.Fatalf("skipped %+v", d.Skipped)
	}
	for _, sk := range d.Skipped {
		if sk.Reason != ReasonInvalid || !strings.HasPrefix(sk.Detail, want[sk.UserID]) {
			t.Errorf("%s: %s %q, want %q", sk.UserID, sk.Reason, sk.Detail, want[sk.UserID])
		}
	}
	if got := d.Skipped[0].String(); !strings.HasPrefix(got, "ann (id u1): e-mail team@x.com") {
		t.Errorf("Skip.String() = %q", got)
	}
}

func TestDuplicateUserIDs(t *testing.T) {
	s := &directory.Snapshot{Users: []directory.User{user("u1", "ann", "ann@x.com"), user("u1", "bob", "bob@x.com"), user("", "nobody", "n@x.com")}}
	d := Desire(s, mustCompile(t, Config{AgentSource: "t"}))
	if len(d.Agents) != 0 || len(d.Skipped) != 3 {
		t.Fatalf("agents %+v skipped %+v", d.Agents, d.Skipped)
	}
	for _, sk := range d.Skipped {
		if sk.Reason != ReasonInvalid {
			t.Errorf("%+v", sk)
		}
	}
}

func TestUnresolvedSnapshotUsesDirectGroups(t *testing.T) {
	s := &directory.Snapshot{
		Users:  []directory.User{user("u1", "ann", "ann@x.com", "g1")},
		Groups: []directory.Group{{ID: "g1", Name: "agents"}},
	}
	d := Desire(s, mustCompile(t, Config{AgentSource: "t", Scope: ScopeConfig{IncludeGroups: []string{"agents"}}}))
	if len(d.Agents) != 1 {
		t.Fatalf("agents %+v skipped %+v", d.Agents, d.Skipped)
	}
}

func TestFindUser(t *testing.T) {
	s := loadSnapshot(t, "snapshot.json")
	s.Users = append(s.Users, directory.User{ID: "u99", UserName: "Bob@Example.com"})
	for _, q := range []string{"u01", "U01", "ANN", "ann.example@example.com", "ann@old.example.com", "UID=ann, ou=people,dc=example,dc=com"} {
		u, err := FindUser(s, q)
		if err != nil || u.ID != "u01" {
			t.Errorf("FindUser(%q) = %v, %v", q, u, err)
		}
	}
	_, err := FindUser(s, "bob@example.com")
	if !errors.Is(err, ErrAmbiguousUser) || !strings.Contains(err.Error(), "bob (id u02) <bob@example.com>") || !strings.Contains(err.Error(), "Bob@Example.com (id u99)") {
		t.Errorf("ambiguous: %v", err)
	}
	_, err = FindUser(s, "zed")
	if !errors.Is(err, ErrNoUser) || err.Error() != `no user matches "zed" (compared with id, userName, e-mail and DN)` {
		t.Errorf("none: %v", err)
	}
	if _, err := FindUser(s, "  "); !errors.Is(err, ErrNoUser) {
		t.Errorf("empty: %v", err)
	}
}

func TestExplainUnknownUser(t *testing.T) {
	s := loadSnapshot(t, "snapshot.json")
	e := Explain(s, mustCompile(t, Config{AgentSource: "t"}), "nope")
	if e.Found || len(e.Problems) != 1 || !strings.Contains(e.Text(), `the directory has no user with id "nope"`) {
		t.Errorf("%+v\n%s", e, e.Text())
	}
}

func TestDesireDeterministicParallelAndPure(t *testing.T) {
	r := mustCompile(t, realisticConfig())
	s := bigSnapshot(3000, 300, 7)
	before, _ := json.Marshal(s)
	d1 := Desire(s, r)
	after, _ := json.Marshal(s)
	if !bytes.Equal(before, after) {
		t.Fatal("Desire modified the snapshot")
	}
	if len(d1.Agents) < 1000 || len(d1.Skipped) == 0 || len(d1.Tags) < 10 {
		t.Fatalf("unrealistic result: %d agents, %d skipped, %d tags", len(d1.Agents), len(d1.Skipped), len(d1.Tags))
	}

	// same directory read in another order, one worker: same result
	s2 := bigSnapshot(3000, 300, 7)
	for i, j := 0, len(s2.Users)-1; i < j; i, j = i+1, j-1 {
		s2.Users[i], s2.Users[j] = s2.Users[j], s2.Users[i]
	}
	s2.Resolve()
	prev := runtime.GOMAXPROCS(1)
	d2 := Desire(s2, r)
	runtime.GOMAXPROCS(prev)
	j1, _ := json.Marshal(d1)
	j2, _ := json.Marshal(d2)
	if !bytes.Equal(j1, j2) {
		t.Fatal("Desire is not deterministic")
	}

	// Rules are safe for concurrent use
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			j, _ := json.Marshal(Desire(s, r))
			if !bytes.Equal(j, j1) {
				t.Error("concurrent Desire differs")
			}
		})
	}
	wg.Wait()

	// every agent sorted, unique tags, e-mails lower-case, numbers E.164
	for i, a := range d1.Agents {
		if i > 0 && d1.Agents[i-1].SourceID >= a.SourceID {
			t.Fatalf("agents not sorted at %d", i)
		}
		if a.Email != strings.ToLower(a.Email) || !strings.HasPrefix(a.Number, "+49") {
			t.Fatalf("agent %+v", a)
		}
		for k := 1; k < len(a.Tags); k++ {
			if a.Tags[k-1] >= a.Tags[k] {
				t.Fatalf("tags not sorted/unique: %q", a.Tags)
			}
		}
	}
}

func TestCheckEmail(t *testing.T) {
	for _, ok := range []string{"ann@example.com", "ann.o'neil+cc@sub.example.co.uk", "x@localhost"} {
		if p := checkEmail(ok); p != "" {
			t.Errorf("checkEmail(%q) = %q", ok, p)
		}
	}
	for _, bad := range []string{"ann", "@example.com", "ann@", "ann@@x.com", "a b@x.com", "ann@x..com", ".ann@x.com", "ann@x.com.", "<ann@x.com>", "ann@x.com, bob@x.com"} {
		if p := checkEmail(bad); p == "" {
			t.Errorf("checkEmail(%q) accepted", bad)
		}
	}
}

func TestCollapseSpace(t *testing.T) {
	for in, want := range map[string]string{"": "", "Ann": "Ann", " Ann  Example ": "Ann Example", "Ann\tExample": "Ann Example", "Zoë  Ä": "Zoë Ä", "a b": "a b"} {
		if got := collapseSpace(in); got != want {
			t.Errorf("collapseSpace(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDesireEmpty(t *testing.T) {
	r := mustCompile(t, Config{AgentSource: "t"})
	for _, s := range []*directory.Snapshot{nil, {}} {
		d := Desire(s, r)
		j, _ := json.Marshal(d)
		if string(j) != `{"agents":[],"agentGroups":[],"tags":[]}` {
			t.Errorf("empty snapshot: %s", j)
		}
	}
}

func TestConditions(t *testing.T) {
	u := user("u1", "ann", "ann@example.com")
	u.Attributes = map[string][]string{
		"employeetype": {"Employee"},
		"memberof":     {"cn=a", "cn=b"},
		"blank":        {" "},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": {"Support"},
	}
	tests := []struct {
		cond Condition
		want bool
	}{
		{Condition{Attribute: "employeeType", Equals: "employee"}, true},
		{Condition{Attribute: "EMPLOYEETYPE", Equals: "contractor"}, false},
		{Condition{Attribute: "employeeType", NotEquals: "contractor"}, true},
		{Condition{Attribute: "employeeType", NotEquals: "EMPLOYEE"}, false},
		{Condition{Attribute: "missing", NotEquals: "x"}, true},
		{Condition{Attribute: "employeeType", OneOf: []string{"staff", "employee"}}, true},
		{Condition{Attribute: "employeeType", OneOf: []string{"staff"}}, false},
		{Condition{Attribute: "memberOf", Matches: "^cn=b$"}, true},
		{Condition{Attribute: "memberOf", Matches: "^cn=c$"}, false},
		{Condition{Attribute: "memberOf", Present: boolp(true)}, true},
		{Condition{Attribute: "blank", Present: boolp(true)}, false},
		{Condition{Attribute: "missing", Present: boolp(false)}, true},
		{Condition{Attribute: "userName", Equals: "ANN"}, true},
		{Condition{Attribute: "email", Matches: `@example\.com$`}, true},
		{Condition{Attribute: "active", Equals: "true"}, true},
		{Condition{Attribute: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", Equals: "support"}, true},
	}
	for _, tt := range tests {
		c, err := compileCondition("c", tt.cond)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.eval(attrValues(&u, c.attrKey)); got != tt.want {
			t.Errorf("%s: got %v, want %v", c.text, got, tt.want)
		}
	}
}

// TestTemplateRecursionIsAConfigError: a template that calls itself only for some users
// passed the check on an empty user and then cost seconds per person (issue 17).
func TestTemplateRecursionIsAConfigError(t *testing.T) {
	chain := `{{define "a0"}}x{{end}}`
	for i := 1; i <= 11; i++ {
		chain += fmt.Sprintf(`{{define "a%d"}}{{template "a%d"}}{{template "a%d"}}{{end}}`, i, i-1, i-1)
	}
	for _, tt := range []struct{ tmpl, problem string }{
		{`{{define "a"}}{{if .Attr "x"}}{{template "a" .}}{{end}}{{end}}{{template "a" .}}`,
			`template "a" calls itself (a → a): recursion is not allowed`},
		{`{{define "a"}}{{with .Attr "x"}}{{template "b" .}}{{end}}{{end}}{{define "b"}}{{range attrs "y"}}{{template "a"}}{{end}}{{end}}{{template "b" .}}`,
			`template "b" calls itself (b → a → b): recursion is not allowed`},
		{`{{block "a" .}}{{if .Active}}{{template "a" .}}{{end}}{{end}}`, `template "a" calls itself`},
		{`{{if .Active}}{{template "agent.name" .}}{{end}}`, `template "agent.name" calls itself`},
		{`{{if .Active}}{{template "nope" .}}{{end}}`, `template "nope" is called but not defined`},
		{chain + `{{template "a11"}}`, `makes more than 1000 template calls`},
	} {
		_, err := Compile(Config{AgentSource: "x", Agent: AgentConfig{Name: tt.tmpl}})
		if err == nil || !strings.Contains(err.Error(), tt.problem) || !strings.HasPrefix(err.Error(), "agent.name: invalid template") {
			t.Errorf("template %s: error %v, want one with %q", tt.tmpl, err, tt.problem)
		}
	}
	// templates that call others without recursion still work
	rules, err := Compile(Config{AgentSource: "x", Agent: AgentConfig{
		Name: `{{define "n"}}{{.GivenName}} {{.FamilyName}}{{end}}{{define "full"}}{{template "n" .}}{{end}}{{template "full" .}}{{template "full" .}}`,
	}})
	if err != nil {
		t.Fatal(err)
	}
	d := Desire(&directory.Snapshot{Users: []directory.User{{ID: "1", UserName: "ann@example.com", GivenName: "Ann", FamilyName: "Lee", Active: true,
		Emails: []directory.Email{{Value: "ann@example.com", Primary: true}}}}}, rules)
	if len(d.Agents) != 1 || d.Agents[0].Name != "Ann LeeAnn Lee" {
		t.Fatalf("agents %+v, skipped %+v", d.Agents, d.Skipped)
	}
	// a template writing more than it may fails for that person only
	rules, err = Compile(Config{AgentSource: "x", Agent: AgentConfig{Name: `{{range attrs "big"}}{{.}}{{end}}`}})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]string, 100)
	for i := range big {
		big[i] = strings.Repeat("x", 1000)
	}
	d = Desire(&directory.Snapshot{Users: []directory.User{{ID: "1", UserName: "ann@example.com", Active: true,
		Emails: []directory.Email{{Value: "ann@example.com", Primary: true}}, Attributes: map[string][]string{"big": big}}}}, rules)
	if len(d.Agents) != 0 || len(d.Skipped) != 1 || !strings.Contains(d.Skipped[0].Detail, "template writes more than 65536 bytes") {
		t.Fatalf("agents %+v, skipped %+v", d.Agents, d.Skipped)
	}
}

// TestAgentsShareTheirLists: agents with the same tags, agent groups and roles share one copy
// of each list (issue 11: about 10 MB at 100,000 people), and an append to one agent's list
// never reaches another's.
func TestAgentsShareTheirLists(t *testing.T) {
	s := &directory.Snapshot{
		Users: []directory.User{user("u1", "ann", "ann@x.com", "g1", "g2"), user("u2", "bob", "bob@x.com", "g2", "g1"),
			user("u3", "cy", "cy@x.com", "g1")},
		Groups: []directory.Group{{ID: "g1", Name: "skill-german"}, {ID: "g2", Name: "team-support"}},
	}
	s.Resolve()
	d := Desire(s, mustCompile(t, Config{AgentSource: "t", DefaultRoles: []string{"agent"},
		Skills:      []SkillRule{{Selector: Selector{Match: "^skill-(.*)$"}, Tag: "$1"}},
		AgentGroups: []AgentGroupRule{{Selector: Selector{Match: "^team-(.*)$"}, AgentGroup: "$1"}}}))
	if len(d.Agents) != 3 {
		t.Fatalf("agents %+v skipped %+v", d.Agents, d.Skipped)
	}
	ann, bob, cy := d.Agents[0], d.Agents[1], d.Agents[2]
	if !slices.Equal(ann.Tags, []string{"german"}) || !slices.Equal(ann.AgentGroups, []string{"support"}) || !slices.Equal(ann.Roles, []string{"agent"}) {
		t.Fatalf("ann %+v", ann)
	}
	for what, pair := range map[string][2][]string{"tags": {ann.Tags, bob.Tags}, "agent groups": {ann.AgentGroups, bob.AgentGroups}, "roles": {ann.Roles, cy.Roles}} {
		if unsafe.SliceData(pair[0]) != unsafe.SliceData(pair[1]) {
			t.Errorf("%s: the same list is held twice", what)
		}
	}
	if len(cy.AgentGroups) != 0 || cy.AgentGroups == nil {
		t.Errorf("cy's agent groups %#v, want an empty list", cy.AgentGroups)
	}
	grown := append(ann.Tags, "extra")
	grown[0] = "changed"
	if !slices.Equal(bob.Tags, []string{"german"}) {
		t.Errorf("an append to ann's tags reached bob's: %q", bob.Tags)
	}
}
