package provisioning

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/internal/httpx"
	"github.com/babelforce/bridge/oidc"
)

// SSOTarget is the part of babelforce the SSO task reads and writes (*babelforce.Client).
type SSOTarget interface {
	GetSSOConfig(ctx context.Context) (*babelforce.SSOConfig, error)
	PutSSOConfig(ctx context.Context, cfg *babelforce.SSOConfig) (*babelforce.SSOConfig, error)
}

// SSOSubject is the Subject of the UpdateSSO change.
const SSOSubject = "sso"

// Values shown for the client secret in a plan: never the secret itself.
const (
	ssoSecretNotSet  = "(not set)"
	ssoSecretSet     = "(set)"
	ssoSecretHidden  = "(hidden)"
	ssoSecretUnknown = "(unknown)"
	ssoSecretChanged = "(changed)"
)

// SSOOption configures an SSOTask.
type SSOOption func(*SSOTask)

// WithSSOLogger sets the logger (default: discard).
func WithSSOLogger(l *slog.Logger) SSOOption {
	return func(t *SSOTask) {
		if l != nil {
			t.log = l
		}
	}
}

// SSOTask keeps babelforce's OpenID Connect configuration equal to the `sso:` section. It is a
// side task of the reconciler: Plan validates the IdP first (discovery, issuer, endpoints,
// JWKS, scopes, claims) and writes nothing when that fails; it then compares the desired
// configuration with babelforce's, field by field, and plans one UpdateSSO change when they
// differ. The client secret is write-only in babelforce, so the task keeps a keyed fingerprint
// of the secret it last sent in the reconciler's state (the store the replicas share, or
// sync.state_file) to know when it changed; a run of the reconciler hands it the state.
// oidc.Config.FingerprintFile (deprecated) is imported into the state once, while the state
// has no fingerprint yet.
type SSOTask struct {
	cfg        oidc.Config
	tgt        SSOTarget
	log        *slog.Logger
	httpClient *http.Client

	// memMu guards mem: the state of Plan and Apply called outside a run of the reconciler.
	memMu sync.Mutex
	mem   *state

	mu       sync.Mutex
	imported bool                  // the fingerprint file was imported once (logged once)
	planned  *babelforce.SSOConfig // desired config of the last Plan that found a difference
	report   *oidc.Report          // report of the last check
	current  map[string]string     // redirect URIs babelforce reported last
}

// NewSSOTask returns the SSO side task. The configuration must be valid and its secret loaded
// (oidc.Config.LoadSecrets) when the section is enabled.
func NewSSOTask(cfg oidc.Config, tgt SSOTarget, opts ...SSOOption) (*SSOTask, error) {
	if tgt == nil {
		return nil, errors.New("sso task: no babelforce target")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sso task: %w", err)
	}
	if cfg.Enabled && cfg.ClientSecret == "" {
		return nil, errors.New("sso task: the client secret is not loaded (set BRIDGE_SSO_CLIENT_SECRET or sso.client_secret_file)")
	}
	t := &SSOTask{
		cfg: cfg.WithDefaults(),
		tgt: tgt,
		log: slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(t)
	}
	if cfg.CAFile != "" {
		tr, err := httpx.Transport(cfg.CAFile, false)
		if err != nil {
			return nil, fmt.Errorf("sso.%w", err) // "sso.ca_file: ..."
		}
		t.httpClient = &http.Client{Transport: tr, Timeout: ssoHTTPTimeout}
	}
	return t, nil
}

// ssoHTTPTimeout bounds one request to the IdP of a client built from sso.ca_file.
const ssoHTTPTimeout = 15 * time.Second

// Name names the task in logs and reports.
func (t *SSOTask) Name() string { return "sso" }

// Check validates the IdP (discovery and, when check_client_credentials is set, the client
// credentials) without touching babelforce. The error is non-nil when a check failed; the
// report is returned either way.
func (t *SSOTask) Check(ctx context.Context) (*oidc.Report, error) {
	rep, _, err := t.check(ctx)
	return rep, err
}

// LastReport returns the report of the last Check or Plan (nil before the first).
func (t *SSOTask) LastReport() *oidc.Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.report
}

func (t *SSOTask) check(ctx context.Context) (*oidc.Report, *oidc.Provider, error) {
	prov, rep, err := oidc.Discover(ctx, t.cfg.Issuer, oidc.DiscoverOptions{
		HTTPClient:        t.httpClient,
		AllowInsecureHTTP: t.cfg.AllowInsecureHTTP,
		IdentityClaim:     t.cfg.IdentityClaim,
		CASetting:         "sso.ca_file",
	})
	if err == nil {
		t.checkConfiguredScopes(rep, prov)
		if t.cfg.CheckClientCredentials {
			rep.Findings = append(rep.Findings, oidc.CheckClientCredentials(ctx, prov, t.cfg.ClientID, t.cfg.ClientSecret))
			err = rep.Err()
		}
	}
	t.mu.Lock()
	t.report = rep
	t.mu.Unlock()
	for _, f := range rep.Findings {
		if !f.OK {
			t.log.LogAttrs(ctx, ssoLevel(f), "sso issuer check", slog.String("check", f.Check),
				slog.String("severity", f.Severity), slog.String("message", f.Message))
		}
	}
	if err != nil {
		return rep, nil, err
	}
	return rep, prov, nil
}

