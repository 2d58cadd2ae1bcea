package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func openMem(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), ":memory:", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func user(userName string, extra map[string]any) Resource {
	attrs := map[string]any{"userName": userName, "active": true}
	for k, v := range extra {
		attrs[k] = v
	}
	return Resource{Kind: KindUser, Attributes: attrs}
}

func group(name string, members ...string) Resource {
	var ms []any
	for _, m := range members {
		ms = append(ms, map[string]any{"value": m})
	}
	return Resource{Kind: KindGroup, Attributes: map[string]any{"displayName": name, "members": ms}}
}

func mustCreate(t *testing.T, s *Store, r Resource) Resource {
	t.Helper()
	out, err := s.Create(context.Background(), r)
	if err != nil {
		t.Fatalf("create %v: %v", r.Attributes, err)
	}
	return out
}

func TestCRUD(t *testing.T) { eachBackend(t, testCRUD) }

func testCRUD(t *testing.T, openStore func(*testing.T) *Store) {
	ctx := context.Background()
	s := openStore(t)
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.SetClock(func() time.Time { return clock })

	u := mustCreate(t, s, Resource{Kind: KindUser, ExternalID: "ext-1", Attributes: map[string]any{
		"userName": "Ann@Example.com", "password": "secret", "displayName": "Ann",
	}})
	if u.ID == "" || u.Version != 1 || u.ETag() != `W/"1"` || !u.Created.Equal(clock) {
		t.Fatalf("created = %+v", u)
	}
	if _, ok := u.Attributes["password"]; ok {
		t.Fatal("password was stored")
	}
	got, err := s.Get(ctx, KindUser, u.ID)
	if err != nil || got.ExternalID != "ext-1" || got.Attributes["userName"] != "Ann@Example.com" {
		t.Fatalf("get = %+v, %v", got, err)
	}

	clock = clock.Add(time.Minute)
	before, after, err := s.Update(ctx, KindUser, u.ID, func(r *Resource) error {
		r.Attributes["active"] = false
		r.Attributes["title"] = "Agent"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if before.Version != 1 || after.Version != 2 || after.Attributes["active"] != false ||
		after.Attributes["title"] != "Agent" || !after.LastModified.Equal(clock) || !after.Created.Equal(u.Created) {
		t.Fatalf("update before=%+v after=%+v", before, after)
	}

	fnErr := errors.New("refused")
	if _, _, err := s.Update(ctx, KindUser, u.ID, func(r *Resource) error {
		r.Attributes["title"] = "changed"
		return fnErr
	}); !errors.Is(err, fnErr) {
		t.Fatalf("update with failing fn = %v", err)
	}
	if got, _ := s.Get(ctx, KindUser, u.ID); got.Attributes["title"] != "Agent" || got.Version != 2 {
		t.Fatalf("failed update wrote: %+v", got)
	}

	if _, _, err := s.Update(ctx, KindUser, "nope", func(*Resource) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update missing = %v", err)
	}
	g := mustCreate(t, s, group("Sales", u.ID))
	if _, err := s.Delete(ctx, KindUser, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, KindUser, u.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted = %v", err)
	}
	if g2, _ := s.Get(ctx, KindGroup, g.ID); len(g2.Members()) != 0 {
		t.Fatalf("membership of deleted user kept: %+v", g2.Members())
	}
	if _, err := s.Delete(ctx, KindUser, u.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice = %v", err)
	}
}

func TestUserNameUniqueCaseInsensitive(t *testing.T) {
	eachBackend(t, testUserNameUniqueCaseInsensitive)
}

func testUserNameUniqueCaseInsensitive(t *testing.T, openStore func(*testing.T) *Store) {
	ctx := context.Background()
	s := openStore(t)
	a := mustCreate(t, s, user("ann@example.com", nil))
	if _, err := s.Create(ctx, user("ANN@example.COM", nil)); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate create = %v", err)
	}
	b := mustCreate(t, s, user("bob@example.com", nil))
	if _, _, err := s.Update(ctx, KindUser, b.ID, func(r *Resource) error {
		r.Attributes["userName"] = "Ann@Example.com"
		return nil
	}); !errors.Is(err, ErrConflict) {
		t.Fatalf("rename onto taken userName = %v", err)
	}
	// renaming a user's own userName's case is fine
	if _, _, err := s.Update(ctx, KindUser, a.ID, func(r *Resource) error {
		r.Attributes["userName"] = "Ann@Example.com"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, user("  ", nil)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty userName = %v", err)
	}
}

func TestListFiltersAndPaging(t *testing.T) { eachBackend(t, testListFiltersAndPaging) }

func testListFiltersAndPaging(t *testing.T, openStore func(*testing.T) *Store) {
	ctx := context.Background()
	s := openStore(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 25 {
		s.SetClock(func() time.Time { return base.Add(time.Duration(i) * time.Second) })
		u := mustCreate(t, s, Resource{Kind: KindUser, ExternalID: fmt.Sprintf("ext-%02d", i),
			Attributes: map[string]any{"userName": fmt.Sprintf("User%02d@example.com", i), "active": i%2 == 0}})
		ids = append(ids, u.ID)
	}
	p, err := s.List(ctx, KindUser, Query{StartIndex: 11, Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 25 || len(p.Resources) != 10 || p.Resources[0].ID != ids[10] || p.Resources[9].ID != ids[19] {
		t.Fatalf("page 2: total %d, %d resources", p.Total, len(p.Resources))
	}
	p, _ = s.List(ctx, KindUser, Query{StartIndex: 21, Count: 10})
	if p.Total != 25 || len(p.Resources) != 5 {
		t.Fatalf("last page: total %d, %d resources", p.Total, len(p.Resources))
	}
	p, _ = s.List(ctx, KindUser, Query{StartIndex: 100, Count: 10})
	if p.Total != 25 || p.Resources == nil || len(p.Resources) != 0 {
		t.Fatalf("past the end: %+v", p)
	}
	p, _ = s.List(ctx, KindUser, Query{Count: 0})
	if p.Total != 25 || len(p.Resources) != 0 {
		t.Fatalf("count=0: %+v", p)
	}
	p, _ = s.List(ctx, KindUser, Query{Eq: []Cond{{Attr: "userName", Value: "user07@EXAMPLE.com"}}, Count: -1})
	if p.Total != 1 || p.Resources[0].ID != ids[7] {
		t.Fatalf("userName eq: %+v", p)
	}
	p, _ = s.List(ctx, KindUser, Query{Eq: []Cond{{Attr: "externalId", Value: "ext-03"}}, Count: -1})
	if p.Total != 1 || p.Resources[0].ID != ids[3] {
		t.Fatalf("externalId eq: %+v", p)
	}
	p, _ = s.List(ctx, KindUser, Query{Eq: []Cond{{Attr: "externalId", Value: "EXT-03"}}, Count: -1})
	if p.Total != 0 {
		t.Fatalf("externalId is case-exact: %+v", p)
	}
	p, _ = s.List(ctx, KindUser, Query{Eq: []Cond{{Attr: "id", Value: ids[4]}}, Count: -1})
	if p.Total != 1 {
		t.Fatalf("id eq: %+v", p)
	}
	// in-memory predicate with paging
	active := func(r Resource) bool { return r.Attributes["active"] == true }
	p, _ = s.List(ctx, KindUser, Query{Match: active, StartIndex: 2, Count: 5})
	if p.Total != 13 || len(p.Resources) != 5 || p.Resources[0].ID != ids[2] {
		t.Fatalf("match page: total %d, %d resources", p.Total, len(p.Resources))
	}
	if _, err := s.List(ctx, KindUser, Query{Eq: []Cond{{Attr: "title", Value: "x"}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unsupported cond = %v", err)
	}
	g := mustCreate(t, s, group("Sales Team", ids[0]))
	p, _ = s.List(ctx, KindGroup, Query{Eq: []Cond{{Attr: "displayName", Value: "sales team"}}, Count: -1})
	if p.Total != 1 || p.Resources[0].ID != g.ID || len(p.Resources[0].Members()) != 1 {
		t.Fatalf("group displayName eq: %+v", p)
	}
}

func TestGroupMembers(t *testing.T) { eachBackend(t, testGroupMembers) }

func testGroupMembers(t *testing.T, openStore func(*testing.T) *Store) {
	ctx := context.Background()
	s := openStore(t)
	a := mustCreate(t, s, user("a@x", nil))
	b := mustCreate(t, s, user("b@x", nil))
	inner := mustCreate(t, s, group("Inner", b.ID))
	outer := mustCreate(t, s, group("Outer", a.ID, inner.ID, a.ID))
	ms := outer.Members()
	if len(ms) != 2 {
		t.Fatalf("members (duplicates dropped) = %+v", ms)
	}
	kinds := map[string]Kind{}
	for _, m := range ms {
		kinds[m.ID] = m.Kind
	}
	if kinds[a.ID] != KindUser || kinds[inner.ID] != KindGroup {
		t.Fatalf("member kinds = %v", kinds)
	}
	if _, err := s.Create(ctx, group("Bad", "no-such-id")); !errors.Is(err, ErrInvalidMember) {
		t.Fatalf("unknown member = %v", err)
	}
	if _, _, err := s.Update(ctx, KindGroup, outer.ID, func(r *Resource) error {
		r.Attributes["members"] = append(r.Attributes["members"].([]any), map[string]any{"value": outer.ID})
		return nil
	}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("self member = %v", err)
	}
	// an update that keeps the members and adds an unknown one is refused as a whole
	if _, _, err := s.Update(ctx, KindGroup, outer.ID, func(r *Resource) error {
		r.Attributes["members"] = append(r.Attributes["members"].([]any), map[string]any{"value": "no-such-id"})
		return nil
	}); !errors.Is(err, ErrInvalidMember) {
		t.Fatalf("unknown member added by an update = %v", err)
	}
	// new members get their kind from the store, whatever type the client said
	c := mustCreate(t, s, user("c@x", nil))
	lone := mustCreate(t, s, group("Lone"))
	_, after, err := s.Update(ctx, KindGroup, outer.ID, func(r *Resource) error {
		r.Attributes["members"] = append(r.Attributes["members"].([]any),
			map[string]any{"value": c.ID, "type": "Group"}, map[string]any{"value": lone.ID, "type": "User"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range after.Members() {
		kinds[m.ID] = m.Kind
	}
	if len(after.Members()) != 4 || kinds[c.ID] != KindUser || kinds[lone.ID] != KindGroup || kinds[a.ID] != KindUser || kinds[inner.ID] != KindGroup {
		t.Fatalf("members after adding a user and a group: %+v", after.Members())
	}
	if _, _, err := s.Update(ctx, KindGroup, outer.ID, func(r *Resource) error {
		r.Attributes["members"] = []any{map[string]any{"value": a.ID}, map[string]any{"value": inner.ID}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	users, err := s.ExpandUsers(ctx, []string{outer.ID, "gone-user"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{a.ID, b.ID, "gone-user"}
	slices.Sort(want)
	if !slices.Equal(users, want) {
		t.Fatalf("expand = %v, want %v", users, want)
	}
	// a user read back lists its groups
	got, _ := s.Get(ctx, KindUser, b.ID)
	gs, _ := got.Attributes["groups"].([]any)
	if len(gs) != 1 || gs[0].(map[string]any)["value"] != inner.ID {
		t.Fatalf("user groups = %v", got.Attributes["groups"])
	}
	// removing a member through Update
	_, after, err = s.Update(ctx, KindGroup, outer.ID, func(r *Resource) error {
		r.Attributes["members"] = []any{map[string]any{"value": inner.ID}}
		return nil
	})
	if err != nil || len(after.Members()) != 1 || after.Members()[0].ID != inner.ID {
		t.Fatalf("after removal %+v, %v", after.Members(), err)
	}
	// deleting a group removes its rows as parent and as member
	if _, err := s.Delete(ctx, KindGroup, inner.ID); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get(ctx, KindGroup, outer.ID)
	if len(got.Members()) != 0 {
		t.Fatalf("deleted group still a member: %+v", got.Members())
	}
}

func TestReadSnapshot(t *testing.T) { eachBackend(t, testReadSnapshot) }

func testReadSnapshot(t *testing.T, openStore func(*testing.T) *Store) {
	ctx := context.Background()
	s := openStore(t)
	ann := mustCreate(t, s, Resource{Kind: KindUser, ExternalID: "okta-1", Attributes: map[string]any{
		"userName":    "ann@example.com",
		"displayName": "Ann Agent",
		"name":        map[string]any{"givenName": "Ann", "familyName": "Agent"},
		"title":       "Team Lead",
		"userType":    "Employee",
		"active":      true,
		"emails": []any{
			map[string]any{"value": "ann.private@example.org", "type": "home"},
			map[string]any{"value": "ann@example.com", "type": "work", "primary": true},
		},
		"phoneNumbers": []any{map[string]any{"value": "+44 20 7946 0000", "type": "work"}},
		EnterpriseUserSchema: map[string]any{
			"department":     "Support",
			"employeeNumber": "701984",
			"manager":        map[string]any{"value": "mgr-1", "displayName": "Boss"},
		},
	}})
	bob := mustCreate(t, s, user("bob@example.com", map[string]any{"active": false}))
	carl := mustCreate(t, s, user("carl@example.com", nil))
	team := mustCreate(t, s, group("Team A", bob.ID))
	dept := mustCreate(t, s, group("Support", ann.ID, team.ID))
	empty := mustCreate(t, s, Resource{Kind: KindGroup, ExternalID: "g-ext", Attributes: map[string]any{"displayName": "Nobody"}})

	snap, err := s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Source != "scim-store" || len(snap.Users) != 3 || len(snap.Groups) != 3 {
		t.Fatalf("snapshot: source %q, %d users, %d groups", snap.Source, len(snap.Users), len(snap.Groups))
	}
	a := snap.User(ann.ID)
	if a == nil || a.UserName != "ann@example.com" || a.ExternalID != "okta-1" || a.GivenName != "Ann" ||
		a.FamilyName != "Agent" || a.DisplayName != "Ann Agent" || !a.Active ||
		a.PrimaryEmail() != "ann@example.com" || a.PrimaryPhone() != "+44 20 7946 0000" {
		t.Fatalf("ann = %+v", a)
	}
	for key, want := range map[string]string{
		"title":                 "Team Lead",
		"usertype":              "Employee",
		"enterprise.department": "Support",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department":     "Support",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984",
		"enterprise.manager":             "mgr-1",
		"enterprise.manager.displayname": "Boss",
		"name.givenname":                 "Ann",
		"emails.work":                    "ann@example.com",
		"emails.primary":                 "ann@example.com",
		"phonenumbers.work":              "+44 20 7946 0000",
		"externalid":                     "okta-1",
		"active":                         "true",
	} {
		if got := a.Attr(key); got != want {
			t.Errorf("Attr(%q) = %q, want %q", key, got, want)
		}
	}
	for k := range a.Attributes {
		if k != toLower(k) {
			t.Errorf("attribute key %q is not lower-case", k)
		}
	}
	if b := snap.User(bob.ID); b == nil || b.Active {
		t.Fatalf("bob = %+v", b)
	}
	if !slices.Equal(snap.User(bob.ID).Groups, []string{team.ID}) {
		t.Fatalf("bob direct groups = %v", snap.User(bob.ID).Groups)
	}
	wantBob := []string{dept.ID, team.ID}
	slices.Sort(wantBob)
	if !slices.Equal(snap.Memberships[bob.ID], wantBob) {
		t.Fatalf("bob transitive = %v, want %v", snap.Memberships[bob.ID], wantBob)
	}
	if !slices.Equal(snap.Memberships[ann.ID], []string{dept.ID}) {
		t.Fatalf("ann transitive = %v", snap.Memberships[ann.ID])
	}
	if _, ok := snap.Memberships[carl.ID]; ok {
		t.Fatalf("carl has memberships: %v", snap.Memberships[carl.ID])
	}
	d := snap.Group(dept.ID)
	if d == nil || d.Name != "Support" || !slices.Equal(d.MemberUsers, []string{ann.ID}) || !slices.Equal(d.MemberGroups, []string{team.ID}) {
		t.Fatalf("dept = %+v", d)
	}
	if e := snap.Group(empty.ID); e == nil || e.Name != "Nobody" || e.ExternalID != "g-ext" {
		t.Fatalf("group without members must be kept: %+v", e)
	}
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// v1Database is the SQL (SQLite dialect) that builds a schema-version-1 database by hand,
// with one user (u1, Old@Example.com), one group (g1, Legacy Group) and u1's membership in
// it, for the migration tests of both backends.
func v1Database() []string {
	stmts := append([]string{
		`CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)`,
		`INSERT INTO schema_version VALUES (1, '2025-01-01T00:00:00Z')`,
	}, migrations[0].stmts...)
	return append(stmts,
		`INSERT INTO scim_users (id, user_name, user_name_key, external_id, active, data, created, last_modified)
		 VALUES ('u1', 'Old@Example.com', 'old@example.com', 'x1', 1,
		 '{"userName":"Old@Example.com","displayName":"Old Timer","active":true,"emails":[{"value":"Old@Example.com","primary":true}]}',
		 '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z')`,
		`INSERT INTO scim_groups (id, display_name, external_id, data, created, last_modified)
		 VALUES ('g1', 'Legacy Group', NULL, '{"displayName":"Legacy Group"}', '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z')`,
		`INSERT INTO scim_group_members (group_id, member_id, member_type, display) VALUES ('g1', 'u1', 'User', NULL)`,
	)
}

// wantMigratedEmails checks that the migration indexed u1's e-mail (v1Database): a scoped
// read of a new user with the same address, in other letters, holds u1 too.
func wantMigratedEmails(t *testing.T, s *Store) {
	t.Helper()
	n := mustCreate(t, s, user("new@example.com", map[string]any{"emails": []any{map[string]any{"value": "OLD@example.COM"}}}))
	snap, _, err := s.ReadUsers(context.Background(), []string{n.ID})
	if err != nil || snap.User("u1") == nil {
		t.Fatalf("scoped read of a user with u1's e-mail after the migration: %+v, %v", snap, err)
	}
}

// TestMigrateFromV1 builds a version-1 database by hand, with data, and checks that Open
// migrates it to the current version without losing anything.
func TestMigrateFromV1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bridge.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range v1Database() {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, err := s.schemaVersion(ctx)
	if err != nil || v != SchemaVersion() || v < 2 {
		t.Fatalf("schema version = %d, %v", v, err)
	}
	u, err := s.Get(ctx, KindUser, "u1")
	if err != nil || u.Version != 1 || u.ETag() != `W/"1"` || u.ExternalID != "x1" {
		t.Fatalf("migrated user = %+v, %v", u, err)
	}
	var dn string
	if err := s.db.QueryRowContext(ctx, `SELECT display_name FROM scim_users WHERE id = 'u1'`).Scan(&dn); err != nil || dn != "Old Timer" {
		t.Fatalf("backfilled display_name = %q, %v", dn, err)
	}
	p, err := s.List(ctx, KindGroup, Query{Eq: []Cond{{Attr: "displayName", Value: "legacy GROUP"}}, Count: -1})
	if err != nil || p.Total != 1 || len(p.Resources[0].Members()) != 1 {
		t.Fatalf("migrated group lookup = %+v, %v", p, err)
	}
	if _, err := s.Create(ctx, user("old@example.COM", nil)); !errors.Is(err, ErrConflict) {
		t.Fatalf("uniqueness after migration = %v", err)
	}
	wantMigratedEmails(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// re-opening an up-to-date database changes nothing
	s2, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var n int
	if err := s2.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_version`).Scan(&n); err != nil || n != SchemaVersion() {
		t.Fatalf("schema_version rows = %d, %v", n, err)
	}
}

func TestFileStoreWALAndPersistence(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("store file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	var mode string
	if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	u := mustCreate(t, s, user("keep@example.com", nil))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(ctx, KindUser, u.ID); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "future.db")
	s, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_version VALUES (99, 'x')`); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if _, err := Open(ctx, path, nil); err == nil {
		t.Fatal("opening a database from a newer bridge must fail")
	}
	if _, err := Open(ctx, "", nil); err == nil {
		t.Fatal("empty path must fail")
	}
}

func TestConcurrentWritesOnFile(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "c.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	errs := make(chan error, 40)
	for i := range 40 {
		go func() {
			_, err := s.Create(ctx, user(fmt.Sprintf("u%d@x", i), nil))
			errs <- err
		}()
	}
	for range 40 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	p, err := s.List(ctx, KindUser, Query{Count: -1})
	if err != nil || p.Total != 40 {
		t.Fatalf("total = %d, %v", p.Total, err)
	}
}

func TestExpandUsersNested(t *testing.T) { eachBackend(t, testExpandUsersNested) }

// testExpandUsersNested expands groups three levels deep, a group named twice and a group
// reached along two paths, each user once.
func testExpandUsersNested(t *testing.T, openStore func(*testing.T) *Store) {
	ctx := context.Background()
	s := openStore(t)
	a := mustCreate(t, s, user("a@x", nil))
	b := mustCreate(t, s, user("b@x", nil))
	c := mustCreate(t, s, user("c@x", nil))
	deep := mustCreate(t, s, group("Deep", c.ID))
	mid := mustCreate(t, s, group("Mid", b.ID, deep.ID))
	top := mustCreate(t, s, group("Top", a.ID, mid.ID, deep.ID))
	users, err := s.ExpandUsers(ctx, []string{top.ID, mid.ID, top.ID, b.ID})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{a.ID, b.ID, c.ID}
	slices.Sort(want)
	if !slices.Equal(users, want) {
		t.Fatalf("expand = %v, want %v", users, want)
	}
	if users, err := s.ExpandUsers(ctx, nil); err != nil || len(users) != 0 {
		t.Fatalf("expand nothing = %v, %v", users, err)
	}
}

func TestDeleteIf(t *testing.T) { eachBackend(t, testDeleteIf) }

// testDeleteIf: a failing check deletes nothing and its error comes back unchanged; a passing
// one sees the stored resource and the delete goes ahead.
func testDeleteIf(t *testing.T, openStore func(*testing.T) *Store) {
	ctx := context.Background()
	s := openStore(t)
	u := mustCreate(t, s, user("a@x", nil))
	errStale := errors.New("stale")
	if _, err := s.DeleteIf(ctx, KindUser, u.ID, func(Resource) error { return errStale }); err != errStale {
		t.Fatalf("failing check = %v, want it unchanged", err)
	}
	if _, err := s.Get(ctx, KindUser, u.ID); err != nil {
		t.Fatalf("after a failing check: %v, want the user kept", err)
	}
	var seen int64
	old, err := s.DeleteIf(ctx, KindUser, u.ID, func(r Resource) error { seen = r.Version; return nil })
	if err != nil || old.ID != u.ID || seen != u.Version {
		t.Fatalf("delete = %+v, %v (check saw version %d, want %d)", old, err, seen, u.Version)
	}
	if _, err := s.Get(ctx, KindUser, u.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v, want ErrNotFound", err)
	}
}
