package scimserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/babelforce/bridge/directory/store"
)

func createUser(t *testing.T, f *fixture, userName string, extra map[string]any) string {
	t.Helper()
	res := f.do(http.MethodPost, "/Users", userBody(userName, extra))
	if res.status != http.StatusCreated {
		t.Fatalf("create %s: %d %s", userName, res.status, res.raw)
	}
	return res.body["id"].(string)
}

func createGroup(t *testing.T, f *fixture, name string, members ...string) string {
	t.Helper()
	var ms []map[string]any
	for _, m := range members {
		ms = append(ms, map[string]any{"value": m})
	}
	res := f.do(http.MethodPost, "/Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": name,
		"members":     ms,
	})
	if res.status != http.StatusCreated {
		t.Fatalf("create group %s: %d %s", name, res.status, res.raw)
	}
	return res.body["id"].(string)
}

func TestErrorsAreSCIMBodies(t *testing.T) {
	f := newFixture(t, Config{MaxBodyBytes: 2048}, Options{})
	id := createUser(t, f, "ann@example.com", nil)
	f.rec.take()

	t.Run("duplicate userName, other case", func(t *testing.T) {
		assertSCIMError(t, f.do(http.MethodPost, "/Users", userBody("ANN@Example.COM", nil)), http.StatusConflict, "uniqueness")
	})
	t.Run("rename onto a taken userName", func(t *testing.T) {
		other := createUser(t, f, "bob@example.com", nil)
		res := f.do(http.MethodPatch, "/Users/"+other, patchBody(map[string]any{"op": "replace", "path": "userName", "value": "Ann@example.com"}))
		assertSCIMError(t, res, http.StatusConflict, "uniqueness")
	})
	t.Run("malformed JSON", func(t *testing.T) {
		assertSCIMError(t, f.do(http.MethodPost, "/Users", `{"userName": "x"`), http.StatusBadRequest, "invalidSyntax")
		assertSCIMError(t, f.do(http.MethodPatch, "/Users/"+id, `{"Operations": [}`), http.StatusBadRequest, "invalidSyntax")
		assertSCIMError(t, f.do(http.MethodPut, "/Users/"+id, `[1,2]`), http.StatusBadRequest, "invalidSyntax")
		assertSCIMError(t, f.do(http.MethodPost, "/Users", ``), http.StatusBadRequest, "invalidSyntax")
	})
	t.Run("missing userName", func(t *testing.T) {
		res := f.do(http.MethodPost, "/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}})
		assertSCIMError(t, res, http.StatusBadRequest, "invalidValue")
	})
	t.Run("oversize body", func(t *testing.T) {
		big := userBody("big@example.com", map[string]any{"title": strings.Repeat("x", 4096)})
		assertSCIMError(t, f.do(http.MethodPost, "/Users", big), http.StatusRequestEntityTooLarge, "")
		// without Content-Length (chunked): still cut off at the limit
		req, _ := http.NewRequest(http.MethodPost, "/Users", struct{ *bytes.Reader }{bytes.NewReader(bytes.Repeat([]byte(" "), 5000))})
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.ContentLength = -1
		w := newRecorderResponse(f, req)
		assertSCIMError(t, w, http.StatusRequestEntityTooLarge, "")
	})
	t.Run("unknown resource", func(t *testing.T) {
		assertSCIMError(t, f.do(http.MethodGet, "/Users/does-not-exist", nil), http.StatusNotFound, "")
		assertSCIMError(t, f.do(http.MethodPatch, "/Users/does-not-exist", patchBody(map[string]any{"op": "replace", "path": "active", "value": false})), http.StatusNotFound, "")
		assertSCIMError(t, f.do(http.MethodDelete, "/Groups/does-not-exist", nil), http.StatusNotFound, "")
	})
	t.Run("unknown path", func(t *testing.T) {
		assertSCIMError(t, f.do(http.MethodGet, "/Accounts", nil), http.StatusNotFound, "")
	})
	t.Run("method not allowed", func(t *testing.T) {
		res := f.do(http.MethodDelete, "/Users", nil)
		assertSCIMError(t, res, http.StatusMethodNotAllowed, "")
		if res.header.Get("Allow") != "GET, HEAD, POST" {
			t.Fatalf("Allow = %q", res.header.Get("Allow"))
		}
		assertSCIMError(t, f.do(http.MethodPost, "/ServiceProviderConfig", "{}"), http.StatusMethodNotAllowed, "")
	})
	t.Run("bulk", func(t *testing.T) {
		assertSCIMError(t, f.do(http.MethodPost, "/Bulk", "{}"), http.StatusNotImplemented, "")
	})
	t.Run("invalid filter", func(t *testing.T) {
		assertSCIMError(t, f.do(http.MethodGet, "/Users?filter="+url.QueryEscape(`userName eq`), nil), http.StatusBadRequest, "invalidFilter")
	})
	t.Run("invalid PATCH path", func(t *testing.T) {
		res := f.do(http.MethodPatch, "/Users/"+id, patchBody(map[string]any{"op": "replace", "path": "noSuchAttribute", "value": "x"}))
		assertSCIMError(t, res, http.StatusBadRequest, "")
	})
	t.Run("member that does not exist", func(t *testing.T) {
		res := f.do(http.MethodPost, "/Groups", map[string]any{
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "G",
			"members": []map[string]any{{"value": "ghost"}},
		})
		assertSCIMError(t, res, http.StatusBadRequest, "invalidValue")
	})
	t.Run("If-Match", func(t *testing.T) {
		res := f.do(http.MethodPatch, "/Users/"+id, patchBody(map[string]any{"op": "replace", "path": "title", "value": "x"}), "If-Match", `W/"99"`)
		assertSCIMError(t, res, http.StatusPreconditionFailed, "")
		cur := f.do(http.MethodGet, "/Users/"+id, nil)
		etag := cur.header.Get("ETag")
		if etag == "" || etag != cur.body["meta"].(map[string]any)["version"] {
			t.Fatalf("ETag %q vs meta.version %v", etag, cur.body["meta"])
		}
		res = f.do(http.MethodPatch, "/Users/"+id, patchBody(map[string]any{"op": "replace", "path": "title", "value": "x"}), "If-Match", etag)
		if res.status != http.StatusOK || res.header.Get("ETag") == etag {
			t.Fatalf("conditional patch: %d, etag %q → %q", res.status, etag, res.header.Get("ETag"))
		}
		assertSCIMError(t, f.do(http.MethodDelete, "/Users/"+id, nil, "If-Match", etag), http.StatusPreconditionFailed, "")
	})
	if got := f.rec.take(); len(got) != 2 { // the two successful writes: create bob, conditional patch
		t.Fatalf("OnChange after failures: %+v", got)
	}
}

func newRecorderResponse(f *fixture, req *http.Request) response {
	f.t.Helper()
	w := &captureWriter{header: http.Header{}}
	f.h.ServeHTTP(w, req)
	res := response{status: w.status, header: w.header, raw: w.body.Bytes()}
	if err := jsonDecode(res.raw, &res.body); err != nil {
		f.t.Fatalf("not JSON: %s", res.raw)
	}
	return res
}

type captureWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) WriteHeader(s int) {
	if c.status == 0 {
		c.status = s
	}
}
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = 200
	}
	return c.body.Write(b)
}

