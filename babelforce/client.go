package babelforce

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
	"net/http/httptrace"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/babelforce/bridge/internal/httpx"
)

const (
	// maxBodyBytes bounds how much of a response body is read.
	maxBodyBytes = 64 << 20
	// defaultMaxPages guards list walks against a server that never stops paging.
	defaultMaxPages = 10000
	backoffBase     = 500 * time.Millisecond
	backoffCap      = 30 * time.Second
)

// Client talks to babelforce's Manager, SCIM, SSO and Agent Sync APIs. It is safe for
// concurrent use.
type Client struct {
	cfg      Config
	base     string
	hc       *http.Client
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
	jitter   func(n int64) int64
	log      *slog.Logger
	observer func(CallInfo)
	limiter  *rate.Limiter
	adaptive *adaptiveLimiter
	sem      chan struct{}
	tokens   *tokenSource
	maxPages int

	statsMu sync.Mutex
	stats   map[statKey]*CallStat
}

// Option customises a Client.
type Option func(*Client)

// WithClock injects the clock used for token expiry and the retry time budget.
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// WithSleep injects how the client waits between retries (tests use it to not wait real
// time). sleep must return ctx.Err() when ctx ends first.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(c *Client) { c.sleep = sleep }
}

// WithLogger sets the logger for one debug line per request. Secrets are never logged.
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// WithCallObserver registers f to be called after every HTTP request (each attempt), e.g. for
// metrics. f must be fast and safe for concurrent use.
func WithCallObserver(f func(CallInfo)) Option { return func(c *Client) { c.observer = f } }

// CallInfo describes one HTTP request (one attempt) for a call observer.
type CallInfo struct {
	// Endpoint is the method and path template, e.g. "GET /api/v2/agents/{id}".
	Endpoint string
	// Status is the HTTP status, 0 when no answer arrived.
	Status int
	// Duration is the time the request took.
	Duration time.Duration
	// Attempt is 1 for the first try, 2 for the first retry, ...
	Attempt int
	// Err is the network error, or nil when an answer arrived (whatever its status).
	Err error
}

// CallStat counts requests by endpoint and status.
type CallStat struct {
	// Endpoint is the method and path template, e.g. "GET /api/v2/agents/{id}".
	Endpoint string
	// Status is the HTTP status, 0 for network errors.
	Status int
	// Count is the number of requests (attempts included).
	Count int
	// Retries is how many of Count were retries (attempt > 1).
	Retries int
}

type statKey struct {
	endpoint string
	status   int
}

// New returns a client for cfg. It applies defaults, reads the *_file secrets and validates
// the configuration; it makes no request (the first call fetches the token).
func New(cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.LoadSecrets(); err != nil {
		return nil, fmt.Errorf("babelforce config: %w", err)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("babelforce config: %w", err)
	}
	c := &Client{
		cfg:      cfg,
		base:     strings.TrimRight(cfg.BaseURL, "/"),
		now:      time.Now,
		sleep:    httpx.Sleep,
		jitter:   rand.Int64N,
		log:      slog.New(slog.DiscardHandler),
		maxPages: defaultMaxPages,
		stats:    map[statKey]*CallStat{},
		sem:      make(chan struct{}, cfg.MaxConcurrency),
	}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		hc, err := newHTTPClient(cfg)
		if err != nil {
			return nil, err
		}
		c.hc = hc
	}
	if cfg.RateLimit > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(cfg.RateLimit), cfg.Burst)
	}
	c.adaptive = newAdaptiveLimiter(cfg.RateLimit, c.now, c.sleep)
	c.tokens = &tokenSource{c: c, lock: make(chan struct{}, 1)}
	return c, nil
}

func newHTTPClient(cfg Config) (*http.Client, error) {
	tr, err := httpx.Transport(cfg.CAFile, cfg.InsecureSkipVerify)
	if err != nil {
		return nil, fmt.Errorf("babelforce config: %w", err)
	}
	tr.MaxIdleConnsPerHost = max(cfg.MaxConcurrency, 2)
	return &http.Client{Transport: tr, Timeout: cfg.Timeout}, nil
}

// Stats returns the request counts so far, sorted by endpoint and status.
func (c *Client) Stats() []CallStat {
	c.statsMu.Lock()
	out := make([]CallStat, 0, len(c.stats))
	for _, s := range c.stats {
		out = append(out, *s)
	}
	c.statsMu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Endpoint != out[j].Endpoint {
			return out[i].Endpoint < out[j].Endpoint
		}
		return out[i].Status < out[j].Status
	})
	return out
}

