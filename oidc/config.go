package oidc

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/babelforce/bridge/internal/secretfile"
)

// DefaultScopes are the scopes babelforce requests unless configured.
var DefaultScopes = []string{"openid", "email", "profile"}

// DefaultNameClaim is the claim with the user's display name unless configured.
const DefaultNameClaim = "name"

// Config is the `sso:` section: the OpenID Connect configuration bridge keeps babelforce's
// single sign-on set to (see the package doc for a YAML example). Environment variables use the
// prefix BRIDGE_SSO_ followed by the name in the env tag.
type Config struct {
	// Enabled makes bridge manage babelforce's SSO configuration (and turn SSO on). When false
	// bridge leaves babelforce's SSO configuration alone.
	Enabled bool `yaml:"enabled" env:"ENABLED, overwrite"`
	// Issuer is the IdP's issuer URL exactly as its discovery document states it.
	Issuer string `yaml:"issuer" env:"ISSUER, overwrite"`
	// ClientID is the id of the client (application) registered for babelforce at the IdP.
	ClientID string `yaml:"client_id" env:"CLIENT_ID, overwrite"`
	// ClientSecret is never read from YAML: set BRIDGE_SSO_CLIENT_SECRET or client_secret_file.
	ClientSecret string `yaml:"-" env:"CLIENT_SECRET, overwrite"`
	// ClientSecretFile holds the client secret (trailing newline trimmed).
	ClientSecretFile string `yaml:"client_secret_file" env:"CLIENT_SECRET_FILE, overwrite"`
	// Scopes babelforce requests (default openid, email, profile).
	Scopes []string `yaml:"scopes" env:"SCOPES, overwrite"`
	// IdentityClaim is the claim babelforce matches users on (default email).
	IdentityClaim string `yaml:"identity_claim" env:"IDENTITY_CLAIM, overwrite"`
	// NameClaim is the claim with the user's display name (default name).
	NameClaim string `yaml:"name_claim" env:"NAME_CLAIM, overwrite"`
	// AuthorizationEndpoint and TokenEndpoint override what discovery reports.
	AuthorizationEndpoint string `yaml:"authorization_endpoint" env:"AUTHORIZATION_ENDPOINT, overwrite"`
	TokenEndpoint         string `yaml:"token_endpoint" env:"TOKEN_ENDPOINT, overwrite"`
	// CAFile is a PEM file of CAs to trust for the IdP in addition to the system's (an IdP
	// behind a private CA or a TLS-inspecting proxy).
	CAFile string `yaml:"ca_file" env:"CA_FILE, overwrite"`
	// AllowInsecureHTTP permits plain http URLs on loopback hosts only (for tests and demos).
	AllowInsecureHTTP bool `yaml:"allow_insecure_http" env:"ALLOW_INSECURE_HTTP, overwrite"`
	// CheckClientCredentials makes the SSO check try the client_credentials grant with the
	// client id and secret (only useful when the IdP lets this client use that grant).
	CheckClientCredentials bool `yaml:"check_client_credentials" env:"CHECK_CLIENT_CREDENTIALS, overwrite"`
	// FingerprintFile is deprecated: the keyed fingerprint of the client secret last sent now
	// lives in the reconciler's state (the store, else sync.state_file). A file set here, as
	// older versions wrote it, is imported into the state once, while the state has none.
	FingerprintFile string `yaml:"fingerprint_file" env:"FINGERPRINT_FILE, overwrite"`

	// secretFromFile records that LoadSecrets filled ClientSecret from ClientSecretFile, so
	// Validate does not take the loaded secret for a second one set in the environment.
	secretFromFile bool
}

// WithDefaults returns a copy of c with the defaults filled in (scopes, identity_claim,
// name_claim).
func (c Config) WithDefaults() Config {
	if len(c.Scopes) == 0 {
		c.Scopes = slices.Clone(DefaultScopes)
	}
	if c.IdentityClaim == "" {
		c.IdentityClaim = DefaultIdentityClaim
	}
	if c.NameClaim == "" {
		c.NameClaim = DefaultNameClaim
	}
	return c
}

// Validate reports every problem of the section at once, each prefixed with its key
// ("sso.issuer: ..."). A disabled section is not checked. It changes nothing.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	c = c.WithDefaults()
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("sso.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Issuer == "" {
		add("issuer", "required (the IdP's issuer URL, e.g. https://accounts.google.com)")
	} else if err := CheckURL(c.Issuer, c.AllowInsecureHTTP); err != nil {
		add("issuer", "%v", err)
	}
	if strings.TrimSpace(c.ClientID) == "" {
		add("client_id", "required (the client id registered for babelforce at the IdP)")
	}
	switch {
	case c.ClientSecret != "" && c.ClientSecretFile != "" && !c.secretFromFile:
		add("client_secret_file", "set either BRIDGE_SSO_CLIENT_SECRET or client_secret_file, not both")
	case c.ClientSecret == "" && c.ClientSecretFile == "":
		add("client_secret_file", "required: set client_secret_file or BRIDGE_SSO_CLIENT_SECRET")
	}
	if !slices.Contains(c.Scopes, "openid") {
		add("scopes", "must include openid (got %s)", strings.Join(c.Scopes, ", "))
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\n\"\\") {
			add("scopes", "invalid scope %q", s)
		}
	}
	for _, e := range [...]struct{ key, url string }{
		{"authorization_endpoint", c.AuthorizationEndpoint},
		{"token_endpoint", c.TokenEndpoint},
	} {
		if e.url == "" {
			continue
		}
		if err := CheckURL(e.url, c.AllowInsecureHTTP); err != nil {
			add(e.key, "%v", err)
		}
	}
	if strings.ContainsAny(c.IdentityClaim, " \t\n") {
		add("identity_claim", "invalid claim name %q", c.IdentityClaim)
	}
	if strings.ContainsAny(c.NameClaim, " \t\n") {
		add("name_claim", "invalid claim name %q", c.NameClaim)
	}
	return errors.Join(errs...)
}

// LoadSecrets reads the client secret from client_secret_file when one is set. It is a no-op
// for a disabled section.
func (c *Config) LoadSecrets() error {
	if !c.Enabled || c.ClientSecretFile == "" || c.secretFromFile {
		return nil
	}
	if c.ClientSecret != "" {
		return errors.New("sso.client_secret_file: set either BRIDGE_SSO_CLIENT_SECRET or client_secret_file, not both")
	}
	s, err := secretfile.Read(c.ClientSecretFile)
	if err != nil {
		return fmt.Errorf("sso.client_secret_file: %w", err)
	}
	c.ClientSecret, c.secretFromFile = s, true
	return nil
}
