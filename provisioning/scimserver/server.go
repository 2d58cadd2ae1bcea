// Package scimserver is bridge's inbound SCIM 2.0 endpoint (RFC 7643/7644): the service
// provider that Okta, Microsoft Entra ID and other IdPs push users and groups to. What they push
// is written to directory/store first; then Options.OnChange is told which users changed so the
// reconciler can provision exactly those users right away.
//
// # What is elimity-com/scim's and what is ours
//
// The protocol core is github.com/elimity-com/scim (the version pinned in go.mod): routing of
// the resource endpoints, the User, enterprise User and Group schemas, /Schemas and
// /ResourceTypes, validation of POST and PUT bodies and of each PATCH operation (op, path,
// value) against the schemas, list responses, SCIM error bodies for what it refuses, and the
// ETag header and meta.version from the version our handler returns. Our resourceHandler
// (handlers.go) plugs into its extension point, scim.ResourceHandler, and connects it to the
// store; WithBaseURL (when Options.BaseURL is set) and WithLogger are used as well.
//
// The rest is ours because the library has no extension point for it. TestElimityLimits checks
// each reason below against the pinned version and fails when an upgrade lifts one, so that our
// code for it can go:
//
//   - Filters (filter.go). Before the handler is called, the library validates a list filter
//     against the core schema and each extension separately and without the common attributes:
//     `urn:...:enterprise:2.0:User:department eq "x" and active eq true`, `externalId eq "x"`
//     and `meta.lastModified gt ...` are refused; and its evaluator cannot apply
//     `emails.value co "x"` to a multi-valued attribute. So the wrapper takes the filter out of
//     GET /Users and /Groups and the handler parses it (scim2/filter-parser, the parser the
//     library uses too), checks it against the schemas and evaluates it, with equality
//     conditions pushed down to the store's SQL.
//   - PATCH application (patch.go, primary.go). The library validates the operations and hands
//     them to ResourceHandler.Patch: applying them is the handler's job by the library's design.
//     Ours applies value-filter paths (`emails[type eq "work"].value`), enterprise extension
//     paths and members add/remove, and keeps one primary value per multi-valued attribute.
//   - Request fixes before the library validates (normalize.go, request.go): Entra's string
//     booleans ("active": "False") and bare manager ids, PATCH op names in any letter case; the
//     media type, a body size limit, caps on PATCH operations and values, control characters and
//     bidirectional overrides in text. The library reads the *http.Request itself, so the
//     wrapper decodes the body, fixes it and encodes it again for the library.
//   - Response fixes (response.go; serviceProviderConfig in this file): the library writes
//     locations relative to a fixed base URL and itemsPerPage as the requested count; ours makes
//     locations absolute for the base the client used (behind a proxy too) and itemsPerPage the
//     number of resources returned. Its ServiceProviderConfig always says ETags are unsupported;
//     the handler supports ETags and If-Match, so the document is corrected.
//   - The attributes and excludedAttributes parameters of GET (project in handlers.go): the
//     library ignores them.
//   - Around it, as any http.Handler is wrapped: endpoint paths in any letter case and with a
//     trailing slash, 405 with Allow, bearer token and JWT authentication, a panic guard,
//     request metrics, and SCIM error bodies for every failure of ours.
//
// Not offered, answered with SCIM errors: /Bulk and /Me (501), POST .search (501: the
// library's ResourceSearcher would validate its filter with the limits above), and queries on
// the server root.
package scimserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
	"golang.org/x/time/rate"

	"github.com/babelforce/bridge/directory/store"
)

// TokenVerifier verifies a JWT bearer token (signature, issuer, audience, expiry). The oidc
// package provides one backed by go-oidc.
type TokenVerifier interface {
	Verify(ctx context.Context, rawToken string) error
}

// DefaultOnChangeTimeout bounds one OnChange call when Options.OnChangeTimeout is 0.
const DefaultOnChangeTimeout = 30 * time.Second

