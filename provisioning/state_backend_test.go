package provisioning

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce"
)

// memBackend is a StateBackend in memory, shared by the reconcilers ("replicas") of a test.
type memBackend struct {
	mu      sync.Mutex
	data    []byte
	loads   int
	saves   int
	loadErr error
	saveErr error
}

func (m *memBackend) LoadState(ctx context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loads++
	if m.loadErr != nil {
		return nil, m.loadErr
	}
	return bytes.Clone(m.data), nil
}

func (m *memBackend) SaveState(ctx context.Context, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	m.saves++
	if m.saveErr != nil {
		return m.saveErr
	}
	m.data = bytes.Clone(data)
	return nil
}

// state decodes what the backend holds.
func (m *memBackend) state(t *testing.T) *state {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := newState()
	if err := json.Unmarshal(m.data, st); err != nil {
		t.Fatalf("stored state %q: %v", m.data, err)
	}
	return st
}

func (m *memBackend) counts() (loads, saves int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loads, m.saves
}

// TestSharedStateGracePeriodAcrossReplicas: replica A disables an agent of someone who left;
// replica B, sharing the state, deletes it once the grace period A started is over.
func TestSharedStateGracePeriodAcrossReplicas(t *testing.T) {
	be := &memBackend{}
	e := newEnv(t, standardPeople(), func(c *Config) {
		c.Delete.Enabled = true
		c.Delete.GracePeriod = 48 * time.Hour
		c.StateFile = ""
	})
	a := e.newReconciler(e.client, WithStateBackend(be))
	b := e.newReconciler(e.client, WithStateBackend(be))
	ctx := context.Background()
	if _, err := a.Run(ctx, RunOptions{Trigger: TriggerManual}); err != nil {
		t.Fatal(err)
	}
	e.dir.remove("u-carol")
	if _, err := a.Run(ctx, RunOptions{Trigger: TriggerManual}); err != nil { // disables carol
		t.Fatal(err)
	}
	carol := e.agentByEmail("carol@example.com")
	if since := be.state(t).Disabled[carol.ID]; !since.Equal(e.now) {
		t.Fatalf("shared state has carol disabled since %v; want %v", since, e.now)
	}
	e.advance(47 * time.Hour)
	e.sim.ResetCalls()
	if _, err := b.Run(ctx, RunOptions{Trigger: TriggerManual}); err != nil {
		t.Fatal(err)
	}
	if e.sim.WriteCalls() != 0 {
		t.Fatalf("replica B wrote inside the grace period replica A started: %v", e.writes())
	}
	e.advance(time.Hour)
	rep, err := b.Run(ctx, RunOptions{Trigger: TriggerManual})
	if err != nil {
		t.Fatal(err)
	}
	equalCounts(t, e.writes(), map[string]int{"DELETE /api/v2/agents/{id}": 1})
	if !strings.Contains(planText(rep.Plan), "(left directory; disabled since 2026-01-01)") {
		t.Errorf("replica B's plan:\n%s", planText(rep.Plan))
	}
	// every run reads the shared state afresh (no cache across runs) and saves it once
	if loads, saves := be.counts(); loads != 4 || saves != 4 {
		t.Errorf("backend loads %d, saves %d; want 4 and 4 (one each per run)", loads, saves)
	}
}

// TestSharedStateManagedTagsAcrossReplicas: a tag replica A was asked to manage is removed by
// replica B once the directory no longer gives it; a hand-set tag stays.
func TestSharedStateManagedTagsAcrossReplicas(t *testing.T) {
	be := &memBackend{}
	e := newEnv(t, standardPeople(), func(c *Config) { c.StateFile = "" })
	a := e.newReconciler(e.client, WithStateBackend(be))
	b := e.newReconciler(e.client, WithStateBackend(be))
	ctx := context.Background()
	if _, err := a.Run(ctx, RunOptions{Trigger: TriggerManual}); err != nil {
		t.Fatal(err)
	}
	if tags := be.state(t).Tags; !slices.Contains(tags, "german") {
		t.Fatalf("shared state tags = %v; want german among them", tags)
	}
	ann := e.agentByEmail("ann@example.com")
	if _, err := e.client.UpdateAgent(ctx, ann.ID, babelforce.AgentUpdate{Tags: &[]string{"billing", "german", "vip"}}); err != nil {
		t.Fatal(err)
	}
	// german is ann's only: once she leaves skill-german, no desired agent has it
	e.dir.edit("u-ann", func(p *person) { p.groups = []string{"agents", "skill-billing", "team-Support"} })
	if _, err := b.Run(ctx, RunOptions{Trigger: TriggerManual}); err != nil {
		t.Fatal(err)
	}
	if got := sortedTags(e.agentByEmail("ann@example.com")); !slices.Equal(got, []string{"billing", "vip"}) {
		t.Errorf("ann's tags after replica B's run = %v; want [billing vip] (german managed, vip hand-set)", got)
	}
	// and A, next, sees what B did: nothing left to do
	e.sim.ResetCalls()
	rep, err := a.Run(ctx, RunOptions{Trigger: TriggerManual})
	if err != nil || e.sim.WriteCalls() != 0 {
		t.Errorf("replica A after B: %v, writes %v, plan:\n%s", err, e.writes(), planText(rep.Plan))
	}
}

