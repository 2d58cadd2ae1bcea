package provisioning

import (
	"context"
	"sync"
	"testing"
)

// TestResultsOnePerChangeInPlanOrder: a run cut in the middle of its writes reports every
// planned change exactly once, in plan order: the applied ones with the agent they created,
// the unreached ones skipped; and applying does not change the plan it reports.
func TestResultsOnePerChangeInPlanOrder(t *testing.T) {
	e := newEnv(t, standardPeople(), func(c *Config) { c.Concurrency = 2 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	rec := e.newReconciler(e.client, WithProgress(func(done, total int) {
		if done >= total/2 {
			once.Do(cancel)
		}
	}))
	rep, err := rec.Run(ctx, RunOptions{Trigger: TriggerManual})
	if err == nil || rep == nil || rep.Plan == nil {
		t.Fatalf("the cut run: report %v, error %v", rep, err)
	}
	changes := rep.Plan.Changes
	if len(rep.Results) != len(changes) {
		t.Fatalf("%d results for %d planned changes", len(rep.Results), len(changes))
	}
	applied, cancelled, audited := 0, 0, 0
	for i, res := range rep.Results {
		c := changes[i]
		if res.Change.Kind != c.Kind || res.Change.Subject != c.Subject || res.Change.Value != c.Value {
			t.Fatalf("result %d is %s %s %q, the plan's change %d is %s %s %q", i, res.Change.Kind, res.Change.Subject, res.Change.Value, i, c.Kind, c.Subject, c.Value)
		}
		switch {
		case res.Status == StatusApplied:
			applied++
			if c.Kind == CreateAgent && (res.Change.AgentID == "" || c.AgentID != "") {
				t.Errorf("applied create of %s: result agent %q, plan agent %q; want the new agent in the result only", c.Subject, res.Change.AgentID, c.AgentID)
			}
		case res.Status == StatusSkipped && res.Error == "not applied: the run was cancelled":
			cancelled++
		}
		if res.Status != StatusSkipped {
			audited++
		}
	}
	if applied == 0 || cancelled == 0 {
		t.Fatalf("want some changes applied and some cut: %d applied, %d cancelled of %d", applied, cancelled, len(changes))
	}
	if rep.Counts[StatusApplied] != applied {
		t.Errorf("counts say %d applied, the results %d", rep.Counts[StatusApplied], applied)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.audits) != audited {
		t.Errorf("%d audit records for %d changes applied or failed", len(e.audits), audited)
	}
}