// Options are the collaborators of the handler.
type Options struct {
	Logger *slog.Logger
	// Verifier checks JWT bearer tokens; required when Config.OIDC.Issuer is set.
	Verifier TokenVerifier
	// OnChange is called synchronously after every accepted write has been stored, with the
	// ids of the users whose directory data changed (for a group: its members, through nested
	// groups) and a trigger such as "scim:patch_user". Its error is logged and does not change
	// the SCIM answer (the periodic run retries). It runs with a context that is not cancelled
	// when the IdP hangs up, bounded by OnChangeTimeout.
	OnChange        func(ctx context.Context, trigger string, userIDs []string) error
	OnChangeTimeout time.Duration
	// OnRequest observes every request's method and final status (metrics). The method is
	// one of the standard HTTP methods or "other", so a client cannot make up label values.
	OnRequest func(method string, status int)
	// BaseURL, when set, makes meta.location and Location absolute
	// (e.g. "https://bridge.example.com/scim/v2").
	BaseURL string
	// MaxResults caps the page size of list responses (default 100).
	MaxResults int
}

type server struct {
	now       func() time.Time
	authLog   *logLimiter
	st        *store.Store
	log       *slog.Logger
	hashes    [][sha256.Size]byte
	verifier  TokenVerifier
	maxBody   int64
	opts      Options
	scim      http.Handler
	userIndex *schemaIndex
	groupIdx  *schemaIndex
}

