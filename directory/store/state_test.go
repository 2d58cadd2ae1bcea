package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/babelforce/bridge/internal/testenv"
)

func TestStateLoadSave(t *testing.T) { eachBackend(t, testStateLoadSave) }

func testStateLoadSave(t *testing.T, open func(*testing.T) *Store) {
	ctx := context.Background()
	s := open(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	got, err := s.LoadState(ctx)
	if err != nil || got != nil {
		t.Fatalf("LoadState of a new store = %q, %v; want nil, nil", got, err)
	}
	first := `{"disabled":{"a1":"2026-03-01T00:00:00Z"},"tags":["Sales"],"groups":[]}`
	if err := s.SaveState(ctx, []byte(first)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadState(ctx); err != nil || string(got) != first {
		t.Fatalf("LoadState = %q, %v; want %q", got, err, first)
	}
	now = now.Add(time.Hour)
	second := `{"disabled":{},"tags":["Sales","Support ü"],"groups":["Ops"]}`
	if err := s.SaveState(ctx, []byte(second)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadState(ctx); err != nil || string(got) != second {
		t.Fatalf("LoadState after the upsert = %q, %v; want %q", got, err, second)
	}
	var rows int
	var updated string
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), MAX(updated_at) FROM bridge_state`).Scan(&rows, &updated); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || updated != formatTime(now) {
		t.Fatalf("bridge_state has %d rows, updated_at %q; want 1 row updated at %q", rows, updated, formatTime(now))
	}
}

// TestPostgresStateSharedByReplicas: what one replica saves, another reads.
func TestPostgresStateSharedByReplicas(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	a, b := openURL(t, pg.URL), openURL(t, pg.URL)
	if err := a.SaveState(ctx, []byte(`{"tags":["A"]}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := b.LoadState(ctx); err != nil || string(got) != `{"tags":["A"]}` {
		t.Fatalf("replica B reads %q, %v", got, err)
	}
	if err := b.SaveState(ctx, []byte(`{"tags":["A","B"]}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := a.LoadState(ctx); err != nil || string(got) != `{"tags":["A","B"]}` {
		t.Fatalf("replica A reads %q, %v", got, err)
	}
}

// TestMigrateFromV2 builds a version-2 database by hand, with data, on both backends and
// checks that Open adds bridge_state (empty) without losing anything.
func TestMigrateFromV2(t *testing.T) {
	for _, b := range []struct {
		name string
		d    *dialect
		open func(t *testing.T) (driver, dsn, path string)
	}{
		{BackendSQLite, sqliteDialect, func(t *testing.T) (string, string, string) {
			path := filepath.Join(t.TempDir(), "bridge.db")
			return "sqlite", "file:" + path, path
		}},
		{BackendPostgres, postgresDialect, func(t *testing.T) (string, string, string) {
			url := testenv.StartPostgres(t).URL
			return "pgx", url, url
		}},
	} {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			driver, dsn, path := b.open(t)
			db, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			stmts := []string{
				`CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)`,
				`INSERT INTO schema_version VALUES (1, '2025-01-01T00:00:00Z')`,
				`INSERT INTO schema_version VALUES (2, '2025-06-01T00:00:00Z')`,
			}
			stmts = append(stmts, migrations[0].stmts...)
			stmts = append(stmts, migrations[1].stmts...)
			stmts = append(stmts,
				`INSERT INTO scim_users (id, user_name, user_name_key, external_id, active, data, created, last_modified, display_name, version)
				 VALUES ('u1', 'Old@Example.com', 'old@example.com', 'x1', 1,
				 '{"userName":"Old@Example.com","displayName":"Old Timer","active":true}',
				 '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z', 'Old Timer', 4)`,
			)
			for _, q := range stmts {
				if _, err := db.ExecContext(ctx, b.d.ddl(q)); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			s, err := Open(ctx, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if v, err := s.schemaVersion(ctx); err != nil || v != SchemaVersion() || v < 3 {
				t.Fatalf("schema version = %d, %v", v, err)
			}
			u, err := s.Get(ctx, KindUser, "u1")
			if err != nil || u.Version != 4 || u.ExternalID != "x1" {
				t.Fatalf("migrated user = %+v, %v", u, err)
			}
			if got, err := s.LoadState(ctx); err != nil || got != nil {
				t.Fatalf("LoadState after the migration = %q, %v; want nil, nil", got, err)
			}
			if err := s.SaveState(ctx, []byte(`{"tags":["x"]}`)); err != nil {
				t.Fatal(err)
			}
			if got, err := s.LoadState(ctx); err != nil || string(got) != `{"tags":["x"]}` {
				t.Fatalf("LoadState = %q, %v", got, err)
			}
			var n int
			if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_version`).Scan(&n); err != nil || n != SchemaVersion() {
				t.Fatalf("schema_version rows = %d, %v", n, err)
			}
		})
	}
}

func TestStreamCookies(t *testing.T) { eachBackend(t, testStreamCookies) }

func testStreamCookies(t *testing.T, open func(*testing.T) *Store) {
	ctx := context.Background()
	s := open(t)
	if got, err := s.LoadStreamCookie(ctx, "ldap:abc"); err != nil || got != nil {
		t.Fatalf("LoadStreamCookie of a new store = %q, %v; want nil, nil", got, err)
	}
	binary := []byte{0, 1, 0xff, 'r', 'i', 'd', '='}
	if err := s.SaveStreamCookie(ctx, "ldap:abc", binary); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveStreamCookie(ctx, "ldap:other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveState(ctx, []byte(`{"tags":[]}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadStreamCookie(ctx, "ldap:abc"); err != nil || string(got) != string(binary) {
		t.Fatalf("LoadStreamCookie = %q, %v; want %q", got, err, binary)
	}
	if err := s.SaveStreamCookie(ctx, "ldap:abc", []byte("newer")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadStreamCookie(ctx, "ldap:abc"); string(got) != "newer" {
		t.Fatalf("after the upsert: %q", got)
	}
	if got, _ := s.LoadState(ctx); string(got) != `{"tags":[]}` {
		t.Fatalf("the reconciler's state changed: %q", got)
	}
}

// TestRunHistory: AppendRun keeps the newest reports first, at most keep of them, and refuses
// what is not JSON; the runs are beside the reconciler's state, not in it.
func TestRunHistory(t *testing.T) { eachBackend(t, testRunHistory) }

func testRunHistory(t *testing.T, open func(*testing.T) *Store) {
	ctx := context.Background()
	s := open(t)
	if runs, err := s.LoadRuns(ctx); err != nil || runs != nil {
		t.Fatalf("LoadRuns of a new store = %q, %v", runs, err)
	}
	for _, r := range []string{`{"id":1}`, `{"id":2}`, `{"id":3}`} {
		if err := s.AppendRun(ctx, []byte(r), 2); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := s.LoadRuns(ctx)
	if err != nil || len(runs) != 2 || string(runs[0]) != `{"id":3}` || string(runs[1]) != `{"id":2}` {
		t.Fatalf("LoadRuns = %q, %v; want the last two, newest first", runs, err)
	}
	if err := s.AppendRun(ctx, []byte("not json"), 2); err == nil {
		t.Error("AppendRun took a report that is not JSON")
	}
	if st, err := s.LoadState(ctx); err != nil || st != nil {
		t.Errorf("the run history changed the reconciler's state: %q, %v", st, err)
	}
}
