package scimserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/babelforce/bridge/directory/store"
	"github.com/babelforce/bridge/internal/scimreplay"
)

const testToken = "test-token-0123456789abcdef"

type change struct {
	Trigger string
	Users   []string
}

// recorder records OnChange calls; OnChange runs synchronously, so a call made during a
// request is recorded when the response has arrived.
type recorder struct {
	mu      sync.Mutex
	changes []change
	err     error
}

func (r *recorder) onChange(_ context.Context, trigger string, users []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, change{Trigger: trigger, Users: slices.Clone(users)})
	return r.err
}

func (r *recorder) take() []change {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.changes
	r.changes = nil
	return out
}

type fixture struct {
	t        testing.TB
	st       *store.Store
	h        http.Handler
	rec      *recorder
	requests []string
	mu       sync.Mutex
}

func newFixture(t testing.TB, cfg Config, opts Options) *fixture {
	t.Helper()
	st, err := store.Open(context.Background(), ":memory:", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{t: t, st: st, rec: &recorder{}}
	if cfg.Tokens == nil && cfg.TokenSHA256 == nil && !cfg.OIDC.Enabled() {
		cfg.Tokens = []string{testToken}
	}
	if opts.OnChange == nil {
		opts.OnChange = f.rec.onChange
	}
	if opts.OnRequest == nil {
		opts.OnRequest = func(method string, status int) {
			f.mu.Lock()
			f.requests = append(f.requests, method+" "+strconv.Itoa(status))
			f.mu.Unlock()
		}
	}
	h, err := New(st, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (f *fixture) do(method, path string, body any, headers ...string) response {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if rd != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	res := response{status: w.Code, header: w.Header(), raw: w.Body.Bytes()}
	if len(bytes.TrimSpace(res.raw)) > 0 {
		d := json.NewDecoder(bytes.NewReader(res.raw))
		d.UseNumber()
		if err := d.Decode(&res.body); err != nil {
			f.t.Fatalf("%s %s: response is not a JSON object: %v\n%s", method, path, err, res.raw)
		}
	}
	return res
}

// lookup follows a JSON-pointer-like path ("a/0/b", final "#" = array length).
func lookup(doc any, path string) (any, bool) { return scimreplay.Lookup(doc, path) }

func userBody(userName string, extra map[string]any) map[string]any {
	b := map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": userName,
		"active":   true,
	}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

func patchBody(ops ...map[string]any) map[string]any {
	return map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": ops,
	}
}

// assertSCIMError checks the RFC 7644 error body.
func assertSCIMError(t *testing.T, res response, status int, scimType string) {
	t.Helper()
	if res.status != status {
		t.Fatalf("status = %d, want %d: %s", res.status, status, res.raw)
	}
	if s, _ := lookup(res.body, "schemas/0"); s != "urn:ietf:params:scim:api:messages:2.0:Error" {
		t.Fatalf("not a SCIM error body: %s", res.raw)
	}
	if s, _ := lookup(res.body, "status"); s != strconv.Itoa(status) {
		t.Fatalf("error status = %v, want %q: %s", s, strconv.Itoa(status), res.raw)
	}
	if scimType != "" {
		if s, _ := lookup(res.body, "scimType"); s != scimType {
			t.Fatalf("scimType = %v, want %q: %s", s, scimType, res.raw)
		}
	}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/scim+json") {
		t.Fatalf("Content-Type = %q", ct)
	}
}

func jsonNumber(n int) json.Number { return json.Number(strconv.Itoa(n)) }

func jsonDecode(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	return d.Decode(v)
}
