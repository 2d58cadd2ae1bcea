package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
	"go.yaml.in/yaml/v3"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/internal/secretfile"
	"github.com/babelforce/bridge/internal/ui"
	"github.com/babelforce/bridge/mapping"
	"github.com/babelforce/bridge/oidc"
	"github.com/babelforce/bridge/provisioning"
	"github.com/babelforce/bridge/provisioning/scimserver"
)

// Config is bridge's whole configuration file (config.example.yaml documents every key).
// Values come from YAML; environment variables override them (BRIDGE_<SECTION>_<KEY>); secrets
// come only from the environment or from files named by *_file keys.
type Config struct {
	Babelforce  babelforce.Config             `yaml:"babelforce"`
	Directory   directory.Config              `yaml:"directory"`
	Mapping     mapping.Config                `yaml:"mapping"`
	Sync        provisioning.Config           `yaml:"sync"`
	SSO         oidc.Config                   `yaml:"sso"`
	SCIMConfig  provisioning.SCIMConfigConfig `yaml:"scim_configuration"`
	InboundSCIM scimserver.Config             `yaml:"inbound_scim"`
	Store       StoreConfig                   `yaml:"store"`
	Server      ServerConfig                  `yaml:"server"`
	UI          ui.Config                     `yaml:"ui"`
	Log         LogConfig                     `yaml:"log"`
}

// StoreConfig says where what IdPs push is kept.
type StoreConfig struct {
	// Path of the SQLite file (created on first start; default bridge.db). ":memory:" keeps
	// nothing across restarts. A postgres:// or postgresql:// URL uses that PostgreSQL
	// database instead, which several bridge replicas can share (they then reconcile one at
	// a time); the database must exist, bridge creates and migrates its tables. Never put
	// the password in the YAML: set the whole URL in the environment
	// (BRIDGE_STORE_PATH=postgres://bridge:PASSWORD@db:5432/bridge?sslmode=verify-full), or
	// keep a password-less URL here and give the password as PGPASSWORD or in a PGPASSFILE.
	// bridge never logs the password.
	Path string `yaml:"path" env:"PATH, overwrite"`
}

// ServerConfig configures `bridge serve`.
type ServerConfig struct {
	Listen string `yaml:"listen" env:"LISTEN, overwrite"`
	// AdminToken guards /api/v1 and /metrics. Only from env (BRIDGE_SERVER_ADMIN_TOKEN) or a file.
	AdminToken      string        `yaml:"-" env:"ADMIN_TOKEN, overwrite"`
	AdminTokenFile  string        `yaml:"admin_token_file" env:"ADMIN_TOKEN_FILE, overwrite"`
	MetricsPublic   bool          `yaml:"metrics_public" env:"METRICS_PUBLIC, overwrite"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" env:"SHUTDOWN_TIMEOUT, overwrite"`
	ReadTimeout     time.Duration `yaml:"read_timeout" env:"READ_TIMEOUT, overwrite"`
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `yaml:"level" env:"LEVEL, overwrite"`   // debug, info, warn, error
	Format string `yaml:"format" env:"FORMAT, overwrite"` // json or text
	// Audit is the file the audit records of writes to babelforce are appended to (JSON
	// lines); empty: stderr, as JSON. They are written whatever level and format say.
	Audit string `yaml:"audit" env:"AUDIT, overwrite"`
}

func (c *ServerConfig) setDefaults() {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 30 * time.Second
	}
}

func (c *ServerConfig) validate() error {
	var errs []error
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown_timeout: must not be negative"))
	}
	if c.ReadTimeout < 0 {
		errs = append(errs, fmt.Errorf("read_timeout: must not be negative"))
	}
	return errors.Join(errs...)
}

func (c *LogConfig) validate() error {
	var errs []error
	switch strings.ToLower(c.Level) {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("level: must be debug, info, warn or error, got %q", c.Level))
	}
	switch strings.ToLower(c.Format) {
	case "", "json", "text":
	default:
		errs = append(errs, fmt.Errorf("format: must be json or text, got %q", c.Format))
	}
	return errors.Join(errs...)
}

