package provisioning

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/babelforce/bridge/directory/store"
)

// TestQueueTrickledLeaversJudgedByTheShareOfAllAgents: a run of a few people reads only their
// agents, yet guard.max_destructive_percent is a share of every agent bridge owns (as of the
// last read of all of them, with the agents created since), so routine leavers of a large directory pass one at a time: with
// 40 agents, max_destructive 2 and 10 %, four trickled leavers are disabled and the fifth is
// held back.
func TestQueueTrickledLeaversJudgedByTheShareOfAllAgents(t *testing.T) {
	q := newQueueEnv(t, func(c *Config) {
		c.Guard.MaxDestructive, c.Guard.MaxDestructivePercent, c.Guard.Window = 2, 10, time.Hour
	})
	var ids []string
	for i := range 40 {
		n := fmt.Sprintf("p%02d", i)
		ids = append(ids, q.push(n, n+"@example.com"))
	}
	// a whole run creates them (it read none: bridge owned none yet), then the queued
	// pushes find nothing to do
	if _, err := q.rec.Run(context.Background(), RunOptions{}); err != nil {
		t.Fatal(err)
	}
	q.drain()
	if n := len(q.sim.Agents()); n != 40 {
		t.Fatalf("%d agents, want 40", n)
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
	for i := range 5 {
		if _, _, err := q.st.Update(context.Background(), store.KindGroup, q.agents, func(r *store.Resource) error {
			var keep []any
			for _, m := range r.Attributes["members"].([]any) {
				if m.(map[string]any)["value"] != ids[i] {
					keep = append(keep, m)
				}
			}
			r.Attributes["members"] = keep
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		q.drain()
		q.advance(time.Minute)
		if want := i == 4; enabled(ids[i]) != want {
			t.Fatalf("leaver %d enabled %v, want %v (4 of 40 agents is 10 %%)", i+1, enabled(ids[i]), want)
		}
	}
}