func TestListFiltersPagingAndProjection(t *testing.T) {
	f := newFixture(t, Config{}, Options{})
	empty := f.do(http.MethodGet, "/Users", nil)
	if !bytes.Contains(empty.raw, []byte(`"Resources":[]`)) || empty.body["totalResults"] != jsonNumber(0) {
		t.Fatalf("empty list must have Resources [] : %s", empty.raw)
	}
	var ids []string
	for i := range 12 {
		ids = append(ids, createUser(t, f, fmt.Sprintf("user%02d@example.com", i), map[string]any{
			"externalId": fmt.Sprintf("ext-%d", i),
			"active":     i%3 != 0,
			"name":       map[string]any{"givenName": "User", "familyName": fmt.Sprintf("Number%d", i)},
			"emails":     []map[string]any{{"value": fmt.Sprintf("u%d@work.example", i), "type": "work", "primary": true}},
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": []string{"Sales", "Support"}[i%2]},
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
		}))
	}
	list := func(query string) response {
		t.Helper()
		res := f.do(http.MethodGet, "/Users?"+query, nil)
		if res.status != http.StatusOK {
			t.Fatalf("%s: %d %s", query, res.status, res.raw)
		}
		return res
	}
	idsOf := func(res response) []string {
		var out []string
		for _, r := range res.body["Resources"].([]any) {
			out = append(out, r.(map[string]any)["id"].(string))
		}
		return out
	}
	// paging
	res := list("startIndex=5&count=4")
	if res.body["totalResults"] != jsonNumber(12) || res.body["startIndex"] != jsonNumber(5) || !slices.Equal(idsOf(res), ids[4:8]) {
		t.Fatalf("page: %s", res.raw)
	}
	res = list("startIndex=11&count=4")
	if !slices.Equal(idsOf(res), ids[10:12]) {
		t.Fatalf("last page: %v", idsOf(res))
	}
	res = list("count=0")
	if res.body["totalResults"] != jsonNumber(12) || len(res.body["Resources"].([]any)) != 0 {
		t.Fatalf("count=0: %s", res.raw)
	}
	assertSCIMError(t, f.do(http.MethodGet, "/Users?count=abc", nil), http.StatusBadRequest, "")

	filters := map[string][]string{
		`userName eq "USER03@example.com"`:                          {ids[3]},
		`externalId eq "ext-7"`:                                     {ids[7]},
		`id eq "` + ids[2] + `"`:                                    {ids[2]},
		`userName sw "user1"`:                                       {ids[10], ids[11]},
		`active eq false`:                                           {ids[0], ids[3], ids[6], ids[9]},
		`name.familyName eq "Number5"`:                              {ids[5]},
		`emails[type eq "work" and value eq "u4@work.example"]`:     {ids[4]},
		`emails.value co "u11@"`:                                    {ids[11]},
		`userName eq "user01@example.com" and active eq true`:       {ids[1]},
		`userName eq "user01@example.com" or externalId eq "ext-2"`: {ids[1], ids[2]},
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Sales" and active eq false`: {ids[0], ids[6]},
		`not (active eq true)`: {ids[0], ids[3], ids[6], ids[9]},
	}
	for filter, want := range filters {
		res := list("filter=" + url.QueryEscape(filter))
		if got := idsOf(res); !slices.Equal(got, want) || res.body["totalResults"] != jsonNumber(len(want)) {
			t.Errorf("filter %s = %v (total %v), want %v", filter, got, res.body["totalResults"], want)
		}
	}
	filters2 := map[string][]string{
		`name pr`:                                ids, // a complex attribute may be tested for presence
		`not (name pr)`:                          nil,
		`active eq "False"`:                      {ids[0], ids[3], ids[6], ids[9]}, // Entra's string booleans
		`meta.created gt "2000-01-01T00:00:00Z"`: ids,
	}
	for filter, want := range filters2 {
		res := list("filter=" + url.QueryEscape(filter))
		if got := idsOf(res); !slices.Equal(got, want) || res.body["totalResults"] != jsonNumber(len(want)) {
			t.Errorf("filter %s = %v (total %v), want %v", filter, got, res.body["totalResults"], want)
		}
	}
	// A filter the server cannot evaluate is an invalidFilter, never a list that is silently
	// empty (or, under not, silently everything) (issue 17).
	for _, filter := range []string{
		`name eq "0"`, `not (name eq "0")`, `emails eq "u1@work.example"`, `meta gt "2020-01-01T00:00:00Z"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "m-1"`,
		`userName eq "x" or name eq "0"`, `emails[type eq "work" and not (value eq 5)]`,
		`userName eq 5`, `active gt true`, `active eq "yes"`, `meta.created gt "yesterday"`, `meta.lastModified eq 1`,
		`x509Certificates eq "abc"`, `name.givenName eq true`,
	} {
		assertSCIMError(t, f.do(http.MethodGet, "/Users?filter="+url.QueryEscape(filter), nil), http.StatusBadRequest, "invalidFilter")
	}
	// in-memory filter with paging
	res = list("filter=" + url.QueryEscape("active eq true") + "&startIndex=3&count=2")
	if res.body["totalResults"] != jsonNumber(8) || !slices.Equal(idsOf(res), []string{ids[4], ids[5]}) {
		t.Fatalf("filtered page: %s", res.raw)
	}
	// attributes / excludedAttributes
	res = f.do(http.MethodGet, "/Users/"+ids[1]+"?attributes=userName,name.familyName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", nil)
	if res.body["userName"] != "user01@example.com" || res.body["emails"] != nil || res.body["active"] != nil ||
		res.body["name"].(map[string]any)["givenName"] != nil || res.body["name"].(map[string]any)["familyName"] != "Number1" ||
		res.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)["department"] != "Support" || res.body["id"] != ids[1] {
		t.Fatalf("attributes: %s", res.raw)
	}
	res = f.do(http.MethodGet, "/Users/"+ids[1]+"?excludedAttributes=emails,name.givenName", nil)
	if res.body["emails"] != nil || res.body["userName"] == nil || res.body["name"].(map[string]any)["givenName"] != nil ||
		res.body["name"].(map[string]any)["familyName"] != "Number1" {
		t.Fatalf("excludedAttributes: %s", res.raw)
	}
}

