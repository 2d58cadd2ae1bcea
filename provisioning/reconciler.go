package provisioning

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/mapping"
)

// Triggers of a run.
const (
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"
	TriggerSCIMPush = "scim_push"
	TriggerCLI      = "cli"
)

// ErrBusy is returned to a scheduled run when another run is in flight.
var ErrBusy = errors.New("a reconcile is already running")

// ErrGuardRefused is wrapped by *GuardError: a guard held back the destructive part of a run.
var ErrGuardRefused = errors.New("refused by guard")

// ErrUnknownUser is returned by ProvisionUsers when a query matches no directory user and no
// agent bridge owns.
var ErrUnknownUser = errors.New("no such user")

// GuardError says why a guard refused the destructive changes of a run. errors.Is(err,
// ErrGuardRefused) holds for it.
type GuardError struct {
	Reasons []string
}

func (e *GuardError) Error() string {
	return "refused by guard: " + strings.Join(e.Reasons, "; ")
}

// Unwrap makes errors.Is(err, ErrGuardRefused) true.
func (e *GuardError) Unwrap() error { return ErrGuardRefused }

// SideTask is an extra part of every run that is not per-agent (SSO config, SCIM configuration).
type SideTask interface {
	Name() string
	Plan(ctx context.Context) ([]Change, error)
	Apply(ctx context.Context, c Change) error
}

// stateTask is a side task that keeps something in the reconciler's state (SSOTask: the
// fingerprint of the client secret): a run plans and applies it with the state it loaded and
// saves what it recorded there with the rest of the state.
type stateTask interface {
	SideTask
	planState(ctx context.Context, st *state) ([]Change, error)
	applyState(ctx context.Context, c Change, st *state) error
}

// planTask plans t with st when it keeps something in the state.
func planTask(ctx context.Context, t SideTask, st *state) ([]Change, error) {
	if s, ok := t.(stateTask); ok {
		return s.planState(ctx, st)
	}
	return t.Plan(ctx)
}

// applyTask applies c of t with st when t keeps something in the state.
func applyTask(ctx context.Context, t SideTask, c Change, st *state) error {
	if s, ok := t.(stateTask); ok {
		return s.applyState(ctx, c, st)
	}
	return t.Apply(ctx, c)
}

// AuditRecord is one write to babelforce, for the audit log. It holds no secrets.
type AuditRecord struct {
	Time     time.Time         `json:"time"`
	Trigger  string            `json:"trigger"`
	Kind     Kind              `json:"kind"`
	Subject  string            `json:"subject"`
	SourceID string            `json:"sourceId,omitempty"`
	AgentID  string            `json:"agentId,omitempty"`
	Before   map[string]string `json:"before,omitempty"`
	After    map[string]string `json:"after,omitempty"`
	// Result is "applied" or "failed".
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
}

// Option configures a Reconciler.
type Option func(*Reconciler)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(r *Reconciler) { r.log = l } }

// WithSideTasks adds tasks planned and applied with every unscoped run.
func WithSideTasks(tasks ...SideTask) Option {
	return func(r *Reconciler) { r.tasks = append(r.tasks, tasks...) }
}

// WithProgress sets a callback told after each applied change how far the run is.
func WithProgress(f func(done, total int)) Option { return func(r *Reconciler) { r.progress = f } }

// WithAudit sets the hook that receives one AuditRecord per change written (applied or
// failed); it is called by one goroutine at a time, while the run goes on.
func WithAudit(f func(AuditRecord)) Option { return func(r *Reconciler) { r.audit = f } }

// WithReportHook is called with the full report of every finished run (metrics, notifications).
func WithReportHook(f func(*Report)) Option { return func(r *Reconciler) { r.onReport = f } }

