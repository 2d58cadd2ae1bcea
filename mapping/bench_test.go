package mapping

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/babelforce/bridge/directory"
)

// bigSnapshot makes a directory of n users for determinism and speed tests.
func bigSnapshot(n, ngroups int, seed uint64) *directory.Snapshot {
	rng := rand.New(rand.NewPCG(seed, 1))
	var groups []directory.Group
	groups = append(groups, directory.Group{ID: "g-agents", Name: "babelforce-agents", DN: "cn=babelforce-agents,ou=groups,dc=example,dc=com"})
	groups = append(groups, directory.Group{ID: "g-contractors", Name: "contractors"})
	teams := 0
	for i := 0; len(groups) < ngroups; i++ {
		var g directory.Group
		switch i % 10 {
		case 0, 1:
			g = directory.Group{ID: "gt" + itoa(i), Name: "team-" + itoa(i)}
			groups[0].MemberGroups = append(groups[0].MemberGroups, g.ID)
			teams++
		case 2, 3, 4:
			g = directory.Group{ID: "gs" + itoa(i), Name: "skill-Lang" + itoa(i)}
		case 5:
			g = directory.Group{ID: "gr" + itoa(i), Name: []string{"bf-role-supervisor", "bf-role-reporter", "bf-role-sales"}[i%3]}
		default:
			g = directory.Group{ID: "gd" + itoa(i), Name: "dept-" + itoa(i), DN: "cn=dept-" + itoa(i) + ",ou=groups,dc=example,dc=com"}
		}
		groups = append(groups, g)
	}
	users := make([]directory.User, n)
	for i := range users {
		id := "00000000-0000-4000-8000-" + pad(i)
		u := directory.User{
			ID: id, UserName: "user" + itoa(i), DN: "uid=user" + itoa(i) + ",ou=people,dc=example,dc=com",
			GivenName: "Given" + itoa(i), FamilyName: "Family" + itoa(i), Active: i%50 != 0,
			Emails:     []directory.Email{{Value: "User" + itoa(i) + "@Example.com", Primary: true}},
			Phones:     []directory.Phone{{Value: "030 " + itoa(1000000+i), Type: "work"}},
			Attributes: map[string][]string{"employeetype": {"employee"}, "employeenumber": {itoa(10000 + i)}, "preferredlanguage": {[]string{"de-DE", "en-GB", "fr-FR"}[i%3]}},
		}
		if i%7 == 0 {
			u.DisplayName = "Display " + itoa(i)
		}
		if i%97 == 0 {
			u.Attributes["employeetype"] = []string{"contractor"}
		}
		for range 6 {
			u.Groups = append(u.Groups, groups[2+rng.IntN(len(groups)-2)].ID)
		}
		if i%200 == 0 {
			u.Groups = append(u.Groups, "g-contractors")
		}
		users[i] = u
	}
	// shuffle so that Resolve's sorting is exercised
	rng.Shuffle(len(users), func(i, j int) { users[i], users[j] = users[j], users[i] })
	return snap(users, groups)
}

func itoa(i int) string { return strconv.Itoa(i) }

func pad(i int) string { return fmt.Sprintf("%012d", i) }

func realisticConfig() Config {
	return Config{
		AgentSource: "bridge:ldap",
		Scope: ScopeConfig{
			IncludeGroups: []string{"babelforce-agents"},
			ExcludeGroups: []string{"contractors"},
			Conditions:    []Condition{{Attribute: "employeeType", NotEquals: "contractor"}},
		},
		Phone: PhoneConfig{DefaultRegion: "DE"},
		Skills: []SkillRule{
			{Selector: Selector{Match: "^skill-(.+)$", Lowercase: true}, Tag: "$1"},
			{Selector: Selector{Attribute: "preferredLanguage", Match: "^([a-z]{2})"}, Tag: "lang-$1"},
		},
		StaticTags:  []string{"bridge"},
		AgentGroups: []AgentGroupRule{{Selector: Selector{Match: "^team-(.+)$"}, AgentGroup: "Team ${1}"}},
		Roles: []RoleRule{
			{Selector: Selector{Match: "^bf-role-(.+)$"}, Role: "$1"},
		},
		ExternalIDs: []ExternalIDRule{{Integration: "zendesk", Attribute: "employeeNumber"}},
	}
}

// BenchmarkDesire100k maps a directory of 100k users in 2k groups (teams nested in the
// include group, skill and role groups matched by regular expressions, six memberships per
// user) with realistic rules, as a periodic reconcile does: the same Rules run after run, so
// phone numbers come from the memo. Building and resolving the snapshot is not measured.
func BenchmarkDesire100k(b *testing.B) {
	r := mustCompile(b, realisticConfig())
	s := bigSnapshot(100000, 2000, 1)
	Desire(s, r)
	b.ReportAllocs()
	b.ResetTimer()
	var d *Desired
	for b.Loop() {
		d = Desire(s, r)
	}
	b.ReportMetric(float64(len(d.Agents)), "agents")
}

// BenchmarkDesire100kCold is the first run after start: every phone number goes through
// libphonenumber.
func BenchmarkDesire100kCold(b *testing.B) {
	cfg := realisticConfig()
	s := bigSnapshot(100000, 2000, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		r := mustCompile(b, cfg)
		b.StartTimer()
		Desire(s, r)
	}
}
