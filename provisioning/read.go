package provisioning

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/mapping"
)

// smallScope is the largest scope read with per-user filtered calls instead of whole lists.
const smallScope = 20

// plan computes the plan for snap: desired from mapping, actual from babelforce, the diff,
// the side tasks (unscoped runs only) and the guards. st gets newly seen disabled agents.
func (r *Reconciler) plan(ctx context.Context, snap *directory.Snapshot, scope Scope, force bool, st *state) (*Plan, *mapping.Desired, error) {
	p, desired, _, err := r.planActual(ctx, snap, scope, force, st)
	return p, desired, err
}

// planActual is plan that also returns the actual state it read.
func (r *Reconciler) planActual(ctx context.Context, snap *directory.Snapshot, scope Scope, force bool, st *state) (*Plan, *mapping.Desired, *actualState, error) {
	desired := mapping.Desire(snap, r.rules)
	if desired == nil {
		return nil, nil, nil, asRead(fmt.Errorf("map directory: no desired state"))
	}
	// Past the mapping only the number of users is needed: the snapshot (the largest thing
	// bridge holds) may be collected while babelforce is read.
	sourceUsers := len(snap.Users)
	var inScope map[string]bool
	agents := desired.Agents
	if len(scope.Users) > 0 {
		inScope = make(map[string]bool, len(scope.Users))
		for _, id := range scope.Users {
			inScope[key(id)] = true
		}
		agents = nil
		for _, a := range desired.Agents {
			if inScope[key(a.SourceID)] {
				agents = append(agents, a)
			}
		}
	}
	actual, err := r.readActual(ctx, desired, agents, scope.Users, inScope, st)
	if err != nil {
		return nil, nil, nil, asRead(fmt.Errorf("read babelforce: %w (nothing was changed)", err))
	}
	p, ops := diff(diffInput{desired: desired, agents: agents, scope: inScope, actual: actual, state: st,
		cfg: r.cfg, source: r.rules.AgentSource(), login: r.rules.LoginUsers(), integs: integrations(r.rules),
		now: r.now()})
	if inScope == nil {
		ops = append(ops, r.planTasks(ctx, p, r.tasks, st)...)
		sortOps(ops)
	}
	missing := missingRuleGroups(desired, st)
	if scope.sourceUsers > 0 {
		// a scoped read (ScopedSource) holds only the groups of the people in it: the guard
		// counts the whole directory's users, and the missing-group check is the whole runs'
		sourceUsers, missing, p.scoped = scope.sourceUsers, nil, true
	}
	var recent map[string]bool
	if inScope != nil {
		p.windowed = true
		recent = st.recentDestructive(r.now().Add(-r.cfg.GuardWindow()))
	}
	r.guard(p, ops, sourceUsers, actual.ownedTotal, missing, recent, force)
	for _, c := range p.Conflicts {
		r.log.Warn("leaver switched off despite a conflict", "subject", c.Subject, "source_id", c.SourceID, "conflict", c.Reason)
	}
	return p, desired, actual, nil
}

// planTasks plans the side tasks; one that cannot plan is in p.Errors (and p.sideErrs).
func (r *Reconciler) planTasks(ctx context.Context, p *Plan, tasks []SideTask, st *state) []*op {
	var ops []*op
	for _, t := range tasks {
		changes, err := planTask(ctx, t, st)
		if err != nil {
			err = asRead(fmt.Errorf("plan %s: %w", t.Name(), err))
			p.sideErrs = append(p.sideErrs, err)
			p.Errors = append(p.Errors, err.Error())
			continue
		}
		for _, c := range changes {
			ops = append(ops, &op{call: callSide, subject: c.Subject, task: t, changes: []Change{c}})
		}
	}
	return ops
}

// missingRuleGroups lists the groups the rules name exactly that the last good read (st) had
// and this one (desired) has not.
func missingRuleGroups(desired *mapping.Desired, st *state) []mapping.RuleGroup {
	var out []mapping.RuleGroup
	for _, g := range desired.RuleGroups {
		if !g.Found && slices.Contains(st.RuleGroups, g.Group) {
			out = append(out, g)
		}
	}
	return out
}

// foundRuleGroups lists the groups the rules name exactly that this read has: the state
// remembers them after a run that was not held back for a missing one.
func foundRuleGroups(desired *mapping.Desired) []string {
	var out []string
	for _, g := range desired.RuleGroups {
		if g.Found && !slices.Contains(out, g.Group) {
			out = append(out, g.Group)
		}
	}
	return out
}

