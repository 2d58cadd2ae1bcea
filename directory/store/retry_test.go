package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/babelforce/bridge/internal/testenv"
)

// TestPostgresDeadlockRetried provokes a real deadlock through the Store API: two replicas
// each update one of two groups (locking its row) and, while both hold their lock, add the
// other group as a member (which share-locks the other row). PostgreSQL aborts one of them
// with deadlock_detected; Update runs that one again, so both succeed and both memberships
// are stored.
func TestPostgresDeadlockRetried(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	a, b := openURL(t, pg.URL), openURL(t, pg.URL)
	g1 := mustCreate(t, a, group("deadlock one"))
	g2 := mustCreate(t, a, group("deadlock two"))

	// Both closures wait, on their first call only, until the other one holds its row lock.
	var arrived sync.WaitGroup
	arrived.Add(2)
	var calls [2]atomic.Int32
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, s := range []*Store{a, b} {
		self, other := g1, g2
		if i == 1 {
			self, other = g2, g1
		}
		wg.Go(func() {
			_, _, errs[i] = s.Update(ctx, KindGroup, self.ID, func(r *Resource) error {
				if calls[i].Add(1) == 1 {
					arrived.Done()
					arrived.Wait()
				}
				if len(r.Members()) != 0 && calls[i].Load() == 1 {
					return fmt.Errorf("first call sees members %v", r.Members())
				}
				r.Attributes["members"] = []any{map[string]any{"value": other.ID}}
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("update %d: %v (calls: %d, %d)", i, err, calls[0].Load(), calls[1].Load())
		}
	}
	// One of the two is the deadlock victim and runs again (3 calls). Under load the victim's
	// second attempt can take its own row lock again before the winner's share lock on it, and
	// deadlock once more: a third attempt, still within writeAttempts (both succeeded above).
	if n := calls[0].Load() + calls[1].Load(); n < 3 || n > 2+2*(writeAttempts-1) {
		t.Fatalf("the update closures ran %d times in all; want 3 (one deadlock victim run again), or a few more under load", n)
	}
	for _, pair := range [][2]Resource{{g1, g2}, {g2, g1}} {
		got, err := b.Get(ctx, KindGroup, pair[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if ms := got.Members(); len(ms) != 1 || ms[0].ID != pair[1].ID || ms[0].Kind != KindGroup {
			t.Fatalf("members of %s = %+v; want group %s", got.Attributes["displayName"], ms, pair[1].ID)
		}
	}
}

// TestRetry runs the retry helper on fake error sequences.
func TestRetry(t *testing.T) {
	deadlock := fmt.Errorf("update user x: %w", &pgconn.PgError{Code: "40P01", Message: "deadlock detected"})
	serialization := &pgconn.PgError{Code: "40001", Message: "could not serialize access"}
	other := &pgconn.PgError{Code: "23505", Message: "duplicate key"}
	plain := errors.New("boom")
	cases := []struct {
		name      string
		seq       []error
		wantCalls int
		wantErr   error
	}{
		{"first attempt succeeds", []error{nil}, 1, nil},
		{"deadlock then success", []error{deadlock, nil}, 2, nil},
		{"deadlock, serialization failure, success", []error{deadlock, serialization, nil}, 3, nil},
		{"three conflicts: gives up with the last", []error{deadlock, deadlock, serialization, nil}, 3, serialization},
		{"other PostgreSQL error not retried", []error{other, nil}, 1, other},
		{"plain error not retried", []error{plain, nil}, 1, plain},
	}
	s := openMem(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			err := s.retry(context.Background(), "test", func() error {
				err := c.seq[calls]
				calls++
				return err
			})
			if calls != c.wantCalls {
				t.Errorf("calls = %d; want %d", calls, c.wantCalls)
			}
			if !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
				t.Errorf("err = %v; want %v", err, c.wantErr)
			}
		})
	}
	t.Run("context ends during the backoff", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		err := s.retry(ctx, "test", func() error {
			calls++
			cancel()
			return deadlock
		})
		var pgErr *pgconn.PgError
		if calls != 1 || !errors.Is(err, context.Canceled) || !errors.As(err, &pgErr) || pgErr.Code != "40P01" {
			t.Fatalf("calls = %d, err = %v; want 1 call and the deadlock joined with context.Canceled", calls, err)
		}
	})
}
