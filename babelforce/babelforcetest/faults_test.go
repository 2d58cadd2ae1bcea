package babelforcetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce"
)

func TestFailNextAndRetryAfter(t *testing.T) {
	sim := New(t, Options{})
	a := newAPI(t, sim).login()
	sim.FailNext(1, http.StatusTooManyRequests, 1500*time.Millisecond)
	res := a.get("/api/v2/agents").want(http.StatusTooManyRequests)
	if got := res.Header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After %q, want 2 (1.5s rounded up)", got)
	}
	if m := res.obj(); m["success"] != false || m["code"] != "rate_limited" {
		t.Errorf("429 body %s", res.Body)
	}
	a.get("/api/v2/agents").want(http.StatusOK)

	// a 429 always carries Retry-After, even with RetryAfter 0
	sim.FailNext(1, http.StatusTooManyRequests, 0)
	if got := a.get("/api/v2/agents").want(http.StatusTooManyRequests).Header.Get("Retry-After"); got != "0" {
		t.Errorf("Retry-After %q, want 0", got)
	}
	// 5xx and SCIM-style fault bodies on SCIM paths
	sim.FailNext(1, http.StatusServiceUnavailable, time.Second)
	res = a.get("/auth/scim/v2/Users").want(http.StatusServiceUnavailable)
	if res.Header.Get("Retry-After") != "1" || res.obj()["status"] != "503" {
		t.Errorf("SCIM 503: %v %s", res.Header, res.Body)
	}
	// faults hit the token endpoint too, with an OAuth error body
	sim.FailNext(1, http.StatusBadGateway, 0)
	res = a.form("/oauth/token", map[string][]string{"grant_type": {"password"}}).want(http.StatusBadGateway)
	if res.obj()["error"] == nil {
		t.Errorf("token 502 body %s", res.Body)
	}

	// status 0 drops the connection (a fresh connection: net/http retries a GET once by
	// itself when a reused keep-alive connection closes without an answer)
	sim.FailNext(1, 0, 0)
	req, _ := http.NewRequest(http.MethodGet, sim.URL+"/api/v2/agents", nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	if resp, err := hc.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped request answered %d", resp.StatusCode)
	}
}

