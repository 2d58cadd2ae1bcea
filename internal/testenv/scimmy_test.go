package testenv

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStartScimmy(t *testing.T) {
	seed := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(seed, []byte(`{"users":[{"id":"u1","userName":"ann","active":true}],"groups":[{"id":"g1","displayName":"team","members":[{"value":"u1","type":"User"}]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s := StartScimmy(t, ScimmyOptions{SeedJSON: seed, Token: "tok"})
	get := func(path, token string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp, body
	}
	if resp, _ := get("/Users", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without token: %d, want 401", resp.StatusCode)
	}
	resp, body := get("/Users?startIndex=1&count=10", "tok")
	if resp.StatusCode != 200 || body["totalResults"] != float64(1) {
		t.Errorf("users: %d %v", resp.StatusCode, body)
	}
	resp, body = get("/Groups", "tok")
	if resp.StatusCode != 200 || body["totalResults"] != float64(1) {
		t.Errorf("groups: %d %v", resp.StatusCode, body)
	}
	s.Stop()
	select {
	case <-s.proc.exited:
	default:
		t.Error("still running after Stop")
	}
	s.Stop() // twice is fine
}

func TestStartScimmyBadSeed(t *testing.T) {
	Need(t, "node", "npm")
	// A seed that is not JSON makes node exit while starting; StartScimmy reports the log.
	// Run the start in a sub-test whose failure we expect, via a fake testing.TB.
	seed := filepath.Join(t.TempDir(), "seed.json")
	_ = os.WriteFile(seed, []byte(`{not json`), 0o644)
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { _ = recover() }()
		StartScimmy(ft, ScimmyOptions{SeedJSON: seed})
	}()
	if !strings.Contains(ft.msg, "exited while starting") {
		t.Fatalf("StartScimmy with a broken seed: %q, want a failure saying node exited", ft.msg)
	}
}

// fatalRecorder turns Fatalf into a panic that the test recovers, remembering the message.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = format
	panic("fatal")
}

func (f *fatalRecorder) Fatal(args ...any) {
	f.msg = "fatal"
	panic("fatal")
}