// integrations lists the Agent Sync integrations the mapping manages.
func integrations(rules *mapping.Rules) []string {
	var out []string
	for _, e := range rules.Config().ExternalIDs {
		out = append(out, e.Integration)
	}
	return out
}

// listOwned lists bridge's agents, all of them or (sourceID != "") those of one user.
func (r *Reconciler) listOwned(ctx context.Context, sourceID string) ([]babelforce.Agent, error) {
	src := r.rules.AgentSource()
	agents, err := r.tgt.ListAgents(ctx, babelforce.AgentFilter{Source: src, SourceID: sourceID})
	if err != nil {
		return nil, fmt.Errorf("list agents of source %q: %w", src, err)
	}
	if sourceID != "" && len(agents) == 0 && babelforce.NormalizeID(sourceID) != sourceID {
		agents, err = r.tgt.ListAgents(ctx, babelforce.AgentFilter{Source: src, SourceID: babelforce.NormalizeID(sourceID)})
		if err != nil {
			return nil, fmt.Errorf("list agents of source %q: %w", src, err)
		}
	}
	out := agents[:0]
	for _, a := range agents {
		if r.owns(&a) && (sourceID == "" || key(a.SourceID) == key(sourceID)) {
			// the diff never reads timestamps: drop them (they are a good part of an agent)
			a.DateCreated, a.LastUpdated = "", ""
			for i := range a.Groups {
				a.Groups[i].DateCreated = ""
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// owns reports whether a is bridge's: its agentSource is the rules' and it has a sourceId.
func (r *Reconciler) owns(a *babelforce.Agent) bool {
	return a.SourceID != "" && a.AgentSource == r.rules.AgentSource()
}

// readActual reads what the diff needs and no more: bridge's agents (by source), agents with
// the e-mail of a desired agent bridge does not own yet (only if there is one), agent
// groups (only if groups are managed), SCIM users (only if login users are), external ids
// (only of agents that have or had some).
func (r *Reconciler) readActual(ctx context.Context, desired *mapping.Desired, agents []mapping.Agent,
	scopeIDs []string, inScope map[string]bool, st *state) (*actualState, error) {
	act := newActual()
	small := inScope != nil && len(scopeIDs) <= smallScope

	// bridge's agents
	if small {
		for _, id := range scopeIDs {
			as, err := r.listOwned(ctx, id)
			if err != nil {
				return nil, err
			}
			act.owned = append(act.owned, as...)
		}
		act.ownedTotal = len(act.owned)
	} else {
		all, err := r.listOwned(ctx, "")
		if err != nil {
			return nil, err
		}
		act.ownedTotal = len(all)
		if inScope == nil {
			act.owned = all
		} else {
			for _, a := range all {
				if inScope[key(a.SourceID)] {
					act.owned = append(act.owned, a)
				}
			}
		}
	}
	ownedKeys := make(map[string]*babelforce.Agent, len(act.owned))
	for i := range act.owned {
		ownedKeys[key(act.owned[i].SourceID)] = &act.owned[i]
	}
	desiredKeys := make(map[string]bool, len(desired.Agents))
	for _, d := range desired.Agents {
		desiredKeys[key(d.SourceID)] = true
	}

	// agents not bridge's with the e-mail of a desired agent bridge has none for; only people
	// who would get a new agent (enabled): no agent is created, adopted or switched off for an
	// inactive person bridge has none for, so looking for theirs would only cost a second
	// listing of every agent on each run (issue 17)
	var unmatched []*mapping.Agent
	for i := range agents {
		if ownedKeys[key(agents[i].SourceID)] == nil && agents[i].Email != "" && agents[i].Enabled {
			unmatched = append(unmatched, &agents[i])
		}
	}
	if len(unmatched) > 0 {
		act.unowned = map[string][]babelforce.Agent{}
		addUnowned := func(as []babelforce.Agent, email string) {
			for _, a := range as {
				if r.owns(&a) || a.Email == "" || (email != "" && !strings.EqualFold(a.Email, email)) {
					continue
				}
				e := lowerEmail(a.Email)
				if !slices.ContainsFunc(act.unowned[e], func(x babelforce.Agent) bool { return x.ID == a.ID }) {
					act.unowned[e] = append(act.unowned[e], a)
				}
			}
		}
		if small {
			for _, d := range unmatched {
				as, err := r.tgt.ListAgents(ctx, babelforce.AgentFilter{Q: d.Email})
				if err != nil {
					return nil, fmt.Errorf("look for agents with e-mail %s: %w", d.Email, err)
				}
				addUnowned(as, d.Email)
				// bridge's agent of someone gone with this e-mail: the person's id changed
				for _, a := range as {
					k := key(a.SourceID)
					if r.owns(&a) && strings.EqualFold(a.Email, d.Email) && !desiredKeys[k] && ownedKeys[k] == nil {
						act.owned = append(act.owned, a)
					}
				}
			}
		} else {
			as, err := r.tgt.ListAgents(ctx, babelforce.AgentFilter{})
			if err != nil {
				return nil, fmt.Errorf("list agents: %w", err)
			}
			addUnowned(as, "")
		}
	}

	// agent groups
	needGroups := len(st.Groups) > 0
	for _, d := range agents {
		needGroups = needGroups || len(d.AgentGroups) > 0
	}
	for _, a := range act.owned {
		needGroups = needGroups || len(a.Groups) > 0 && len(desired.AgentGroups) > 0
	}
	if needGroups {
		gs, err := r.tgt.ListAgentGroups(ctx)
		if err != nil {
			return nil, fmt.Errorf("list agent groups: %w", err)
		}
		act.addGroups(gs)
	}

	// login users
	if r.rules.LoginUsers() {
		needSCIM := false
		for _, d := range agents {
			needSCIM = needSCIM || len(d.Roles) > 0
		}
		if r.cfg.LoginUsers.DeactivateOnLeave {
			for k := range ownedKeys {
				needSCIM = needSCIM || !desiredKeys[k]
			}
		}
		if needSCIM {
			if small {
				for _, id := range scopeIDs {
					us, err := r.tgt.SCIMListUsers(ctx, scimEq("externalId", id))
					if err != nil {
						return nil, fmt.Errorf("list login users: %w", err)
					}
					act.addSCIMUsers(us)
				}
				for _, d := range agents {
					if act.scimByExt[key(d.SourceID)] != nil || d.Email == "" {
						continue
					}
					us, err := r.tgt.SCIMListUsers(ctx, scimEq("userName", lowerEmail(d.Email)))
					if err != nil {
						return nil, fmt.Errorf("list login users: %w", err)
					}
					act.addSCIMUsers(us)
				}
				act.scimRead = true
			} else {
				us, err := r.tgt.SCIMListUsers(ctx, "")
				if err != nil {
					return nil, fmt.Errorf("list login users: %w", err)
				}
				act.addSCIMUsers(us)
			}
		}
	}

	// external ids of the agents that have or should have some
	var need []string
	for _, d := range agents {
		a := ownedKeys[key(d.SourceID)]
		if a == nil && r.cfg.Adopt && act.unowned != nil && d.Enabled {
			if m := act.unowned[lowerEmail(d.Email)]; len(m) == 1 {
				a = &m[0]
			}
		}
		if a != nil && (len(d.ExternalIDs) > 0 || len(st.ExternalIDs[a.ID]) > 0) {
			need = append(need, a.ID)
		}
	}
	if err := r.readExternalIDs(ctx, act, need); err != nil {
		return nil, err
	}
	return act, nil
}

func (r *Reconciler) readExternalIDs(ctx context.Context, act *actualState, ids []string) error {
	var mu sync.Mutex
	var firstErr error
	forEach(ctx, r.cfg.Concurrency, len(ids), func(i int) {
		ext, err := r.tgt.ListExternalIDs(ctx, ids[i])
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("list external ids of agent %s: %w", ids[i], err)
			}
			return
		}
		m := make(map[string]string, len(ext))
		for _, e := range ext {
			m[e.IntegrationID] = e.ExternalID
		}
		act.extIDs[ids[i]] = m
	})
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// scimEq is a SCIM filter: attr eq "value".
func scimEq(attr, value string) string {
	v := strings.ReplaceAll(strings.ReplaceAll(value, `\`, `\\`), `"`, `\"`)
	return attr + ` eq "` + v + `"`
}

// forEach calls f(0..n-1) on at most limit goroutines; it stops starting new calls once ctx
// is done.
func forEach(ctx context.Context, limit, n int, f func(i int)) {
	if limit < 1 {
		limit = 1
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		if ctx.Err() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}
