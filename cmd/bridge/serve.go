package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/directory/store"
	"github.com/babelforce/bridge/oidc"
	"github.com/babelforce/bridge/provisioning"
	"github.com/babelforce/bridge/provisioning/scimserver"
)

// service is `bridge serve`: the HTTP endpoints and the scheduler around one app.
type service struct {
	app      *app
	logger   *slog.Logger
	metrics  *metrics
	adminSum [32]byte // SHA-256 of the admin token; zero when none is configured
	hasAdmin bool
	// pushProvisions: a write to the inbound SCIM endpoint provisions the affected users
	// (the source includes the store).
	pushProvisions bool
	// queue drains the store's change queue (nil without a store or in observe mode).
	queue *provisioning.QueueWorker
	// upstreams checks babelforce, the directory and the IdP in the background.
	upstreams *upstreams
	// live follows the directory's change stream (sync.live; nil when off).
	live *provisioning.Follower
	// liveFresh: the stream has no kept position yet, so its first batch asks for a full
	// reconcile (see firstRunGate).
	liveFresh bool
	// firstRun, when not nil, holds the scheduler's first run back until the change stream
	// asks for its full reconcile or cannot (serve with a schedule and liveFresh).
	firstRun *firstRunGate
}

// firstRunGate spares the double full reconcile at the start of a stream without a kept
// position: the scheduler's immediate run and the one the stream asks for once its first
// batch is in. The scheduler waits for the gate; the stream's request opens it (and is the
// scheduler's run, which reads the directory after the stream's position, so nothing between
// them is lost), as does a stream that stands by for another replica, fails or has none.
type firstRunGate struct {
	once sync.Once
	open chan struct{}
}

func newFirstRunGate() *firstRunGate { return &firstRunGate{open: make(chan struct{})} }

// opens opens the gate; true the first time only.
func (g *firstRunGate) opens() (first bool) {
	g.once.Do(func() { close(g.open); first = true })
	return first
}

func runServe(ctx context.Context, env *cliEnv, args []string) int {
	var cf commonFlags
	fs := newFlagSet("serve", env, &cf, false)
	if _, err := parseFlags(env, fs, args); err != nil {
		return fail(env, err)
	}
	cfg, err := loadConfig(ctx, cf.config, env.lookupEnv, true)
	if err != nil {
		return fail(env, err)
	}
	logger := newLogger(cfg.Log, env.stderr)
	audit, closeAudit, err := openAudit(cfg.Log, env.stderr)
	if err != nil {
		return fail(env, err)
	}
	defer closeAudit()
	svc, err := newService(ctx, cfg, logger, appOptions{audit: audit})
	if err != nil {
		return fail(env, err)
	}
	defer svc.app.close()
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fail(env, fmt.Errorf("listen on %s: %w", cfg.Server.Listen, err))
	}
	if err := svc.serve(ctx, ln, true); err != nil {
		return fail(env, err)
	}
	return exitOK
}

// newService builds the app with metrics and audit logging, for serve and demo. o.audit, when
// nil, writes the audit records on logger's handler whatever its level; o.wrapSource, when not
// nil, replaces the configured source (the demo merges it with the store) and pushes to the
// inbound SCIM endpoint are then provisioned at once.
func newService(ctx context.Context, cfg *Config, logger *slog.Logger, o appOptions) (*service, error) {
	m := newMetrics()
	o.metrics = m
	if o.audit == nil {
		o.audit = auditTo(auditLogger(logger))
	}
	wrapSource := o.wrapSource
	a, err := newApp(ctx, cfg, logger, o)
	if err != nil {
		return nil, err
	}
	s := &service{app: a, logger: logger, metrics: m, pushProvisions: wrapSource != nil || cfg.Directory.Type == directory.TypeSCIMPush}
	if cfg.Server.AdminToken != "" {
		s.adminSum = sha256.Sum256([]byte(cfg.Server.AdminToken))
		s.hasAdmin = true
		cfg.Server.AdminToken = "" // keep only the hash
	} else {
		logger.Warn("no admin token configured (BRIDGE_SERVER_ADMIN_TOKEN or server.admin_token_file): /api/v1 answers 401 to everyone")
	}
	s.upstreams = newUpstreams(s)
	if a.store != nil && !cfg.Sync.DryRun {
		// What IdPs push is stored with a queue entry in the same transaction and answered at
		// once; the worker applies the queue in scoped runs (the replica holding the run
		// lock does; every replica accepts pushes).
		s.queue = provisioning.NewQueueWorker(a.rec, a.store, provisioning.QueueWorkerOptions{
			Logger:  logger.With("component", "queue"),
			OnStats: m.observeQueue,
		})
		if s.pushProvisions {
			a.store.QueueWrites(store.SourceSCIMPush, s.queue.Wake)
		}
	}
	if err := s.followLive(ctx); err != nil {
		a.close()
		return nil, err
	}
	return s, nil
}

