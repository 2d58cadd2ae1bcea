package provisioning

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/babelforce/bridge/babelforce"
)

// bulkChunk is the most agent ids one bulk enable/disable call carries.
const bulkChunk = 100

// maxJoined is the most failures the error of a run names one by one.
const maxJoined = 20

// writeGrace is how long writes in flight may go on after the run was cancelled.
const writeGrace = 15 * time.Second

// writeContext returns a context that is not cancelled with ctx but grace after it.
func writeContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var mu sync.Mutex
	var timer *time.Timer
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		timer = time.AfterFunc(grace, cancel)
		mu.Unlock()
	})
	return wctx, func() {
		stop()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// Writer is what applying a plan writes to babelforce: agents (their fields and tags
// included), agent groups and their members, login users and external ids.
type Writer interface {
	AgentWriter
	AgentGroupWriter
	LoginUserWriter
	ExternalIDWriter
}

// AgentWriter creates, changes, switches on and off, and deletes agents.
type AgentWriter interface {
	CreateAgent(ctx context.Context, a *babelforce.Agent) (*babelforce.Agent, error)
	UpdateAgent(ctx context.Context, id string, u babelforce.AgentUpdate) (*babelforce.Agent, error)
	DeleteAgent(ctx context.Context, id string) error
	EnableAgent(ctx context.Context, id string) error
	DisableAgent(ctx context.Context, id string) error
	BulkEnableAgents(ctx context.Context, ids []string) ([]babelforce.BulkResult, error)
	BulkDisableAgents(ctx context.Context, ids []string) ([]babelforce.BulkResult, error)
}

// AgentGroupWriter creates agent groups and changes their members.
type AgentGroupWriter interface {
	CreateAgentGroup(ctx context.Context, g *babelforce.AgentGroup) (*babelforce.AgentGroup, error)
	AddAgentToGroup(ctx context.Context, groupID, agentID string) error
	RemoveAgentFromGroup(ctx context.Context, groupID, agentID string) error
}

// LoginUserWriter creates, replaces and deactivates login users through babelforce's SCIM
// API.
type LoginUserWriter interface {
	SCIMCreateUser(ctx context.Context, u *babelforce.SCIMUser) (*babelforce.SCIMUser, error)
	SCIMReplaceUser(ctx context.Context, id string, u *babelforce.SCIMUser) (*babelforce.SCIMUser, error)
	SCIMPatchUser(ctx context.Context, id string, ops []babelforce.SCIMPatchOp) (*babelforce.SCIMUser, error)
}

// ExternalIDWriter sets and clears an agent's id in an Agent Sync integration.
type ExternalIDWriter interface {
	SetExternalID(ctx context.Context, agentID, integrationID, externalID string) error
	DeleteExternalID(ctx context.Context, agentID, integrationID string) error
}

// applier applies one plan.
type applier struct {
	r       *Reconciler
	trigger string
	st      *state

	auditMu  sync.Mutex // the audit hook is called by one goroutine at a time
	mu       sync.Mutex
	agentIDs map[string]string // source key -> agent id created (or adopted) in this run
	groupIDs map[string]string // lower-cased group name -> id of a group created in this run
	// results holds every change's result in plan order, written once where the report keeps
	// it (a first sync has hundreds of thousands); at[i] is where op i's results start.
	results   []Result
	at        []int
	ops       []*op            // the plan's ops; each is cleared once finished, so a first sync's calls are garbage once made
	notJoined map[*op][]string // create ops whose agent was created without these groups
	errs      []error
	done      int
	total     int
}

// apply runs p's ops phase by phase, each phase with bounded concurrency; a failing item is
// reported and the rest goes on. It fills rep.Results and rep.Counts and returns the joined
// errors of the items that failed.
func (r *Reconciler) apply(ctx context.Context, rep *Report, p *Plan, st *state, trigger string) error {
	a := &applier{r: r, trigger: trigger, st: st,
		agentIDs: map[string]string{}, groupIDs: map[string]string{}, notJoined: map[*op][]string{},
		at: make([]int, len(p.ops)), total: len(p.Changes)}
	n := 0
	for i, o := range p.ops {
		a.at[i] = n
		n += len(o.changes)
	}
	held := 0
	for _, o := range p.held {
		held += len(o.changes)
	}
	if n+held > 0 {
		a.results = make([]Result, n, n+held)
	}
	if p.windowed {
		p.tried = nil
		for _, o := range p.ops {
			if o.destructive() {
				p.tried = append(p.tried, o.person())
			}
		}
	}
	a.ops = p.ops
	// ctx decides whether the next write starts; a write that has started runs on wctx, which
	// outlives a cancelled ctx by writeGrace, so SIGTERM never cuts a request in half.
	wctx, cancel := writeContext(ctx, writeGrace)
	defer cancel()
	var units []func(context.Context)
	flush := func() {
		forEach(ctx, r.cfg.Concurrency, len(units), func(i int) {
			units[i](wctx)
			units[i] = nil // its op is done with
		})
		units = units[:0]
	}
	phase := -1
	var bulk map[callKind][]int
	flushBulk := func() {
		for _, k := range []callKind{callEnable, callDisable} {
			is := bulk[k]
			if len(is) == 1 {
				units = append(units, a.unit(is[0], p.ops[is[0]]))
				continue
			}
			for c := range slices.Chunk(is, bulkChunk) {
				units = append(units, a.bulkUnit(k, c, p.ops))
			}
		}
		bulk = nil
	}
	for i, o := range p.ops {
		if ph := o.call.phase(); ph != phase {
			flushBulk()
			flush()
			phase = ph
		}
		if o.call == callEnable || o.call == callDisable {
			if bulk == nil {
				bulk = map[callKind][]int{}
			}
			bulk[o.call] = append(bulk[o.call], i)
			continue
		}
		units = append(units, a.unit(i, o))
	}
	flushBulk()
	flush()

	// results in plan order; held and unreached changes are "skipped"
	for i, o := range p.ops {
		if o == nil { // finished
			continue
		}
		res := a.results[a.at[i] : a.at[i]+len(o.changes)]
		for j, c := range o.changes {
			if res[j].Status == "" { // never finished
				res[j] = Result{Change: c, Status: StatusSkipped, Error: "not applied: the run was cancelled"}
			}
		}
	}
	for _, o := range p.held {
		for _, c := range o.changes {
			a.results = append(a.results, Result{Change: c, Status: StatusSkipped, Error: "held back by guard"})
		}
	}
	if rep.Results == nil {
		rep.Results = a.results
	} else {
		rep.Results = append(rep.Results, a.results...)
	}
	for _, res := range rep.Results {
		rep.Counts[string(res.Change.Kind)+"/"+res.Status]++
		rep.Counts[res.Status]++
	}
	errs := a.errs
	if len(errs) > maxJoined {
		errs = append(errs[:maxJoined:maxJoined], moreFailures(len(a.errs)-maxJoined))
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, fmt.Errorf("apply: %w", err))
	}
	return errors.Join(errs...)
}

