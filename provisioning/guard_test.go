package provisioning

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce"
)

// crowd is n people in scope, all with skill-billing, team-Support and (the first) supervisors.
func crowd(n int) []person {
	var out []person
	for i := range n {
		p := person{id: fmt.Sprintf("u-%02d", i), userName: fmt.Sprintf("p%02d", i), name: fmt.Sprintf("Person %02d", i),
			email: fmt.Sprintf("p%02d@example.com", i), active: true, groups: []string{"agents", "skill-billing", "team-Support"}}
		if i == 0 {
			p.groups = append(p.groups, "supervisors")
		}
		out = append(out, p)
	}
	return out
}

func refusal(t *testing.T, err error) []string {
	t.Helper()
	var ge *GuardError
	if !errors.As(err, &ge) {
		t.Fatalf("want a *GuardError, got %v", err)
	}
	return ge.Reasons
}

// Taking skills away from many people is destructive like disabling them: held back, while
// what the same updates add goes ahead.
func TestGuardCountsLostSkills(t *testing.T) {
	e := newEnv(t, crowd(20), nil)
	e.run(RunOptions{})
	for i := range 20 {
		e.dir.edit(fmt.Sprintf("u-%02d", i), func(p *person) {
			p.groups = slices.DeleteFunc(p.groups, func(g string) bool { return g == "skill-billing" })
			p.groups = append(p.groups, "skill-french") // billing gone, french new
		})
	}
	rep, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerManual})
	reasons := refusal(t, err)
	if len(reasons) != 1 || !strings.Contains(reasons[0], "20 people would be disabled, deleted or deactivated, or lose skills, agent groups or roles (100.0% of the 20 agents bridge owns)") {
		t.Errorf("reasons %q", reasons)
	}
	if n := rep.Counts[string(RemoveTag)+"/"+StatusSkipped]; n != 20 {
		t.Errorf("%d tag removals held, want 20 (counts %v)", n, rep.Counts)
	}
	a := e.agentByEmail("p07@example.com")
	if got := sortedTags(a); !slices.Equal(got, []string{"billing", "french"}) {
		t.Errorf("tags %v, want billing kept and french added", got)
	}
	// --force applies what was held.
	if _, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerManual, Force: true}); err != nil {
		t.Fatal(err)
	}
	if got := sortedTags(e.agentByEmail("p07@example.com")); !slices.Equal(got, []string{"french"}) {
		t.Errorf("tags after --force %v", got)
	}
}

// Leaving agent groups and losing roles count too.
func TestGuardCountsLostGroupsAndRoles(t *testing.T) {
	e := newEnv(t, crowd(12), func(c *Config) { c.Guard.MaxDestructive = 5 })
	e.run(RunOptions{})
	for i := range 12 {
		e.dir.edit(fmt.Sprintf("u-%02d", i), func(p *person) { p.groups = []string{"agents", "skill-billing", "supervisors"} })
	}
	e.dir.edit("u-00", func(p *person) { p.groups = []string{"agents", "skill-billing", "team-Support"}; p.name = "Renamed" })
	rep, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerManual})
	reasons := refusal(t, err)
	if !strings.Contains(reasons[0], "12 people would") {
		t.Errorf("reasons %q", reasons)
	}
	if n := rep.Counts[string(LeaveAgentGroup)+"/"+StatusSkipped]; n != 11 {
		t.Errorf("%d group leaves held, want 11 (counts %v)", n, rep.Counts)
	}
	// u-00 loses the supervisor role: held, but the rename of its login user goes ahead.
	u := e.scimUser("p00@example.com")
	if u == nil || u.DisplayName != "Renamed" || !slices.ContainsFunc(u.Roles, func(v babelforce.SCIMValue) bool { return v.Value == "supervisor" }) {
		t.Errorf("login user %+v: want renamed and still supervisor", u)
	}
	for _, c := range rep.Plan.Held {
		if c.Kind == UpdateLoginUser && c.Subject == "p00@example.com" {
			return
		}
	}
	t.Errorf("the role loss of p00 is not among the held changes: %+v", rep.Plan.Held)
}