// followLive sets up the follower of the directory's change stream when sync.live is on:
// the people each change affects go into the store's change queue (the same durable queue
// pushes use) and the queue worker is woken at once; it applies them in scoped runs.
func (s *service) followLive(ctx context.Context) error {
	cfg := s.app.cfg
	switch {
	case !cfg.Sync.Live:
		return nil
	case cfg.Directory.Type == directory.TypeSCIMPush:
		s.logger.Info("sync.live: directory.type scim_push is pushed to bridge as it changes already; nothing to follow")
		return nil
	case s.queue == nil:
		s.logger.Warn("sync.live: observe mode (sync.dry_run): the directory's changes are not followed; scheduled runs only plan")
		return nil
	}
	stream, err := directory.OpenStream(cfg.Directory, s.logger.With("component", "directory_stream"), cfg.Sync.LivePollInterval())
	if err != nil {
		return fmt.Errorf("sync.live: %w", err)
	}
	cookie, err := s.app.store.LoadStreamCookie(ctx, stream.StreamName())
	if err != nil {
		return fmt.Errorf("sync.live: %w", err)
	}
	s.liveFresh = len(cookie) == 0
	rec := s.app.rec
	s.live = provisioning.NewFollower(stream, s.app.store, provisioning.FollowerOptions{
		Logger: s.logger.With("component", "live"),
		Source: "live_" + cfg.Directory.Type,
		FullRun: func(ctx context.Context) error {
			if s.firstRun != nil && s.firstRun.opens() {
				return nil // the scheduler's first run, starting now, is this one
			}
			_, err := rec.Run(ctx, provisioning.RunOptions{Trigger: provisioning.TriggerLive})
			return err
		},
		Wake: s.queue.Wake,
		// with several replicas (PostgreSQL) only the stream lock's holder follows; on
		// SQLite, one replica, the lock is always granted
		Lead: s.app.store.StreamLock,
		OnStatus: func(st provisioning.LiveStatus) {
			s.metrics.observeLive(st)
			if s.firstRun != nil && (!st.Following || st.LastError != "" || st.Reconnects > 0) {
				s.firstRun.opens() // standing by, failing or without a stream: no request coming
			}
		},
	})
	return nil
}

// auditTo writes audit records with l.
func auditTo(l *slog.Logger) func(provisioning.AuditRecord) {
	return func(r provisioning.AuditRecord) {
		l.Info("babelforce write", "trigger", r.Trigger, "kind", string(r.Kind), "subject", r.Subject,
			"source_id", r.SourceID, "agent_id", r.AgentID, "before", r.Before, "after", r.After,
			"result", r.Result, "error", r.Error)
	}
}

// openAudit opens the audit sink of c: the file log.audit (JSON lines, appended, created 0600),
// else stderr as JSON, whatever log.level and log.format say. Audit records are for machines
// and auditors, never part of a command's human report.
func openAudit(c LogConfig, stderr io.Writer) (func(provisioning.AuditRecord), func() error, error) {
	w, closeFn := stderr, func() error { return nil }
	if c.Audit != "" {
		f, err := os.OpenFile(c.Audit, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("log.audit: %w", err)
		}
		w, closeFn = f, f.Close
	}
	return auditTo(slog.New(slog.NewJSONHandler(w, nil)).With("log", "audit")), closeFn, nil
}

// auditLogger logs on logger's handler whatever its level: the audit trail of writes to
// babelforce must not disappear because an admin set log.level to warn.
func auditLogger(logger *slog.Logger) *slog.Logger {
	return slog.New(alwaysEnabled{logger.Handler()}).With("log", "audit")
}

