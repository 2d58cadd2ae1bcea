package provisioning

import (
	"context"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"go.yaml.in/yaml/v3"
)

func TestConfigYAMLAndEnvironment(t *testing.T) {
	cfg := DefaultConfig()
	doc := `
adopt: true
delete:
  enabled: true
guard:
  max_destructive_percent: 5
login_users:
  deactivate_on_leave: false
state_file: /var/lib/bridge/state.json
`
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	env := envconfig.PrefixLookuper("BRIDGE_SYNC_", envconfig.MapLookuper(map[string]string{
		"BRIDGE_SYNC_INTERVAL":              "30m",
		"BRIDGE_SYNC_DELETE_GRACE_PERIOD":   "48h",
		"BRIDGE_SYNC_GUARD_MAX_DESTRUCTIVE": "25",
	}))
	if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{Target: &cfg, Lookuper: env}); err != nil {
		t.Fatal(err)
	}
	want := Config{Adopt: true, Delete: DeleteConfig{Enabled: true, GracePeriod: 48 * time.Hour},
		Guard: GuardConfig{MaxDestructive: 25, MaxDestructivePercent: 5}, Concurrency: 4, Interval: 30 * time.Minute,
		Jitter: 10, LoginUsers: LoginUsersConfig{DeactivateOnLeave: false}, StateFile: "/var/lib/bridge/state.json", LivePoll: DefaultLivePoll}
	if cfg != want {
		t.Errorf("config\n got  %+v\n want %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}