// checkConfiguredScopes warns about configured scopes the IdP does not advertise (IdPs may
// leave some out of scopes_supported, so this is no error).
func (t *SSOTask) checkConfiguredScopes(rep *oidc.Report, prov *oidc.Provider) {
	if prov.ScopesSupported == nil {
		return
	}
	var missing []string
	for _, s := range t.cfg.Scopes {
		if !slices.Contains(prov.ScopesSupported, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		rep.Findings = append(rep.Findings, oidc.Finding{
			Check: oidc.CheckScopes, Severity: oidc.SeverityWarning,
			Expected: strings.Join(t.cfg.Scopes, ", "), Found: strings.Join(prov.ScopesSupported, ", "),
			Message: fmt.Sprintf("configured scopes %s are not in scopes_supported; sign-in fails if the IdP rejects them", strings.Join(missing, ", ")),
		})
	}
}

func ssoLevel(f oidc.Finding) slog.Level {
	if f.Failed() {
		return slog.LevelError
	}
	return slog.LevelWarn
}

// desired builds the configuration babelforce should hold.
func (t *SSOTask) desired(prov *oidc.Provider) *babelforce.SSOConfig {
	d := &babelforce.SSOConfig{
		Enabled:               true,
		Issuer:                t.cfg.Issuer,
		AuthorizationEndpoint: prov.AuthorizationEndpoint,
		TokenEndpoint:         prov.TokenEndpoint,
		ClientID:              t.cfg.ClientID,
		ClientSecret:          t.cfg.ClientSecret,
		Scopes:                slices.Clone(t.cfg.Scopes),
		Claims:                map[string]string{"email": t.cfg.IdentityClaim, "name": t.cfg.NameClaim},
	}
	if t.cfg.AuthorizationEndpoint != "" {
		d.AuthorizationEndpoint = t.cfg.AuthorizationEndpoint
	}
	if t.cfg.TokenEndpoint != "" {
		d.TokenEndpoint = t.cfg.TokenEndpoint
	}
	return d
}

// Plan validates the IdP, reads babelforce's SSO configuration and returns one UpdateSSO change
// when it differs from the desired one (none when it matches or the section is disabled). A
// failed IdP check is an error listing every failed check; nothing is read from or written to
// babelforce then. Called outside a run of the reconciler, it compares the secret with a
// fingerprint kept in memory.
func (t *SSOTask) Plan(ctx context.Context) ([]Change, error) {
	t.memMu.Lock()
	defer t.memMu.Unlock()
	return t.planState(ctx, t.memState())
}

// Apply writes the configuration planned by the last Plan (planning again when there is none)
// and then records the secret's fingerprint. It answers only UpdateSSO changes. Called outside
// a run of the reconciler, the fingerprint is kept in memory.
func (t *SSOTask) Apply(ctx context.Context, c Change) error {
	t.memMu.Lock()
	defer t.memMu.Unlock()
	return t.applyState(ctx, c, t.memState())
}

// memState is the state of Plan and Apply outside a run; call with memMu held.
func (t *SSOTask) memState() *state {
	if t.mem == nil {
		t.mem = newState()
	}
	return t.mem
}

// planState is Plan with the fingerprint in st (a run's state).
func (t *SSOTask) planState(ctx context.Context, st *state) ([]Change, error) {
	t.mu.Lock()
	t.planned = nil
	t.mu.Unlock()
	if !t.cfg.Enabled {
		return nil, nil
	}
	_, prov, err := t.check(ctx)
	if err != nil {
		return nil, fmt.Errorf("sso: identity provider check failed, babelforce left unchanged: %w", err)
	}
	want := t.desired(prov)
	cur, err := t.tgt.GetSSOConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("sso: read babelforce SSO configuration: %w", err)
	}
	if cur == nil {
		cur = &babelforce.SSOConfig{}
	}
	secretBefore, secretAfter, err := t.secretState(ctx, cur, st)
	if err != nil {
		return nil, err
	}
	fields := ssoDiff(cur, want)
	if secretAfter != "" {
		fields = append(fields, FieldChange{Field: "clientSecret", Before: secretBefore, After: secretAfter})
	}
	t.mu.Lock()
	t.current = maps.Clone(cur.RedirectURIs)
	t.mu.Unlock()
	if len(fields) == 0 {
		t.log.DebugContext(ctx, "sso configuration unchanged", slog.String("issuer", t.cfg.Issuer))
		return nil, nil
	}
	t.mu.Lock()
	t.planned = want
	t.mu.Unlock()
	reason := "babelforce SSO configuration differs from the sso section"
	if uris := ssoFormatURIs(cur.RedirectURIs); uris != "" {
		reason += "; register these redirect URIs at the IdP: " + uris
	}
	return []Change{{Kind: UpdateSSO, Subject: SSOSubject, Fields: fields, Reason: reason}}, nil
}

