package provisioning

import (
	"context"
	"fmt"
	"time"
)

// RunLockFunc takes a lock shared by every bridge replica without waiting: ok is false when
// another replica holds it; on success release must be called when the run ends, and held
// is a context derived from ctx that ends when the lock is lost (its cause says why): the
// run does all its reads and writes under held, so it stops writing once another replica
// may hold the lock. store.(*Store).RunLock is one (a PostgreSQL advisory lock whose session
// is checked every second; always free on SQLite).
type RunLockFunc func(ctx context.Context) (held context.Context, release func(), ok bool, err error)

// ErrOtherReplica is returned by a run that did not get the run lock because another replica
// is reconciling. errors.Is(err, ErrBusy) holds for it too.
var ErrOtherReplica = fmt.Errorf("%w: another replica is reconciling", ErrBusy)

// Run lock timing: how often a waiting run asks again, and how long it waits by default.
const (
	runLockPoll        = 200 * time.Millisecond
	defaultRunLockWait = 30 * time.Second
)

// WithRunLock makes every run (Run, ProvisionUsers) also take lock, a lock shared by the
// replicas of one bridge deployment, so that two replicas never reconcile at once. It is
// taken after the in-process lock and held until the run ends. A scheduled run that does
// not get it at once is skipped (Schedule logs "another replica is reconciling"; Run returns
// ErrOtherReplica). Other triggers (manual, scim_push, cli) ask again every 200 ms for up to
// the run lock wait (30 s) or until ctx ends, then fail with
// ErrOtherReplica. An error taking the lock fails the run before anything is read.
func WithRunLock(lock RunLockFunc) Option { return func(r *Reconciler) { r.runLock = lock } }

// acquireRunLock takes the cross-replica run lock, if one is configured; when err is nil,
// release is never nil and held is the context the run must use (ctx without a run lock).
func (r *Reconciler) acquireRunLock(ctx context.Context, trigger string) (held context.Context, release func(), err error) {
	return r.acquireRunLockWait(ctx, trigger, trigger != TriggerSchedule)
}

// acquireRunLockWait is acquireRunLock; wait false gives up at once with ErrOtherReplica.
func (r *Reconciler) acquireRunLockWait(ctx context.Context, trigger string, wait bool) (held context.Context, release func(), err error) {
	if r.runLock == nil {
		return ctx, func() {}, nil
	}
	try := func() (context.Context, func(), bool, error) {
		held, release, ok, err := r.runLock(ctx)
		if err != nil {
			return nil, nil, false, fmt.Errorf("take the run lock: %w", err)
		}
		if ok && release == nil {
			release = func() {}
		}
		if ok && held == nil {
			held = ctx
		}
		return held, release, ok, nil
	}
	held, release, ok, err := try()
	if err != nil || ok {
		return held, release, err
	}
	maxWait := defaultRunLockWait
	if r.runLockWaitSet {
		maxWait = r.runLockWait
	}
	if !wait || maxWait <= 0 {
		return nil, nil, ErrOtherReplica
	}
	r.log.Info("waiting for another replica's reconcile", "trigger", trigger, "max_wait", maxWait)
	poll := r.runLockPoll
	if poll <= 0 {
		poll = runLockPoll
	}
	deadline := time.NewTimer(maxWait)
	defer deadline.Stop()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("wait for another replica's reconcile: %w", ctx.Err())
		case <-deadline.C:
			return nil, nil, fmt.Errorf("waited %s for the run lock: %w", maxWait, ErrOtherReplica)
		case <-tick.C:
		}
		held, release, ok, err := try()
		if err != nil || ok {
			return held, release, err
		}
	}
}