func TestPatchSemantics(t *testing.T) {
	f := newFixture(t, Config{}, Options{})
	id := createUser(t, f, "pat@example.com", map[string]any{
		"emails": []map[string]any{
			{"value": "pat@work.example", "type": "work", "primary": true},
			{"value": "pat@home.example", "type": "home"},
		},
	})
	patch := func(ops ...map[string]any) map[string]any {
		t.Helper()
		res := f.do(http.MethodPatch, "/Users/"+id, patchBody(ops...))
		if res.status != http.StatusOK {
			t.Fatalf("patch %v: %d %s", ops, res.status, res.raw)
		}
		return res.body
	}
	b := patch(map[string]any{"op": "add", "path": "emails", "value": []map[string]any{{"value": "pat@other.example", "type": "other"}}})
	if n, _ := lookup(b, "emails/#"); n != jsonNumber(3) {
		t.Fatalf("add email: %v", b["emails"])
	}
	b = patch(map[string]any{"op": "replace", "path": `emails[type eq "home"].primary`, "value": "True"})
	work, _ := lookup(b, "emails/0/primary")
	home, _ := lookup(b, "emails/1/primary")
	if work != false || home != true {
		t.Fatalf("only one primary: %v", b["emails"])
	}
	b = patch(map[string]any{"op": "remove", "path": `emails[type eq "other"]`})
	if n, _ := lookup(b, "emails/#"); n != jsonNumber(2) {
		t.Fatalf("remove filtered email: %v", b["emails"])
	}
	b = patch(map[string]any{"op": "add", "value": map[string]any{
		"name.givenName": "Pat",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":          map[string]any{"costCenter": "CC-1"},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division": "EMEA",
	}})
	if v, _ := lookup(b, "name/givenName"); v != "Pat" {
		t.Fatalf("no-path dotted key: %v", b)
	}
	ext, _ := b["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)
	if ext["costCenter"] != "CC-1" || ext["division"] != "EMEA" {
		t.Fatalf("extension via value object: %v", ext)
	}
	b = patch(map[string]any{"op": "replace", "path": "emails", "value": []map[string]any{{"value": "only@example.com", "type": "work"}}})
	if n, _ := lookup(b, "emails/#"); n != jsonNumber(1) {
		t.Fatalf("replace whole list: %v", b["emails"])
	}
	b = patch(map[string]any{"op": "remove", "path": "emails"})
	if _, ok := b["emails"]; ok {
		t.Fatalf("remove attribute: %v", b["emails"])
	}
	b = patch(map[string]any{"op": "replace", "path": "externalId", "value": "new-ext"})
	if b["externalId"] != "new-ext" {
		t.Fatalf("externalId: %v", b)
	}
	res := f.do(http.MethodPatch, "/Users/"+id, patchBody(map[string]any{"op": "remove"}))
	assertSCIMError(t, res, http.StatusBadRequest, "noTarget")
	res = f.do(http.MethodPatch, "/Users/"+id, patchBody(map[string]any{"op": "replace", "path": `emails[value gt "a"].type`, "value": "x"}))
	assertSCIMError(t, res, http.StatusBadRequest, "noTarget")
	res = f.do(http.MethodPatch, "/Users/"+id, map[string]any{"schemas": []string{"wrong"}, "Operations": []any{}})
	assertSCIMError(t, res, http.StatusBadRequest, "")
}

func TestNestedGroupChangesNotifyTransitiveUsers(t *testing.T) {
	f := newFixture(t, Config{}, Options{})
	a := createUser(t, f, "a@example.com", nil)
	b := createUser(t, f, "b@example.com", nil)
	c := createUser(t, f, "c@example.com", nil)
	inner := createGroup(t, f, "Inner", b, c)
	outer := createGroup(t, f, "Outer", a)
	f.rec.take()

	res := f.do(http.MethodPatch, "/Groups/"+outer, patchBody(map[string]any{"op": "add", "path": "members", "value": []map[string]any{{"value": inner}}}))
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.raw)
	}
	got := f.rec.take()
	if len(got) != 1 || !slices.Equal(got[0].Users, sorted(b, c)) {
		t.Fatalf("adding a nested group: %+v, want users %v", got, sorted(b, c))
	}
	types := map[any]any{}
	for _, m := range res.body["members"].([]any) {
		types[m.(map[string]any)["value"]] = m.(map[string]any)["type"]
	}
	if types[inner] != "Group" || types[a] != "User" {
		t.Fatalf("member types: %s", res.raw)
	}
	snap, err := f.st.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(snap.Memberships[c], sorted(inner, outer)) {
		t.Fatalf("transitive membership of c = %v", snap.Memberships[c])
	}
	// renaming the outer group affects everyone in it, through the nesting
	f.do(http.MethodPatch, "/Groups/"+outer, patchBody(map[string]any{"op": "replace", "path": "displayName", "value": "Outer 2"}))
	got = f.rec.take()
	if len(got) != 1 || !slices.Equal(got[0].Users, sorted(a, b, c)) {
		t.Fatalf("rename: %+v", got)
	}
	// deleting the inner group affects b and c
	f.do(http.MethodDelete, "/Groups/"+inner, nil)
	got = f.rec.take()
	if len(got) != 1 || !slices.Equal(got[0].Users, sorted(b, c)) || got[0].Trigger != "scim:delete_group" {
		t.Fatalf("delete: %+v", got)
	}
	// a user's groups are listed on the user
	res = f.do(http.MethodGet, "/Users/"+a, nil)
	if v, _ := lookup(res.body, "groups/0/value"); v != outer {
		t.Fatalf("user groups: %s", res.raw)
	}
}

