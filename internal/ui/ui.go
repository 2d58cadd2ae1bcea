// Package ui is bridge's status pages in the browser, served by `bridge serve` under /ui/:
// the last runs and what they did, the pending plan, "why is this person (not) synced?", and
// for admins the actions run now, provision one person and apply a run the guard refused.
//
// The pages are rendered on the server with html/template; the stylesheet is embedded in the
// binary, nothing is loaded from elsewhere and no page needs JavaScript. The UI decides
// nothing itself: it reads and acts through Backend, which the service implements with the
// provisioning package, and renders plans, reports and explanations with their own text
// forms (provisioning.Plan.WriteText, ChangeLine, Explanation.WriteText).
//
// Who may look: people signed in with the company IdP (OpenID Connect authorization code flow
// with PKCE; a claim rule decides who is an admin and, optionally, who may only look) or
// anybody holding the admin token, as "Authorization: Bearer" (scripts) or pasted into the
// sign-in form (small setups without an IdP). Sessions live in this process's memory.
//
// Example configuration (the `ui:` section):
//
//	ui:
//	  public_url: https://bridge.example.com   # optional: else derived from each request
//	  session_ttl: 8h
//	  oidc:
//	    issuer: https://login.example.com
//	    client_id: bridge-ui
//	    client_secret_file: /run/secrets/ui_client_secret  # or BRIDGE_UI_OIDC_CLIENT_SECRET
//	    scopes: [openid, email, profile, groups]
//	    admins: {claim: groups, values: [bridge-admins]}
//	    viewers: {claim: groups, values: [helpdesk]}       # optional: may look, not act
package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/babelforce/bridge/internal/secretfile"
	"github.com/babelforce/bridge/oidc"
	"github.com/babelforce/bridge/provisioning"
)

//go:embed templates/*.html static/*
var assets embed.FS

// DefaultSessionTTL is how long a sign-in lasts unless session_ttl says otherwise.
const DefaultSessionTTL = 8 * time.Hour

// Config is the `ui:` section. Environment variables use the prefix BRIDGE_UI_.
type Config struct {
	// Disabled turns the UI off (/ui/ is then a 404).
	Disabled bool `yaml:"disabled" env:"DISABLED, overwrite"`
	// PublicURL is the address people reach bridge at (https://bridge.example.com); the
	// IdP's redirect URI is PublicURL/ui/callback. When empty it is derived from each request:
	// https unless the request came in plain on a loopback address.
	PublicURL string `yaml:"public_url" env:"PUBLIC_URL, overwrite"`
	// SessionTTL is how long a sign-in lasts (default DefaultSessionTTL, 8h).
	SessionTTL time.Duration `yaml:"session_ttl" env:"SESSION_TTL, overwrite"`
	// OIDC is the sign-in with the company IdP; off when its issuer is empty.
	OIDC OIDCConfig `yaml:"oidc" env:", prefix=OIDC_"`
}

// OIDCConfig is the sign-in with an OpenID Connect IdP.
type OIDCConfig struct {
	Issuer   string `yaml:"issuer" env:"ISSUER, overwrite"`
	ClientID string `yaml:"client_id" env:"CLIENT_ID, overwrite"`
	// ClientSecret is never read from YAML: BRIDGE_UI_OIDC_CLIENT_SECRET or client_secret_file.
	// A public client (PKCE only) has none.
	ClientSecret     string `yaml:"-" env:"CLIENT_SECRET, overwrite"`
	ClientSecretFile string `yaml:"client_secret_file" env:"CLIENT_SECRET_FILE, overwrite"`
	// Scopes requested (default openid, email, profile).
	Scopes []string `yaml:"scopes" env:"SCOPES, overwrite"`
	// Admins decides who is an admin: someone whose ID token or userinfo claim holds one of
	// the values (a string claim equal to one, or a list claim containing one).
	Admins ClaimRule `yaml:"admins" env:", prefix=ADMINS_"`
	// Viewers, when set, lets others in to look but not act; everyone else is turned away.
	Viewers ClaimRule `yaml:"viewers" env:", prefix=VIEWERS_"`
	// AllowInsecureHTTP permits a plain http issuer on a loopback host (tests, demos).
	AllowInsecureHTTP bool `yaml:"allow_insecure_http" env:"ALLOW_INSECURE_HTTP, overwrite"`
}