// loadConfig reads the YAML file, applies environment overrides, reads secret files and
// validates everything, returning every problem at once. babelforce says whether the command
// calls babelforce: only then are its credentials required (directory dump, sso check and
// config validate run without them).
func loadConfig(ctx context.Context, path string, lookup func(string) (string, bool), babelforce bool) (*Config, error) {
	if path == "" {
		return nil, usageError{"--config FILE is required (see config.example.yaml)"}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return parseConfig(ctx, raw, path, lookup, babelforce)
}

func parseConfig(ctx context.Context, raw []byte, name string, lookup func(string) (string, bool), babelforce bool) (*Config, error) {
	cfg := Config{Sync: provisioning.DefaultConfig()}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", name, yamlProblem(err))
	}
	if err := applyEnv(ctx, &cfg, lookup); err != nil {
		return nil, fmt.Errorf("config %s: environment: %w", name, err)
	}
	if err := cfg.loadSecrets(); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	if err := cfg.validate(babelforce); err != nil {
		return nil, &ConfigError{File: name, Err: err}
	}
	return &cfg, nil
}

// defaultStorePath is store.path when unset.
const defaultStorePath = "bridge.db"

// deprecations lists the settings of c that still work but should go, each with what to do.
func (c *Config) deprecations() []string {
	var out []string
	if c.SSO.FingerprintFile != "" {
		out = append(out, "sso.fingerprint_file is deprecated: the SSO secret's fingerprint now lives in the reconciler's state "+
			"(the store the replicas share, else sync.state_file). bridge imports the file into the state once, on the next run "+
			"while the state has no fingerprint; after that run (bridge sso apply, sync or serve) remove the setting and the file")
	}
	return out
}

// effective returns a copy of c with every default the packages apply when they start, so that
// what bridge config validate --print shows is what runs, under the keys it is read from.
func (c *Config) effective() *Config {
	e := *c
	e.Babelforce.SetDefaults()
	// the directory's sections are pointers: default copies of them
	if d := c.Directory.LDAP; d != nil {
		cp := *d
		e.Directory.LDAP = &cp
	}
	if d := c.Directory.SCIM; d != nil {
		cp := *d
		e.Directory.SCIM = &cp
	}
	if d := c.Directory.LDIF; d != nil {
		cp := *d
		e.Directory.LDIF = &cp
	}
	e.Directory.SetDefaults()
	e.Mapping = c.Mapping.WithDefaults()
	e.SSO = c.SSO.WithDefaults()
	if e.InboundSCIM.MaxBodyBytes == 0 {
		e.InboundSCIM.MaxBodyBytes = scimserver.DefaultMaxBodyBytes
	}
	if e.Store.Path == "" {
		e.Store.Path = defaultStorePath
	}
	e.Server.setDefaults()
	if e.UI.SessionTTL == 0 {
		e.UI.SessionTTL = ui.DefaultSessionTTL
	}
	return &e
}

