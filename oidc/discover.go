package oidc

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/babelforce/bridge/internal/httpx"
)

// DefaultIdentityClaim is the claim babelforce matches users on.
const DefaultIdentityClaim = "email"

// DefaultRequiredScopes are the scopes babelforce needs the IdP to support.
var DefaultRequiredScopes = []string{"openid", "email"}

const (
	defaultHTTPTimeout = 15 * time.Second
	maxBody            = 1 << 20
)

// DiscoverOptions tune Discover. The zero value checks an https issuer for the "email" claim and
// the "openid" and "email" scopes.
type DiscoverOptions struct {
	// HTTPClient is used for every request; nil means a client with a 15 s timeout.
	HTTPClient *http.Client
	// AllowInsecureHTTP permits plain http URLs, and only for loopback hosts (localhost,
	// 127.0.0.0/8, ::1). Without it every URL must be https.
	AllowInsecureHTTP bool
	// IdentityClaim is the claim babelforce matches users on (default "email").
	IdentityClaim string
	// RequiredScopes must be among scopes_supported when the IdP advertises that list
	// (default openid, email).
	RequiredScopes []string
	// CASetting names the setting that makes the IdP's certificate trusted (e.g.
	// "sso.ca_file"); a failure to verify the certificate says to set it.
	CASetting string
}

// tlsHint explains an error of a request to the IdP when it is a certificate failure, naming
// the setting that fixes it; otherwise it returns err's text.
func (o DiscoverOptions) tlsHint(err error) string {
	if !httpx.IsTLSError(err) {
		return err.Error()
	}
	return fmt.Sprintf("%v: the IdP's certificate is not trusted; set %s to the PEM file of the CA that issued it", err,
		cmp.Or(o.CASetting, "ca_file"))
}

func (o DiscoverOptions) withDefaults() DiscoverOptions {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if o.IdentityClaim == "" {
		o.IdentityClaim = DefaultIdentityClaim
	}
	if len(o.RequiredScopes) == 0 {
		o.RequiredScopes = DefaultRequiredScopes
	}
	return o
}

// Provider is a discovered, validated OpenID Connect provider.
type Provider struct {
	Issuer                string
	AuthorizationEndpoint string
	TokenEndpoint         string
	UserInfoEndpoint      string
	JWKSURI               string
	// The advertised lists; nil when the discovery document has no such list.
	ScopesSupported                   []string
	ClaimsSupported                   []string
	GrantTypesSupported               []string
	TokenEndpointAuthMethodsSupported []string

	client        *http.Client
	allowInsecure bool
}

// discoveryDocument holds the fields of the discovery document the checks read.
type discoveryDocument struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserInfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
}

// WellKnownURL returns the discovery document URL of an issuer.
func WellKnownURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

// Discover fetches the discovery document of issuer and checks it (see the package doc). The
// Report is always returned and lists every check that ran. The error is nil only when no check
// failed (warnings allowed); otherwise it is a *ValidationError naming each failed check, and
// the Provider is nil. A URL that is not https (or plain http on a loopback host with
// AllowInsecureHTTP) fails before any network request.
func Discover(ctx context.Context, issuer string, opts DiscoverOptions) (*Provider, *Report, error) {
	opts = opts.withDefaults()
	rep := &Report{Issuer: issuer}

	if err := CheckURL(issuer, opts.AllowInsecureHTTP); err != nil {
		rep.fail(CheckIssuerURL, "an https URL", issuer, "issuer "+err.Error())
		return nil, rep, rep.Err()
	}
	rep.pass(CheckIssuerURL, issuer, "issuer URL is acceptable")

	cctx := gooidc.ClientContext(ctx, opts.HTTPClient)
	wellKnown := WellKnownURL(issuer)
	gp, err := gooidc.NewProvider(cctx, issuer)
	var mismatch *gooidc.IssuerMismatchError
	switch {
	case errors.As(err, &mismatch):
		rep.pass(CheckDiscovery, wellKnown, "discovery document fetched")
		rep.fail(CheckIssuer, issuer, mismatch.Discovered, issuerMismatchMessage(issuer, mismatch.Discovered))
		// Go on with the document as served so the report covers every other check too.
		gp, err = gooidc.NewProvider(gooidc.InsecureIssuerURLContext(cctx, mismatch.Discovered), issuer)
		if err != nil {
			return nil, rep, fmt.Errorf("fetch discovery document %s: %w", wellKnown, err)
		}
	case err != nil:
		rep.fail(CheckDiscovery, "HTTP 200 with a JSON discovery document", "",
			fmt.Sprintf("cannot fetch discovery document %s: %s", wellKnown, opts.tlsHint(err)))
		return nil, rep, rep.Err()
	default:
		rep.pass(CheckDiscovery, wellKnown, "discovery document fetched")
		rep.pass(CheckIssuer, issuer, "issuer in the discovery document matches exactly")
	}

	var doc discoveryDocument
	if err := gp.Claims(&doc); err != nil {
		rep.fail(CheckDiscovery, "a JSON discovery document", "", fmt.Sprintf("cannot parse discovery document %s: %v", wellKnown, err))
		return nil, rep, rep.Err()
	}

	checkEndpoint(rep, CheckAuthorizationURL, doc.AuthorizationEndpoint, opts.AllowInsecureHTTP)
	checkEndpoint(rep, CheckTokenURL, doc.TokenEndpoint, opts.AllowInsecureHTTP)
	checkJWKS(ctx, rep, opts, doc.JWKSURI)
	checkListed(rep, CheckScopes, "scopes_supported", "scope", doc.ScopesSupported, opts.RequiredScopes)
	checkListed(rep, CheckClaims, "claims_supported", "claim", doc.ClaimsSupported, []string{opts.IdentityClaim})

	if err := rep.Err(); err != nil {
		return nil, rep, err
	}
	return &Provider{
		Issuer:                            issuer,
		AuthorizationEndpoint:             doc.AuthorizationEndpoint,
		TokenEndpoint:                     doc.TokenEndpoint,
		UserInfoEndpoint:                  doc.UserInfoEndpoint,
		JWKSURI:                           doc.JWKSURI,
		ScopesSupported:                   doc.ScopesSupported,
		ClaimsSupported:                   doc.ClaimsSupported,
		GrantTypesSupported:               doc.GrantTypesSupported,
		TokenEndpointAuthMethodsSupported: doc.TokenEndpointAuthMethodsSupported,
		client:                            opts.HTTPClient,
		allowInsecure:                     opts.AllowInsecureHTTP,
	}, rep, nil
}

