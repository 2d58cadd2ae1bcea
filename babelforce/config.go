package babelforce

import (
	"github.com/babelforce/bridge/internal/httpx"

	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/babelforce/bridge/internal/secretfile"
)

// Defaults applied by SetDefaults (and New).
const (
	DefaultBaseURL        = "https://services.babelforce.com"
	DefaultClientID       = "manager"
	DefaultTimeout        = 30 * time.Second
	DefaultMaxConcurrency = 8
	DefaultMaxAttempts    = 5
	DefaultMaxRetryTime   = 2 * time.Minute
	DefaultPageSize       = 100
	// MaxPageSize is the largest page size Validate accepts.
	MaxPageSize = 1000
)

// Config configures a Client. YAML keys are snake_case; environment variables carry no prefix
// here (the CLI adds BRIDGE_BABELFORCE_). The secrets Password, Token and SCIMToken never come
// from YAML: set them through the environment or point *_file at a file holding them.
type Config struct {
	// BaseURL is the babelforce environment, e.g. https://services.babelforce.com. Plain http
	// is accepted only for loopback hosts (localhost, 127.0.0.0/8, ::1), i.e. tests.
	BaseURL string `yaml:"base_url" env:"BASE_URL, overwrite"`
	// Username and Password are a babelforce user with the manager role (OAuth password grant).
	Username     string `yaml:"username" env:"USERNAME, overwrite"`
	Password     string `yaml:"-" env:"PASSWORD, overwrite"`
	PasswordFile string `yaml:"password_file" env:"PASSWORD_FILE, overwrite"`
	// Token is a static bearer token, the alternative to Username/Password.
	Token     string `yaml:"-" env:"TOKEN, overwrite"`
	TokenFile string `yaml:"token_file" env:"TOKEN_FILE, overwrite"`
	// SCIMToken is the long-lived bearer token of babelforce's SCIM API (/auth/scim/v2). When
	// empty, SCIM calls use the same bearer token as the Manager API.
	SCIMToken     string `yaml:"-" env:"SCIM_TOKEN, overwrite"`
	SCIMTokenFile string `yaml:"scim_token_file" env:"SCIM_TOKEN_FILE, overwrite"`
	// ClientID is the OAuth client id of the password grant; default "manager".
	ClientID string `yaml:"client_id" env:"CLIENT_ID, overwrite"`
	// Timeout bounds one HTTP request (not its retries); default 30s.
	Timeout time.Duration `yaml:"timeout" env:"TIMEOUT, overwrite"`
	// RateLimit is the client-side limit in requests per second; default 0: no fixed limit
	// (the adaptive limiter still slows the client down after 429s, see the package doc).
	RateLimit float64 `yaml:"rate_limit" env:"RATE_LIMIT, overwrite"`
	// Burst is the rate limiter's bucket size; default ceil(RateLimit).
	Burst int `yaml:"burst" env:"BURST, overwrite"`
	// MaxConcurrency bounds requests in flight; default 8.
	MaxConcurrency int `yaml:"max_concurrency" env:"MAX_CONCURRENCY, overwrite"`
	// MaxAttempts bounds the tries of one call (first try included); default 5.
	MaxAttempts int `yaml:"max_attempts" env:"MAX_ATTEMPTS, overwrite"`
	// MaxRetryTime bounds the time one call may spend retrying; default 2m.
	MaxRetryTime time.Duration `yaml:"max_retry_time" env:"MAX_RETRY_TIME, overwrite"`
	// CAFile is a PEM file of CAs to trust in addition to the system's.
	CAFile string `yaml:"ca_file" env:"CA_FILE, overwrite"`
	// InsecureSkipVerify disables TLS certificate verification. Never in production.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify" env:"INSECURE_SKIP_VERIFY, overwrite"`
	// PageSize is the "max" of list requests; default 100.
	PageSize int `yaml:"page_size" env:"PAGE_SIZE, overwrite"`
}

