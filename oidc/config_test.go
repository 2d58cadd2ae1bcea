package oidc_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"
	"go.yaml.in/yaml/v3"

	"github.com/babelforce/bridge/oidc"
)

func TestConfigYAMLAndEnv(t *testing.T) {
	const doc = `
enabled: true
issuer: https://login.example.com/tenant/v2.0
client_id: babelforce
client_secret: from-yaml-must-be-ignored
scopes: [openid, email]
identity_claim: upn
allow_insecure_http: false
check_client_credentials: true
fingerprint_file: /var/lib/bridge/sso.fp
`
	var c oidc.Config
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	if c.ClientSecret != "" {
		t.Errorf("client secret read from YAML: %q", c.ClientSecret)
	}
	if !c.Enabled || c.Issuer != "https://login.example.com/tenant/v2.0" || c.ClientID != "babelforce" ||
		!slices.Equal(c.Scopes, []string{"openid", "email"}) || c.IdentityClaim != "upn" || !c.CheckClientCredentials ||
		c.FingerprintFile != "/var/lib/bridge/sso.fp" {
		t.Errorf("yaml: %+v", c)
	}
	env := envconfig.MapLookuper(map[string]string{
		"BRIDGE_SSO_CLIENT_SECRET": "s3cret",
		"BRIDGE_SSO_CLIENT_ID":     "from-env",
		"BRIDGE_SSO_SCOPES":        "openid,email,profile,groups",
	})
	if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{Target: &c, Lookuper: envconfig.PrefixLookuper("BRIDGE_SSO_", env)}); err != nil {
		t.Fatal(err)
	}
	if c.ClientSecret != "s3cret" || c.ClientID != "from-env" || len(c.Scopes) != 4 || c.Issuer == "" {
		t.Errorf("env: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (oidc.Config{}).Validate(); err != nil {
		t.Errorf("disabled section: %v", err)
	}
	c := oidc.Config{
		Enabled:       true,
		Issuer:        "http://idp.example.com",
		Scopes:        []string{"email", "bad scope"},
		TokenEndpoint: "ftp://x",
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`sso.issuer: "http://idp.example.com" uses plain http on non-loopback host`,
		"sso.client_id: required",
		"sso.client_secret_file: required",
		"sso.scopes: must include openid",
		`sso.scopes: invalid scope "bad scope"`,
		"sso.token_endpoint:",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	c = oidc.Config{Enabled: true, Issuer: "http://127.0.0.1:5556", ClientID: "x", ClientSecret: "a", ClientSecretFile: "/f"}
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "allow_insecure_http") || !strings.Contains(err.Error(), "not both") {
		t.Errorf("loopback without opt-in / both secrets: %v", err)
	}
	c = oidc.Config{Enabled: true, Issuer: "http://127.0.0.1:5556", ClientID: "x", ClientSecret: "a", AllowInsecureHTTP: true}
	if err := c.Validate(); err != nil {
		t.Errorf("loopback with opt-in: %v", err)
	}
	d := c.WithDefaults()
	if !slices.Equal(d.Scopes, []string{"openid", "email", "profile"}) || d.IdentityClaim != "email" || d.NameClaim != "name" {
		t.Errorf("defaults: %+v", d)
	}
	if c.Scopes != nil {
		t.Errorf("WithDefaults changed its receiver")
	}
}

func TestConfigLoadSecrets(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "secret")
	if err := os.WriteFile(f, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := oidc.Config{Enabled: true, ClientSecretFile: f}
	if err := c.LoadSecrets(); err != nil || c.ClientSecret != "file-secret" {
		t.Errorf("LoadSecrets: %v %q", err, c.ClientSecret)
	}
	// The way the CLI runs them: LoadSecrets, then Validate, which must not take the loaded
	// secret for a second one from the environment.
	c = oidc.Config{Enabled: true, Issuer: "https://idp.example.com", ClientID: "x", ClientSecretFile: f}
	if err := c.LoadSecrets(); err != nil {
		t.Fatalf("LoadSecrets: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate after LoadSecrets: %v", err)
	}
	if err := c.LoadSecrets(); err != nil || c.ClientSecret != "file-secret" {
		t.Errorf("second LoadSecrets: %v %q", err, c.ClientSecret)
	}
	c = oidc.Config{Enabled: true, ClientSecretFile: filepath.Join(dir, "missing")}
	if err := c.LoadSecrets(); err == nil || !strings.Contains(err.Error(), "sso.client_secret_file") {
		t.Errorf("missing file: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	c = oidc.Config{Enabled: true, ClientSecretFile: empty}
	if err := c.LoadSecrets(); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty file: %v", err)
	}
}

func TestConfigExampleFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "oidc", "sso.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c oidc.Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("example does not validate: %v", err)
	}
	if c.ClientSecretFile != "/run/secrets/sso-client-secret" || c.FingerprintFile == "" || c.ClientSecret != "" {
		t.Errorf("example: %+v", c)
	}
}
