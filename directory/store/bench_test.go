package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/babelforce/bridge/internal/testenv"
)

// BenchmarkRead measures a full snapshot of 10,000 users in 100 groups, on each backend.
func BenchmarkRead(b *testing.B) {
	b.Run(BackendSQLite, func(b *testing.B) {
		s, err := Open(context.Background(), ":memory:", nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchmarkRead(b, s)
	})
	b.Run(BackendPostgres, func(b *testing.B) {
		s, err := Open(context.Background(), testenv.StartPostgres(b).URL, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchmarkRead(b, s)
	})
}

func benchmarkRead(b *testing.B, s *Store) {
	ctx := context.Background()
	var groupMembers [100][]any
	for i := range 10000 {
		u, err := s.Create(ctx, Resource{Kind: KindUser, ExternalID: fmt.Sprint(i), Attributes: map[string]any{
			"userName": fmt.Sprintf("user%05d@example.com", i), "active": true,
			"name":               map[string]any{"givenName": "User", "familyName": fmt.Sprint(i)},
			"emails":             []any{map[string]any{"value": fmt.Sprintf("user%05d@example.com", i), "type": "work", "primary": true}},
			EnterpriseUserSchema: map[string]any{"department": fmt.Sprint("dept", i%10)},
		}})
		if err != nil {
			b.Fatal(err)
		}
		groupMembers[i%100] = append(groupMembers[i%100], map[string]any{"value": u.ID})
	}
	for i, ms := range groupMembers {
		if _, err := s.Create(ctx, Resource{Kind: KindGroup, Attributes: map[string]any{"displayName": fmt.Sprint("group", i), "members": ms}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		snap, err := s.Read(ctx)
		if err != nil || len(snap.Users) != 10000 {
			b.Fatalf("%d users, %v", len(snap.Users), err)
		}
	}
}

// benchBackends runs fn on a fresh store of each backend.
func benchBackends(b *testing.B, fn func(b *testing.B, s *Store)) {
	b.Run(BackendSQLite, func(b *testing.B) {
		s, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		fn(b, s)
	})
	b.Run(BackendPostgres, func(b *testing.B) {
		s, err := Open(context.Background(), testenv.StartPostgres(b).URL, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		fn(b, s)
	})
}

// benchSeedUsers stores n users (userN@example.com) in one transaction through the same
// write path as Create, and returns their ids.
func benchSeedUsers(b *testing.B, s *Store, n int) []string {
	b.Helper()
	ctx := context.Background()
	tx, err := s.begin(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	ids := make([]string, n)
	now := s.now().UTC()
	for i := range n {
		email := fmt.Sprintf("user%06d@example.com", i)
		r := Resource{Kind: KindUser, ID: s.newID(), Created: now, LastModified: now, Version: 1, Attributes: map[string]any{
			"userName": email, "active": true,
			"name":   map[string]any{"givenName": "User", "familyName": fmt.Sprint(i)},
			"emails": []any{map[string]any{"value": email, "type": "work", "primary": true}},
		}}
		if err := s.write(ctx, tx, nil, &r); err != nil {
			b.Fatal(err)
		}
		ids[i] = r.ID
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return ids
}

// BenchmarkPatchLargeGroup measures a one-operation change (one member added) of a group of
// 50,000 members: what a 1-op SCIM PATCH costs the store.
func BenchmarkPatchLargeGroup(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *Store) {
		const members = 50000
		ctx := context.Background()
		ids := benchSeedUsers(b, s, members+1000)
		list := make([]any, members)
		for i := range members {
			list[i] = map[string]any{"value": ids[i], "type": "User"}
		}
		g, err := s.Create(ctx, Resource{Kind: KindGroup, Attributes: map[string]any{"displayName": "everyone", "members": list}})
		if err != nil {
			b.Fatal(err)
		}
		next := members
		b.ResetTimer()
		for b.Loop() {
			if next == len(ids) {
				b.Fatal("out of users to add")
			}
			add := ids[next]
			next++
			_, after, err := s.Update(ctx, KindGroup, g.ID, func(r *Resource) error {
				ms, _ := r.Attributes["members"].([]any)
				r.Attributes["members"] = append(ms, map[string]any{"value": add, "type": "User"})
				return nil
			})
			if err != nil || len(after.Members()) != next {
				b.Fatalf("%d members, %v", len(after.Members()), err)
			}
		}
	})
}

// BenchmarkReadUsersScoped measures a scoped read of one person among 100,000 stored users
// (what one push costs the queue worker's read).
func BenchmarkReadUsersScoped(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *Store) {
		ctx := context.Background()
		ids := benchSeedUsers(b, s, 100000)
		i := 0
		b.ResetTimer()
		for b.Loop() {
			id := ids[(i*7919)%len(ids)]
			i++
			snap, total, err := s.ReadUsers(ctx, []string{id})
			if err != nil || len(snap.Users) != 1 || total != len(ids) {
				b.Fatalf("%d users of %d, %v", len(snap.Users), total, err)
			}
		}
	})
}