// unit returns the work of op i.
func (a *applier) unit(i int, o *op) func(context.Context) {
	return func(ctx context.Context) {
		err := a.do(ctx, o)
		a.finish(i, o, err)
	}
}

// bulkUnit enables or disables several agents in one call: the ops of ops numbered is.
func (a *applier) bulkUnit(k callKind, is []int, ops []*op) func(context.Context) {
	return func(ctx context.Context) {
		ids := make([]string, len(is))
		for n, i := range is {
			ids[n] = ops[i].agentID
		}
		var res []babelforce.BulkResult
		var err error
		if k == callEnable {
			res, err = a.r.write.BulkEnableAgents(ctx, ids)
		} else {
			res, err = a.r.write.BulkDisableAgents(ctx, ids)
		}
		byID := make(map[string]babelforce.BulkResult, len(res))
		for _, br := range res {
			byID[babelforce.NormalizeID(br.ID)] = br
		}
		for _, i := range is {
			o := ops[i]
			e := err
			if e == nil {
				br, ok := byID[babelforce.NormalizeID(o.agentID)]
				switch {
				case !ok:
					e = errors.New("babelforce returned no result for this agent")
				case !br.Success:
					e = errors.New(cmp.Or(br.Error, "babelforce reported failure"))
				}
			}
			if e == nil {
				a.after(o)
			}
			a.finish(i, o, e)
		}
	}
}