// ConfigError lists every problem of a configuration.
type ConfigError struct {
	File string
	Err  error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	probs := flatten(e.Err)
	fmt.Fprintf(&b, "config %s has %d problem(s):", e.File, len(probs))
	for _, p := range probs {
		fmt.Fprintf(&b, "\n  - %s", p)
	}
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// flatten turns nested errors.Join trees into one line per problem.
func flatten(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// prefixed prefixes each problem in err with a YAML key path.
func prefixed(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var out []error
	for _, p := range flatten(err) {
		if strings.HasPrefix(p, prefix+".") {
			out = append(out, errors.New(p)) // the package named its section already
			continue
		}
		out = append(out, fmt.Errorf("%s.%s", prefix, p))
	}
	return errors.Join(out...)
}

// yamlProblem makes yaml's type errors say what to fix, one per line, without Go types.
func yamlProblem(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		probs := make([]string, len(te.Errors))
		for i, p := range te.Errors {
			probs[i] = goTypeInYAMLError.ReplaceAllString(p, "unknown key $1 (config.example.yaml lists every key)")
		}
		return fmt.Errorf("%s", strings.Join(probs, "; "))
	}
	return err
}

// goTypeInYAMLError matches yaml's "field x not found in type struct {...}".
var goTypeInYAMLError = regexp.MustCompile(`field (\S+) not found in type .*$`)

// applyEnv applies BRIDGE_<SECTION>_<KEY> overrides section by section. A directory
// sub-section (BRIDGE_LDAP_*, BRIDGE_SCIM_SOURCE_*, BRIDGE_LDIF_*) is created when the YAML has
// none but directory.type names it, so that it can be configured from the environment alone.
func applyEnv(ctx context.Context, cfg *Config, lookup func(string) (string, bool)) error {
	type section struct {
		prefix string
		target any
	}
	sections := []section{
		{"BRIDGE_BABELFORCE_", &cfg.Babelforce},
		{"BRIDGE_SYNC_", &cfg.Sync},
		{"BRIDGE_SSO_", &cfg.SSO},
		{"BRIDGE_INBOUND_SCIM_", &cfg.InboundSCIM},
		{"BRIDGE_STORE_", &cfg.Store},
		{"BRIDGE_SERVER_", &cfg.Server},
		{"BRIDGE_UI_", &cfg.UI},
		{"BRIDGE_LOG_", &cfg.Log},
	}
	if v, ok := lookup("BRIDGE_DIRECTORY_TYPE"); ok {
		cfg.Directory.Type = v
	}
	d := &cfg.Directory
	if d.LDAP == nil && d.Type == directory.TypeLDAP {
		d.LDAP = &directory.LDAPConfig{}
	}
	if d.SCIM == nil && d.Type == directory.TypeSCIM {
		d.SCIM = &directory.SCIMSourceConfig{}
	}
	if d.LDIF == nil && d.Type == directory.TypeLDIF {
		d.LDIF = &directory.LDIFConfig{}
	}
	if d.LDAP != nil {
		sections = append(sections, section{"BRIDGE_LDAP_", d.LDAP})
	}
	if d.SCIM != nil {
		sections = append(sections, section{"BRIDGE_SCIM_SOURCE_", d.SCIM})
	}
	if d.LDIF != nil {
		sections = append(sections, section{"BRIDGE_LDIF_", d.LDIF})
	}
	base := envconfig.LookuperFunc(lookup)
	var errs []error
	for _, s := range sections {
		err := envconfig.ProcessWith(ctx, &envconfig.Config{
			Target:   s.target,
			Lookuper: envconfig.PrefixLookuper(s.prefix, base),
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s*: %w", s.prefix, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) loadSecrets() error {
	var errs []error
	add := func(prefix string, err error) {
		if err != nil {
			errs = append(errs, prefixed(prefix, err))
		}
	}
	add("babelforce", c.Babelforce.LoadSecrets())
	add("directory", c.Directory.LoadSecrets())
	add("sso", c.SSO.LoadSecrets())
	add("inbound_scim", c.InboundSCIM.LoadSecrets())
	add("ui", c.UI.LoadSecrets())
	if c.Server.AdminToken == "" && c.Server.AdminTokenFile != "" {
		tok, err := secretfile.Read(c.Server.AdminTokenFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("server.admin_token_file: %w", err))
		} else {
			c.Server.AdminToken = tok
		}
	}
	return errors.Join(errs...)
}

// Validate checks every section and returns every problem at once, each naming its key.
func (c *Config) Validate() error { return c.validate(true) }

// validate is Validate, with the babelforce credentials left out unless babelforce is set.
func (c *Config) validate(babelforce bool) error {
	c.Server.setDefaults()
	var errs []error
	add := func(prefix string, err error) {
		if err != nil {
			errs = append(errs, prefixed(prefix, err))
		}
	}
	add("babelforce", c.Babelforce.ValidateSettings())
	if babelforce {
		add("babelforce", c.Babelforce.ValidateCredentials())
	}
	add("directory", c.Directory.Validate())
	add("mapping", c.Mapping.Validate())
	add("sync", c.Sync.Validate())
	if c.SSO.Enabled {
		add("sso", c.SSO.Validate())
	}
	add("scim_configuration", c.SCIMConfig.Validate())
	if c.InboundSCIM.Enabled || c.Directory.Type == directory.TypeSCIMPush {
		add("inbound_scim", c.InboundSCIM.Validate())
	}
	add("server", c.Server.validate())
	add("ui", c.UI.Validate())
	add("log", c.Log.validate())
	return errors.Join(errs...)
}
