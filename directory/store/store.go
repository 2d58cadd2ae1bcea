// Package store is bridge's database (the `store:` section). It holds four things:
//
//   - what identity providers (Okta, Entra ID, ...) push to bridge's inbound SCIM 2.0
//     endpoint: users and groups as SCIM resources, plus group memberships. The Store is a
//     directory.Reader, so the rest of bridge treats the pushed data like any other directory
//     (this is why the package sits under directory/);
//   - the durable change queue of people to provision again (see "The change queue");
//   - the cross-replica locks: the run lock (RunLock) and the stream lock (StreamLock) of the
//     live change stream, and who holds them (LockHolders);
//   - the reconciler's state and run history (LoadState, SaveState, AppendRun, LoadRuns), where
//     every replica and one-shot command sees them.
//
// The name is kept although the package holds more than a directory: renaming it would touch
// every caller and change nothing else; this comment is where the whole of it is said.
//
// Two backends, one Store: an embedded SQLite database (modernc.org/sqlite, pure Go; a file
// path or ":memory:") for a single bridge, and PostgreSQL (a postgres:// or postgresql:// URL,
// through pgx) for several bridge replicas sharing what IdPs push. The queries are written
// once; a small dialect adapts placeholders, LIMIT, column collation, row locks and errors.
// The SQL is kept portable (TEXT/INTEGER columns, no backend-only functions in queries,
// explicit deletes instead of cascades, Go-side data migrations).
//
// The schema is versioned in the schema_version table and migrated forward on Open, in one
// transaction; on PostgreSQL under an advisory lock, so that replicas starting together
// migrate once. RunLock is the cross-replica lock of reconcile runs; LoadState and SaveState
// keep the reconciler's state (provisioning.StateBackend) where every replica sees it.
//
// # The change queue
//
// The store also holds the durable queue of people whose directory data changed and who
// must be provisioned again (table bridge_queue), shared by every replica. Anyone may put
// people into it with Enqueue(ctx, source, ids...): source names who says so
// (SourceSCIMPush for the inbound SCIM endpoint, "ldap_syncrepl", "ad_dirsync", ...), ids
// are directory user ids (the Snapshot's User.ID). With QueueWrites, every write of the
// inbound SCIM endpoint queues the people it affects in the write's own transaction, so a
// write answered to an IdP is never lost, whatever happens next. Queueing a person who is
// already waiting coalesces: one entry per person, its place (oldest enqueue time) kept.
//
// provisioning.QueueWorker drains the queue in scoped runs: DueEntries (oldest first, not
// before their backoff), then DoneEntries when applied or RetryEntries (with a backoff and
// the error) when not. Each entry carries a generation: a person queued again while a run
// applies their previous change stays queued. QueueStats gives the depth and the age of the
// oldest entry for metrics and status.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Kind says whether a resource is a SCIM User or Group.
type Kind string

// The resource kinds.
const (
	KindUser  Kind = "User"
	KindGroup Kind = "Group"
)

// Sentinel errors; check with errors.Is.
var (
	// ErrNotFound: no resource with that id.
	ErrNotFound = errors.New("resource not found")
	// ErrConflict: another user already has that userName (compared case-insensitively).
	ErrConflict = errors.New("userName already in use")
	// ErrInvalidMember: a group member names no existing user or group.
	ErrInvalidMember = errors.New("group member does not exist")
	// ErrInvalid: the resource cannot be stored as given (e.g. a user without userName).
	ErrInvalid = errors.New("invalid resource")
)

// busyTimeout bounds how long a statement waits for another writer.
const busyTimeout = 5 * time.Second

// Store is the store, on SQLite or PostgreSQL. It is safe for concurrent use, and on
// PostgreSQL by several processes at once.
type Store struct {
	db     *sql.DB
	d      *dialect
	logger *slog.Logger
	now    func() time.Time
	newID  func() string
	// replica names this process in the lock heartbeat rows (see Replica).
	replica string

	// queueSource and queueNotify: see QueueWrites.
	queueSource string
	queueNotify func()
}

// Open opens the store at path and migrates its schema to the current version:
//   - a postgres:// or postgresql:// URL: that PostgreSQL database (which must exist; the
//     tables are created), e.g. postgres://bridge:PASSWORD@db.internal:5432/bridge?sslmode=verify-full;
//     libpq's PG* environment variables fill what the URL leaves out (PGPASSWORD, ...);
//   - ":memory:": a private in-memory SQLite database;
//   - anything else: a SQLite database file, created (mode 0600) if needed.
//
// Errors and logs never show a password of the URL (see Redact).
func Open(ctx context.Context, path string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if strings.TrimSpace(path) == "" {
		return nil, errors.New("open store: path is empty (use a file path, \":memory:\" or a postgres:// URL)")
	}
	if IsPostgresURL(path) {
		return openPostgres(ctx, path, logger)
	}
	memory := path == ":memory:"
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_txlock", "immediate")
	var dsn string
	if memory {
		dsn = ":memory:?" + q.Encode()
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		dsn = "file:" + path + "?" + q.Encode()
	}
	if !memory {
		// What IdPs push is personal data: create the file readable by its owner only
		// (SQLite gives the -wal and -shm files the same permissions).
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open store %q: %w", path, err)
		}
		_ = f.Close()
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	if memory {
		// Every connection to ":memory:" is a database of its own: keep exactly one.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	} else {
		db.SetMaxOpenConns(4)
	}
	return newStore(ctx, db, sqliteDialect, logger, fmt.Sprintf("%q", path))
}