// alwaysEnabled passes every record to its handler, below its level too.
type alwaysEnabled struct{ slog.Handler }

func (alwaysEnabled) Enabled(context.Context, slog.Level) bool { return true }

func (h alwaysEnabled) WithAttrs(as []slog.Attr) slog.Handler {
	return alwaysEnabled{h.Handler.WithAttrs(as)}
}

func (h alwaysEnabled) WithGroup(name string) slog.Handler {
	return alwaysEnabled{h.Handler.WithGroup(name)}
}

// handler builds the routes.
func (s *service) handler() (http.Handler, error) {
	r := mux.NewRouter()
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	}).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", func(w http.ResponseWriter, req *http.Request) {
		rctx, cancel := context.WithTimeout(req.Context(), 5*time.Second)
		defer cancel()
		if err := s.readiness(rctx); err != nil {
			// /readyz needs no token: name the failing parts only; the details (hosts, user
			// names) go to the log.
			s.logger.Warn("not ready", "error", err)
			writeAPIError(w, http.StatusServiceUnavailable, "not ready: "+strings.Join(failingParts(err), ", ")+" (details in the log)")
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ready\n"))
	}).Methods(http.MethodGet, http.MethodHead)

	metricsHandler := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	if s.app.cfg.Server.MetricsPublic {
		r.Handle("/metrics", metricsHandler).Methods(http.MethodGet)
	} else {
		r.Handle("/metrics", s.requireAdmin(metricsHandler)).Methods(http.MethodGet)
	}

	api := r.PathPrefix("/api/v1").Subrouter()
	api.Use(s.requireAdmin)
	api.HandleFunc("/sync", s.handleSync).Methods(http.MethodPost)
	api.HandleFunc("/provision/{user}", s.handleProvision).Methods(http.MethodPost)
	api.HandleFunc("/status", s.handleStatus).Methods(http.MethodGet)
	api.HandleFunc("/explain/{user}", s.handleExplain).Methods(http.MethodGet)

	if s.app.store != nil && s.app.cfg.InboundSCIM.Enabled {
		opts := scimserver.Options{
			Logger:    s.logger.With("component", "scim"),
			OnRequest: s.metrics.observeSCIM,
		}
		switch {
		case s.pushProvisions && s.app.cfg.Sync.DryRun:
			s.logger.Warn("observe mode (sync.dry_run): pushed users are stored, not provisioned; scheduled runs only plan")
		case s.pushProvisions:
			// the store queues what each write changes (QueueWrites)
		default:
			s.logger.Warn("inbound_scim is enabled but directory.type is not scim_push: pushed users are stored, not provisioned")
		}
		if oc := s.app.cfg.InboundSCIM.OIDC; oc.Enabled() {
			// inbound_scim validation accepts plain http only for a loopback issuer.
			opts.Verifier = &lazyVerifier{cfg: oidc.VerifierConfig{Issuer: oc.Issuer, Audience: oc.Audience,
				ClientIDs: oc.ClientIDs, RequiredScope: oc.RequiredScope, RequiredRole: oc.RequiredRole,
				AllowInsecureHTTP: strings.HasPrefix(oc.Issuer, "http://")}}
		}
		h, err := scimserver.New(s.app.store, s.app.cfg.InboundSCIM, opts)
		if err != nil {
			return nil, fmt.Errorf("inbound scim: %w", err)
		}
		r.PathPrefix("/scim/v2").Handler(http.StripPrefix("/scim/v2", h))
	}
	u, err := s.newUI()
	if err != nil {
		return nil, err
	}
	if u != nil {
		r.PathPrefix("/ui/").Handler(u.Handler())
		r.Handle("/ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	}
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeAPIError(w, http.StatusNotFound, "no such endpoint")
	})
	return r, nil
}

