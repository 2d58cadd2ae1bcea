package mapping

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/babelforce/bridge/directory"
)

func TestAttributesNamesWhatRulesRead(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		want []string
		all  bool
	}{
		{"none", Config{AgentSource: "x", Skills: []SkillRule{{Selector: Selector{Match: "^skill-(.+)$"}, Tag: "$1"}}}, []string{}, false},
		{"every kind of rule", Config{AgentSource: "x",
			Scope:       ScopeConfig{Conditions: []Condition{{Attribute: "employeeType", Equals: "staff"}}},
			Phone:       PhoneConfig{RegionAttribute: " C "},
			Skills:      []SkillRule{{Selector: Selector{Attribute: "preferredLanguage", Match: "^(..)"}, Tag: "$1"}},
			AgentGroups: []AgentGroupRule{{Selector: Selector{Attribute: "department", Match: "^(.+)$"}, AgentGroup: "$1"}},
			Roles:       []RoleRule{{Selector: Selector{Attribute: "title", Match: "^Lead$"}, Role: "supervisor"}},
			ExternalIDs: []ExternalIDRule{{Integration: "a", Attribute: "employeeNumber"}, {Integration: "b", Template: `{{attr "crmId" | trim}}`}},
		}, []string{"c", "crmid", "department", "employeenumber", "employeetype", "preferredlanguage", "title"}, false},
		{"templates with constant names", Config{AgentSource: "x", Agent: AgentConfig{
			Name:   `{{define "n"}}{{.Attr "givenName"}}{{end}}{{template "n" .}} {{with $.Attrs "sn"}}{{index . 0}}{{end}}`,
			Email:  `{{default .Email (attr "mail")}}`,
			Number: `{{range attrs "Mobile"}}{{.}}{{end}}{{if eq (attr "x") "y"}}{{(.).Attr "pager"}}{{end}}`,
		}}, []string{"givenname", "mail", "mobile", "pager", "sn", "x"}, false},
		{"a name known at run time", Config{AgentSource: "x", Agent: AgentConfig{Name: `{{attr .UserName}}`}}, nil, true},
		{"a name piped in", Config{AgentSource: "x", Agent: AgentConfig{Number: `{{"mobile" | attr}}`}}, nil, true},
		{"a computed name", Config{AgentSource: "x", ExternalIDs: []ExternalIDRule{{Integration: "a", Template: `{{.Attr (printf "%s" "id")}}`}}}, nil, true},
		{"in a defined template", Config{AgentSource: "x", Agent: AgentConfig{Name: `{{define "n"}}{{$v := .}}{{$v.Attr (lower "X")}}{{end}}{{template "n" .}}`}}, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Compile(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			names, all := r.Attributes()
			if all != tt.all || (!all && !slices.Equal(names, tt.want)) || (all && names != nil) {
				t.Errorf("Attributes() = %q, %v; want %q, %v", names, all, tt.want, tt.all)
			}
		})
	}
}

// keepOnly returns a copy of s whose users hold only the named attributes (what a source
// narrowed to Rules.Attributes holds).
func keepOnly(s *directory.Snapshot, names []string) *directory.Snapshot {
	out := *s
	out.Users = slices.Clone(s.Users)
	for i := range out.Users {
		u := &out.Users[i]
		kept := map[string][]string{}
		for k, v := range u.Attributes {
			if slices.Contains(names, strings.ToLower(k)) {
				kept[k] = v
			}
		}
		u.Attributes = kept
	}
	return &out
}

// TestNarrowedSnapshotMapsTheSame: for every golden case, a snapshot holding only the
// attributes Rules.Attributes names maps and explains exactly like the whole one, and the
// narrowing does drop attributes (else it would prove nothing).
func TestNarrowedSnapshotMapsTheSame(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join(testdataDir, "*.yaml"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no cases in %s: %v", testdataDir, err)
	}
	dropped := 0
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			c := loadCase(t, path)
			rules, err := Compile(c.Mapping)
			if err != nil {
				t.Fatal(err)
			}
			names, all := rules.Attributes()
			if all {
				t.Fatalf("a golden case reads every attribute: pick constant names")
			}
			s := loadSnapshot(t, c.Snapshot)
			n := keepOnly(s, names)
			for i := range s.Users {
				dropped += len(s.Users[i].Attributes) - len(n.Users[i].Attributes)
			}
			want, _ := json.Marshal(Desire(s, rules))
			got, _ := json.Marshal(Desire(n, rules))
			if string(got) != string(want) {
				t.Errorf("narrowed to %q, Desire differs:\n%s", names, lineDiff(string(want), string(got)))
			}
			for _, id := range c.Explain {
				if w, g := Explain(s, rules, id), Explain(n, rules, id); !reflect.DeepEqual(w, g) {
					t.Errorf("narrowed to %q, explain %s differs:\n%+v\n%+v", names, id, w, g)
				}
			}
		})
	}
	if dropped == 0 {
		t.Error("no golden case drops an attribute")
	}
}