// New returns the SCIM 2.0 handler. It serves paths relative to the SCIM base (/Users,
// /Groups, /ServiceProviderConfig, ...): mount it with http.StripPrefix.
func New(st *store.Store, cfg Config, opts Options) (http.Handler, error) {
	if st == nil {
		return nil, errors.New("scimserver: store is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("scimserver: invalid config: %w", err)
	}
	if cfg.TokensFile != "" && len(cfg.hashes) == 0 {
		// the caller did not load secrets: do it on this copy
		if err := cfg.LoadSecrets(); err != nil {
			return nil, fmt.Errorf("scimserver: %w", err)
		}
	}
	if cfg.OIDC.Enabled() && opts.Verifier == nil {
		return nil, errors.New("scimserver: oidc.issuer is set but no token verifier was given")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.OnChangeTimeout <= 0 {
		opts.OnChangeTimeout = DefaultOnChangeTimeout
	}
	if opts.MaxResults <= 0 {
		opts.MaxResults = 100
	}
	s := &server{
		now:      time.Now,
		authLog:  newLogLimiter(),
		st:       st,
		log:      opts.Logger,
		hashes:   cfg.tokenHashes(),
		verifier: opts.Verifier,
		maxBody:  cfg.MaxBodyBytes,
		opts:     opts,
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if len(s.hashes) == 0 && s.verifier == nil {
		return nil, errors.New("scimserver: no bearer token and no token verifier: every request would be refused")
	}
	userSchema := schema.CoreUserSchema()
	enterprise := schema.ExtensionEnterpriseUser()
	groupSchema := schema.CoreGroupSchema()
	s.userIndex = newSchemaIndex(userSchema, enterprise)
	s.groupIdx = newSchemaIndex(groupSchema)
	spc := &scim.ServiceProviderConfig{
		DocumentationURI: optional.NewString("https://github.com/babelforce/bridge"),
		AuthenticationSchemes: []scim.AuthenticationScheme{{
			Type:        scim.AuthenticationTypeOauthBearerToken,
			Name:        "OAuth Bearer Token",
			Description: "Authentication with a bearer token (static secret or a JWT from the configured issuer).",
			Primary:     true,
		}},
		MaxResults:       opts.MaxResults,
		SupportFiltering: true,
		SupportPatch:     true,
	}
	srvOpts := []scim.ServerOption{scim.WithLogger(libLogger{opts.Logger})}
	if opts.BaseURL != "" {
		srvOpts = append(srvOpts, scim.WithBaseURL(opts.BaseURL))
	}
	lib, err := scim.NewServer(&scim.ServerArgs{
		ServiceProviderConfig: spc,
		ResourceTypes: []scim.ResourceType{
			{
				ID:          optional.NewString("User"),
				Name:        "User",
				Endpoint:    "/Users",
				Description: optional.NewString("User Account"),
				Schema:      userSchema,
				SchemaExtensions: []scim.SchemaExtension{
					{Schema: enterprise},
				},
				Handler: &resourceHandler{s: s, kind: store.KindUser, idx: s.userIndex,
					coreSchema: userSchema, extSchemas: []schema.Schema{enterprise}},
			},
			{
				ID:          optional.NewString("Group"),
				Name:        "Group",
				Endpoint:    "/Groups",
				Description: optional.NewString("Group"),
				Schema:      groupSchema,
				Handler:     &resourceHandler{s: s, kind: store.KindGroup, idx: s.groupIdx, coreSchema: groupSchema},
			},
		},
	}, srvOpts...)
	if err != nil {
		return nil, fmt.Errorf("scimserver: %w", err)
	}
	s.scim = lib
	return s, nil
}

// libLogger adapts slog to the library's logger.
type libLogger struct{ l *slog.Logger }

func (l libLogger) Error(args ...any) {
	if len(args) > 0 {
		if msg, ok := args[0].(string); ok {
			l.l.Error("scim library: "+msg, args[1:]...)
			return
		}
	}
	l.l.Error("scim library error", "detail", fmt.Sprint(args...))
}

// ServeHTTP runs the wrapper chain: observe, recover, canonical path, method check,
// authentication, body limit and normalisation, then the library.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("scim request panicked", "method", r.Method, "path", r.URL.Path,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if !rec.wrote {
				writeError(rec, http.StatusInternalServerError, "", "internal error")
			}
		}
		if s.opts.OnRequest != nil {
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			s.opts.OnRequest(methodLabel(r.Method), status)
		}
	}()
	s.serve(rec, r)
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	if !s.authenticate(w, r) {
		return
	}
	path, ok := canonicalPath(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("no SCIM endpoint %q", r.URL.Path))
		return
	}
	if path == "/Bulk" || strings.HasPrefix(path, "/Bulk/") {
		writeError(w, http.StatusNotImplemented, "", "bulk operations are not supported")
		return
	}
	if allowed := allowedMethods(path); allowed != nil && !contains(allowed, r.Method) {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, http.StatusMethodNotAllowed, "", fmt.Sprintf("method %s is not allowed on %s (allowed: %s)",
			r.Method, path, strings.Join(allowed, ", ")))
		return
	}
	base := s.baseURL(r)
	r2 := r.Clone(withBase(r.Context(), base))
	r2.URL.Path = path
	r2.URL.RawPath = ""
	if r.Method == http.MethodHead {
		// HEAD is GET without the body (net/http drops what is written for a HEAD)
		r2.Method = http.MethodGet
	}
	if r2.Method == http.MethodGet && (path == "/Users" || path == "/Groups") {
		// The handler evaluates filters itself (see filter.go); the library must not see them.
		q := r2.URL.Query()
		if f := q.Get("filter"); f != "" {
			q.Del("filter")
			r2.URL.RawQuery = q.Encode()
			r2 = r2.WithContext(withFilter(r2.Context(), f))
		}
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		if detail, ok := checkContentType(r); !ok {
			writeError(w, http.StatusUnsupportedMediaType, "", detail)
			return
		}
		body, status, detail := s.readBody(r)
		if status != 0 {
			scimType := ""
			if status == http.StatusBadRequest {
				scimType = string(scimerrors.ScimTypeInvalidSyntax)
			}
			writeError(w, status, scimType, detail)
			return
		}
		if detail := checkSize(body, r.Method == http.MethodPatch); detail != "" {
			writeError(w, http.StatusBadRequest, string(scimerrors.ScimTypeTooMany), detail)
			return
		}
		if detail := checkText(body, r.Method == http.MethodPatch); detail != "" {
			writeError(w, http.StatusBadRequest, string(scimerrors.ScimTypeInvalidValue), detail)
			return
		}
		if r.Method == http.MethodPatch {
			body = normalizePatch(body)
		} else {
			body = normalizeResource(body)
		}
		raw, err := json.Marshal(body)
		if err != nil {
			writeError(w, http.StatusBadRequest, string(scimerrors.ScimTypeInvalidSyntax), "request body cannot be encoded again")
			return
		}
		r2.Body = io.NopCloser(bytes.NewReader(raw))
		r2.ContentLength = int64(len(raw))
	}
	if path == "/ServiceProviderConfig" {
		s.serviceProviderConfig(w, r2)
		return
	}
	if strings.HasPrefix(path, "/Users") || strings.HasPrefix(path, "/Groups") {
		buf := &bufferWriter{header: http.Header{}, status: http.StatusOK}
		s.scim.ServeHTTP(buf, r2)
		finishResponse(w, base, buf)
		return
	}
	s.scim.ServeHTTP(w, r2)
}

