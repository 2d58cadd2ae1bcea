package provisioning

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/internal/testenv"
	"github.com/babelforce/bridge/oidc"
)

// ssoFakeBabelforce models babelforce's (assumed) SSO and SCIM configuration endpoints the way
// the simulator documents them: the secret is masked on read and kept by a PUT without one.
type ssoFakeBabelforce struct {
	mu     sync.Mutex
	sso    babelforce.SSOConfig
	scim   babelforce.SCIMConfiguration
	calls  map[string]int
	secret string
}

func newSSOFake() *ssoFakeBabelforce {
	return &ssoFakeBabelforce{calls: map[string]int{},
		scim: babelforce.SCIMConfiguration{DefaultRoles: []string{}, Features: babelforce.SCIMFeatures{SCIM: true, Roles: true}}}
}

func (f *ssoFakeBabelforce) masked() *babelforce.SSOConfig {
	c := f.sso
	c.Scopes = slices.Clone(c.Scopes)
	if f.secret != "" {
		c.ClientSecret = "********"
	}
	return &c
}

func (f *ssoFakeBabelforce) GetSSOConfig(context.Context) (*babelforce.SSOConfig, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["GET /auth/sso/configuration"]++
	return f.masked(), nil
}

func (f *ssoFakeBabelforce) PutSSOConfig(_ context.Context, c *babelforce.SSOConfig) (*babelforce.SSOConfig, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["PUT /auth/sso/configuration"]++
	if c.ClientSecret != "" && c.ClientSecret != "********" {
		f.secret = c.ClientSecret
	}
	f.sso = *c
	f.sso.ClientSecret = ""
	f.sso.RedirectURIs = map[string]string{
		"manager": "https://services.babelforce.com/auth/sso/callback/manager",
		"agent":   "https://services.babelforce.com/auth/sso/callback/agent",
	}
	return f.masked(), nil
}

func (f *ssoFakeBabelforce) GetSCIMConfiguration(context.Context) (*babelforce.SCIMConfiguration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["GET /auth/scim/v2/configuration"]++
	c := f.scim
	c.DefaultRoles = slices.Clone(c.DefaultRoles)
	return &c, nil
}

func (f *ssoFakeBabelforce) PutSCIMConfiguration(_ context.Context, c *babelforce.SCIMConfiguration) (*babelforce.SCIMConfiguration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["PUT /auth/scim/v2/configuration"]++
	f.scim = *c
	f.scim.DefaultRoles = slices.Clone(c.DefaultRoles)
	return c, nil
}

func (f *ssoFakeBabelforce) Calls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.calls {
		out[k] = v
	}
	return out
}

func (f *ssoFakeBabelforce) WriteCalls() int {
	n := 0
	for k, v := range f.Calls() {
		if !strings.HasPrefix(k, "GET ") {
			n += v
		}
	}
	return n
}

func (f *ssoFakeBabelforce) storedSecret() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.secret
}

const ssoPutKey = "PUT /auth/sso/configuration"

// ssoRun plans and applies, returning the changes planned.
func ssoRun(t *testing.T, task *SSOTask) []Change {
	t.Helper()
	ctx := context.Background()
	changes, err := task.Plan(ctx)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	for _, c := range changes {
		if err := task.Apply(ctx, c); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	return changes
}

// ssoRunState is ssoRun with the fingerprint in st, as a run of the reconciler keeps it: a
// state shared by several tasks is what replicas and restarts share.
func ssoRunState(t *testing.T, task *SSOTask, st *state) []Change {
	t.Helper()
	ctx := context.Background()
	changes, err := task.planState(ctx, st)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	for _, c := range changes {
		if err := task.applyState(ctx, c, st); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	return changes
}

func ssoFieldNames(cs []Change) []string {
	var out []string
	for _, c := range cs {
		for _, f := range c.Fields {
			out = append(out, f.Field)
		}
	}
	return out
}

// ssoNoSecret fails when any of the secrets appears in what the plan, the logs or the
// fingerprint file show.
func ssoNoSecret(t *testing.T, where string, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s contains the client secret %q:\n%s", where, s, text)
		}
	}
}

