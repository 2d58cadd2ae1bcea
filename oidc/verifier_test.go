package oidc_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/babelforce/bridge/internal/testenv"
	"github.com/babelforce/bridge/oidc"
)

// scimVerifier is the interface the inbound SCIM endpoint uses.
type scimVerifier interface {
	Verify(ctx context.Context, rawToken string) error
}

var _ scimVerifier = (*oidc.TokenVerifier)(nil)

// newVerifier accepts tokens of the client audience names (the example OP's client_credentials
// tokens have aud and client_id equal to the client).
func newVerifier(t *testing.T, issuer, audience string, now func() time.Time) *oidc.TokenVerifier {
	t.Helper()
	v, err := oidc.NewTokenVerifier(context.Background(), oidc.VerifierConfig{
		Issuer: issuer, Audience: audience, ClientIDs: []string{audience}, AllowInsecureHTTP: true, Now: now,
	})
	if err != nil {
		t.Fatalf("NewTokenVerifier: %v", err)
	}
	return v
}

func TestTokenVerifierServiceToken(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	ctx := context.Background()
	tok := op.ServiceToken(t) // a JWT from the client_credentials grant

	v := newVerifier(t, op.Issuer, op.ServiceClientID, nil)
	claims, err := v.VerifyClaims(ctx, tok)
	if err != nil {
		t.Fatalf("valid token rejected: %v", err)
	}
	if claims.Subject != op.ServiceClientID || claims.Issuer != op.Issuer || !claims.Expiry.After(time.Now()) {
		t.Errorf("claims: %+v", claims)
	}
	if err := v.Verify(ctx, tok); err != nil {
		t.Errorf("Verify: %v", err)
	}

	// Wrong audience.
	other := newVerifier(t, op.Issuer, "someone-else", nil)
	if err := other.Verify(ctx, tok); err == nil || !errors.Is(err, oidc.ErrInvalidToken) || !strings.Contains(err.Error(), "audience") {
		t.Errorf("wrong audience: %v", err)
	}

	// Expired: a clock two hours ahead.
	late := newVerifier(t, op.Issuer, op.ServiceClientID, func() time.Time { return time.Now().Add(2 * time.Hour) })
	if err := late.Verify(ctx, tok); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}

	// Tampered payload, garbage, empty.
	parts := strings.Split(tok, ".")
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]
	for name, raw := range map[string]string{"tampered": tampered, "garbage": "not-a-jwt", "empty": ""} {
		if err := v.Verify(ctx, raw); err == nil || !errors.Is(err, oidc.ErrInvalidToken) {
			t.Errorf("%s token accepted or wrong error: %v", name, err)
		}
	}
}

// TestTokenVerifierOnlyProvisioningTokens: a person's ID token from the code flow is refused
// even with its audience and client allowed; a client_credentials token is accepted only for
// an allowed client, scope or role (issue 10).
func TestTokenVerifierOnlyProvisioningTokens(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	ctx := context.Background()
	idTok := op.IDToken(t) // code flow: aud, azp and client_id are the web client
	svcTok := op.ServiceToken(t)
	verifier := func(audience string, clients []string, scope, role string) *oidc.TokenVerifier {
		t.Helper()
		v, err := oidc.NewTokenVerifier(ctx, oidc.VerifierConfig{Issuer: op.Issuer, Audience: audience,
			ClientIDs: clients, RequiredScope: scope, RequiredRole: role, AllowInsecureHTTP: true})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name, tok, audience string
		clients             []string
		scope, role, refuse string
	}{
		{"service token of an allowed client", svcTok, op.ServiceClientID, []string{"other", op.ServiceClientID}, "", "", ""},
		{"service token of another client", svcTok, op.ServiceClientID, []string{"other"}, "", "", `client "sid1" is not an allowed provisioning client`},
		{"service token without the scope", svcTok, op.ServiceClientID, nil, "scim.provision", "", `does not have the scope "scim.provision"`},
		{"service token without the role", svcTok, op.ServiceClientID, []string{op.ServiceClientID}, "", "SCIM.Provision", `does not have the role "SCIM.Provision"`},
		{"ID token, client allowed", idTok, op.ClientID, []string{op.ClientID}, "", "", "an ID token"},
		{"ID token, client not allowed", idTok, op.ClientID, []string{op.ServiceClientID}, "", "", "an ID token"},
	} {
		err := verifier(tc.audience, tc.clients, tc.scope, tc.role).Verify(ctx, tc.tok)
		switch {
		case tc.refuse == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.refuse != "" && (err == nil || !errors.Is(err, oidc.ErrInvalidToken) || !strings.Contains(err.Error(), tc.refuse)):
			t.Errorf("%s: error %v, want one with %q", tc.name, err, tc.refuse)
		}
	}
	_, err := oidc.NewTokenVerifier(ctx, oidc.VerifierConfig{Issuer: op.Issuer, Audience: "x", AllowInsecureHTTP: true})
	if err == nil || !strings.Contains(err.Error(), "at least one is required") {
		t.Errorf("verifier without a provisioning rule: %v", err)
	}
}

