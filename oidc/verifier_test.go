package oidc_test

import (
	"context"
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

func newVerifier(t *testing.T, issuer, audience string, now func() time.Time) *oidc.TokenVerifier {
	t.Helper()
	v, err := oidc.NewTokenVerifier(context.Background(), oidc.VerifierConfig{
		Issuer: issuer, Audience: audience, AllowInsecureHTTP: true, Now: now,
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

func TestTokenVerifierIDTokenAndForeignIssuer(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	ctx := context.Background()
	idTok := op.IDToken(t) // code flow
	v := newVerifier(t, op.Issuer, op.ClientID, nil)
	if err := v.Verify(ctx, idTok); err != nil {
		t.Fatalf("ID token rejected: %v", err)
	}

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
	_, err = oidc.NewTokenVerifier(ctx, oidc.VerifierConfig{Issuer: closed, Audience: "x", AllowInsecureHTTP: true})
	if err == nil || !strings.Contains(err.Error(), closed+"/.well-known/openid-configuration") {
		t.Errorf("unreachable: %v", err)
	}
	op := testenv.StartOIDCProvider(t)
	_, err = oidc.NewTokenVerifier(ctx, oidc.VerifierConfig{Issuer: op.Issuer + "/", Audience: "x", AllowInsecureHTTP: true})
	if err == nil || !strings.Contains(err.Error(), "trailing slash") {
		t.Errorf("trailing slash: %v", err)
	}
}
