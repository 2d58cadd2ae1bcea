package babelforcetest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce/babelforcetest/spectest"
)

// api talks to a simulator over real HTTP and validates every request it sends and every
// response it gets against the trimmed spec.
type api struct {
	t     testing.TB
	sim   *Server
	spec  *spectest.Validator
	token string
}

func newAPI(t testing.TB, sim *Server) *api {
	t.Helper()
	return &api{t: t, sim: sim, spec: spectest.New(t, sim.URL)}
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
	res := a.spec.Do(a.t, spectest.Request{
		Method: method, Path: path, ContentType: ct, Body: payload, Token: a.tokenOr(o),
		NoRoute: o.noRoute, InvalidRequest: o.noReqValidation,
	})
	return &result{t: a.t, req: method + " " + path, Status: res.Status, Header: res.Header, Body: res.Body}
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