func issuerMismatchMessage(configured, discovered string) string {
	switch {
	case discovered == "":
		return fmt.Sprintf("the discovery document has no issuer; configured %q", configured)
	case strings.TrimSuffix(configured, "/") == strings.TrimSuffix(discovered, "/"):
		return fmt.Sprintf("issuer differs only by a trailing slash: configured %q, the IdP says %q; configure it exactly as the IdP says (tokens are checked against it)", configured, discovered)
	default:
		return fmt.Sprintf("issuer mismatch: configured %q, the IdP says %q; configure it exactly as the IdP says", configured, discovered)
	}
}

// CheckURL reports why raw is not acceptable as an IdP URL: it must be an absolute https URL,
// or a plain http URL on a loopback host when allowInsecureHTTP is set. It makes no request.
func CheckURL(raw string, allowInsecureHTTP bool) error {
	if raw == "" {
		return errors.New("URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.Scheme == "https" {
		return nil
	}
	if !IsLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%q uses plain http on non-loopback host %q: use https", raw, u.Hostname())
	}
	if !allowInsecureHTTP {
		return fmt.Errorf("%q uses plain http: use https (plain http on a loopback host needs allow_insecure_http)", raw)
	}
	return nil
}

// IsLoopbackHost reports whether host is localhost or a loopback IP address.
func IsLoopbackHost(host string) bool {
	return httpx.IsLoopbackHost(host)
}

func checkEndpoint(rep *Report, check, raw string, allowInsecure bool) {
	if raw == "" {
		rep.fail(check, "an https URL", "", check+" is missing from the discovery document")
		return
	}
	if err := CheckURL(raw, allowInsecure); err != nil {
		rep.fail(check, "an https URL", raw, check+" "+err.Error())
		return
	}
	rep.pass(check, raw, check+" is acceptable")
}

func checkListed(rep *Report, check, list, what string, advertised, required []string) {
	if advertised == nil {
		rep.warn(check, strings.Join(required, ", "), "",
			fmt.Sprintf("the IdP does not advertise %s; cannot confirm %s %s", list, what, strings.Join(required, ", ")))
		return
	}
	var missing []string
	for _, r := range required {
		if !slices.Contains(advertised, r) {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		rep.fail(check, strings.Join(required, ", "), strings.Join(advertised, ", "),
			fmt.Sprintf("%s lacks %s %s, which babelforce needs", list, what, strings.Join(missing, ", ")))
		return
	}
	rep.pass(check, strings.Join(advertised, ", "), fmt.Sprintf("%s includes %s", list, strings.Join(required, ", ")))
}

func checkJWKS(ctx context.Context, rep *Report, opts DiscoverOptions, jwksURI string) {
	const expected = "a JWKS with at least one RSA, EC or OKP signing key"
	if jwksURI == "" {
		rep.fail(CheckJWKS, expected, "", "jwks_uri is missing from the discovery document")
		return
	}
	if err := CheckURL(jwksURI, opts.AllowInsecureHTTP); err != nil {
		rep.fail(CheckJWKS, expected, jwksURI, "jwks_uri "+err.Error())
		return
	}
	usable, skipped, err := fetchJWKS(ctx, opts.HTTPClient, jwksURI)
	if err != nil {
		rep.fail(CheckJWKS, expected, "", opts.tlsHint(err))
		return
	}
	if usable == 0 {
		rep.fail(CheckJWKS, expected, fmt.Sprintf("%d keys, none usable", skipped),
			fmt.Sprintf("JWKS at %s has no usable signing key (RSA, EC or OKP public key with use \"sig\" or no use)", jwksURI))
		return
	}
	rep.pass(CheckJWKS, fmt.Sprintf("%d usable signing keys", usable), fmt.Sprintf("JWKS at %s has %d usable signing keys", jwksURI, usable))
}

// fetchJWKS fetches a JWK set and counts the usable signing keys and the others.
func fetchJWKS(ctx context.Context, client *http.Client, jwksURI string) (usable, other int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURI, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("JWKS URL %s: %w", jwksURI, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("JWKS at %s is unreachable: %w", jwksURI, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, 0, fmt.Errorf("read JWKS at %s: %w", jwksURI, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("JWKS at %s answered HTTP %d", jwksURI, resp.StatusCode)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return 0, 0, fmt.Errorf("JWKS at %s is not a JSON Web Key Set: %w", jwksURI, err)
	}
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil || !usableSigningKey(k) {
			other++
			continue
		}
		usable++
	}
	return usable, other, nil
}

func usableSigningKey(k jose.JSONWebKey) bool {
	if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
		return false
	}
	switch k.Key.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return true
	}
	return false
}
