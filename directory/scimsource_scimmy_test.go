package directory_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/internal/testenv"
)

// countingTransport counts the list requests per endpoint and remembers the counts asked for.
type countingTransport struct {
	mu     sync.Mutex
	pages  map[string]int
	starts []string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	ep := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	c.pages[ep]++
	if ep == "Users" {
		c.starts = append(c.starts, r.URL.Query().Get("startIndex"))
	}
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// TestSCIMSourceScimmyManyUsers reads 1,500 users from the real scimmy peer across pages.
func TestSCIMSourceScimmyManyUsers(t *testing.T) {
	const n = 1500
	users := make([]map[string]any, n)
	for i := range users {
		users[i] = map[string]any{
			"id":       fmt.Sprintf("u%05d", i),
			"userName": fmt.Sprintf("user%05d@example.com", i),
			"active":   i%100 != 0,
			"emails":   []map[string]any{{"value": fmt.Sprintf("user%05d@example.com", i), "type": "work", "primary": true}},
		}
	}
	members := []map[string]string{}
	for i := 0; i < n; i += 3 {
		members = append(members, map[string]string{"value": fmt.Sprintf("u%05d", i), "type": "User"})
	}
	groups := []map[string]any{
		{"id": "g-all-thirds", "displayName": "every third", "members": members},
		{"id": "g-parent", "displayName": "parent", "members": []map[string]string{{"value": "g-all-thirds", "type": "Group"}}},
	}
	seed, err := json.Marshal(map[string]any{"users": users, "groups": groups})
	if err != nil {
		t.Fatal(err)
	}
	srv := testenv.StartScimmy(t, testenv.ScimmyOptions{SeedJSON: writeFile(t, "seed.json", string(seed)), Token: "many-users"})

	for _, tc := range []struct {
		pageSize, wantUserPages int
	}{
		{100, 15},
		{333, 5}, // four full pages and one of 168
		// (scimmy renders every matching user on each request, about 0.3 s for 1,500: keep
		// the number of pages small)
	} {
		ct := &countingTransport{pages: map[string]int{}}
		src, err := directory.NewSCIMSource(directory.SCIMSourceConfig{BaseURL: srv.URL, Token: srv.Token, PageSize: tc.pageSize},
			nil, &http.Client{Transport: ct})
		if err != nil {
			t.Fatal(err)
		}
		snap, err := src.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Users) != n {
			t.Fatalf("page size %d: read %d users, want %d", tc.pageSize, len(snap.Users), n)
		}
		inactive := 0
		for _, u := range snap.Users {
			if !u.Active {
				inactive++
			}
		}
		if inactive != n/100 {
			t.Errorf("%d inactive users, want %d", inactive, n/100)
		}
		if got := ct.pages["Users"]; got != tc.wantUserPages {
			t.Errorf("page size %d: %d /Users requests, want %d", tc.pageSize, got, tc.wantUserPages)
		}
		if ct.starts[1] != fmt.Sprint(1+tc.pageSize) {
			t.Errorf("second page asked for startIndex %s", ct.starts[1])
		}
		if got := len(snap.Memberships["u00003"]); got != 2 {
			t.Errorf("u00003 is in %d groups, want 2 (every third, and parent through nesting)", got)
		}
		if got := len(snap.Memberships["u00004"]); got != 0 {
			t.Errorf("u00004 is in %d groups, want 0", got)
		}
	}

	// A filter is passed through and evaluated by the server.
	src, err := directory.NewSCIMSource(directory.SCIMSourceConfig{BaseURL: srv.URL, Token: srv.Token, UserFilter: `userName sw "user0001"`}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := src.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 10 {
		t.Errorf("filter userName sw \"user0001\": %d users, want 10", len(snap.Users))
	}

	// The wrong token: a clear 401.
	src, err = directory.NewSCIMSource(directory.SCIMSourceConfig{BaseURL: srv.URL, Token: "wrong"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Read(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: err = %v", err)
	}
}
