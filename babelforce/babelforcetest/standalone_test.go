package babelforcetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/babelforce/bridge/babelforce"
)

// TestNewServerHandler serves NewServer's handler the way `bridge simulate` does: without
// URL, answers take the base URL from the request's host.
func TestNewServerHandler(t *testing.T) {
	sim := NewServer(Options{Username: "ops@example.com", Password: "pw"})
	if sim.URL != "" {
		t.Fatalf("NewServer set URL %q", sim.URL)
	}
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/auth/sso/configuration", nil)
	req.Header.Set("Authorization", "Bearer "+sim.IssueToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c babelforce.SSOConfig
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.RedirectURIs["manager"] != srv.URL+"/auth/sso/callback/manager" {
		t.Errorf("redirect URIs %v, want them under %s", c.RedirectURIs, srv.URL)
	}
	sim.Close() // a no-op without New
}

func BenchmarkListAgentsPage(b *testing.B) {
	sim := New(b, Options{})
	for i := range 5000 {
		sim.PutAgent(babelforce.Agent{Name: fmt.Sprint("Agent ", i), Email: fmt.Sprintf("a%d@example.com", i), Groups: []babelforce.GroupRef{{Name: fmt.Sprint("G", i%20)}}})
	}
	tok := sim.IssueToken()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, sim.URL+"/api/v2/agents?page=7&max=100&q=agent", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkListUsersPage reads one page of the Manager API user list with 2000 users who are
// also agents.
func BenchmarkListUsersPage(b *testing.B) {
	sim := New(b, Options{})
	for i := range 2000 {
		email := fmt.Sprintf("u%d@example.com", i)
		sim.PutAgent(babelforce.Agent{Name: fmt.Sprint("Agent ", i), Email: email})
		sim.PutUser(babelforce.User{Email: email, Roles: []string{"agent"}})
	}
	tok := sim.IssueToken()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, sim.URL+"/api/v2/users?page=3&max=100", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
