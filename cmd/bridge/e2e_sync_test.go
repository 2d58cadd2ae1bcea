package main

// End-to-end tests of the sync path through the CLI (`bridge sync|plan|provision|explain`)
// against a real OpenLDAP slapd and the babelforce simulator: the acceptance checks of issue 4.

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/internal/testenv"
)

const e2eSuffix = "dc=example,dc=com"

// e2ePerson is one person of the seed directory.
type e2ePerson struct {
	uid, given, family string
	phone              string // as the directory holds it
	e164               string // what babelforce should get
	groups             []string
}

func (p e2ePerson) dn() string       { return "uid=" + p.uid + ",ou=people," + e2eSuffix }
func (p e2ePerson) email() string    { return p.uid + "@example.com" }
func (p e2ePerson) name() string     { return p.given + " " + p.family }
func (p e2ePerson) inScope() bool    { return p.team() != "" }
func (p e2ePerson) supervisor() bool { return slices.Contains(p.groups, "supervisors") }
func (p e2ePerson) in(g string) bool { return slices.Contains(p.groups, g) }
func groupDN(name string) string     { return "cn=" + name + ",ou=groups," + e2eSuffix }
func (p e2ePerson) skills() []string { // the tags the mapping should give
	var tags []string
	for _, g := range p.groups {
		if s, ok := strings.CutPrefix(g, "skill-"); ok {
			tags = append(tags, s)
		}
	}
	sort.Strings(tags)
	return tags
}

func (p e2ePerson) team() string {
	for _, g := range p.groups {
		if t, ok := strings.CutPrefix(g, "team-"); ok {
			return t
		}
	}
	return ""
}

func (p e2ePerson) roles() []string {
	if p.supervisor() {
		return []string{"reporter", "supervisor"}
	}
	return []string{"agent"}
}

// e2ePeople is the seed: 20 people of a contact centre, 18 of them in the team groups that
// babelforce-agents nests (so in scope), 2 IT admins outside it. Phones come in national and
// international spellings; all are Berlin numbers.
func e2ePeople() []e2ePerson {
	type row struct {
		uid, given, family string
		groups             string
	}
	rows := []row{
		{"anna.schmidt", "Anna", "Schmidt", "team-support skill-english skill-german"},
		{"ben.mueller", "Ben", "Mueller", "team-support skill-german"},
		{"clara.weber", "Clara", "Weber", "team-support skill-english skill-billing"},
		{"david.okafor", "David", "Okafor", "team-sales skill-english"},
		{"elif.yilmaz", "Elif", "Yilmaz", "team-sales skill-german skill-french"},
		{"finn.becker", "Finn", "Becker", "team-sales"},
		{"greta.hoffmann", "Greta", "Hoffmann", "team-support supervisors skill-german"},
		{"hassan.haddad", "Hassan", "Haddad", "team-sales supervisors"},
		{"ines.kowalski", "Ines", "Kowalski", "team-support skill-billing"},
		{"jonas.wagner", "Jonas", "Wagner", "team-sales skill-english"},
		{"karl.fischer", "Karl", "Fischer", "team-support skill-english skill-french"},
		{"lena.braun", "Lena", "Braun", "team-support skill-german"},
		{"marta.nowak", "Marta", "Nowak", "team-sales skill-english skill-billing"},
		{"nils.koch", "Nils", "Koch", "team-sales skill-german"},
		{"olga.petrova", "Olga", "Petrova", "team-support skill-english"},
		{"paul.richter", "Paul", "Richter", "team-sales skill-french"},
		{"quinn.adams", "Quinn", "Adams", "team-support"},
		{"rosa.lange", "Rosa", "Lange", "team-sales skill-english skill-german"},
		{"sven.it", "Sven", "Admin", "it-admins"},
		{"tara.it", "Tara", "Admin", "it-admins"},
	}
	out := make([]e2ePerson, len(rows))
	for i, r := range rows {
		n := i + 1
		phone := fmt.Sprintf("030 123456%02d", n) // national: read in the default region DE
		if n%2 == 0 {
			phone = fmt.Sprintf("+49 30 123456%02d", n)
		}
		out[i] = e2ePerson{
			uid: r.uid, given: r.given, family: r.family,
			phone: phone, e164: fmt.Sprintf("+4930123456%02d", n),
			groups: strings.Fields(r.groups),
		}
	}
	return out
}

