package babelforcetest

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/babelforce/bridge/babelforce"
)

// SecretMask is what GET /auth/sso/configuration answers for a stored client secret.
const SecretMask = "********"

func cloneSSO(c babelforce.SSOConfig) babelforce.SSOConfig {
	c.Scopes = slices.Clone(c.Scopes)
	c.Claims = maps.Clone(c.Claims)
	c.RedirectURIs = maps.Clone(c.RedirectURIs)
	return c
}

func redirectURIs(base string) map[string]string {
	return map[string]string{
		"manager": base + "/auth/sso/callback/manager",
		"agent":   base + "/auth/sso/callback/agent",
	}
}

// ssoOut is the configuration as the API answers it: secret masked, redirect URIs filled.
func (s *Server) ssoOut(r *http.Request) babelforce.SSOConfig {
	s.mu.Lock()
	c := cloneSSO(s.sso)
	s.mu.Unlock()
	if c.ClientSecret != "" {
		c.ClientSecret = SecretMask
	}
	c.RedirectURIs = redirectURIs(s.baseURL(r))
	return c
}

func (s *Server) getSSO(w http.ResponseWriter, r *http.Request, _ params) {
	writeJSON(w, http.StatusOK, s.ssoOut(r))
}

func absHTTPURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func (s *Server) putSSO(w http.ResponseWriter, r *http.Request, _ params) {
	var raw map[string]json.RawMessage
	if !s.decodeJSON(w, r, &raw) {
		return
	}
	var c babelforce.SSOConfig
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &c); err != nil {
		s.writeError(w, r, http.StatusBadRequest, "validation_error", "SSO configuration: "+err.Error())
		return
	}
	var problems []string
	for name, v := range map[string]string{"issuer": c.Issuer, "authorizationEndpoint": c.AuthorizationEndpoint, "tokenEndpoint": c.TokenEndpoint} {
		if v == "" {
			if c.Enabled {
				problems = append(problems, name+" is required when SSO is enabled")
			}
		} else if !absHTTPURL(v) {
			problems = append(problems, name+" must be an absolute http(s) URL")
		}
	}
	if c.Enabled && c.ClientID == "" {
		problems = append(problems, "clientId is required when SSO is enabled")
	}
	s.mu.Lock()
	if c.ClientSecret == "" || c.ClientSecret == SecretMask {
		c.ClientSecret = s.sso.ClientSecret
	}
	if c.Enabled && c.ClientSecret == "" {
		problems = append(problems, "clientSecret is required when SSO is enabled")
	}
	if len(problems) > 0 {
		s.mu.Unlock()
		slices.Sort(problems)
		s.writeError(w, r, http.StatusBadRequest, "validation_error", strings.Join(problems, "; "))
		return
	}
	c.RedirectURIs = nil // read-only
	s.sso = cloneSSO(c)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.ssoOut(r))
}
