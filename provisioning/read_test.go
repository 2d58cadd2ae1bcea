package provisioning

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/babelforce/bridge/babelforce/babelforcetest"
)

// TestReadFailsWhicheverListFails: the login users are read while the agents are; either
// list failing makes the run a read error that writes nothing, and the other read is not
// left behind.
func TestReadFailsWhicheverListFails(t *testing.T) {
	for _, tt := range []struct{ path, want string }{
		{"/auth/scim/v2/Users", "list login users"},
		{"/api/v2/agents", "list agents"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			e := newEnv(t, standardPeople(), nil)
			e.run(RunOptions{})
			e.sim.ResetCalls()
			e.dir.mu.Lock()
			e.dir.people["u-ann"].phone = "+49 30 7777777" // a change the run would write
			e.dir.mu.Unlock()
			if err := e.sim.SetFaults(babelforcetest.Faults{Rate5xx: 1, Paths: []string{tt.path}}); err != nil {
				t.Fatal(err)
			}
			_, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerManual})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrRead) {
				t.Fatalf("err %v, want a read error naming %q", err, tt.want)
			}
			if w := e.writes(); len(w) != 0 {
				t.Errorf("writes after a failed read: %v", w)
			}
			if err := e.sim.SetFaults(babelforcetest.Faults{}); err != nil {
				t.Fatal(err)
			}
			e.run(RunOptions{})
			if w := e.writes(); w["PUT /api/v2/agents/{id}"] != 1 {
				t.Errorf("writes once babelforce answers: %v, want the one change", w)
			}
		})
	}
}
