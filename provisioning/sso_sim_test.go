package provisioning

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/internal/testenv"
	"github.com/babelforce/bridge/oidc"
)

// ssoSim starts the babelforce simulator and a client for it that logs into logs.
func ssoSim(t *testing.T, logs *bytes.Buffer) (*babelforcetest.Server, *babelforce.Client) {
	t.Helper()
	sim := babelforcetest.New(t, babelforcetest.Options{})
	c, err := babelforce.New(babelforce.Config{BaseURL: sim.URL, Username: sim.Username, Password: sim.Password},
		babelforce.WithLogger(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

// TestSSOAgainstSimulator is the end-to-end case: the zitadel example OP as IdP, the
// babelforce simulator as babelforce.
func TestSSOAgainstSimulator(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	var logs bytes.Buffer
	sim, client := ssoSim(t, &logs)
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	shared := newState() // the reconciler's state every run (and replica) shares
	cfg := oidc.Config{Enabled: true, Issuer: op.Issuer, ClientID: op.ClientID, ClientSecret: op.ClientSecret,
		AllowInsecureHTTP: true}
	run := func(cfg oidc.Config) []Change {
		t.Helper()
		task, err := NewSSOTask(cfg, client, WithSSOLogger(logger))
		if err != nil {
			t.Fatal(err)
		}
		return ssoRunState(t, task, shared)
	}
	puts := func() int { return sim.Calls()[ssoPutKey] }

	all := ssoChangesText(t, run(cfg))
	if puts() != 1 {
		t.Fatalf("PUT calls = %d after first apply, want 1", puts())
	}
	st := sim.SSOConfig()
	if !st.Enabled || st.Issuer != op.Issuer || st.ClientID != op.ClientID || st.ClientSecret != op.ClientSecret ||
		st.AuthorizationEndpoint != op.Issuer+"/auth" || st.TokenEndpoint != op.Issuer+"/oauth/token" {
		t.Errorf("simulator holds %+v", st)
	}
	if cs := run(cfg); len(cs) != 0 || puts() != 1 {
		t.Errorf("second apply: changes %+v, PUT calls %d", cs, puts())
	}

	cfg.ClientID = "renamed-client"
	cs := run(cfg)
	all += ssoChangesText(t, cs)
	if names := ssoFieldNames(cs); len(names) != 1 || names[0] != "clientId" || puts() != 2 {
		t.Errorf("client id change: fields %v, PUT calls %d", names, puts())
	}
	if sim.SSOConfig().ClientID != "renamed-client" {
		t.Errorf("client id not stored")
	}

	cfg.ClientSecret = "second-secret-5c4b3a"
	cs = run(cfg)
	all += ssoChangesText(t, cs)
	if names := ssoFieldNames(cs); len(names) != 1 || names[0] != "clientSecret" || puts() != 3 {
		t.Errorf("secret change: fields %v, PUT calls %d", names, puts())
	}
	if sim.SSOConfig().ClientSecret != "second-secret-5c4b3a" {
		t.Errorf("secret not stored")
	}
	if cs := run(cfg); len(cs) != 0 || puts() != 3 {
		t.Errorf("after secret change: changes %+v, PUT calls %d", cs, puts())
	}

	task, _ := NewSSOTask(cfg, client)
	uris, err := task.RedirectURIs(context.Background())
	if err != nil || uris["manager"] != sim.URL+"/auth/sso/callback/manager" || uris["agent"] != sim.URL+"/auth/sso/callback/agent" {
		t.Errorf("redirect URIs %v, %v", uris, err)
	}

	fpText, _ := json.Marshal(shared)
	secrets := []string{op.ClientSecret, "second-secret-5c4b3a"}
	ssoNoSecret(t, "plan", all, secrets...)
	ssoNoSecret(t, "logs", logs.String(), secrets...)
	ssoNoSecret(t, "state", string(fpText), secrets...)
}

func TestSSORefusalWritesNothingToSimulator(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	cases := map[string]func(t *testing.T) string{
		"trailing slash": func(*testing.T) string { return op.Issuer + "/" },
		"unreachable JWKS": func(t *testing.T) string {
			dead := testenv.ClosedURL(t)
			return testenv.StartDiscoveryServer(t, func(iss string) map[string]any {
				doc := op.DiscoveryDocument(t)
				doc["issuer"], doc["jwks_uri"] = iss, dead+"/keys"
				return doc
			}).URL
		},
		"no email scope": func(t *testing.T) string {
			return testenv.StartDiscoveryServer(t, func(iss string) map[string]any {
				doc := op.DiscoveryDocument(t)
				doc["issuer"], doc["scopes_supported"] = iss, []string{"openid"}
				return doc
			}).URL
		},
	}
	for name, issuer := range cases {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			sim, client := ssoSim(t, &logs)
			task, err := NewSSOTask(oidc.Config{Enabled: true, Issuer: issuer(t), ClientID: "c", ClientSecret: "never-sent-1",
				AllowInsecureHTTP: true}, client)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := task.Plan(ctx); err == nil {
				t.Fatal("Plan succeeded")
			}
			if err := task.Apply(ctx, Change{Kind: UpdateSSO, Subject: "sso"}); err == nil {
				t.Fatal("Apply succeeded")
			}
			if sim.WriteCalls() != 0 || sim.Calls()[ssoPutKey] != 0 {
				t.Errorf("simulator written: %v", sim.Calls())
			}
			if sim.SSOConfig().ClientSecret != "" {
				t.Errorf("secret reached the simulator")
			}
		})
	}
}

func TestSCIMConfigAgainstSimulator(t *testing.T) {
	var logs bytes.Buffer
	sim, client := ssoSim(t, &logs)
	cfg := SCIMConfigConfig{Manage: true, DefaultRoles: []string{"agent"}, Customizer: "microsoft",
		Features: babelforce.SCIMFeatures{SCIM: true, Roles: true, PhoneNumberSync: true}}
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		task, err := NewSCIMConfigTask(cfg, client)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := task.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := 1 - i; len(cs) != want {
			t.Fatalf("run %d: %d changes, want %d: %+v", i+1, len(cs), want, cs)
		}
		for _, c := range cs {
			if err := task.Apply(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := sim.Calls()[scimConfigPutKey]; n != 1 || sim.WriteCalls() != 1 {
		t.Errorf("PUT calls %d, writes %d; want 1, 1", n, sim.WriteCalls())
	}
	got := sim.SCIMConfiguration()
	if len(got.DefaultRoles) != 1 || got.DefaultRoles[0] != "agent" || got.Customizer != "microsoft" || got.Features != cfg.Features {
		t.Errorf("simulator holds %+v", got)
	}
	if strings.Contains(logs.String(), "password") && strings.Contains(logs.String(), sim.Password) {
		t.Errorf("client logged the babelforce password")
	}
}