// errNotReached marks an op whose prerequisite failed.
type errNotReached struct{ why string }

func (e errNotReached) Error() string { return e.why }

// do makes the call of one op.
func (a *applier) do(ctx context.Context, o *op) error {
	t := a.r.write
	switch o.call {
	case callSide:
		return applyTask(ctx, o.task, o.changes[0], a.st)
	case callCreateGroup:
		g, err := t.CreateAgentGroup(ctx, &babelforce.AgentGroup{Name: o.group})
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.groupIDs[strings.ToLower(o.group)] = babelforce.NormalizeID(g.ID)
		a.mu.Unlock()
		return nil
	case callCreateAgent:
		if o.want == nil { // adopt
			if _, err := t.UpdateAgent(ctx, o.agentID, *o.update); err != nil {
				return err
			}
			a.mu.Lock()
			a.agentIDs[o.key] = o.agentID
			a.mu.Unlock()
			return nil
		}
		ag := newAgent(o.want, a.r.rules.AgentSource())
		var missing []string
		a.mu.Lock()
		for _, j := range o.joins {
			if id := cmp.Or(j.id, a.groupIDs[strings.ToLower(j.name)]); id != "" {
				ag.Groups = append(ag.Groups, babelforce.GroupRef{ID: id})
			} else {
				missing = append(missing, j.name)
			}
		}
		a.mu.Unlock()
		created, err := t.CreateAgent(ctx, ag)
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.agentIDs[o.key] = babelforce.NormalizeID(created.ID)
		if len(missing) > 0 {
			a.notJoined[o] = missing
		}
		a.mu.Unlock()
		return nil
	case callUpdateAgent:
		_, err := t.UpdateAgent(ctx, o.agentID, *o.update)
		return err
	case callCreateLogin:
		_, err := t.SCIMCreateUser(ctx, desiredLogin(o.want, nil))
		return err
	case callReplaceLogin:
		_, err := t.SCIMReplaceUser(ctx, o.scimID, o.scim)
		return err
	case callDeactivateLogin:
		_, err := t.SCIMPatchUser(ctx, o.scimID, []babelforce.SCIMPatchOp{{Op: "replace", Path: "active", Value: false}})
		return err
	}
	id, err := a.agentID(o)
	if err != nil {
		return err
	}
	switch o.call {
	case callSetExternalID:
		err = t.SetExternalID(ctx, id, o.integ, o.ext)
	case callClearExternalID:
		err = t.DeleteExternalID(ctx, id, o.integ)
	case callJoin:
		gid := o.groupID
		if gid == "" {
			a.mu.Lock()
			gid = a.groupIDs[strings.ToLower(o.group)]
			a.mu.Unlock()
		}
		if gid == "" {
			return errNotReached{fmt.Sprintf("not applied: agent group %q was not created", o.group)}
		}
		err = t.AddAgentToGroup(ctx, gid, id)
	case callLeave:
		err = t.RemoveAgentFromGroup(ctx, o.groupID, id)
	case callEnable:
		err = t.EnableAgent(ctx, id)
	case callDisable:
		err = t.DisableAgent(ctx, id)
	case callDelete:
		err = t.DeleteAgent(ctx, id)
		if errors.Is(err, babelforce.ErrNotFound) {
			err = nil // already gone
		}
	default:
		err = fmt.Errorf("unknown call %d", o.call)
	}
	if err == nil {
		a.after(o)
	}
	return err
}