// serve runs the HTTP server and the scheduler until ctx is cancelled, then shuts down
// gracefully: a run in flight finishes the writes it has started and stops (the next run
// converges), the server finishes its requests.
func (s *service) serve(ctx context.Context, ln net.Listener, schedule bool) error {
	h, err := s.handler()
	if err != nil {
		_ = ln.Close()
		return err
	}
	cfg := s.app.cfg.Server
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: cfg.ReadTimeout,
		// requests run on ctx: on SIGTERM a run started through the admin API stops like a
		// scheduled one (after the writes in flight) instead of outliving the shutdown.
		BaseContext: func(net.Listener) context.Context { return ctx }}
	var wg sync.WaitGroup
	if schedule {
		if s.live != nil && s.liveFresh {
			s.firstRun = newFirstRunGate()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.firstRun != nil {
				select {
				case <-ctx.Done():
					return
				case <-s.firstRun.open:
				}
			}
			s.app.rec.Schedule(ctx)
		}()
	}
	if s.queue != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.queue.Run(ctx)
		}()
	}
	if s.live != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.live.Run(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.upstreams.run(ctx)
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.logger.Info("bridge serving", "addr", ln.Addr().String(), "version", version,
		"directory", s.app.cfg.Directory.Type, "inbound_scim", s.app.cfg.InboundSCIM.Enabled,
		"interval", s.app.cfg.Sync.Interval.String(), "observe_mode", s.app.cfg.Sync.DryRun)
	select {
	case <-ctx.Done():
		s.logger.Info("shutting down: finishing the writes and requests in flight")
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	serr := srv.Shutdown(shutdownCtx)
	wg.Wait()
	s.logger.Info("stopped")
	return serr
}

// partCheck is the state of one part bridge depends on.
type partCheck struct {
	name string
	err  error
}

// checkParts says how each part bridge depends on is: the store is asked now; babelforce,
// the directory and the IdP's JWKS as their last background check found them (upstreams),
// never asked by a page view or a probe.
func (s *service) checkParts(ctx context.Context) []partCheck {
	var out []partCheck
	ups := s.upstreams.status()
	for _, c := range s.upstreams.checks {
		st, ok := ups[c.name]
		switch {
		case !ok:
			out = append(out, partCheck{name: c.name, err: errors.New("not checked yet")})
		case !st.Up:
			out = append(out, partCheck{name: c.name, err: errors.New(st.Error)})
		default:
			out = append(out, partCheck{name: c.name})
		}
	}
	if s.app.store != nil {
		out = append(out, partCheck{name: "store", err: s.app.store.Ping(ctx)})
	}
	return out
}

// readiness says whether this replica can accept traffic: its configuration is loaded (it
// is serving) and its store answers. Upstreams (babelforce, the directory, the IdP) are not
// asked here: pushes are stored and queued while they are down, and a probe that failed with
// them would take every replica out of service at once. Their health is checked in the
// background (bridge_upstream_up, /api/v1/status).
func (s *service) readiness(ctx context.Context) error {
	if s.app.store != nil {
		if err := s.app.store.Ping(ctx); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	return nil
}

// failingParts names the parts of a readiness error ("store", "babelforce", "directory").
func failingParts(err error) []string {
	var parts []string
	for _, p := range flatten(err) {
		name, _, _ := strings.Cut(p, ":")
		parts = append(parts, name)
	}
	return parts
}

// requireAdmin lets through requests with the admin bearer token (compared in constant time).
func (s *service) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r)
		if !ok || !s.hasAdmin {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bridge admin"`)
			writeAPIError(w, http.StatusUnauthorized, "missing or invalid admin bearer token")
			return
		}
		if !s.isAdminToken(tok) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bridge admin", error="invalid_token"`)
			writeAPIError(w, http.StatusUnauthorized, "missing or invalid admin bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

func (s *service) handleSync(w http.ResponseWriter, r *http.Request) {
	dry, err := boolParam(r, "dry_run")
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, err.Error())
		return
	}
	force, err := boolParam(r, "force")
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, err.Error())
		return
	}
	rep, err := s.app.rec.Run(r.Context(), provisioning.RunOptions{Trigger: provisioning.TriggerManual, DryRun: dry, Force: force})
	s.respondRun(w, r, rep, err)
}

func (s *service) handleProvision(w http.ResponseWriter, r *http.Request) {
	user := mux.Vars(r)["user"]
	rep, err := s.app.rec.ProvisionUsers(r.Context(), provisioning.TriggerManual, user)
	s.respondRun(w, r, rep, err)
}

