package babelforce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// ssoConfigPath is babelforce's OpenID Connect configuration. ASSUMPTION: babelforce publishes
// no API for it; GET|PUT /auth/sso/configuration with the SSOConfig shape (see ssotypes.go)
// is what ../shared/babelforce-api/README.md assumes. The answer is accepted both bare and in
// an {"item": ...} envelope. Replace this file when the real API is known.
const ssoConfigPath = "/auth/sso/configuration"

// GetSSOConfig returns babelforce's OpenID Connect configuration (the client secret comes back
// masked). ASSUMED API, see ssoConfigPath.
func (c *Client) GetSSOConfig(ctx context.Context) (*SSOConfig, error) {
	var env itemEnvelope[SSOConfig]
	if err := c.call(ctx, http.MethodGet, ssoConfigPath, ssoConfigPath, nil, nil, &env); err != nil {
		return nil, fmt.Errorf("get SSO configuration: %w", err)
	}
	return &env.Item, nil
}

// PutSSOConfig replaces babelforce's OpenID Connect configuration and returns what babelforce
// stored (secret masked, redirect URIs filled in). ASSUMED API, see ssoConfigPath.
func (c *Client) PutSSOConfig(ctx context.Context, cfg *SSOConfig) (*SSOConfig, error) {
	if cfg == nil {
		return nil, errors.New("babelforce: put SSO configuration: no configuration given")
	}
	body := *cfg
	body.RedirectURIs = nil // read-only
	var env itemEnvelope[SSOConfig]
	if err := c.call(ctx, http.MethodPut, ssoConfigPath, ssoConfigPath, nil, &body, &env); err != nil {
		return nil, fmt.Errorf("put SSO configuration: %w", err)
	}
	return &env.Item, nil
}