// agentID is the op's agent, or the one created for its person earlier in the run.
func (a *applier) agentID(o *op) (string, error) {
	if o.agentID != "" {
		return o.agentID, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if id := a.agentIDs[o.key]; id != "" {
		return id, nil
	}
	return "", errNotReached{"not applied: the agent was not created"}
}

// after records what bridge must remember about a successful op.
func (a *applier) after(o *op) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := o.agentID
	if id == "" {
		id = a.agentIDs[o.key]
	}
	switch o.call {
	case callDisable:
		a.st.Disabled[id] = a.r.now()
	case callEnable:
		delete(a.st.Disabled, id)
	case callDelete:
		delete(a.st.Disabled, id)
		delete(a.st.ExternalIDs, id)
	case callSetExternalID:
		if !slices.Contains(a.st.ExternalIDs[id], o.integ) {
			a.st.ExternalIDs[id] = append(a.st.ExternalIDs[id], o.integ)
			slices.Sort(a.st.ExternalIDs[id])
		}
	case callClearExternalID:
		a.st.ExternalIDs[id] = slices.DeleteFunc(a.st.ExternalIDs[id], func(s string) bool { return s == o.integ })
		if len(a.st.ExternalIDs[id]) == 0 {
			delete(a.st.ExternalIDs, id)
		}
	}
}

// finish records the outcome of op i: results, audit records, progress.
func (a *applier) finish(i int, o *op, err error) {
	status, msg := StatusApplied, ""
	var nr errNotReached
	switch {
	case errors.As(err, &nr):
		status, msg = StatusSkipped, err.Error()
	case err != nil:
		status, msg = StatusFailed, err.Error()
	}
	a.mu.Lock()
	res := a.results[a.at[i] : a.at[i]+len(o.changes)]
	for j, c := range o.changes {
		if c.AgentID == "" && o.key != "" {
			c.AgentID = a.agentIDs[o.key]
		}
		res[j] = Result{Change: c, Status: status, Error: msg}
		// the joins a create carries: skipped with the agent, or when their group is missing
		switch {
		case c.Kind != JoinAgentGroup || o.call != callCreateAgent:
		case status == StatusFailed:
			res[j].Status, res[j].Error = StatusSkipped, "not applied: the agent was not created"
		case slices.Contains(a.notJoined[o], c.Value):
			res[j].Status, res[j].Error = StatusSkipped, fmt.Sprintf("not applied: agent group %q was not created", c.Value)
		}
	}
	if err != nil && status == StatusFailed {
		a.errs = append(a.errs, &changeError{kind: o.changes[0].Kind, subject: o.changes[0].Subject, err: err})
	}
	a.done += len(o.changes)
	a.ops[i] = nil
	if a.r.progress != nil {
		a.r.progress(a.done, a.total)
	}
	a.mu.Unlock()
	if status == StatusFailed {
		a.r.log.Warn("change failed", "kind", o.changes[0].Kind, "subject", o.changes[0].Subject, "error", err)
	}
	if a.r.audit != nil && status != StatusSkipped {
		a.auditMu.Lock()
		for _, r := range res {
			a.r.audit(auditOf(a.r.now(), a.trigger, r))
		}
		a.auditMu.Unlock()
	}
}

// auditOf turns one result into an audit record: fields before and after.
func auditOf(now time.Time, trigger string, r Result) AuditRecord {
	c := r.Change
	rec := AuditRecord{Time: now, Trigger: trigger, Kind: c.Kind, Subject: c.Subject, SourceID: c.SourceID,
		AgentID: c.AgentID, Result: r.Status, Error: r.Error}
	before, after := map[string]string{}, map[string]string{}
	for _, f := range c.Fields {
		if f.Before != "" {
			before[f.Field] = f.Before
		}
		after[f.Field] = f.After
	}
	switch c.Kind {
	case AddTag:
		after["tag"] = c.Value
	case RemoveTag:
		before["tag"] = c.Value
	case JoinAgentGroup, CreateAgentGroup:
		after["group"] = c.Value
	case LeaveAgentGroup:
		before["group"] = c.Value
	case EnableAgent:
		before["enabled"], after["enabled"] = "false", "true"
	case DisableAgent:
		before["enabled"], after["enabled"] = "true", "false"
	case DeactivateLogin:
		before["active"], after["active"] = "true", "false"
	case DeleteAgent:
		before["agent"] = c.AgentID
	}
	if c.Reason != "" {
		after["reason"] = c.Reason
	}
	if len(before) > 0 {
		rec.Before = before
	}
	if len(after) > 0 {
		rec.After = after
	}
	return rec
}