func (s *service) respondRun(w http.ResponseWriter, r *http.Request, rep *provisioning.Report, err error) {
	status := http.StatusOK
	switch {
	case err != nil && r.Context().Err() != nil:
		status = http.StatusServiceUnavailable
		err = fmt.Errorf("bridge is shutting down: the run stopped after the writes in flight; the next run converges: %w", err)
	case errors.Is(err, provisioning.ErrBusy):
		// another replica is reconciling (a local run is waited for)
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "30")
	case errors.Is(err, provisioning.ErrGuardRefused):
		status = http.StatusConflict
	case errors.Is(err, provisioning.ErrUnknownUser):
		status = http.StatusNotFound
	case err != nil:
		status = http.StatusInternalServerError
	}
	body := map[string]any{"report": rep}
	if err != nil {
		body["error"] = err.Error()
	}
	writeJSONResponse(w, status, body)
}

// handleExplain answers "why (not) this user?" for admins without shell access to bridge:
// what bridge explain prints, as JSON.
func (s *service) handleExplain(w http.ResponseWriter, r *http.Request) {
	ex, err := s.app.rec.Explain(r.Context(), mux.Vars(r)["user"])
	switch {
	case errors.Is(err, provisioning.ErrUnknownUser):
		writeAPIError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeAPIError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSONResponse(w, http.StatusOK, ex)
	}
}

// statusBody is /api/v1/status, and what the status pages' overview starts from.
type statusBody struct {
	Version string                `json:"version"`
	Runs    []provisioning.Report `json:"runs"`
	// Running: a run is in flight in this replica.
	Running bool `json:"running"`
	// NextRun is when the next scheduled run starts (absent: none scheduled).
	NextRun *time.Time `json:"nextRun,omitempty"`
	// Store is the store's backend (sqlite, postgres); absent without a store.
	Store string `json:"store,omitempty"`
	// Queue is the change queue (absent without a store or in observe mode).
	Queue *queueStatus `json:"queue,omitempty"`
	// Upstreams are the last background checks of babelforce, the directory and the IdP.
	Upstreams map[string]upstreamStatus `json:"upstreams"`
	// Live is the directory's change stream (absent unless sync.live follows one).
	Live *provisioning.LiveStatus `json:"live,omitempty"`
	// Replica names this process among the replicas sharing the store (host and pid), and
	// Locks says who holds (or last held) the run and stream locks (PostgreSQL only).
	Replica string             `json:"replica,omitempty"`
	Locks   []store.LockHolder `json:"locks,omitempty"`
}

// queueStatus is the change queue in /api/v1/status.
type queueStatus struct {
	store.QueueStats
	OldestAgeSeconds float64 `json:"oldestAgeSeconds"`
}

func (s *service) status(ctx context.Context) statusBody {
	st := statusBody{Version: version, Runs: s.app.rec.Runs(ctx), Running: s.app.rec.Busy(), Upstreams: s.upstreams.status()}
	if t := s.app.rec.NextRun(); !t.IsZero() {
		st.NextRun = &t
	}
	if s.app.store != nil {
		st.Store = s.app.store.Backend()
		st.Replica = s.app.store.Replica()
		locks, err := s.app.store.LockHolders(ctx)
		if err != nil {
			s.logger.Warn("status: cannot read the lock holders", "error", err)
		}
		st.Locks = locks
	}
	if s.queue != nil {
		qs, err := s.app.store.QueueStats(ctx)
		if err != nil {
			s.logger.Warn("status: cannot read the change queue", "error", err)
			qs = s.queue.Stats() // as last seen
		}
		st.Queue = &queueStatus{QueueStats: qs, OldestAgeSeconds: qs.OldestAge(time.Now()).Seconds()}
	}
	if s.live != nil {
		ls := s.live.Status()
		st.Live = &ls
	}
	return st
}

func (s *service) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSONResponse(w, http.StatusOK, s.status(r.Context()))
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("query parameter %s must be true or false, got %q", name, v)
	}
	return b, nil
}

func writeJSONResponse(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = writeJSON(w, v)
}

func writeAPIError(w http.ResponseWriter, status int, msg string) {
	writeJSONResponse(w, status, map[string]any{"error": msg, "status": status})
}
