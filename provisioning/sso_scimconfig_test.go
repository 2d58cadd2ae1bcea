package provisioning

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"
	"go.yaml.in/yaml/v3"

	"github.com/babelforce/bridge/babelforce"
)

const scimConfigPutKey = "PUT /auth/scim/v2/configuration"

func TestSCIMConfigAppliedOnceThenNoop(t *testing.T) {
	bf := newSSOFake()
	cfg := SCIMConfigConfig{
		Manage: true, DefaultRoles: []string{"agent", "user"}, Customizer: "microsoft",
		Features: babelforce.SCIMFeatures{SCIM: true, Roles: true, PhoneNumberSync: true},
	}
	task, err := NewSCIMConfigTask(cfg, bf)
	if err != nil {
		t.Fatal(err)
	}
	if task.Name() != "scim-configuration" {
		t.Errorf("Name = %q", task.Name())
	}
	ctx := context.Background()
	changes, err := task.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Kind != UpdateSCIMConfig {
		t.Fatalf("plan: %+v", changes)
	}
	var names []string
	for _, f := range changes[0].Fields {
		names = append(names, f.Field)
	}
	if !slices.Equal(names, []string{"defaultRoles", "customizer", "features.phone_number_sync"}) {
		t.Errorf("fields: %v", names)
	}
	if err := task.Apply(ctx, changes[0]); err != nil {
		t.Fatal(err)
	}
	if n := bf.Calls()[scimConfigPutKey]; n != 1 {
		t.Fatalf("PUT calls = %d, want 1", n)
	}
	got, _ := bf.GetSCIMConfiguration(ctx)
	if !slices.Equal(got.DefaultRoles, []string{"agent", "user"}) || got.Customizer != "microsoft" || got.Features != cfg.Features {
		t.Errorf("stored: %+v", got)
	}

	// Same config, roles in another order, fresh task: nothing to do.
	cfg.DefaultRoles = []string{"user", "agent"}
	task2, _ := NewSCIMConfigTask(cfg, bf)
	if cs, err := task2.Plan(ctx); err != nil || len(cs) != 0 {
		t.Errorf("second plan: %+v %v", cs, err)
	}
	if n := bf.Calls()[scimConfigPutKey]; n != 1 {
		t.Errorf("PUT calls = %d, want 1", n)
	}

	// Apply without a fresh Plan plans first, and writes only on a difference.
	cfg.Features.Groups = true
	task3, _ := NewSCIMConfigTask(cfg, bf)
	if err := task3.Apply(ctx, Change{Kind: UpdateSCIMConfig}); err != nil {
		t.Fatal(err)
	}
	if err := task3.Apply(ctx, Change{Kind: UpdateSCIMConfig}); err != nil {
		t.Fatal(err)
	}
	if n := bf.Calls()[scimConfigPutKey]; n != 2 {
		t.Errorf("PUT calls = %d, want 2", n)
	}
}

func TestSCIMConfigUnmanaged(t *testing.T) {
	bf := newSSOFake()
	task, err := NewSCIMConfigTask(SCIMConfigConfig{DefaultRoles: []string{"bogus"}}, bf)
	if err != nil {
		t.Fatalf("unmanaged section is not validated: %v", err)
	}
	if cs, err := task.Plan(context.Background()); err != nil || len(cs) != 0 || len(bf.Calls()) != 0 {
		t.Errorf("unmanaged: %+v %v %v", cs, err, bf.Calls())
	}
}

func TestSCIMConfigValidate(t *testing.T) {
	err := SCIMConfigConfig{Manage: true, DefaultRoles: []string{"agent", "wizard", "agent"}, Customizer: "micro soft"}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`scim_configuration.default_roles: unknown role "wizard"`,
		`scim_configuration.default_roles: role "agent" listed twice`,
		`scim_configuration.customizer: invalid value "micro soft"`,
		"scim_configuration.features.scim: must be true",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := NewSCIMConfigTask(SCIMConfigConfig{Manage: true}, newSSOFake()); err == nil {
		t.Error("NewSCIMConfigTask accepted an invalid config")
	}
	ok := SCIMConfigConfig{Manage: true, DefaultRoles: babelforce.Roles, Features: babelforce.SCIMFeatures{SCIM: true}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid: %v", err)
	}
}

func TestSCIMConfigYAML(t *testing.T) {
	const doc = `
manage: true
default_roles: [agent]
customizer: microsoft
features:
  scim: true
  roles: true
  password_sync: true
  phone_number_sync: true
`
	var c SCIMConfigConfig
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	want := SCIMConfigConfig{Manage: true, DefaultRoles: []string{"agent"}, Customizer: "microsoft",
		Features: babelforce.SCIMFeatures{SCIM: true, Roles: true, PasswordSync: true, PhoneNumberSync: true}}
	if !slices.Equal(c.DefaultRoles, want.DefaultRoles) || c.Manage != want.Manage || c.Customizer != want.Customizer || c.Features != want.Features {
		t.Errorf("got %+v, want %+v", c, want)
	}
	// Inside a parent document, absent keys keep their preset values.
	var parent struct {
		SCIM SCIMConfigConfig `yaml:"scim_configuration"`
	}
	parent.SCIM.Features.SCIM = true
	if err := yaml.Unmarshal([]byte("scim_configuration:\n  manage: true\n"), &parent); err != nil {
		t.Fatal(err)
	}
	if !parent.SCIM.Manage || !parent.SCIM.Features.SCIM {
		t.Errorf("parent: %+v", parent.SCIM)
	}
	if err := yaml.Unmarshal([]byte("features: [1]"), &c); err == nil {
		t.Error("bad YAML accepted")
	}
}

func TestSCIMConfigEnv(t *testing.T) {
	c := SCIMConfigConfig{Features: babelforce.SCIMFeatures{SCIM: true}}
	l := envconfig.PrefixLookuper("BRIDGE_SCIM_CONFIGURATION_", envconfig.MapLookuper(map[string]string{
		"BRIDGE_SCIM_CONFIGURATION_MANAGE":        "true",
		"BRIDGE_SCIM_CONFIGURATION_DEFAULT_ROLES": "agent,supervisor",
	}))
	if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{Target: &c, Lookuper: l}); err != nil {
		t.Fatal(err)
	}
	if !c.Manage || !slices.Equal(c.DefaultRoles, []string{"agent", "supervisor"}) || !c.Features.SCIM {
		t.Errorf("env: %+v", c)
	}
}
