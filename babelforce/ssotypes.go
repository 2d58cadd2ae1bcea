package babelforce

// SSOConfig is babelforce's OpenID Connect configuration. ASSUMPTION: babelforce publishes no
// API for it; the shape follows ../shared/babelforce-api/README.md ("Assumptions"):
// GET|PUT /auth/sso/configuration. ClientSecret is write-only: babelforce masks it on read.
type SSOConfig struct {
	Enabled               bool              `json:"enabled"`
	Issuer                string            `json:"issuer"`
	AuthorizationEndpoint string            `json:"authorizationEndpoint"`
	TokenEndpoint         string            `json:"tokenEndpoint"`
	ClientID              string            `json:"clientId"`
	ClientSecret          string            `json:"clientSecret,omitempty"`
	Scopes                []string          `json:"scopes,omitempty"`
	Claims                map[string]string `json:"claims,omitempty"`
	RedirectURIs          map[string]string `json:"redirectUris,omitempty"`
}

// ExternalID links an agent to its identity in a third-party integration (Agent Sync).
// ASSUMPTION: GET /api/v2/agents/{id}/external-ids,
// PUT|DELETE /api/v2/agents/{id}/external-ids/{integrationId} with {"externalId": "..."}.
type ExternalID struct {
	IntegrationID string `json:"integrationId"`
	ExternalID    string `json:"externalId"`
}
