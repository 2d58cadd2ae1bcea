package provisioning

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/directory"
)

// TestRunErrorsAreTyped: a run that cannot read the directory has one read error and no apply
// failure; a run whose creates fail has an apply failure per change, with kind and subject, and
// no read error; both in the report's text and JSON.
func TestRunErrorsAreTyped(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	ctx := context.Background()

	e.dir.setErr(directory.ErrIncomplete)
	rep, err := e.rec.Run(ctx, RunOptions{Trigger: TriggerCLI})
	if !errors.Is(err, ErrRead) || !errors.Is(err, directory.ErrIncomplete) {
		t.Fatalf("failed read: err %v, want ErrRead and the source's error", err)
	}
	if len(rep.ReadErrors) != 1 || rep.ReadErrors[0].Phase != PhaseRead || !strings.Contains(rep.ReadErrors[0].Message, "read directory") ||
		len(rep.ApplyFailures) != 0 {
		t.Fatalf("failed read: read errors %+v, apply failures %+v", rep.ReadErrors, rep.ApplyFailures)
	}
	var text strings.Builder
	_ = rep.WriteText(&text)
	if !strings.Contains(text.String(), "Could not read (nothing was written on its account):") {
		t.Errorf("failed read, text:\n%s", text.String())
	}
	e.dir.setErr(nil)

	// every create fails: babelforce answers 500 to everything on agents once the plan has read them
	rec := e.newReconciler(failCreates{Target: e.client, sim: e.sim, t: t})
	rep, err = rec.Run(ctx, RunOptions{Trigger: TriggerCLI})
	if err == nil || errors.Is(err, ErrRead) {
		t.Fatalf("failed writes: err %v, want an error that is no read error", err)
	}
	if len(rep.ReadErrors) != 0 {
		t.Errorf("failed writes: read errors %+v", rep.ReadErrors)
	}
	if len(rep.ApplyFailures) == 0 {
		t.Fatalf("failed writes: no apply failures in %+v", rep)
	}
	for _, f := range rep.ApplyFailures {
		if f.Phase != PhaseApply || f.Kind == "" || f.Subject == "" || f.Message == "" {
			t.Errorf("apply failure without its change: %+v", f)
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		ReadErrors    []RunError `json:"readErrors"`
		ApplyFailures []RunError `json:"applyFailures"`
	}
	if err := json.Unmarshal(b, &decoded); err != nil || len(decoded.ApplyFailures) != len(rep.ApplyFailures) || decoded.ReadErrors != nil {
		t.Errorf("JSON: %v %+v", err, decoded)
	}
}

// failCreates makes the simulator answer 500 to every request on agents from the first
// create on: babelforce failing between the plan's reads and its writes.
type failCreates struct {
	Target
	sim *babelforcetest.Server
	t   *testing.T
}

func (f failCreates) CreateAgent(ctx context.Context, a *babelforce.Agent) (*babelforce.Agent, error) {
	if err := f.sim.SetFaults(babelforcetest.Faults{Rate5xx: 1, Paths: []string{"/api/v2/agents"}}); err != nil {
		f.t.Error(err)
	}
	return f.Target.CreateAgent(ctx, a)
}