// A group a rule names exactly that vanishes from the read holds back the destructive part,
// even for one person, naming the group; --force accepts it once.
func TestGuardMissingNamedGroup(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	e.run(RunOptions{})
	e.dir.edit("u-bob", func(p *person) { p.groups = []string{"agents", "skill-sales", "team-Sales"} }) // "supervisors" is gone
	e.dir.edit("u-ann", func(p *person) { p.name = "Ann Renamed" })
	rep, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerManual})
	reasons := refusal(t, err)
	if len(reasons) != 1 || !strings.Contains(reasons[0], `group "supervisors", named by mapping rule roles[0], was in the last good directory read and is missing from this one`) {
		t.Fatalf("reasons %q", reasons)
	}
	if rep.Counts[string(UpdateAgent)+"/"+StatusApplied] != 1 {
		t.Errorf("the rename was not applied: %v", rep.Counts)
	}
	// still refused on the next run: that read is not a good one
	if _, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerManual}); !errors.Is(err, ErrGuardRefused) {
		t.Fatalf("second run: %v", err)
	}
	if _, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerManual, Force: true}); err != nil {
		t.Fatal(err)
	}
	// accepted: the group is no longer expected
	if _, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerManual}); err != nil {
		t.Fatalf("after --force: %v", err)
	}
}

// A leaver is switched off even when another person has the same e-mail: the conflict is
// reported, not a reason to skip them.
func TestLeaverWithSharedEmailIsSwitchedOff(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	e.run(RunOptions{})
	e.dir.edit("u-ann", func(p *person) { p.active = false })
	e.dir.put(person{id: "u-ann2", userName: "ann2", name: "Ann Two", email: "ann@example.com", active: true, groups: []string{"agents"}})
	rep := e.run(RunOptions{})
	if a := e.agentByEmail("ann@example.com"); a.IsEnabled() {
		t.Error("the leaver's agent is still enabled")
	}
	if u := e.scimUser("ann@example.com"); u == nil || u.IsActive() {
		t.Errorf("the leaver's login user: %+v", u)
	}
	if rep.Summary.Conflicts != 1 || len(rep.Plan.Conflicts) != 1 || !strings.Contains(rep.Plan.Conflicts[0].Reason, "also the e-mail of ann2") {
		t.Errorf("conflict not reported: summary %+v conflicts %+v", rep.Summary, rep.Plan.Conflicts)
	}
	if !strings.Contains(rep.Summary.String(), "1 leaver switched off despite a conflict") {
		t.Errorf("summary line %q", rep.Summary.String())
	}
	if len(e.sim.Agents()) != 4 {
		t.Errorf("%d agents: the newcomer with the taken e-mail must not get one", len(e.sim.Agents()))
	}
}

// A leaver is switched off even when a field of theirs cannot be mapped any more.
func TestLeaverWithUnmappableFieldIsSwitchedOff(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	e.run(RunOptions{})
	e.dir.edit("u-carol", func(p *person) { p.active = false; p.email = "carol@@example" })
	rep := e.run(RunOptions{})
	for _, a := range e.sim.Agents() {
		if a.SourceID == "u-carol" && a.IsEnabled() {
			t.Error("the leaver's agent is still enabled")
		}
	}
	if rep.Summary.Conflicts != 1 {
		t.Errorf("summary %+v", rep.Summary)
	}
	// someone active whose field cannot be mapped is still left alone
	e.dir.edit("u-dave", func(p *person) { p.email = "dave@@example" })
	rep = e.run(RunOptions{})
	if a := e.agentByEmail("dave@example.com"); !a.IsEnabled() {
		t.Error("an active person with a bad field was disabled")
	}
	if rep.Counts[StatusApplied] != 0 {
		t.Errorf("applied %v", rep.Counts)
	}
}

// A failed scheduled run is retried after 30 s, 60 s, ... (at most the interval), each retry
// a normal run; a success goes back to the interval.
func TestScheduleRetriesAFailedRun(t *testing.T) {
	e := newEnv(t, standardPeople(), func(c *Config) { c.Interval = 3 * time.Minute })
	ticks := make(chan time.Time)
	delays := make(chan time.Duration, 10)
	e.rec = e.newReconciler(e.client, WithAfter(func(d time.Duration) <-chan time.Time {
		delays <- d
		return ticks
	}), WithRandom(func() float64 { return 0.5 })) // no jitter
	e.dir.setErr(errors.New("ldap: connection refused"))
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { e.rec.Schedule(ctx); close(stopped) }()
	var got []time.Duration
	for i := range 5 {
		got = append(got, <-delays)
		if i == 3 {
			e.dir.setErr(nil)
		}
		ticks <- time.Time{}
	}
	got = append(got, <-delays)
	cancel()
	<-stopped
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 3 * time.Minute, 3 * time.Minute, 3 * time.Minute}
	if !slices.Equal(got, want) {
		t.Errorf("delays %v, want %v", got, want)
	}
	if len(e.sim.Agents()) != 4 {
		t.Errorf("the retried run did not reconcile: %d agents", len(e.sim.Agents()))
	}
	if !runFailed(nil, errors.New("x")) || runFailed(&Report{Plan: &Plan{}, Counts: map[string]int{}}, &GuardError{Reasons: []string{"x"}}) {
		t.Error("runFailed: a read error must be retried, a guard refusal alone not")
	}
}