// ClaimRule matches a claim against allowed values.
type ClaimRule struct {
	Claim  string   `yaml:"claim" env:"CLAIM, overwrite"`
	Values []string `yaml:"values" env:"VALUES, overwrite"`
}

func (r ClaimRule) set() bool { return r.Claim != "" }

// matches reports whether claims[r.Claim] is, or contains, one of r.Values.
func (r ClaimRule) matches(claims map[string]any) bool {
	if !r.set() {
		return false
	}
	var have []string
	switch v := claims[r.Claim].(type) {
	case string:
		have = []string{v}
	case bool:
		have = []string{fmt.Sprint(v)}
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				have = append(have, s)
			}
		}
	}
	for _, h := range have {
		if slices.Contains(r.Values, h) {
			return true
		}
	}
	return false
}

// Enabled reports whether sign-in with the IdP is configured.
func (c OIDCConfig) Enabled() bool { return c.Issuer != "" }

// LoadSecrets reads client_secret_file.
func (c *Config) LoadSecrets() error {
	o := &c.OIDC
	if o.ClientSecret == "" && o.ClientSecretFile != "" {
		s, err := secretfile.Read(o.ClientSecretFile)
		if err != nil {
			return fmt.Errorf("oidc.client_secret_file: %w", err)
		}
		o.ClientSecret = s
	}
	return nil
}

// Validate reports every problem of the section at once. It changes nothing.
func (c Config) Validate() error {
	var errs []error
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			errs = append(errs, fmt.Errorf("public_url: %q is not an absolute http(s) URL", c.PublicURL))
		case u.Scheme == "http" && !oidc.IsLoopbackHost(u.Hostname()):
			errs = append(errs, fmt.Errorf("public_url: %q uses plain http on a non-loopback host: use https (the session cookie is Secure)", c.PublicURL))
		case u.Path != "" && u.Path != "/":
			errs = append(errs, fmt.Errorf("public_url: %q has a path; give the address bridge is served at, without /ui", c.PublicURL))
		}
	}
	if c.SessionTTL < 0 {
		errs = append(errs, errors.New("session_ttl: must not be negative"))
	}
	o := c.OIDC
	if o.Enabled() {
		if err := oidc.CheckURL(o.Issuer, o.AllowInsecureHTTP); err != nil {
			errs = append(errs, fmt.Errorf("oidc.issuer: %w", err))
		}
		if o.ClientID == "" {
			errs = append(errs, errors.New("oidc.client_id: required with oidc.issuer"))
		}
		if !o.Admins.set() || len(o.Admins.Values) == 0 {
			errs = append(errs, errors.New("oidc.admins: give the claim and the values that make someone an admin (e.g. {claim: groups, values: [bridge-admins]})"))
		}
		if o.Viewers.set() && len(o.Viewers.Values) == 0 {
			errs = append(errs, errors.New("oidc.viewers.values: empty; give the values or leave viewers out"))
		}
		if !o.Viewers.set() && len(o.Viewers.Values) > 0 {
			errs = append(errs, errors.New("oidc.viewers.claim: required with oidc.viewers.values"))
		}
	} else if o.ClientID != "" || o.Admins.set() {
		errs = append(errs, errors.New("oidc.issuer: required when oidc is configured"))
	}
	return errors.Join(errs...)
}

// Backend is what the UI reads and does; the service implements it with the reconciler.
type Backend interface {
	// Status is the overview's data.
	Status(ctx context.Context) Status
	// Report returns run id: whole while it is one of the last few runs (full), else the
	// compact form the status keeps. The UI only reads it.
	Report(id uint64) (rep *provisioning.Report, full, ok bool)
	// Plan is a dry run of everything.
	Plan(ctx context.Context) (*provisioning.Plan, error)
	// Explain is `bridge explain QUERY`.
	Explain(ctx context.Context, query string) (*provisioning.Explanation, error)
	// Run reconciles now (force: apply what a guard refuses).
	Run(ctx context.Context, force bool) (*provisioning.Report, error)
	// Provision reconciles one person now.
	Provision(ctx context.Context, query string) (*provisioning.Report, error)
}

