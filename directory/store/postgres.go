package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
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
	// Ping every pooled connection before it is used again, not only after a second idle
	// (pgx's default): after a server restart the pool holds connections the server ended,
	// and the first statement on one fails (57P01) although a new connection would work.
	// A ping costs one round trip per transaction or statement.
	db := stdlib.OpenDB(*cfg, stdlib.OptionShouldPing(func(context.Context, stdlib.ShouldPingParams) bool { return true }))
	db.SetMaxOpenConns(10)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: connect: %w", what, err)
	}
	return newStore(ctx, db, postgresDialect, logger, what)
}
