package provisioning

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/babelforce/bridge/babelforce"
)

// SCIMConfigTarget is the part of babelforce the SCIM configuration task reads and writes
// (*babelforce.Client).
type SCIMConfigTarget interface {
	GetSCIMConfiguration(ctx context.Context) (*babelforce.SCIMConfiguration, error)
	PutSCIMConfiguration(ctx context.Context, cfg *babelforce.SCIMConfiguration) (*babelforce.SCIMConfiguration, error)
}

// SCIMConfigSubject is the Subject of the UpdateSCIMConfig change.
const SCIMConfigSubject = "scim configuration"

// SCIMConfigConfig is the desired babelforce SCIM configuration (PUT /auth/scim/v2/configuration):
//
//	scim_configuration:
//	  manage: true            # false: bridge leaves babelforce's SCIM configuration alone
//	  default_roles: [agent]  # roles of users created through SCIM (see babelforce.Roles)
//	  customizer: microsoft   # babelforce's SCIM dialect; empty for none
//	  features:
//	    scim: true
//	    groups: false
//	    roles: true
//	    password_sync: false
//	    phone_number_sync: false
//
// The features keys are the wire names; environment variables (prefix chosen by the caller)
// cover manage, default_roles and customizer.
type SCIMConfigConfig struct {
	Manage       bool                    `yaml:"manage" env:"MANAGE, overwrite"`
	DefaultRoles []string                `yaml:"default_roles" env:"DEFAULT_ROLES, overwrite"`
	Customizer   string                  `yaml:"customizer" env:"CUSTOMIZER, overwrite"`
	Features     babelforce.SCIMFeatures `yaml:"features"`
}

// scimConfigYAML is SCIMConfigConfig as YAML: the features under their wire names
// (password_sync, phone_number_sync), which babelforce.SCIMFeatures carries only as JSON tags.
type scimConfigYAML struct {
	Manage       bool     `yaml:"manage"`
	DefaultRoles []string `yaml:"default_roles"`
	Customizer   string   `yaml:"customizer"`
	Features     struct {
		SCIM            bool `yaml:"scim"`
		Groups          bool `yaml:"groups"`
		Roles           bool `yaml:"roles"`
		PasswordSync    bool `yaml:"password_sync"`
		PhoneNumberSync bool `yaml:"phone_number_sync"`
	} `yaml:"features"`
}

func (c SCIMConfigConfig) toYAML() scimConfigYAML {
	var raw scimConfigYAML
	raw.Manage, raw.DefaultRoles, raw.Customizer = c.Manage, c.DefaultRoles, c.Customizer
	raw.Features.SCIM, raw.Features.Groups, raw.Features.Roles = c.Features.SCIM, c.Features.Groups, c.Features.Roles
	raw.Features.PasswordSync, raw.Features.PhoneNumberSync = c.Features.PasswordSync, c.Features.PhoneNumberSync
	return raw
}

// MarshalYAML writes the section under the keys UnmarshalYAML reads.
func (c SCIMConfigConfig) MarshalYAML() (any, error) { return c.toYAML(), nil }

// UnmarshalYAML reads the section with the features under their wire names.
func (c *SCIMConfigConfig) UnmarshalYAML(unmarshal func(any) error) error {
	// Start from the current values so defaults set before decoding survive absent keys.
	raw := c.toYAML()
	if err := unmarshal(&raw); err != nil {
		return err
	}
	*c = SCIMConfigConfig{
		Manage:       raw.Manage,
		DefaultRoles: raw.DefaultRoles,
		Customizer:   raw.Customizer,
		Features: babelforce.SCIMFeatures{
			SCIM: raw.Features.SCIM, Groups: raw.Features.Groups, Roles: raw.Features.Roles,
			PasswordSync: raw.Features.PasswordSync, PhoneNumberSync: raw.Features.PhoneNumberSync,
		},
	}
	return nil
}

// Validate reports every problem at once, each prefixed with its key. An unmanaged section is
// not checked. It changes nothing.
func (c SCIMConfigConfig) Validate() error {
	if !c.Manage {
		return nil
	}
	var errs []error
	seen := map[string]bool{}
	for _, r := range c.DefaultRoles {
		switch {
		case !slices.Contains(babelforce.Roles, r):
			errs = append(errs, fmt.Errorf("scim_configuration.default_roles: unknown role %q (known: %s)", r, strings.Join(babelforce.Roles, ", ")))
		case seen[r]:
			errs = append(errs, fmt.Errorf("scim_configuration.default_roles: role %q listed twice", r))
		}
		seen[r] = true
	}
	if strings.ContainsAny(c.Customizer, " \t\n/") {
		errs = append(errs, fmt.Errorf("scim_configuration.customizer: invalid value %q (a single word such as microsoft)", c.Customizer))
	}
	if !c.Features.SCIM {
		errs = append(errs, errors.New("scim_configuration.features.scim: must be true when bridge manages the SCIM configuration (bridge provisions login users over SCIM)"))
	}
	return errors.Join(errs...)
}

