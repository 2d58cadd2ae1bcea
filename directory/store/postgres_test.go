package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelforce/bridge/internal/testenv"
)

// TestPostgresReplicasCreateSameUserName: two Store handles on one database (two bridge
// replicas) create the same userName (in other cases) at the same moment, again and again:
// every time exactly one succeeds and the other gets ErrConflict.
func TestPostgresReplicasCreateSameUserName(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	a, b := openURL(t, pg.URL), openURL(t, pg.URL)
	for i := range 25 {
		start := make(chan struct{})
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for j, s := range []*Store{a, b} {
			wg.Go(func() {
				<-start
				name := fmt.Sprintf("race%02d@example.com", i)
				if j == 1 {
					name = strings.ToUpper(name)
				}
				_, errs[j] = s.Create(ctx, user(name, nil))
			})
		}
		close(start)
		wg.Wait()
		ok, conflicts := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrConflict):
				conflicts++
			default:
				t.Fatalf("round %d: unexpected error %v", i, err)
			}
		}
		if ok != 1 || conflicts != 1 {
			t.Fatalf("round %d: %d created, %d conflicts (%v); want 1 and 1", i, ok, conflicts, errs)
		}
	}
	p, err := b.List(ctx, KindUser, Query{Count: -1})
	if err != nil || p.Total != 25 {
		t.Fatalf("users = %d, %v; want 25", p.Total, err)
	}
}