// e2eSeedLDIF renders people as OpenLDAP LDIF: OUs people, groups and empty (an OU with nobody,
// for the empty-directory guard), inetOrgPerson entries and groupOfNames groups; the group
// babelforce-agents holds the two team groups (nested membership).
func e2eSeedLDIF(people []e2ePerson) string {
	var b strings.Builder
	for _, ou := range []string{"people", "groups", "empty"} {
		fmt.Fprintf(&b, "dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n", ou, e2eSuffix, ou)
	}
	members := map[string][]string{}
	for _, p := range people {
		fmt.Fprintf(&b, "dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\ngivenName: %s\nsn: %s\ndisplayName: %s\nmail: %s\ntelephoneNumber: %s\n\n",
			p.dn(), p.uid, p.name(), p.given, p.family, p.name(), p.email(), p.phone)
		for _, g := range p.groups {
			members[g] = append(members[g], p.dn())
		}
	}
	members["babelforce-agents"] = []string{groupDN("team-support"), groupDN("team-sales")}
	names := make([]string, 0, len(members))
	for g := range members {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		fmt.Fprintf(&b, "dn: %s\nobjectClass: groupOfNames\ncn: %s\n", groupDN(g), g)
		for _, m := range members[g] {
			fmt.Fprintf(&b, "member: %s\n", m)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// e2eConfigYAML is the configuration of the tests: LDAP (openldap preset) with small pages,
// scope by the nested group babelforce-agents, skills by regex, agent groups from the team
// groups, supervisor roles, numbers in E.164 from region DE, a state file, and the guard
// given (max_destructive, max_destructive_percent). extraSync is appended to the sync section.
func e2eConfigYAML(ldapURL, stateFile string, guardMax int, guardPercent float64, extraSync string) string {
	return fmt.Sprintf(`babelforce:
  base_url: http://127.0.0.1:1   # BRIDGE_BABELFORCE_BASE_URL points it at the simulator
  username: nobody@example.com
  rate_limit: 0
  max_attempts: 2
  timeout: 10s

directory:
  type: ldap
  ldap:
    urls: [%[1]q]
    preset: openldap
    user_base_dn: ou=people,%[6]s
    group_base_dn: ou=groups,%[6]s
    page_size: 5
    search_timeout: 20s
    dial_timeout: 5s

mapping:
  agent_source: "bridge:e2e"
  scope:
    include_groups: [babelforce-agents]
  phone:
    default_region: DE
  skills:
    - {match: "^skill-(.+)$", tag: "$1", lowercase: true}
  agent_groups:
    - {match: "^team-(.+)$", agent_group: "$1"}
  roles:
    - {group: supervisors, roles: [supervisor, reporter]}
  default_roles: [agent]

sync:
  state_file: %[2]q
  concurrency: 4
  guard:
    max_destructive: %[3]d
    max_destructive_percent: %[4]g
%[5]s
log:
  level: warn
  format: text
`, ldapURL, stateFile, guardMax, guardPercent, extraSync, e2eSuffix)
}

// e2eFixture is one slapd seeded with people, one simulator and a configuration between them.
type e2eFixture struct {
	people []e2ePerson
	slapd  *testenv.Slapd
	sim    *babelforcetest.Server
	config string
	env    map[string]string
}

type e2eOptions struct {
	guardMax     int     // default 10
	guardPercent float64 // default 10
	extraSync    string  // extra YAML lines under sync: (indented two spaces)
	ldapURL      string  // default the slapd's URL
}

func newE2E(t *testing.T, o e2eOptions) *e2eFixture {
	t.Helper()
	testenv.Need(t, "slapd", "slapadd")
	people := e2ePeople()
	s := testenv.StartSlapd(t, testenv.SlapdOptions{SeedLDIF: e2eSeedLDIF(people)})
	return newE2EWith(t, s, people, o)
}

// newE2EWith builds the fixture around a running slapd (o.ldapURL may point at a proxy).
func newE2EWith(t *testing.T, s *testenv.Slapd, people []e2ePerson, o e2eOptions) *e2eFixture {
	t.Helper()
	if o.guardMax == 0 {
		o.guardMax = 10
	}
	if o.guardPercent == 0 {
		o.guardPercent = 10
	}
	if o.ldapURL == "" {
		o.ldapURL = s.URL
	}
	sim := babelforcetest.New(t, babelforcetest.Options{})
	state := t.TempDir() + "/state.json"
	cfg := writeConfig(t, e2eConfigYAML(o.ldapURL, state, o.guardMax, o.guardPercent, o.extraSync))
	return &e2eFixture{people: people, slapd: s, sim: sim, config: cfg, env: mergeEnv(babelforceSimEnv(sim), slapdEnv(s))}
}

// cli runs bridge COMMAND --config F ARGS... with the fixture's environment.
func (f *e2eFixture) cli(t *testing.T, command string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCLI(t, f.env, append([]string{command, "--config", f.config}, args...)...)
}

// mustSync runs bridge sync and requires exit 0.
func (f *e2eFixture) mustSync(t *testing.T) string {
	t.Helper()
	out, errOut, code := f.cli(t, "sync")
	require.Equal(t, exitOK, code, "bridge sync\nstdout:\n%s\nstderr:\n%s", out, errOut)
	return out
}

func (f *e2eFixture) person(uid string) e2ePerson {
	for _, p := range f.people {
		if p.uid == uid {
			return p
		}
	}
	panic("no person " + uid)
}

func (f *e2eFixture) inScope() []e2ePerson {
	var out []e2ePerson
	for _, p := range f.people {
		if p.inScope() {
			out = append(out, p)
		}
	}
	return out
}

// agentsByEmail returns the simulator's agents keyed by e-mail.
func agentsByEmail(sim *babelforcetest.Server) map[string]babelforce.Agent {
	out := map[string]babelforce.Agent{}
	for _, a := range sim.Agents() {
		out[strings.ToLower(a.Email)] = a
	}
	return out
}

// scimUsersByName returns the simulator's login users keyed by userName (the e-mail).
func scimUsersByName(sim *babelforcetest.Server) map[string]babelforce.SCIMUser {
	out := map[string]babelforce.SCIMUser{}
	for _, u := range sim.SCIMUsers() {
		out[u.UserName] = u
	}
	return out
}

func groupNames(a babelforce.Agent) []string {
	var out []string
	for _, g := range a.Groups {
		out = append(out, g.Name)
	}
	sort.Strings(out)
	return out
}

func scimRoleValues(u babelforce.SCIMUser) []string {
	var out []string
	for _, r := range u.Roles {
		out = append(out, r.Value)
	}
	sort.Strings(out)
	return out
}

func sortedTags(a babelforce.Agent) []string {
	out := slices.Clone(a.Tags)
	sort.Strings(out)
	return out
}

// assertMirrors checks that babelforce holds every in-scope person as an enabled agent owned by
// bridge and an active login user, with the right fields, and nobody else.
func (f *e2eFixture) assertMirrors(t *testing.T) {
	t.Helper()
	agents := agentsByEmail(f.sim)
	users := scimUsersByName(f.sim)
	want := f.inScope()
	assert.Len(t, agents, len(want), "agents in babelforce")
	assert.Len(t, users, len(want), "login users in babelforce")
	for _, p := range f.people {
		a, ok := agents[p.email()]
		u, uok := users[p.email()]
		if !p.inScope() {
			assert.False(t, ok, "%s is out of scope but has an agent", p.uid)
			assert.False(t, uok, "%s is out of scope but has a login user", p.uid)
			continue
		}
		if !assert.True(t, ok, "no agent for %s", p.uid) {
			continue
		}
		assert.Equal(t, p.name(), a.Name, "name of %s", p.uid)
		assert.Equal(t, p.e164, a.Number, "number of %s", p.uid)
		assert.True(t, a.IsEnabled(), "%s enabled", p.uid)
		assert.Equal(t, "bridge:e2e", a.AgentSource, "agentSource of %s", p.uid)
		assert.NotEmpty(t, a.SourceID, "sourceId of %s", p.uid)
		assert.Equal(t, p.skills(), nilIfEmpty(sortedTags(a)), "tags of %s", p.uid)
		assert.Equal(t, []string{p.team()}, groupNames(a), "agent groups of %s", p.uid)
		if assert.True(t, uok, "no login user for %s", p.uid) {
			assert.Equal(t, a.SourceID, u.ExternalID, "login user externalId of %s is the directory id", p.uid)
			assert.True(t, u.IsActive(), "login user of %s active", p.uid)
			assert.Equal(t, p.roles(), scimRoleValues(u), "roles of %s", p.uid)
		}
	}
	var groups []string
	for _, g := range f.sim.AgentGroups() {
		groups = append(groups, g.Name)
	}
	sort.Strings(groups)
	assert.Equal(t, []string{"sales", "support"}, groups, "agent groups in babelforce")
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// TestE2ESyncLifecycle: the first sync mirrors the directory, the second writes nothing, and
// after a rename, a skill move and a leaver the plan shows exactly those and the sync makes
// exactly the minimal writes.
func TestE2ESyncLifecycle(t *testing.T) {
	f := newE2E(t, e2eOptions{})
	sim := f.sim

	// 1. first sync: everyone in scope becomes an agent and a login user.
	out := f.mustSync(t)
	t.Logf("first sync: %d write calls: %v", sim.WriteCalls(), writesOf(sim.Calls()))
	t.Logf("first sync report:\n%s", out)
	f.assertMirrors(t)
	if t.Failed() {
		t.FailNow()
	}

	// 2. the second sync writes nothing, and the plan says so.
	sim.ResetCalls()
	out = f.mustSync(t)
	assert.Zero(t, sim.WriteCalls(), "second sync wrote: %v\n%s", writesOf(sim.Calls()), out)
	t.Logf("second sync: %d calls (reads only): %v", sim.TotalCalls(), sim.Calls())
	plan, errOut, code := f.cli(t, "plan")
	require.Equal(t, exitOK, code, "plan: %s", errOut)
	assert.Contains(t, plan, "No changes")
	assert.Zero(t, sim.WriteCalls())
}
