package babelforce

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// pager serves n agents with hyphenated upper-case ids; mode shapes the pagination.
type pager struct {
	mu    sync.Mutex
	n     int
	mode  string // "full", "none" (no pagination), "total", "ignorepage", "endless"
	calls []string
}

func (p *pager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	size, _ := strconv.Atoi(r.URL.Query().Get("max"))
	p.mu.Lock()
	p.calls = append(p.calls, r.URL.RawQuery)
	p.mu.Unlock()
	if p.mode == "ignorepage" {
		page = 1
	}
	if p.mode == "endless" {
		writeJSON(w, 200, map[string]any{"items": []any{map[string]any{"id": fmt.Sprintf("%032x", page), "name": "x"}}})
		return
	}
	var items []any
	for i := (page - 1) * size; i < min(page*size, p.n); i++ {
		items = append(items, map[string]any{"id": fmt.Sprintf("ABCDEF01-0000-0000-0000-%012X", i), "name": fmt.Sprintf("agent %d", i),
			"groups": []any{map[string]any{"id": "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE", "name": "g"}}})
	}
	if items == nil {
		items = []any{}
	}
	pages := (p.n + size - 1) / size
	body := map[string]any{"items": items}
	switch p.mode {
	case "full", "ignorepage":
		body["pagination"] = map[string]any{"current": page, "max": size, "maxResults": size, "pages": pages, "total": p.n}
	case "total":
		body["pagination"] = map[string]any{"total": strconv.Itoa(p.n), "next": nil}
	}
	writeJSON(w, 200, body)
}

func TestPagingStopConditions(t *testing.T) {
	tests := []struct {
		mode      string
		n         int
		wantCalls int
		wantErr   string
	}{
		{"full", 250, 3, ""},
		{"full", 200, 2, ""},
		{"full", 0, 1, ""},
		{"none", 250, 4, ""}, // needs an empty page to stop
		{"none", 0, 1, ""},
		{"total", 250, 3, ""},
		{"ignorepage", 250, 3, "ignores paging"}, // pages 2 and 3 are asked for together
		{"endless", 0, 20, "does not stop paging"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_%d", tt.mode, tt.n), func(t *testing.T) {
			p := &pager{n: tt.n, mode: tt.mode}
			e := newEnv(t, p, nil)
			e.c.maxPages = 20
			agents, err := e.c.ListAgents(context.Background(), AgentFilter{PageSize: 100, SourceID: "s-1", Enabled: new(true)})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if len(agents) != tt.n {
					t.Errorf("got %d agents, want %d", len(agents), tt.n)
				}
				seen := map[string]bool{}
				for _, a := range agents {
					if len(a.ID) != 32 || strings.ToLower(a.ID) != a.ID || seen[a.ID] {
						t.Fatalf("id %q not normalised or duplicate", a.ID)
					}
					seen[a.ID] = true
					if a.Groups[0].ID != "aaaaaaaabbbbccccddddeeeeeeeeeeee" {
						t.Fatalf("group id %q not normalised", a.Groups[0].ID)
					}
				}
			}
			if len(p.calls) != tt.wantCalls {
				t.Errorf("list calls %d, want %d: %v", len(p.calls), tt.wantCalls, p.calls)
			}
			if !strings.Contains(p.calls[0], "page=1") || !strings.Contains(p.calls[0], "max=100") ||
				!strings.Contains(p.calls[0], "sourceId=s-1") || !strings.Contains(p.calls[0], "enabled=true") {
				t.Errorf("first query %q", p.calls[0])
			}
		})
	}
}

func TestPageSizeFromConfig(t *testing.T) {
	p := &pager{n: 120, mode: "full"}
	e := newEnv(t, p, func(c *Config) { c.PageSize = 50 })
	agents, err := e.c.ListAgentGroupMembers(context.Background(), "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE")
	if err != nil || len(agents) != 120 || len(p.calls) != 3 || !strings.Contains(p.calls[0], "max=50") {
		t.Fatalf("got %d agents, %v, calls %v", len(agents), err, p.calls)
	}
}

// scimPager serves n SCIM users but never more than cap per page.
type scimPager struct {
	n, limit int
	noTotal  bool
	calls    []string
}