func TestTokenVerifierForeignIssuer(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	ctx := context.Background()
	v := newVerifier(t, op.Issuer, op.ServiceClientID, nil)

	// A token from another provider (other issuer, other keys) is rejected.
	op2 := testenv.StartOIDCProvider(t)
	if err := v.Verify(ctx, op2.ServiceToken(t)); err == nil {
		t.Error("token of another issuer accepted")
	}
}

func TestNewTokenVerifierErrors(t *testing.T) {
	ctx := context.Background()
	_, err := oidc.NewTokenVerifier(ctx, oidc.VerifierConfig{Issuer: "http://idp.example.com"})
	if err == nil || !strings.Contains(err.Error(), "non-loopback") || !strings.Contains(err.Error(), "audience: required") {
		t.Errorf("bad config: %v", err)
	}
	closed := testenv.ClosedURL(t)
	_, err = oidc.NewTokenVerifier(ctx, oidc.VerifierConfig{Issuer: closed, Audience: "x", ClientIDs: []string{"x"}, AllowInsecureHTTP: true})
	var unavailable *oidc.UnavailableError
	if err == nil || !strings.Contains(err.Error(), closed+"/.well-known/openid-configuration") || !errors.As(err, &unavailable) {
		t.Errorf("unreachable: %v", err)
	}
	op := testenv.StartOIDCProvider(t)
	_, err = oidc.NewTokenVerifier(ctx, oidc.VerifierConfig{Issuer: op.Issuer + "/", Audience: "x", ClientIDs: []string{"x"}, AllowInsecureHTTP: true})
	if err == nil || !strings.Contains(err.Error(), "trailing slash") {
		t.Errorf("trailing slash: %v", err)
	}
}

// TestTokenVerifierJWKSUnreachable: when the keys cannot be fetched the token is not judged:
// the error is an UnavailableError, not ErrInvalidToken (the endpoint answers 503, not 401).
func TestTokenVerifierJWKSUnreachable(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	closed := testenv.ClosedURL(t)
	d := testenv.StartDiscoveryServer(t, func(issuer string) map[string]any {
		doc := op.DiscoveryDocument(t)
		doc["issuer"] = issuer
		doc["jwks_uri"] = closed + "/keys"
		return doc
	})
	ctx := context.Background()
	v, err := oidc.NewTokenVerifier(ctx, oidc.VerifierConfig{Issuer: d.URL, Audience: "sid1", ClientIDs: []string{"sid1"}, AllowInsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "k1"}) + "." +
		enc(map[string]any{"iss": d.URL, "aud": "sid1", "sub": "sid1", "client_id": "sid1", "exp": time.Now().Add(time.Hour).Unix()})
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	err = v.Verify(ctx, signing+"."+base64.RawURLEncoding.EncodeToString(sig))
	var unavailable *oidc.UnavailableError
	if !errors.As(err, &unavailable) || errors.Is(err, oidc.ErrInvalidToken) {
		t.Fatalf("JWKS unreachable: %v, want an UnavailableError", err)
	}
}