// TestPostgresReplicasNoLostUpdate: read-modify-write Updates from two handles at once lock
// the row, so that none is lost.
func TestPostgresReplicasNoLostUpdate(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	a, b := openURL(t, pg.URL), openURL(t, pg.URL)
	u := mustCreate(t, a, user("counter@example.com", map[string]any{"count": 0}))
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			_, _, err := s.Update(ctx, KindUser, u.ID, func(r *Resource) error {
				c, err := r.Attributes["count"].(json.Number).Int64()
				if err != nil {
					return err
				}
				r.Attributes["count"] = c + 1
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.Get(ctx, KindUser, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attributes["count"] != json.Number(fmt.Sprint(n)) || got.Version != n+1 {
		t.Fatalf("count = %v, version %d; want %d and %d", got.Attributes["count"], got.Version, n, n+1)
	}
}

// TestPostgresRunLock: the run lock is held by one replica at a time and free again after
// release.
func TestPostgresRunLock(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	a, b := openURL(t, pg.URL), openURL(t, pg.URL)
	_, release, ok, err := a.RunLock(ctx)
	if err != nil || !ok {
		t.Fatalf("first RunLock = %v, %v; want ok", ok, err)
	}
	if _, _, ok, err := b.RunLock(ctx); err != nil || ok {
		t.Fatalf("RunLock of the other replica while held = %v, %v; want not ok", ok, err)
	}
	// Another run in the same process (another connection) does not get it either.
	if _, _, ok, err := a.RunLock(ctx); err != nil || ok {
		t.Fatalf("second RunLock of the holder = %v, %v; want not ok", ok, err)
	}
	release()
	release() // idempotent
	_, releaseB, ok, err := b.RunLock(ctx)
	if err != nil || !ok {
		t.Fatalf("RunLock after release = %v, %v; want ok", ok, err)
	}
	if _, _, ok, _ := a.RunLock(ctx); ok {
		t.Fatal("a got the lock b holds")
	}
	// A replica that dies (its connections close) frees the lock.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	releaseB() // after Close: must not panic
	if _, release, ok, err := a.RunLock(ctx); err != nil || !ok {
		t.Fatalf("RunLock after the holder closed = %v, %v; want ok", ok, err)
	} else {
		release()
	}
	// Nothing left holding connections busy: the pool is usable as before.
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPostgresStreamLock: one replica follows the change stream; the stream lock is
// independent of the run lock; the lock rows name the holder; when the holder's session is
// terminated its context ends with ErrStreamLockLost and the other replica takes over.
func TestPostgresStreamLock(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	a, b := openURL(t, pg.URL), openURL(t, pg.URL)
	a.replica, b.replica = "host-a pid 1", "host-b pid 2"
	heldA, releaseA, ok, err := a.StreamLock(ctx)
	if err != nil || !ok {
		t.Fatalf("first StreamLock = %v, %v; want ok", ok, err)
	}
	defer releaseA()
	if _, _, ok, err := b.StreamLock(ctx); err != nil || ok {
		t.Fatalf("StreamLock of the other replica while held = %v, %v; want not ok", ok, err)
	}
	// the follower's scoped runs still take the run lock, whoever follows
	if _, release, ok, err := b.RunLock(ctx); err != nil || !ok {
		t.Fatalf("RunLock beside another replica's stream lock = %v, %v; want ok", ok, err)
	} else {
		release()
	}
	wantHolders(t, b, map[string]string{LockStream: "held by host-a pid 1", LockRun: "released by host-b pid 2"})

	var pid int
	if err := b.db.QueryRowContext(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND objid = $1::bigint & 4294967295`, streamLockKey).Scan(&pid); err != nil {
		t.Fatalf("find the stream lock session: %v", err)
	}
	if _, err := b.db.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	var releaseB func()
	waitUntil(t, func() bool {
		_, r, ok, err := b.StreamLock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		releaseB = r
		return ok
	})
	defer releaseB()
	if heldA.Err() == nil {
		t.Fatal("b follows while a's stream context is still live")
	}
	if cause := context.Cause(heldA); !errors.Is(cause, ErrStreamLockLost) {
		t.Errorf("a's context ended with %v, want ErrStreamLockLost", cause)
	}
	wantHolders(t, a, map[string]string{LockStream: "held by host-b pid 2", LockRun: "released by host-b pid 2"})
}

// wantHolders compares LockHolders with "held by X" / "released by X" per lock.
func wantHolders(t *testing.T, s *Store, want map[string]string) {
	t.Helper()
	hs, err := s.LockHolders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range hs {
		state := "released by "
		if h.Held {
			state = "held by "
		}
		got[h.Name] = state + h.Replica
		if h.Beat.IsZero() || time.Since(h.Beat) > time.Minute {
			t.Errorf("%s: last heartbeat %s", h.Name, h.Beat)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("lock holders = %v, want %v", got, want)
	}
}

func TestSQLiteRunLockAlwaysOK(t *testing.T) {
	s := openMem(t)
	for range 2 {
		_, release, ok, err := s.RunLock(context.Background())
		if err != nil || !ok {
			t.Fatalf("RunLock = %v, %v", ok, err)
		}
		release()
	}
	if s.Backend() != BackendSQLite {
		t.Fatalf("backend = %q", s.Backend())
	}
}

// TestPostgresConcurrentOpensMigrateOnce: replicas starting together on an empty database
// all open it, and the schema is migrated once.
func TestPostgresConcurrentOpensMigrateOnce(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(ctx, pg.URL, nil)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	var rows, distinct int
	if err := stores[0].db.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_version`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != SchemaVersion() || distinct != SchemaVersion() {
		t.Fatalf("schema_version has %d rows (%d versions); want %d", rows, distinct, SchemaVersion())
	}
	if stores[0].Backend() != BackendPostgres {
		t.Fatalf("backend = %q", stores[0].Backend())
	}
	// All handles work on the one schema.
	u := mustCreate(t, stores[1], user("one@example.com", nil))
	if _, err := stores[3].Get(ctx, KindUser, u.ID); err != nil {
		t.Fatal(err)
	}
}

// TestPostgresMigrateFromV1 builds a version-1 database by hand, with data, and checks that
// Open migrates it without losing anything; a newer schema is refused.
func TestPostgresMigrateFromV1(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	db, err := sql.Open("pgx", pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range v1Database() {
		if _, err := db.ExecContext(ctx, postgresDialect.ddl(q)); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := openURL(t, pg.URL)
	if v, err := s.schemaVersion(ctx); err != nil || v != SchemaVersion() {
		t.Fatalf("schema version = %d, %v", v, err)
	}
	u, err := s.Get(ctx, KindUser, "u1")
	if err != nil || u.Version != 1 || u.ExternalID != "x1" {
		t.Fatalf("migrated user = %+v, %v", u, err)
	}
	p, err := s.List(ctx, KindGroup, Query{Eq: []Cond{{Attr: "displayName", Value: "legacy GROUP"}}, Count: -1})
	if err != nil || p.Total != 1 || len(p.Resources[0].Members()) != 1 {
		t.Fatalf("migrated group lookup = %+v, %v", p, err)
	}
	if _, err := s.Create(ctx, user("old@example.COM", nil)); !errors.Is(err, ErrConflict) {
		t.Fatalf("uniqueness after migration = %v", err)
	}
	wantMigratedEmails(t, s)
	if _, err := db.ExecContext(ctx, `INSERT INTO schema_version VALUES (99, 'x')`); err != nil {
		t.Fatal(err)
	}
	if s2, err := Open(ctx, pg.URL, nil); err == nil {
		s2.Close()
		t.Fatal("opening a database from a newer bridge must fail")
	}
}

// TestPostgresErrorsHidePassword: a wrong password or an unreachable server is a clear error
// that does not show the password.
func TestPostgresErrorsHidePassword(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	u, err := url.Parse(pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	const wrong = "Wr0ng-Secret-Pa55"
	u.User = url.UserPassword(u.User.Username(), wrong)
	_, err = Open(ctx, u.String(), nil)
	if err == nil {
		t.Fatal("wrong password: no error")
	}
	if strings.Contains(err.Error(), wrong) {
		t.Fatalf("error shows the password: %v", err)
	}
	if !strings.Contains(err.Error(), "xxxxx") || !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("error should name the (redacted) URL and the cause: %v", err)
	}
	bad := fmt.Sprintf("postgresql://bridge:%s@127.0.0.1:%d/nope?connect_timeout=2", wrong, testenv.FreePort(t))
	if _, err := Open(ctx, bad, nil); err == nil || strings.Contains(err.Error(), wrong) {
		t.Fatalf("unreachable server: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"bridge.db":                            "bridge.db",
		":memory:":                             ":memory:",
		"postgres://u:secret@h:5432/db":        "postgres://u:xxxxx@h:5432/db",
		"postgresql://u@h/db?sslmode=require":  "postgresql://u@h/db?sslmode=require",
		"postgres://u@h/db?password=secret":    "postgres://u@h/db?password=xxxxx",
		"POSTGRES://u:p%40ss@h/db":             "postgres://u:xxxxx@h/db",
		"postgres://u:secret@h:port/db":        "postgres://(unparsable URL, not shown)",
		"  postgres://u:secret@h/db  ":         "postgres://u:xxxxx@h/db",
		"/var/lib/bridge/postgres://not-a-url": "/var/lib/bridge/postgres://not-a-url",
	} {
		got := Redact(in)
		if got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, "secret") {
			t.Errorf("Redact(%q) shows the password: %q", in, got)
		}
	}
	if !IsPostgresURL("postgresql://x") || IsPostgresURL("file.db") {
		t.Error("IsPostgresURL")
	}
}

// TestPostgresUniqueViolationIsConflict: when another transaction inserts the same userName
// after Create's check (the check cannot see uncommitted rows), the unique index decides and
// the loser gets ErrConflict, not a database error.
func TestPostgresUniqueViolationIsConflict(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	s := openURL(t, pg.URL)
	for _, commit := range []bool{true, false} {
		name := fmt.Sprintf("late%v@example.com", commit)
		other, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.ExecContext(ctx, `INSERT INTO scim_users (id, user_name, user_name_key, active, data, created, last_modified)
			VALUES ($1, $2, $3, 1, '{}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`, "other-"+name, name, name); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := s.Create(ctx, user(strings.ToUpper(name), nil))
			done <- err
		}()
		// Wait until Create's INSERT waits for the other transaction's index entry.
		waitUntil(t, func() bool {
			var n int
			_ = s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
			return n > 0
		})
		if commit {
			if err := other.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; !errors.Is(err, ErrConflict) {
				t.Fatalf("create after the other transaction committed: %v; want ErrConflict", err)
			}
		} else {
			if err := other.Rollback(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("create after the other transaction rolled back: %v", err)
			}
		}
	}
}

// waitUntil polls cond (the database's view of other sessions) for up to 10 s.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPostgresRunLockLost: when the holder's lock session is terminated
// (pg_terminate_backend), the holder's context ends with ErrRunLockLost, and the replica that
// takes the lock over gets it only after that: never two writers.
func TestPostgresRunLockLost(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	a, b := openURL(t, pg.URL), openURL(t, pg.URL)
	held, release, ok, err := a.RunLock(ctx)
	if err != nil || !ok {
		t.Fatalf("RunLock = %v, %v", ok, err)
	}
	defer release()
	lostAt := make(chan time.Time, 1)
	go func() {
		<-held.Done()
		lostAt <- time.Now()
	}()
	var pid int
	if err := b.db.QueryRowContext(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND objid = $1::bigint & 4294967295`, runLockKey).Scan(&pid); err != nil {
		t.Fatalf("find the lock session: %v", err)
	}
	if _, err := b.db.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	// b takes the lock as soon as the session is gone, but may use it only after a stopped
	heldB, releaseB, ok, err := func() (context.Context, func(), bool, error) {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			h, r, ok, err := b.RunLock(ctx)
			if err != nil || ok {
				return h, r, ok, err
			}
		}
		return nil, nil, false, nil
	}()
	gotB := time.Now()
	if err != nil || !ok {
		t.Fatalf("RunLock of b after a's session was terminated = %v, %v", ok, err)
	}
	defer releaseB()
	select {
	case at := <-lostAt:
		if !at.Before(gotB) {
			t.Errorf("b could write at %s, before a stopped at %s", gotB.Format(time.RFC3339Nano), at.Format(time.RFC3339Nano))
		}
	default:
		t.Fatal("b got the lock while a's run context is still live: two writers")
	}
	if cause := context.Cause(held); !errors.Is(cause, ErrRunLockLost) {
		t.Errorf("a's context ended with %v, want ErrRunLockLost", cause)
	}
	if heldB.Err() != nil {
		t.Errorf("b's context ended at once: %v", context.Cause(heldB))
	}
	// a clean release lets the next holder start at once (nothing to wait for)
	releaseB()
	if _, r, ok, err := a.RunLock(ctx); err != nil || !ok {
		t.Fatalf("RunLock after a clean release = %v, %v", ok, err)
	} else {
		r()
	}
}

// TestPostgresSessionsEnded: when the server ends the pool's sessions (a restart, a
// failover, pg_terminate_backend), the store's next operations (a read, a write, the run
// lock) succeed at the first attempt, on new connections, even right after the old ones
// were last used.
func TestPostgresSessionsEnded(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	s := openURL(t, pg.URL)
	admin, err := sql.Open("pgx", pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	u := mustCreate(t, s, user("before@x", nil))
	for round := range 3 {
		// several connections in the pool, used just now
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if _, err := s.Get(ctx, KindUser, u.ID); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		var ended int
		if err := admin.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&ended); err != nil || ended == 0 {
			t.Fatalf("end the store's sessions: %d, %v", ended, err)
		}
		if _, err := s.Get(ctx, KindUser, u.ID); err != nil {
			t.Fatalf("round %d: read after the sessions ended: %v", round, err)
		}
		mustCreate(t, s, user(fmt.Sprintf("after%d@x", round), nil))
		_, release, ok, err := s.RunLock(ctx)
		if err != nil || !ok {
			t.Fatalf("round %d: run lock after the sessions ended: %v, %v", round, ok, err)
		}
		release()
	}
}