// SetDefaults fills every unset field with its default. BaseURL stays empty (Validate asks for
// it) so that a missing setting is noticed rather than silently pointing at production.
func (c *Config) SetDefaults() {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = DefaultMaxConcurrency
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxRetryTime == 0 {
		c.MaxRetryTime = DefaultMaxRetryTime
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.RateLimit > 0 && c.Burst == 0 {
		c.Burst = max(1, int(c.RateLimit+0.999999))
	}
}

// LoadSecrets reads PasswordFile, TokenFile and SCIMTokenFile into Password, Token and
// SCIMToken when those are empty, trimming the trailing newline.
func (c *Config) LoadSecrets() error {
	var errs []error
	load := func(key, file string, dst *string) {
		if *dst != "" || file == "" {
			return
		}
		s, err := secretfile.Read(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			return
		}
		*dst = s
	}
	load("password_file", c.PasswordFile, &c.Password)
	load("token_file", c.TokenFile, &c.Token)
	load("scim_token_file", c.SCIMTokenFile, &c.SCIMToken)
	return errors.Join(errs...)
}

// Validate reports every problem of the configuration at once, each prefixed with its YAML
// key: its settings and its credentials. It changes nothing and reads no file; unset optional
// fields (zero) are valid.
func (c *Config) Validate() error {
	return errors.Join(c.ValidateSettings(), c.ValidateCredentials())
}

// ValidateCredentials reports what is missing or contradictory in the credentials (username
// and password, or a token). Commands that never call babelforce check only ValidateSettings.
func (c *Config) ValidateCredentials() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	hasPassword := c.Password != "" || c.PasswordFile != ""
	hasToken := c.Token != "" || c.TokenFile != ""
	switch {
	case hasToken && hasPassword:
		bad("token", "set either token (token_file) or username and password (password_file), not both")
	case hasToken:
	case c.Username == "" && !hasPassword:
		bad("username", "is required (or set token / token_file for a static bearer token)")
		bad("password", "is required: set it via the environment or password_file")
	case c.Username == "":
		bad("username", "is required with a password")
	case !hasPassword:
		bad("password", "is required for username %q: set it via the environment or password_file", c.Username)
	}
	// A secret set in the environment wins over its *_file (LoadSecrets reads the file only
	// when the secret is empty), so having both is not an error.
	return errors.Join(errs...)
}

// ValidateSettings reports every problem of the configuration except its credentials.
func (c *Config) ValidateSettings() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if c.BaseURL == "" {
		bad("base_url", "is required, e.g. %q", DefaultBaseURL)
	} else if err := checkBaseURL(c.BaseURL); err != nil {
		bad("base_url", "%s, got %q", err, c.BaseURL)
	}
	if c.Timeout < 0 {
		bad("timeout", "must not be negative, got %s", c.Timeout)
	}
	if c.RateLimit < 0 {
		bad("rate_limit", "must not be negative (0 = unlimited), got %g", c.RateLimit)
	}
	if c.Burst < 0 {
		bad("burst", "must not be negative, got %d", c.Burst)
	}
	if c.MaxConcurrency < 0 {
		bad("max_concurrency", "must not be negative, got %d", c.MaxConcurrency)
	}
	if c.MaxAttempts < 0 {
		bad("max_attempts", "must not be negative, got %d", c.MaxAttempts)
	}
	if c.MaxRetryTime < 0 {
		bad("max_retry_time", "must not be negative, got %s", c.MaxRetryTime)
	}
	if c.PageSize < 0 || c.PageSize > MaxPageSize {
		bad("page_size", "must be between 1 and %d, got %d", MaxPageSize, c.PageSize)
	}
	return errors.Join(errs...)
}

// checkBaseURL accepts an absolute http(s) URL without query or fragment; http only for
// loopback hosts.
func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("must be an absolute http(s) URL")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("must not carry user info, a query or a fragment")
	}
	if u.Scheme == "http" && !httpx.IsLoopbackHost(u.Hostname()) {
		return errors.New("must use https (plain http is accepted only for localhost/loopback)")
	}
	return nil
}
