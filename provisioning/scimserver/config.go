package scimserver

import (
	"github.com/babelforce/bridge/internal/httpx"

	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// DefaultMaxBodyBytes is the request body limit when Config.MaxBodyBytes is 0 (1 MiB).
const DefaultMaxBodyBytes = 1 << 20

// minTokenLength is the shortest static bearer token accepted.
const minTokenLength = 16

// Config configures the inbound SCIM endpoint. YAML example (key inbound_scim; environment
// variables BRIDGE_INBOUND_SCIM_<NAME> override):
//
//	inbound_scim:
//	  enabled: true
//	  # bearer tokens: only from BRIDGE_INBOUND_SCIM_TOKENS (comma-separated) or a file
//	  tokens_file: /run/secrets/scim-tokens   # one token per line, '#' comments
//	  token_sha256:                           # or their SHA-256 hashes (hex), safe in a file
//	    - 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//	  oidc:                                   # or JWT bearer tokens issued by the IdP
//	    issuer: https://login.microsoftonline.com/TENANT/v2.0
//	    audience: 8adf8e6e-67b2-4cf2-a259-e3dc5476c621
//	    # what makes a token a provisioning credential (at least one; all that are set must hold):
//	    client_ids: [5b3e1f0c-2f1e-4c57-9d61-0a6b2f0f4d11]  # azp, client_id, appid or cid
//	    required_scope: scim.provision                     # in scope or scp
//	    required_role: SCIM.Provision                      # in roles
//	  max_body_bytes: 1048576
//
// After LoadSecrets the plain tokens are gone: only their SHA-256 hashes stay in memory.
type Config struct {
	Enabled bool `yaml:"enabled" env:"ENABLED, overwrite"`
	// Tokens are static bearer tokens, from the environment only (comma-separated).
	Tokens []string `yaml:"-" env:"TOKENS, overwrite"`
	// TokensFile names a file with one bearer token per line.
	TokensFile string `yaml:"tokens_file" env:"TOKENS_FILE, overwrite"`
	// TokenSHA256 lists hex SHA-256 hashes of accepted bearer tokens.
	TokenSHA256 []string   `yaml:"token_sha256" env:"TOKEN_SHA256, overwrite"`
	OIDC        OIDCConfig `yaml:"oidc" env:", prefix=OIDC_"`
	// MaxBodyBytes limits request bodies (0 = DefaultMaxBodyBytes); larger ones get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes" env:"MAX_BODY_BYTES, overwrite"`

	hashes [][sha256.Size]byte
}

// OIDCConfig accepts JWT bearer tokens from an OpenID Connect issuer (verified by the
// Options.Verifier that the caller builds from it).
//
// Any token the issuer signs for the audience is not enough: a person signing in to an app
// with that audience gets one too. ClientIDs, RequiredScope and RequiredRole say what makes a
// token a provisioning credential; at least one is required, and ID tokens are always refused.
type OIDCConfig struct {
	Issuer   string `yaml:"issuer" env:"ISSUER, overwrite"`
	Audience string `yaml:"audience" env:"AUDIENCE, overwrite"`
	// ClientIDs are the clients allowed to push (the token's azp, client_id, appid or cid).
	ClientIDs []string `yaml:"client_ids" env:"CLIENT_IDS, overwrite"`
	// RequiredScope must be among the token's scopes (scope or scp).
	RequiredScope string `yaml:"required_scope" env:"REQUIRED_SCOPE, overwrite"`
	// RequiredRole must be among the token's roles (Entra app roles: roles).
	RequiredRole string `yaml:"required_role" env:"REQUIRED_ROLE, overwrite"`
}

// hasProvisioningRule reports whether the config names what makes a provisioning token.
func (c OIDCConfig) hasProvisioningRule() bool {
	for _, id := range c.ClientIDs {
		if strings.TrimSpace(id) != "" {
			return true
		}
	}
	return strings.TrimSpace(c.RequiredScope) != "" || strings.TrimSpace(c.RequiredRole) != ""
}

// Enabled reports whether JWT bearer tokens are configured.
func (c OIDCConfig) Enabled() bool { return c.Issuer != "" }

// LoadSecrets reads TokensFile, hashes every plain token (Tokens and the file's) into memory
// and forgets the plain tokens. Calling it again adds nothing twice.
func (c *Config) LoadSecrets() error {
	var errs []error
	tokens := c.Tokens
	if c.TokensFile != "" {
		raw, err := os.ReadFile(c.TokensFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("tokens_file: %w", err))
		} else {
			sc := bufio.NewScanner(bytes.NewReader(raw))
			line := 0
			for sc.Scan() {
				line++
				t := strings.TrimSpace(sc.Text())
				if t == "" || strings.HasPrefix(t, "#") {
					continue
				}
				if len(t) < minTokenLength {
					errs = append(errs, fmt.Errorf("tokens_file: line %d: token is shorter than %d characters", line, minTokenLength))
					continue
				}
				tokens = append(tokens, t)
			}
			clear(raw)
		}
	}
	for i, t := range c.Tokens {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if len(t) < minTokenLength {
			errs = append(errs, fmt.Errorf("tokens: token %d is shorter than %d characters", i+1, minTokenLength))
		}
	}
	for _, t := range tokens {
		t = strings.TrimSpace(t)
		if t == "" || len(t) < minTokenLength {
			continue
		}
		c.addHash(sha256.Sum256([]byte(t)))
	}
	clear(c.Tokens)
	c.Tokens = nil
	return errors.Join(errs...)
}