// authKind says which bearer token a request carries.
type authKind int

const (
	authNone    authKind = iota // the token endpoint
	authManager                 // the Manager API (OAuth or static token)
	authSCIM                    // the SCIM API (SCIM token, else as authManager)
)

// request is one logical API call.
type request struct {
	method string
	tmpl   string // path template for stats, e.g. /api/v2/agents/{id}
	path   string // escaped path
	query  url.Values
	body   []byte
	ctype  string
	auth   authKind
	// idempotent marks calls that may be repeated after a network error or any 5xx even if
	// the server may have applied them. Creates are not: see Client.create.
	idempotent bool
}

func (r *request) endpoint() string { return r.method + " " + r.tmpl }

// idempotentPOST lists the POST endpoints whose effect does not change when repeated (they
// set a state); every other POST is a create and is not repeated when it may have been applied.
var idempotentPOST = map[string]bool{
	"/api/v2/agents/bulk/enable":             true,
	"/api/v2/agents/bulk/disable":            true,
	"/api/v2/agents/groups/{groupId}/agents": true,
	"/api/v2/users/enable":                   true,
	"/api/v2/users/disable":                  true,
	"/api/v2/users/delete":                   true,
	"/api/v2/users/roles":                    true,
	"/api/v2/users/roles/remove":             true,
}

// response is a successful (2xx) answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// newRequest builds a request; body is marshalled to JSON when not nil.
func newRequest(method, tmpl, path string, body any) (*request, error) {
	r := &request{method: method, tmpl: tmpl, path: path, auth: authManager,
		idempotent: method != http.MethodPost || idempotentPOST[tmpl]}
	if strings.HasPrefix(tmpl, scimBase) {
		r.auth = authSCIM
	}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("babelforce: %s %s: encode body: %w", method, tmpl, err)
		}
		r.body = b
		r.ctype = "application/json"
	}
	return r, nil
}

// call runs a JSON request and decodes a 2xx answer into out (when not nil).
func (c *Client) call(ctx context.Context, method, tmpl, path string, query url.Values, body, out any) error {
	r, err := newRequest(method, tmpl, path, body)
	if err != nil {
		return err
	}
	r.query = query
	return c.callRequest(ctx, r, out)
}

// callRequest runs r and decodes the answer into out.
func (c *Client) callRequest(ctx context.Context, r *request, out any) error {
	resp, err := c.execute(ctx, r)
	if err != nil {
		return err
	}
	return c.decode(r, resp, out)
}

func (c *Client) decode(r *request, resp *response, out any) error {
	if out == nil || len(bytes.TrimSpace(resp.body)) == 0 {
		if out != nil {
			if _, ok := out.(*messageEnvelope); !ok {
				return fmt.Errorf("babelforce: %s %s: empty answer (status %d)", r.method, r.path, resp.status)
			}
		}
		return nil
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return fmt.Errorf("babelforce: %s %s: decode answer: %w", r.method, r.path, err)
	}
	if m, ok := out.(interface{ failed() (bool, string) }); ok {
		if failed, msg := m.failed(); failed {
			return &APIError{Status: resp.status, Code: "unsuccessful", Message: msg, Method: r.method, Path: r.path}
		}
	}
	return nil
}

