package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// The PostgreSQL advisory locks (per database) of the replicas: runLockKey is held while a
// replica reconciles, streamLockKey while it follows the directory's change stream.
const (
	runLockKey    int64 = 0x6272_6964_6765_0002 // "bridge" 2
	streamLockKey int64 = 0x6272_6964_6765_0003 // "bridge" 3
)

// The lock names: the rows of bridge_run_lock (LockHolders) and what logs call them.
const (
	LockRun    = "run"
	LockStream = "stream"
)

// One writer, even when a lock session dies: the holder checks its lock session every
// RunLockCheckInterval (a heartbeat written through that session, bounded by
// runLockCheckTimeout) and cancels the run's context as soon as a check fails, so it stops
// writing at most RunLockLossWindow after the session died. A replica that takes the lock
// after a holder that did not release it waits until RunLockTakeoverDelay after that holder's
// last heartbeat before it writes anything.
const (
	RunLockCheckInterval = time.Second
	runLockCheckTimeout  = 900 * time.Millisecond
	// RunLockLossWindow bounds the time from the loss of the lock session to the holder's
	// context being cancelled.
	RunLockLossWindow = RunLockCheckInterval + runLockCheckTimeout
	// RunLockTakeoverDelay is how long after the previous holder's last heartbeat a new
	// holder may start writing: longer than RunLockLossWindow.
	RunLockTakeoverDelay = 3 * time.Second
)

// ErrRunLockLost is the cause of a run lock context's cancellation when the lock session
// died (terminated, network cut, server restarted): another replica may hold the lock now.
var ErrRunLockLost = errors.New("the run lock was lost (its database session ended): stopped writing so that another replica can take over")

// ErrStreamLockLost is the cause of a stream lock context's cancellation when its session
// died: another replica may follow the change stream now.
var ErrStreamLockLost = errors.New("the stream lock was lost (its database session ended): stopped following so that another replica can take over")

// pgNowMillis is PostgreSQL's clock in Unix milliseconds (the heartbeat's clock, the same
// for every replica).
const pgNowMillis = `(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT`

// RunLock takes the lock that keeps two bridge replicas sharing this store from reconciling
// at the same time, without waiting for another holder: ok is false when another replica
// holds it. On success held is a context derived from ctx that is cancelled, with
// ErrRunLockLost as its cause, when the lock is lost; every write of the run must use it.
// The caller must call release (idempotent) when its run ends. The holder is named in the
// heartbeat row by Replica (LockHolders).
//
// On PostgreSQL it is a session-level advisory lock (pg_try_advisory_lock) on a connection
// of its own, held until release; if that connection breaks, or the replica dies, the server
// frees the lock. The holder writes a heartbeat through that session every second (table
// bridge_run_lock) and cancels held when one fails or takes too long (see
// RunLockLossWindow). Taking over from a holder that did not release the lock waits until
// RunLockTakeoverDelay after its last heartbeat (by the database's clock), so the two never
// write at the same time. On SQLite, a single process's file, it always succeeds at once (the
// reconciler's in-process lock is enough).
func (s *Store) RunLock(ctx context.Context) (held context.Context, release func(), ok bool, err error) {
	return s.advisoryLock(ctx, LockRun, runLockKey, ErrRunLockLost)
}

// StreamLock is RunLock's twin for following the directory's change stream
// (provisioning.FollowerOptions.Lead): with several replicas only its holder follows; the
// others stand by and take over, with the same heartbeat, loss detection and takeover delay,
// when the holder's session ends (held is then cancelled with ErrStreamLockLost). It is
// independent of the run lock. Always granted on SQLite.
func (s *Store) StreamLock(ctx context.Context) (held context.Context, release func(), ok bool, err error) {
	return s.advisoryLock(ctx, LockStream, streamLockKey, ErrStreamLockLost)
}