func (c *Config) addHash(h [sha256.Size]byte) {
	for _, have := range c.hashes {
		if have == h {
			return
		}
	}
	c.hashes = append(c.hashes, h)
}

// tokenHashes returns every accepted token hash: loaded tokens, plain tokens not yet loaded,
// and the configured token_sha256 list. Invalid hashes are skipped (Validate reports them).
func (c Config) tokenHashes() [][sha256.Size]byte {
	cc := c
	cc.hashes = append([][sha256.Size]byte(nil), c.hashes...)
	for _, t := range c.Tokens {
		if t = strings.TrimSpace(t); len(t) >= minTokenLength {
			cc.addHash(sha256.Sum256([]byte(t)))
		}
	}
	for _, h := range c.TokenSHA256 {
		if b, err := parseHash(h); err == nil {
			cc.addHash(b)
		}
	}
	return cc.hashes
}

func parseHash(s string) ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != sha256.Size {
		return out, fmt.Errorf("must be %d hex characters (sha256sum of the token)", 2*sha256.Size)
	}
	copy(out[:], b)
	return out, nil
}

// Validate reports every problem at once, each prefixed with its key. It changes nothing.
func (c Config) Validate() error {
	var errs []error
	for i, h := range c.TokenSHA256 {
		if _, err := parseHash(h); err != nil {
			errs = append(errs, fmt.Errorf("token_sha256[%d]: %w", i, err))
		}
	}
	for i, t := range c.Tokens {
		if t = strings.TrimSpace(t); t != "" && len(t) < minTokenLength {
			errs = append(errs, fmt.Errorf("tokens: token %d is shorter than %d characters", i+1, minTokenLength))
		}
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("max_body_bytes: must not be negative, got %d", c.MaxBodyBytes))
	}
	if c.OIDC.Issuer != "" {
		u, err := url.Parse(c.OIDC.Issuer)
		switch {
		case err != nil || u.Host == "":
			errs = append(errs, fmt.Errorf("oidc.issuer: must be an absolute URL, got %q", c.OIDC.Issuer))
		case u.Scheme != "https" && !httpx.IsLoopbackHost(u.Hostname()):
			errs = append(errs, fmt.Errorf("oidc.issuer: must use https, got %q", c.OIDC.Issuer))
		}
		if c.OIDC.Audience == "" {
			errs = append(errs, errors.New("oidc.audience: required when oidc.issuer is set (the client id or App ID URI the IdP puts in aud)"))
		}
		if !c.OIDC.hasProvisioningRule() {
			errs = append(errs, errors.New("oidc.client_ids, oidc.required_scope or oidc.required_role: at least one is required when oidc.issuer is set; otherwise any token the issuer signs for the audience, a person's sign-in too, could push users"))
		}
		for i, id := range c.OIDC.ClientIDs {
			if strings.TrimSpace(id) == "" {
				errs = append(errs, fmt.Errorf("oidc.client_ids[%d]: must not be empty", i))
			}
		}
	} else if c.OIDC.Audience != "" {
		errs = append(errs, errors.New("oidc.issuer: required when oidc.audience is set"))
	}
	if len(c.tokenHashes()) == 0 && c.TokensFile == "" && c.OIDC.Issuer == "" {
		errs = append(errs, errors.New("tokens: no way to authenticate the IdP: set BRIDGE_INBOUND_SCIM_TOKENS, tokens_file, token_sha256 or oidc.issuer"))
	}
	return errors.Join(errs...)
}