func TestDropRate(t *testing.T) {
	sim := New(t, Options{Faults: Faults{DropRate: 1, Paths: []string{"/api/v2/agents"}}})
	tok := sim.IssueToken()
	get := func(path string) (int, error) {
		req, _ := http.NewRequest(http.MethodGet, sim.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	for range 3 {
		if st, err := get("/api/v2/agents"); err == nil {
			t.Fatalf("DropRate 1 answered %d", st)
		}
	}
	// outside Faults.Paths nothing happens, nor on /_simulator
	if st, err := get("/api/v2/users"); err != nil || st != http.StatusOK {
		t.Errorf("/api/v2/users: %d %v", st, err)
	}
	if err := sim.SetFaults(Faults{DropRate: 1}); err != nil {
		t.Fatal(err)
	}
	if st, err := get("/_simulator/stats"); err != nil || st != http.StatusOK {
		t.Errorf("/_simulator/stats under faults: %d %v", st, err)
	}
	if got := sim.Calls()["GET /api/v2/agents"]; got != 3 {
		t.Errorf("dropped requests counted %d, want 3", got)
	}
	if err := sim.SetFaults(Faults{DropRate: 0.7, Rate429: 0.7}); err == nil {
		t.Error("rates summing above 1 accepted")
	}
}

// statuses runs n GETs and returns the status sequence (0 for a dropped connection).
func statuses(t *testing.T, sim *Server, n int) string {
	t.Helper()
	tok := sim.IssueToken()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	var out []string
	for range n {
		req, _ := http.NewRequest(http.MethodGet, sim.URL+"/api/v2/agents", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			out = append(out, "0")
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "1" {
			t.Errorf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
		}
		out = append(out, fmt.Sprint(resp.StatusCode))
	}
	return strings.Join(out, ",")
}

func TestSeededFaultsAreDeterministic(t *testing.T) {
	f := Faults{Rate429: 0.2, Rate5xx: 0.2, DropRate: 0.1, RetryAfter: time.Second}
	s1 := statuses(t, New(t, Options{Seed: 42, Faults: f}), 60)
	s2 := statuses(t, New(t, Options{Seed: 42, Faults: f}), 60)
	s3 := statuses(t, New(t, Options{Seed: 7, Faults: f}), 60)
	if s1 != s2 {
		t.Errorf("same seed, different sequences:\n%s\n%s", s1, s2)
	}
	if s1 == s3 {
		t.Errorf("different seeds, same sequence %s", s1)
	}
	for _, st := range []string{"0", "200", "429"} {
		if !strings.Contains(s1, st) {
			t.Errorf("60 requests at these rates never gave %s: %s", st, s1)
		}
	}
	if !strings.Contains(s1, "500") && !strings.Contains(s1, "502") && !strings.Contains(s1, "503") {
		t.Errorf("no 5xx in %s", s1)
	}
}

func TestSimulatorEndpoints(t *testing.T) {
	sim := New(t, Options{})
	a := newAPI(t, sim).login()
	a.get("/api/v2/agents").want(http.StatusOK)
	a.post("/api/v2/agents", map[string]any{"name": "Ann"}).want(http.StatusCreated)

	// stats is open
	res := a.get("/_simulator/stats", unspecified(), withToken("")).want(http.StatusOK)
	var st Stats
	res.decode(&st)
	if st.Calls["GET /api/v2/agents"] != 1 || st.Calls["POST /api/v2/agents"] != 1 || st.Calls["POST /oauth/token"] != 1 || st.Writes != 1 || st.Agents != 1 {
		t.Errorf("stats %+v", st)
	}
	// faults need a token
	a.post("/_simulator/faults", map[string]any{"rate429": 1}, unspecified(), withToken("")).want(http.StatusUnauthorized)
	a.post("/_simulator/faults", map[string]any{"rate429": 1, "retryAfter": "3s", "paths": []string{"/api/v2/users"}}, unspecified()).want(http.StatusOK)
	if f := sim.CurrentFaults(); f.Rate429 != 1 || f.RetryAfter != 3*time.Second || len(f.Paths) != 1 {
		t.Errorf("faults after POST: %+v", f)
	}
	if got := a.get("/api/v2/users").want(http.StatusTooManyRequests).Header.Get("Retry-After"); got != "3" {
		t.Errorf("Retry-After %q", got)
	}
	a.get("/api/v2/agents").want(http.StatusOK)
	a.post("/_simulator/faults", map[string]any{"rate429": 2}, unspecified()).want(http.StatusBadRequest)
	a.post("/_simulator/faults", map[string]any{"latency": "soon"}, unspecified()).want(http.StatusBadRequest)
	res = a.get("/_simulator/faults", unspecified(), withToken("")).want(http.StatusOK)
	if m := res.obj(); m["retryAfter"] != "3s" {
		t.Errorf("GET faults %s", res.Body)
	}
}

func TestCallCounts(t *testing.T) {
	sim := New(t, Options{})
	a := newAPI(t, sim).login()
	ag := sim.PutAgent(babelforce.Agent{Name: "Ann"})
	a.get("/api/v2/agents/" + ag.ID).want(http.StatusOK)
	a.get("/api/v2/agents/" + ag.ID).want(http.StatusOK)
	a.put("/api/v2/agents/"+ag.ID, map[string]any{"number": "1"}).want(http.StatusOK)
	a.put("/api/v2/agents/"+ag.ID+"/disable", nil).want(http.StatusOK)
	a.get("/api/v2/agents/groups").want(http.StatusOK)
	a.get("/nowhere", unspecified()).want(http.StatusNotFound)
	a.get("/_simulator/stats", unspecified()).want(http.StatusOK)
	want := map[string]int{
		"POST /oauth/token":               1,
		"GET /api/v2/agents/{id}":         2,
		"PUT /api/v2/agents/{id}":         1,
		"PUT /api/v2/agents/{id}/disable": 1,
		"GET /api/v2/agents/groups":       1,
		"GET (unmatched)":                 1,
		"GET /_simulator/stats":           1,
	}
	got := sim.Calls()
	if len(got) != len(want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("calls[%q] = %d, want %d", k, got[k], v)
		}
	}
	if sim.WriteCalls() != 2 || sim.TotalCalls() != 8 {
		t.Errorf("WriteCalls %d (want 2), TotalCalls %d (want 8)", sim.WriteCalls(), sim.TotalCalls())
	}
	sim.ResetCalls()
	if len(sim.Calls()) != 0 || sim.WriteCalls() != 0 {
		t.Errorf("after reset: %v", sim.Calls())
	}
}

// TestConcurrentWrites creates agents from many goroutines (run with -race): every create
// lands once and the e-mail stays unique.
func TestConcurrentWrites(t *testing.T) {
	sim := New(t, Options{})
	tok := sim.IssueToken()
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := fmt.Sprintf("a%d@example.com", i%20) // every e-mail twice
			body := strings.NewReader(fmt.Sprintf(`{"name":"A %d","email":%q}`, i, email))
			req, _ := http.NewRequest(http.MethodPost, sim.URL+"/api/v2/agents", body)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[http.StatusCreated] != 20 || codes[http.StatusConflict] != 20 || len(sim.Agents()) != 20 {
		t.Errorf("codes %v, %d agents", codes, len(sim.Agents()))
	}
}

// TestClient checks sim.Client against the simulator under faults: the client's retries
// (shrunk by FastSleep) get every page.
func TestClient(t *testing.T) {
	sim := New(t, Options{Seed: 3})
	for i := range 250 {
		sim.PutAgent(babelforce.Agent{Name: fmt.Sprintf("Agent %d", i)})
	}
	c := sim.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sim.SetFaults(Faults{Rate429: 0.2, Rate5xx: 0.1, RetryAfter: time.Second, Paths: []string{"/api/v2/agents"}}); err != nil {
		t.Fatal(err)
	}
	agents, err := c.ListAgents(ctx, babelforce.AgentFilter{})
	if err != nil {
		t.Fatalf("ListAgents under faults: %v", err)
	}
	if len(agents) != 250 {
		t.Errorf("ListAgents: %d agents, want 250", len(agents))
	}
	if err := sim.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetAgent(ctx, strings.Repeat("f", 32))
	if !errors.Is(err, babelforce.ErrNotFound) {
		t.Errorf("GetAgent unknown: %v, want ErrNotFound", err)
	}
	var apiErr *babelforce.APIError
	if errors.As(err, &apiErr) && apiErr.Status != http.StatusNotFound {
		t.Errorf("APIError %+v", apiErr)
	}
	b, _ := json.Marshal(sim.Stats())
	t.Logf("stats: %s", b)
}

// CutRate and LostRate apply the request and then fail its answer: the write landed although
// the client saw no success.
func TestFaultsAfterApplying(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults Faults
	}{
		{"cut after headers", Faults{CutRate: 1}},
		{"lost", Faults{LostRate: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := New(t, Options{Seed: 7, Faults: tc.faults})
			tok := sim.IssueToken()
			hc := &http.Client{Timeout: 5 * time.Second}
			for i := range 8 {
				body := strings.NewReader(fmt.Sprintf(`{"name":"Agent %d","sourceId":"s-%d","agentSource":"test"}`, i, i))
				req, _ := http.NewRequest(http.MethodPost, sim.URL+"/api/v2/agents", body)
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err == nil {
					b, readErr := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case tc.faults.CutRate > 0 && readErr == nil:
						t.Fatalf("answer %d not cut: %s", resp.StatusCode, b)
					case tc.faults.CutRate > 0 && resp.StatusCode != http.StatusCreated:
						t.Errorf("cut answer has status %d, want the applied create's 201", resp.StatusCode)
					case tc.faults.LostRate > 0 && resp.StatusCode < 500:
						t.Fatalf("lost answer came back %d: %s", resp.StatusCode, b)
					}
				}
			}
			if got := len(sim.Agents()); got != 8 {
				t.Errorf("%d agents, want all 8 creates applied", got)
			}
		})
	}
	if err := (&Server{}).SetFaults(Faults{CutRate: 0.6, LostRate: 0.6}); err == nil {
		t.Error("rates summing above 1 accepted")
	}
	m := Mix(0.2, time.Second)
	if d := m.total() - 0.2; d > 1e-9 || d < -1e-9 {
		t.Errorf("Mix(0.2) totals %v", m.total())
	}
}
