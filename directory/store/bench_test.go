package store

import (
	"context"
	"fmt"
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
