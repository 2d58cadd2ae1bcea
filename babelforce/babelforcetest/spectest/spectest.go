// Package spectest checks requests to a babelforce simulator, and its responses, against
// testdata/babelforce/openapi.yaml (trimmed from babelforce's published specs) with
// kin-openapi. It is for tests only and lives apart from babelforcetest so that the bridge
// binary, which runs the simulator for `bridge simulate` and `bridge demo`, does not link
// kin-openapi.
//
// Typical use:
//
//	v := spectest.New(t, sim.URL)
//	res := v.Do(t, spectest.Request{Method: "GET", Path: "/api/v2/agents", Token: tok})
package spectest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// SpecFile is the spec's path relative to the module root.
var SpecFile = filepath.Join("testdata", "babelforce", "openapi.yaml")

var formatsOnce sync.Once

// defineFormats makes kin-openapi check babelforce's id form: the spec says format uuid, and
// babelforce puts 32 lower-case hex characters without hyphens on the wire.
func defineFormats() {
	formatsOnce.Do(func() {
		openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(`^[0-9a-f]{32}$`))
		openapi3.DefineStringFormatValidator("email", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail))
	})
}

// SpecPath finds testdata/babelforce/openapi.yaml by walking up from the working directory
// to the directory holding go.mod, so it works from any package's test.
func SpecPath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find %s: working directory: %w", SpecFile, err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, SpecFile)
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("find %s in module root %s: %w", SpecFile, dir, err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find " + SpecFile + ": no go.mod above the working directory; run from inside the bridge module")
		}
		dir = parent
	}
}

// Load finds, loads and validates the spec, with babelforce's id and email formats defined.
func Load() (*openapi3.T, error) {
	p, err := SpecPath()
	if err != nil {
		return nil, err
	}
	defineFormats()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(p)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", p, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("validate %s: %w", p, err)
	}
	return doc, nil
}

// LoadT is Load that fails the test on error.
func LoadT(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// Validator sends requests to a server at a base URL and validates each request to an
// operation of the spec, and its response, against the spec.
type Validator struct {
	base   string
	router routers.Router
	hc     *http.Client
}

// New returns a Validator for the server at baseURL; it fails the test when the spec does not
// load.
func New(t testing.TB, baseURL string) *Validator {
	t.Helper()
	doc := LoadT(t)
	doc.Servers = openapi3.Servers{{URL: baseURL}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	return &Validator{base: baseURL, router: router, hc: &http.Client{Timeout: 10 * time.Second}}
}

// Request is one request to send.
type Request struct {
	Method string
	Path   string // with query, relative to the base URL
	// ContentType is sent when not empty; empty with a Body means application/json.
	ContentType string
	Body        []byte // nil: no body
	Token       string // sent as a bearer token when not empty
	// NoRoute: the operation is not in the spec on purpose; nothing is validated.
	NoRoute bool
	// InvalidRequest: the request breaks the spec on purpose; only the response is validated.
	InvalidRequest bool
}

// Response is what the server answered.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends r and returns the answer. Unless r.NoRoute, it fails the test when the operation is
// not in the spec, when the request does not match it (unless r.InvalidRequest) or when the
// response does not match it.
func (v *Validator) Do(t testing.TB, r Request) Response {
	t.Helper()
	ct := r.ContentType
	if ct == "" && r.Body != nil {
		ct = "application/json"
	}
	newReq := func() *http.Request {
		var rd io.Reader
		if r.Body != nil {
			rd = bytes.NewReader(r.Body)
		}
		req, err := http.NewRequest(r.Method, v.base+r.Path, rd)
		if err != nil {
			t.Fatalf("new request: %v", err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if r.Token != "" {
			req.Header.Set("Authorization", "Bearer "+r.Token)
		}
		return req
	}
	name := r.Method + " " + r.Path
	ctx := context.Background()
	var input *openapi3filter.RequestValidationInput
	if !r.NoRoute {
		req := newReq()
		route, pathParams, err := v.router.FindRoute(req)
		if err != nil {
			t.Fatalf("%s: not in the trimmed spec: %v", name, err)
		}
		input = &openapi3filter.RequestValidationInput{
			Request: req, PathParams: pathParams, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
		}
		if err := openapi3filter.ValidateRequest(ctx, input); err != nil && !r.InvalidRequest {
			t.Fatalf("%s: request does not match the spec: %v", name, err)
		}
	}
	res, err := v.hc.Do(newReq())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s: read body: %v", name, err)
	}
	if input != nil {
		input.Request = newReq()
		rv := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: input, Status: res.StatusCode, Header: res.Header,
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		rv.SetBodyBytes(b)
		if err := openapi3filter.ValidateResponse(ctx, rv); err != nil {
			t.Fatalf("%s: response %d does not match the spec: %v\nbody: %s", name, res.StatusCode, err, b)
		}
	}
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}
}