// Reconciler plans and applies changes to babelforce; every trigger goes through it. It runs
// one plan/apply at a time; with WithRunLock, one at a time across all replicas too.
//
// A run reads the whole directory (any error, directory.ErrIncomplete included, stops it
// before anything is written), maps it (mapping.Desire) and reads only what the diff needs
// from babelforce: bridge's agents (list filtered by agentSource), every agent only when a
// desired agent has none of bridge's yet (to find e-mail collisions), agent groups, SCIM
// users, and external ids only of agents that have or should have some. A no-op run is
// those paged list reads and nothing else.
//
// Ownership: an agent is bridge's when its agentSource is mapping.agent_source and its
// sourceId is set; a login user when its SCIM externalId is the person's directory id.
// Nothing else is ever written to. An agent or login user with a desired person's e-mail
// that is not bridge's is reported as skipped, or taken over (one update setting sourceId
// and agentSource, or externalId) when sync.adopt is true. bridge's own agent of someone who
// left is taken over by a directory user with a new id and the same e-mail (an account
// deleted and created again).
//
// Changes per agent: create in one call; name, e-mail and number (a desired "" number
// leaves the number alone) in one update together with the tag list; tags and agent groups
// bridge manages (every tag and group the mapping ever produced, remembered in the state:
// sync.state_file, or with WithStateBackend the store all replicas share) follow the
// directory, others an admin set by hand stay; agent groups are created before anyone joins
// them; enable and disable use the bulk endpoint for more than one agent. A person who left or went out of scope is disabled (their login user deactivated
// when login_users.deactivate_on_leave) and, with delete.enabled, deleted once bridge has
// seen the agent disabled for delete.grace_period; an inactive person is disabled, never
// deleted. A user the mapping cannot map (Reason "invalid") is left as it is.
//
// Guards hold back every destructive change of a run (disable, delete, deactivate, and taking
// a tag, an agent group or a role away), unless forced, when the directory read has no users
// or fewer than guard.min_source_users, when a group a rule names exactly was in the last
// good read and is missing from this one, or when the destructive changes concern more
// people than both guard.max_destructive and guard.max_destructive_percent of bridge's
// agents; the rest of the plan is applied and Run returns a *GuardError (see guard). A
// leaver (inactive, gone, out of scope) is switched off even when they share an e-mail with
// someone else or a field of theirs cannot be mapped: such conflicts are logged (WARN) and
// counted in Plan.Conflicts, never a reason to leave a leaver enabled.
//
// Apply runs phase by phase (side tasks, new groups, creates and take-overs, updates and
// login users and external ids, joins and leaves, enables, disables and deactivations,
// deletes), each with at most sync.concurrency calls in flight; a failing change is
// reported and the others go on.
type Reconciler struct {
	src    Source
	actual ActualReader // babelforce, for the plan: it cannot write
	write  Writer       // babelforce, for apply
	rules  *mapping.Rules
	cfg    Config

	log      *slog.Logger
	now      func() time.Time
	tasks    []SideTask
	progress func(done, total int)
	audit    func(AuditRecord)
	onReport func(*Report)
	after    func(time.Duration) <-chan time.Time
	random   func() float64
	keep     int

	running chan struct{} // holds a token while a run is in flight
	state   *stateStore
	// runLog, when set, is the run history shared with other processes (see Runs); origin
	// names this process in it.
	runLog RunLog
	origin string

	// runLock, when set, is the lock shared by all replicas (see WithRunLock).
	runLock        RunLockFunc
	runLockWait    time.Duration
	runLockWaitSet bool
	runLockPoll    time.Duration // tests shorten it

	mu      sync.Mutex
	history []Report  // newest first
	full    []*Report // the last fullKept reports as Run returned them, newest first
	lastID  uint64    // the id of the newest report
	next    time.Time // when Schedule starts its next run (zero: not scheduling)
}

// fullKept is how many whole reports (plan and every result) Report can return.
const fullKept = 5

// NewReconciler returns a reconciler of tgt to src under rules. cfg should have passed
// Validate; zero values fall back to the defaults.
func NewReconciler(src Source, tgt Target, rules *mapping.Rules, cfg Config, opts ...Option) *Reconciler {
	def := DefaultConfig()
	if cfg.Concurrency < 1 {
		cfg.Concurrency = def.Concurrency
	}
	if cfg.Interval <= 0 {
		cfg.Interval = def.Interval
	}
	r := &Reconciler{src: src, actual: tgt, write: tgt, rules: rules, cfg: cfg,
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:     time.Now,
		after:   time.After,
		random:  rand.Float64,
		keep:    20,
		running: make(chan struct{}, 1),
		state:   &stateStore{path: cfg.StateFile},
		origin:  processOrigin(),
	}
	for _, o := range opts {
		o(r)
	}
	r.state.log = r.log
	return r
}

