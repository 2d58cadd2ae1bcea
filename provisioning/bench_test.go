package provisioning

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/mapping"
)

// bigPeople returns n people in "agents", each in one of teams team-0… and three of skills
// skill-0…; teams+skills = groups.
func bigPeople(n, groups int) []*person {
	teams, skills := groups/2, groups-groups/2
	out := make([]*person, n)
	for i := range n {
		out[i] = &person{id: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), userName: fmt.Sprintf("user%d", i),
			name: fmt.Sprintf("User %d", i), email: fmt.Sprintf("user%d@example.com", i), phone: fmt.Sprintf("+4930%07d", i),
			active: true, groups: []string{"agents", fmt.Sprintf("team-%d", i%teams),
				fmt.Sprintf("skill-%d", i%skills), fmt.Sprintf("skill-%d", (i*7+1)%skills), fmt.Sprintf("skill-%d", (i*13+2)%skills)}}
	}
	return out
}

// snapSource returns the same snapshot every time (mapping never modifies it).
type snapSource struct{ snap *directory.Snapshot }

func (s snapSource) Read(context.Context) (*directory.Snapshot, error) { return s.snap, nil }

// memTarget is an in-memory Target that answers reads from pre-loaded state (copied, as a
// client decodes fresh values) and counts writes without applying them.
type memTarget struct {
	agents []babelforce.Agent
	groups []babelforce.AgentGroup
	scim   []babelforce.SCIMUser
	writes atomic.Int64
}

func (m *memTarget) ListAgents(ctx context.Context, f babelforce.AgentFilter, _ ...babelforce.ListOption) ([]babelforce.Agent, error) {
	out := make([]babelforce.Agent, 0, len(m.agents))
	for _, a := range m.agents {
		if (f.Source == "" || a.AgentSource == f.Source) && (f.SourceID == "" || a.SourceID == f.SourceID) &&
			(f.Q == "" || strings.Contains(strings.ToLower(a.Email), strings.ToLower(f.Q))) {
			out = append(out, a)
		}
	}
	return out, nil
}
func (m *memTarget) ListAgentGroups(ctx context.Context) ([]babelforce.AgentGroup, error) {
	return slices.Clone(m.groups), nil
}
func (m *memTarget) SCIMListUsers(ctx context.Context, filter string, _ ...babelforce.ListOption) ([]babelforce.SCIMUser, error) {
	return slices.Clone(m.scim), nil
}
func (m *memTarget) ListExternalIDs(ctx context.Context, agentID string) ([]babelforce.ExternalID, error) {
	return nil, nil
}
func (m *memTarget) w() error { m.writes.Add(1); return nil }
func (m *memTarget) CreateAgent(ctx context.Context, a *babelforce.Agent) (*babelforce.Agent, error) {
	return &babelforce.Agent{ID: "new"}, m.w()
}
func (m *memTarget) UpdateAgent(ctx context.Context, id string, u babelforce.AgentUpdate) (*babelforce.Agent, error) {
	return &babelforce.Agent{ID: id}, m.w()
}
func (m *memTarget) DeleteAgent(ctx context.Context, id string) error  { return m.w() }
func (m *memTarget) EnableAgent(ctx context.Context, id string) error  { return m.w() }
func (m *memTarget) DisableAgent(ctx context.Context, id string) error { return m.w() }
func (m *memTarget) BulkEnableAgents(ctx context.Context, ids []string) ([]babelforce.BulkResult, error) {
	return nil, m.w()
}
func (m *memTarget) BulkDisableAgents(ctx context.Context, ids []string) ([]babelforce.BulkResult, error) {
	return nil, m.w()
}
func (m *memTarget) CreateAgentGroup(ctx context.Context, g *babelforce.AgentGroup) (*babelforce.AgentGroup, error) {
	return &babelforce.AgentGroup{ID: "g", Name: g.Name}, m.w()
}
func (m *memTarget) AddAgentToGroup(ctx context.Context, groupID, agentID string) error { return m.w() }
func (m *memTarget) RemoveAgentFromGroup(ctx context.Context, groupID, agentID string) error {
	return m.w()
}
func (m *memTarget) SCIMCreateUser(ctx context.Context, u *babelforce.SCIMUser) (*babelforce.SCIMUser, error) {
	return u, m.w()
}
func (m *memTarget) SCIMReplaceUser(ctx context.Context, id string, u *babelforce.SCIMUser) (*babelforce.SCIMUser, error) {
	return u, m.w()
}
func (m *memTarget) SCIMPatchUser(ctx context.Context, id string, ops []babelforce.SCIMPatchOp) (*babelforce.SCIMUser, error) {
	return nil, m.w()
}
func (m *memTarget) SetExternalID(ctx context.Context, agentID, integrationID, externalID string) error {
	return m.w()
}
func (m *memTarget) DeleteExternalID(ctx context.Context, agentID, integrationID string) error {
	return m.w()
}