// execute sends r with authentication, rate limit, concurrency bound and retries. It returns
// the 2xx answer, or an error: *APIError for an error answer, a wrapped network error, or
// a "giving up" error wrapping the last of those.
func (c *Client) execute(ctx context.Context, r *request) (*response, error) {
	start := c.now()
	var slept time.Duration
	reauthed := false
	attempt := 0
	tries := 0 // attempts counted against MaxAttempts (the re-auth retry is free)
	for {
		attempt++
		tries++
		resp, status, token, wrote, err := c.attempt(ctx, r, attempt)
		if err == nil && status >= 200 && status < 300 {
			return resp, nil
		}
		var lastErr error
		retry := false
		switch {
		case err != nil:
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, fmt.Errorf("babelforce: %s %s: %w", r.method, r.path, ctxErr)
			}
			var ae *authError
			var le *limitError
			if errors.As(err, &ae) {
				return nil, err
			}
			if errors.As(err, &le) {
				return nil, fmt.Errorf("babelforce: %s %s: %w", r.method, r.path, err)
			}
			if r.auth != authNone && token == "" {
				// The token fetch failed (and did its own retries).
				return nil, err
			}
			lastErr = fmt.Errorf("babelforce: %s %s: %w", r.method, r.path, err)
			if httpx.IsTLSError(err) {
				return nil, lastErr
			}
			if !r.idempotent && wrote {
				return nil, &maybeAppliedError{err: fmt.Errorf("babelforce: %s %s: the connection failed after the request was sent, so it may have been applied: %w", r.method, r.path, err)}
			}
			retry = true
		default:
			apiErr := parseAPIError(r.method, r.path, status, resp.body)
			lastErr = apiErr
			if status == http.StatusUnauthorized && !reauthed && c.tokens.canRenew(r.auth) {
				reauthed = true
				c.tokens.invalidate(token)
				c.log.DebugContext(ctx, "babelforce token rejected, re-authenticating", "endpoint", r.endpoint())
				tries--
				continue
			}
			if status == http.StatusNotFound && r.method == http.MethodDelete && attempt > 1 {
				// An earlier attempt of this delete may have been applied before its answer was lost.
				return &response{status: status, header: resp.header}, nil
			}
			switch {
			case notProcessedStatus(status):
				retry = true // not processed: safe even for creates
			case transientStatus(status) && r.idempotent:
				retry = true
			case transientStatus(status):
				return nil, &maybeAppliedError{err: apiErr}
			}
			if !retry {
				return nil, apiErr
			}
		}
		if tries >= c.cfg.MaxAttempts {
			return nil, c.giveUp(r, attempt, start, slept, status, lastErr, "")
		}
		wait, fromServer := time.Duration(0), false
		if resp != nil {
			wait, fromServer = httpx.RetryAfter(resp.header, c.now())
		}
		if !fromServer {
			wait = c.backoff(tries)
		}
		elapsed := max(c.now().Sub(start), slept)
		if elapsed+wait > c.cfg.MaxRetryTime {
			why := ""
			if fromServer {
				why = fmt.Sprintf("; the server asked to wait %s, beyond max_retry_time %s", wait, c.cfg.MaxRetryTime)
			}
			return nil, c.giveUp(r, attempt, start, slept, status, lastErr, why)
		}
		c.log.DebugContext(ctx, "babelforce retry", "endpoint", r.endpoint(), "attempt", attempt, "status", status, "wait", wait)
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("babelforce: %s %s: waiting to retry: %w", r.method, r.path, err)
		}
		slept += wait
	}
}

func (c *Client) giveUp(r *request, attempts int, start time.Time, slept time.Duration, status int, last error, why string) error {
	elapsed := max(c.now().Sub(start), slept).Round(time.Millisecond)
	st := "no answer"
	if status != 0 {
		st = fmt.Sprintf("status %d", status)
	}
	return fmt.Errorf("babelforce: %s %s: giving up after %d attempts in %s (max_attempts %d, max_retry_time %s), last %s%s: %w",
		r.method, r.path, attempts, elapsed, c.cfg.MaxAttempts, c.cfg.MaxRetryTime, st, why, last)
}

// backoff is exponential backoff with full jitter for the n-th try (1-based).
func (c *Client) backoff(n int) time.Duration {
	ceil := backoffBase << min(n-1, 16)
	if ceil > backoffCap || ceil <= 0 {
		ceil = backoffCap
	}
	return time.Duration(c.jitter(int64(ceil) + 1))
}

