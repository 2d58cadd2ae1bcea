package provisioning

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/directory/store"
)

// countingStore is the store as a ScopedSource that counts whole and scoped reads.
type countingStore struct {
	*store.Store
	mu          sync.Mutex
	reads       int
	scopedReads int
}

func (c *countingStore) Read(ctx context.Context) (*directory.Snapshot, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.Store.Read(ctx)
}

func (c *countingStore) ReadUsers(ctx context.Context, ids []string) (*directory.Snapshot, int, error) {
	c.mu.Lock()
	c.scopedReads++
	c.mu.Unlock()
	return c.Store.ReadUsers(ctx, ids)
}

// queueEnv is a store that queues its writes, a reconciler reading it and a worker draining
// its queue into a simulator, on a clock the test moves.
type queueEnv struct {
	t      *testing.T
	st     *countingStore
	sim    *babelforcetest.Server
	rec    *Reconciler
	worker *QueueWorker
	agents string // id of the "agents" group

	mu  sync.Mutex
	now time.Time
}

func newQueueEnv(t *testing.T, mods ...func(*Config)) *queueEnv {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, ":memory:", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	q := &queueEnv{t: t, st: &countingStore{Store: s}, now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	clock := func() time.Time {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.now
	}
	s.SetClock(clock)
	q.sim = babelforcetest.New(t, babelforcetest.Options{})
	cfg := DefaultConfig()
	cfg.StateFile = t.TempDir() + "/state.json"
	for _, m := range mods {
		m(&cfg)
	}
	q.rec = NewReconciler(q.st, simClient(t, q.sim), testRules(t), cfg, WithClock(clock))
	q.worker = NewQueueWorker(q.rec, s, QueueWorkerOptions{Now: clock, Batch: 2})
	g, err := s.Create(ctx, store.Resource{Kind: store.KindGroup, Attributes: map[string]any{"displayName": "agents"}})
	if err != nil {
		t.Fatal(err)
	}
	q.agents = g.ID
	s.QueueWrites(store.SourceSCIMPush, q.worker.Wake)
	return q
}

func (q *queueEnv) advance(d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.now = q.now.Add(d)
}

// push stores a user in the "agents" group, as an IdP's two writes do.
func (q *queueEnv) push(userName, email string) string {
	q.t.Helper()
	ctx := context.Background()
	u, err := q.st.Create(ctx, store.Resource{Kind: store.KindUser, Attributes: map[string]any{
		"userName": userName, "active": true, "displayName": userName,
		"emails": []any{map[string]any{"value": email, "primary": true}}}})
	if err != nil {
		q.t.Fatal(err)
	}
	if _, _, err := q.st.Update(ctx, store.KindGroup, q.agents, func(r *store.Resource) error {
		ms, _ := r.Attributes["members"].([]any)
		r.Attributes["members"] = append(ms, map[string]any{"value": u.ID})
		return nil
	}); err != nil {
		q.t.Fatal(err)
	}
	return u.ID
}

func (q *queueEnv) depth() int {
	q.t.Helper()
	st, err := q.st.QueueStats(context.Background())
	if err != nil {
		q.t.Fatal(err)
	}
	return st.Depth
}

// drain runs the worker until the queue holds nothing due.
func (q *queueEnv) drain() {
	for q.worker.DrainOnce(context.Background()) {
	}
}

func TestQueueWorkerAppliesPushesScoped(t *testing.T) {
	q := newQueueEnv(t)
	ids := []string{q.push("ann", "ann@example.com"), q.push("bob", "bob@example.com"), q.push("cy", "cy@example.com")}
	if q.depth() != 3 {
		t.Fatalf("depth %d after 3 pushes, want 3 (coalesced per person)", q.depth())
	}
	// batches of 2: the first run says more may be due
	if !q.worker.DrainOnce(context.Background()) {
		t.Fatal("a full batch reported nothing more to do")
	}
	q.drain()
	if q.depth() != 0 {
		t.Fatalf("depth %d after draining", q.depth())
	}
	agents := q.sim.Agents()
	if len(agents) != 3 {
		t.Fatalf("%d agents, want 3: %+v", len(agents), agents)
	}
	for _, a := range agents {
		if a.AgentSource != testSource || !strings.HasSuffix(a.Email, "@example.com") {
			t.Errorf("agent %+v", a)
		}
	}
	if q.st.reads != 0 || q.st.scopedReads == 0 {
		t.Errorf("whole reads %d, scoped reads %d: want only scoped reads", q.st.reads, q.st.scopedReads)
	}
	if calls := q.sim.Calls()["POST /api/v2/agents"]; calls != 3 {
		t.Errorf("%d agent creates, want 3", calls)
	}
	// a person leaves the group: disabled in a scoped run, guards counting the whole store
	if _, _, err := q.st.Update(context.Background(), store.KindGroup, q.agents, func(r *store.Resource) error {
		r.Attributes["members"] = []any{map[string]any{"value": ids[0]}, map[string]any{"value": ids[1]}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	q.drain()
	for _, a := range q.sim.Agents() {
		if want := a.SourceID != ids[2]; a.IsEnabled() != want {
			t.Errorf("agent %s enabled %v, want %v", a.Email, a.IsEnabled(), want)
		}
	}
}

func TestQueueWorkerRetriesWhileBabelforceFails(t *testing.T) {
	q := newQueueEnv(t)
	if err := q.sim.SetFaults(babelforcetest.Faults{Rate5xx: 1}); err != nil {
		t.Fatal(err)
	}
	q.push("ann", "ann@example.com")
	q.drain()
	st, err := q.st.QueueStats(context.Background())
	if err != nil || st.Depth != 1 || st.Failing != 1 || st.LastError == "" {
		t.Fatalf("after a failed run: %+v, %v", st, err)
	}
	// nothing is tried again before the backoff ends
	before := q.sim.Calls()
	q.drain()
	if after := q.sim.Calls(); len(after) != len(before) {
		t.Fatalf("tried again during the backoff: %v -> %v", before, after)
	}
	if err := q.sim.SetFaults(babelforcetest.Faults{}); err != nil {
		t.Fatal(err)
	}
	q.advance(DefaultQueueBackoff)
	q.drain()
	if q.depth() != 0 || len(q.sim.Agents()) != 1 {
		t.Fatalf("after babelforce is back: depth %d, agents %+v", q.depth(), q.sim.Agents())
	}
}

// TestQueueScopedRunKeepsAnotherPersonsAgent: a pushed person with the e-mail of someone
// else still in the directory must not take over their agent because the scoped read does
// not hold them.
func TestQueueScopedRunKeepsAnotherPersonsAgent(t *testing.T) {
	q := newQueueEnv(t)
	ann := q.push("ann", "ann@example.com")
	q.drain()
	q.push("ann2", "ann@example.com")
	q.drain()
	agents := q.sim.Agents()
	if len(agents) != 1 || agents[0].SourceID != ann || !agents[0].IsEnabled() {
		t.Fatalf("agents %+v, want only ann's, unchanged", agents)
	}
}

// TestQueueTrickledLeaversAddUp: people leaving one push at a time are counted together
// over guard.window: the scoped run that takes the total past guard.max_destructive is
// refused as a whole run of them would be; once the window has passed, runs start counting
// again, and a whole run applies what was held back.
func TestQueueTrickledLeaversAddUp(t *testing.T) {
	q := newQueueEnv(t, func(c *Config) { c.Guard.MaxDestructive = 2; c.Guard.Window = time.Hour })
	var ids []string
	for _, n := range []string{"ann", "bob", "cy", "dee", "eve", "fay"} {
		ids = append(ids, q.push(n, n+"@example.com"))
	}
	q.drain()
	if n := len(q.sim.Agents()); n != 6 {
		t.Fatalf("%d agents, want 6", n)
	}
	leave := func(id string) {
		t.Helper()
		if _, _, err := q.st.Update(context.Background(), store.KindGroup, q.agents, func(r *store.Resource) error {
			var keep []any
			for _, m := range r.Attributes["members"].([]any) {
				if m.(map[string]any)["value"] != id {
					keep = append(keep, m)
				}
			}
			r.Attributes["members"] = keep
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		q.drain()
	}
	enabled := func(id string) bool {
		for _, a := range q.sim.Agents() {
			if a.SourceID == id {
				return a.IsEnabled()
			}
		}
		t.Fatalf("no agent for %s", id)
		return false
	}
	leave(ids[0])
	q.advance(10 * time.Minute)
	leave(ids[1])
	if enabled(ids[0]) || enabled(ids[1]) {
		t.Fatal("the first two leavers (within guard.max_destructive) are not disabled")
	}
	q.advance(10 * time.Minute)
	leave(ids[2])
	if !enabled(ids[2]) {
		t.Fatal("the third leaver within the window was disabled: 3 people in an hour, over guard.max_destructive 2")
	}
	reps := q.rec.Status()
	if len(reps) == 0 || len(reps[0].Refused) == 0 || !strings.Contains(reps[0].Refused[0], "guard.window") {
		t.Fatalf("the refused run does not say why: %+v", reps)
	}
	// 61 minutes after the first leaver and 41 after the second: only the second counts
	q.advance(41 * time.Minute)
	leave(ids[3])
	if enabled(ids[3]) {
		t.Error("a leaver after the window passed was not disabled")
	}
	// the whole run counts its own read: one person left to disable (cy), under the limit
	if _, err := q.rec.Run(context.Background(), RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if enabled(ids[2]) {
		t.Error("the whole run did not disable the leaver the window held back")
	}
	if !enabled(ids[4]) || !enabled(ids[5]) {
		t.Error("people still in the directory were disabled")
	}
}
