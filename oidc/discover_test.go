package oidc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/babelforce/bridge/internal/testenv"
	"github.com/babelforce/bridge/oidc"
)

// failTransport fails the test on any request: proves a check ran before the network.
type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("unexpected request to %s", r.URL)
	return nil, errors.New("no network expected")
}

func findingFor(rep *oidc.Report, check string) *oidc.Finding {
	for i := range rep.Findings {
		if rep.Findings[i].Check == check {
			return &rep.Findings[i]
		}
	}
	return nil
}

func TestDiscoverZitadelOP(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	p, rep, err := oidc.Discover(context.Background(), op.Issuer, oidc.DiscoverOptions{AllowInsecureHTTP: true})
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if !rep.OK() || len(rep.Failures()) != 0 {
		t.Fatalf("report not OK: %+v", rep.Findings)
	}
	if p.Issuer != op.Issuer || p.AuthorizationEndpoint != op.Issuer+"/auth" || p.TokenEndpoint != op.Issuer+"/oauth/token" {
		t.Errorf("endpoints: %+v", p)
	}
	if p.JWKSURI == "" || len(p.ScopesSupported) == 0 || len(p.ClaimsSupported) == 0 {
		t.Errorf("metadata missing: %+v", p)
	}
	for _, check := range []string{oidc.CheckIssuerURL, oidc.CheckDiscovery, oidc.CheckIssuer, oidc.CheckAuthorizationURL,
		oidc.CheckTokenURL, oidc.CheckJWKS, oidc.CheckScopes, oidc.CheckClaims} {
		f := findingFor(rep, check)
		if f == nil || !f.OK {
			t.Errorf("check %s: %+v", check, f)
		}
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "result: OK") || !strings.Contains(buf.String(), "usable signing keys") {
		t.Errorf("text report:\n%s", buf.String())
	}
}

// expectFailure runs Discover and asserts that check failed with a message containing want.
func expectFailure(t *testing.T, issuer string, opts oidc.DiscoverOptions, check, want string) *oidc.Report {
	t.Helper()
	p, rep, err := oidc.Discover(context.Background(), issuer, opts)
	if err == nil {
		t.Fatalf("Discover(%s) succeeded; want failure of %s", issuer, check)
	}
	if p != nil {
		t.Errorf("provider returned despite failure")
	}
	if !errors.Is(err, oidc.ErrValidation) {
		t.Errorf("error %v is not ErrValidation", err)
	}
	if rep == nil || rep.OK() {
		t.Fatalf("report OK despite error %v", err)
	}
	f := findingFor(rep, check)
	if f == nil || f.OK || f.Severity != oidc.SeverityError {
		t.Fatalf("finding %s: %+v (all: %+v)", check, f, rep.Findings)
	}
	if !strings.Contains(f.Message, want) || !strings.Contains(err.Error(), want) {
		t.Errorf("finding %s message %q / error %q: want %q", check, f.Message, err, want)
	}
	return rep
}

func TestDiscoverTrailingSlashMismatch(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	rep := expectFailure(t, op.Issuer+"/", oidc.DiscoverOptions{AllowInsecureHTTP: true}, oidc.CheckIssuer, "trailing slash")
	f := findingFor(rep, oidc.CheckIssuer)
	if f.Expected != op.Issuer+"/" || f.Found != op.Issuer {
		t.Errorf("expected/found: %+v", f)
	}
	// The other checks still ran on the document as served.
	if jf := findingFor(rep, oidc.CheckJWKS); jf == nil || !jf.OK {
		t.Errorf("jwks finding after mismatch: %+v", jf)
	}
}

func TestDiscoverOtherIssuerMismatch(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	d := testenv.StartDiscoveryServer(t, func(string) map[string]any { return op.DiscoveryDocument(t) })
	expectFailure(t, d.URL, oidc.DiscoverOptions{AllowInsecureHTTP: true}, oidc.CheckIssuer, "issuer mismatch")
}

func TestDiscoverHTTPNonLoopbackBeforeNetwork(t *testing.T) {
	client := &http.Client{Transport: failTransport{t}}
	for _, allow := range []bool{false, true} {
		expectFailure(t, "http://idp.example.com", oidc.DiscoverOptions{HTTPClient: client, AllowInsecureHTTP: allow},
			oidc.CheckIssuerURL, `plain http on non-loopback host "idp.example.com"`)
	}
}

func TestDiscoverHTTPLoopbackNeedsOptIn(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	expectFailure(t, op.Issuer, oidc.DiscoverOptions{}, oidc.CheckIssuerURL, "allow_insecure_http")
	if n := op.TotalRequests(); n != 0 {
		t.Errorf("provider got %d requests; want none", n)
	}
}

func TestDiscoverUnreachableIssuer(t *testing.T) {
	issuer := testenv.ClosedURL(t)
	expectFailure(t, issuer, oidc.DiscoverOptions{AllowInsecureHTTP: true}, oidc.CheckDiscovery,
		"cannot fetch discovery document "+issuer+"/.well-known/openid-configuration")
}

func TestDiscoverUnreachableJWKS(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	dead := testenv.ClosedURL(t) + "/keys"
	d := testenv.StartDiscoveryServer(t, func(iss string) map[string]any {
		doc := op.DiscoveryDocument(t)
		doc["issuer"] = iss
		doc["jwks_uri"] = dead
		return doc
	})
	expectFailure(t, d.URL, oidc.DiscoverOptions{AllowInsecureHTTP: true}, oidc.CheckJWKS, "JWKS at "+dead+" is unreachable")
}

