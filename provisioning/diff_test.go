package provisioning

import (
	"strings"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/mapping"
)

func boolp(b bool) *bool { return &b }

func diffOf(t *testing.T, desired *mapping.Desired, act *actualState, mod func(*diffInput)) (*Plan, []*op) {
	t.Helper()
	in := diffInput{desired: desired, agents: desired.Agents, actual: act, state: newState(), cfg: DefaultConfig(),
		source: testSource, login: true, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if mod != nil {
		mod(&in)
	}
	return diff(in)
}

func kinds(ops []*op) string {
	var out []string
	for _, o := range ops {
		for _, c := range o.changes {
			out = append(out, string(c.Kind)+":"+c.Subject)
		}
	}
	return strings.Join(out, " ")
}

func TestDiffCases(t *testing.T) {
	ann := mapping.Agent{SourceID: "u-ann", AgentSource: testSource, Name: "Ann", Email: "ann@example.com", Enabled: true,
		Tags: []string{}, AgentGroups: []string{}, Roles: []string{"agent"}}
	owned := func(id, sourceID, email string) babelforce.Agent {
		return babelforce.Agent{ID: id, Name: "Ann", Email: email, SourceID: sourceID, AgentSource: testSource, Enabled: boolp(true)}
	}
	login := func(id, ext, email string) []babelforce.SCIMUser {
		return []babelforce.SCIMUser{{ID: id, ExternalID: ext, UserName: email, DisplayName: "Ann",
			Roles: []babelforce.SCIMValue{{Value: "agent"}}, Active: boolp(true)}}
	}

	t.Run("unchanged despite e-mail case, hyphens in the id and no number wanted", func(t *testing.T) {
		act := newActual()
		a := owned("a1", "U-ANN", "Ann@Example.com")
		a.Number = "+4930111"
		act.owned = []babelforce.Agent{a}
		act.addSCIMUsers(login("s1", "u-ann", "ann@example.com"))
		p, ops := diffOf(t, &mapping.Desired{Agents: []mapping.Agent{ann}}, act, nil)
		if len(ops) != 0 || p.Unchanged != 1 {
			t.Errorf("ops: %s", kinds(ops))
		}
	})
	t.Run("duplicate owned agents: the first is managed, the second left alone", func(t *testing.T) {
		act := newActual()
		act.owned = []babelforce.Agent{owned("b2", "u-ann", "ann2@example.com"), owned("a1", "u-ann", "ann@example.com")}
		act.addSCIMUsers(login("s1", "u-ann", "ann@example.com"))
		p, ops := diffOf(t, &mapping.Desired{Agents: []mapping.Agent{ann}}, act, nil)
		if len(ops) != 0 || len(p.Skipped) != 1 || !strings.Contains(p.Skipped[0].Reason, "duplicate agent") {
			t.Errorf("ops %s skipped %+v", kinds(ops), p.Skipped)
		}
	})
	t.Run("a user the mapping cannot map is left alone, one out of scope is disabled", func(t *testing.T) {
		act := newActual()
		act.owned = []babelforce.Agent{owned("a1", "u-ann", "ann@example.com"), owned("b1", "u-bob", "bob@example.com")}
		d := &mapping.Desired{Skipped: []mapping.Skip{
			{UserID: "u-ann", UserName: "ann", Reason: mapping.ReasonInvalid, Detail: "bad number"},
			{UserID: "u-bob", UserName: "bob", Reason: mapping.ReasonOutOfScope, Detail: "not in agents"},
		}}
		p, ops := diffOf(t, d, act, nil)
		if got := kinds(ops); got != "disable_agent:bob@example.com" {
			t.Errorf("ops %s", got)
		}
		if ops[0].changes[0].Reason != "out of scope: not in agents" {
			t.Errorf("reason %q", ops[0].changes[0].Reason)
		}
		if !strings.Contains(planSkips(p), "ann@example.com: left unchanged: the directory user cannot be mapped: bad number") {
			t.Errorf("skipped %s", planSkips(p))
		}
	})
	t.Run("a login user bridge does not manage", func(t *testing.T) {
		act := newActual()
		act.owned = []babelforce.Agent{owned("a1", "u-ann", "ann@example.com")}
		act.addSCIMUsers(login("s1", "", "ann@example.com"))
		p, ops := diffOf(t, &mapping.Desired{Agents: []mapping.Agent{ann}}, act, nil)
		if len(ops) != 0 || !strings.Contains(planSkips(p), "login user ann@example.com exists and is not managed by bridge; set sync.adopt: true") {
			t.Errorf("ops %s skipped %s", kinds(ops), planSkips(p))
		}
		_, ops = diffOf(t, &mapping.Desired{Agents: []mapping.Agent{ann}}, act, func(in *diffInput) { in.cfg.Adopt = true })
		if len(ops) != 1 || ops[0].call != callReplaceLogin || ops[0].scim.ExternalID != "u-ann" {
			t.Errorf("adopt: %s", kinds(ops))
		}
	})
	t.Run("two unowned agents with the e-mail: ambiguous, skipped even with adopt", func(t *testing.T) {
		act := newActual()
		act.unowned = map[string][]babelforce.Agent{"ann@example.com": {{ID: "x1", Email: "ann@example.com"}, {ID: "x2", Email: "ANN@example.com"}}}
		p, ops := diffOf(t, &mapping.Desired{Agents: []mapping.Agent{ann}}, act, func(in *diffInput) { in.cfg.Adopt = true })
		if len(ops) != 0 || !strings.Contains(planSkips(p), "2 agents not owned by bridge have this e-mail") {
			t.Errorf("ops %s skipped %s", kinds(ops), planSkips(p))
		}
	})
	t.Run("an inactive new user gets no agent and no login user, and the plan says why", func(t *testing.T) {
		off := ann
		off.Enabled = false
		act := newActual()
		act.scimRead = true
		p, ops := diffOf(t, &mapping.Desired{Agents: []mapping.Agent{off}}, act, nil)
		if len(ops) != 0 || len(p.Skipped) != 1 || !strings.Contains(p.Skipped[0].Reason, "inactive") {
			t.Errorf("ops %s skipped %s", kinds(ops), planSkips(p))
		}
	})
	t.Run("delete only after the grace period, counted from when bridge saw it disabled", func(t *testing.T) {
		act := newActual()
		a := owned("a1", "u-ann", "ann@example.com")
		a.Enabled = boolp(false)
		act.owned = []babelforce.Agent{a}
		st := newState()
		_, ops := diffOf(t, &mapping.Desired{}, act, func(in *diffInput) { in.state = st; in.cfg.Delete.Enabled = true })
		if len(ops) != 0 || st.Disabled["a1"].IsZero() {
			t.Fatalf("first sight: ops %s, state %v", kinds(ops), st.Disabled)
		}
		_, ops = diffOf(t, &mapping.Desired{}, act, func(in *diffInput) {
			in.state = st
			in.cfg.Delete.Enabled = true
			in.now = in.now.Add(720 * time.Hour)
		})
		if kinds(ops) != "delete_agent:ann@example.com" {
			t.Errorf("after grace: %s", kinds(ops))
		}
	})
}

func planSkips(p *Plan) string {
	var out []string
	for _, s := range p.Skipped {
		out = append(out, s.Subject+": "+s.Reason)
	}
	return strings.Join(out, "\n")
}

func TestGuardArithmetic(t *testing.T) {
	r := NewReconciler(nil, nil, nil, DefaultConfig())
	mk := func(n int) []*op {
		var ops []*op
		for i := range n {
			ops = append(ops, &op{call: callDisable, key: string(rune('a' + i)), changes: []Change{{Kind: DisableAgent}}},
				&op{call: callDeactivateLogin, key: string(rune('a' + i)), changes: []Change{{Kind: DeactivateLogin}}})
		}
		return append(ops, &op{call: callCreateAgent, changes: []Change{{Kind: CreateAgent}}})
	}
	cases := []struct {
		people, sourceUsers, owned int
		refused                    bool
	}{
		{10, 100, 20, false},   // 10 people: not more than max_destructive
		{11, 100, 20, true},    // 11 > 10 and 55% > 10%
		{11, 1000, 200, false}, // 11 > 10 but 5.5% ≤ 10%
		{1, 0, 5, true},        // empty read
	}
	for _, c := range cases {
		p := &Plan{}
		r.guard(p, mk(c.people), c.sourceUsers, c.owned, nil, nil, false)
		if got := len(p.Refused) > 0; got != c.refused {
			t.Errorf("%+v: refused %v (%v)", c, got, p.Refused)
		}
		if c.refused && (len(p.Held) != 2*c.people || len(p.Changes) != 1) {
			t.Errorf("%+v: held %d, kept %d", c, len(p.Held), len(p.Changes))
		}
		p = &Plan{}
		r.guard(p, mk(c.people), c.sourceUsers, c.owned, nil, nil, true)
		if len(p.Refused) != 0 || len(p.Changes) != 2*c.people+1 {
			t.Errorf("%+v forced: %v", c, p.Refused)
		}
	}
}
