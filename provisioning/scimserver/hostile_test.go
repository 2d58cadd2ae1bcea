package scimserver

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

// unavailableVerifier fails like the oidc package's verifier when the IdP cannot be asked.
type unavailableVerifier struct{}

type unavailableErr struct{}

func (unavailableErr) Error() string {
	return "identity provider unavailable: fetching keys: connection refused"
}
func (unavailableErr) Unavailable() bool { return true }

func (unavailableVerifier) Verify(context.Context, string) error {
	return errors.Join(errors.New("verify"), unavailableErr{})
}

// TestIdPUnavailableIs503: a JWT that cannot be checked because the IdP (JWKS) is down is a
// 503 with Retry-After, not a 401 that tells the IdP its credential is wrong (issue 10).
func TestIdPUnavailableIs503(t *testing.T) {
	f := newFixture(t, Config{Tokens: []string{testToken}, OIDC: OIDCConfig{Issuer: testIssuer, Audience: testAudience, RequiredRole: "r"}},
		Options{Verifier: unavailableVerifier{}})
	res := f.do(http.MethodGet, "/Users", nil, "Authorization", "Bearer a.b.c")
	assertSCIMError(t, res, http.StatusServiceUnavailable, "")
	if res.header.Get("Retry-After") != "30" {
		t.Errorf("Retry-After = %q", res.header.Get("Retry-After"))
	}
	// a static token still works, an unknown opaque token is still 401
	if res := f.do(http.MethodGet, "/Users", nil); res.status != http.StatusOK {
		t.Errorf("static token: %d", res.status)
	}
	assertSCIMError(t, f.do(http.MethodGet, "/Users", nil, "Authorization", "Bearer not-a-jwt-0123456789"), http.StatusUnauthorized, "")
}

// TestUnauthenticatedFloodLogsLittle: 500 unauthenticated requests write a few log lines, not
// 500; the next line after the pause says how many were left out (issue 10).
func TestUnauthenticatedFloodLogsLittle(t *testing.T) {
	var logs bytes.Buffer
	f := newFixture(t, Config{}, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f.h.(*server).now = func() time.Time { return now }
	for range 500 {
		f.do(http.MethodGet, "/Users", nil, "Authorization", "Bearer wrong-token-0123456789abcdef")
	}
	if n := strings.Count(logs.String(), "not authenticated"); n != authLogBurst {
		t.Fatalf("%d log lines for 500 unauthenticated requests, want %d:\n%s", n, authLogBurst, logs.String())
	}
	now = now.Add(authLogEvery)
	logs.Reset()
	f.do(http.MethodGet, "/Users", nil, "Authorization", "")
	if !strings.Contains(logs.String(), "not_logged_before=497") {
		t.Fatalf("the line after the pause does not count what was left out:\n%s", logs.String())
	}
}

// TestMadeUpMethodsAddNoMetricLabels: whatever method a client sends, OnRequest sees one of
// the standard methods or "other" (issue 10: every made-up method added a Prometheus series).
func TestMadeUpMethodsAddNoMetricLabels(t *testing.T) {
	f := newFixture(t, Config{}, Options{})
	r := rand.New(rand.NewPCG(1, 2))
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_!"
	for i := range 500 {
		m := make([]byte, 1+r.IntN(12))
		for j := range m {
			m[j] = letters[r.IntN(len(letters))]
		}
		auth := ""
		if i%2 == 0 {
			auth = "Bearer " + testToken
		}
		f.do(string(m), "/Users", nil, "Authorization", auth)
	}
	known := map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true,
		"OPTIONS": true, "CONNECT": true, "TRACE": true, "other": true}
	labels := map[string]bool{}
	for _, req := range f.requests {
		m, _, _ := strings.Cut(req, " ")
		if !known[m] {
			t.Fatalf("metric label method=%q", m)
		}
		labels[m] = true
	}
	if !labels["other"] || len(f.requests) != 500 {
		t.Fatalf("%d requests observed, labels %v", len(f.requests), labels)
	}
}