// advisoryLock takes the session-level advisory lock key for name (a row of bridge_run_lock)
// without waiting; lost is the cause held is cancelled with when the session dies.
func (s *Store) advisoryLock(ctx context.Context, name string, key int64, lost error) (held context.Context, release func(), ok bool, err error) {
	if s.d.name != BackendPostgres {
		held, cancel := context.WithCancelCause(ctx)
		return held, func() { cancel(nil) }, true, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, nil, false, fmt.Errorf("%s lock: %w", name, err)
	}
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		discardConn(conn)
		return nil, nil, false, fmt.Errorf("%s lock: %w", name, err)
	}
	if !got {
		_ = conn.Close()
		return nil, nil, false, nil
	}
	holder := s.replica + " #" + s.newID()
	fail := func(err error) (context.Context, func(), bool, error) {
		discardConn(conn) // frees the lock
		return nil, nil, false, fmt.Errorf("%s lock: %w", name, err)
	}
	// the previous holder, if it did not release the lock, may still be writing until its
	// loss window has passed
	var beat, now sql.NullInt64
	var released sql.NullInt64
	err = conn.QueryRowContext(ctx, `SELECT beat_at, released, `+pgNowMillis+` FROM bridge_run_lock WHERE name = $1`, name).
		Scan(&beat, &released, &now)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fail(err)
	case released.Int64 == 0:
		if wait := time.Duration(beat.Int64+RunLockTakeoverDelay.Milliseconds()-now.Int64) * time.Millisecond; wait > 0 {
			s.logger.Info(name+" lock taken over from a replica that lost it: waiting before the first write",
				"wait", wait, "previous_heartbeat_ms_ago", now.Int64-beat.Int64)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fail(ctx.Err())
			case <-t.C:
			}
		}
	}
	beatOnce := func(ctx context.Context) error {
		_, err := conn.ExecContext(ctx, `INSERT INTO bridge_run_lock (name, holder, beat_at, released) VALUES ($1, $2, `+pgNowMillis+`, 0)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, beat_at = excluded.beat_at, released = 0`, name, holder)
		return err
	}
	if err := beatOnce(ctx); err != nil {
		return fail(err)
	}
	held, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(RunLockCheckInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-held.Done():
				return
			case <-t.C:
			}
			cctx, ccancel := context.WithTimeout(context.Background(), runLockCheckTimeout)
			err := beatOnce(cctx)
			ccancel()
			if err != nil {
				s.logger.Warn(name+" lock lost: stopping its holder's work", "error", err)
				cancel(lost)
				return
			}
		}
	}()
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(stop)
			<-done
			wasLost := context.Cause(held) == lost
			cancel(nil)
			if wasLost {
				discardConn(conn)
				return
			}
			ctx, cctx := context.WithTimeout(context.Background(), 10*time.Second)
			defer cctx()
			if _, err := conn.ExecContext(ctx, `UPDATE bridge_run_lock SET released = 1 WHERE name = $1 AND holder = $2`, name, holder); err != nil {
				s.logger.Warn("release "+name+" lock: cannot mark it released; the next holder waits for the takeover delay", "error", err)
			}
			var unlocked bool
			err := conn.QueryRowContext(ctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&unlocked)
			if err != nil || !unlocked {
				// Never hand a connection that may still hold the lock back to the pool:
				// closing the session frees it on the server.
				s.logger.Warn("release "+name+" lock: closing its connection instead", "error", err, "unlocked", unlocked)
				discardConn(conn)
				return
			}
			_ = conn.Close()
		})
	}
	return held, release, true, nil
}

// processReplica names this process: host and process id.
func processReplica() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown host"
	}
	return fmt.Sprintf("%s pid %d", host, os.Getpid())
}

// Replica names this process (host and process id) as LockHolders shows it.
func (s *Store) Replica() string { return s.replica }

// LockHolder is the last holder of a lock of the replicas, as its heartbeat row says.
type LockHolder struct {
	// Name is LockRun or LockStream.
	Name string `json:"name"`
	// Replica names the holder's process (Store.Replica of that process).
	Replica string `json:"replica"`
	// Held: the holder has not released the lock and its last heartbeat is recent (within
	// RunLockTakeoverDelay); otherwise Replica is the last holder.
	Held bool `json:"held"`
	// Beat is the holder's last heartbeat (by the database's clock).
	Beat time.Time `json:"last_heartbeat"`
}

// LockHolders says who holds (or last held) each lock of the replicas; none on SQLite, where
// one process is the only replica and the locks are not recorded.
func (s *Store) LockHolders(ctx context.Context) ([]LockHolder, error) {
	if s.d.name != BackendPostgres {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT name, holder, beat_at, released, `+pgNowMillis+` FROM bridge_run_lock ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read lock holders: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []LockHolder
	for rows.Next() {
		var h LockHolder
		var beat, released, now int64
		if err := rows.Scan(&h.Name, &h.Replica, &beat, &released, &now); err != nil {
			return nil, fmt.Errorf("read lock holders: %w", err)
		}
		if i := strings.LastIndex(h.Replica, " #"); i >= 0 {
			h.Replica = h.Replica[:i] // the part that tells one taking of the lock from another
		}
		h.Held = released == 0 && now-beat < RunLockTakeoverDelay.Milliseconds()
		h.Beat = time.UnixMilli(beat).UTC()
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read lock holders: %w", err)
	}
	return out, nil
}

// discardConn closes conn's underlying connection instead of returning it to the pool.
func discardConn(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}