func ssoChangesText(t *testing.T, cs []Change) string {
	b, err := json.Marshal(cs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + fmt.Sprintf("\n%+v", cs)
}

func TestSSOApplyIdempotentAndDrift(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	bf := newSSOFake()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	shared := newState() // the reconciler's state: what restarts and replicas share
	cfg := oidc.Config{
		Enabled: true, Issuer: op.Issuer, ClientID: op.ClientID, ClientSecret: op.ClientSecret,
		AllowInsecureHTTP: true,
	}
	newTask := func(cfg oidc.Config) *SSOTask {
		task, err := NewSSOTask(cfg, bf, WithSSOLogger(logger))
		if err != nil {
			t.Fatal(err)
		}
		return task
	}
	task := newTask(cfg)
	if task.Name() != "sso" {
		t.Errorf("Name = %q", task.Name())
	}

	// First run: everything differs, one write.
	changes := ssoRunState(t, task, shared)
	if len(changes) != 1 || changes[0].Kind != UpdateSSO || changes[0].Subject != "sso" {
		t.Fatalf("first plan: %+v", changes)
	}
	var secretField *FieldChange
	for i, f := range changes[0].Fields {
		if f.Field == "clientSecret" {
			secretField = &changes[0].Fields[i]
		}
	}
	if secretField == nil || secretField.Before != "(not set)" || secretField.After != "(set)" {
		t.Errorf("secret field: %+v", secretField)
	}
	all := ssoChangesText(t, changes)
	if got := bf.Calls()[ssoPutKey]; got != 1 {
		t.Fatalf("PUT calls after first apply = %d, want 1", got)
	}
	st := bf.masked()
	if !st.Enabled || st.Issuer != op.Issuer || st.AuthorizationEndpoint != op.Issuer+"/auth" ||
		st.TokenEndpoint != op.Issuer+"/oauth/token" || st.ClientID != op.ClientID ||
		!slices.Equal(st.Scopes, []string{"openid", "email", "profile"}) || st.Claims["email"] != "email" || st.Claims["name"] != "name" {
		t.Errorf("stored config: %+v", st)
	}
	if bf.storedSecret() != op.ClientSecret {
		t.Errorf("stored secret wrong")
	}
	uris, err := task.RedirectURIs(context.Background())
	if err != nil || uris["manager"] == "" || uris["agent"] == "" {
		t.Errorf("RedirectURIs: %v %v", uris, err)
	}

	// Second run: nothing to do.
	if cs := ssoRunState(t, task, shared); len(cs) != 0 {
		t.Errorf("second plan: %+v", cs)
	}
	// A new process with the same state: still nothing (the secret is known).
	if cs := ssoRunState(t, newTask(cfg), shared); len(cs) != 0 {
		t.Errorf("plan after restart: %+v", cs)
	}
	if got := bf.Calls()[ssoPutKey]; got != 1 {
		t.Fatalf("PUT calls after no-op runs = %d, want 1", got)
	}

	// Changing the client id: one write, only clientId differs; the redirect URIs are named.
	cfg2 := cfg
	cfg2.ClientID = "another-client"
	changes = ssoRunState(t, newTask(cfg2), shared)
	if names := ssoFieldNames(changes); !slices.Equal(names, []string{"clientId"}) {
		t.Errorf("client id change fields: %v", names)
	}
	if !strings.Contains(changes[0].Reason, "/auth/sso/callback/agent") {
		t.Errorf("reason lacks the redirect URIs: %q", changes[0].Reason)
	}
	all += ssoChangesText(t, changes)
	if got := bf.Calls()[ssoPutKey]; got != 2 {
		t.Fatalf("PUT calls after client id change = %d, want 2", got)
	}
	if cs := ssoRunState(t, newTask(cfg2), shared); len(cs) != 0 {
		t.Errorf("plan after client id change: %+v", cs)
	}

	// Changing the secret: one write, seen through the fingerprint only.
	cfg3 := cfg2
	cfg3.ClientSecret = "rotated-secret-9f8e7d"
	task3 := newTask(cfg3)
	changes = ssoRunState(t, task3, shared)
	if len(changes) != 1 || len(changes[0].Fields) != 1 || changes[0].Fields[0] != (FieldChange{Field: "clientSecret", Before: "(hidden)", After: "(changed)"}) {
		t.Errorf("secret change: %+v", changes)
	}
	all += ssoChangesText(t, changes)
	if got := bf.Calls()[ssoPutKey]; got != 3 {
		t.Fatalf("PUT calls after secret change = %d, want 3", got)
	}
	if bf.storedSecret() != "rotated-secret-9f8e7d" {
		t.Errorf("rotated secret not stored")
	}
	if cs := ssoRunState(t, task3, shared); len(cs) != 0 {
		t.Errorf("plan after secret change: %+v", cs)
	}
	if got := bf.Calls()[ssoPutKey]; got != 3 {
		t.Errorf("PUT calls = %d, want 3", got)
	}

	fp, err := json.Marshal(shared)
	if err != nil || shared.SSOSecret == nil || shared.SSOSecret.Fingerprint == "" {
		t.Fatalf("state after the runs: %s, %v", fp, err)
	}
	secrets := []string{op.ClientSecret, "rotated-secret-9f8e7d"}
	ssoNoSecret(t, "plan", all, secrets...)
	ssoNoSecret(t, "logs", logs.String(), secrets...)
	ssoNoSecret(t, "state", string(fp), secrets...)
	if !strings.Contains(logs.String(), "sso configuration updated") {
		t.Errorf("no update logged:\n%s", logs.String())
	}
}

func TestSSOInMemoryFingerprintAndUnknownSecret(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	bf := newSSOFake()
	// babelforce already holds a secret someone set by hand, with the same settings otherwise.
	_, _ = bf.PutSSOConfig(context.Background(), &babelforce.SSOConfig{
		Enabled: true, Issuer: op.Issuer, AuthorizationEndpoint: op.Issuer + "/auth", TokenEndpoint: op.Issuer + "/oauth/token",
		ClientID: op.ClientID, ClientSecret: "set-by-hand", Scopes: []string{"profile", "email", "openid"},
		Claims: map[string]string{"email": "email", "name": "name"},
	})
	task, err := NewSSOTask(oidc.Config{Enabled: true, Issuer: op.Issuer, ClientID: op.ClientID,
		ClientSecret: op.ClientSecret, AllowInsecureHTTP: true}, bf)
	if err != nil {
		t.Fatal(err)
	}
	changes := ssoRun(t, task)
	if len(changes) != 1 || len(changes[0].Fields) != 1 ||
		changes[0].Fields[0] != (FieldChange{Field: "clientSecret", Before: "(unknown)", After: "(changed)"}) {
		t.Errorf("unknown secret (scope order must not matter): %+v", changes)
	}
	if cs := ssoRun(t, task); len(cs) != 0 {
		t.Errorf("second run: %+v", cs)
	}
	if got := bf.Calls()[ssoPutKey]; got != 2 { // the seeding PUT and one apply
		t.Errorf("PUT calls = %d, want 2", got)
	}
}

func TestSSOEndpointOverrides(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	bf := newSSOFake()
	task, err := NewSSOTask(oidc.Config{Enabled: true, Issuer: op.Issuer, ClientID: "c", ClientSecret: "s",
		AllowInsecureHTTP: true, TokenEndpoint: "https://proxy.example.com/token", IdentityClaim: "preferred_username"}, bf)
	if err != nil {
		t.Fatal(err)
	}
	ssoRun(t, task)
	st := bf.masked()
	if st.TokenEndpoint != "https://proxy.example.com/token" || st.AuthorizationEndpoint != op.Issuer+"/auth" || st.Claims["email"] != "preferred_username" {
		t.Errorf("stored: %+v", st)
	}
}

// ssoExpectRefused asserts that the task refuses to plan and apply with want in the error,
// and that babelforce was neither read nor written.
func ssoExpectRefused(t *testing.T, cfg oidc.Config, want string) {
	t.Helper()
	bf := newSSOFake()
	var logs bytes.Buffer
	task, err := NewSSOTask(cfg, bf, WithSSOLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cs, err := task.Plan(ctx)
	if err == nil || len(cs) != 0 {
		t.Fatalf("Plan: changes %+v, err %v; want refusal", cs, err)
	}
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "babelforce left unchanged") {
		t.Errorf("Plan error %q lacks %q", err, want)
	}
	if err := task.Apply(ctx, Change{Kind: UpdateSSO, Subject: "sso"}); err == nil {
		t.Errorf("Apply without a valid IdP succeeded")
	}
	if n := bf.WriteCalls(); n != 0 {
		t.Errorf("babelforce got %d writes", n)
	}
	if n := len(bf.Calls()); n != 0 {
		t.Errorf("babelforce was called: %v", bf.Calls())
	}
	if rep := task.LastReport(); rep == nil || rep.OK() {
		t.Errorf("LastReport: %+v", rep)
	}
	ssoNoSecret(t, "logs", logs.String()+err.Error(), cfg.ClientSecret)
}

func TestSSORefusesBadIssuer(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	base := oidc.Config{Enabled: true, ClientID: op.ClientID, ClientSecret: "refused-secret-123", AllowInsecureHTTP: true}

	t.Run("trailing slash", func(t *testing.T) {
		cfg := base
		cfg.Issuer = op.Issuer + "/"
		ssoExpectRefused(t, cfg, "trailing slash")
	})
	t.Run("unreachable JWKS", func(t *testing.T) {
		dead := testenv.ClosedURL(t) + "/keys"
		d := testenv.StartDiscoveryServer(t, func(iss string) map[string]any {
			doc := op.DiscoveryDocument(t)
			doc["issuer"], doc["jwks_uri"] = iss, dead
			return doc
		})
		cfg := base
		cfg.Issuer = d.URL
		ssoExpectRefused(t, cfg, "JWKS at "+dead+" is unreachable")
	})
	t.Run("no email scope", func(t *testing.T) {
		d := testenv.StartDiscoveryServer(t, func(iss string) map[string]any {
			doc := op.DiscoveryDocument(t)
			doc["issuer"], doc["scopes_supported"] = iss, []string{"openid", "profile"}
			return doc
		})
		cfg := base
		cfg.Issuer = d.URL
		ssoExpectRefused(t, cfg, "scopes_supported lacks scope email")
	})
	t.Run("unreachable issuer", func(t *testing.T) {
		cfg := base
		cfg.Issuer = testenv.ClosedURL(t)
		ssoExpectRefused(t, cfg, cfg.Issuer+"/.well-known/openid-configuration")
	})
	t.Run("client credentials rejected", func(t *testing.T) {
		cfg := base
		cfg.Issuer, cfg.ClientID, cfg.CheckClientCredentials = op.Issuer, op.ServiceClientID, true
		ssoExpectRefused(t, cfg, "invalid_client")
	})
	t.Run("http on a non-loopback host", func(t *testing.T) {
		bf := newSSOFake()
		cfg := base
		cfg.Issuer = "http://idp.example.com"
		_, err := NewSSOTask(cfg, bf)
		if err == nil || !strings.Contains(err.Error(), `plain http on non-loopback host "idp.example.com"`) {
			t.Errorf("NewSSOTask: %v", err)
		}
		if len(bf.Calls()) != 0 {
			t.Errorf("babelforce called: %v", bf.Calls())
		}
	})
}

func TestSSOClientCredentialsCheckPasses(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	bf := newSSOFake()
	task, err := NewSSOTask(oidc.Config{Enabled: true, Issuer: op.Issuer, ClientID: op.ServiceClientID,
		ClientSecret: op.ServiceSecret, AllowInsecureHTTP: true, CheckClientCredentials: true}, bf)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := task.Check(context.Background())
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	found := false
	for _, f := range rep.Findings {
		if f.Check == oidc.CheckClientCredentialsGrant && f.OK {
			found = true
		}
	}
	if !found {
		t.Errorf("no passing client credentials finding: %+v", rep.Findings)
	}
	if len(bf.Calls()) != 0 {
		t.Errorf("Check called babelforce: %v", bf.Calls())
	}
}

func TestSSODisabledDoesNothing(t *testing.T) {
	bf := newSSOFake()
	task, err := NewSSOTask(oidc.Config{}, bf)
	if err != nil {
		t.Fatal(err)
	}
	if cs := ssoRun(t, task); len(cs) != 0 || len(bf.Calls()) != 0 {
		t.Errorf("disabled: changes %+v calls %v", cs, bf.Calls())
	}
	if _, err := NewSSOTask(oidc.Config{Enabled: true, Issuer: "https://idp.example.com", ClientID: "c", ClientSecretFile: "/x"}, bf); err == nil ||
		!strings.Contains(err.Error(), "not loaded") {
		t.Errorf("secret not loaded: %v", err)
	}
	if err := task.Apply(context.Background(), Change{Kind: CreateAgent}); err == nil {
		t.Errorf("Apply of a foreign kind succeeded")
	}
}

func TestSSOFingerprintFileDamaged(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	bf := newSSOFake()
	_, _ = bf.PutSSOConfig(context.Background(), &babelforce.SSOConfig{ClientSecret: "x"})
	fp := filepath.Join(t.TempDir(), "fp")
	_ = os.WriteFile(fp, []byte("not json"), 0o600)
	task, err := NewSSOTask(oidc.Config{Enabled: true, Issuer: op.Issuer, ClientID: "c", ClientSecret: "s",
		AllowInsecureHTTP: true, FingerprintFile: fp}, bf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := task.Plan(context.Background()); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged fingerprint file: %v", err)
	}
}

// TestSSOFingerprintFileImported: the fingerprint of the deprecated sso.fingerprint_file is
// moved into the reconciler's state once, so an upgrade does not send the secret again; after
// that the state's fingerprint is the one that counts, even if the file is gone.
func TestSSOFingerprintFileImported(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	bf := newSSOFake()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := oidc.Config{Enabled: true, Issuer: op.Issuer, ClientID: op.ClientID, ClientSecret: op.ClientSecret, AllowInsecureHTTP: true}
	old := newState()
	task, err := NewSSOTask(cfg, bf)
	if err != nil {
		t.Fatal(err)
	}
	ssoRunState(t, task, old) // babelforce holds the secret, old has its fingerprint
	// the file an older bridge wrote
	fp := filepath.Join(t.TempDir(), "sso.fingerprint")
	b, _ := json.Marshal(map[string]any{"version": 1, "key": old.SSOSecret.Key, "fingerprint": old.SSOSecret.Fingerprint})
	if err := os.WriteFile(fp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.FingerprintFile = fp
	upgraded, err := NewSSOTask(cfg, bf, WithSSOLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	st := newState()
	if cs := ssoRunState(t, upgraded, st); len(cs) != 0 || bf.Calls()[ssoPutKey] != 1 {
		t.Fatalf("after the upgrade: changes %+v, %d PUTs; want none, 1", cs, bf.Calls()[ssoPutKey])
	}
	if st.SSOSecret == nil || *st.SSOSecret != *old.SSOSecret {
		t.Errorf("state after the import: %+v, want the file's %+v", st.SSOSecret, old.SSOSecret)
	}
	if !strings.Contains(logs.String(), "imported the secret's fingerprint from sso.fingerprint_file") {
		t.Errorf("the import is not logged:\n%s", logs.String())
	}
	// the file is no longer read once the state has a fingerprint
	if err := os.WriteFile(fp, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cs := ssoRunState(t, upgraded, st); len(cs) != 0 {
		t.Errorf("with the state's fingerprint and a damaged file: %+v", cs)
	}
}

// The reconciler runs both tasks as side tasks.
var (
	_ SideTask = (*SSOTask)(nil)
	_ SideTask = (*SCIMConfigTask)(nil)
)

// TestSSOCAFile: an IdP behind a private CA fails the check with an error that names
// sso.ca_file; with that CA in sso.ca_file the same IdP passes.
func TestSSOCAFile(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	idp := httptest.NewTLSServer(nil)
	defer idp.Close()
	idp.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		doc := op.DiscoveryDocument(t)
		doc["issuer"] = idp.URL
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	})
	cfg := oidc.Config{Enabled: true, Issuer: idp.URL, ClientID: op.ClientID, ClientSecret: op.ClientSecret, AllowInsecureHTTP: true}

	task, err := NewSSOTask(cfg, newSSOFake())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := task.Check(context.Background())
	if err == nil || rep.OK() {
		t.Fatalf("an IdP behind an unknown CA passed the check: %v", err)
	}
	var b bytes.Buffer
	_ = rep.WriteText(&b)
	if !strings.Contains(b.String(), "set sso.ca_file to the PEM file of the CA") {
		t.Errorf("the certificate failure does not name sso.ca_file:\n%s", b.String())
	}

	ca := filepath.Join(t.TempDir(), "idp-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: idp.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.CAFile = ca
	task, err = NewSSOTask(cfg, newSSOFake())
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := task.Check(context.Background()); err != nil || !rep.OK() {
		b.Reset()
		_ = rep.WriteText(&b)
		t.Errorf("with sso.ca_file the IdP still fails: %v\n%s", err, b.String())
	}

	cfg.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := NewSSOTask(cfg, newSSOFake()); err == nil || !strings.Contains(err.Error(), "sso.ca_file") {
		t.Errorf("a missing sso.ca_file: %v", err)
	}
}