// serviceProviderConfig serves the library's document, corrected: ETags are supported.
func (s *server) serviceProviderConfig(w http.ResponseWriter, r *http.Request) {
	rec := &bufferWriter{header: http.Header{}, status: http.StatusOK}
	s.scim.ServeHTTP(rec, r)
	var doc map[string]any
	if rec.status != http.StatusOK || json.Unmarshal(rec.body.Bytes(), &doc) != nil {
		writeError(w, http.StatusInternalServerError, "", "cannot build the service provider configuration")
		return
	}
	doc["etag"] = map[string]any{"supported": true}
	doc["meta"] = map[string]any{"resourceType": "ServiceProviderConfig", "location": "ServiceProviderConfig"}
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(doc)
}

// readBody reads and parses the JSON body within the size limit.
func (s *server) readBody(r *http.Request) (any, int, string) {
	if r.ContentLength > s.maxBody {
		return nil, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", s.maxBody)
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, s.maxBody+1))
	if err != nil {
		return nil, http.StatusBadRequest, "cannot read request body"
	}
	if int64(len(raw)) > s.maxBody {
		return nil, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", s.maxBody)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, http.StatusBadRequest, "request body is empty: a JSON object is required"
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, http.StatusBadRequest, "request body is not valid JSON: " + err.Error()
	}
	if d.More() {
		return nil, http.StatusBadRequest, "request body has data after the JSON object"
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, http.StatusBadRequest, "request body must be a JSON object"
	}
	return v, 0, ""
}

// authenticate checks the bearer token; on failure it writes the 401 and returns false.
func (s *server) authenticate(w http.ResponseWriter, r *http.Request) bool {
	token, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		s.unauthorized(w, r, "missing bearer token", "")
		return false
	}
	sum := sha256.Sum256([]byte(token))
	match := 0
	for i := range s.hashes {
		match |= subtle.ConstantTimeCompare(sum[:], s.hashes[i][:])
	}
	if match == 1 {
		return true
	}
	if s.verifier != nil && strings.Count(token, ".") == 2 {
		err := s.verifier.Verify(r.Context(), token)
		if err == nil {
			return true
		}
		var u interface{ Unavailable() bool }
		if errors.As(err, &u) && u.Unavailable() {
			// the token was not judged: the IdP could not be asked. 401 would make the IdP
			// think its credential is wrong (and quarantine the app).
			if n, ok := s.authLog.allow(s.now()); ok {
				s.log.Warn("scim request not authenticated: identity provider unavailable", "method", r.Method,
					"remote_addr", r.RemoteAddr, "error", err, "not_logged_before", n)
			}
			w.Header().Set("Retry-After", strconv.Itoa(int(unavailableRetryAfter/time.Second)))
			writeError(w, http.StatusServiceUnavailable, "", "the identity provider cannot be reached to check the token; try again later")
			return false
		}
		s.unauthorized(w, r, "bearer token rejected", err.Error())
		return false
	}
	s.unauthorized(w, r, "bearer token rejected", "unknown token")
	return false
}

// unavailableRetryAfter is the Retry-After of a 503 when the IdP cannot be asked.
const unavailableRetryAfter = 30 * time.Second