func (s *scimPager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start, _ := strconv.Atoi(r.URL.Query().Get("startIndex"))
	count, _ := strconv.Atoi(r.URL.Query().Get("count"))
	s.calls = append(s.calls, r.URL.RawQuery)
	var res []any
	for i := start - 1; i < min(start-1+min(count, s.limit), s.n); i++ {
		res = append(res, map[string]any{"id": fmt.Sprintf("u%d", i), "userName": fmt.Sprintf("u%d@x", i)})
	}
	body := map[string]any{"schemas": []string{SCIMListSchema}, "Resources": res, "startIndex": start, "itemsPerPage": len(res)}
	if !s.noTotal {
		body["totalResults"] = s.n
	}
	writeJSON(w, 200, body)
}

func TestSCIMPagingCopesWithShortPages(t *testing.T) {
	s := &scimPager{n: 95, limit: 20}
	e := newEnv(t, s, func(c *Config) { c.PageSize = 50 })
	users, err := e.c.SCIMListUsers(context.Background(), `userName sw "u"`)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 95 || users[94].UserName != "u94@x" {
		t.Fatalf("got %d users", len(users))
	}
	if len(s.calls) != 5 || !strings.Contains(s.calls[1], "startIndex=21") || !strings.Contains(s.calls[0], "filter=userName") {
		t.Errorf("calls %v", s.calls)
	}
	s2 := &scimPager{n: 70, limit: 1000, noTotal: true}
	e2 := newEnv(t, s2, func(c *Config) { c.PageSize = 50 })
	users, err = e2.c.SCIMListUsers(context.Background(), "")
	if err != nil || len(users) != 70 || len(s2.calls) != 2 {
		t.Fatalf("no total: %d users, %v, calls %v", len(users), err, s2.calls)
	}
}

// TestConcurrentPagesInOrder: the pages after the first are asked for together, and the list
// is the same as one read page by page: every item once, in the server's order; a page that
// fails is named, and one that comes back short (SCIM) does not shift the rest.
func TestConcurrentPagesInOrder(t *testing.T) {
	p := &pager{n: 1000, mode: "full"}
	e := newEnv(t, p, func(c *Config) { c.MaxConcurrency = 4 })
	agents, err := e.c.ListAgents(context.Background(), AgentFilter{PageSize: 10})
	if err != nil || len(agents) != 1000 || len(p.calls) != 100 {
		t.Fatalf("%d agents, %v, %d calls", len(agents), err, len(p.calls))
	}
	for i, a := range agents {
		if want := fmt.Sprintf("abcdef01000000000000%012x", i); a.ID != want {
			t.Fatalf("agent %d is %s, want %s", i, a.ID, want)
		}
	}

	failing := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page") == "7" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": "no"})
			return
		}
		p.ServeHTTP(w, r)
	})
	e = newEnv(t, failing, func(c *Config) { c.MaxConcurrency = 4 })
	if _, err := e.c.ListAgents(context.Background(), AgentFilter{PageSize: 10}); err == nil || !strings.Contains(err.Error(), "page 7:") {
		t.Fatalf("err %v, want page 7's", err)
	}

	// SCIM: one page gives 5 users (of 20 asked): the walk goes on from where it ended, in
	// the first window of pages or at the end of one (max_concurrency 1: windows of 4)
	for _, tt := range []struct {
		shortAt, next string
		concurrency   int
	}{{"41", "46", 4}, {"81", "86", 1}} {
		s := &scimPager{n: 200, limit: 1000}
		var mu sync.Mutex
		short := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if r.URL.Query().Get("startIndex") == tt.shortAt {
				s.limit = 5
				defer func() { s.limit = 1000 }()
			}
			s.ServeHTTP(w, r)
		})
		e = newEnv(t, short, func(c *Config) { c.PageSize = 20; c.MaxConcurrency = tt.concurrency })
		users, err := e.c.SCIMListUsers(context.Background(), "")
		if err != nil || len(users) != 200 {
			t.Fatalf("short at %s: %d users, %v", tt.shortAt, len(users), err)
		}
		for i, u := range users {
			if want := fmt.Sprintf("u%d", i); u.ID != want {
				t.Fatalf("short at %s: user %d is %s, want %s (calls %v)", tt.shortAt, i, u.ID, want, s.calls)
			}
		}
		if !slices.Contains(s.calls, "count=20&startIndex="+tt.next) {
			t.Errorf("short at %s: no call from %s after the short page: %v", tt.shortAt, tt.next, s.calls)
		}
	}
}
