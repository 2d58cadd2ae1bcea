// Package oidc checks an OpenID Connect identity provider before bridge points babelforce at
// it, and verifies IdP-issued bearer tokens for bridge's inbound SCIM endpoint.
//
// Discover fetches the issuer's discovery document (github.com/coreos/go-oidc) and validates
// what babelforce, the relying party, depends on: the issuer in the document equals the
// configured one exactly, the authorization and token endpoints are https, the JWKS is
// reachable and holds a usable signing key, and the scopes and identity claim babelforce asks
// for are supported. Each check becomes a Finding in a Report; nothing is pushed anywhere.
//
// The package is named after the protocol, not a feature: the `sso:` section (babelforce's
// single sign-on, applied by provisioning.SSOTask and `bridge sso`) uses Discover, the inbound
// SCIM endpoint (`inbound_scim.oidc`) uses NewTokenVerifier, the status of upstreams uses
// Discover for every issuer, and the sign-in to /ui/ (`ui.oidc`, internal/ui, code flow with
// go-oidc itself) uses its issuer URL checks.
//
// NewTokenVerifier builds a verifier of JWTs signed by the issuer for one audience (signature,
// issuer, audience and expiry are checked) that accepts only provisioning credentials: tokens
// of allowed clients and/or with a required scope or role, never an ID token. When the issuer
// cannot be asked, its errors are an *UnavailableError.
//
// Config is the `sso:` section of bridge's configuration:
//
//	sso:
//	  enabled: true
//	  issuer: https://login.example.com/tenant/v2.0   # exactly as in the discovery document
//	  client_id: babelforce
//	  client_secret_file: /run/secrets/sso-client-secret  # or env BRIDGE_SSO_CLIENT_SECRET
//	  scopes: [openid, email, profile]                    # default
//	  identity_claim: email                               # default; babelforce matches users on it
//	  name_claim: name                                    # default
//	  # authorization_endpoint: https://...   # overrides discovery
//	  # token_endpoint: https://...           # overrides discovery
//	  allow_insecure_http: false     # http issuers only on loopback hosts, and only when true
//	  check_client_credentials: false  # try the client_credentials grant with the client secret
//
// Every key can be set from the environment with the prefix BRIDGE_SSO_ (BRIDGE_SSO_ISSUER,
// BRIDGE_SSO_CLIENT_SECRET, ...). The client secret is never read from YAML.
package oidc
