package provisioning

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/directory/store"
	"github.com/babelforce/bridge/internal/testenv"
	"github.com/babelforce/bridge/oidc"
)

// TestSSOTaskRunIsAReconcilerRun: bridge sso apply is a run of the reconciler limited to the
// SSO task: it takes the run lock, writes an audit record, reports, keeps the secret's
// fingerprint in the state the replicas share (the store) and shows in every replica's Runs;
// the directory and babelforce's agents are not read.
func TestSSOTaskRunIsAReconcilerRun(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	e := newEnv(t, standardPeople(), func(c *Config) { c.StateFile = "" })
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "bridge.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cfg := oidc.Config{Enabled: true, Issuer: op.Issuer, ClientID: op.ClientID, ClientSecret: op.ClientSecret, AllowInsecureHTTP: true}
	lock := &sharedLock{}
	// "replica" is the service, "cli" the process of bridge sso apply: each its own SSO task
	replica := func(name string) *Reconciler {
		task, err := NewSSOTask(cfg, e.client)
		if err != nil {
			t.Fatal(err)
		}
		return e.newReconciler(e.client, WithSideTasks(task), WithStateBackend(st), WithRunLock(lock.take(name)))
	}
	service, cli := replica("service"), replica("cli")
	calls := len(e.sim.Calls())

	rep, err := cli.Run(ctx, RunOptions{Trigger: TriggerCLI, Tasks: []string{"sso"}})
	if err != nil {
		t.Fatalf("sso run: %v", err)
	}
	if rep.Counts["update_sso/applied"] != 1 || e.sim.Calls()[ssoPutKey] != 1 || !slices.Equal(rep.Tasks, []string{"sso"}) {
		t.Fatalf("sso run: counts %v, %d PUTs, tasks %v", rep.Counts, e.sim.Calls()[ssoPutKey], rep.Tasks)
	}
	if n := e.dir.readCount(); n != 0 {
		t.Errorf("an sso run read the directory %d times", n)
	}
	for k := range e.sim.Calls() {
		if strings.Contains(k, "agent") {
			t.Errorf("an sso run called %s (%d calls before it)", k, calls)
		}
	}
	if holder, calls := lock.state(); holder != "" || calls != 1 {
		t.Errorf("run lock: holder %q after the run, asked %d times; want released, asked once", holder, calls)
	}
	if len(e.audits) != 1 || e.audits[0].Kind != UpdateSSO || e.audits[0].Result != StatusApplied || e.audits[0].Trigger != TriggerCLI {
		t.Errorf("audit records %+v; want one applied update_sso", e.audits)
	}
	for _, a := range e.audits {
		for _, v := range a.After {
			if strings.Contains(v, op.ClientSecret) {
				t.Errorf("audit record holds the secret: %+v", a)
			}
		}
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), "~ update sso") ||
		!strings.Contains(text.String(), "-> applied") || !strings.Contains(text.String(), "for the sso settings") {
		t.Errorf("report text (%v):\n%s", err, text.String())
	}

	// the service sees the run of the other process
	runs := service.Runs(ctx)
	if len(runs) != 1 || !slices.Equal(runs[0].Tasks, []string{"sso"}) || runs[0].Origin == "" || runs[0].Origin == service.origin ||
		runs[0].ID != 0 || runs[0].Counts["update_sso/applied"] != 1 {
		t.Fatalf("the service's Runs: %+v", runs)
	}
	if own := cli.Runs(ctx); len(own) != 1 || own[0].ID != rep.ID {
		t.Errorf("the cli's own Runs: %+v (its run once, with its id)", own)
	}

	// the fingerprint is in the shared state: the service's own SSO task, which never wrote
	// the secret, knows it
	rep, err = service.Run(ctx, RunOptions{Trigger: TriggerManual, Tasks: []string{"sso"}})
	if err != nil || len(rep.Plan.Changes) != 0 || e.sim.Calls()[ssoPutKey] != 1 {
		t.Fatalf("second sso run, other process: %v, changes %+v, %d PUTs", err, rep.Plan.Changes, e.sim.Calls()[ssoPutKey])
	}
	if runs := service.Runs(ctx); len(runs) != 2 || runs[0].ID != rep.ID || runs[1].Origin != cli.origin {
		t.Errorf("Runs newest first, own and other: %+v", runs)
	}

	// another replica holds the run lock: a scheduled sso run is skipped, a cli one waits and
	// gives up; neither writes
	lock.set("somebody")
	cfg.ClientID = "renamed"
	cli = replica("cli")
	cli.runLockWait, cli.runLockWaitSet, cli.runLockPoll = 20*time.Millisecond, true, time.Millisecond
	if _, err := cli.Run(ctx, RunOptions{Trigger: TriggerSchedule, Tasks: []string{"sso"}}); !errors.Is(err, ErrOtherReplica) {
		t.Errorf("scheduled sso run while another replica runs: %v", err)
	}
	if _, err := cli.Run(ctx, RunOptions{Trigger: TriggerCLI, Tasks: []string{"sso"}}); !errors.Is(err, ErrOtherReplica) {
		t.Errorf("cli sso run while another replica runs: %v", err)
	}
	if e.sim.Calls()[ssoPutKey] != 1 {
		t.Errorf("sso written without the run lock: %d PUTs", e.sim.Calls()[ssoPutKey])
	}
	lock.set("")
	if rep, err := cli.Run(ctx, RunOptions{Trigger: TriggerCLI, Tasks: []string{"sso"}}); err != nil || rep.Counts["update_sso/applied"] != 1 {
		t.Errorf("sso run once the lock is free: %v, %+v", err, rep)
	}

	// an unknown task is an error naming the configured ones
	if _, err := cli.Run(ctx, RunOptions{Trigger: TriggerCLI, Tasks: []string{"scim_configuration"}}); err == nil || !strings.Contains(err.Error(), "configured: sso") {
		t.Errorf("unknown task: %v", err)
	}
}