func (s *server) unauthorized(w http.ResponseWriter, r *http.Request, detail, reason string) {
	if n, ok := s.authLog.allow(s.now()); ok {
		s.log.Warn("scim request not authenticated", "method", methodLabel(r.Method), "path", truncate(r.URL.Path, 200),
			"remote_addr", r.RemoteAddr, "reason", detail+": "+reason, "not_logged_before", n)
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="bridge-scim", error="invalid_token"`)
	writeError(w, http.StatusUnauthorized, "", detail)
}

// methodLabel is m if it is a standard HTTP method, else "other".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// truncate shortens s to at most n bytes (for logging what a client sent).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// logLimiter lets a few log lines a minute through and counts the rest, so that a flood of
// unauthenticated requests cannot flood the log.
type logLimiter struct {
	lim     *rate.Limiter
	dropped atomic.Int64
}

func newLogLimiter() *logLimiter {
	return &logLimiter{lim: rate.NewLimiter(rate.Every(authLogEvery), authLogBurst)}
}

// authLogEvery and authLogBurst: at most authLogBurst lines at once, then one every
// authLogEvery (3 a minute).
const (
	authLogEvery = 20 * time.Second
	authLogBurst = 3
)

// allow reports whether a line may be logged now and how many were dropped since the last.
func (l *logLimiter) allow(now time.Time) (int64, bool) {
	if !l.lim.AllowN(now, 1) {
		l.dropped.Add(1)
		return 0, false
	}
	return l.dropped.Swap(0), true
}

func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// endpoints maps lower-cased first path segments to their canonical spelling.
var endpoints = map[string]string{
	"users":                  "Users",
	"groups":                 "Groups",
	"schemas":                "Schemas",
	"resourcetypes":          "ResourceTypes",
	"serviceproviderconfig":  "ServiceProviderConfig",
	"serviceproviderconfigs": "ServiceProviderConfig",
	"bulk":                   "Bulk",
	"me":                     "Me",
	".search":                ".search",
}

// canonicalPath fixes the letter case of the endpoint and drops trailing slashes:
// "/users/" → "/Users", "/USERS/abc" → "/Users/abc". Unknown endpoints return false.
func canonicalPath(p string) (string, bool) {
	if p == "" || p == "/" {
		return "/", true
	}
	p = "/" + strings.Trim(p, "/")
	p = strings.TrimPrefix(p, "/v2")
	if p == "" {
		return "/", true
	}
	rest := strings.TrimPrefix(p, "/")
	first, tail, _ := strings.Cut(rest, "/")
	canon, ok := endpoints[strings.ToLower(first)]
	if !ok {
		return "", false
	}
	if tail == "" {
		return "/" + canon, true
	}
	if strings.EqualFold(tail, ".search") {
		tail = ".search"
	}
	return "/" + canon + "/" + tail, true
}

// allowedMethods lists the methods of a canonical path (nil: let the library decide).
func allowedMethods(p string) []string {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	switch parts[0] {
	case "Users", "Groups":
		if len(parts) == 1 {
			return []string{http.MethodGet, http.MethodHead, http.MethodPost}
		}
		if parts[1] == ".search" {
			return []string{http.MethodPost}
		}
		return []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete}
	case "Schemas", "ResourceTypes", "ServiceProviderConfig":
		return []string{http.MethodGet, http.MethodHead}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// writeError writes a SCIM error body (RFC 7644 section 3.12).
func writeError(w http.ResponseWriter, status int, scimType, detail string) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(status)
	body := map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"},
		"status":  strconv.Itoa(status),
		"detail":  detail,
	}
	if scimType != "" {
		body["scimType"] = scimType
	}
	_ = json.NewEncoder(w).Encode(body)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status = code
		r.wrote = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.status = http.StatusOK
		r.wrote = true
	}
	return r.ResponseWriter.Write(b)
}

// notifyChange calls OnChange for the given users, logging (never returning) its error.
func (s *server) notifyChange(ctx context.Context, trigger string, userIDs []string) {
	if s.opts.OnChange == nil || len(userIDs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.OnChangeTimeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("on-demand provisioning after SCIM write panicked; the periodic run will retry",
				"trigger", trigger, "users", len(userIDs), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	if err := s.opts.OnChange(ctx, trigger, userIDs); err != nil {
		s.log.Warn("on-demand provisioning after SCIM write failed; the periodic run will retry",
			"trigger", trigger, "users", len(userIDs), "error", err)
	}
}

// bufferWriter keeps a response in memory.
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) WriteHeader(status int)      { b.status = status }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
