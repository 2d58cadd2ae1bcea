package babelforcetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

const specPath = "../../testdata/babelforce/openapi.yaml"

var formatsOnce sync.Once

// defineFormats makes kin-openapi check babelforce's id form: the spec says format uuid, and
// babelforce puts 32 lower-case hex characters without hyphens on the wire.
func defineFormats() {
	formatsOnce.Do(func() {
		openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(`^[0-9a-f]{32}$`))
		openapi3.DefineStringFormatValidator("email", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail))
	})
}

func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	defineFormats()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(specPath)
	if err != nil {
		t.Fatalf("load %s: %v", specPath, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("validate %s: %v", specPath, err)
	}
	return doc
}

// api talks to a simulator over real HTTP and validates every request it sends and every
// response it gets against the trimmed spec.
type api struct {
	t      testing.TB
	sim    *Server
	router routers.Router
	hc     *http.Client
	token  string
}

func newAPI(t testing.TB, sim *Server) *api {
	t.Helper()
	doc := loadSpec(t)
	doc.Servers = openapi3.Servers{{URL: sim.URL}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	a := &api{t: t, sim: sim, router: router, hc: &http.Client{Timeout: 10 * time.Second}}
	return a
}

// login gets a token with the password grant.
func (a *api) login() *api {
	a.t.Helper()
	res := a.form("/oauth/token", url.Values{
		"grant_type": {"password"}, "username": {a.sim.Username}, "password": {a.sim.Password}, "client_id": {"manager"},
	})
	res.want(http.StatusOK)
	var tok tokenResponse
	res.decode(&tok)
	a.token = tok.AccessToken
	return a
}

type result struct {
	t      testing.TB
	req    string
	Status int
	Header http.Header
	Body   []byte
}

func (r *result) want(status int) *result {
	r.t.Helper()
	if r.Status != status {
		r.t.Fatalf("%s: status %d, want %d; body %s", r.req, r.Status, status, r.Body)
	}
	return r
}

func (r *result) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		r.t.Fatalf("%s: decode %s: %v", r.req, r.Body, err)
	}
}

func (r *result) obj() map[string]any {
	r.t.Helper()
	var m map[string]any
	r.decode(&m)
	return m
}

type reqOpt func(*reqOpts)

type reqOpts struct {
	noReqValidation bool // the request is wrong on purpose
	noRoute         bool // the route is not in the spec on purpose
	token           *string
	contentType     string
	raw             []byte
}

func invalidRequest() reqOpt           { return func(o *reqOpts) { o.noReqValidation = true } }
func unspecified() reqOpt              { return func(o *reqOpts) { o.noRoute = true } }
func withToken(tok string) reqOpt      { return func(o *reqOpts) { o.token = &tok } }
func withContentType(ct string) reqOpt { return func(o *reqOpts) { o.contentType = ct } }
func rawBody(b string) reqOpt          { return func(o *reqOpts) { o.raw = []byte(b) } }

func (a *api) tokenOr(o reqOpts) string {
	if o.token != nil {
		return *o.token
	}
	return a.token
}

func (a *api) form(path string, v url.Values, opts ...reqOpt) *result {
	a.t.Helper()
	opts = append([]reqOpt{rawBody(v.Encode()), withContentType("application/x-www-form-urlencoded"), withToken("")}, opts...)
	return a.do(http.MethodPost, path, nil, opts...)
}

func (a *api) do(method, path string, body any, opts ...reqOpt) *result {
	a.t.Helper()
	var o reqOpts
	for _, f := range opts {
		f(&o)
	}
	var payload []byte
	switch {
	case o.raw != nil:
		payload = o.raw
	case body != nil:
		var err error
		if payload, err = json.Marshal(body); err != nil {
			a.t.Fatalf("marshal: %v", err)
		}
	}
	ct := o.contentType
	if ct == "" && payload != nil {
		ct = "application/json"
		if strings.HasPrefix(path, "/auth/scim/v2/") && !strings.HasSuffix(path, "/configuration") {
			ct = "application/scim+json"
		}
	}
	newReq := func() *http.Request {
		var rd io.Reader
		if payload != nil {
			rd = bytes.NewReader(payload)
		}
		req, err := http.NewRequest(method, a.sim.URL+path, rd)
		if err != nil {
			a.t.Fatalf("new request: %v", err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if tok := a.tokenOr(o); tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		return req
	}
	name := method + " " + path
	ctx := context.Background()
	var input *openapi3filter.RequestValidationInput
	if !o.noRoute {
		req := newReq()
		route, pathParams, err := a.router.FindRoute(req)
		if err != nil {
			a.t.Fatalf("%s: not in the trimmed spec: %v", name, err)
		}
		input = &openapi3filter.RequestValidationInput{
			Request: req, PathParams: pathParams, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
		}
		if err := openapi3filter.ValidateRequest(ctx, input); err != nil && !o.noReqValidation {
			a.t.Fatalf("%s: request does not match the spec: %v", name, err)
		}
	}
	res, err := a.hc.Do(newReq())
	if err != nil {
		a.t.Fatalf("%s: %v", name, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatalf("%s: read body: %v", name, err)
	}
	if input != nil {
		input.Request = newReq()
		rv := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: input, Status: res.StatusCode, Header: res.Header,
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		rv.SetBodyBytes(b)
		if err := openapi3filter.ValidateResponse(ctx, rv); err != nil {
			a.t.Fatalf("%s: response %d does not match the spec: %v\nbody: %s", name, res.StatusCode, err, b)
		}
	}
	return &result{t: a.t, req: name, Status: res.StatusCode, Header: res.Header, Body: b}
}

func (a *api) get(path string, opts ...reqOpt) *result {
	a.t.Helper()
	return a.do("GET", path, nil, opts...)
}
func (a *api) post(path string, body any, opts ...reqOpt) *result {
	a.t.Helper()
	return a.do("POST", path, body, opts...)
}
func (a *api) put(path string, body any, opts ...reqOpt) *result {
	a.t.Helper()
	return a.do("PUT", path, body, opts...)
}
func (a *api) patch(path string, body any, opts ...reqOpt) *result {
	a.t.Helper()
	return a.do("PATCH", path, body, opts...)
}
func (a *api) del(path string, opts ...reqOpt) *result {
	a.t.Helper()
	return a.do("DELETE", path, nil, opts...)
}

// fakeClock is an injectable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
