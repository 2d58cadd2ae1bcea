package babelforcetest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/babelforce/bridge/babelforce"
)

// Defaults of Options.
const (
	DefaultUsername  = "admin@example.com"
	DefaultPassword  = "simulator"
	DefaultSCIMToken = "scim-simulator-token"
	DefaultTokenTTL  = 12 * time.Hour
)

// Options configure a simulator. The zero value is usable.
type Options struct {
	// Username and Password are the Manager API credentials of the password grant
	// (defaults DefaultUsername, DefaultPassword).
	Username, Password string
	// SCIMToken is the long-lived bearer token accepted on every endpoint
	// (default DefaultSCIMToken).
	SCIMToken string
	// TokenTTL is the lifetime of issued access tokens (default 12h).
	TokenTTL time.Duration
	// Now is the clock for token expiry and timestamps (default time.Now).
	Now func() time.Time
	// Seed seeds the random fault decisions (same seed, same sequence).
	Seed int64
	// Faults is the initial fault configuration (none by default).
	Faults Faults
	// DefaultPageSize is the page size when a list request gives no max (default 10);
	// MaxPageSize caps max (default 100).
	DefaultPageSize, MaxPageSize int
}

type tokenInfo struct {
	expires time.Time
}

// Server is a running (or, from NewServer, not yet started) simulator. Its exported fields
// are set at construction and must not be changed while it serves.
type Server struct {
	// URL is the base URL. New sets it; after NewServer it is empty (answers then use the
	// request's Host) unless the caller sets it before serving.
	URL string
	// Username, Password are the password-grant credentials; SCIMToken the static token.
	Username, Password, SCIMToken string

	opts    Options
	now     func() time.Time
	ttl     time.Duration
	srv     *httptest.Server
	handler http.Handler
	routes  []route

	mu        sync.Mutex
	rng       *mrand.Rand
	faults    Faults
	failNext  []oneShot
	tokens    map[string]tokenInfo
	refreshes map[string]bool
	calls     map[string]int

	// Records and their indexes (index.go); seq numbers records in creation order.
	agents           map[string]*agentRec
	agentOrder       seqList[*agentRec]
	agentsBySource   keyIndex[*agentRec]
	agentsBySourceID keyIndex[*agentRec]
	agentsByEmail    keyIndex[*agentRec] // lower-cased
	groups           map[string]*groupRec
	groupOrder       []string
	users            map[string]*userRec
	userOrder        seqList[*userRec]
	usersByEmail     keyIndex[*userRec]
	usersByExt       keyIndex[*userRec]
	externalIDs      map[string]map[string]string
	scimConfig       babelforce.SCIMConfiguration
	sso              babelforce.SSOConfig
	seq              int64
}

// TB is what New and Client need of a test; *testing.T, *testing.B and testing.TB have it. It
// is an interface of this package rather than testing.TB so that the binaries that start a
// simulator (bridge simulate, bridge demo) do not link the testing package.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// New starts a simulator on a loopback httptest server for the test t, which closes it when
// it ends (t.Cleanup).
func New(t TB, opts Options) *Server {
	t.Helper()
	s := Start(opts)
	t.Cleanup(s.Close)
	return s
}

// Start starts a simulator on a loopback httptest server; call Close when done. Tests use
// New.
func Start(opts Options) *Server {
	s := NewServer(opts)
	s.srv = httptest.NewServer(s.handler)
	s.URL = s.srv.URL
	return s
}

// NewServer builds a simulator without starting it: serve Handler() yourself (the
// standalone `bridge simulate` command does). Options.Faults that are out of range are
// clamped off (use SetFaults to get the error).
func NewServer(opts Options) *Server {
	if opts.Username == "" {
		opts.Username = DefaultUsername
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	if opts.SCIMToken == "" {
		opts.SCIMToken = DefaultSCIMToken
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DefaultPageSize <= 0 {
		opts.DefaultPageSize = 10
	}
	if opts.MaxPageSize <= 0 {
		opts.MaxPageSize = 100
	}
	if opts.DefaultPageSize > opts.MaxPageSize {
		opts.DefaultPageSize = opts.MaxPageSize
	}
	s := &Server{
		Username:         opts.Username,
		Password:         opts.Password,
		SCIMToken:        opts.SCIMToken,
		opts:             opts,
		now:              opts.Now,
		ttl:              opts.TokenTTL,
		rng:              mrand.New(mrand.NewSource(opts.Seed)),
		tokens:           map[string]tokenInfo{},
		refreshes:        map[string]bool{},
		calls:            map[string]int{},
		agents:           map[string]*agentRec{},
		agentsBySource:   keyIndex[*agentRec]{},
		agentsBySourceID: keyIndex[*agentRec]{},
		agentsByEmail:    keyIndex[*agentRec]{},
		groups:           map[string]*groupRec{},
		users:            map[string]*userRec{},
		usersByEmail:     keyIndex[*userRec]{},
		usersByExt:       keyIndex[*userRec]{},
		externalIDs:      map[string]map[string]string{},
		scimConfig: babelforce.SCIMConfiguration{
			DefaultRoles: []string{},
			Features:     babelforce.SCIMFeatures{SCIM: true, Roles: true},
		},
	}
	if opts.Faults.validate() == nil {
		s.faults = opts.Faults
	}
	s.registerRoutes()
	s.handler = http.HandlerFunc(s.serveHTTP)
	return s
}

// Handler is the simulator's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// CloseClientConnections cuts every open connection to the httptest server started by New,
// requests in flight included (as a crash of either side would); a no-op for NewServer.
func (s *Server) CloseClientConnections() {
	if s.srv != nil {
		s.srv.CloseClientConnections()
	}
}

// Close stops the httptest server started by New (a no-op for NewServer).
func (s *Server) Close() {
	if s.srv != nil {
		s.srv.CloseClientConnections()
		s.srv.Close()
	}
}

// SetFaults replaces the fault configuration.
func (s *Server) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("set faults: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	return nil
}

// CurrentFaults returns the fault configuration in force.
func (s *Server) CurrentFaults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	f.Paths = append([]string(nil), f.Paths...)
	return f
}

// FailNext makes the next n requests on faulted paths (see Faults.Paths) fail with status
// (with Retry-After when retryAfter > 0 or status is 429), before any random fault.
// status 0 drops the connection without an answer.
func (s *Server) FailNext(n int, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, oneShot{status: status, retryAfter: retryAfter})
	}
}

