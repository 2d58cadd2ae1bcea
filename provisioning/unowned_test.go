package provisioning

import (
	"strings"
	"testing"

	"github.com/babelforce/bridge/babelforce"
)

// TestInactivePeopleDoNotListEveryAgent: an inactive person bridge has no agent for gets
// none, so a run does not look for an agent with their e-mail. It listed every agent a
// second time on each run (84 agent GETs instead of 42 on a 4,200-agent no-op, issue 17), and
// with adopt it took over and switched off an agent bridge did not own.
func TestInactivePeopleDoNotListEveryAgent(t *testing.T) {
	people := append(standardPeople(),
		person{id: "u-gail", userName: "gail", name: "Gail Gone", email: "gail@example.com", active: false, groups: []string{"agents"}})
	e := newEnv(t, people, func(c *Config) { c.Adopt = true })
	hand := e.sim.PutAgent(babelforce.Agent{Name: "Gail by hand", Email: "GAIL@example.com"})
	e.run(RunOptions{})
	e.sim.ResetCalls()
	rep := e.run(RunOptions{})
	if n := e.sim.WriteCalls(); n != 0 {
		t.Fatalf("second run wrote: %v\n%s", e.writes(), planText(rep.Plan))
	}
	// one listing of bridge's agents (one page here), none of every agent
	if n := e.sim.Calls()["GET /api/v2/agents"]; n != 1 {
		t.Errorf("%d agent listings on a no-op run with an inactive person, want 1: %v", n, e.sim.Calls())
	}
	got, _ := e.sim.Agent(hand.ID)
	if got.SourceID != "" || !got.IsEnabled() || got.Name != "Gail by hand" {
		t.Errorf("agent not bridge's changed for an inactive person: %+v", got)
	}
	if !containsSkip(rep.Plan, "u-gail", "inactive in directory") {
		t.Errorf("gail not reported as inactive:\n%s", planText(rep.Plan))
	}

	// once she is active again, her agent is found by e-mail and adopted
	e.dir.edit("u-gail", func(p *person) { p.active = true })
	e.run(RunOptions{})
	if got, _ := e.sim.Agent(hand.ID); got.SourceID != "u-gail" || got.AgentSource != testSource || !got.IsEnabled() {
		t.Errorf("agent of the returning person not adopted: %+v", got)
	}
}

func containsSkip(p *Plan, sourceID, reason string) bool {
	for _, s := range p.Skipped {
		if s.SourceID == sourceID && strings.HasPrefix(s.Reason, reason) {
			return true
		}
	}
	return false
}
