package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// Retries of write transactions the database aborted only because of another transaction
// running at the same time (PostgreSQL's serialization_failure and deadlock_detected, SQLite's
// SQLITE_BUSY when the busy timeout was not enough): running the transaction again usually
// succeeds.
const (
	// writeAttempts is how many times a write transaction is tried in all.
	writeAttempts = 3
	// retryBackoff is the base wait before the second attempt; it doubles for each further
	// attempt, and each wait is jittered to between half and one and a half times that.
	retryBackoff = 10 * time.Millisecond
)

// PostgreSQL SQLSTATEs and the SQLite primary result code that mean "try again".
const (
	sqlstateSerializationFailure = "40001"
	sqlstateDeadlockDetected     = "40P01"
	sqliteBusy                   = 5 // SQLITE_BUSY; extended codes (BUSY_SNAPSHOT, ...) share the low byte
)

// retryable reports whether err is a transient conflict with another transaction, for which
// the whole transaction may run again.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == sqlstateSerializationFailure || pgErr.Code == sqlstateDeadlockDetected
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code()&0xff == sqliteBusy
	}
	return false
}

// retry runs op, a whole transaction (begin to commit), up to writeAttempts times while it
// fails with a retryable error, waiting a short jittered backoff between attempts. It stops
// early when ctx ends, returning the last error of op joined with ctx's. what names the
// operation in logs. op must be safe to run again: each run starts from scratch.
func (s *Store) retry(ctx context.Context, what string, op func() error) error {
	wait := retryBackoff
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || attempt >= writeAttempts || !retryable(err) {
			return err
		}
		d := wait/2 + rand.N(wait)
		s.logger.DebugContext(ctx, "store: retrying a write transaction after a conflict with another transaction",
			"operation", what, "attempt", attempt, "backoff", d, "error", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (not retried: %w)", err, ctx.Err())
		case <-t.C:
		}
		wait *= 2
	}
}