// processOrigin names this process in the shared run history: host and process id, and a
// random part for several reconcilers in one process.
func processOrigin() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown host"
	}
	return fmt.Sprintf("%s pid %d #%04x", host, os.Getpid(), rand.IntN(1<<16))
}

// RunOptions says what one run does.
type RunOptions struct {
	// Trigger is "schedule", "manual", "scim_push" or "cli". A scheduled run returns ErrBusy
	// when another run is in flight (ErrOtherReplica when in another replica, see
	// WithRunLock); every other trigger waits for it (a bounded time for another replica).
	Trigger string
	// DryRun plans and reports without writing anything.
	DryRun bool
	// Force applies destructive changes a guard would refuse (not after a failed read).
	Force bool
	// Users limits the run to these directory user ids; empty means everyone.
	Users []string
	// Tasks limits the run to these side tasks (by Name, e.g. "sso" for bridge sso apply):
	// neither the directory nor babelforce's agents are read, only what the tasks need. The
	// run is otherwise a run like any other: run lock, state, audit, report, report hook.
	Tasks []string
}

// Result is the outcome of one change.
type Result struct {
	Change Change `json:"change"`
	// Status is "applied", "failed" or "skipped".
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Result statuses.
const (
	StatusApplied = "applied"
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
)

// Report is what one run did.
type Report struct {
	// ID numbers the runs of this process, from 1 (Reconciler.Report finds a run by it).
	ID       uint64        `json:"id"`
	Trigger  string        `json:"trigger"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Duration time.Duration `json:"duration"`
	DryRun   bool          `json:"dryRun,omitempty"`
	Forced   bool          `json:"forced,omitempty"`
	// Users is the scope of the run (empty: everyone).
	Users []string `json:"users,omitempty"`
	// Tasks are the only side tasks the run planned and applied (e.g. "sso": bridge sso
	// apply); empty: a run of the directory (and every side task when unscoped).
	Tasks []string `json:"tasks,omitempty"`
	// Origin names the process that ran it (host, process id): Runs shows the runs of other
	// replicas and one-shot commands too.
	Origin  string   `json:"origin,omitempty"`
	Plan    *Plan    `json:"plan,omitempty"`
	Results []Result `json:"results,omitempty"`
	// Counts maps "kind/status" (e.g. "create_agent/applied") and each status alone to a
	// number of changes.
	Counts map[string]int `json:"counts"`
	// Errors are every error of the run as text (ReadErrors and ApplyFailures type them).
	Errors []string `json:"errors,omitempty"`
	// ReadErrors are what the run could not read (PhaseRead): the directory or babelforce (the
	// run then wrote nothing), the state, a side task's IdP or babelforce setting.
	ReadErrors []RunError `json:"readErrors,omitempty"`
	// ApplyFailures are the failed writes (PhaseApply): each failed change with its kind and
	// subject, then a state that could not be saved, a cancelled run, a lost run lock.
	ApplyFailures []RunError `json:"applyFailures,omitempty"`
	Refused       []string   `json:"refused,omitempty"`
	// Summary is the plan's summary line in numbers (nil when the run stopped before
	// planning).
	Summary *Summary `json:"summary,omitempty"`
}

// statusFailures is how many failed changes a report in Status keeps.
const statusFailures = 100

// Status returns the reports of the last runs, newest first, compact: without the plan, and
// with only the first failed changes as results (the full report is what Run returned).
func (r *Reconciler) Status() []Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.history)
}

// Report returns run id as Run returned it (plan and every result) while it is one of the
// last few runs, else the compact report Status keeps (full false), else ok false.
func (r *Reconciler) Report(id uint64) (rep *Report, full, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.full {
		if f.ID == id {
			return f, true, true
		}
	}
	for i := range r.history {
		if r.history[i].ID == id {
			c := r.history[i]
			return &c, false, true
		}
	}
	return nil, false, false
}

// NextRun returns when Schedule starts its next run; zero when it is not scheduling or a
// run is under way.
func (r *Reconciler) NextRun() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next
}

// remember keeps rep (full, and compact in the history) and returns its compact form.
func (r *Reconciler) remember(rep *Report) Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.full = append([]*Report{rep}, r.full...)
	if len(r.full) > fullKept {
		r.full = r.full[:fullKept]
	}
	c := *rep
	c.Plan = nil
	c.Results = nil
	for _, res := range rep.Results {
		if res.Status == StatusFailed && len(c.Results) < statusFailures {
			c.Results = append(c.Results, res)
		}
	}
	r.history = append([]Report{c}, r.history...)
	if len(r.history) > r.keep {
		r.history = r.history[:r.keep]
	}
	return c
}

// RunLog keeps the compact reports of the last runs where every replica and one-shot command
// sees them (*store.Store): AppendRun puts one in front, keeping the newest keep; LoadRuns
// returns them newest first.
type RunLog interface {
	AppendRun(ctx context.Context, report []byte, keep int) error
	LoadRuns(ctx context.Context) ([][]byte, error)
}

// runLogTimeout bounds saving a run's report to the RunLog.
const runLogTimeout = 10 * time.Second

// logRun saves the compact report c to the run log, if any; a failure is only logged (the
// run happened either way).
func (r *Reconciler) logRun(c Report) {
	if r.runLog == nil {
		return
	}
	b, err := json.Marshal(c)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), runLogTimeout)
		defer cancel()
		err = r.runLog.AppendRun(ctx, b, r.keep)
	}
	if err != nil {
		r.log.Warn("the run's report is not in the shared run history (other replicas' status will not show it)", "error", err)
	}
}

// Runs returns the reports of the last runs, newest first, compact: this process's (Status)
// and, with a RunLog (the store, see WithStateBackend), those of every other replica and
// one-shot command sharing it (bridge sync, bridge sso apply). A run of another process has
// ID 0 (Report cannot return it) and its Origin says where it ran. When the run log cannot be
// read, Runs logs it and returns this process's runs.
func (r *Reconciler) Runs(ctx context.Context) []Report {
	out := r.Status()
	if r.runLog == nil {
		return out
	}
	raw, err := r.runLog.LoadRuns(ctx)
	if err != nil {
		r.log.Warn("status: the shared run history cannot be read; showing this process's runs", "error", err)
		return out
	}
	for _, b := range raw {
		var rep Report
		if err := json.Unmarshal(b, &rep); err != nil || rep.Origin == r.origin {
			continue // this process's runs are in Status
		}
		rep.ID = 0
		out = append(out, rep)
	}
	slices.SortStableFunc(out, func(a, b Report) int { return b.Started.Compare(a.Started) })
	if len(out) > r.keep {
		out = out[:r.keep]
	}
	return out
}

// acquire takes the run token: scheduled runs give up at once, others wait.
func (r *Reconciler) acquire(ctx context.Context, trigger string) error {
	return r.acquireWait(ctx, trigger != TriggerSchedule)
}

// acquireWait takes the run token, waiting for a run in flight or (wait false) giving up at
// once with ErrBusy.
func (r *Reconciler) acquireWait(ctx context.Context, wait bool) error {
	if !wait {
		select {
		case r.running <- struct{}{}:
			return nil
		default:
			return ErrBusy
		}
	}
	select {
	case r.running <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the running reconcile: %w", ctx.Err())
	}
}

func (r *Reconciler) release() { <-r.running }

// Busy reports whether a run is in flight now (a hint: it may end the next moment).
func (r *Reconciler) Busy() bool { return len(r.running) > 0 }

// Plan reads the directory and babelforce and returns what a run would change, guards
// applied, without writing anything.
func (r *Reconciler) Plan(ctx context.Context, scope Scope) (*Plan, error) {
	snap, err := r.read(ctx)
	if err != nil {
		return nil, err
	}
	st, err := r.state.loadContext(ctx)
	if err != nil {
		return nil, asRead(err)
	}
	p, _, err := r.plan(ctx, snap, scope, false, st)
	return p, err
}

// Run plans and applies one reconcile. The error is a *GuardError (errors.Is
// ErrGuardRefused) when a guard held back destructive changes, ErrBusy for a scheduled run
// while another runs (ErrOtherReplica, which is ErrBusy too, when another replica holds the
// run lock, or when a run of another trigger waited for it in vain), the read error when the
// directory or babelforce could not be read whole (then nothing was written), or the joined
// errors of the changes that failed.
func (r *Reconciler) Run(ctx context.Context, opts RunOptions) (*Report, error) {
	if err := r.acquire(ctx, opts.Trigger); err != nil {
		return nil, err
	}
	defer r.release()
	ctx, unlock, err := r.acquireRunLock(ctx, opts.Trigger)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep := r.newReport(opts)
	if len(opts.Tasks) > 0 {
		return lockCause(ctx)(r.runTasks(ctx, rep, opts))
	}
	snap, err := r.read(ctx)
	if err != nil {
		return lockCause(ctx)(r.finish(rep, err))
	}
	return lockCause(ctx)(r.runLocked(ctx, rep, snap, opts))
}

// runTasks is a run of only the side tasks opts.Tasks names.
func (r *Reconciler) runTasks(ctx context.Context, rep *Report, opts RunOptions) (*Report, error) {
	var tasks []SideTask
	var names []string
	for _, t := range r.tasks {
		names = append(names, t.Name())
	}
	for _, name := range opts.Tasks {
		i := slices.Index(names, name)
		if i < 0 {
			return r.finish(rep, fmt.Errorf("no side task %q is configured (configured: %s)", name, cmp.Or(strings.Join(names, ", "), "none")))
		}
		tasks = append(tasks, r.tasks[i])
	}
	st, err := r.state.loadContext(ctx)
	if err != nil {
		return r.finish(rep, asRead(err))
	}
	p := &Plan{}
	ops := r.planTasks(ctx, p, tasks, st)
	sortOps(ops)
	r.guard(p, ops, 0, 0, nil, nil, opts.Force) // side tasks take nothing from a person: all pass
	return r.applyPlan(ctx, rep, p, nil, st, opts)
}

// lockCause returns a function that adds why held ended early (the run lock was lost, see
// WithRunLock) to a run's error and report.
func lockCause(held context.Context) func(*Report, error) (*Report, error) {
	return func(rep *Report, err error) (*Report, error) {
		cause := context.Cause(held)
		if err == nil || cause == nil || errors.Is(err, cause) || cause == held.Err() {
			return rep, err
		}
		if rep != nil {
			rep.Errors = append(rep.Errors, cause.Error())
			rep.ApplyFailures = append(rep.ApplyFailures, RunError{Phase: PhaseApply, Message: cause.Error()})
		}
		return rep, fmt.Errorf("%w: %w", cause, err)
	}
}

// ProvisionUsers reconciles the users that the queries name, now: each query is a directory
// id, userName or e-mail. A user no longer in the directory is matched against bridge's
// agents by sourceId or e-mail, so that its agent gets disabled. It waits for a running
// reconcile.
func (r *Reconciler) ProvisionUsers(ctx context.Context, trigger string, queries ...string) (*Report, error) {
	if len(queries) == 0 {
		return nil, errors.New("provision: name at least one user (id, userName or e-mail)")
	}
	if err := r.acquire(ctx, trigger); err != nil {
		return nil, err
	}
	defer r.release()
	ctx, unlock, err := r.acquireRunLock(ctx, trigger)
	if err != nil {
		return nil, err
	}
	defer unlock()
	opts := RunOptions{Trigger: trigger}
	rep := r.newReport(opts)
	rep.Users = slices.Clone(queries) // until they resolve to directory ids
	snap, err := r.read(ctx)
	if err != nil {
		return lockCause(ctx)(r.finish(rep, err))
	}
	ids, err := r.resolveUsers(ctx, snap, queries)
	if err != nil {
		return lockCause(ctx)(r.finish(rep, err))
	}
	opts.Users = ids
	rep.Users = ids
	return lockCause(ctx)(r.runLocked(ctx, rep, snap, opts))
}

// resolveUsers turns queries into directory ids.
func (r *Reconciler) resolveUsers(ctx context.Context, snap *directory.Snapshot, queries []string) ([]string, error) {
	var ids []string
	var missing []string
	for _, q := range queries {
		q = strings.TrimSpace(q)
		if q == "" {
			return nil, errors.New("empty user query: give an id, userName or e-mail")
		}
		u, err := mapping.FindUser(snap, q)
		switch {
		case err == nil:
			ids = append(ids, u.ID)
		case errors.Is(err, mapping.ErrNoUser):
			missing = append(missing, q)
		default:
			return nil, err
		}
	}
	if len(missing) > 0 {
		// gone from the directory? look for bridge's agent by sourceId, else by e-mail.
		var unknown []string
		for _, q := range missing {
			agents, err := r.listOwned(ctx, q)
			if err != nil {
				return nil, asRead(err)
			}
			if len(agents) == 0 && strings.Contains(q, "@") {
				all, err := r.actual.ListAgents(ctx, babelforce.AgentFilter{Source: r.rules.AgentSource(), Q: q})
				if err != nil {
					return nil, asRead(fmt.Errorf("look for agents with e-mail %s: %w", q, err))
				}
				for _, a := range all {
					if r.owns(&a) {
						agents = append(agents, a)
					}
				}
			}
			found := false
			for _, a := range agents {
				if key(a.SourceID) == key(q) || strings.EqualFold(a.Email, q) {
					ids = append(ids, a.SourceID)
					found = true
					break
				}
			}
			if !found {
				unknown = append(unknown, fmt.Sprintf("%q", q))
			}
		}
		if len(unknown) > 0 {
			return nil, fmt.Errorf("user %s: %w: no directory user has this id, userName or e-mail and no agent of bridge has this sourceId or e-mail",
				strings.Join(unknown, ", "), ErrUnknownUser)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

func (r *Reconciler) newReport(opts RunOptions) *Report {
	r.mu.Lock()
	r.lastID++
	id := r.lastID
	r.mu.Unlock()
	return &Report{ID: id, Trigger: cmp.Or(opts.Trigger, TriggerManual), Started: r.now(), DryRun: opts.DryRun,
		Forced: opts.Force, Users: opts.Users, Tasks: opts.Tasks, Origin: r.origin, Counts: map[string]int{}}
}

// read reads the whole directory; any error (a partial read is one) stops the run.
func (r *Reconciler) read(ctx context.Context) (*directory.Snapshot, error) {
	if err := r.checkRules(); err != nil {
		return nil, err
	}
	snap, err := r.src.Read(ctx)
	if err != nil { // a partial read (directory.ErrIncomplete) too
		return nil, asRead(fmt.Errorf("read directory: %w (nothing was changed)", err))
	}
	if snap == nil {
		return nil, asRead(errors.New("read directory: the source returned no snapshot (nothing was changed)"))
	}
	return snap, nil
}

// checkRules refuses to run without rules that tell bridge's agents from others.
func (r *Reconciler) checkRules() error {
	if r.rules == nil {
		return errors.New("reconcile: no mapping rules configured")
	}
	if r.rules.AgentSource() == "" {
		return errors.New("reconcile: mapping.agent_source is empty; bridge cannot tell its agents from others without it")
	}
	return nil
}

func (r *Reconciler) runLocked(ctx context.Context, rep *Report, snap *directory.Snapshot, opts RunOptions) (*Report, error) {
	st, err := r.state.loadContext(ctx)
	if err != nil {
		return r.finish(rep, asRead(err))
	}
	p, desired, err := r.plan(ctx, snap, Scope{Users: opts.Users}, opts.Force, st)
	if err != nil {
		return r.finish(rep, err)
	}
	return r.applyPlan(ctx, rep, p, desired, st, opts)
}

// applyPlan applies p (unless a dry run), saves the state and finishes the report.
func (r *Reconciler) applyPlan(ctx context.Context, rep *Report, p *Plan, desired *mapping.Desired, st *state, opts RunOptions) (*Report, error) {
	rep.Plan = p
	rep.Refused = p.Refused
	errs := append([]error(nil), p.sideErrs...)
	if !opts.DryRun {
		errs = append(errs, r.apply(ctx, rep, p, st, opts.Trigger))
		st.Owned = max(st.Owned+rep.Counts[string(CreateAgent)+"/"+StatusApplied]-rep.Counts[string(DeleteAgent)+"/"+StatusApplied], 0)
		st.noteDestructive(p, r.now(), r.cfg.GuardWindow())
		if desired != nil { // nil: a run of side tasks only
			st.Tags = union(st.Tags, desired.Tags)
			st.Groups = union(st.Groups, desired.AgentGroups)
			if !p.scoped && (len(missingRuleGroups(desired, st)) == 0 || opts.Force) {
				st.RuleGroups = foundRuleGroups(desired) // this read is the last good one
			}
		}
		if err := r.state.saveContext(ctx, st); err != nil {
			errs = append(errs, err)
		}
	} else {
		for _, c := range p.Changes {
			rep.Counts[string(c.Kind)+"/planned"]++
			rep.Counts["planned"]++
		}
	}
	if len(p.Refused) > 0 {
		errs = append(errs, &GuardError{Reasons: p.Refused})
	}
	return r.finish(rep, errors.Join(errs...))
}

func (r *Reconciler) finish(rep *Report, err error) (*Report, error) {
	rep.Finished = r.now()
	rep.Duration = rep.Finished.Sub(rep.Started)
	if rep.Plan != nil {
		s := rep.Plan.Summary()
		rep.Summary = &s
	}
	if err != nil {
		for _, e := range unjoin(err) {
			rep.Errors = append(rep.Errors, e.Error())
		}
	}
	classify(rep, err)
	r.logRun(r.remember(rep))
	if r.onReport != nil {
		r.onReport(rep)
	}
	lvl := slog.LevelInfo
	if err != nil {
		lvl = slog.LevelWarn
	}
	r.log.Log(context.Background(), lvl, "reconcile finished", "trigger", rep.Trigger, "dry_run", rep.DryRun,
		"applied", rep.Counts[StatusApplied], "failed", rep.Counts[StatusFailed], "skipped", rep.Counts[StatusSkipped],
		"refused", len(rep.Refused), "duration", rep.Duration, "errors", len(rep.Errors),
		"read_errors", len(rep.ReadErrors), "apply_failures", len(rep.ApplyFailures))
	return rep, err
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// retryBase is the wait before the scheduler retries a failed run; it doubles with every
// failure in a row, up to the interval.
const retryBase = 30 * time.Second

// Schedule runs a reconcile now and then every interval (± jitter) until ctx is cancelled; a
// tick while another run is in flight, here or (WithRunLock) in another replica, is skipped.
// A run that failed (the directory or babelforce could not be read, or changes failed) is
// retried after 30 s, then 60 s, 120 s, ... (never later than the interval) instead of a whole
// interval later; each retry is a normal run, guards and all. A run only held back by a guard
// is not retried early: the same read would be refused again. It returns once the current run
// is done.
func (r *Reconciler) Schedule(ctx context.Context) {
	defer r.setNext(time.Time{})
	failures := 0
	for {
		r.setNext(time.Time{})
		rep, err := r.Run(ctx, RunOptions{Trigger: TriggerSchedule, DryRun: r.cfg.DryRun})
		switch {
		case errors.Is(err, ErrOtherReplica):
			r.log.Info("scheduled reconcile skipped: another replica is reconciling")
		case errors.Is(err, ErrBusy):
			r.log.Info("scheduled reconcile skipped: another run is in flight")
		case err != nil && ctx.Err() == nil:
			r.log.Warn("scheduled reconcile", "error", err)
		}
		d := r.nextDelay()
		if err != nil && ctx.Err() == nil && runFailed(rep, err) {
			failures++
			d = min(retryBase<<min(failures-1, 20), r.cfg.Interval)
			r.log.Warn("scheduled reconcile failed; retrying early", "failures_in_a_row", failures, "retry_in", d)
		} else if err == nil {
			failures = 0
		}
		r.setNext(r.now().Add(d))
		select {
		case <-ctx.Done():
			return
		case <-r.after(d):
		}
	}
}

func (r *Reconciler) setNext(t time.Time) {
	r.mu.Lock()
	r.next = t
	r.mu.Unlock()
}

// runFailed reports whether a run failed in a way a retry may cure: it could not read, or
// some of its changes failed; not when it was skipped (busy) or only held back by a guard.
func runFailed(rep *Report, err error) bool {
	if errors.Is(err, ErrBusy) {
		return false
	}
	if rep == nil || rep.Plan == nil || rep.Counts[StatusFailed] > 0 {
		return true
	}
	for _, e := range unjoin(err) {
		if !errors.Is(e, ErrGuardRefused) {
			return true
		}
	}
	return false
}

// nextDelay is the interval spread by ±jitter percent.
func (r *Reconciler) nextDelay() time.Duration {
	j := r.cfg.Jitter / 100
	f := 1 + j*(2*r.random()-1)
	return time.Duration(float64(r.cfg.Interval) * f)
}