// Calls returns the number of requests per "METHOD /path/template".
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// TotalCalls returns the number of requests counted.
func (s *Server) TotalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.calls {
		n += v
	}
	return n
}

// WriteCalls returns the number of non-GET requests under /api/ and /auth/.
func (s *Server) WriteCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeCallsLocked()
}

func (s *Server) writeCallsLocked() int {
	n := 0
	for k, v := range s.calls {
		if isWriteKey(k) {
			n += v
		}
	}
	return n
}

func isWriteKey(k string) bool {
	method, path, _ := strings.Cut(k, " ")
	if method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions {
		return false
	}
	return strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/auth/")
}

// ResetCalls zeroes the call counts.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int{}
}

// IssueToken returns a fresh access token, as the password grant would.
func (s *Server) IssueToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, _ := s.issueLocked()
	return tok
}

func (s *Server) issueLocked() (access, refresh string) {
	access = newID() + newID()
	refresh = newID() + newID()
	s.tokens[access] = tokenInfo{expires: s.now().Add(s.ttl)}
	s.refreshes[refresh] = true
	return access, refresh
}

// newID returns 32 lower-case hex characters from crypto/rand.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("babelforcetest: crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}

func (s *Server) stamp() string { return s.now().UTC().Format(time.RFC3339) }

// ---- routing ----

type params map[string]string

type handlerFunc func(w http.ResponseWriter, r *http.Request, p params)

type route struct {
	method   string
	template string
	segs     []string
	h        handlerFunc
}

func (s *Server) handle(method, template string, h handlerFunc) {
	s.routes = append(s.routes, route{method: method, template: template, segs: strings.Split(strings.Trim(template, "/"), "/"), h: h})
}

