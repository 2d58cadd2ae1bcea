package provisioning

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/mapping"
)

const testSource = "bridge:test"

// person is one directory user of a test fixture.
type person struct {
	id, userName, name, email, phone string
	active                           bool
	invalid                          string   // directory.User.Invalid: a value the source could not read
	groups                           []string // group names
	attrs                            map[string][]string
}

// fixture is a hand-built directory.
type fixture struct {
	mu     sync.Mutex
	people map[string]*person
	err    error // returned by Read instead of a snapshot
	reads  int
}

func newFixture(people ...person) *fixture {
	f := &fixture{people: map[string]*person{}}
	for _, p := range people {
		f.put(p)
	}
	return f
}

func (f *fixture) put(p person) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.people[p.id] = &p
}

func (f *fixture) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.people, id)
}

func (f *fixture) edit(id string, fn func(p *person)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.people[id])
}

func (f *fixture) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// Read builds a fresh, resolved snapshot.
func (f *fixture) Read(ctx context.Context) (*directory.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.err != nil {
		return nil, f.err
	}
	return buildSnapshot(slices.Collect(maps.Values(f.people))), nil
}

func buildSnapshot(people []*person) *directory.Snapshot {
	s := &directory.Snapshot{ReadAt: time.Unix(0, 0), Source: "test"}
	groups := map[string]*directory.Group{}
	for _, p := range people {
		u := directory.User{ID: p.id, UserName: p.userName, DisplayName: p.name, Active: p.active, Invalid: p.invalid,
			Attributes: map[string][]string{}}
		for k, v := range p.attrs {
			u.Attributes[k] = v
		}
		if p.email != "" {
			u.Emails = []directory.Email{{Value: p.email, Primary: true}}
		}
		if p.phone != "" {
			u.Phones = []directory.Phone{{Value: p.phone, Type: "work"}}
		}
		for _, g := range p.groups {
			gr := groups[g]
			if gr == nil {
				gr = &directory.Group{ID: "g-" + g, Name: g}
				groups[g] = gr
			}
			gr.MemberUsers = append(gr.MemberUsers, p.id)
		}
		s.Users = append(s.Users, u)
	}
	for _, g := range groups {
		s.Groups = append(s.Groups, *g)
	}
	s.Resolve()
	return s
}

// testRules: members of "agents" are in scope; skill-X gives tag X, team-X agent group X,
// "supervisors" the supervisor role, everyone else the agent role; zendesk ids from the
// employeeNumber attribute (unset in most fixtures).
func testRules(t testing.TB) *mapping.Rules {
	t.Helper()
	r, err := mapping.Compile(mapping.Config{
		AgentSource:  testSource,
		Scope:        mapping.ScopeConfig{IncludeGroups: []string{"agents"}},
		Phone:        mapping.PhoneConfig{DefaultRegion: "DE"},
		Skills:       []mapping.SkillRule{{Selector: mapping.Selector{Match: "^skill-(.+)$"}, Tag: "$1"}},
		AgentGroups:  []mapping.AgentGroupRule{{Selector: mapping.Selector{Match: "^team-(.+)$"}, AgentGroup: "$1"}},
		Roles:        []mapping.RoleRule{{Selector: mapping.Selector{Group: "supervisors"}, Roles: []string{"supervisor", "agent"}}},
		DefaultRoles: []string{"agent"},
	})
	if err != nil {
		t.Fatalf("compile rules: %v", err)
	}
	return r
}

func standardPeople() []person {
	return []person{
		{id: "u-ann", userName: "ann", name: "Ann Arbor", email: "ann@example.com", phone: "+49 30 1234567", active: true,
			groups: []string{"agents", "skill-billing", "skill-german", "team-Support"}},
		{id: "u-bob", userName: "bob", name: "Bob Baker", email: "bob@example.com", phone: "030 7654321", active: true,
			groups: []string{"agents", "skill-sales", "team-Sales", "supervisors"}},
		{id: "u-carol", userName: "carol", name: "Carol Cole", email: "carol@example.com", active: true,
			groups: []string{"agents", "skill-billing", "team-Support"}},
		{id: "u-dave", userName: "dave", name: "Dave Dent", email: "dave@example.com", active: true,
			groups: []string{"agents"}},
		{id: "u-erin", userName: "erin", name: "Erin Out", email: "erin@example.com", active: true,
			groups: []string{"skill-billing"}}, // not in "agents": out of scope
	}
}

// env is a reconciler against a fresh simulator.
type env struct {
	t      *testing.T
	sim    *babelforcetest.Server
	client *babelforce.Client
	dir    *fixture
	rules  *mapping.Rules
	cfg    Config
	now    time.Time
	rec    *Reconciler

	mu     sync.Mutex
	audits []AuditRecord
}

func newEnv(t *testing.T, people []person, mod func(*Config), opts ...Option) *env {
	t.Helper()
	e := &env{t: t, dir: newFixture(people...), rules: testRules(t), cfg: DefaultConfig(),
		now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	e.sim = babelforcetest.New(t, babelforcetest.Options{})
	e.client = simClient(t, e.sim)
	e.cfg.StateFile = t.TempDir() + "/state.json"
	if mod != nil {
		mod(&e.cfg)
	}
	if err := e.cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	e.rec = e.newReconciler(e.client, opts...)
	return e
}

func (e *env) newReconciler(tgt Target, opts ...Option) *Reconciler {
	base := []Option{WithClock(func() time.Time {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.now
	}), WithAudit(func(r AuditRecord) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.audits = append(e.audits, r)
	})}
	return NewReconciler(e.dir, tgt, e.rules, e.cfg, append(base, opts...)...)
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

func simClient(t testing.TB, sim *babelforcetest.Server) *babelforce.Client {
	t.Helper()
	return sim.Client(t)
}

// run runs a reconcile and fails the test on an unexpected error.
func (e *env) run(opts RunOptions) *Report {
	e.t.Helper()
	if opts.Trigger == "" {
		opts.Trigger = TriggerManual
	}
	rep, err := e.rec.Run(context.Background(), opts)
	if err != nil {
		e.t.Fatalf("run: %v", err)
	}
	return rep
}

// writes returns the simulator's write calls by endpoint.
func (e *env) writes() map[string]int {
	out := map[string]int{}
	for k, v := range e.sim.Calls() {
		if m, _, _ := strings.Cut(k, " "); m != "GET" && !strings.HasPrefix(k, "POST /oauth") {
			out[k] = v
		}
	}
	return out
}

func (e *env) agentByEmail(email string) babelforce.Agent {
	e.t.Helper()
	for _, a := range e.sim.Agents() {
		if strings.EqualFold(a.Email, email) {
			return a
		}
	}
	e.t.Fatalf("no agent %s in the simulator", email)
	return babelforce.Agent{}
}

func (e *env) scimUser(email string) *babelforce.SCIMUser {
	for _, u := range e.sim.SCIMUsers() {
		if strings.EqualFold(u.UserName, email) {
			return &u
		}
	}
	return nil
}

func groupNames(a babelforce.Agent) []string {
	var out []string
	for _, g := range a.Groups {
		out = append(out, g.Name)
	}
	slices.Sort(out)
	return out
}

func sortedTags(a babelforce.Agent) []string {
	t := slices.Clone(a.Tags)
	slices.Sort(t)
	return t
}

func equalCounts(t *testing.T, got, want map[string]int) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("write calls:\n got  %v\n want %v", got, want)
	}
}

var errBoom = errors.New("boom")