// newStore migrates the schema of db and returns the store; what names the database in errors.
func newStore(ctx context.Context, db *sql.DB, d *dialect, logger *slog.Logger, what string) (*Store, error) {
	s := &Store{db: db, d: d, logger: logger, now: time.Now, newID: newUUID, replica: processReplica()}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", what, err)
	}
	return s, nil
}

// Backend is BackendSQLite or BackendPostgres.
func (s *Store) Backend() string { return s.d.name }

// Close closes the database.
func (s *Store) Close() error {
	return s.db.Close()
}

// Ping reports whether the database answers (for readiness probes).
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	return nil
}

// SetClock replaces the clock used for created/lastModified (tests).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// migration moves the schema from version-1 to version.
type migration struct {
	version int
	name    string
	stmts   []string
	// fn runs after stmts, inside the same transaction (data backfills done in Go, portably).
	fn func(ctx context.Context, tx *txn) error
}

// migrations, in order. Never edit a released one: append a new one.
var migrations = []migration{
	{
		version: 1,
		name:    "users, groups and memberships",
		stmts: []string{
			`CREATE TABLE scim_users (
				id            TEXT PRIMARY KEY,
				user_name     TEXT NOT NULL,
				user_name_key TEXT NOT NULL,
				external_id   TEXT,
				active        INTEGER NOT NULL DEFAULT 1,
				data          TEXT NOT NULL,
				created       TEXT NOT NULL,
				last_modified TEXT NOT NULL
			)`,
			`CREATE UNIQUE INDEX scim_users_user_name_key ON scim_users (user_name_key)`,
			`CREATE TABLE scim_groups (
				id            TEXT PRIMARY KEY,
				display_name  TEXT NOT NULL,
				external_id   TEXT,
				data          TEXT NOT NULL,
				created       TEXT NOT NULL,
				last_modified TEXT NOT NULL
			)`,
			`CREATE TABLE scim_group_members (
				group_id    TEXT NOT NULL,
				member_id   TEXT NOT NULL,
				member_type TEXT NOT NULL,
				display     TEXT,
				PRIMARY KEY (group_id, member_id)
			)`,
		},
	},
	{
		version: 2,
		name:    "versions (ETags), display names and lookup indexes",
		stmts: []string{
			`ALTER TABLE scim_users ADD COLUMN display_name TEXT`,
			`ALTER TABLE scim_users ADD COLUMN version INTEGER NOT NULL DEFAULT 1`,
			`ALTER TABLE scim_groups ADD COLUMN display_name_key TEXT`,
			`ALTER TABLE scim_groups ADD COLUMN version INTEGER NOT NULL DEFAULT 1`,
			`CREATE INDEX scim_users_external_id ON scim_users (external_id)`,
			`CREATE INDEX scim_groups_external_id ON scim_groups (external_id)`,
			`CREATE INDEX scim_groups_display_name_key ON scim_groups (display_name_key)`,
			`CREATE INDEX scim_group_members_member ON scim_group_members (member_id)`,
		},
		fn: backfillV2,
	},
	{
		version: 3,
		name:    "bridge_state: the reconciler's state shared by all replicas",
		stmts: []string{
			`CREATE TABLE bridge_state (
				name       TEXT PRIMARY KEY,
				data       TEXT NOT NULL,
				updated_at TEXT NOT NULL
			)`,
		},
	},
	{
		version: 4,
		name:    "bridge_queue: the durable queue of people whose directory data changed",
		stmts: []string{
			// Times are Unix milliseconds: they compare as numbers on both backends.
			`CREATE TABLE bridge_queue (
				subject     TEXT PRIMARY KEY,
				source      TEXT NOT NULL,
				gen         BIGINT NOT NULL,
				attempts    INTEGER NOT NULL DEFAULT 0,
				enqueued_at BIGINT NOT NULL,
				not_before  BIGINT NOT NULL,
				last_error  TEXT
			)`,
			`CREATE INDEX bridge_queue_not_before ON bridge_queue (not_before)`,
			`CREATE INDEX bridge_queue_enqueued_at ON bridge_queue (enqueued_at)`,
		},
	},
	{
		version: 5,
		name:    "bridge_run_lock: the run lock holder's heartbeat",
		stmts: []string{
			// beat_at: the database's clock in Unix milliseconds; released: 1 when the holder let
			// go of the lock cleanly (the next holder need not wait).
			`CREATE TABLE bridge_run_lock (
				name     TEXT PRIMARY KEY,
				holder   TEXT NOT NULL,
				beat_at  BIGINT NOT NULL,
				released INTEGER NOT NULL DEFAULT 0
			)`,
		},
	},
	{
		version: 6,
		name:    "scim_user_emails: users' e-mail addresses, lower-cased and indexed",
		stmts: []string{
			// email_key: an e-mail value of the user as directory.User has it, trimmed and
			// lower-cased (see emailKeys); the primary key is the lookup index.
			`CREATE TABLE scim_user_emails (
				email_key TEXT NOT NULL,
				user_id   TEXT NOT NULL,
				PRIMARY KEY (email_key, user_id)
			)`,
			`CREATE INDEX scim_user_emails_user ON scim_user_emails (user_id)`,
		},
		fn: backfillV6,
	},
}