// TestSSOTaskRunBabelforceFails: babelforce's SSO endpoint failing is in the run's report and
// error: reading it fails the plan, writing it fails the change; nothing is recorded as
// written (the fingerprint stays unset).
func TestSSOTaskRunBabelforceFails(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	e := newEnv(t, standardPeople(), nil)
	task, err := NewSSOTask(oidc.Config{Enabled: true, Issuer: op.Issuer, ClientID: op.ClientID, ClientSecret: op.ClientSecret, AllowInsecureHTTP: true}, e.client)
	if err != nil {
		t.Fatal(err)
	}
	rec := e.newReconciler(e.client, WithSideTasks(task))
	ctx := context.Background()
	if err := e.sim.SetFaults(babelforcetest.Faults{Rate5xx: 1, Paths: []string{"/auth/sso"}}); err != nil {
		t.Fatal(err)
	}
	rep, err := rec.Run(ctx, RunOptions{Trigger: TriggerCLI, Tasks: []string{"sso"}})
	if err == nil || rep == nil || len(rep.Plan.Errors) != 1 || !strings.Contains(rep.Plan.Errors[0], "read babelforce SSO configuration") {
		t.Fatalf("sso endpoint failing: %v, report %+v", err, rep)
	}
	if rep.Counts[StatusApplied] != 0 || e.sim.Calls()[ssoPutKey] != 0 {
		t.Errorf("applied %d, %d PUTs with the SSO endpoint failing", rep.Counts[StatusApplied], e.sim.Calls()[ssoPutKey])
	}
	if err := e.sim.SetFaults(babelforcetest.Faults{}); err != nil {
		t.Fatal(err)
	}

	// babelforce fails once the plan has read it: the write fails
	task, err = NewSSOTask(oidc.Config{Enabled: true, Issuer: op.Issuer, ClientID: op.ClientID, ClientSecret: op.ClientSecret, AllowInsecureHTTP: true},
		failAfterRead{SSOTarget: e.client, sim: e.sim, t: t})
	if err != nil {
		t.Fatal(err)
	}
	be := &memBackend{}
	rec = e.newReconciler(e.client, WithSideTasks(task), WithStateBackend(be))
	rep, err = rec.Run(ctx, RunOptions{Trigger: TriggerCLI, Tasks: []string{"sso"}})
	if err == nil || rep.Counts["update_sso/failed"] != 1 || len(rep.Results) != 1 || !strings.Contains(rep.Results[0].Error, "update babelforce SSO configuration") {
		t.Fatalf("sso write failing: %v, report %+v", err, rep)
	}
	if st := be.state(t); st.SSOSecret != nil && st.SSOSecret.Fingerprint != "" {
		t.Errorf("a secret that was not written has a fingerprint: %+v", st.SSOSecret)
	}
	var text strings.Builder
	_ = rep.WriteText(&text)
	if !strings.Contains(text.String(), "-> failed") || !strings.Contains(text.String(), "Failed:") {
		t.Errorf("report text:\n%s", text.String())
	}
}

// failAfterRead reads babelforce's SSO configuration and then makes the simulator fail every
// request to it (5xx), as babelforce failing between a plan and its apply.
type failAfterRead struct {
	SSOTarget
	sim *babelforcetest.Server
	t   *testing.T
}

func (f failAfterRead) GetSSOConfig(ctx context.Context) (*babelforce.SSOConfig, error) {
	cfg, err := f.SSOTarget.GetSSOConfig(ctx)
	if serr := f.sim.SetFaults(babelforcetest.Faults{Rate5xx: 1, Paths: []string{"/auth/sso"}}); serr != nil {
		f.t.Error(serr)
	}
	return cfg, err
}
