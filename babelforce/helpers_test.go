package babelforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock whose Sleep advances it and records the waits.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.sleeps = append(f.sleeps, d)
	f.mu.Unlock()
	return nil
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// tokenServer issues tokens "tok-1", "tok-2", ... and counts requests. expiresIn is written
// as expires_in unless nil.
type tokenServer struct {
	mu        sync.Mutex
	calls     int
	expiresIn any
	reject    bool
	forms     []map[string]string
}

func (ts *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	ts.mu.Lock()
	ts.calls++
	n := ts.calls
	form := map[string]string{}
	for k := range r.PostForm {
		form[k] = r.PostForm.Get(k)
	}
	ts.forms = append(ts.forms, form)
	reject := ts.reject
	exp := ts.expiresIn
	ts.mu.Unlock()
	if reject {
		writeJSON(w, 400, map[string]any{"error": "invalid_grant", "error_description": "Bad credentials"})
		return
	}
	ans := map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "bearer"}
	if exp != nil {
		ans["expires_in"] = exp
	}
	writeJSON(w, 200, ans)
}

func (ts *tokenServer) Calls() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.calls
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// testEnv is a client against a local handler with a fake clock.
type testEnv struct {
	c     *Client
	clock *fakeClock
	tok   *tokenServer
	srv   *httptest.Server
}

// newEnv starts api (the /api, /auth handler) plus a token endpoint and returns a client
// with fast, recorded retries. mod may change the config before New.
func newEnv(t *testing.T, api http.Handler, mod func(*Config), opts ...Option) *testEnv {
	t.Helper()
	e := &testEnv{clock: newFakeClock(), tok: &tokenServer{expiresIn: 3600}}
	mux := http.NewServeMux()
	mux.Handle("/oauth/token", e.tok)
	mux.Handle("/", api)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	cfg := Config{BaseURL: e.srv.URL, Username: "admin@example.com", Password: "s3cret-pw"}
	if mod != nil {
		mod(&cfg)
	}
	all := append([]Option{WithClock(e.clock.Now), WithSleep(e.clock.Sleep)}, opts...)
	c, err := New(cfg, all...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.c = c
	return e
}

func statCount(c *Client, endpoint string, status int) int {
	for _, s := range c.Stats() {
		if s.Endpoint == endpoint && s.Status == status {
			return s.Count
		}
	}
	return 0
}