func TestOnChangeErrorDoesNotFailTheWrite(t *testing.T) {
	var logs bytes.Buffer
	f := newFixture(t, Config{}, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	f.rec.err = errors.New("babelforce is down")
	res := f.do(http.MethodPost, "/Users", userBody("resilient@example.com", nil))
	if res.status != http.StatusCreated {
		t.Fatalf("%d %s", res.status, res.raw)
	}
	if _, err := f.st.Get(context.Background(), store.KindUser, res.body["id"].(string)); err != nil {
		t.Fatalf("user not stored: %v", err)
	}
	if len(f.rec.take()) != 1 || !strings.Contains(logs.String(), "babelforce is down") {
		t.Fatalf("OnChange error not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), testToken) {
		t.Fatal("token logged")
	}
}

// TestStoreWrittenBeforeOnChange checks the order: OnChange sees the stored state, and the
// request's cancellation (the IdP hanging up) does not cancel OnChange.
func TestStoreWrittenBeforeOnChange(t *testing.T) {
	var f *fixture
	var seen []string
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f = newFixture(t, Config{}, Options{OnChange: func(cctx context.Context, trigger string, users []string) error {
		u, err := f.st.Get(cctx, store.KindUser, users[0])
		cancel() // the client goes away while provisioning runs
		seen = append(seen, fmt.Sprintf("%s err=%v active=%v ctx=%v", trigger, err, u.Attributes["active"], cctx.Err()))
		return nil
	}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "/Users",
		strings.NewReader(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"order@example.com","active":false}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	w := &captureWriter{header: http.Header{}}
	f.h.ServeHTTP(w, req)
	want := "scim:create_user err=<nil> active=false ctx=<nil>"
	if w.status != http.StatusCreated || len(seen) != 1 || seen[0] != want {
		t.Fatalf("status %d, OnChange saw %v, want %q", w.status, seen, want)
	}
}

type panickyVerifier struct{}

func (panickyVerifier) Verify(context.Context, string) error { panic("boom") }

func TestPanics(t *testing.T) {
	// a panic in the request path becomes a SCIM 500
	f := newFixture(t, Config{Tokens: []string{testToken}}, Options{Verifier: panickyVerifier{}})
	res := f.do(http.MethodGet, "/Users", nil, "Authorization", "Bearer a.b.c")
	assertSCIMError(t, res, http.StatusInternalServerError, "")
	// a panic in OnChange does not fail the stored write
	f = newFixture(t, Config{}, Options{OnChange: func(context.Context, string, []string) error { panic("boom") }})
	if res := f.do(http.MethodPost, "/Users", userBody("p@example.com", nil)); res.status != http.StatusCreated {
		t.Fatalf("write failed by a panicking OnChange: %d %s", res.status, res.raw)
	}
}

func TestCanonicalPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "/",
		"/users":                  "/Users",
		"/USERS/":                 "/Users",
		"/Users/abc/":             "/Users/abc",
		"/groups/ABC":             "/Groups/ABC",
		"/v2/Users":               "/Users",
		"/serviceproviderconfig":  "/ServiceProviderConfig",
		"/ServiceProviderConfigs": "/ServiceProviderConfig",
		"/resourcetypes/User":     "/ResourceTypes/User",
		"/Users/.SEARCH":          "/Users/.search",
	} {
		if got, ok := canonicalPath(in); !ok || got != want {
			t.Errorf("canonicalPath(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := canonicalPath("/Accounts"); ok {
		t.Error("unknown endpoint accepted")
	}
}

func TestNormalize(t *testing.T) {
	body := map[string]any{
		"active": "False",
		"emails": []any{map[string]any{"value": "x", "primary": "TRUE"}},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"manager": "m-1"},
		"title": "True",
	}
	normalizeResource(body)
	if body["active"] != false || body["emails"].([]any)[0].(map[string]any)["primary"] != true || body["title"] != "True" ||
		body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)["manager"].(map[string]any)["value"] != "m-1" {
		t.Fatalf("normalized: %v", body)
	}
	p := map[string]any{"Operations": []any{
		map[string]any{"Op": "Replace", "Path": "active", "Value": "false"},
		map[string]any{"op": "Add", "path": `emails[type eq "work"].primary`, "value": "True"},
		map[string]any{"op": "Replace", "path": "active", "value": []any{map[string]any{"value": "True"}}},
		map[string]any{"op": "Replace", "path": "displayName", "value": "False"},
	}}
	normalizePatch(p)
	ops := p["Operations"].([]any)
	if ops[0].(map[string]any)["Op"] != "replace" || ops[0].(map[string]any)["Value"] != false ||
		ops[1].(map[string]any)["value"] != true || ops[2].(map[string]any)["value"] != true || ops[3].(map[string]any)["value"] != "False" {
		t.Fatalf("normalized patch: %v", ops)
	}
}

func sorted(s ...string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
