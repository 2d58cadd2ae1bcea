package scimserver

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/sethvargo/go-envconfig"
	"go.yaml.in/yaml/v3"
)

const (
	testIssuer   = "https://idp.example.test/tenant"
	testAudience = "bridge-scim"
)

// goOIDCVerifier is what the oidc package provides: a TokenVerifier backed by go-oidc.
type goOIDCVerifier struct{ v *oidc.IDTokenVerifier }

func (g goOIDCVerifier) Verify(ctx context.Context, raw string) error {
	_, err := g.v.Verify(ctx, raw)
	return err
}

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newVerifier(t *testing.T, key *rsa.PrivateKey) TokenVerifier {
	t.Helper()
	ks := &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{&key.PublicKey}}
	return goOIDCVerifier{oidc.NewVerifier(testIssuer, ks, &oidc.Config{
		ClientID:             testAudience,
		SupportedSigningAlgs: []string{oidc.RS256},
		Now:                  func() time.Time { return testNow },
	})}
}

// signJWT makes an RS256 JWT by hand (RFC 7515 compact serialisation).
func signJWT(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "k1"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func claims(aud string, exp time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer, "aud": aud, "sub": "scim-client",
		"iat": testNow.Add(-time.Minute).Unix(), "exp": exp.Unix(),
	}
}

func TestAuthentication(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Config{
		Tokens: []string{testToken},
		OIDC:   OIDCConfig{Issuer: testIssuer, Audience: testAudience, ClientIDs: []string{"scim-client"}},
	}, Options{Verifier: newVerifier(t, key)})

	valid := signJWT(t, key, claims(testAudience, testNow.Add(time.Hour)))
	cases := []struct {
		name   string
		auth   string
		status int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"basic scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("a:b")), http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"wrong token", "Bearer wrong-token-0123456789abcdef", http.StatusUnauthorized},
		{"token prefix", "Bearer " + testToken[:len(testToken)-1], http.StatusUnauthorized},
		{"expired JWT", "Bearer " + signJWT(t, key, claims(testAudience, testNow.Add(-time.Minute))), http.StatusUnauthorized},
		{"JWT for another audience", "Bearer " + signJWT(t, key, claims("someone-else", testNow.Add(time.Hour))), http.StatusUnauthorized},
		{"JWT signed by another key", "Bearer " + signJWT(t, otherKey, claims(testAudience, testNow.Add(time.Hour))), http.StatusUnauthorized},
		{"garbage JWT", "Bearer a.b.c", http.StatusUnauthorized},
		{"static token", "Bearer " + testToken, http.StatusOK},
		{"static token, lower-case scheme", "bearer " + testToken, http.StatusOK},
		{"valid JWT", "Bearer " + valid, http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := f.do(http.MethodGet, "/Users", nil, "Authorization", c.auth)
			if c.status == http.StatusUnauthorized {
				assertSCIMError(t, res, http.StatusUnauthorized, "")
				if !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("WWW-Authenticate = %q", res.header.Get("WWW-Authenticate"))
				}
				return
			}
			if res.status != c.status {
				t.Fatalf("status %d: %s", res.status, res.raw)
			}
		})
	}
	// 401 also for unknown paths: nothing is revealed before authentication
	res := f.do(http.MethodGet, "/nope", nil, "Authorization", "")
	assertSCIMError(t, res, http.StatusUnauthorized, "")
}

