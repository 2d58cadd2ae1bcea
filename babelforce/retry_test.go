package babelforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// script answers API calls from a list of (status, header, body) steps; the last repeats.
type script struct {
	mu    sync.Mutex
	steps []step
	calls int
	paths []string
}

type step struct {
	status int
	header map[string]string
	body   any
	drop   bool // hijack and close the connection without answering
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	st := s.steps[min(s.calls, len(s.steps)-1)]
	s.calls++
	s.paths = append(s.paths, r.Method+" "+r.URL.Path)
	s.mu.Unlock()
	if st.drop {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	for k, v := range st.header {
		w.Header().Set(k, v)
	}
	writeJSON(w, st.status, st.body)
}

func (s *script) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

var okAgent = map[string]any{"item": map[string]any{"id": "0123456789abcdef0123456789abcdef", "name": "Ann"}, "success": true}

func TestRetryAfterSecondsThenSuccess(t *testing.T) {
	s := &script{steps: []step{
		{status: 429, header: map[string]string{"Retry-After": "7"}, body: map[string]any{"message": "slow down"}},
		{status: 200, body: okAgent},
	}}
	e := newEnv(t, s, nil)
	a, err := e.c.GetAgent(context.Background(), "0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "Ann" {
		t.Errorf("agent %+v", a)
	}
	if got := e.clock.Sleeps(); len(got) != 1 || got[0] != 7*time.Second {
		t.Errorf("sleeps %v, want [7s]", got)
	}
	if statCount(e.c, "GET /api/v2/agents/{id}", 429) != 1 || statCount(e.c, "GET /api/v2/agents/{id}", 200) != 1 {
		t.Errorf("stats %+v", e.c.Stats())
	}
	for _, st := range e.c.Stats() {
		if st.Endpoint == "GET /api/v2/agents/{id}" && st.Status == 200 && st.Retries != 1 {
			t.Errorf("retry not counted: %+v", st)
		}
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	clock := newFakeClock()
	date := clock.Now().Add(12 * time.Second).UTC().Format(http.TimeFormat)
	s := &script{steps: []step{
		{status: 503, header: map[string]string{"Retry-After": date}, body: map[string]any{"message": "maintenance"}},
		{status: 200, body: okAgent},
	}}
	e := newEnv(t, s, nil)
	e.clock.now = clock.now
	if _, err := e.c.GetAgent(context.Background(), "0123456789abcdef0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if got := e.clock.Sleeps(); len(got) != 1 || got[0] != 12*time.Second {
		t.Errorf("sleeps %v, want [12s]", got)
	}
}

func Test503StormGivesUpAfterMaxAttempts(t *testing.T) {
	s := &script{steps: []step{{status: 503, body: map[string]any{"message": "overloaded"}}}}
	var observed []CallInfo
	var mu sync.Mutex
	e := newEnv(t, s, nil, WithCallObserver(func(ci CallInfo) {
		mu.Lock()
		observed = append(observed, ci)
		mu.Unlock()
	}))
	_, err := e.c.ListAgents(context.Background(), AgentFilter{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"GET /api/v2/agents", "giving up after 5 attempts", "last status 503", "overloaded"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if s.Calls() != 5 {
		t.Errorf("calls %d, want 5", s.Calls())
	}
	if len(e.clock.Sleeps()) != 4 {
		t.Errorf("sleeps %v, want 4", e.clock.Sleeps())
	}
	for i, d := range e.clock.Sleeps() {
		if ceil := backoffBase << i; d < 0 || d > ceil {
			t.Errorf("backoff %d = %s, want within [0, %s]", i+1, d, ceil)
		}
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 503 || !IsTransient(err) {
		t.Errorf("want transient *APIError 503, got %v", err)
	}
	var apiObs int
	for _, ci := range observed {
		if ci.Endpoint == "GET /api/v2/agents" {
			apiObs++
			if ci.Status != 503 || ci.Attempt != apiObs {
				t.Errorf("observed %+v", ci)
			}
		}
	}
	if apiObs != 5 {
		t.Errorf("observer saw %d API calls, want 5", apiObs)
	}
}

func TestRetryTimeBudget(t *testing.T) {
	s := &script{steps: []step{{status: 429, header: map[string]string{"Retry-After": "90"}, body: map[string]any{}}}}
	e := newEnv(t, s, func(c *Config) { c.MaxAttempts = 10 })
	_, err := e.c.ListAgentGroups(context.Background())
	if err == nil || !strings.Contains(err.Error(), "giving up after 2 attempts") || !strings.Contains(err.Error(), "beyond max_retry_time 2m0s") {
		t.Fatalf("got %v", err)
	}
	if s.Calls() != 2 {
		t.Errorf("calls %d, want 2 (90s + 90s > 2m)", s.Calls())
	}
}

func TestCreateRetriedOnlyWhenNotProcessed(t *testing.T) {
	tests := []struct {
		name      string
		first     step
		wantCalls int
		wantErr   bool
	}{
		{"429 retried", step{status: 429, body: map[string]any{}}, 2, false},
		{"503 retried", step{status: 503, body: map[string]any{}}, 2, false},
		{"502 not retried", step{status: 502, body: map[string]any{}}, 1, true},
		{"504 not retried", step{status: 504, body: map[string]any{}}, 1, true},
		{"dropped connection not retried", step{drop: true}, 1, true},
		{"500 not retried", step{status: 500, body: map[string]any{"message": "boom"}}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{steps: []step{tt.first, {status: 201, body: okAgent}}}
			e := newEnv(t, s, nil)
			a, err := e.c.CreateAgent(context.Background(), &Agent{Name: "Ann"})
			if s.Calls() != tt.wantCalls {
				t.Errorf("calls %d, want %d", s.Calls(), tt.wantCalls)
			}
			if tt.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && a.ID != "0123456789abcdef0123456789abcdef" {
				t.Errorf("agent %+v", a)
			}
			if tt.first.drop && !strings.Contains(err.Error(), "may have been applied") {
				t.Errorf("error %q does not explain why it was not retried", err)
			}
		})
	}
}

func TestGetRetriedAfterDroppedConnectionAnd502(t *testing.T) {
	s := &script{steps: []step{{drop: true}, {status: 502, body: map[string]any{}}, {status: 504, body: map[string]any{}}, {status: 200, body: okAgent}}}
	e := newEnv(t, s, nil)
	if _, err := e.c.GetAgent(context.Background(), "0123456789abcdef0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if s.Calls() != 4 {
		t.Errorf("calls %d, want 4", s.Calls())
	}
	// (net/http itself may repeat a GET whose reused connection was closed, so the client
	// sees 3 or 4 attempts.)
}

func TestGetRetriedAfter500(t *testing.T) {
	s := &script{steps: []step{{status: 500, body: map[string]any{"code": 1234, "message": "internal"}}, {status: 200, body: okAgent}}}
	e := newEnv(t, s, nil)
	if _, err := e.c.GetAgent(context.Background(), "0123456789abcdef0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if s.Calls() != 2 {
		t.Errorf("calls %d, want 2", s.Calls())
	}
}

func Test500StormGivesUpWithTheAPIError(t *testing.T) {
	s := &script{steps: []step{{status: 500, body: map[string]any{"code": 1234, "message": "internal"}}}}
	e := newEnv(t, s, nil)
	_, err := e.c.ListAgents(context.Background(), AgentFilter{})
	if err == nil || !IsTransient(err) || s.Calls() != 5 {
		t.Fatalf("err %v transient=%v calls=%d", err, IsTransient(err), s.Calls())
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "1234" || ae.Message != "internal" || ae.Method != "GET" || ae.Path != "/api/v2/agents" {
		t.Errorf("APIError %+v", ae)
	}
}

func TestPagedReadRetriesOnlyTheFailedPage(t *testing.T) {
	var mu sync.Mutex
	var pages []string
	failed := false
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		page := r.URL.Query().Get("page")
		pages = append(pages, page)
		fail := page == "2" && !failed
		failed = failed || fail
		mu.Unlock()
		if fail {
			writeJSON(w, 500, map[string]any{"message": "boom"})
			return
		}
		id := map[string]string{"1": "01", "2": "02", "3": "03"}[page]
		writeJSON(w, 200, map[string]any{"items": []any{map[string]any{"id": id + "23456789abcdef0123456789abcdef", "name": "A" + page}},
			"pagination": map[string]any{"current": page, "pages": 3}})
	})
	e := newEnv(t, h, nil)
	agents, err := e.c.ListAgents(context.Background(), AgentFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != 3 {
		t.Errorf("agents %d, want 3", len(agents))
	}
	// pages 2 and 3 are asked for together, so in either order
	slices.Sort(pages)
	if got := strings.Join(pages, ","); got != "1,2,2,3" {
		t.Errorf("pages asked (sorted) %s, want 1,2,2,3 (only the failed page again)", got)
	}
}

// createScript is a babelforce that answers the first create of an agent with a fault,
// applying it before the fault or not, and lists the agents it holds by sourceId.
type createScript struct {
	mu      sync.Mutex
	applied bool // the faulted create reached the store
	faults  []step
	agents  []map[string]any
	calls   []string
}

func (s *createScript) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, r.Method+" "+r.URL.Path)
	switch r.Method {
	case http.MethodGet:
		var items []any
		for _, a := range s.agents {
			if a["sourceId"] == r.URL.Query().Get("sourceId") && a["agentSource"] == r.URL.Query().Get("source") {
				items = append(items, a)
			}
		}
		writeJSON(w, 200, map[string]any{"items": items, "pagination": map[string]any{"pages": 1}})
	case http.MethodPost:
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		if len(s.faults) > 0 {
			f := s.faults[0]
			s.faults = s.faults[1:]
			if s.applied {
				body["id"] = fmt.Sprintf("%032x", len(s.agents)+1)
				s.agents = append(s.agents, body)
			}
			if f.drop {
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
				return
			}
			writeJSON(w, f.status, map[string]any{"message": "fault"})
			return
		}
		body["id"] = fmt.Sprintf("%032x", len(s.agents)+1)
		s.agents = append(s.agents, body)
		writeJSON(w, 201, map[string]any{"item": body, "success": true})
	}
}

func TestCreateThatMayHaveLandedIsLookedUpFirst(t *testing.T) {
	for _, f := range []step{{status: 500}, {status: 502}, {status: 504}, {drop: true}} {
		for _, applied := range []bool{true, false} {
			name := fmt.Sprintf("status %d drop %v applied %v", f.status, f.drop, applied)
			t.Run(name, func(t *testing.T) {
				s := &createScript{applied: applied, faults: []step{f}}
				e := newEnv(t, s, func(c *Config) { c.Token, c.Username, c.Password = "t", "", "" })
				a, err := e.c.CreateAgent(context.Background(), &Agent{Name: "Ann", SourceID: "u-1", AgentSource: "bridge:test"})
				if err != nil {
					t.Fatal(err)
				}
				if len(s.agents) != 1 {
					t.Fatalf("%d agents, want exactly 1", len(s.agents))
				}
				if a.ID != s.agents[0]["id"] || a.SourceID != "u-1" {
					t.Errorf("returned %+v, want the one agent %v", a, s.agents[0])
				}
				want := []string{"POST /api/v2/agents", "GET /api/v2/agents"}
				if !applied {
					want = append(want, "POST /api/v2/agents")
				}
				if strings.Join(s.calls, ",") != strings.Join(want, ",") {
					t.Errorf("calls %v, want %v", s.calls, want)
				}
			})
		}
	}
}

func TestCreateNotAppliedGivesUpAfterMaxAttempts(t *testing.T) {
	s := &createScript{faults: []step{{status: 500}, {status: 500}, {status: 500}}}
	e := newEnv(t, s, func(c *Config) { c.Token, c.Username, c.Password, c.MaxAttempts = "t", "", "", 3 })
	_, err := e.c.CreateAgent(context.Background(), &Agent{Name: "Ann", SourceID: "u-1", AgentSource: "bridge:test"})
	if err == nil || !strings.Contains(err.Error(), "not created: looked up after each of 3 attempts") {
		t.Fatalf("got %v", err)
	}
	if len(s.agents) != 0 || len(s.calls) != 6 {
		t.Errorf("agents %d calls %v", len(s.agents), s.calls)
	}
}

func TestDialErrorRetriedEvenForCreate(t *testing.T) {
	// A port with nothing listening: every attempt fails before the request is written.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	clock := newFakeClock()
	c, err := New(Config{BaseURL: "http://" + addr, Token: "t", MaxAttempts: 3}, WithClock(clock.Now), WithSleep(clock.Sleep))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateAgent(context.Background(), &Agent{Name: "Ann"})
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("got %v", err)
	}
	if !IsTransient(err) {
		t.Errorf("connection refused not transient: %v", err)
	}
	if n := statCount(c, "POST /api/v2/agents", 0); n != 3 {
		t.Errorf("network errors counted %d under status 0, want 3: %+v", n, c.Stats())
	}
}

func TestDeleteRetriedThen404IsDone(t *testing.T) {
	s := &script{steps: []step{{drop: true}, {status: 404, body: map[string]any{"message": "not found"}}}}
	e := newEnv(t, s, nil)
	if err := e.c.DeleteAgent(context.Background(), "0123456789abcdef0123456789abcdef"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	s2 := &script{steps: []step{{status: 404, body: map[string]any{"message": "not found"}}}}
	e2 := newEnv(t, s2, nil)
	if err := e2.c.DeleteAgent(context.Background(), "0123456789abcdef0123456789abcdef"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("first-try 404 must be ErrNotFound, got %v", err)
	}
}

func TestContextCancelStopsRetrying(t *testing.T) {
	s := &script{steps: []step{{status: 503, body: map[string]any{}}}}
	ctx, cancel := context.WithCancel(context.Background())
	e := newEnv(t, s, nil, WithSleep(func(ctx context.Context, d time.Duration) error {
		cancel()
		return ctx.Err()
	}))
	_, err := e.c.ListAgents(ctx, AgentFilter{})
	if !errors.Is(err, context.Canceled) || IsTransient(err) {
		t.Fatalf("got %v", err)
	}
	if s.Calls() != 1 {
		t.Errorf("calls %d", s.Calls())
	}
}

func TestConcurrencyBound(t *testing.T) {
	var inFlight, peak atomic.Int32
	release := make(chan struct{})
	arrived := make(chan struct{}, 100)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		arrived <- struct{}{}
		<-release
		inFlight.Add(-1)
		writeJSON(w, 200, okAgent)
	})
	e := newEnv(t, h, func(c *Config) { c.MaxConcurrency = 3; c.Token, c.Username, c.Password = "t", "", "" })
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { _, _ = e.c.GetAgent(context.Background(), "0123456789abcdef0123456789abcdef") })
	}
	// Three requests arrive; the others wait for a slot. Release them one by one.
	for range 3 {
		<-arrived
	}
	if got := inFlight.Load(); got != 3 {
		t.Errorf("in flight %d, want 3", got)
	}
	for range 10 {
		release <- struct{}{}
	}
	wg.Wait()
	if peak.Load() != 3 {
		t.Errorf("peak concurrency %d, want 3", peak.Load())
	}
}

func TestRateLimit(t *testing.T) {
	s := &script{steps: []step{{status: 200, body: okAgent}}}
	e := newEnv(t, s, func(c *Config) {
		c.RateLimit, c.Burst = 0.001, 1
		c.Token, c.Username, c.Password = "t", "", ""
	})
	ctx := context.Background()
	if _, err := e.c.GetAgent(ctx, "0123456789abcdef0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	// The bucket is empty and refills in 1000s: a call with a short deadline cannot start.
	ctx2, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := e.c.GetAgent(ctx2, "0123456789abcdef0123456789abcdef"); err == nil {
		t.Fatal("rate limit not applied")
	}
	if s.Calls() != 1 {
		t.Errorf("calls %d, want 1", s.Calls())
	}
}
