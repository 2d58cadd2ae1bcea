package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
)

// Source types of Config.Type.
const (
	TypeLDAP     = "ldap"
	TypeSCIM     = "scim"
	TypeLDIF     = "ldif"
	TypeSCIMPush = "scim_push"
)

// Config is the `directory:` section of bridge's configuration: which source to read and its
// settings. Only the section of the chosen type is needed.
//
//	directory:
//	  type: ldap            # ldap | scim | ldif | scim_push
//	  min_users: 50         # optional: a read with fewer users is refused
//	  ldap:   {...}         # LDAPConfig
//	  scim:   {...}         # SCIMSourceConfig
//	  ldif:   {...}         # LDIFConfig
//
// scim_push reads what IdPs push to bridge's inbound SCIM endpoint (directory/store); the CLI
// wires it, Open does not.
type Config struct {
	Type string            `yaml:"type" env:"TYPE, overwrite"`
	LDAP *LDAPConfig       `yaml:"ldap"`
	SCIM *SCIMSourceConfig `yaml:"scim"`
	LDIF *LDIFConfig       `yaml:"ldif"`
	// MinUsers, when positive, is a sanity floor: a read that returns fewer users is an
	// error (wrapping ErrIncomplete), so that a broken filter or an emptied OU cannot make
	// bridge disable everybody.
	MinUsers int `yaml:"min_users" env:"MIN_USERS, overwrite"`
}

// Validate checks that the section of the chosen type exists and delegates to it; every
// problem is reported at once, prefixed with its key (e.g. "ldap.urls: …").
func (c *Config) Validate() error {
	var errs []error
	section := func(name string, err error) {
		if err == nil {
			return
		}
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("%s.%w", name, e))
		}
	}
	switch strings.ToLower(c.Type) {
	case TypeLDAP:
		if c.LDAP == nil {
			errs = append(errs, errors.New("ldap: type is ldap but the ldap section is missing"))
		} else {
			section("ldap", c.LDAP.Validate())
		}
	case TypeSCIM:
		if c.SCIM == nil {
			errs = append(errs, errors.New("scim: type is scim but the scim section is missing"))
		} else {
			section("scim", c.SCIM.Validate())
		}
	case TypeLDIF:
		if c.LDIF == nil {
			errs = append(errs, errors.New("ldif: type is ldif but the ldif section is missing"))
		} else {
			section("ldif", c.LDIF.Validate())
		}
	case TypeSCIMPush:
	case "":
		errs = append(errs, fmt.Errorf("type: required: one of %s, %s, %s, %s", TypeLDAP, TypeSCIM, TypeLDIF, TypeSCIMPush))
	default:
		errs = append(errs, fmt.Errorf("type: %q is not one of %s, %s, %s, %s", c.Type, TypeLDAP, TypeSCIM, TypeLDIF, TypeSCIMPush))
	}
	if c.MinUsers < 0 {
		errs = append(errs, fmt.Errorf("min_users: %d must not be negative", c.MinUsers))
	}
	return errors.Join(errs...)
}

// unjoin splits an errors.Join result back into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// SetDefaults fills the defaults of the chosen source's section (presets, page sizes,
// timeouts), so that the configuration reads as what runs (bridge config validate --print).
func (c *Config) SetDefaults() {
	switch strings.ToLower(c.Type) {
	case TypeLDAP:
		if c.LDAP != nil {
			c.LDAP.SetDefaults()
		}
	case TypeSCIM:
		if c.SCIM != nil {
			c.SCIM.SetDefaults()
		}
	case TypeLDIF:
		if c.LDIF != nil {
			c.LDIF.SetDefaults()
		}
	}
}

// LoadSecrets reads the secret files of the chosen source (LDAP bind password, SCIM token).
func (c *Config) LoadSecrets() error {
	switch strings.ToLower(c.Type) {
	case TypeLDAP:
		if c.LDAP != nil {
			if err := c.LDAP.LoadSecrets(); err != nil {
				return fmt.Errorf("ldap.%w", err)
			}
		}
	case TypeSCIM:
		if c.SCIM != nil {
			if err := c.SCIM.LoadSecrets(); err != nil {
				return fmt.Errorf("scim.%w", err)
			}
		}
	}
	return nil
}

// Open returns the Reader for the configured source (ldap, scim or ldif), wrapped with the
// min_users floor when set. scim_push is wired by the CLI from directory/store. opts
// (KeepAttributes) apply to the source.
func Open(cfg Config, logger *slog.Logger, opts ...Option) (Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("directory config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var (
		r   Reader
		err error
	)
	switch strings.ToLower(cfg.Type) {
	case TypeLDAP:
		l := *cfg.LDAP
		if err := l.LoadSecrets(); err != nil {
			return nil, fmt.Errorf("directory config: ldap.%w", err)
		}
		r, err = NewLDAP(l, logger, opts...)
	case TypeSCIM:
		r, err = NewSCIMSource(*cfg.SCIM, logger, (*http.Client)(nil), opts...)
	case TypeLDIF:
		r, err = NewLDIF(*cfg.LDIF, logger, opts...)
	case TypeSCIMPush:
		return nil, errors.New("directory: type scim_push reads the inbound SCIM store (directory/store); it is opened by the server, not by directory.Open")
	}
	if err != nil {
		return nil, err
	}
	if cfg.MinUsers > 0 {
		m := &minUsersReader{r: r, min: cfg.MinUsers}
		if sc, ok := r.(scopedReader); ok {
			return &minUsersScoped{minUsersReader: m, sc: sc}, nil
		}
		return m, nil
	}
	return r, nil
}

// minUsersScoped is a minUsersReader of a source that reads some users too; the floor
// applies to the whole directory's count a scoped read reports.
type minUsersScoped struct {
	*minUsersReader
	sc scopedReader
}

func (m *minUsersScoped) ReadUsers(ctx context.Context, ids []string) (*Snapshot, int, error) {
	snap, total, err := m.sc.ReadUsers(ctx, ids)
	if err != nil {
		return nil, 0, err
	}
	if total < m.min {
		return nil, 0, fmt.Errorf("directory read from %s counts %d users, fewer than min_users %d (check the filters and base DNs): %w", snap.Source, total, m.min, ErrIncomplete)
	}
	return snap, total, nil
}

// minUsersReader refuses reads with fewer than min users.
type minUsersReader struct {
	r   Reader
	min int
}

func (m *minUsersReader) Read(ctx context.Context) (*Snapshot, error) {
	snap, err := m.r.Read(ctx)
	if err != nil {
		return nil, err
	}
	if len(snap.Users) < m.min {
		return nil, fmt.Errorf("directory read from %s returned %d users, fewer than min_users %d (check the filters and base DNs): %w", snap.Source, len(snap.Users), m.min, ErrIncomplete)
	}
	return snap, nil
}