// loadActual fills m with what babelforce would hold after a sync of d; every 100th agent
// differs (an old name, a missing tag) so that the plan is not empty.
func loadActual(m *memTarget, d *mapping.Desired) {
	gid := map[string]string{}
	for i, g := range d.AgentGroups {
		id := fmt.Sprintf("%032x", i+1)
		gid[g] = id
		m.groups = append(m.groups, babelforce.AgentGroup{ID: id, Name: g})
	}
	for i, a := range d.Agents {
		enabled := a.Enabled
		ag := babelforce.Agent{ID: fmt.Sprintf("%032x", 1<<40+i), Name: a.Name, Email: a.Email, Number: a.Number,
			Enabled: &enabled, Tags: slices.Clone(a.Tags), SourceID: a.SourceID, AgentSource: a.AgentSource}
		for _, g := range a.AgentGroups {
			ag.Groups = append(ag.Groups, babelforce.GroupRef{ID: gid[g], Name: g})
		}
		if i%100 == 0 {
			ag.Name = "Old " + ag.Name
			ag.Tags = ag.Tags[1:]
		}
		m.agents = append(m.agents, ag)
		u := desiredLogin(&a, nil)
		u.ID = fmt.Sprintf("%032x", 1<<41+i)
		m.scim = append(m.scim, *u)
	}
}

func BenchmarkPlan100k(b *testing.B) {
	snap := buildSnapshot(bigPeople(100_000, 2_000))
	rules := testRules(b)
	m := &memTarget{}
	loadActual(m, mapping.Desire(snap, rules))
	r := NewReconciler(snapSource{snap}, m, rules, DefaultConfig())
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var p *Plan
	for b.Loop() {
		var err error
		if p, err = r.Plan(ctx, Scope{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if s := p.Summary(); s.Update != 1000 || s.Unchanged != 99_000 || s.Create != 0 || m.writes.Load() != 0 {
		b.Fatalf("summary %+v, writes %d", s, m.writes.Load())
	}
	b.ReportMetric(float64(len(p.Changes)), "changes/op")
}

// seedSim makes the simulator hold what a sync of people gives (seeded in-process: fast),
// and returns a reconciler for it.
func seedSim(tb testing.TB, people []*person) (*babelforcetest.Server, *Reconciler) {
	sim := babelforcetest.New(tb, babelforcetest.Options{})
	client := simClient(tb, sim)
	f := newFixture()
	for _, p := range people {
		f.put(*p)
	}
	rules := testRules(tb)
	snap, _ := f.Read(context.Background())
	d := mapping.Desire(snap, rules)
	gid := map[string]string{}
	for _, g := range d.AgentGroups {
		gid[g] = sim.PutAgentGroup(babelforce.AgentGroup{Name: g}).ID
	}
	for _, a := range d.Agents {
		enabled := a.Enabled
		ag := babelforce.Agent{Name: a.Name, Email: a.Email, Number: a.Number, Enabled: &enabled, Tags: a.Tags,
			SourceID: a.SourceID, AgentSource: a.AgentSource}
		for _, g := range a.AgentGroups {
			ag.Groups = append(ag.Groups, babelforce.GroupRef{ID: gid[g], Name: g})
		}
		sim.PutAgent(ag)
		sim.PutSCIMUser(*desiredLogin(&a, nil))
	}
	cfg := DefaultConfig()
	cfg.Concurrency = 16
	return sim, NewReconciler(f, client, rules, cfg, WithClock(func() time.Time { return time.Unix(0, 0) }))
}

// noopCalls runs one reconcile that should change nothing and returns its API calls.
func noopCalls(tb testing.TB, sim *babelforcetest.Server, r *Reconciler) map[string]int {
	sim.ResetCalls()
	rep, err := r.Run(context.Background(), RunOptions{Trigger: TriggerSchedule})
	if err != nil {
		tb.Fatal(err)
	}
	if len(rep.Plan.Changes) != 0 {
		tb.Fatalf("no-op reconcile planned %d changes", len(rep.Plan.Changes))
	}
	calls := sim.Calls()
	delete(calls, "POST /oauth/token")
	return calls
}

// checkOnlyPagedLists fails unless every call is a GET of a list endpoint.
func checkOnlyPagedLists(tb testing.TB, calls map[string]int) int {
	lists := map[string]bool{"GET /api/v2/agents": true, "GET /api/v2/agents/groups": true, "GET /auth/scim/v2/Users": true}
	total := 0
	for k, n := range calls {
		if !lists[k] {
			tb.Errorf("a no-op reconcile called %s %d times", k, n)
		}
		total += n
	}
	return total
}

func TestNoopReconcile10kOnlyPagedReads(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 10k agents through the simulator")
	}
	sim, r := seedSim(t, bigPeople(10_000, 200))
	calls := noopCalls(t, sim, r)
	total := checkOnlyPagedLists(t, calls)
	// 10k agents and 10k login users at 100 a page, 100 agent groups at 100 a page
	if calls["GET /api/v2/agents"] != 100 || calls["GET /auth/scim/v2/Users"] != 100 || calls["GET /api/v2/agents/groups"] != 1 {
		t.Errorf("calls %v", calls)
	}
	t.Logf("no-op reconcile of 10k users: %d API calls: %v", total, calls)
}

func BenchmarkNoopReconcile10k(b *testing.B) {
	sim, r := seedSim(b, bigPeople(10_000, 200))
	b.ResetTimer()
	var total int
	for b.Loop() {
		total = checkOnlyPagedLists(b, noopCalls(b, sim, r))
	}
	b.ReportMetric(float64(total), "calls/op")
}