func TestTokenHashesAndFile(t *testing.T) {
	fileToken := "file-token-abcdefghijklmnop"
	hashed := "hashed-token-abcdefghijklmnop"
	sum := sha256.Sum256([]byte(hashed))
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	if err := os.WriteFile(file, []byte("# scim tokens\n\n"+fileToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Enabled: true, Tokens: []string{testToken}, TokensFile: file, TokenSHA256: []string{hex.EncodeToString(sum[:])}}
	if err := cfg.LoadSecrets(); err != nil {
		t.Fatal(err)
	}
	if cfg.Tokens != nil {
		t.Fatal("plain tokens kept after LoadSecrets")
	}
	if err := cfg.LoadSecrets(); err != nil { // idempotent
		t.Fatal(err)
	}
	if len(cfg.hashes) != 2 {
		t.Fatalf("hashes = %d, want 2", len(cfg.hashes))
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, cfg, Options{})
	for _, tok := range []string{testToken, fileToken, hashed} {
		if res := f.do(http.MethodGet, "/Users", nil, "Authorization", "Bearer "+tok); res.status != http.StatusOK {
			t.Fatalf("token %q refused: %d", tok[:4], res.status)
		}
	}
	if res := f.do(http.MethodGet, "/Users", nil, "Authorization", "Bearer "+hex.EncodeToString(sum[:])); res.status != http.StatusUnauthorized {
		t.Fatalf("the hash itself must not be accepted as a token: %d", res.status)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{
		Enabled:      true,
		Tokens:       []string{"short"},
		TokenSHA256:  []string{"zz"},
		MaxBodyBytes: -1,
		OIDC:         OIDCConfig{Issuer: "http://idp.example.com"},
	}.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"token_sha256[0]", "tokens: token 1 is shorter", "max_body_bytes", "oidc.issuer: must use https", "oidc.audience",
		"oidc.client_ids, oidc.required_scope or oidc.required_role: at least one is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if err := (Config{Enabled: true}).Validate(); err == nil || !strings.Contains(err.Error(), "BRIDGE_INBOUND_SCIM_TOKENS") {
		t.Fatalf("no auth configured: %v", err)
	}
	for _, oc := range []OIDCConfig{
		{Issuer: testIssuer, Audience: testAudience, ClientIDs: []string{"scim-client"}},
		{Issuer: testIssuer, Audience: testAudience, RequiredScope: "scim.provision"},
		{Issuer: testIssuer, Audience: testAudience, RequiredRole: "SCIM.Provision"},
	} {
		if err := (Config{OIDC: oc}).Validate(); err != nil {
			t.Fatalf("oidc only %+v: %v", oc, err)
		}
	}
	if err := (Config{OIDC: OIDCConfig{Issuer: testIssuer, Audience: testAudience, ClientIDs: []string{" "}}}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "oidc.client_ids[0]: must not be empty") || !strings.Contains(err.Error(), "at least one is required") {
		t.Fatalf("oidc with an empty client id: %v", err)
	}
	cfg := Config{TokensFile: filepath.Join(t.TempDir(), "missing")}
	if err := cfg.LoadSecrets(); err == nil || !strings.Contains(err.Error(), "tokens_file") {
		t.Fatalf("missing tokens file: %v", err)
	}
	// New refuses an OIDC config without a verifier
	st := newFixture(t, Config{}, Options{}).st
	if _, err := New(st, Config{OIDC: OIDCConfig{Issuer: testIssuer, Audience: testAudience, RequiredScope: "x"}}, Options{}); err == nil {
		t.Fatal("New without verifier must fail")
	}
	if _, err := New(nil, Config{Tokens: []string{testToken}}, Options{}); err == nil {
		t.Fatal("New without store must fail")
	}
}

func TestOnRequestObservesEveryStatus(t *testing.T) {
	f := newFixture(t, Config{}, Options{})
	f.do(http.MethodGet, "/Users", nil)
	f.do(http.MethodGet, "/Users", nil, "Authorization", "")
	f.do(http.MethodDelete, "/Users", nil)
	f.do(http.MethodGet, "/Users/missing", nil)
	want := []string{"GET 200", "GET 401", "DELETE 405", "GET 404"}
	if strings.Join(f.requests, ",") != strings.Join(want, ",") {
		t.Fatalf("observed %v, want %v", f.requests, want)
	}
	// the handler also works behind a real listener with StripPrefix, as the CLI mounts it
	srv := httptest.NewServer(http.StripPrefix("/scim/v2", f.h))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/scim/v2/ServiceProviderConfig", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var spc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&spc); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || spc["patch"].(map[string]any)["supported"] != true ||
		spc["filter"].(map[string]any)["supported"] != true || spc["bulk"].(map[string]any)["supported"] != false ||
		spc["etag"].(map[string]any)["supported"] != true {
		t.Fatalf("ServiceProviderConfig %d: %v", resp.StatusCode, spc)
	}
}

func TestConfigFromYAMLAndEnv(t *testing.T) {
	var cfg Config
	raw := `
enabled: true
tokens_file: ""
token_sha256: ["` + strings.Repeat("ab", 32) + `"]
oidc:
  issuer: https://idp.example.test/tenant
  audience: from-yaml
  required_scope: scim.provision
max_body_bytes: 4096
`
	dec := yaml.NewDecoder(strings.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	err := envconfig.ProcessWith(context.Background(), &envconfig.Config{
		Target: &cfg,
		Lookuper: envconfig.PrefixLookuper("BRIDGE_INBOUND_SCIM_", envconfig.MapLookuper(map[string]string{
			"BRIDGE_INBOUND_SCIM_TOKENS":          "env-token-aaaaaaaaaaaaaaaa,env-token-bbbbbbbbbbbbbbbb",
			"BRIDGE_INBOUND_SCIM_OIDC_AUDIENCE":   "from-env",
			"BRIDGE_INBOUND_SCIM_OIDC_CLIENT_IDS": "client-a,client-b",
		})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Tokens) != 2 || cfg.OIDC.Audience != "from-env" || cfg.OIDC.Issuer != "https://idp.example.test/tenant" ||
		cfg.MaxBodyBytes != 4096 || len(cfg.TokenSHA256) != 1 || !cfg.Enabled ||
		cfg.OIDC.RequiredScope != "scim.provision" || strings.Join(cfg.OIDC.ClientIDs, " ") != "client-a client-b" {
		t.Fatalf("config = %+v", cfg)
	}
	if err := cfg.LoadSecrets(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.tokenHashes()) != 3 || cfg.Tokens != nil {
		t.Fatalf("hashes %d, tokens %v", len(cfg.tokenHashes()), cfg.Tokens)
	}
	var strict Config
	dec = yaml.NewDecoder(strings.NewReader("tokens: [plain-in-yaml-not-allowed]"))
	dec.KnownFields(true)
	if err := dec.Decode(&strict); err == nil {
		t.Fatal("plain tokens must not be accepted from YAML")
	}
}