// Status is what the overview shows. Parts the service does not have stay empty and are
// left out of the page.
type Status struct {
	Version string
	// Runs are the last runs, newest first (compact: failures only).
	Runs []provisioning.Report
	// Running is set while a run is in flight in this replica.
	Running bool
	// NextRun is when the next scheduled run starts (zero: none scheduled).
	NextRun time.Time
	// ObserveMode: scheduled runs only plan (sync.dry_run).
	ObserveMode bool
	// Store is the store's backend ("sqlite", "postgres"), empty without a store.
	Store string
	// Health is the state of each upstream (babelforce, directory, IdP, store).
	Health []Health
	// Facts are further named states: the inbound queue, the live change stream, who holds
	// the run lock.
	Facts []Fact
}

// Health is one upstream's state.
type Health struct {
	Name   string
	OK     bool
	Detail string
}

// Fact is one named state for the overview.
type Fact struct {
	Name, Value string
	// Warn marks a state that needs attention.
	Warn bool
}

// Options are what the service hands the UI besides the configuration.
type Options struct {
	Backend Backend
	Logger  *slog.Logger
	// CheckToken reports whether token is the admin token (in constant time); nil when no
	// admin token is configured.
	CheckToken func(token string) bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// UI serves the pages.
type UI struct {
	cfg      Config
	backend  Backend
	log      *slog.Logger
	check    func(string) bool
	now      func() time.Time
	sessions *sessions
	idp      *idp // nil without OIDC
	pages    map[string]*template.Template
}

// New builds the UI from a validated configuration.
func New(cfg Config, o Options) (*UI, error) {
	if o.Backend == nil {
		return nil, errors.New("ui: no backend")
	}
	u := &UI{cfg: cfg, backend: o.Backend, log: o.Logger, check: o.CheckToken, now: o.Now}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	if u.now == nil {
		u.now = time.Now
	}
	ttl := cfg.SessionTTL
	if ttl == 0 {
		ttl = DefaultSessionTTL
	}
	u.sessions = newSessions(u.now, ttl)
	if cfg.OIDC.Enabled() {
		u.idp = newIDP(cfg.OIDC)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	u.pages = pages
	return u, nil
}

// parsePages parses each page together with the layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || base == "partials" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/partials.html", n)
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", n, err)
		}
		out[base] = t
	}
	return out, nil
}

// Handler serves every page under /ui/.
func (u *UI) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /ui/login", u.handleLoginPage)
	mux.HandleFunc("POST /ui/login/token", u.handleTokenLogin)
	mux.HandleFunc("GET /ui/login/oidc", u.handleOIDCStart)
	mux.HandleFunc("GET /ui/callback", u.handleCallback)
	mux.Handle("POST /ui/logout", u.authed(false, u.handleLogout))

	mux.Handle("GET /ui/{$}", u.authed(false, u.handleOverview))
	mux.Handle("GET /ui/runs/{id}", u.authed(false, u.handleRun))
	mux.Handle("GET /ui/plan", u.authed(false, u.handlePlan))
	mux.Handle("GET /ui/explain", u.authed(false, u.handleExplain))
	mux.Handle("GET /ui/actions/{$}", u.authed(true, func(w http.ResponseWriter, r *http.Request) {
		u.render(w, r, http.StatusOK, "actions", principalOf(r), pageData{Title: "Actions", Nav: "actions"})
	}))
	mux.Handle("GET /ui/actions/run", u.authed(true, u.handleRunConfirm))
	mux.Handle("POST /ui/actions/run", u.authed(true, u.handleRunDo))
	mux.Handle("GET /ui/actions/provision", u.authed(true, u.handleProvisionConfirm))
	mux.Handle("POST /ui/actions/provision", u.authed(true, u.handleProvisionDo))
	mux.Handle("GET /ui/actions/force", u.authed(true, u.handleForceConfirm))
	mux.Handle("POST /ui/actions/force", u.authed(true, u.handleForceDo))
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		u.render(w, r, http.StatusNotFound, "error", nil, pageData{Title: "Not found", Message: "There is no such page."})
	})
	return secureHeaders(mux)
}

// secureHeaders: nothing from elsewhere, no framing, no caching of pages, no referrer (a
// callback URL carries the authorization code).
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}
