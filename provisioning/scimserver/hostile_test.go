package scimserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
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

// TestPatchSizeCaps: a PATCH with more than MaxPatchOperations operations, or an attribute with
// more than MaxValues values, is refused before any work (issue 10: 8,000 operations took 56 s
// of CPU). A PATCH of 10,000 operations answers 400.
func TestPatchSizeCaps(t *testing.T) {
	f := newFixture(t, Config{}, Options{})
	id := createUser(t, f, "caps@example.com", nil)
	ops := func(n int) []map[string]any {
		out := make([]map[string]any, n)
		for i := range out {
			out[i] = map[string]any{"op": "replace", "path": "displayName", "value": fmt.Sprint("name ", i)}
		}
		return out
	}
	for _, n := range []int{10000, MaxPatchOperations + 1} {
		res := f.do(http.MethodPatch, "/Users/"+id, patchBody(ops(n)...))
		assertSCIMError(t, res, http.StatusBadRequest, "tooMany")
		if !strings.Contains(fmt.Sprint(res.body["detail"]), fmt.Sprintf("at most %d operations", MaxPatchOperations)) {
			t.Errorf("detail: %s", res.raw)
		}
	}
	if res := f.do(http.MethodPatch, "/Users/"+id, patchBody(ops(MaxPatchOperations)...)); res.status != http.StatusOK ||
		res.body["displayName"] != fmt.Sprint("name ", MaxPatchOperations-1) {
		t.Fatalf("PATCH with %d operations: %d %s", MaxPatchOperations, res.status, res.raw)
	}
	many := make([]any, MaxValues+1)
	for i := range many {
		many[i] = map[string]any{"value": fmt.Sprintf("e%d@example.com", i)}
	}
	assertSCIMError(t, f.do(http.MethodPatch, "/Users/"+id, patchBody(map[string]any{"op": "add", "path": "emails", "value": many})),
		http.StatusBadRequest, "tooMany")
	assertSCIMError(t, f.do(http.MethodPatch, "/Users/"+id, patchBody(map[string]any{"op": "add", "value": map[string]any{"emails": many}})),
		http.StatusBadRequest, "tooMany")
	assertSCIMError(t, f.do(http.MethodPost, "/Users", userBody("many@example.com", map[string]any{"emails": many})),
		http.StatusBadRequest, "tooMany")
}

// TestPatchRemovalRuns: consecutive removals of members by value (Okta removes one member per
// operation) are applied in one pass with the same result as one by one.
func TestPatchRemovalRuns(t *testing.T) {
	f := newFixture(t, Config{}, Options{})
	var ids []string
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		ids = append(ids, createUser(t, f, n+"@example.com", nil))
	}
	g := createGroup(t, f, "Runs", ids...)
	rm := func(id string) map[string]any {
		return map[string]any{"op": "remove", "path": `members[value eq "` + id + `"]`}
	}
	res := f.do(http.MethodPatch, "/Groups/"+g, patchBody(
		rm(ids[0]), rm(ids[2]), rm("not-a-member"),
		map[string]any{"op": "remove", "path": "members", "value": []any{map[string]any{"value": ids[3]}}},
		map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": ids[0]}}}, // breaks the run
		rm(ids[4]), rm(ids[0]),
	))
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.raw)
	}
	var got []string
	for _, m := range res.body["members"].([]any) {
		got = append(got, m.(map[string]any)["value"].(string))
	}
	want := []string{ids[1], ids[5]}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	// removing every member leaves none
	res = f.do(http.MethodPatch, "/Groups/"+g, patchBody(rm(ids[1]), rm(ids[5])))
	if res.status != http.StatusOK || res.body["members"] != nil {
		t.Fatalf("%d %s", res.status, res.raw)
	}
}