// TestStateFileImportedIntoEmptyBackend: upgrading from one replica with sync.state_file to a
// shared store keeps the grace periods and managed tags the file remembers; once the store
// has state, the file is no longer read.
func TestStateFileImportedIntoEmptyBackend(t *testing.T) {
	e := newEnv(t, standardPeople(), func(c *Config) {
		c.Delete.Enabled = true
		c.Delete.GracePeriod = 48 * time.Hour
	})
	e.run(RunOptions{})
	e.dir.remove("u-carol")
	e.run(RunOptions{}) // disables carol; the file remembers since when
	carol := e.agentByEmail("carol@example.com")
	before, err := os.ReadFile(e.cfg.StateFile)
	if err != nil {
		t.Fatal(err)
	}

	be := &memBackend{}
	var logs syncBuffer
	e.rec = e.newReconciler(e.client, WithStateBackend(be),
		WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	// a plan imports too, but writes nothing anywhere
	if _, err := e.rec.Plan(context.Background(), Scope{}); err != nil {
		t.Fatal(err)
	}
	if loads, saves := be.counts(); loads != 1 || saves != 0 {
		t.Fatalf("after a plan: backend loads %d, saves %d; want 1 and 0", loads, saves)
	}
	e.advance(48 * time.Hour)
	e.sim.ResetCalls()
	e.run(RunOptions{})
	equalCounts(t, e.writes(), map[string]int{"DELETE /api/v2/agents/{id}": 1})
	if _, ok := e.sim.Agent(carol.ID); ok {
		t.Error("carol's agent still exists: the imported grace period was not honoured")
	}
	if !strings.Contains(logs.String(), "importing the state file") || !strings.Contains(logs.String(), e.cfg.StateFile) {
		t.Errorf("the import is not logged:\n%s", logs.String())
	}
	st := be.state(t)
	if !slices.Contains(st.Tags, "german") || !slices.Contains(st.Groups, "Support") {
		t.Errorf("the store's state lacks the imported managed tags/groups: %+v", st)
	}
	if after, err := os.ReadFile(e.cfg.StateFile); err != nil || !bytes.Equal(after, before) {
		t.Errorf("the state file changed after the import (%v): it is only read now", err)
	}
	// the store has state now: the file is not read any more, even broken
	if err := writeFile(e.cfg.StateFile, "{not json"); err != nil {
		t.Fatal(err)
	}
	e.sim.ResetCalls()
	e.run(RunOptions{})
	if e.sim.WriteCalls() != 0 {
		t.Errorf("writes after the import: %v", e.writes())
	}
}

// TestStateBackendErrors: a state that cannot be loaded stops the run before any write; one
// that cannot be saved is reported after the changes were applied.
func TestStateBackendErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("load", func(t *testing.T) {
		be := &memBackend{loadErr: errors.New("database is down")}
		e := newEnv(t, standardPeople(), func(c *Config) { c.StateFile = "" })
		e.rec = e.newReconciler(e.client, WithStateBackend(be))
		rep, err := e.rec.Run(ctx, RunOptions{Trigger: TriggerManual})
		if err == nil || !strings.Contains(err.Error(), "database is down") || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("run error = %v", err)
		}
		if e.sim.WriteCalls() != 0 || len(rep.Errors) != 1 {
			t.Errorf("writes %v, report errors %v", e.writes(), rep.Errors)
		}
		if _, err := e.rec.Plan(ctx, Scope{}); err == nil {
			t.Error("plan without state: no error")
		}
		if _, saves := be.counts(); saves != 0 {
			t.Errorf("%d saves after a failed load", saves)
		}
	})
	t.Run("invalid JSON", func(t *testing.T) {
		be := &memBackend{data: []byte("{not json")}
		e := newEnv(t, standardPeople(), func(c *Config) { c.StateFile = "" })
		e.rec = e.newReconciler(e.client, WithStateBackend(be))
		if _, err := e.rec.Run(ctx, RunOptions{Trigger: TriggerManual}); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
			t.Fatalf("run error = %v", err)
		}
		if e.sim.WriteCalls() != 0 {
			t.Errorf("writes %v", e.writes())
		}
	})
	t.Run("save", func(t *testing.T) {
		be := &memBackend{saveErr: errors.New("disk full")}
		e := newEnv(t, standardPeople(), func(c *Config) { c.StateFile = "" })
		e.rec = e.newReconciler(e.client, WithStateBackend(be))
		rep, err := e.rec.Run(ctx, RunOptions{Trigger: TriggerManual})
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("run error = %v", err)
		}
		if rep.Counts[StatusApplied] == 0 || len(e.sim.Agents()) != 4 {
			t.Errorf("the changes were not applied: counts %v", rep.Counts)
		}
	})
	t.Run("save after the run's ctx is cancelled", func(t *testing.T) {
		be := &memBackend{}
		cctx, cancel := context.WithCancel(ctx)
		e := newEnv(t, standardPeople(), func(c *Config) { c.StateFile = "" })
		e.rec = e.newReconciler(e.client, WithStateBackend(be))
		st, err := e.rec.state.loadContext(cctx)
		if err != nil {
			t.Fatal(err)
		}
		st.Tags = []string{"x"}
		cancel()
		if err := e.rec.state.saveContext(cctx, st); err != nil {
			t.Fatalf("save with a cancelled run ctx: %v", err)
		}
		if got := be.state(t).Tags; !slices.Equal(got, []string{"x"}) {
			t.Errorf("saved tags %v", got)
		}
	})
}

// TestStateBackendWithoutFile: a new store and no file is a fresh state, and no file appears.
func TestStateBackendWithoutFile(t *testing.T) {
	be := &memBackend{}
	e := newEnv(t, standardPeople(), nil)
	e.rec = e.newReconciler(e.client, WithStateBackend(be))
	e.run(RunOptions{})
	if _, err := os.Stat(e.cfg.StateFile); !os.IsNotExist(err) {
		t.Errorf("state file written with a backend: %v", err)
	}
	if st := be.state(t); !slices.Contains(st.Tags, "billing") {
		t.Errorf("stored state %+v", st)
	}
}
