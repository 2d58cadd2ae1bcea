package provisioning

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce/babelforcetest"
)

// chaosPeople is n active people in scope, with teams, skills, and every tenth a supervisor.
func chaosPeople(n int) []person {
	var out []person
	for i, p := range bigPeople(n, 12) {
		if i%10 == 0 {
			p.groups = append(p.groups, "supervisors")
		}
		out = append(out, *p)
	}
	return out
}

// newChaosEnv is an env whose simulator injects the seeded fault mix at rate.
func newChaosEnv(t *testing.T, people []person, seed int64, rate float64) *env {
	t.Helper()
	e := &env{t: t, dir: newFixture(people...), rules: testRules(t), cfg: DefaultConfig(),
		now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	e.sim = babelforcetest.New(t, babelforcetest.Options{Seed: seed, Faults: babelforcetest.Mix(rate, time.Second)})
	e.client = simClient(t, e.sim)
	e.cfg.StateFile = t.TempDir() + "/state.json"
	e.cfg.Concurrency = 8
	e.rec = e.newReconciler(e.client)
	return e
}

// faultFreePlan plans with the simulator's faults off (and puts them back).
func (e *env) faultFreePlan() *Plan {
	e.t.Helper()
	f := e.sim.CurrentFaults()
	if err := e.sim.SetFaults(babelforcetest.Faults{}); err != nil {
		e.t.Fatal(err)
	}
	defer func() {
		if err := e.sim.SetFaults(f); err != nil {
			e.t.Fatal(err)
		}
	}()
	p, err := e.rec.Plan(context.Background(), Scope{})
	if err != nil {
		e.t.Fatalf("fault-free plan: %v", err)
	}
	return p
}

// checkNoDuplicatesNoDisables fails the test for two agents or login users of one person,
// or a disabled agent or login user of someone active (everyone in people is).
func (e *env) checkNoDuplicatesNoDisables(people []person) {
	e.t.Helper()
	active := map[string]bool{}
	for _, p := range people {
		active[key(p.id)] = p.active
	}
	agents := map[string]int{}
	for _, a := range e.sim.Agents() {
		agents[key(a.SourceID)]++
		if active[key(a.SourceID)] && !a.IsEnabled() {
			e.t.Errorf("agent %s of an active person is disabled", a.Email)
		}
	}
	users := map[string]int{}
	for _, u := range e.sim.SCIMUsers() {
		users[strings.ToLower(u.UserName)]++
		if active[key(u.ExternalID)] && !u.IsActive() {
			e.t.Errorf("login user %s of an active person is deactivated", u.UserName)
		}
	}
	for k, n := range agents {
		if n > 1 {
			e.t.Errorf("%d agents for directory user %s", n, k)
		}
	}
	for k, n := range users {
		if n > 1 {
			e.t.Errorf("%d login users %s", n, k)
		}
	}
	if len(agents) != len(people) || len(users) != len(people) {
		e.t.Errorf("%d agents and %d login users for %d people", len(agents), len(users), len(people))
	}
}

// TestChaosConvergesUnderFaults: 1,000 people against a babelforce that fails 20% of all
// requests (429, 500, 502, 503, 504, dropped connections, answers cut after the headers,
// answers lost after the write was applied): reconcile runs converge within 3 runs (then a
// fault-free plan is empty) with no duplicate agent or login user and nobody wrongly
// disabled.
func TestChaosConvergesUnderFaults(t *testing.T) {
	people := chaosPeople(1000)
	e := newChaosEnv(t, people, 20261205, 0.2)
	converged := 0
	for run := 1; run <= 3 && converged == 0; run++ {
		rep, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerManual})
		if rep == nil {
			t.Fatalf("run %d: no report: %v", run, err)
		}
		t.Logf("run %d: applied %d failed %d errors %d", run, rep.Counts[StatusApplied], rep.Counts[StatusFailed], len(rep.Errors))
		if p := e.faultFreePlan(); len(p.Changes) == 0 {
			converged = run
		} else {
			t.Logf("after run %d: %d changes left, e.g. %+v", run, len(p.Changes), p.Changes[0])
		}
	}
	if converged == 0 {
		t.Fatalf("not converged after 3 runs")
	}
	e.checkNoDuplicatesNoDisables(people)
	calls, writes := 0, 0
	for k, n := range e.sim.Calls() {
		calls += n
		if !strings.HasPrefix(k, "GET ") {
			writes += n
		}
	}
	t.Logf("converged in %d run(s); %d requests to babelforce, %d of them writes", converged, calls, writes)
	if n := e.sim.Calls()["POST /api/v2/agents"]; n <= len(people) {
		t.Errorf("%d agent creates for %d people: no create was faulted and sent again?", n, len(people))
	}
}

// TestChaosCancelMidWrite: a run stopped in the middle of its writes (the context cancelled as
// SIGTERM does, and every connection cut as a kill -9 would) leaves babelforce half-written;
// the next run converges, with no duplicates.
func TestChaosCancelMidWrite(t *testing.T) {
	people := chaosPeople(300)
	e := newChaosEnv(t, people, 9, 0.05)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	rec := e.newReconciler(e.client, WithProgress(func(done, total int) {
		if done >= total/6 {
			once.Do(func() {
				cancel()
				e.sim.CloseClientConnections()
			})
		}
	}))
	rep, err := rec.Run(ctx, RunOptions{Trigger: TriggerManual})
	if err == nil {
		t.Fatal("the cancelled run reported no error")
	}
	if rep != nil && rep.Counts[StatusApplied] >= len(rep.Plan.Changes) {
		t.Fatalf("the run was not cut: applied %d of %d", rep.Counts[StatusApplied], len(rep.Plan.Changes))
	}
	created := len(e.sim.Agents())
	if created == 0 || created >= len(people) {
		t.Fatalf("%d agents after the cut run, want some but not all %d", created, len(people))
	}
	for run := 1; ; run++ {
		e.run2(run)
		if p := e.faultFreePlan(); len(p.Changes) == 0 {
			break
		}
		if run == 2 {
			t.Fatal("not converged within 2 runs after the cut")
		}
	}
	e.checkNoDuplicatesNoDisables(people)
}

// run2 runs a reconcile that may report failed changes (faults) but must not stop.
func (e *env) run2(n int) {
	e.t.Helper()
	rep, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerManual})
	if rep == nil || rep.Plan == nil {
		e.t.Fatalf("run %d stopped: %v", n, err)
	}
	e.t.Logf("run %d: %s", n, fmt.Sprint(rep.Counts[StatusApplied], " applied, ", rep.Counts[StatusFailed], " failed"))
}
