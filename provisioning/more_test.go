package provisioning

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/mapping"
)

func TestProvisionUsers(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	e.run(RunOptions{})
	e.dir.edit("u-ann", func(p *person) { p.name = "Ann Abbott" })
	e.dir.edit("u-bob", func(p *person) { p.phone = "+49 40 222222" })
	e.sim.ResetCalls()

	rep, err := e.rec.ProvisionUsers(context.Background(), TriggerSCIMPush, "BOB@example.com")
	if err != nil {
		t.Fatal(err)
	}
	equalCounts(t, e.writes(), map[string]int{"PUT /api/v2/agents/{id}": 1})
	if a := e.agentByEmail("ann@example.com"); a.Name != "Ann Arbor" {
		t.Error("provisioning bob changed ann")
	}
	if !slices.Equal(rep.Users, []string{"u-bob"}) || rep.Trigger != TriggerSCIMPush {
		t.Errorf("report users %v trigger %q", rep.Users, rep.Trigger)
	}
	// only filtered reads: no whole listing
	for k, n := range e.sim.Calls() {
		if strings.HasPrefix(k, "GET ") && n > 2 {
			t.Errorf("%s called %d times for one user", k, n)
		}
	}

	// a user gone from the directory: found by e-mail among bridge's agents, disabled
	e.dir.remove("u-carol")
	e.sim.ResetCalls()
	if _, err := e.rec.ProvisionUsers(context.Background(), TriggerManual, "carol@example.com"); err != nil {
		t.Fatal(err)
	}
	equalCounts(t, e.writes(), map[string]int{"PUT /api/v2/agents/{id}/disable": 1, "PATCH /auth/scim/v2/Users/{id}": 1})

	// by id and by userName
	e.sim.ResetCalls()
	if _, err := e.rec.ProvisionUsers(context.Background(), TriggerManual, "u-ann", "dave"); err != nil {
		t.Fatal(err)
	}
	equalCounts(t, e.writes(), map[string]int{"PUT /api/v2/agents/{id}": 1, "PUT /auth/scim/v2/Users/{id}": 1})

	_, err = e.rec.ProvisionUsers(context.Background(), TriggerManual, "nobody@example.com")
	if !errors.Is(err, ErrUnknownUser) {
		t.Errorf("err = %v, want ErrUnknownUser", err)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	rep := e.run(RunOptions{DryRun: true})
	if n := e.sim.WriteCalls(); n != 0 {
		t.Fatalf("dry run wrote %d times", n)
	}
	if rep.Counts["create_agent/planned"] != 4 || len(rep.Results) != 0 || !rep.DryRun {
		t.Errorf("report: %+v", rep.Counts)
	}
	p, err := e.rec.Plan(context.Background(), Scope{})
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Summary(); s.Create != 4 || s.LoginCreate != 4 || s.Skipped != 0 || s.OutOfScope != 1 || s.Changes[CreateAgent] != 4 {
		t.Errorf("summary %+v", s)
	}
	if e.sim.WriteCalls() != 0 {
		t.Error("Plan wrote")
	}
}

func TestExternalIDs(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	rules, err := mapping.Compile(mapping.Config{AgentSource: testSource,
		Scope:       mapping.ScopeConfig{IncludeGroups: []string{"agents"}},
		Phone:       mapping.PhoneConfig{DefaultRegion: "DE"},
		ExternalIDs: []mapping.ExternalIDRule{{Integration: "zendesk", Attribute: "employeeNumber"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.rules = rules
	e.dir.edit("u-ann", func(p *person) { p.attrs = map[string][]string{"employeenumber": {"1001"}} })
	e.dir.edit("u-bob", func(p *person) { p.attrs = map[string][]string{"employeenumber": {"1002"}} })
	e.rec = e.newReconciler(e.client)
	e.run(RunOptions{})
	ann := e.agentByEmail("ann@example.com")
	if got := e.sim.ExternalIDs(ann.ID); len(got) != 1 || got[0].ExternalID != "1001" || got[0].IntegrationID != "zendesk" {
		t.Fatalf("ann's external ids = %v", got)
	}
	// no-op: reads external ids of the two agents that have some, writes nothing
	e.sim.ResetCalls()
	e.run(RunOptions{})
	if e.sim.WriteCalls() != 0 || e.sim.Calls()["GET /api/v2/agents/{id}/external-ids"] != 2 {
		t.Errorf("calls %v", e.sim.Calls())
	}
	// change one, clear the other
	e.dir.edit("u-ann", func(p *person) { p.attrs = map[string][]string{"employeenumber": {"2001"}} })
	e.dir.edit("u-bob", func(p *person) { p.attrs = nil })
	e.sim.ResetCalls()
	e.run(RunOptions{})
	equalCounts(t, e.writes(), map[string]int{
		"PUT /api/v2/agents/{id}/external-ids/{integrationId}":    1,
		"DELETE /api/v2/agents/{id}/external-ids/{integrationId}": 1,
	})
	// bob has none now and bridge remembers that: only ann's are read
	e.sim.ResetCalls()
	e.run(RunOptions{})
	if e.sim.WriteCalls() != 0 || e.sim.Calls()["GET /api/v2/agents/{id}/external-ids"] != 1 {
		t.Errorf("calls %v", e.sim.Calls())
	}
}

func TestHandSetTagsAndGroupsStay(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	vip := e.sim.PutAgentGroup(babelforce.AgentGroup{Name: "VIP line"})
	e.run(RunOptions{})
	ann := e.agentByEmail("ann@example.com")
	// an admin adds a skill and a group by hand
	if _, err := e.client.UpdateAgent(context.Background(), ann.ID, babelforce.AgentUpdate{Tags: &[]string{"billing", "german", "vip"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.client.AddAgentToGroup(context.Background(), vip.ID, ann.ID); err != nil {
		t.Fatal(err)
	}
	e.sim.ResetCalls()
	e.run(RunOptions{})
	if e.sim.WriteCalls() != 0 {
		t.Errorf("bridge touched hand-set tags or groups: %v", e.writes())
	}
	// the directory takes german away: one update keeps vip
	e.dir.edit("u-ann", func(p *person) { p.groups = []string{"agents", "skill-billing", "team-Support"} })
	e.run(RunOptions{})
	if got := sortedTags(e.agentByEmail("ann@example.com")); !slices.Equal(got, []string{"billing", "vip"}) {
		t.Errorf("tags = %v", got)
	}
}

func TestGroupNamesMatchCaseInsensitively(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	e.sim.PutAgentGroup(babelforce.AgentGroup{Name: "support"})
	e.run(RunOptions{})
	w := e.writes()
	if w["POST /api/v2/agents/groups"] != 1 { // only Sales
		t.Errorf("writes %v", w)
	}
	if got := groupNames(e.agentByEmail("ann@example.com")); !slices.Equal(got, []string{"support"}) {
		t.Errorf("ann's groups %v", got)
	}
	e.sim.ResetCalls()
	e.run(RunOptions{})
	if e.sim.WriteCalls() != 0 {
		t.Errorf("writes %v", e.writes())
	}
}

type fakeTask struct {
	mu      sync.Mutex
	pending []Change
	applied []Change
	planErr error
}

func (f *fakeTask) Name() string { return "fake" }
func (f *fakeTask) Plan(ctx context.Context) ([]Change, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.pending), f.planErr
}
func (f *fakeTask) Apply(ctx context.Context, c Change) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, c)
	f.pending = nil
	return nil
}

func TestSideTasks(t *testing.T) {
	task := &fakeTask{pending: []Change{{Kind: UpdateSSO, Subject: "sso", Fields: []FieldChange{{Field: "issuer", Before: "a", After: "b"}}}}}
	e := newEnv(t, standardPeople(), nil, WithSideTasks(task))
	rep := e.run(RunOptions{})
	if len(task.applied) != 1 || rep.Plan.Changes[0].Kind != UpdateSSO || rep.Counts["update_sso/applied"] != 1 {
		t.Fatalf("side task: applied %v, first change %v", task.applied, rep.Plan.Changes[0])
	}
	if !strings.Contains(planText(rep.Plan), `~ update sso sso  issuer: "a" → "b"`) {
		t.Errorf("plan:\n%s", planText(rep.Plan))
	}
	// scoped runs leave side tasks out; a failing side-task plan is reported, the rest runs
	task.pending = []Change{{Kind: UpdateSSO, Subject: "sso"}}
	if _, err := e.rec.ProvisionUsers(context.Background(), TriggerManual, "ann"); err != nil {
		t.Fatal(err)
	}
	if len(task.applied) != 1 {
		t.Error("a scoped run applied a side task")
	}
	task.planErr = errors.New("issuer unreachable")
	e.dir.edit("u-ann", func(p *person) { p.name = "Ann Abbott" })
	rep, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerManual})
	if err == nil || !strings.Contains(err.Error(), "plan fake: issuer unreachable") || rep.Counts["update_agent/applied"] != 1 {
		t.Errorf("err %v counts %v", err, rep.Counts)
	}
}

func TestBusyAndSchedule(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	ticks := make(chan time.Time)
	var mu sync.Mutex
	var delays []time.Duration
	rnd := 0.0
	e.rec = e.newReconciler(e.client, WithAfter(func(d time.Duration) <-chan time.Time {
		mu.Lock()
		defer mu.Unlock()
		delays = append(delays, d)
		return ticks
	}), WithRandom(func() float64 { mu.Lock(); defer mu.Unlock(); return rnd }))

	// a scheduled run while another is in flight: ErrBusy; an on-demand one waits
	e.rec.running <- struct{}{}
	if _, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerSchedule}); !errors.Is(err, ErrBusy) {
		t.Errorf("scheduled run while busy: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := e.rec.Run(ctx, RunOptions{Trigger: TriggerManual}); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("waiting run: %v", err)
	}
	<-e.rec.running

	ctx, cancel = context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { e.rec.Schedule(ctx); close(stopped) }()
	ticks <- time.Time{} // the first run is done once the scheduler waits for this tick
	mu.Lock()
	rnd = 0.999999
	mu.Unlock()
	ticks <- time.Time{}
	cancel()
	<-stopped
	if st := e.rec.Status(); len(st) < 3 || st[0].Trigger != TriggerSchedule {
		t.Errorf("status: %d runs", len(st))
	}
	if len(e.sim.Agents()) != 4 {
		t.Error("scheduled runs did not reconcile")
	}
	mu.Lock()
	defer mu.Unlock()
	// interval 15m, jitter 10%: random 0 → 13.5m, random ~1 → ~16.5m
	if len(delays) < 2 || delays[0] != 13*time.Minute+30*time.Second || delays[1] < 16*time.Minute+29*time.Second || delays[1] > 16*time.Minute+30*time.Second {
		t.Errorf("delays %v", delays)
	}
}

// TestScheduleObserveMode: with sync.dry_run, scheduled runs plan and report but write nothing.
func TestScheduleObserveMode(t *testing.T) {
	e := newEnv(t, standardPeople(), func(c *Config) { c.DryRun = true })
	ticks := make(chan time.Time)
	rec := e.newReconciler(e.client, WithAfter(func(time.Duration) <-chan time.Time { return ticks }))
	e.sim.ResetCalls()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { rec.Schedule(ctx); close(stopped) }()
	ticks <- time.Time{} // the first run is done once the scheduler waits for this tick
	cancel()
	<-stopped
	st := rec.Status() // newest first; a second run may have started before cancel
	for _, r := range st {
		if !r.DryRun || r.Trigger != TriggerSchedule {
			t.Errorf("run %+v, want a scheduled dry run", r)
		}
	}
	if first := st[len(st)-1]; first.Summary == nil || first.Summary.Create != 4 {
		t.Errorf("the first dry run planned %+v, want 4 creates", first.Summary)
	}
	if w := e.sim.WriteCalls(); w != 0 || len(e.sim.Agents()) != 0 {
		t.Errorf("observe mode wrote %d calls, %d agents", w, len(e.sim.Agents()))
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c := DefaultConfig()
	c.Concurrency = 0
	c.Interval = time.Second
	c.Jitter = 150
	c.Delete.Enabled = true
	c.Delete.GracePeriod = 0
	c.Guard.MaxDestructivePercent = -1
	err := c.Validate()
	for _, want := range []string{"sync.concurrency", "sync.interval", "sync.jitter", "sync.delete.grace_period", "sync.guard.max_destructive_percent"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s: %v", want, err)
		}
	}
}

func TestPlanJSONIsStable(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	var a, b bytes.Buffer
	p1, err := e.rec.Plan(context.Background(), Scope{})
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := e.rec.Plan(context.Background(), Scope{})
	p1.WriteJSON(&a)
	p2.WriteJSON(&b)
	if a.String() != b.String() {
		t.Error("two plans of the same state render differently")
	}
	var back struct {
		Changes []Change `json:"changes"`
		Summary Summary  `json:"summary"`
	}
	if err := json.Unmarshal(a.Bytes(), &back); err != nil || len(back.Changes) != len(p1.Changes) || back.Summary.Create != 4 {
		t.Errorf("json: %v %+v", err, back.Summary)
	}
}

func TestStateFileIsWrittenAtomically(t *testing.T) {
	dir := t.TempDir()
	s := &stateStore{path: dir + "/state.json"}
	st, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	st.Disabled["a1"] = time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	st.Tags = []string{"x"}
	if err := s.save(st); err != nil {
		t.Fatal(err)
	}
	got, err := (&stateStore{path: s.path}).load()
	if err != nil || !got.Disabled["a1"].Equal(st.Disabled["a1"]) || !slices.Equal(got.Tags, []string{"x"}) {
		t.Errorf("reloaded %+v, %v", got, err)
	}
	if err := writeFile(s.path, "{not json"); err != nil {
		t.Fatal(err)
	}
	if _, err := (&stateStore{path: s.path}).load(); err == nil || !strings.Contains(err.Error(), "delete it to start afresh") {
		t.Errorf("corrupt state: %v", err)
	}
}

func TestExplain(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	e.run(RunOptions{})
	e.dir.edit("u-bob", func(p *person) { p.phone = "+49 40 222222" })
	e.dir.remove("u-carol")
	e.sim.ResetCalls()

	x, err := e.rec.Explain(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !x.Owned || x.Agent == nil || x.LoginUser == nil || len(x.Changes) != 1 || x.Changes[0].Kind != UpdateAgent ||
		!slices.Equal(x.Groups, []string{"Sales"}) || !x.Mapping.InScope {
		t.Errorf("explanation %+v", x)
	}
	// the login user as babelforce holds it: a whole read, not the reconcile's lean one
	if u := x.LoginUser; u == nil || len(u.Emails) != 1 || u.Emails[0].Value != "bob@example.com" {
		t.Errorf("login user %+v, want it whole (with its e-mails)", x.LoginUser)
	}
	var b bytes.Buffer
	if err := x.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"owned by bridge", "login user bob@example.com: roles agent, supervisor, active true, managed by bridge",
		`~ update agent bob@example.com  number: "+49307654321" → "+4940222222"`, "agent groups: Sales"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("explanation lacks %q:\n%s", want, b.String())
		}
	}
	// a person gone from the directory
	x, err = e.rec.Explain(context.Background(), "carol@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if x.Mapping.Found || len(x.Changes) != 2 || x.Changes[0].Kind != DisableAgent {
		t.Errorf("carol: %+v", x.Changes)
	}
	// someone with a hand-made agent
	e.dir.put(person{id: "u-hank", userName: "hank", name: "Hank", email: "hank@example.com", active: true, groups: []string{"agents"}})
	e.sim.PutAgent(babelforce.Agent{Name: "Hank by hand", Email: "hank@example.com"})
	x, err = e.rec.Explain(context.Background(), "hank@example.com")
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	x.WriteText(&b)
	if x.Owned || x.Agent == nil || !strings.Contains(b.String(), "NOT owned by bridge") || !strings.Contains(b.String(), "set sync.adopt: true") {
		t.Errorf("hank:\n%s", b.String())
	}
	if e.sim.WriteCalls() != 0 {
		t.Errorf("explain wrote: %v", e.writes())
	}
}

func TestNewDirectoryIDTakesOverTheAgent(t *testing.T) {
	for _, scoped := range []bool{false, true} {
		t.Run(map[bool]string{false: "full run", true: "provision one user"}[scoped], func(t *testing.T) {
			e := newEnv(t, standardPeople(), nil)
			e.run(RunOptions{})
			ann := e.agentByEmail("ann@example.com")
			// the account is deleted and created again: same person, new id
			p := standardPeople()[0]
			p.id = "u-ann-2"
			e.dir.remove("u-ann")
			e.dir.put(p)
			e.sim.ResetCalls()
			var rep *Report
			var err error
			if scoped {
				rep, err = e.rec.ProvisionUsers(context.Background(), TriggerManual, "u-ann-2")
			} else {
				rep, err = e.rec.Run(context.Background(), RunOptions{Trigger: TriggerManual})
			}
			if err != nil {
				t.Fatal(err)
			}
			equalCounts(t, e.writes(), map[string]int{"PUT /api/v2/agents/{id}": 1, "PUT /auth/scim/v2/Users/{id}": 1})
			got, _ := e.sim.Agent(ann.ID)
			if got.SourceID != "u-ann-2" || !got.IsEnabled() || len(e.sim.Agents()) != 4 {
				t.Errorf("agent %+v", got)
			}
			if u := e.scimUser("ann@example.com"); u == nil || u.ExternalID != "u-ann-2" {
				t.Errorf("login user %+v", u)
			}
			if !strings.Contains(planText(rep.Plan), "the directory id of this person changed (was u-ann)") {
				t.Errorf("plan:\n%s", planText(rep.Plan))
			}
			e.sim.ResetCalls()
			e.run(RunOptions{})
			if e.sim.WriteCalls() != 0 {
				t.Errorf("writes after the takeover: %v", e.writes())
			}
		})
	}
}

func TestConvergesThroughRateLimits(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	if err := e.sim.SetFaults(babelforcetest.Faults{Rate429: 0.3, RetryAfter: time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerManual}); err != nil {
		t.Fatalf("first run: %v", err)
	}
	e.sim.ResetCalls()
	e.run(RunOptions{})
	if n := e.sim.WriteCalls(); n != 0 {
		t.Errorf("second run wrote %d times: %v", n, e.writes())
	}
	if len(e.sim.Agents()) != 4 || len(e.sim.SCIMUsers()) != 4 {
		t.Errorf("%d agents, %d login users", len(e.sim.Agents()), len(e.sim.SCIMUsers()))
	}
}