func TestDiscoverJWKSWithoutSigningKey(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	// The OP's own key, re-labelled for encryption only, plus a symmetric key: nothing usable.
	resp, err := http.Get(op.DiscoveryDocument(t)["jwks_uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(set.Keys) == 0 {
		t.Fatal("OP serves no keys")
	}
	set.Keys[0]["use"] = "enc"
	set.Keys = append(set.Keys, map[string]any{"kty": "oct", "k": "c2VjcmV0", "kid": "sym"})
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(set)
	}))
	defer jwks.Close()
	d := testenv.StartDiscoveryServer(t, func(iss string) map[string]any {
		doc := op.DiscoveryDocument(t)
		doc["issuer"] = iss
		doc["jwks_uri"] = jwks.URL
		return doc
	})
	expectFailure(t, d.URL, oidc.DiscoverOptions{AllowInsecureHTTP: true}, oidc.CheckJWKS, "no usable signing key")
}

func TestDiscoverMissingEmailScope(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	d := testenv.StartDiscoveryServer(t, func(iss string) map[string]any {
		doc := op.DiscoveryDocument(t)
		doc["issuer"] = iss
		doc["scopes_supported"] = []string{"openid", "profile"}
		return doc
	})
	rep := expectFailure(t, d.URL, oidc.DiscoverOptions{AllowInsecureHTTP: true}, oidc.CheckScopes, "scopes_supported lacks scope email")
	if len(rep.Failures()) != 1 {
		t.Errorf("want exactly one failure, got %+v", rep.Failures())
	}
}

func TestDiscoverMissingIdentityClaim(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	expectFailure(t, op.Issuer, oidc.DiscoverOptions{AllowInsecureHTTP: true, IdentityClaim: "upn"}, oidc.CheckClaims, "claims_supported lacks claim upn")
}

func TestDiscoverInsecureEndpointInDocument(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	d := testenv.StartDiscoveryServer(t, func(iss string) map[string]any {
		doc := op.DiscoveryDocument(t)
		doc["issuer"] = iss
		doc["token_endpoint"] = "http://idp.example.com/token"
		delete(doc, "authorization_endpoint")
		return doc
	})
	rep := expectFailure(t, d.URL, oidc.DiscoverOptions{AllowInsecureHTTP: true}, oidc.CheckTokenURL, "non-loopback host")
	if f := findingFor(rep, oidc.CheckAuthorizationURL); f == nil || f.OK || !strings.Contains(f.Message, "missing") {
		t.Errorf("authorization endpoint finding: %+v", f)
	}
}

func TestDiscoverAbsentListsAreWarnings(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	d := testenv.StartDiscoveryServer(t, func(iss string) map[string]any {
		doc := op.DiscoveryDocument(t)
		doc["issuer"] = iss
		delete(doc, "scopes_supported")
		delete(doc, "claims_supported")
		return doc
	})
	_, rep, err := oidc.Discover(context.Background(), d.URL, oidc.DiscoverOptions{AllowInsecureHTTP: true})
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if len(rep.Warnings()) != 2 {
		t.Fatalf("warnings: %+v", rep.Warnings())
	}
	for _, c := range []string{oidc.CheckScopes, oidc.CheckClaims} {
		if f := findingFor(rep, c); f == nil || f.Severity != oidc.SeverityWarning || !strings.Contains(f.Message, "does not advertise") {
			t.Errorf("%s: %+v", c, f)
		}
	}
	var buf bytes.Buffer
	_ = rep.WriteText(&buf)
	if !strings.Contains(buf.String(), "[warn]") || !strings.Contains(buf.String(), "result: OK (2 warnings)") {
		t.Errorf("text:\n%s", buf.String())
	}
}

func TestCheckClientCredentials(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	ctx := context.Background()
	p, _, err := oidc.Discover(ctx, op.Issuer, oidc.DiscoverOptions{AllowInsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	f := oidc.CheckClientCredentials(ctx, p, op.ServiceClientID, op.ServiceSecret)
	if !f.OK {
		t.Errorf("valid service client: %+v", f)
	}
	f = oidc.CheckClientCredentials(ctx, p, op.ServiceClientID, "wrong-secret-xyz")
	if f.OK || f.Severity != oidc.SeverityError || !strings.Contains(f.Message, "invalid_client") {
		t.Errorf("wrong secret: %+v", f)
	}
	if strings.Contains(f.Message+f.Found+f.Expected, "wrong-secret-xyz") {
		t.Errorf("finding leaks the secret: %+v", f)
	}

	// An IdP that does not advertise the grant: a warning, and no token request.
	d := testenv.StartDiscoveryServer(t, func(iss string) map[string]any {
		doc := op.DiscoveryDocument(t)
		doc["issuer"] = iss
		doc["grant_types_supported"] = []string{"authorization_code"}
		return doc
	})
	p2, _, err := oidc.Discover(ctx, d.URL, oidc.DiscoverOptions{AllowInsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	before := op.Requests("/oauth/token")
	f = oidc.CheckClientCredentials(ctx, p2, op.ServiceClientID, op.ServiceSecret)
	if f.OK || f.Severity != oidc.SeverityWarning || f.Failed() {
		t.Errorf("not advertised: %+v", f)
	}
	if op.Requests("/oauth/token") != before {
		t.Errorf("token endpoint was called although the grant is not advertised")
	}
}