// TestNarrowingDropsWhatRulesDoNotRead: the other side: an attribute no rule names is not
// kept, so a rule that read it without naming it would map differently. Here a template
// reading "department" by a name known only at run time makes Attributes ask for all.
func TestNarrowingDropsWhatRulesDoNotRead(t *testing.T) {
	u := user("u1", "ann", "ann@example.com")
	u.Attributes = map[string][]string{"department": {"Sales"}, "title": {"Lead"}}
	s := &directory.Snapshot{Users: []directory.User{u}}
	s.Resolve()
	rules, err := Compile(Config{AgentSource: "x", Agent: AgentConfig{Name: `{{attr "title"}}`}})
	if err != nil {
		t.Fatal(err)
	}
	names, _ := rules.Attributes()
	n := keepOnly(s, names)
	if got := slices.Sorted(maps.Keys(n.Users[0].Attributes)); !slices.Equal(got, []string{"title"}) {
		t.Fatalf("kept %q, want [title]", got)
	}
	if d := Desire(n, rules); len(d.Agents) != 1 || d.Agents[0].Name != "Lead" {
		t.Fatalf("narrowed: %+v %+v", d.Agents, d.Skipped)
	}
	dyn, err := Compile(Config{AgentSource: "x", Agent: AgentConfig{Name: `{{attr (printf "%s" "department")}}`}})
	if err != nil {
		t.Fatal(err)
	}
	if d := Desire(keepOnly(s, names), dyn); len(d.Agents) == 1 && d.Agents[0].Name == "Sales" {
		t.Fatalf("a snapshot narrowed for other rules still had department: %+v", d.Agents)
	}
	if _, all := dyn.Attributes(); !all {
		t.Fatal("a name known only at run time must ask for every attribute")
	}
	if d := Desire(s, dyn); len(d.Agents) != 1 || d.Agents[0].Name != "Sales" {
		t.Fatalf("whole: %+v %+v", d.Agents, d.Skipped)
	}
}

// TestPhoneMemoFillsFromTheSecondDesire: a one-shot command maps once and keeps no number
// (issue 11: about 16 MB at 100,000 people until the end of the run); bridge serve maps again
// and then remembers them. The results never differ.
func TestPhoneMemoFillsFromTheSecondDesire(t *testing.T) {
	rules, err := Compile(Config{AgentSource: "x", Phone: PhoneConfig{DefaultRegion: "DE"}})
	if err != nil {
		t.Fatal(err)
	}
	var s directory.Snapshot
	for i, n := range []string{"030 1234567", "+49 171 2345678"} {
		u := user(strconv.Itoa(i), "u"+strconv.Itoa(i), "u"+strconv.Itoa(i)+"@example.com")
		u.Phones = []directory.Phone{{Value: n, Primary: true}}
		s.Users = append(s.Users, u)
	}
	s.Resolve()
	first, _ := json.Marshal(Desire(&s, rules))
	if n := len(rules.phoneCache); n != 0 {
		t.Fatalf("after the first Desire the memo holds %d numbers, want none", n)
	}
	second, _ := json.Marshal(Desire(&s, rules))
	if n := len(rules.phoneCache); n != 2 {
		t.Fatalf("after the second Desire the memo holds %d numbers, want 2", n)
	}
	third, _ := json.Marshal(Desire(&s, rules))
	if string(first) != string(second) || string(second) != string(third) || !strings.Contains(string(first), "+49301234567") {
		t.Fatalf("results differ or lack the number:\n%s\n%s\n%s", first, second, third)
	}
}
