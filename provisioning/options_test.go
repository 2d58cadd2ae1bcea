package provisioning

import (
	"context"
	"time"
)

// Options and helpers only the tests use: production never replaces the clock, the timer of
// the scheduler, the jitter or the run lock wait.

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(r *Reconciler) { r.now = now } }

// WithAfter replaces time.After for the scheduler (tests fire the channel themselves).
func WithAfter(after func(time.Duration) <-chan time.Time) Option {
	return func(r *Reconciler) { r.after = after }
}

// WithRandom replaces the source of jitter: a function returning a number in [0, 1).
func WithRandom(f func() float64) Option { return func(r *Reconciler) { r.random = f } }

// WithRunLockWait sets how long a run that is not scheduled waits for the run lock (default
// 30 s; 0 or less: not at all).
func WithRunLockWait(d time.Duration) Option {
	return func(r *Reconciler) { r.runLockWait = d; r.runLockWaitSet = true }
}

// load is loadContext without a deadline.
func (s *stateStore) load() (*state, error) { return s.loadContext(context.Background()) }

// save is saveContext without a deadline.
func (s *stateStore) save(st *state) error { return s.saveContext(context.Background(), st) }
