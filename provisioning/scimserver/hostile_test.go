package scimserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
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

// TestControlCharactersAreInvalid: control characters (NUL, CR/LF, C1) and bidirectional
// overrides in userName, names and e-mails, or text longer than MaxTextLength, are a 400
// invalidValue in POST, PUT and PATCH; nothing is stored (issue 10).
func TestControlCharactersAreInvalid(t *testing.T) {
	f := newFixture(t, Config{}, Options{})
	id := createUser(t, f, "clean@example.com", nil)
	for _, bad := range []string{"nul\x00@example.com", "cr\r\nlf@example.com", "c1\u0085@example.com",
		"bidi\u202e@example.com", "iso\u2066x\u2069@example.com", "del\x7f@example.com", strings.Repeat("x", MaxTextLength+1)} {
		for name, body := range map[string]map[string]any{
			"userName":    userBody(bad, nil),
			"displayName": userBody("ok@example.com", map[string]any{"displayName": bad}),
			"name":        userBody("ok@example.com", map[string]any{"name": map[string]any{"givenName": bad}}),
			"emails":      userBody("ok@example.com", map[string]any{"emails": []any{map[string]any{"value": bad}}}),
		} {
			if res := f.do(http.MethodPost, "/Users", body); res.status != http.StatusBadRequest || res.body["scimType"] != "invalidValue" {
				t.Errorf("POST with a bad %s %q: %d %s", name, bad, res.status, res.raw)
			}
			if res := f.do(http.MethodPut, "/Users/"+id, body); res.status != http.StatusBadRequest {
				t.Errorf("PUT with a bad %s: %d %s", name, res.status, res.raw)
			}
		}
		for _, op := range []map[string]any{
			{"op": "replace", "path": "userName", "value": bad},
			{"op": "replace", "path": "name.familyName", "value": bad},
			{"op": "add", "path": `emails[type eq "work"].value`, "value": bad},
			{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:displayName", "value": bad},
			{"op": "replace", "value": map[string]any{"userName": bad}},
			{"op": "replace", "value": map[string]any{"name": map[string]any{"givenName": bad}}},
		} {
			assertSCIMError(t, f.do(http.MethodPatch, "/Users/"+id, patchBody(op)), http.StatusBadRequest, "invalidValue")
		}
		g := f.do(http.MethodPost, "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": bad})
		assertSCIMError(t, g, http.StatusBadRequest, "invalidValue")
	}
	if res := f.do(http.MethodPost, "/Users", userBody("a\x00b@example.com", nil)); !strings.Contains(fmt.Sprint(res.body["detail"]), "userName: a value contains the control character U+0000") {
		t.Errorf("NUL in userName: %s", res.raw)
	}
	if res := f.do(http.MethodGet, "/Users/"+id, nil); res.body["userName"] != "clean@example.com" {
		t.Fatalf("user changed: %s", res.raw)
	}
	if res := f.do(http.MethodGet, "/Users", nil); res.body["totalResults"] != jsonNumber(1) {
		t.Fatalf("users stored: %s", res.raw)
	}
	// what is fine: non-Latin names, right-to-left text, tabs and newlines in other attributes
	res := f.do(http.MethodPost, "/Users", userBody("\u05d3\u05e0\u05d4@example.com", map[string]any{
		"name":      map[string]any{"givenName": "Zoë", "familyName": "\u0639\u0644\u064a"},
		"addresses": []any{map[string]any{"formatted": "1 Main St\nSpringfield", "type": "work"}},
	}))
	if res.status != http.StatusCreated {
		t.Fatalf("clean user refused: %d %s", res.status, res.raw)
	}
}

// TestContentType: a body must be application/scim+json or application/json (any parameters);
// anything else is 415 with a SCIM error body. A body without Content-Type is accepted.
func TestContentType(t *testing.T) {
	f := newFixture(t, Config{}, Options{})
	body := userBody("ct@example.com", nil)
	for _, ct := range []string{"text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "bogus/"} {
		assertSCIMError(t, f.do(http.MethodPost, "/Users", body, "Content-Type", ct), http.StatusUnsupportedMediaType, "")
	}
	for i, ct := range []string{"application/scim+json; charset=utf-8", "application/json", "APPLICATION/JSON; charset=UTF-8", ""} {
		res := f.do(http.MethodPost, "/Users", userBody(fmt.Sprintf("ct%d@example.com", i), nil), "Content-Type", ct)
		if res.status != http.StatusCreated {
			t.Errorf("Content-Type %q: %d %s", ct, res.status, res.raw)
		}
	}
}

// TestLocationsAbsoluteAndItemsPerPage: meta.location, Location and members' $ref are
// absolute URLs of the base the client used (scheme, host, mount path); itemsPerPage is the
// number of resources in the page; HEAD answers like GET without a body.
func TestLocationsAbsoluteAndItemsPerPage(t *testing.T) {
	f := newFixture(t, Config{}, Options{})
	srv := httptest.NewServer(http.StripPrefix("/scim/v2", f.h))
	defer srv.Close()
	do := func(method, path, body string, hdr ...string) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/scim+json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var doc map[string]any
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatalf("%s %s: %v %s", method, path, err, raw)
			}
		}
		return resp, doc
	}
	resp, doc := do(http.MethodPost, "/scim/v2/users/", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"loc@example.com"}`)
	id, _ := doc["id"].(string)
	want := srv.URL + "/scim/v2/Users/" + id
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") != want || doc["meta"].(map[string]any)["location"] != want {
		t.Fatalf("POST: %d Location %q meta %v, want %s", resp.StatusCode, resp.Header.Get("Location"), doc["meta"], want)
	}
	for range 2 {
		do(http.MethodPost, "/scim/v2/Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"loc%d@example.com"}`, rand.Int()))
	}
	_, doc = do(http.MethodGet, "/scim/v2/Users?count=2", "", "X-Forwarded-Proto", "https")
	list := doc["Resources"].([]any)
	if doc["itemsPerPage"] != float64(2) || len(list) != 2 || doc["totalResults"] != float64(3) ||
		!strings.HasPrefix(list[0].(map[string]any)["meta"].(map[string]any)["location"].(string), "https://"+strings.TrimPrefix(srv.URL, "http://")+"/scim/v2/Users/") {
		t.Fatalf("page: %v", doc)
	}
	_, doc = do(http.MethodGet, "/scim/v2/Users?startIndex=3&count=10", "")
	if doc["itemsPerPage"] != float64(1) {
		t.Fatalf("last page: %v", doc)
	}
	_, doc = do(http.MethodPost, "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Loc","members":[{"value":"`+id+`","type":"User"}]}`)
	if ref := doc["members"].([]any)[0].(map[string]any)["$ref"]; ref != want {
		t.Fatalf("$ref %v, want %s", ref, want)
	}
	for _, path := range []string{"/scim/v2/Users", "/scim/v2/Users/" + id, "/scim/v2/ServiceProviderConfig", "/scim/v2/Schemas"} {
		head, hb := do(http.MethodHead, path, "")
		get, _ := do(http.MethodGet, path, "")
		if head.StatusCode != http.StatusOK || hb != nil || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("HEAD %s: %d %v (Content-Type %q, GET's %q)", path, head.StatusCode, hb, head.Header.Get("Content-Type"), get.Header.Get("Content-Type"))
		}
	}
	if head, _ := do(http.MethodHead, "/scim/v2/Users/nope", ""); head.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD of a missing user: %d", head.StatusCode)
	}
}
