package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
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
	// What makes a token a provisioning credential rather than any token the IdP issued for
	// the audience (at least one is required; every one set must hold):
	//
	// ClientIDs: the client the token was issued to (its azp, client_id, appid or cid claim)
	// must be one of these.
	ClientIDs []string
	// RequiredScope must be one of the token's scopes (scope, space-separated, or scp).
	RequiredScope string
	// RequiredRole must be one of the token's roles (roles).
	RequiredRole string
	// AllowInsecureHTTP permits a plain http issuer on a loopback host.
	AllowInsecureHTTP bool
	// Now is the clock for expiry checks (default time.Now).
	Now func() time.Time
}

// TokenVerifier verifies JWT bearer tokens signed by one issuer for one audience: signature
// (keys from the issuer's JWKS, refreshed when an unknown key id shows up), issuer, audience
// and expiry.
type TokenVerifier struct {
	verifier      *gooidc.IDTokenVerifier
	clientIDs     []string
	requiredScope string
	requiredRole  string
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

// UnavailableError is what Verify and NewTokenVerifier return when the issuer could not be
// asked (discovery document or JWKS unreachable or failing): the token was not judged, and
// the caller should answer "try again later" rather than "unauthorised".
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "identity provider unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Unavailable marks the error for callers that do not import this package.
func (e *UnavailableError) Unavailable() bool { return true }

// idTokenClaims are claims that only ID tokens carry (OpenID Connect Core 1.0 section 2 and
// 3.1.3.6): a token with one of them is a person's sign-in, never a provisioning credential.
var idTokenClaims = []string{"nonce", "at_hash", "c_hash"}

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
	var clientIDs []string
	for _, c := range cfg.ClientIDs {
		if c = strings.TrimSpace(c); c != "" {
			clientIDs = append(clientIDs, c)
		}
	}
	scope, role := strings.TrimSpace(cfg.RequiredScope), strings.TrimSpace(cfg.RequiredRole)
	if len(clientIDs) == 0 && scope == "" && role == "" {
		errs = append(errs, errors.New("client ids, required scope or required role: at least one is required, or any token the issuer signs for the audience (a person's ID token too) would be accepted"))
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
		return nil, &UnavailableError{fmt.Errorf("token verifier: fetch discovery document %s: %w", WellKnownURL(cfg.Issuer), err)}
	}
	v := p.VerifierContext(cctx, &gooidc.Config{ClientID: cfg.Audience, Now: cfg.Now})
	return &TokenVerifier{verifier: v, clientIDs: clientIDs, requiredScope: scope, requiredRole: role}, nil
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
		// go-oidc flattens the key set's error into text ("failed to verify signature:
		// fetching keys ...") when the JWKS cannot be fetched.
		if strings.Contains(err.Error(), "fetching keys") {
			return nil, &UnavailableError{fmt.Errorf("verify token: %w", err)}
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrInvalidToken, err)
	}
	if err := v.checkProvisioning(claims); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return &TokenClaims{Subject: tok.Subject, Issuer: tok.Issuer, Audience: tok.Audience, Expiry: tok.Expiry}, nil
}

// checkProvisioning refuses a token that is not a provisioning credential: an ID token, a
// token of another client, without the required scope or role.
func (v *TokenVerifier) checkProvisioning(claims map[string]any) error {
	for _, c := range idTokenClaims {
		if _, ok := claims[c]; ok {
			return fmt.Errorf("an ID token (it has %s): a person's sign-in is not a provisioning credential", c)
		}
	}
	if len(v.clientIDs) > 0 {
		client := ""
		for _, c := range []string{"azp", "client_id", "appid", "cid"} {
			if s, _ := claims[c].(string); s != "" {
				client = s
				break
			}
		}
		if client == "" {
			return errors.New("the token names no client (azp, client_id, appid or cid)")
		}
		if !slices.Contains(v.clientIDs, client) {
			return fmt.Errorf("client %q is not an allowed provisioning client", client)
		}
	}
	if v.requiredScope != "" {
		var scopes []string
		if s, ok := claims["scope"].(string); ok {
			scopes = append(scopes, strings.Fields(s)...)
		}
		scopes = append(scopes, claimStrings(claims["scp"])...)
		if !slices.Contains(scopes, v.requiredScope) {
			return fmt.Errorf("the token does not have the scope %q", v.requiredScope)
		}
	}
	if v.requiredRole != "" && !slices.Contains(claimStrings(claims["roles"]), v.requiredRole) {
		return fmt.Errorf("the token does not have the role %q", v.requiredRole)
	}
	return nil
}

// claimStrings reads a claim that is a string (space-separated) or a list of strings.
func claimStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