// SCIMConfigTask keeps babelforce's SCIM configuration (default roles, customizer, feature
// flags) equal to a SCIMConfigConfig: GET, compare, PUT only on a difference. It is a side task
// of the reconciler.
type SCIMConfigTask struct {
	cfg SCIMConfigConfig
	tgt SCIMConfigTarget
	log *slog.Logger

	mu      sync.Mutex
	planned *babelforce.SCIMConfiguration
}

// SCIMConfigOption configures a SCIMConfigTask.
type SCIMConfigOption func(*SCIMConfigTask)

// WithSCIMConfigLogger sets the logger (default: discard).
func WithSCIMConfigLogger(l *slog.Logger) SCIMConfigOption {
	return func(t *SCIMConfigTask) {
		if l != nil {
			t.log = l
		}
	}
}

// NewSCIMConfigTask returns the SCIM configuration side task; cfg must be valid.
func NewSCIMConfigTask(cfg SCIMConfigConfig, tgt SCIMConfigTarget, opts ...SCIMConfigOption) (*SCIMConfigTask, error) {
	if tgt == nil {
		return nil, errors.New("scim configuration task: no babelforce target")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("scim configuration task: %w", err)
	}
	t := &SCIMConfigTask{cfg: cfg, tgt: tgt, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(t)
	}
	return t, nil
}

// Name names the task in logs and reports.
func (t *SCIMConfigTask) Name() string { return "scim-configuration" }

func (t *SCIMConfigTask) desired() *babelforce.SCIMConfiguration {
	roles := slices.Clone(t.cfg.DefaultRoles)
	if roles == nil {
		roles = []string{}
	}
	return &babelforce.SCIMConfiguration{DefaultRoles: roles, Customizer: t.cfg.Customizer, Features: t.cfg.Features}
}

// Plan reads babelforce's SCIM configuration and returns one UpdateSCIMConfig change when it
// differs (none when it matches or the section is not managed).
func (t *SCIMConfigTask) Plan(ctx context.Context) ([]Change, error) {
	t.mu.Lock()
	t.planned = nil
	t.mu.Unlock()
	if !t.cfg.Manage {
		return nil, nil
	}
	cur, err := t.tgt.GetSCIMConfiguration(ctx)
	if err != nil {
		return nil, fmt.Errorf("scim configuration: read babelforce SCIM configuration: %w", err)
	}
	if cur == nil {
		cur = &babelforce.SCIMConfiguration{}
	}
	want := t.desired()
	fields := scimConfigDiff(cur, want)
	if len(fields) == 0 {
		return nil, nil
	}
	t.mu.Lock()
	t.planned = want
	t.mu.Unlock()
	return []Change{{Kind: UpdateSCIMConfig, Subject: SCIMConfigSubject, Fields: fields,
		Reason: "babelforce SCIM configuration differs from config"}}, nil
}

// Apply writes the configuration planned by the last Plan (planning again when there is none).
func (t *SCIMConfigTask) Apply(ctx context.Context, c Change) error {
	if c.Kind != UpdateSCIMConfig {
		return fmt.Errorf("scim configuration: cannot apply a %s change", c.Kind)
	}
	want, err := plannedOrReplan(ctx, &t.mu, &t.planned, t.Plan)
	if err != nil {
		return err
	}
	if want == nil {
		return nil // nothing differs any more
	}
	if _, err := t.tgt.PutSCIMConfiguration(ctx, want); err != nil {
		return fmt.Errorf("scim configuration: update babelforce SCIM configuration: %w", err)
	}
	t.mu.Lock()
	t.planned = nil
	t.mu.Unlock()
	t.log.InfoContext(ctx, "scim configuration updated", slog.Int("fields", len(c.Fields)))
	return nil
}

func scimConfigDiff(cur, want *babelforce.SCIMConfiguration) []FieldChange {
	var d fieldDiff
	d.addSet("defaultRoles", cur.DefaultRoles, want.DefaultRoles, ",")
	d.add("customizer", cur.Customizer, want.Customizer)
	cf, wf := cur.Features, want.Features
	d.add("features.scim", fmt.Sprint(cf.SCIM), fmt.Sprint(wf.SCIM))
	d.add("features.groups", fmt.Sprint(cf.Groups), fmt.Sprint(wf.Groups))
	d.add("features.roles", fmt.Sprint(cf.Roles), fmt.Sprint(wf.Roles))
	d.add("features.password_sync", fmt.Sprint(cf.PasswordSync), fmt.Sprint(wf.PasswordSync))
	d.add("features.phone_number_sync", fmt.Sprint(cf.PhoneNumberSync), fmt.Sprint(wf.PhoneNumberSync))
	return d
}