// SchemaVersion is the schema version this code writes.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// migrateLockKey is the PostgreSQL advisory lock (per database) held while migrating.
const migrateLockKey int64 = 0x6272_6964_6765_0001 // "bridge" 1

// migrate brings the schema to the current version in one transaction. Two processes opening
// the same database at once migrate one after the other; the second finds nothing to do:
// SQLite's BEGIN IMMEDIATE makes one wait for the other, on PostgreSQL an advisory
// transaction lock does.
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.begin(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if s.d.name == BackendPostgres {
		// Wait as long as ctx allows for another replica's migration, not lock_timeout.
		if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = 0`); err != nil {
			return fmt.Errorf("migrate schema: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, migrateLockKey); err != nil {
			return fmt.Errorf("migrate schema: wait for the migration lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.ddl(`CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER NOT NULL,
		applied_at TEXT NOT NULL
	)`)); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var v sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	current := int(v.Int64)
	latest := SchemaVersion()
	if current > latest {
		return fmt.Errorf("database schema version %d is newer than this bridge supports (%d): upgrade bridge", current, latest)
	}
	var applied []migration
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		if err := s.apply(ctx, tx, m); err != nil {
			return fmt.Errorf("migrate schema to version %d (%s): %w", m.version, m.name, err)
		}
		applied = append(applied, m)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate schema: commit: %w", err)
	}
	for _, m := range applied {
		s.logger.Info("store schema migrated", "version", m.version, "migration", m.name, "backend", s.d.name)
	}
	return nil
}

func (s *Store) schemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}

func (s *Store) apply(ctx context.Context, tx *txn, m migration) error {
	for _, stmt := range m.stmts {
		if _, err := tx.ExecContext(ctx, s.d.ddl(stmt)); err != nil {
			return err
		}
	}
	if m.fn != nil {
		if err := m.fn(ctx, tx); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`,
		m.version, formatTime(s.now()))
	return err
}

// backfillV2 fills the columns added in version 2 from the JSON documents.
// backfillV6 fills scim_user_emails from the stored users.
func backfillV6(ctx context.Context, tx *txn) error {
	rows, err := tx.QueryContext(ctx, `SELECT `+resourceColumns+` FROM scim_users`)
	if err != nil {
		return fmt.Errorf("backfill e-mails: %w", err)
	}
	var users []Resource
	for rows.Next() {
		r, err := scanResource(rows, KindUser)
		if err != nil {
			rows.Close()
			return fmt.Errorf("backfill e-mails: %w", err)
		}
		users = append(users, r)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("backfill e-mails: %w", err)
	}
	for _, u := range users {
		if err := writeEmails(ctx, tx, u.ID, u.Attributes, false); err != nil {
			return fmt.Errorf("backfill e-mails: %w", err)
		}
	}
	return nil
}

func backfillV2(ctx context.Context, tx *txn) error {
	type row struct{ id, data string }
	load := func(query string) ([]row, error) {
		rows, err := tx.QueryContext(ctx, query)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.data); err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, rows.Err()
	}
	users, err := load(`SELECT id, data FROM scim_users`)
	if err != nil {
		return fmt.Errorf("backfill users: %w", err)
	}
	for _, u := range users {
		attrs, err := decodeAttributes(u.data)
		if err != nil {
			return fmt.Errorf("backfill user %s: %w", u.id, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE scim_users SET display_name = ? WHERE id = ?`,
			nullString(stringAttr(attrs, "displayName")), u.id); err != nil {
			return fmt.Errorf("backfill user %s: %w", u.id, err)
		}
	}
	groups, err := load(`SELECT id, display_name FROM scim_groups`)
	if err != nil {
		return fmt.Errorf("backfill groups: %w", err)
	}
	for _, g := range groups {
		if _, err := tx.ExecContext(ctx, `UPDATE scim_groups SET display_name_key = ? WHERE id = ?`,
			foldKey(g.data), g.id); err != nil {
			return fmt.Errorf("backfill group %s: %w", g.id, err)
		}
	}
	return nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// foldKey is the case-insensitive lookup key of userName and group displayName.
func foldKey(s string) string { return strings.ToLower(s) }

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
