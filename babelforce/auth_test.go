package babelforce

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bearerEcho answers every API call with an empty agent list and records the tokens seen.
type bearerEcho struct {
	mu     sync.Mutex
	tokens []string
	// reject makes the API answer 401 for these tokens.
	reject map[string]bool
}

func (b *bearerEcho) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	b.mu.Lock()
	b.tokens = append(b.tokens, tok)
	rej := b.reject[tok]
	b.mu.Unlock()
	if rej {
		writeJSON(w, 401, map[string]any{"code": "unauthorized", "message": "token expired"})
		return
	}
	writeJSON(w, 200, map[string]any{"items": []any{}})
}

func (b *bearerEcho) Tokens() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.tokens...)
}

func TestTokenFetchedOnceAndSent(t *testing.T) {
	api := &bearerEcho{}
	e := newEnv(t, api, nil)
	ctx := context.Background()
	for range 3 {
		if _, err := e.c.ListAgents(ctx, AgentFilter{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.tok.Calls(); got != 1 {
		t.Errorf("token calls = %d, want 1", got)
	}
	want := map[string]string{"grant_type": "password", "username": "admin@example.com", "password": "s3cret-pw", "client_id": "manager"}
	for k, v := range want {
		if got := e.tok.forms[0][k]; got != v {
			t.Errorf("token form %s = %q, want %q", k, got, v)
		}
	}
	for _, tok := range api.Tokens() {
		if tok != "tok-1" {
			t.Errorf("API saw bearer %q, want tok-1", tok)
		}
	}
	if n := statCount(e.c, "POST /oauth/token", 200); n != 1 {
		t.Errorf("stats count token calls %d, want 1", n)
	}
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn any
		noRenew   time.Duration // still cached after this long
		renew     time.Duration // renewed after this long
	}{
		{"expires_in 100s renews at 10%", 100, 89 * time.Second, 91 * time.Second},
		{"expires_in 43200s renews 60s before", 43200, 43139 * time.Second, 43141 * time.Second},
		{"missing expires_in means 3600s", nil, 3539 * time.Second, 3541 * time.Second},
		{"string expires_in", "600", 539 * time.Second, 541 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &bearerEcho{}
			e := newEnv(t, api, nil)
			e.tok.expiresIn = tt.expiresIn
			ctx := context.Background()
			start := e.clock.Now()
			if _, err := e.c.ListAgentGroups(ctx); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(start.Add(tt.noRenew).Sub(e.clock.Now()))
			if _, err := e.c.ListAgentGroups(ctx); err != nil {
				t.Fatal(err)
			}
			if got := e.tok.Calls(); got != 1 {
				t.Fatalf("after %s: token calls = %d, want 1", tt.noRenew, got)
			}
			e.clock.Advance(tt.renew - tt.noRenew)
			if _, err := e.c.ListAgentGroups(ctx); err != nil {
				t.Fatal(err)
			}
			if got := e.tok.Calls(); got != 2 {
				t.Fatalf("after %s: token calls = %d, want 2", tt.renew, got)
			}
			toks := api.Tokens()
			if toks[len(toks)-1] != "tok-2" {
				t.Errorf("last bearer %q, want tok-2", toks[len(toks)-1])
			}
		})
	}
}

func TestConcurrentCallersShareOneTokenFetch(t *testing.T) {
	api := &bearerEcho{}
	e := newEnv(t, api, func(c *Config) { c.MaxConcurrency = 4 })
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 20 {
		wg.Go(func() {
			if _, err := e.c.ListAgentTags(context.Background()); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d calls failed", failed.Load())
	}
	if got := e.tok.Calls(); got != 1 {
		t.Errorf("token calls = %d, want 1", got)
	}
}

func Test401ReauthenticatesAndRetriesOnce(t *testing.T) {
	api := &bearerEcho{reject: map[string]bool{"tok-1": true}}
	e := newEnv(t, api, nil)
	if _, err := e.c.ListAgentGroups(context.Background()); err != nil {
		t.Fatalf("want success after re-auth, got %v", err)
	}
	if got, want := api.Tokens(), []string{"tok-1", "tok-2"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("bearers %v, want %v", got, want)
	}
	if len(e.clock.Sleeps()) != 0 {
		t.Errorf("re-auth slept: %v", e.clock.Sleeps())
	}

	// A token that is rejected again: one re-auth, one retry, then the 401.
	api2 := &bearerEcho{reject: map[string]bool{"tok-1": true, "tok-2": true, "tok-3": true}}
	e2 := newEnv(t, api2, nil)
	_, err := e2.c.GetAgent(context.Background(), "0123456789abcdef0123456789abcdef")
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("want ErrUnauthorized, got %v", err)
	}
	if got := len(api2.Tokens()); got != 2 {
		t.Errorf("API calls = %d, want 2", got)
	}
	if got := e2.tok.Calls(); got != 2 {
		t.Errorf("token calls = %d, want 2", got)
	}
}

func TestStaticTokenNeverCallsTokenEndpoint(t *testing.T) {
	api := &bearerEcho{reject: map[string]bool{"static-tok": false}}
	e := newEnv(t, api, func(c *Config) { c.Username, c.Password, c.Token = "", "", "static-tok" })
	if _, err := e.c.ListAgents(context.Background(), AgentFilter{}); err != nil {
		t.Fatal(err)
	}
	if e.tok.Calls() != 0 {
		t.Errorf("token endpoint called %d times", e.tok.Calls())
	}
	if got := api.Tokens(); len(got) != 1 || got[0] != "static-tok" {
		t.Errorf("bearers %v", got)
	}
	// 401 with a static token: no re-auth possible, the error comes back at once.
	api.mu.Lock()
	api.reject["static-tok"] = true
	api.mu.Unlock()
	_, err := e.c.ListAgents(context.Background(), AgentFilter{})
	if !errors.Is(err, ErrUnauthorized) || len(api.Tokens()) != 2 {
		t.Errorf("got %v after %d calls", err, len(api.Tokens()))
	}
}

func TestRejectedCredentialsClearError(t *testing.T) {
	var logs bytes.Buffer
	api := &bearerEcho{}
	e := newEnv(t, api, nil, WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	e.tok.mu.Lock()
	e.tok.reject = true
	e.tok.mu.Unlock()
	_, err := e.c.ListAgents(context.Background(), AgentFilter{})
	if err == nil {
		t.Fatal("no error")
	}
	want := `babelforce rejected the credentials for user "admin@example.com": invalid_grant: Bad credentials`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("not ErrUnauthorized: %v", err)
	}
	if IsTransient(err) {
		t.Errorf("rejected credentials reported transient")
	}
	if strings.Contains(err.Error(), "s3cret-pw") || strings.Contains(logs.String(), "s3cret-pw") {
		t.Errorf("password leaked: %v / %s", err, logs.String())
	}
	if len(api.Tokens()) != 0 {
		t.Errorf("API called without a token")
	}
	if e.tok.Calls() != 1 {
		t.Errorf("rejected token request retried: %d calls", e.tok.Calls())
	}
	// Rejected credentials are not tried again for a minute (failed logins may lock the
	// account), then they are.
	_, err2 := e.c.ListAgents(context.Background(), AgentFilter{})
	if !errors.Is(err2, ErrUnauthorized) || e.tok.Calls() != 1 {
		t.Errorf("within a minute: %v after %d token calls", err2, e.tok.Calls())
	}
	e.clock.Advance(61 * time.Second)
	e.tok.mu.Lock()
	e.tok.reject = false
	e.tok.mu.Unlock()
	if _, err := e.c.ListAgents(context.Background(), AgentFilter{}); err != nil || e.tok.Calls() != 2 {
		t.Errorf("after a minute: %v after %d token calls", err, e.tok.Calls())
	}
}

func TestLogsNeverContainSecrets(t *testing.T) {
	var logs bytes.Buffer
	api := &bearerEcho{reject: map[string]bool{"tok-1": true}}
	e := newEnv(t, api, nil, WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if _, err := e.c.ListAgents(context.Background(), AgentFilter{}); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, secret := range []string{"s3cret-pw", "tok-1", "tok-2"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "endpoint=/api/v2/agents") || !strings.Contains(out, "status=401") || !strings.Contains(out, "attempt=2") {
		t.Errorf("debug lines lack method/endpoint/status/attempt:\n%s", out)
	}
}
