package store

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func subjects(es []QueueEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Subject)
	}
	slices.Sort(out)
	return out
}

func TestQueueWrites(t *testing.T) { eachBackend(t, testQueueWrites) }

// testQueueWrites: every write queues the people it affects in its own transaction; a write
// without QueueWrites queues nothing.
func testQueueWrites(t *testing.T, openStore func(*testing.T) *Store) {
	ctx := context.Background()
	s := openStore(t)
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.SetClock(func() time.Time { return clock })
	before := mustCreate(t, s, user("before@x", nil))
	if st, err := s.QueueStats(ctx); err != nil || st.Depth != 0 {
		t.Fatalf("queue before QueueWrites: %+v, %v", st, err)
	}
	var woken atomic.Int32
	s.QueueWrites(SourceSCIMPush, func() { woken.Add(1) })

	ann := mustCreate(t, s, user("ann@x", nil))
	bob := mustCreate(t, s, user("bob@x", nil))
	inner := mustCreate(t, s, group("inner", bob.ID))
	due, err := s.DueEntries(ctx, clock, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := subjects(due); !slices.Equal(got, subjects([]QueueEntry{{Subject: ann.ID}, {Subject: bob.ID}})) {
		t.Fatalf("due after creates = %v, want ann and bob", got)
	}
	for _, e := range due {
		if e.Source != SourceSCIMPush || !e.Enqueued.Equal(clock) {
			t.Errorf("entry %+v: want source %s, enqueued %s", e, SourceSCIMPush, clock)
		}
	}
	if err := s.DoneEntries(ctx, due); err != nil {
		t.Fatal(err)
	}

	// a group holding a group: adding the outer group's only member queues the inner users
	outer := mustCreate(t, s, group("outer"))
	if st, _ := s.QueueStats(ctx); st.Depth != 0 {
		t.Fatalf("an empty group queued %d people", st.Depth)
	}
	if _, _, err := s.Update(ctx, KindGroup, outer.ID, func(r *Resource) error {
		r.Attributes["members"] = []any{map[string]any{"value": inner.ID}, map[string]any{"value": ann.ID}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	due, _ = s.DueEntries(ctx, clock, 100)
	if got, want := subjects(due), subjects([]QueueEntry{{Subject: ann.ID}, {Subject: bob.ID}}); !slices.Equal(got, want) {
		t.Fatalf("due after adding members = %v, want %v", got, want)
	}

	// bob changes again while his first change is being applied: Done of the old generation
	// keeps the new one, which keeps its place
	clock = clock.Add(time.Minute)
	if _, _, err := s.Update(ctx, KindUser, bob.ID, func(r *Resource) error {
		r.Attributes["title"] = "boss"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.DoneEntries(ctx, due); err != nil {
		t.Fatal(err)
	}
	due, _ = s.DueEntries(ctx, clock, 100)
	if len(due) != 1 || due[0].Subject != bob.ID || due[0].Gen != 2 {
		t.Fatalf("after done of the old generation: %+v, want bob's second generation", due)
	}

	// a failed attempt: not due before its backoff, then due with the error kept
	if err := s.RetryEntries(ctx, due, clock.Add(30*time.Second), "babelforce: connection refused"); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.DueEntries(ctx, clock, 100); len(d) != 0 {
		t.Fatalf("due during backoff: %+v", d)
	}
	st, err := s.QueueStats(ctx)
	if err != nil || st.Depth != 1 || st.Failing != 1 || st.LastError != "babelforce: connection refused" ||
		st.OldestAge(clock) != time.Minute {
		t.Fatalf("stats = %+v (oldest age %s), %v", st, st.OldestAge(clock), err)
	}
	due, _ = s.DueEntries(ctx, clock.Add(30*time.Second), 100)
	if len(due) != 1 || due[0].Attempts != 1 {
		t.Fatalf("due after backoff: %+v", due)
	}
	if err := s.DoneEntries(ctx, due); err != nil {
		t.Fatal(err)
	}

	// deleting a group queues its users; deleting a user queues the user
	if _, err := s.Delete(ctx, KindGroup, outer.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, KindUser, before.ID); err != nil {
		t.Fatal(err)
	}
	due, _ = s.DueEntries(ctx, clock, 100)
	if got, want := subjects(due), subjects([]QueueEntry{{Subject: ann.ID}, {Subject: bob.ID}, {Subject: before.ID}}); !slices.Equal(got, want) {
		t.Fatalf("due after deletes = %v, want %v", got, want)
	}
	// a write that fails queues nothing
	if _, err := s.Create(ctx, user("ANN@x", nil)); err == nil {
		t.Fatal("duplicate userName accepted")
	}
	if st, _ := s.QueueStats(ctx); st.Depth != 3 {
		t.Fatalf("depth after a failed write = %d, want 3", st.Depth)
	}
	if woken.Load() == 0 {
		t.Error("notify never called")
	}

	// Enqueue: the generic API of other sources
	if err := s.Enqueue(ctx, "ldap_syncrepl", "u-1", "u-2", "u-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, "", "u-3"); err == nil {
		t.Error("Enqueue without a source accepted")
	}
	due, _ = s.DueEntries(ctx, clock, 100)
	if len(due) != 5 {
		t.Fatalf("due after Enqueue = %+v", due)
	}
}

func TestReadUsers(t *testing.T) { eachBackend(t, testReadUsers) }

// testReadUsers: a scoped read holds the same users, with the same (transitive) memberships
// and group names, as the whole read; gone ids are simply absent.
func testReadUsers(t *testing.T, openStore func(*testing.T) *Store) {
	ctx := context.Background()
	s := openStore(t)
	ann := mustCreate(t, s, user("ann@x", map[string]any{"title": "agent"}))
	bob := mustCreate(t, s, user("bob@x", nil))
	cy := mustCreate(t, s, user("cy@x", nil))
	inner := mustCreate(t, s, group("inner", ann.ID, bob.ID))
	mid := mustCreate(t, s, group("mid", inner.ID))
	mustCreate(t, s, group("top", mid.ID, cy.ID))
	mustCreate(t, s, group("other", cy.ID))
	full, err := s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap, total, err := s.ReadUsers(ctx, []string{ann.ID, "gone"})
	if err != nil {
		t.Fatal(err)
	}
	if total != 3 || len(snap.Users) != 1 || snap.Users[0].ID != ann.ID {
		t.Fatalf("scoped read: total %d, users %+v", total, snap.Users)
	}
	if got, want := snap.Memberships[ann.ID], full.Memberships[ann.ID]; !slices.Equal(got, want) || len(want) != 3 {
		t.Fatalf("memberships %v, want %v (3 groups)", got, want)
	}
	if got, want := snap.Users[0].Attributes["title"], full.User(ann.ID).Attributes["title"]; !slices.Equal(got, want) {
		t.Errorf("title %v, want %v", got, want)
	}
	for _, g := range snap.Groups {
		if fg := full.Group(g.ID); fg == nil || fg.Name != g.Name {
			t.Errorf("group %+v not as in the full read", g)
		}
		if slices.Contains(g.MemberUsers, bob.ID) || slices.Contains(g.MemberUsers, cy.ID) {
			t.Errorf("group %s lists people outside the scope: %v", g.Name, g.MemberUsers)
		}
	}
	if len(snap.Groups) != 3 {
		t.Errorf("groups %+v, want inner, mid and top", snap.Groups)
	}
}

func TestReadUsersSharedEmail(t *testing.T) { eachBackend(t, testReadUsersSharedEmail) }

// testReadUsersSharedEmail: a scoped read also holds the users who share an e-mail address
// with the people read (compared case-insensitively, any of their addresses), and follows
// changes and deletes of those addresses.
func testReadUsersSharedEmail(t *testing.T, openStore func(*testing.T) *Store) {
	ctx := context.Background()
	s := openStore(t)
	emails := func(vs ...string) map[string]any {
		var l []any
		for _, v := range vs {
			l = append(l, map[string]any{"value": v})
		}
		return map[string]any{"emails": l}
	}
	ann := mustCreate(t, s, user("ann", emails("Ann@X.example", "a_n%n@x.example")))
	bob := mustCreate(t, s, user("bob", emails("bob@x.example", " ann@x.EXAMPLE ")))
	mustCreate(t, s, user("cy", emails("annx@x.example", "aXn%n@x.example")))
	read := func(label string, want ...string) {
		t.Helper()
		snap, _, err := s.ReadUsers(ctx, []string{ann.ID})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range snap.Users {
			got = append(got, u.UserName)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: scoped read of ann holds %v, want %v", label, got, want)
		}
	}
	read("shared", "ann", "bob")
	if _, _, err := s.Update(ctx, KindUser, bob.ID, func(r *Resource) error {
		r.Attributes["emails"] = emails("bob@x.example")["emails"]
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	read("bob's address changed", "ann")
	if _, _, err := s.Update(ctx, KindUser, bob.ID, func(r *Resource) error {
		r.Attributes["emails"] = emails("A_N%N@x.example")["emails"]
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	read("bob has ann's second address", "ann", "bob")
	if _, err := s.Delete(ctx, KindUser, bob.ID); err != nil {
		t.Fatal(err)
	}
	read("bob deleted", "ann")
}
