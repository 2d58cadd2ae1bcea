package provisioning

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/mapping"
)

// ActualReader is what the reconciler reads from babelforce to learn the actual state:
// agents, agent groups, login users (babelforce's SCIM API) and Agent Sync external ids. The
// reconciler reads its long lists babelforce.Lean (no timestamps, SCIM meta or e-mails, which
// it never reads or sets whole); the few login users of a small scope are read whole, so that
// bridge explain shows them as babelforce holds them.
type ActualReader interface {
	ListAgents(ctx context.Context, f babelforce.AgentFilter, opts ...babelforce.ListOption) ([]babelforce.Agent, error)
	ListAgentGroups(ctx context.Context) ([]babelforce.AgentGroup, error)
	SCIMListUsers(ctx context.Context, filter string, opts ...babelforce.ListOption) ([]babelforce.SCIMUser, error)
	ListExternalIDs(ctx context.Context, agentID string) ([]babelforce.ExternalID, error)
}

// smallScope is the largest scope read with per-user filtered calls instead of whole lists.
const smallScope = 20

// listOwned lists bridge's agents, all of them or (sourceID != "") those of one user.
func (r *Reconciler) listOwned(ctx context.Context, sourceID string) ([]babelforce.Agent, error) {
	src := r.rules.AgentSource()
	agents, err := r.actual.ListAgents(ctx, babelforce.AgentFilter{Source: src, SourceID: sourceID}, babelforce.Lean())
	if err != nil {
		return nil, fmt.Errorf("list agents of source %q: %w", src, err)
	}
	if sourceID != "" && len(agents) == 0 && babelforce.NormalizeID(sourceID) != sourceID {
		agents, err = r.actual.ListAgents(ctx, babelforce.AgentFilter{Source: src, SourceID: babelforce.NormalizeID(sourceID)}, babelforce.Lean())
		if err != nil {
			return nil, fmt.Errorf("list agents of source %q: %w", src, err)
		}
	}
	out := agents[:0]
	for _, a := range agents {
		if r.owns(&a) && (sourceID == "" || key(a.SourceID) == key(sourceID)) {
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

	// Every login user is read while the agents are when the desired state alone says they
	// will be needed (someone gets a role): the two lists are the longest reads of a run.
	var scim chan scimList
	taken := false
	if !small && r.rules.LoginUsers() && slices.ContainsFunc(agents, func(d mapping.Agent) bool { return len(d.Roles) > 0 }) {
		ctx, cancel := context.WithCancel(ctx)
		scim = make(chan scimList, 1)
		go func() {
			us, err := r.actual.SCIMListUsers(ctx, "", babelforce.Lean())
			scim <- scimList{us, err}
		}()
		defer func() { // a failed read returns early: stop the login users' read and wait for it
			cancel()
			if !taken {
				<-scim
			}
		}()
	}

	// bridge's agents
	if small {
		for _, id := range scopeIDs {
			as, err := r.listOwned(ctx, id)
			if err != nil {
				return nil, err
			}
			act.owned = append(act.owned, as...)
		}
		// the guard's share is of every agent bridge owns, not of these few
		act.ownedTotal = max(len(act.owned), st.Owned)
	} else {
		all, err := r.listOwned(ctx, "")
		if err != nil {
			return nil, err
		}
		act.ownedTotal = len(all)
		st.Owned = len(all) // and what this run creates or deletes (applyPlan)
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
				as, err := r.actual.ListAgents(ctx, babelforce.AgentFilter{Q: d.Email}, babelforce.Lean())
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
			as, err := r.actual.ListAgents(ctx, babelforce.AgentFilter{}, babelforce.Lean())
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
		gs, err := r.actual.ListAgentGroups(ctx)
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
					us, err := r.actual.SCIMListUsers(ctx, scimEq("externalId", id))
					if err != nil {
						return nil, fmt.Errorf("list login users: %w", err)
					}
					act.addSCIMUsers(us)
				}
				for _, d := range agents {
					if act.scimByExt[key(d.SourceID)] != nil || d.Email == "" {
						continue
					}
					us, err := r.actual.SCIMListUsers(ctx, scimEq("userName", lowerEmail(d.Email)))
					if err != nil {
						return nil, fmt.Errorf("list login users: %w", err)
					}
					act.addSCIMUsers(us)
				}
				act.scimRead = true
			} else {
				var us []babelforce.SCIMUser
				var err error
				if scim != nil {
					l := <-scim
					taken = true
					us, err = l.users, l.err
				} else {
					us, err = r.actual.SCIMListUsers(ctx, "", babelforce.Lean())
				}
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

// scimList is the answer of a read of every login user.
type scimList struct {
	users []babelforce.SCIMUser
	err   error
}

func (r *Reconciler) readExternalIDs(ctx context.Context, act *actualState, ids []string) error {
	var mu sync.Mutex
	var firstErr error
	forEach(ctx, r.cfg.Concurrency, len(ids), func(i int) {
		ext, err := r.actual.ListExternalIDs(ctx, ids[i])
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