// secretState compares the secret babelforce holds (masked) with the configured one through
// the fingerprint. It returns the before/after to show, after == "" when unchanged.
func (t *SSOTask) secretState(ctx context.Context, cur *babelforce.SSOConfig, st *state) (before, after string, err error) {
	if err := t.importFingerprintFile(ctx, st); err != nil {
		return "", "", fmt.Errorf("sso: %w", err)
	}
	if cur.ClientSecret == "" {
		return ssoSecretNotSet, ssoSecretSet, nil
	}
	known, matches, err := st.SSOSecret.matches(t.cfg.ClientSecret)
	if err != nil {
		return "", "", fmt.Errorf("sso: %w", err)
	}
	switch {
	case !known:
		return ssoSecretUnknown, ssoSecretChanged, nil
	case !matches:
		return ssoSecretHidden, ssoSecretChanged, nil
	}
	return "", "", nil
}

// importFingerprintFile moves the fingerprint of the deprecated sso.fingerprint_file into st
// while st has none (the run saves it; the file is left as it is).
func (t *SSOTask) importFingerprintFile(ctx context.Context, st *state) error {
	if t.cfg.FingerprintFile == "" || st.SSOSecret != nil {
		return nil
	}
	f, err := readFingerprintFile(t.cfg.FingerprintFile)
	if err != nil || f == nil {
		return err
	}
	st.SSOSecret = f
	t.mu.Lock()
	lvl := slog.LevelInfo
	if t.imported {
		lvl = slog.LevelDebug
	}
	t.imported = true
	t.mu.Unlock()
	t.log.Log(ctx, lvl, "sso: imported the secret's fingerprint from sso.fingerprint_file into the reconciler's state; the next run that writes saves it there, then remove sso.fingerprint_file from the configuration",
		"fingerprint_file", t.cfg.FingerprintFile)
	return nil
}

// applyState is Apply with the fingerprint recorded in st (a run's state, saved by the run).
func (t *SSOTask) applyState(ctx context.Context, c Change, st *state) error {
	if c.Kind != UpdateSSO {
		return fmt.Errorf("sso: cannot apply a %s change", c.Kind)
	}
	want, err := plannedOrReplan(ctx, &t.mu, &t.planned, func(ctx context.Context) ([]Change, error) { return t.planState(ctx, st) })
	if err != nil {
		return err
	}
	if want == nil {
		return nil // nothing differs any more
	}
	stored, err := t.tgt.PutSSOConfig(ctx, want)
	if err != nil {
		return fmt.Errorf("sso: update babelforce SSO configuration: %w", err)
	}
	t.mu.Lock()
	t.planned = nil
	if stored != nil {
		t.current = maps.Clone(stored.RedirectURIs)
	}
	uris := ssoFormatURIs(t.current)
	t.mu.Unlock()
	names := make([]string, 0, len(c.Fields))
	for _, f := range c.Fields {
		names = append(names, f.Field)
	}
	t.log.InfoContext(ctx, "sso configuration updated", slog.String("issuer", want.Issuer),
		slog.String("client_id", want.ClientID), slog.Any("fields", names), slog.String("redirect_uris", uris))
	if err := recordSecret(st, want.ClientSecret); err != nil {
		return fmt.Errorf("sso: configuration written, but %w (the secret will be sent again next run)", err)
	}
	return nil
}

// RedirectURIs returns the redirect URIs babelforce reports (for example "manager" and
// "agent"): the admin registers them with the IdP client.
func (t *SSOTask) RedirectURIs(ctx context.Context) (map[string]string, error) {
	cur, err := t.tgt.GetSSOConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("sso: read babelforce SSO configuration: %w", err)
	}
	if cur == nil {
		return map[string]string{}, nil
	}
	t.mu.Lock()
	t.current = maps.Clone(cur.RedirectURIs)
	t.mu.Unlock()
	out := maps.Clone(cur.RedirectURIs)
	if out == nil {
		out = map[string]string{}
	}
	return out, nil
}

func ssoFormatURIs(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ", ")
}

// ssoDiff compares everything but the secret and the read-only redirect URIs.
func ssoDiff(cur, want *babelforce.SSOConfig) []FieldChange {
	var d fieldDiff
	d.add("enabled", fmt.Sprint(cur.Enabled), fmt.Sprint(want.Enabled))
	d.add("issuer", cur.Issuer, want.Issuer)
	d.add("authorizationEndpoint", cur.AuthorizationEndpoint, want.AuthorizationEndpoint)
	d.add("tokenEndpoint", cur.TokenEndpoint, want.TokenEndpoint)
	d.add("clientId", cur.ClientID, want.ClientID)
	d.addSet("scopes", cur.Scopes, want.Scopes, " ")
	keys := slices.Concat(slices.Collect(maps.Keys(cur.Claims)), slices.Collect(maps.Keys(want.Claims)))
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		d.add("claims."+k, cur.Claims[k], want.Claims[k])
	}
	return d
}