// match finds the most specific route: at the first position where two candidates differ,
// a literal segment beats a parameter.
func (s *Server) match(method string, segs []string) (*route, params) {
	var best *route
	for i := range s.routes {
		rt := &s.routes[i]
		if rt.method != method || len(rt.segs) != len(segs) {
			continue
		}
		ok := true
		for j, sg := range rt.segs {
			if !isParam(sg) && sg != segs[j] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if best == nil || moreSpecific(rt, best) {
			best = rt
		}
	}
	if best == nil {
		return nil, nil
	}
	p := params{}
	for j, sg := range best.segs {
		if isParam(sg) {
			p[sg[1:len(sg)-1]] = segs[j]
		}
	}
	return best, p
}

func isParam(seg string) bool { return strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") }

func moreSpecific(a, b *route) bool {
	for j := range a.segs {
		pa, pb := isParam(a.segs[j]), isParam(b.segs[j])
		if pa != pb {
			return !pa
		}
	}
	return false
}

func splitPath(escaped string) []string {
	raw := strings.Split(strings.Trim(escaped, "/"), "/")
	out := make([]string, len(raw))
	for i, seg := range raw {
		if u, err := url.PathUnescape(seg); err == nil {
			out[i] = u
		} else {
			out[i] = seg
		}
	}
	return out
}

type family int

const (
	famManager family = iota
	famSCIM
	famOAuth
	famSimulator
)

func familyOf(path string) family {
	switch {
	case path == "/auth/scim/v2/configuration":
		return famManager
	case strings.HasPrefix(path, "/auth/scim/"):
		return famSCIM
	case strings.HasPrefix(path, "/oauth/"):
		return famOAuth
	case strings.HasPrefix(path, "/_simulator/"):
		return famSimulator
	}
	return famManager
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	rt, p := s.match(r.Method, splitPath(r.URL.EscapedPath()))
	key := r.Method + " (unmatched)"
	if rt != nil {
		key = r.Method + " " + rt.template
	}
	fam := familyOf(path)

	s.mu.Lock()
	s.calls[key]++
	var shot *oneShot
	var latency time.Duration
	if fam != famSimulator && s.faultedLocked(path) {
		latency = s.faults.Latency
		if len(s.failNext) > 0 {
			shot = &s.failNext[0]
			s.failNext = s.failNext[1:]
		} else {
			shot = s.drawLocked()
		}
	}
	s.mu.Unlock()

	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if shot != nil && !shot.afterApply() {
		s.injectFault(w, r, fam, *shot)
		return
	}
	if rt == nil {
		s.writeError(w, r, http.StatusNotFound, "not_found", fmt.Sprintf("no route for %s %s", r.Method, path))
		return
	}
	if fam != famOAuth && !(fam == famSimulator && r.Method == http.MethodGet) {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="babelforce", error="invalid_token"`)
			s.writeError(w, r, http.StatusUnauthorized, "invalid_token", "a valid bearer token is required in the Authorization header")
			return
		}
	}
	if shot != nil { // a fault after the request was applied
		s.applyThenFail(w, r, fam, *shot, func(w http.ResponseWriter) { rt.h(w, r, p) })
		return
	}
	rt.h(w, r, p)
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return false
	}
	if tok == s.SCIMToken {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ti, ok := s.tokens[tok]
	if !ok {
		return false
	}
	if !s.now().Before(ti.expires) {
		delete(s.tokens, tok)
		return false
	}
	return true
}

// baseURL is the simulator's URL, or the one the request came in on.
func (s *Server) baseURL(r *http.Request) string {
	if s.URL != "" {
		return s.URL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// ---- responses ----

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeTyped(w, "application/json", status, v)
}

func writeTyped(w http.ResponseWriter, contentType string, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "babelforcetest: marshal: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// apiError is babelforce's error body (the published spec documents none; see doc.go).
type apiError struct {
	Success bool   `json:"success"`
	Code    string `json:"code"`
	Error   string `json:"error,omitempty"`
	Message string `json:"message"`
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// writeError answers in the error style of the path's API family.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	switch familyOf(r.URL.Path) {
	case famSCIM:
		writeSCIMError(w, status, scimTypeFor(code), msg)
	case famOAuth:
		writeJSON(w, status, oauthError{Error: code, Description: msg})
	default:
		e := apiError{Success: false, Code: code, Message: msg}
		if status == http.StatusUnauthorized {
			e.Error = code
		}
		writeJSON(w, status, e)
	}
}

func message(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "message": msg})
}

// decodeJSON reads a JSON body into v, answering 400/415 itself when it cannot.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			s.writeError(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type", fmt.Sprintf("content type %q is not supported: send application/json", ct))
			return false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, "bad_request", "read body: "+err.Error())
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		s.writeError(w, r, http.StatusBadRequest, "bad_request", "request body is empty: send a JSON object")
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		s.writeError(w, r, http.StatusBadRequest, "bad_request", "malformed JSON body: "+err.Error())
		return false
	}
	return true
}

// ---- paging ----

type pagination struct {
	Current    int    `json:"current"`
	Max        int    `json:"max"`
	MaxResults int    `json:"maxResults"`
	Pages      int    `json:"pages"`
	Total      int    `json:"total"`
	Next       string `json:"next,omitempty"`
}

// pageParams parses page and max; ok is false after it answered 400.
func (s *Server) pageParams(w http.ResponseWriter, r *http.Request) (page, size int, ok bool) {
	q := r.URL.Query()
	page, size = 1, s.opts.DefaultPageSize
	if v := q.Get("page"); v != "" {
		n, err := atoiStrict(v)
		if err != nil || n < 1 {
			s.writeError(w, r, http.StatusBadRequest, "bad_request", fmt.Sprintf("page %q must be an integer >= 1", v))
			return 0, 0, false
		}
		page = n
	}
	if v := q.Get("max"); v != "" {
		n, err := atoiStrict(v)
		if err != nil || n < 1 {
			s.writeError(w, r, http.StatusBadRequest, "bad_request", fmt.Sprintf("max %q must be an integer >= 1", v))
			return 0, 0, false
		}
		size = min(n, s.opts.MaxPageSize)
	}
	return page, size, true
}

func atoiStrict(v string) (int, error) {
	var n int
	if _, err := fmt.Sscanf(v, "%d", &n); err != nil {
		return 0, err
	}
	if fmt.Sprint(n) != strings.TrimLeft(v, "+") {
		return 0, fmt.Errorf("not an integer: %q", v)
	}
	return n, nil
}

// paginate slices total items and builds the pagination block.
func paginate(r *http.Request, total, page, size int) (from, to int, p pagination) {
	pages := (total + size - 1) / size
	p = pagination{Current: page, Max: size, MaxResults: size, Pages: pages, Total: total}
	from = min((page-1)*size, total)
	to = min(from+size, total)
	if page < pages {
		q := r.URL.Query()
		q.Set("page", fmt.Sprint(page+1))
		q.Set("max", fmt.Sprint(size))
		p.Next = r.URL.Path + "?" + q.Encode()
	}
	return from, to, p
}
