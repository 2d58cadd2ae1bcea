package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

// VerifierConfig configures a TokenVerifier.
type VerifierConfig struct {
	// Issuer is the IdP's issuer, exactly as in its discovery document.
	Issuer string
	// Audience is the value the token's "aud" claim must contain (for example the client id
	// the IdP uses to push SCIM).
	Audience string
	// HTTPClient fetches the discovery document and the JWKS; nil means a 15 s timeout client.
	HTTPClient *http.Client
	// AllowInsecureHTTP permits a plain http issuer on a loopback host.
	AllowInsecureHTTP bool
	// Now is the clock for expiry checks (default time.Now).
	Now func() time.Time
}

// TokenVerifier verifies JWT bearer tokens signed by one issuer for one audience: signature
// (keys from the issuer's JWKS, refreshed when an unknown key id shows up), issuer, audience
// and expiry.
type TokenVerifier struct {
	verifier *gooidc.IDTokenVerifier
}

// TokenClaims are the claims of a verified token.
type TokenClaims struct {
	Subject  string
	Issuer   string
	Audience []string
	Expiry   time.Time
}

// ErrInvalidToken is matched (errors.Is) by every error Verify returns for a token it rejects.
var ErrInvalidToken = errors.New("invalid bearer token")

// NewTokenVerifier discovers the issuer (the issuer in its discovery document must match
// exactly) and returns a verifier for cfg.Audience.
func NewTokenVerifier(ctx context.Context, cfg VerifierConfig) (*TokenVerifier, error) {
	var errs []error
	if err := CheckURL(cfg.Issuer, cfg.AllowInsecureHTTP); err != nil {
		errs = append(errs, fmt.Errorf("issuer: %w", err))
	}
	if strings.TrimSpace(cfg.Audience) == "" {
		errs = append(errs, errors.New("audience: required (the aud value tokens must carry)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: defaultHTTPTimeout}
	}
	cctx := gooidc.ClientContext(ctx, client)
	p, err := gooidc.NewProvider(cctx, cfg.Issuer)
	if err != nil {
		var mismatch *gooidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, fmt.Errorf("token verifier: %s", issuerMismatchMessage(cfg.Issuer, mismatch.Discovered))
		}
		return nil, fmt.Errorf("token verifier: fetch discovery document %s: %w", WellKnownURL(cfg.Issuer), err)
	}
	v := p.VerifierContext(cctx, &gooidc.Config{ClientID: cfg.Audience, Now: cfg.Now})
	return &TokenVerifier{verifier: v}, nil
}

// Verify reports whether rawToken is a valid token of the issuer for the audience. It
// satisfies the interface the inbound SCIM endpoint uses.
func (v *TokenVerifier) Verify(ctx context.Context, rawToken string) error {
	_, err := v.VerifyClaims(ctx, rawToken)
	return err
}

// VerifyClaims is Verify that also returns the token's main claims.
func (v *TokenVerifier) VerifyClaims(ctx context.Context, rawToken string) (*TokenClaims, error) {
	if rawToken == "" {
		return nil, fmt.Errorf("%w: empty token", ErrInvalidToken)
	}
	tok, err := v.verifier.Verify(ctx, rawToken)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return &TokenClaims{Subject: tok.Subject, Issuer: tok.Issuer, Audience: tok.Audience, Expiry: tok.Expiry}, nil
}
