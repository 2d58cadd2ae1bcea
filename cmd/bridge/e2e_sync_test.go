package main

// End-to-end tests of the sync path through the CLI (`bridge sync|plan|provision|explain`)
// against a real OpenLDAP slapd and the babelforce simulator: the acceptance checks of issue 4.

import (
	"encoding/json"
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
	state  string
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
	sim := babelforcetest.New(t, babelforcetest.Options{})
	f := &e2eFixture{people: people, slapd: s, sim: sim, state: t.TempDir() + "/state.json", env: mergeEnv(babelforceSimEnv(sim), slapdEnv(s))}
	f.config = f.configFor(t, o)
	return f
}

// configFor writes a configuration for the fixture's simulator and state file with o's
// settings (defaults as newE2EWith's).
func (f *e2eFixture) configFor(t *testing.T, o e2eOptions) string {
	t.Helper()
	if o.guardMax == 0 {
		o.guardMax = 10
	}
	if o.guardPercent == 0 {
		o.guardPercent = 10
	}
	if o.ldapURL == "" {
		o.ldapURL = f.slapd.URL
	}
	return writeConfig(t, e2eConfigYAML(o.ldapURL, f.state, o.guardMax, o.guardPercent, o.extraSync))
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
	if t.Failed() {
		t.FailNow()
	}

	// 3. a rename, a skill move and a leaver.
	before := agentsByEmail(sim)
	usersBefore := scimUsersByName(sim)
	anna, david, finn := f.person("anna.schmidt"), f.person("david.okafor"), f.person("finn.becker")
	admin := ldapAdmin(t, f.slapd)
	ldapReplace(t, admin, anna.dn(), map[string][]string{
		"givenName": {"Annabel"}, "cn": {"Annabel Schmidt"}, "displayName": {"Annabel Schmidt"},
	})
	ldapMembers(t, admin, groupDN("skill-english"), nil, []string{david.dn()})
	ldapMembers(t, admin, groupDN("skill-german"), []string{david.dn()}, nil)
	ldapDelete(t, admin, finn.dn()) // its member values stay behind in the groups, as often in real directories

	sim.ResetCalls()
	plan, errOut, code = f.cli(t, "plan")
	require.Equal(t, exitOK, code, "plan: %s", errOut)
	t.Logf("plan after the changes:\n%s", plan)
	assert.Zero(t, sim.WriteCalls(), "plan wrote")
	for _, want := range [][]string{
		{"~ update agent anna.schmidt@example.com", `"Anna Schmidt" → "Annabel Schmidt"`},
		{"+ add tag german to david.okafor@example.com"},
		{"- remove tag english from david.okafor@example.com"},
		{"- disable agent finn.becker@example.com", "(left directory)"},
		{"- deactivate login user finn.becker@example.com"},
		{"Plan: 0 to create, 2 to update, 1 to disable, 0 to delete"},
	} {
		_, err := lineWith(plan, want...)
		assert.NoError(t, err, "plan should show %q", want)
	}
	changeLines := 0
	for _, line := range strings.Split(plan, "\n") {
		if strings.HasPrefix(line, "+ ") || strings.HasPrefix(line, "- ") || strings.HasPrefix(line, "~ ") {
			changeLines++
		}
	}

	sim.ResetCalls()
	out, errOut, code = f.cli(t, "sync", "--dry-run")
	require.Equal(t, exitOK, code, "sync --dry-run: %s", errOut)
	assert.Contains(t, out, "dry run")
	assert.Contains(t, out, "Plan: 0 to create, 2 to update, 1 to disable")
	// explain someone who left: found by e-mail among bridge's agents, with the next run's changes.
	out, errOut, code = f.cli(t, "explain", finn.email())
	require.Equal(t, exitOK, code, "explain %s: %s", finn.email(), errOut)
	assert.Contains(t, out, "not found")
	_, err := lineWith(out, "agent "+before[finn.email()].ID, "enabled true", "owned by bridge")
	assert.NoError(t, err, "explain %s:\n%s", finn.email(), out)
	assert.Contains(t, out, "- disable agent finn.becker@example.com  (left directory)")
	// provisioning someone out of scope does nothing.
	out, errOut, code = f.cli(t, "provision", "sven.it")
	require.Equal(t, exitOK, code, "provision sven.it: %s", errOut)
	assert.Contains(t, out, "1 out of scope")
	assert.Zero(t, sim.WriteCalls(), "dry run, explain and an out-of-scope provision wrote: %v", writesOf(sim.Calls()))

	sim.ResetCalls()
	out = f.mustSync(t)
	t.Logf("third sync: %d write calls: %v\n%s", sim.WriteCalls(), writesOf(sim.Calls()), out)
	assert.Equal(t, 6, changeLines, "the plan should hold exactly six changes")
	assert.Equal(t, map[string]int{
		"PUT /api/v2/agents/{id}":         2, // anna's name; david's tag list (one update per agent)
		"PUT /api/v2/agents/{id}/disable": 1, // finn left
		"PUT /auth/scim/v2/Users/{id}":    1, // anna's login user display name
		"PATCH /auth/scim/v2/Users/{id}":  1, // finn's login user deactivated
	}, writesOf(sim.Calls()), "the third sync should make exactly the minimal writes")
	assert.Equal(t, 5, sim.WriteCalls())

	after := agentsByEmail(sim)
	usersAfter := scimUsersByName(sim)
	assert.Len(t, after, len(before), "no agent created or deleted")
	if a, ok := after[anna.email()]; assert.True(t, ok) {
		assert.Equal(t, before[anna.email()].ID, a.ID, "anna keeps her agent")
		assert.Equal(t, "Annabel Schmidt", a.Name)
		assert.Equal(t, anna.skills(), sortedTags(a), "anna's tags are untouched")
	}
	assert.Equal(t, "Annabel Schmidt", usersAfter[anna.email()].DisplayName, "anna's login user renamed")
	if a, ok := after[david.email()]; assert.True(t, ok) {
		assert.Equal(t, []string{"german"}, sortedTags(a), "david moved from skill-english to skill-german")
		assert.Equal(t, david.name(), a.Name)
	}
	if a, ok := after[finn.email()]; assert.True(t, ok, "finn's agent must be disabled, not deleted") {
		assert.Equal(t, before[finn.email()].ID, a.ID)
		assert.False(t, a.IsEnabled(), "finn's agent is disabled")
		assert.Equal(t, before[finn.email()].SourceID, a.SourceID, "finn's agent stays bridge's")
	}
	if u, ok := usersAfter[finn.email()]; assert.True(t, ok, "finn's login user is deactivated, not deleted") {
		assert.False(t, u.IsActive(), "finn's login user is inactive")
	}
	for email, a := range after {
		if email == anna.email() || email == david.email() || email == finn.email() {
			continue
		}
		assert.Equal(t, before[email], a, "agent %s must not change", email)
		assert.Equal(t, usersBefore[email], usersAfter[email], "login user %s must not change", email)
	}

	// 4. and converged again: the next sync writes nothing.
	sim.ResetCalls()
	out = f.mustSync(t)
	assert.Zero(t, sim.WriteCalls(), "fourth sync wrote: %v\n%s", writesOf(sim.Calls()), out)

	// 5. finn is hired again (a new entry, so a new entryUUID, with the same e-mail) and quinn
	// moves from the support team to sales.
	quinn := f.person("quinn.adams")
	ldapAdd(t, admin, finn.dn(), map[string][]string{
		"objectClass": {"inetOrgPerson"}, "uid": {finn.uid}, "cn": {finn.name()}, "sn": {finn.family},
		"givenName": {finn.given}, "displayName": {finn.name()}, "mail": {finn.email()}, "telephoneNumber": {finn.phone},
	})
	ldapMembers(t, admin, groupDN("team-support"), nil, []string{quinn.dn()})
	ldapMembers(t, admin, groupDN("team-sales"), []string{quinn.dn()}, nil)
	plan, errOut, code = f.cli(t, "plan")
	require.Equal(t, exitOK, code, "plan: %s", errOut)
	t.Logf("plan after re-hire and team move:\n%s", plan)
	for _, want := range []string{
		"- remove quinn.adams@example.com from agent group support",
		"+ add quinn.adams@example.com to agent group sales",
		"~ enable agent finn.becker@example.com",
	} {
		assert.Contains(t, plan, want)
	}
	sim.ResetCalls()
	out = f.mustSync(t)
	t.Logf("fifth sync: %d write calls: %v\n%s", sim.WriteCalls(), writesOf(sim.Calls()), out)
	assert.Equal(t, map[string]int{
		"DELETE /api/v2/agents/groups/{groupId}/agents/{agentId}": 1, // quinn leaves support
		"POST /api/v2/agents/groups/{groupId}/agents":             1, // and joins sales
		"PUT /api/v2/agents/{id}":                                 1, // finn's old agent takes his new directory id
		"PUT /api/v2/agents/{id}/enable":                          1, // and is enabled again
		"PUT /auth/scim/v2/Users/{id}":                            1, // finn's login user: new externalId, active
	}, writesOf(sim.Calls()), "the fifth sync should make exactly the minimal writes (no agent or login user created)")
	after = agentsByEmail(sim)
	usersAfter = scimUsersByName(sim)
	if a, ok := after[finn.email()]; assert.True(t, ok) {
		assert.Equal(t, before[finn.email()].ID, a.ID, "finn gets his old agent back")
		assert.True(t, a.IsEnabled(), "finn's agent enabled again")
		assert.NotEqual(t, before[finn.email()].SourceID, a.SourceID, "the agent follows finn's new directory id")
		u := usersAfter[finn.email()]
		assert.True(t, u.IsActive(), "finn's login user active again")
		assert.Equal(t, a.SourceID, u.ExternalID)
	}
	assert.Equal(t, []string{"sales"}, groupNames(after[quinn.email()]))
	assert.Len(t, after, len(f.inScope()))
	sim.ResetCalls()
	out = f.mustSync(t)
	assert.Zero(t, sim.WriteCalls(), "sixth sync wrote: %v\n%s", writesOf(sim.Calls()), out)
}