// attempt sends r once. It returns the answer (any status), or err for a failure before an
// answer arrived; token is the bearer token used ("" when getting one failed) and wrote
// whether the request was completely written to the connection.
func (c *Client) attempt(ctx context.Context, r *request, attempt int) (resp *response, status int, token string, wrote bool, err error) {
	switch r.auth {
	case authManager:
		token, err = c.tokens.get(ctx)
	case authSCIM:
		if c.cfg.SCIMToken != "" {
			token = c.cfg.SCIMToken
		} else {
			token, err = c.tokens.get(ctx)
		}
	}
	if err != nil {
		return nil, 0, "", false, err
	}
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	var wroteMu sync.Mutex
	trace := &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) {
		wroteMu.Lock()
		wrote = info.Err == nil
		wroteMu.Unlock()
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), r.method, u, body)
	if err != nil {
		return nil, 0, token, false, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("User-Agent", "babelforce-bridge")

	if err := c.adaptive.wait(ctx); err != nil {
		return nil, 0, token, false, err
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, token, false, ctx.Err()
	}
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			<-c.sem
			return nil, 0, token, false, &limitError{err}
		}
	}
	began := c.now()
	hr, err := c.hc.Do(req)
	if err == nil {
		var b []byte
		b, err = io.ReadAll(io.LimitReader(hr.Body, maxBodyBytes))
		hr.Body.Close()
		status = hr.StatusCode
		resp = &response{status: hr.StatusCode, header: hr.Header, body: b}
		if err != nil {
			// The answer was cut off: treat it as a network error.
			resp, status = nil, 0
			err = fmt.Errorf("read answer: %w", err)
		}
	}
	<-c.sem
	if resp != nil {
		ra, _ := httpx.RetryAfter(resp.header, c.now())
		c.adaptive.observe(resp.status, ra)
	}
	took := c.now().Sub(began)
	wroteMu.Lock()
	w := wrote
	wroteMu.Unlock()
	c.record(ctx, r, status, took, attempt, err)
	return resp, status, token, w, err
}

// limitError is the client-side rate limiter refusing to wait (the context ends first).
type limitError struct{ err error }

func (e *limitError) Error() string { return "client-side rate limit (rate_limit): " + e.err.Error() }
func (e *limitError) Unwrap() error { return e.err }

// record counts, observes and logs one attempt.
func (c *Client) record(ctx context.Context, r *request, status int, took time.Duration, attempt int, err error) {
	ep := r.endpoint()
	c.statsMu.Lock()
	k := statKey{ep, status}
	s := c.stats[k]
	if s == nil {
		s = &CallStat{Endpoint: ep, Status: status}
		c.stats[k] = s
	}
	s.Count++
	if attempt > 1 {
		s.Retries++
	}
	c.statsMu.Unlock()
	if c.observer != nil {
		c.observer(CallInfo{Endpoint: ep, Status: status, Duration: took, Attempt: attempt, Err: err})
	}
	if err != nil {
		c.log.DebugContext(ctx, "babelforce request", "method", r.method, "endpoint", r.tmpl,
			"status", status, "duration", took, "attempt", attempt, "error", err.Error())
		return
	}
	c.log.DebugContext(ctx, "babelforce request", "method", r.method, "endpoint", r.tmpl,
		"status", status, "duration", took, "attempt", attempt)
}

// maybeAppliedError is the failure of a create that may have reached babelforce: the
// connection broke after the request was sent, or the answer was a 5xx other than 503.
// Sending it again could make a duplicate, so Client.create looks the object up first.
type maybeAppliedError struct{ err error }

func (e *maybeAppliedError) Error() string { return e.err.Error() }
func (e *maybeAppliedError) Unwrap() error { return e.err }

// create runs the create request r, decoding the answer into out. When the create may have
// been applied although it failed (*maybeAppliedError), it waits a backoff and calls lookup,
// which reports whether the object exists now (and then fills out); only when it does not is
// the create sent again, within max_attempts and max_retry_time. So no retry makes a
// duplicate: a create babelforce applied is found, not repeated. A nil lookup means the object
// cannot be found again (no key to look for): the error is returned as it is.
func (c *Client) create(ctx context.Context, r *request, out any, lookup func(context.Context) (bool, error)) error {
	start := c.now()
	var slept time.Duration
	for try := 1; ; try++ {
		err := c.callRequest(ctx, r, out)
		var maybe *maybeAppliedError
		if !errors.As(err, &maybe) || lookup == nil {
			return err
		}
		wait := c.backoff(try)
		if sleepErr := c.sleep(ctx, wait); sleepErr != nil {
			return fmt.Errorf("%w; waiting to look it up: %w", err, sleepErr)
		}
		slept += wait
		found, lookErr := lookup(ctx)
		if lookErr != nil {
			return fmt.Errorf("%w; looking up whether it was created failed too: %w", err, lookErr)
		}
		if found {
			c.log.DebugContext(ctx, "babelforce create was applied although its answer was lost", "endpoint", r.endpoint(), "attempt", try)
			return nil
		}
		if try >= c.cfg.MaxAttempts || max(c.now().Sub(start), slept) >= c.cfg.MaxRetryTime {
			return fmt.Errorf("%w (not created: looked up after each of %d attempts)", err, try)
		}
		c.log.DebugContext(ctx, "babelforce create not applied, sending it again", "endpoint", r.endpoint(), "attempt", try)
	}
}
