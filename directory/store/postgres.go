package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// pgLockTimeout bounds how long a PostgreSQL statement waits for a row lock (SQLite's
// busy_timeout); a URL or PGOPTIONS may set lock_timeout otherwise.
const pgLockTimeout = busyTimeout

// openPostgres opens the PostgreSQL database of a postgres:// URL.
func openPostgres(ctx context.Context, dsn string, logger *slog.Logger) (*Store, error) {
	what := Redact(dsn)
	cfg, err := pgx.ParseConfig(strings.TrimSpace(dsn))
	if err != nil {
		// pgx's parse errors show the URL with its password redacted.
		return nil, fmt.Errorf("open store %s: %w", what, err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "bridge"
	}
	if _, ok := cfg.RuntimeParams["lock_timeout"]; !ok {
		cfg.RuntimeParams["lock_timeout"] = fmt.Sprint(pgLockTimeout.Milliseconds())
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(10)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: connect: %w", what, err)
	}
	return newStore(ctx, db, postgresDialect, logger, what)
}

// runLockKey is the PostgreSQL advisory lock (per database) a replica holds while it
// reconciles.
const runLockKey int64 = 0x6272_6964_6765_0002 // "bridge" 2

// RunLock takes the lock that keeps two bridge replicas sharing this store from reconciling
// at the same time, without waiting: ok is false when another replica holds it. On success
// the caller must call release (idempotent) when its run ends.
//
// On PostgreSQL it is a session-level advisory lock (pg_try_advisory_lock) on a connection
// of its own, held until release; if that connection breaks, or the replica dies, the server
// frees the lock. On SQLite, a single process's file, it always succeeds at once (the
// reconciler's in-process lock is enough).
func (s *Store) RunLock(ctx context.Context) (release func(), ok bool, err error) {
	if s.d.name != BackendPostgres {
		return func() {}, true, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("run lock: %w", err)
	}
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, runLockKey).Scan(&got); err != nil {
		discardConn(conn)
		return nil, false, fmt.Errorf("run lock: %w", err)
	}
	if !got {
		_ = conn.Close()
		return nil, false, nil
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var unlocked bool
			err := conn.QueryRowContext(ctx, `SELECT pg_advisory_unlock($1)`, runLockKey).Scan(&unlocked)
			if err != nil || !unlocked {
				// Never hand a connection that may still hold the lock back to the pool:
				// closing the session frees it on the server.
				s.logger.Warn("release run lock: closing its connection instead", "error", err, "unlocked", unlocked)
				discardConn(conn)
				return
			}
			_ = conn.Close()
		})
	}
	return release, true, nil
}

// discardConn closes conn's underlying connection instead of returning it to the pool.
func discardConn(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}