// assertAllEnabled checks that every agent and login user in the simulator is still enabled.
func assertAllEnabled(t *testing.T, sim *babelforcetest.Server) {
	t.Helper()
	for _, a := range sim.Agents() {
		assert.True(t, a.IsEnabled(), "agent %s was disabled", a.Email)
	}
	for _, u := range sim.SCIMUsers() {
		assert.True(t, u.IsActive(), "login user %s was deactivated", u.UserName)
	}
}

// TestE2EGuardEmptyDirectory: a read that finds nobody (the user base points at an empty OU,
// as after a botched OU move) must not disable anyone: exit 2, nothing written, and the
// output says which guard refused.
func TestE2EGuardEmptyDirectory(t *testing.T) {
	f := newE2E(t, e2eOptions{})
	f.mustSync(t)
	f.env["BRIDGE_LDAP_USER_BASE_DN"] = "ou=empty," + e2eSuffix

	f.sim.ResetCalls()
	out, errOut, code := f.cli(t, "sync")
	assert.Equal(t, exitRefused, code, "sync of an empty directory\nstdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Zero(t, f.sim.WriteCalls(), "sync of an empty directory wrote: %v", writesOf(f.sim.Calls()))
	assert.Contains(t, errOut, "refused by guard")
	assert.Contains(t, errOut, "the directory read returned no users")
	assert.Contains(t, out, "Refused by guard")
	assertAllEnabled(t, f.sim)

	plan, errOut, code := f.cli(t, "plan")
	assert.Equal(t, exitRefused, code, "plan of an empty directory: %s", errOut)
	assert.Contains(t, plan, "Refused by guard (these changes are NOT applied)")
	assert.Contains(t, plan, "the directory read returned no users")
	assert.Contains(t, plan, "# - disable agent anna.schmidt@example.com  (left directory)")
	assert.Contains(t, plan, "36 changes held back by guard")
	assert.NotContains(t, plan, "No changes", "a plan with changes held back must not claim babelforce matches the directory")
	assert.Zero(t, f.sim.WriteCalls())
}

// TestE2EGuardShrink: a directory that lost a third of its people, more than guard
// max_destructive 2 / 10 % allows, is refused (exit 2, nothing disabled); --force applies it.
func TestE2EGuardShrink(t *testing.T) {
	f := newE2E(t, e2eOptions{guardMax: 2, guardPercent: 10})
	f.mustSync(t)
	before := agentsByEmail(f.sim)
	admin := ldapAdmin(t, f.slapd)
	gone := map[string]bool{}
	for _, p := range f.inScope()[:6] { // 6 of 18
		ldapDelete(t, admin, p.dn())
		gone[p.email()] = true
	}

	f.sim.ResetCalls()
	out, errOut, code := f.cli(t, "sync")
	assert.Equal(t, exitRefused, code, "sync of a shrunk directory\nstdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Zero(t, f.sim.WriteCalls(), "refused sync wrote: %v", writesOf(f.sim.Calls()))
	assert.Contains(t, errOut, "refused by guard: 6 people would be disabled, deleted or deactivated, or lose skills, agent groups or roles (33.3% of the 18 agents bridge owns)")
	assert.Contains(t, errOut, "guard.max_destructive (2)")
	assert.Contains(t, errOut, "--force")
	assertAllEnabled(t, f.sim)

	f.sim.ResetCalls()
	out, errOut, code = f.cli(t, "sync", "--force")
	require.Equal(t, exitOK, code, "sync --force\nstdout:\n%s\nstderr:\n%s", out, errOut)
	t.Logf("forced sync: %v", writesOf(f.sim.Calls()))
	assert.Equal(t, map[string]int{
		"POST /api/v2/agents/bulk/disable": 1, // six agents in one bulk call
		"PATCH /auth/scim/v2/Users/{id}":   6, // six login users deactivated
	}, writesOf(f.sim.Calls()))
	assert.Contains(t, out, "forced")
	after := agentsByEmail(f.sim)
	assert.Len(t, after, len(before), "leavers are disabled, not deleted")
	users := scimUsersByName(f.sim)
	for email, a := range after {
		u := users[email]
		assert.Equal(t, !gone[email], a.IsEnabled(), "agent %s enabled", email)
		assert.Equal(t, !gone[email], u.IsActive(), "login user %s active", email)
	}

	f.sim.ResetCalls()
	f.mustSync(t)
	assert.Zero(t, f.sim.WriteCalls(), "the run after the forced one should write nothing: %v", writesOf(f.sim.Calls()))
}

// TestE2EGuardReadCutHalfway: the LDAP connection breaks in the middle of the read (a proxy
// in front of slapd forwards half of what a whole read takes, then drops every connection):
// exit 3, the message names the incomplete read, and nothing is written, although the half
// that was read, applied, would disable people.
func TestE2EGuardReadCutHalfway(t *testing.T) {
	testenv.Need(t, "slapd", "slapadd")
	people := e2ePeople()
	s := testenv.StartSlapd(t, testenv.SlapdOptions{SeedLDIF: e2eSeedLDIF(people)})
	measure := startCutProxy(t, hostPort(t, s.URL), 0)
	// guard 100/100: only the read check may stop this run.
	f := newE2EWith(t, s, people, e2eOptions{ldapURL: "ldap://" + measure.Addr, guardMax: 100, guardPercent: 100})
	f.mustSync(t)
	total := measure.Served()
	t.Logf("one whole read: %d bytes from slapd", total)
	require.Greater(t, total, int64(2000), "a whole read through the proxy")

	// Something real to do, so that a run which ignored the broken read would write.
	ldapReplace(t, ldapAdmin(t, s), f.person("ben.mueller").dn(), map[string][]string{"displayName": {"Benjamin Mueller"}})

	cut := startCutProxy(t, hostPort(t, s.URL), total/2)
	f.config = f.configFor(t, e2eOptions{ldapURL: "ldap://" + cut.Addr, guardMax: 100, guardPercent: 100})
	f.sim.ResetCalls()
	out, errOut, code := f.cli(t, "sync")
	require.True(t, cut.Cut(), "the proxy should have cut the read (served %d of %d bytes)", cut.Served(), total)
	assert.Equal(t, exitRead, code, "sync after a broken read\nstdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Zero(t, f.sim.WriteCalls(), "a broken read must write nothing: %v", writesOf(f.sim.Calls()))
	assert.Contains(t, errOut, "incomplete directory read")
	assert.Contains(t, errOut, "nothing was changed")
	assertAllEnabled(t, f.sim)
	assert.Equal(t, "Ben Mueller", agentsByEmail(f.sim)["ben.mueller@example.com"].Name)

	// plan, cut the same way, says the same and exits 3 too.
	cut = startCutProxy(t, hostPort(t, s.URL), total/2)
	f.config = f.configFor(t, e2eOptions{ldapURL: "ldap://" + cut.Addr, guardMax: 100, guardPercent: 100})
	out, errOut, code = f.cli(t, "plan")
	require.True(t, cut.Cut(), "the proxy should have cut the plan's read")
	assert.Equal(t, exitRead, code, "plan after a broken read\nstdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, errOut, "incomplete directory read")

	// slapd gone altogether: exit 3 as well, and nothing written.
	s.Kill()
	f.config = f.configFor(t, e2eOptions{guardMax: 100, guardPercent: 100})
	f.sim.ResetCalls()
	out, errOut, code = f.cli(t, "sync")
	assert.Equal(t, exitRead, code, "sync with slapd down\nstdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, errOut, "could not connect")
	assert.Zero(t, f.sim.WriteCalls(), "sync with slapd down wrote: %v", writesOf(f.sim.Calls()))
}

// TestE2EHandMadeAgent: an agent an admin created by hand (no agentSource) with the e-mail of
// a directory user is never modified by sync, and the plan says why; with sync.adopt: true
// bridge takes it over.
func TestE2EHandMadeAgent(t *testing.T) {
	f := newE2E(t, e2eOptions{})
	ben := f.person("ben.mueller")
	hand := f.sim.PutAgent(babelforce.Agent{Name: "Ben (by hand)", Email: ben.email(), Number: "+4930999999", Tags: []string{"vip"}})

	for run := 1; run <= 2; run++ {
		f.mustSync(t)
		now, ok := f.sim.Agent(hand.ID)
		require.True(t, ok, "the hand-made agent must not be deleted")
		assert.Equal(t, hand, now, "run %d modified the hand-made agent", run)
		_, hasLogin := scimUsersByName(f.sim)[ben.email()]
		assert.False(t, hasLogin, "no login user is created for a person whose agent bridge does not own")
	}
	assert.Len(t, f.sim.Agents(), len(f.inScope()), "no second agent with ben's e-mail")

	plan, errOut, code := f.cli(t, "plan")
	require.Equal(t, exitOK, code, "plan: %s", errOut)
	line, err := lineWith(plan, "! skipped "+ben.email(), "not owned by bridge", "sync.adopt: true")
	assert.NoError(t, err, "plan:\n%s", plan)
	assert.Contains(t, line, hand.ID)
	assert.Contains(t, plan, "No changes")

	explain, errOut, code := f.cli(t, "explain", ben.email())
	require.Equal(t, exitOK, code, "explain: %s", errOut)
	assert.Contains(t, explain, `NOT owned by bridge (agentSource "", sourceId "")`)

	f.config = f.configFor(t, e2eOptions{extraSync: "  adopt: true\n"})
	f.sim.ResetCalls()
	f.mustSync(t)
	t.Logf("adoption: %v", writesOf(f.sim.Calls()))
	assert.Equal(t, map[string]int{
		"PUT /api/v2/agents/{id}":                     1, // take over: sourceId, agentSource, name, number, tags
		"POST /api/v2/agents/groups/{groupId}/agents": 1,
		"POST /auth/scim/v2/Users":                    1,
	}, writesOf(f.sim.Calls()))
	now, ok := f.sim.Agent(hand.ID)
	require.True(t, ok, "adopted, not replaced")
	assert.Equal(t, "bridge:e2e", now.AgentSource)
	assert.NotEmpty(t, now.SourceID)
	assert.Equal(t, ben.name(), now.Name)
	assert.Equal(t, ben.e164, now.Number)
	assert.Equal(t, []string{"german", "vip"}, sortedTags(now), "the directory's tags added, the admin's own tag kept")
	assert.Equal(t, []string{"support"}, groupNames(now))
	assert.Len(t, f.sim.Agents(), len(f.inScope()))
	if u, ok := scimUsersByName(f.sim)[ben.email()]; assert.True(t, ok, "login user created on adoption") {
		assert.Equal(t, now.SourceID, u.ExternalID)
	}

	f.sim.ResetCalls()
	f.mustSync(t)
	assert.Zero(t, f.sim.WriteCalls(), "after adoption: %v", writesOf(f.sim.Calls()))
}

// TestE2EProvisionAndExplain: bridge provision USER provisions that one user (by e-mail or by
// uid) and nobody else; bridge explain USER says why a user is or is not in scope and which
// rule gave each tag; an unknown user is an error that says so.
func TestE2EProvisionAndExplain(t *testing.T) {
	f := newE2E(t, e2eOptions{})
	anna, greta := f.person("anna.schmidt"), f.person("greta.hoffmann")

	out, errOut, code := f.cli(t, "provision", anna.email())
	require.Equal(t, exitOK, code, "provision by e-mail\nstdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Equal(t, map[string]int{
		"POST /api/v2/agents/groups": 1, // support, which anna is created in
		"POST /api/v2/agents":        1,
		"POST /auth/scim/v2/Users":   1,
	}, writesOf(f.sim.Calls()), "provision %s", anna.email())
	agents := f.sim.Agents()
	require.Len(t, agents, 1, "only anna is provisioned")
	assert.Equal(t, anna.email(), agents[0].Email)
	assert.Equal(t, []string{"support"}, groupNames(agents[0]))
	assert.Equal(t, anna.skills(), sortedTags(agents[0]))
	require.Len(t, f.sim.SCIMUsers(), 1)
	assert.Contains(t, out, "Plan: 1 to create")

	f.sim.ResetCalls()
	out, errOut, code = f.cli(t, "provision", greta.uid)
	require.Equal(t, exitOK, code, "provision by uid\nstdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Equal(t, map[string]int{
		"POST /api/v2/agents":      1, // in its existing agent group
		"POST /auth/scim/v2/Users": 1,
	}, writesOf(f.sim.Calls()), "provision %s", greta.uid)
	got := agentsByEmail(f.sim)
	assert.Len(t, got, 2)
	assert.Contains(t, got, greta.email())
	if u, ok := scimUsersByName(f.sim)[greta.email()]; assert.True(t, ok) {
		assert.Equal(t, []string{"reporter", "supervisor"}, scimRoleValues(u))
	}

	f.sim.ResetCalls()
	// explain an in-scope user: scope rule, field sources, which rule gave each tag and role.
	out, errOut, code = f.cli(t, "explain", greta.uid)
	require.Equal(t, exitOK, code, "explain: %s", errOut)
	for _, want := range [][]string{
		{"scope: in scope"},
		{"[ok  ] scope.include_groups [babelforce-agents]", "member of babelforce-agents"},
		{"number", `"+493012345607"`, `(from "030 12345607")`, "region DE"},
		{`"german"`, `skills[0]: match "^skill-(.+)$"`, `matched group "skill-german"`},
		{`"support"`, `agent_groups[0]`, `matched group "team-support"`},
		{`"supervisor"`, `roles[0]: group "supervisors"`},
		{"agent ", greta.email(), "owned by bridge"},
		{"login user " + greta.email(), "managed by bridge"},
		{"no changes"},
	} {
		_, err := lineWith(out, want...)
		assert.NoError(t, err, "explain %s:\n%s", greta.uid, out)
	}
	// an in-scope user not yet provisioned: the next run's changes.
	out, errOut, code = f.cli(t, "explain", "elif.yilmaz@example.com")
	require.Equal(t, exitOK, code, "explain: %s", errOut)
	assert.Contains(t, out, `"french"  <- skills[0]`)
	assert.Contains(t, out, "no agent")
	assert.Contains(t, out, "+ create agent elif.yilmaz@example.com")
	// an out-of-scope user: which rule failed.
	out, errOut, code = f.cli(t, "explain", "sven.it")
	require.Equal(t, exitOK, code, "explain: %s", errOut)
	assert.Contains(t, out, "OUT OF SCOPE")
	_, err := lineWith(out, "[FAIL] scope.include_groups", "not a member of any include_groups (babelforce-agents)")
	assert.NoError(t, err, "explain sven.it:\n%s", out)
	assert.Zero(t, f.sim.WriteCalls(), "explain writes nothing")

	// unknown users.
	for _, cmd := range []string{"explain", "provision"} {
		out, errOut, code = f.cli(t, cmd, "nobody@example.com")
		assert.Equal(t, exitError, code, "%s of an unknown user\nstdout:\n%s\nstderr:\n%s", cmd, out, errOut)
		assert.Contains(t, errOut, `user "nobody@example.com": no such user`)
	}
	assert.Zero(t, f.sim.WriteCalls())
	assert.Len(t, f.sim.Agents(), 2)

	// no user at all is a usage error.
	_, errOut, code = f.cli(t, "provision")
	assert.Equal(t, exitRefused, code)
	assert.Contains(t, errOut, "exactly one USER")
}

// TestE2EPlanJSON: plan --output json is JSON holding the typed changes and the summary, and
// writes nothing.
func TestE2EPlanJSON(t *testing.T) {
	f := newE2E(t, e2eOptions{})
	out, errOut, code := f.cli(t, "plan", "--output", "json")
	require.Equal(t, exitOK, code, "plan --output json: %s", errOut)
	var plan struct {
		Changes []struct {
			Kind     string `json:"kind"`
			Subject  string `json:"subject"`
			SourceID string `json:"sourceId"`
			Value    string `json:"value"`
			Fields   []struct {
				Field, Before, After string
			} `json:"fields"`
		} `json:"changes"`
		Skipped []struct {
			Subject, Reason string
		} `json:"skipped"`
		Summary struct {
			Create, Update, Disable, Unchanged, Skipped, OutOfScope, LoginCreate int
		} `json:"summary"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &plan), "plan JSON:\n%s", out)
	kinds := map[string]int{}
	for _, c := range plan.Changes {
		kinds[c.Kind]++
	}
	assert.Equal(t, map[string]int{"create_agent_group": 2, "create_agent": 18, "create_login_user": 18, "join_agent_group": 18}, kinds)
	assert.Equal(t, 18, plan.Summary.Create)
	assert.Equal(t, 18, plan.Summary.LoginCreate)
	assert.Equal(t, 0, plan.Summary.Skipped)
	assert.Equal(t, 2, plan.Summary.OutOfScope)
	assert.Len(t, plan.Skipped, 2)
	found := false
	for _, c := range plan.Changes {
		if c.Kind == "create_agent" && c.Subject == "anna.schmidt@example.com" {
			found = true
			assert.NotEmpty(t, c.SourceID)
			fields := map[string]string{}
			for _, fc := range c.Fields {
				fields[fc.Field] = fc.After
			}
			assert.Equal(t, "Anna Schmidt", fields["name"])
			assert.Equal(t, "+493012345601", fields["number"])
			assert.Equal(t, "english, german", fields["tags"])
		}
	}
	assert.True(t, found, "create_agent of anna in the JSON plan")
	assert.Zero(t, f.sim.WriteCalls(), "plan writes nothing")

	// after a sync and one change: the JSON plan holds exactly that change.
	f.mustSync(t)
	ldapReplace(t, ldapAdmin(t, f.slapd), f.person("clara.weber").dn(), map[string][]string{"telephoneNumber": {"+49 30 7654321"}})
	out, errOut, code = f.cli(t, "plan", "--output", "json")
	require.Equal(t, exitOK, code, "plan --output json: %s", errOut)
	plan.Changes = nil
	require.NoError(t, json.Unmarshal([]byte(out), &plan), "plan JSON:\n%s", out)
	require.Len(t, plan.Changes, 1, "plan JSON:\n%s", out)
	c := plan.Changes[0]
	assert.Equal(t, "update_agent", c.Kind)
	assert.Equal(t, "clara.weber@example.com", c.Subject)
	if assert.Len(t, c.Fields, 1) {
		assert.Equal(t, "number", c.Fields[0].Field)
		assert.Equal(t, "+493012345603", c.Fields[0].Before)
		assert.Equal(t, "+49307654321", c.Fields[0].After)
	}
	assert.Equal(t, 17, plan.Summary.Unchanged)
}
