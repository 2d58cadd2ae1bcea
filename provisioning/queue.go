package provisioning

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/directory/store"
)

// ScopedSource is a Source that can read a few people without reading the whole directory;
// directory/store.Store is one. Queued changes are applied with it in time that follows the
// number of changes, not the size of the directory.
type ScopedSource interface {
	Source
	// ReadUsers returns, resolved, the users with these ids that exist (an id missing from
	// the snapshot is gone from the directory) and every group they belong to directly or
	// through nested groups, and total, the number of users in the whole directory (what the
	// guards compare with guard.min_source_users). Any error means nothing may be concluded.
	ReadUsers(ctx context.Context, ids []string) (snap *directory.Snapshot, total int, err error)
}

// RunQueued reconciles the people with these directory ids, as a queue worker does: it does
// not wait for a run in flight (ErrBusy) nor for another replica's run lock
// (ErrOtherReplica). An id that is neither in the directory nor an agent of bridge is
// nothing to do. With a ScopedSource only those people (and the groups they are in) are
// read from the directory; babelforce is read for them alone (filtered reads) when they are
// few. Guards keep their meaning: they count the whole directory's users.
func (r *Reconciler) RunQueued(ctx context.Context, trigger string, ids []string) (*Report, error) {
	if len(ids) == 0 {
		return nil, errors.New("run queued changes: no ids")
	}
	if err := r.acquireWait(ctx, false); err != nil {
		return nil, err
	}
	defer r.release()
	ctx, unlock, err := r.acquireRunLockWait(ctx, trigger, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep, err := r.runQueued(ctx, trigger, ids)
	return lockCause(ctx)(rep, err)
}

// runQueued is RunQueued under the locks.
func (r *Reconciler) runQueued(ctx context.Context, trigger string, ids []string) (*Report, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	opts := RunOptions{Trigger: trigger, Users: ids}
	rep := r.newReport(opts)
	src, scoped := r.src.(ScopedSource)
	if !scoped {
		snap, err := r.read(ctx)
		if err != nil {
			return r.finish(rep, err)
		}
		return r.runLocked(ctx, rep, snap, opts)
	}
	if err := r.checkRules(); err != nil {
		return r.finish(rep, err)
	}
	st, err := r.state.loadContext(ctx)
	if err != nil {
		return r.finish(rep, err)
	}
	// bridge's agents found by e-mail whose person the scoped read does not hold would look
	// like leavers whose agent a new directory id takes over: read those people too, and
	// plan again if any of them is still in the directory.
	read := ids
	for round := 0; ; round++ {
		snap, total, err := src.ReadUsers(ctx, read)
		if err != nil {
			return r.finish(rep, fmt.Errorf("read directory: %w (nothing was changed)", err))
		}
		p, desired, actual, err := r.planActual(ctx, snap, Scope{Users: ids, sourceUsers: max(total, 1)}, false, st)
		if err != nil {
			return r.finish(rep, err)
		}
		var extra []string
		for _, a := range actual.owned {
			if snap.User(a.SourceID) == nil && !slices.Contains(read, a.SourceID) {
				extra = append(extra, a.SourceID)
			}
		}
		if len(extra) == 0 || round > 0 {
			return r.applyPlan(ctx, rep, p, desired, st, opts)
		}
		more, _, err := src.ReadUsers(ctx, extra)
		if err != nil {
			return r.finish(rep, fmt.Errorf("read directory: %w (nothing was changed)", err))
		}
		if len(more.Users) == 0 {
			return r.applyPlan(ctx, rep, p, desired, st, opts)
		}
		read = append(slices.Clone(read), extra...)
	}
}

// ChangeQueue is the durable queue of people to provision again that a QueueWorker drains;
// directory/store.Store is one (see its package doc for who enqueues).
type ChangeQueue interface {
	DueEntries(ctx context.Context, now time.Time, limit int) ([]store.QueueEntry, error)
	DoneEntries(ctx context.Context, entries []store.QueueEntry) error
	RetryEntries(ctx context.Context, entries []store.QueueEntry, notBefore time.Time, reason string) error
	QueueStats(ctx context.Context) (store.QueueStats, error)
}

// QueueWorker options' defaults.
const (
	DefaultQueuePoll     = time.Second
	DefaultQueueBatch    = 500
	DefaultQueueBackoff  = time.Second
	DefaultQueueMaxDelay = 30 * time.Second
)

// QueueWorkerOptions tune a QueueWorker; zero values take the defaults.
type QueueWorkerOptions struct {
	Logger *slog.Logger
	// Poll is how often the queue is looked at without a Wake (other replicas' entries,
	// backoffs that ended). Default 1 s.
	Poll time.Duration
	// Batch is the most people one run takes (default 500).
	Batch int
	// Backoff is the wait after a first failed run, doubled after each further failure up
	// to MaxBackoff (defaults 1 s and 30 s): entries that failed because babelforce was
	// down are applied at most MaxBackoff after it is back.
	Backoff, MaxBackoff time.Duration
	// OnStats sees the queue's stats after every look at it (metrics).
	OnStats func(store.QueueStats)
	// Now and After replace the clock and time.After (tests).
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

// QueueWorker drains a ChangeQueue: it takes the due entries, oldest first, coalesced into
// one scoped run (Reconciler.RunQueued) per batch, and marks them done, or due again after a
// backoff when the run failed. Every replica may run one: only the one that gets the run
// lock applies, the others find the lock taken and look again later; entries stay in the
// queue until a run applied them, across restarts and the loss of a replica.
type QueueWorker struct {
	rec  *Reconciler
	q    ChangeQueue
	opts QueueWorkerOptions
	wake chan struct{}

	mu    sync.Mutex
	stats store.QueueStats
}

// NewQueueWorker returns a worker that drains q through rec.
func NewQueueWorker(rec *Reconciler, q ChangeQueue, opts QueueWorkerOptions) *QueueWorker {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultQueuePoll
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultQueueBatch
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultQueueBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultQueueMaxDelay
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.After == nil {
		opts.After = time.After
	}
	return &QueueWorker{rec: rec, q: q, opts: opts, wake: make(chan struct{}, 1)}
}

// Wake makes the worker look at the queue now (something was queued); it never blocks.
func (w *QueueWorker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Stats returns the queue's stats as last seen by the worker.
func (w *QueueWorker) Stats() store.QueueStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Run drains the queue until ctx ends.
func (w *QueueWorker) Run(ctx context.Context) {
	for {
		more := w.DrainOnce(ctx)
		w.observe(ctx)
		if ctx.Err() != nil {
			return
		}
		if more {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-w.opts.After(w.opts.Poll):
		}
	}
}

func (w *QueueWorker) observe(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	st, err := w.q.QueueStats(ctx)
	if err != nil {
		w.opts.Logger.Warn("change queue: cannot read its stats", "error", err)
		return
	}
	w.mu.Lock()
	w.stats = st
	w.mu.Unlock()
	if w.opts.OnStats != nil {
		w.opts.OnStats(st)
	}
}

// DrainOnce runs one batch of due entries, if any, and reports whether it applied a full
// batch (more may be due at once).
func (w *QueueWorker) DrainOnce(ctx context.Context) bool {
	log := w.opts.Logger
	entries, err := w.q.DueEntries(ctx, w.opts.Now(), w.opts.Batch)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("change queue: cannot read it; trying again", "error", err)
		}
		return false
	}
	if len(entries) == 0 {
		return false
	}
	ids := make([]string, len(entries))
	sources := map[string]bool{}
	attempts := 0
	for i, e := range entries {
		ids[i] = e.Subject
		sources[e.Source] = true
		attempts = max(attempts, e.Attempts)
	}
	trigger := "queue"
	if len(sources) == 1 {
		trigger = slices.Collect(maps.Keys(sources))[0]
	}
	rep, err := w.rec.RunQueued(ctx, trigger, ids)
	switch {
	case errors.Is(err, ErrBusy):
		// a run in flight here, or another replica's (which drains the queue itself): look
		// again at the next poll
		log.Debug("change queue: a run is in flight; trying again", "people", len(ids), "reason", err)
		return false
	case ctx.Err() != nil:
		// shutting down (or the run lock was lost): the entries stay due
		return false
	case err == nil || onlyGuard(err):
		if err := w.q.DoneEntries(ctx, entries); err != nil {
			log.Warn("change queue: applied, but cannot remove the entries; they will be applied again (a no-op)", "error", err)
			return false
		}
		log.Info("change queue: applied", "trigger", trigger, "people", len(ids),
			"applied", countOf(rep, StatusApplied), "refused", err != nil)
		return len(entries) == w.opts.Batch
	default:
		d := min(w.opts.Backoff<<min(attempts, 20), w.opts.MaxBackoff)
		next := w.opts.Now().Add(d)
		log.Warn("change queue: run failed; trying again after a backoff", "trigger", trigger, "people", len(ids),
			"attempt", attempts+1, "backoff", d, "error", err)
		if err := w.q.RetryEntries(ctx, entries, next, err.Error()); err != nil {
			log.Warn("change queue: cannot record the failed attempt", "error", err)
		}
		return false
	}
}

func countOf(rep *Report, status string) int {
	if rep == nil {
		return 0
	}
	return rep.Counts[status]
}

// onlyGuard reports whether every error joined in err is a guard's refusal.
func onlyGuard(err error) bool {
	for _, e := range unjoin(err) {
		if !errors.Is(e, ErrGuardRefused) {
			return false
		}
	}
	return true
}
