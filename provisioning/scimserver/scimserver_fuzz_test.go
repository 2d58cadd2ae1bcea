package scimserver

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/babelforce/bridge/directory/store"
	"github.com/babelforce/bridge/internal/scimreplay"
)

const scimErrorSchema = "urn:ietf:params:scim:api:messages:2.0:Error"

// fuzzFixture is a handler over a fresh in-memory store holding two users and a group, so
// that fuzzed PATCH/PUT/DELETE requests reach existing resources: "{user}", "{user2}" and
// "{group}" in a fuzzed path or body stand for their ids.
type fuzzFixture struct {
	h                  http.Handler
	st                 *store.Store
	user, user2, group string
}

func newFuzzFixture(t *testing.T) *fuzzFixture {
	t.Helper()
	st, err := store.Open(context.Background(), ":memory:", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	h, err := New(st, Config{Tokens: []string{testToken}}, Options{
		OnChange: func(context.Context, string, []string) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	fx := &fuzzFixture{h: h, st: st}
	create := func(path, body string) string {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/scim+json")
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		if rr.Code != http.StatusCreated {
			t.Fatalf("fixture POST %s: %d %s", path, rr.Code, rr.Body.String())
		}
		var out struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(rr.Body.Bytes(), &out); err != nil || out.ID == "" {
			t.Fatalf("fixture POST %s: no id in %s", path, rr.Body.String())
		}
		return out.ID
	}
	fx.user = create("/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"userName":"fuzz.one@example.com","externalId":"ext-1","active":true,"displayName":"Fuzz One",
		"name":{"givenName":"Fuzz","familyName":"One"},
		"emails":[{"value":"fuzz.one@example.com","type":"work","primary":true},{"value":"home@example.com","type":"home"}],
		"phoneNumbers":[{"value":"+49 30 1234567","type":"work"}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales","manager":{"value":"m-1"}}}`)
	fx.user2 = create("/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"fuzz.two@example.com","active":"True"}`)
	fx.group = create("/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Fuzz Team",
		"members":[{"value":"`+fx.user+`"},{"value":"`+fx.user2+`"}]}`)
	return fx
}

func (fx *fuzzFixture) subst(s string) string {
	return strings.NewReplacer("{user}", fx.user, "{user2}", fx.user2, "{group}", fx.group).Replace(s)
}

// validMethod reports whether m is an HTTP token (net/http refuses other methods).
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c > 0x7e || c <= ' ' || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	return true
}

var replayVar = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)

// replaySeeds turns the recorded Okta and Entra ID sequences into fuzz seeds; ${var} becomes
// "{group}" for group variables and "{user}" for everything else.
func replaySeeds(f *testing.F) [][4]string {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "scim", "*", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no recorded SCIM sequences in testdata/scim (%v)", err)
	}
	vars := func(s string) string {
		return replayVar.ReplaceAllStringFunc(s, func(m string) string {
			name := replayVar.FindStringSubmatch(m)[1]
			if strings.Contains(name, "group") || strings.Contains(name, "team") {
				return "{group}"
			}
			return "{user}"
		})
	}
	var out [][4]string
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var rf scimreplay.File
		if err := json.Unmarshal(raw, &rf); err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		for _, st := range rf.Steps {
			ct := st.Headers["Content-Type"]
			if ct == "" && len(st.Body) > 0 {
				ct = "application/scim+json"
			}
			out = append(out, [4]string{st.Method, vars(st.Path), ct, vars(string(st.Body))})
		}
	}
	return out
}

// FuzzHandler sends one arbitrary authorised request to the whole SCIM handler. Every answer
// must be below 500 (a 500 is the recover of a panic or an unmapped error: a bug) except the
// deliberate 501 of the optional features bridge does not offer (/Bulk, /Me, .search); every
// 4xx/5xx must carry a SCIM error body whose status matches; every 2xx with a body must be
// JSON; a request must not hang; the store must still read as a directory afterwards.
func FuzzHandler(f *testing.F) {
	for _, s := range replaySeeds(f) {
		f.Add(s[0], s[1], s[2], s[3])
	}
	const ct = "application/scim+json"
	patch := func(ops string) string {
		return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":` + ops + `}`
	}
	for _, ops := range []string{
		`[{"op":"replace","path":"emails[type eq \"work\"].value","value":"new@example.com"}]`,
		`[{"op":"add","path":"emails[type eq \"other\"].value","value":"x@example.com"}]`,
		`[{"op":"remove","path":"emails[type eq \"work\"]"}]`,
		`[{"op":"remove","path":"emails[value eq \"nobody\"].value"}]`,
		`[{"op":"replace","path":"name.givenName","value":"Neu"}]`,
		`[{"op":"replace","path":"name.givenName","value":{"deep":[1,2,3]}}]`,
		`[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"m-2"}]`,
		`[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value","value":"m-3"}]`,
		`[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]`,
		`[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","value":{"department":"Ops"}}]`,
		`[{"op":"replace","value":{"active":"False","name.familyName":"X","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Y"}}]`,
		`[{"op":"replace","path":"active","value":"maybe"}]`,
		`[{"op":"replace","path":"active","value":1e400}]`,
		`[{"op":"replace","path":"userName","value":123456789012345678901234567890}]`,
		`[{"op":"replace","path":"emails[type eq \"work\"","value":"x"}]`,
		`[{"op":"replace","path":"emails[","value":"x"}]`,
		`[{"op":"replace","path":"]","value":"x"}]`,
		`[{"op":"replace","path":"","value":"x"}]`,
		`[{"op":"move","path":"userName","value":"x"}]`,
		`[{"op":"replace","path":"phoneNumbers","value":"not a list"}]`,
		`[{"op":"add","path":"emails","value":[{"value":"a@b.c","primary":"true"}]}]`,
		`[]`,
		`null`,
		`{}`,
		`[null, 1, "x"]`,
	} {
		f.Add(http.MethodPatch, "/Users/{user}", ct, patch(ops))
	}
	for _, ops := range []string{
		`[{"op":"remove","path":"members[value eq \"{user}\"]"}]`,
		`[{"op":"remove","path":"members[value eq \"x\"]"}]`,
		`[{"op":"remove","path":"members[value eq \"x\"].value"}]`,
		`[{"op":"add","path":"members","value":[{"value":"{user2}"},{"value":"{group}"},{"value":"missing"}]}]`,
		`[{"op":"add","path":"members","value":{"value":"{user}"}}]`,
		`[{"op":"add","path":"members","value":[{"value":123}]}]`,
		`[{"op":"replace","path":"members","value":[]}]`,
		`[{"op":"remove","path":"members"}]`,
		`[{"op":"remove","path":"members","value":[{"value":"{user}"}]}]`,
		`[{"op":"replace","path":"displayName","value":"Fuzz Team 2"}]`,
		`[{"op":"replace","value":{"id":"x","displayName":"Y","externalId":"e"}}]`,
	} {
		f.Add(http.MethodPatch, "/Groups/{group}", ct, patch(ops))
	}
	for _, q := range []string{
		`userName eq "a"`, `(`, `userName eq`, `a or b and`, `userName eq "fuzz.one@example.com" and active eq true`,
		`emails[type eq "work" and value co "@"]`, `emails[type eq "work"`, `name.givenName sw "F"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Sales"`,
		`meta.lastModified gt "2020-01-01T00:00:00Z"`, `not (userName pr)`, `userName eq 1e999`,
		`members[value eq "{user}"]`, `displayName eq "Fuzz Team"`, `id eq "{group}" and members[value eq "{user2}"]`,
		`active eq "True"`, `userName gt 5`, `)))`, `"`, "\xff\xfe",
	} {
		f.Add(http.MethodGet, "/Users?filter="+url.QueryEscape(q), "", "")
		f.Add(http.MethodGet, "/Groups?filter="+url.QueryEscape(q)+"&excludedAttributes=members", "", "")
	}
	f.Add(http.MethodPost, "/Users/.search", ct, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName eq \"a\"","startIndex":-5,"count":1e10}`)
	f.Add(http.MethodGet, "/Users?startIndex=-1&count=99999999999999999999", "", "")
	f.Add(http.MethodGet, "/Users?startIndex=0&count=-3&attributes=name.givenName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "", "")
	f.Add(http.MethodGet, "/Users/{user}?excludedAttributes=emails.value,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "", "")
	f.Add(http.MethodGet, "/Groups/{group}?attributes=members.value,displayName", "", "")
	f.Add(http.MethodPost, "/Users", ct, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"s@example.com","active":"False","emails":[{"value":"s@example.com","primary":"TRUE"}]}`)
	f.Add(http.MethodPost, "/Users", ct, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"n@example.com","active":12345678901234567890123}`)
	f.Add(http.MethodPost, "/Users", ct, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+"\xff\xfe\xc3"+`","displayName":"`+"\xed\xa0\x80"+`"}`)
	f.Add(http.MethodPost, "/Users", ct, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"d@example.com","name":`+strings.Repeat(`{"a":`, 200)+`1`+strings.Repeat(`}`, 200)+`}`)
	f.Add(http.MethodPost, "/Users", ct, strings.Repeat("[", 10000))
	f.Add(http.MethodPost, "/Users", ct, `{"userName":null}`)
	f.Add(http.MethodPost, "/Users", ct, `{"schemas":"urn:ietf:params:scim:schemas:core:2.0:User","userName":"x"}`)
	f.Add(http.MethodPost, "/Users", "text/plain", `userName=x`)
	f.Add(http.MethodPost, "/Users", ct, `{} {}`)
	f.Add(http.MethodPost, "/Groups", ct, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"G","members":[{"value":"{group}"},{"value":"{user}","type":"Group"}]}`)
	f.Add(http.MethodPost, "/Groups", ct, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Fuzz Team"}`)
	f.Add(http.MethodPut, "/Users/{user}", ct, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"fuzz.two@example.com"}`)
	f.Add(http.MethodPut, "/Groups/{group}", ct, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"G","members":[{"value":"{group}"}]}`)
	f.Add(http.MethodPut, "/Users/nope", ct, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x"}`)
	f.Add(http.MethodDelete, "/Groups/{group}", "", "")
	f.Add(http.MethodDelete, "/Users/{user}", "", "")
	f.Add(http.MethodDelete, "/Users/{user}/extra", "", "")
	f.Add(http.MethodPost, "/Bulk", ct, `{}`)
	f.Add(http.MethodGet, "/ServiceProviderConfig", "", "")
	f.Add(http.MethodGet, "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "", "")
	f.Add(http.MethodGet, "/ResourceTypes/User", "", "")
	f.Add(http.MethodGet, "/Me", "", "")
	f.Add(http.MethodGet, "/v2/users/", "", "")
	f.Add(http.MethodGet, "/nothing", "", "")
	f.Add("PROPFIND", "/Users", "", "")
	f.Add(http.MethodPatch, "/Users", ct, `{}`)

	f.Fuzz(func(t *testing.T, method, target, contentType, body string) {
		if !validMethod(method) || len(target) > 4096 {
			return
		}
		fx := newFuzzFixture(t)
		target = fx.subst(target)
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return // net/http never hands such a request to a handler
		}
		body = fx.subst(body)
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Method = method
		req.URL = u
		req.RequestURI = target
		if body != "" {
			req.Body = httpBody(body)
			req.ContentLength = int64(len(body))
		}
		req.Header.Set("Authorization", "Bearer "+testToken)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rr := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			fx.h.ServeHTTP(rr, req)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("%s %s: no answer after 20s (a hang); goroutines:\n%s", method, target, buf[:runtime.Stack(buf, true)])
		}
		checkSCIMResponse(t, method, u.Path, rr)
		fx.checkStore(t)
	})
}

// checkStore reads the store as the directory source: whatever a request stored must not
// make the next sync's directory read fail (one bad push must not stop every sync).
func (fx *fuzzFixture) checkStore(t *testing.T) {
	t.Helper()
	snap, err := fx.st.Read(context.Background())
	if err != nil {
		t.Fatalf("the store cannot be read as a directory after the request: %v", err)
	}
	seen := map[string]bool{}
	for _, u := range snap.Users {
		if u.ID == "" || seen[u.ID] {
			t.Fatalf("store snapshot: empty or repeated user id %q", u.ID)
		}
		seen[u.ID] = true
	}
}

func httpBody(s string) *readCloser { return &readCloser{Reader: bytes.NewReader([]byte(s))} }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// notImplemented reports whether path is an optional SCIM feature bridge deliberately answers
// with 501: /Bulk, /Me and the POST .search endpoints.
func notImplemented(path string) bool {
	canon, ok := canonicalPath(path)
	if !ok {
		return false
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(canon, "/"), "/")
	return first == "Bulk" || first == "Me" || first == ".search" || strings.HasSuffix(canon, "/.search")
}

func checkSCIMResponse(t *testing.T, method, path string, rr *httptest.ResponseRecorder) {
	t.Helper()
	status := rr.Code
	raw := rr.Body.Bytes()
	if status < 100 || status > 599 {
		t.Fatalf("%s %s: invalid HTTP status %d", method, path, status)
	}
	switch {
	case status == http.StatusNotImplemented && notImplemented(path):
	case status >= 500:
		t.Fatalf("%s %s: status %d (a panic or an unmapped error): %s", method, path, status, raw)
	}
	if status >= 400 {
		var e struct {
			Schemas []string `json:"schemas"`
			Status  any      `json:"status"`
			Detail  string   `json:"detail"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("%s %s: status %d without a JSON error body (%v): %q", method, path, status, err, raw)
		}
		found := false
		for _, s := range e.Schemas {
			found = found || s == scimErrorSchema
		}
		if !found {
			t.Fatalf("%s %s: status %d body lacks the SCIM error schema: %s", method, path, status, raw)
		}
		if s, ok := e.Status.(string); !ok || s != strconv.Itoa(status) {
			t.Fatalf("%s %s: status %d but the error body says status %#v: %s", method, path, status, e.Status, raw)
		}
		return
	}
	if status == http.StatusNoContent || len(bytes.TrimSpace(raw)) == 0 {
		return
	}
	if !json.Valid(raw) {
		t.Fatalf("%s %s: status %d with a body that is not JSON: %q", method, path, status, raw)
	}
}

// serveFuzz runs one authorised request against the fixture and checks the answer like
// FuzzHandler does.
func (fx *fuzzFixture) serveFuzz(t *testing.T, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	u, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatalf("test built a bad target %q: %v", target, err)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Method = method
	req.URL = u
	req.RequestURI = target
	if body != "" {
		req.Body = httpBody(body)
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", "application/scim+json")
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	rr := httptest.NewRecorder()
	fx.h.ServeHTTP(rr, req)
	checkSCIMResponse(t, method, u.Path, rr)
	return rr
}

// FuzzPatch aims at PATCH application: one operation with a fuzzed op, path and value (JSON
// text, or a string when it is not JSON) on the fixture's user (onGroup false) or group. The
// answer obeys FuzzHandler's rules; a successful PATCH is followed by a GET of the resource,
// which must succeed and return what the PATCH returned.
func FuzzPatch(f *testing.F) {
	for _, s := range []struct {
		group           bool
		op, path, value string
	}{
		{false, "replace", `emails[type eq "work"].value`, `"new@example.com"`},
		{false, "add", `emails[type eq "work"].value`, `"x@example.com"`},
		{false, "remove", `emails[type eq "work"]`, ``},
		{false, "remove", `emails[value eq "home@example.com"]`, ``},
		{false, "replace", `emails[type eq "work" and primary eq true].value`, `"y@example.com"`},
		{false, "replace", `emails[type eq "work"].primary`, `"True"`},
		{false, "add", `phoneNumbers[type eq "mobile"].value`, `"+49 30 1234567"`},
		{false, "replace", `name.givenName`, `"Neu"`},
		{false, "replace", `name`, `{"givenName":"A","familyName":"B"}`},
		{false, "replace", `name.givenName`, `{"x":[1,{"y":null}]}`},
		{false, "add", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`, `"m-2"`},
		{false, "add", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`, `"m-3"`},
		{false, "remove", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`, ``},
		{false, "replace", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`, `"Ops"`},
		{false, "replace", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`, `{"department":"X","manager":{"value":"m"}}`},
		{false, "replace", `urn:ietf:params:scim:schemas:core:2.0:User:userName`, `"core@example.com"`},
		{false, "replace", ``, `{"active":"False","name.familyName":"X","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Y"}`},
		{false, "replace", ``, `{"emails[type eq \"work\"].value":"z@example.com"}`},
		{false, "replace", `active`, `"maybe"`},
		{false, "replace", `active`, `1e400`},
		{false, "replace", `userName`, `123456789012345678901234567890`},
		{false, "replace", `userName`, `"fuzz.two@example.com"`},
		{false, "replace", `externalId`, `null`},
		{false, "replace", `id`, `"other"`},
		{false, "replace", `meta.version`, `"W/\"9\""`},
		{false, "replace", `emails[type eq "work"`, `"x"`},
		{false, "replace", `emails[`, `"x"`},
		{false, "replace", `]`, `"x"`},
		{false, "replace", `emails[type eq "work"].value.extra`, `"x"`},
		{false, "replace", `name.givenName.x`, `"x"`},
		{false, "move", `userName`, `"x"`},
		{false, "Replace", `PhoneNumbers`, `"not a list"`},
		{false, "add", `emails`, `[{"value":"a@b.c","primary":"true"}]`},
		{false, "add", `emails`, `{"value":"single@b.c"}`},
		{false, "remove", ``, ``},
		{false, "add", `groups`, `[{"value":"{group}"}]`},
		{false, "replace", `x509Certificates[value eq "a"].display`, `"d"`},
		{true, "remove", `members[value eq "{user}"]`, ``},
		{true, "remove", `members[value eq "x"]`, ``},
		{true, "remove", `members[value eq "x"].value`, ``},
		{true, "replace", `members[value eq "{user}"].display`, `"D"`},
		{true, "add", `members`, `[{"value":"{user2}"},{"value":"{group}"},{"value":"missing"}]`},
		{true, "add", `members`, `{"value":"{user}"}`},
		{true, "add", `members`, `[{"value":123}]`},
		{true, "add", `members`, `[{"value":"{group}","type":"User"}]`},
		{true, "replace", `members`, `[]`},
		{true, "remove", `members`, ``},
		{true, "remove", `members`, `[{"value":"{user}"}]`},
		{true, "replace", `displayName`, `"Fuzz Team 2"`},
		{true, "replace", `displayName`, `""`},
		{true, "replace", ``, `{"id":"x","displayName":"Y","externalId":"e"}`},
		{true, "add", `members[value eq "{user}"]`, `{"value":"{user}"}`},
	} {
		f.Add(s.group, s.op, s.path, s.value)
	}
	f.Fuzz(func(t *testing.T, onGroup bool, op, path, value string) {
		fx := newFuzzFixture(t)
		opDoc := map[string]any{"op": op}
		if path != "" {
			opDoc["path"] = fx.subst(path)
		}
		if value != "" {
			var v any
			if err := json.Unmarshal([]byte(fx.subst(value)), &v); err == nil {
				opDoc["value"] = json.RawMessage(fx.subst(value))
			} else {
				opDoc["value"] = value
			}
		}
		body, err := json.Marshal(map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{opDoc},
		})
		if err != nil {
			return // a value json.Marshal refuses (cannot come over the wire either)
		}
		target := "/Users/" + fx.user
		if onGroup {
			target = "/Groups/" + fx.group
		}
		rr := fx.serveFuzz(t, http.MethodPatch, target, string(body))
		fx.checkStore(t)
		if rr.Code != http.StatusOK {
			return
		}
		got := fx.serveFuzz(t, http.MethodGet, target, "")
		if got.Code != http.StatusOK {
			t.Fatalf("GET after a successful PATCH: %d %s", got.Code, got.Body.Bytes())
		}
		var patched, read map[string]any
		if err := json.Unmarshal(rr.Body.Bytes(), &patched); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got.Body.Bytes(), &read); err != nil {
			t.Fatal(err)
		}
		pj, _ := json.Marshal(patched)
		rj, _ := json.Marshal(read)
		if !bytes.Equal(pj, rj) {
			t.Fatalf("PATCH answered\n%s\nbut GET reads\n%s", pj, rj)
		}
	})
}

// FuzzFilter checks that a filter finds the same resources whether the store evaluates (part
// of) it in SQL or the handler evaluates it in memory: "not (not (F))" is never pushed down,
// so it must select what F selects. And "not (F)" must select exactly the resources F does
// not: a filter the server cannot evaluate (issue 17: `name eq "0"` made the library panic,
// which counted as "no match", so its negation listed everyone) must not answer a list.
func FuzzFilter(f *testing.F) {
	for _, q := range []string{
		`userName eq "fuzz.one@example.com"`, `userName eq "FUZZ.ONE@EXAMPLE.COM"`, `USERNAME EQ "Fuzz.One@Example.com"`,
		`id eq "{user}"`, `id eq "{USER}"`, `externalId eq "ext-1"`, `externalId eq "EXT-1"`,
		`userName eq "fuzz.one@example.com" and externalId eq "ext-1"`, `userName eq "fuzz.two@example.com" or id eq "{user}"`,
		`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "fuzz.one@example.com"`,
		`emails[type eq "work"].value eq "fuzz.one@example.com"`, `emails.value eq "HOME@example.com"`,
		`name.givenName eq "fuzz"`, `active eq true`, `active eq "True"`, `displayName eq "fuzz one"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales"`,
		`userName eq "fuzz.one@example.com "`, `userName eq ""`, `userName eq "\u0046uzz.one@example.com"`,
		`displayName eq "fuzz team"`, `displayName eq "Fuzz Team" and members[value eq "{user}"]`, `members.value eq "{user2}"`,
		// issue 17: complex attributes without a sub-attribute, wrong compare types
		`name eq "0"`, `emails eq "x"`, `meta gt "2020-01-01T00:00:00Z"`, `members eq "{user}"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "m-1"`,
		`name pr`, `userName eq 0`, `active lt true`, `meta.created gt "x"`, `meta.lastModified ge "2020-01-01T00:00:00Z"`,
	} {
		f.Add(false, q)
		f.Add(true, q)
	}
	f.Fuzz(func(t *testing.T, groups bool, q string) {
		if strings.ContainsAny(q, "\x00") || len(q) > 1000 {
			return
		}
		fx := newFuzzFixture(t)
		q = strings.NewReplacer("{USER}", strings.ToUpper(fx.user)).Replace(fx.subst(q))
		endpoint := "/Users"
		if groups {
			endpoint = "/Groups"
		}
		ids := func(filter string) (int, []string) {
			rr := fx.serveFuzz(t, http.MethodGet, endpoint+"?filter="+url.QueryEscape(filter), "")
			if rr.Code != http.StatusOK {
				return rr.Code, nil
			}
			var page struct {
				TotalResults int `json:"totalResults"`
				Resources    []struct {
					ID string `json:"id"`
				} `json:"Resources"`
			}
			if err := json.Unmarshal(rr.Body.Bytes(), &page); err != nil {
				t.Fatalf("list answer is not a ListResponse: %v: %s", err, rr.Body.Bytes())
			}
			var out []string
			for _, r := range page.Resources {
				out = append(out, r.ID)
			}
			if page.TotalResults != len(out) {
				t.Fatalf("filter %q: totalResults %d but %d resources", filter, page.TotalResults, len(out))
			}
			slices.Sort(out)
			return rr.Code, out
		}
		code, direct := ids(q)
		code2, inMemory := ids("not (not (" + q + "))")
		code3, negated := ids("not (" + q + ")")
		// (a fuzzed q may end or open a parenthesis, so a wrapped q can parse differently:
		// compare answers only when all three are lists)
		if code != http.StatusOK || code2 != http.StatusOK || code3 != http.StatusOK {
			return
		}
		if !slices.Equal(direct, inMemory) {
			t.Fatalf("filter %q selects %q, evaluated in memory %q", q, direct, inMemory)
		}
		_, all := ids("")
		both := append(slices.Clone(direct), negated...)
		slices.Sort(both)
		if !slices.Equal(both, all) {
			t.Fatalf("filter %q selects %q and its negation %q: together they must be every resource once (%q)", q, direct, negated, all)
		}
	})
}
