package provisioning

import (
	"cmp"
	"errors"
	"fmt"
	"time"
)

// Config is the sync part of bridge's configuration. Start from DefaultConfig and decode YAML
// (then environment, prefix BRIDGE_SYNC_) on top of it, so keys left out keep their defaults:
//
//	sync:
//	  dry_run: false            # observe mode: scheduled runs only plan (see DryRun)
//	  adopt: false              # take over existing agents with the same e-mail (only then)
//	  delete:
//	    enabled: false          # delete agents bridge disabled at least grace_period ago
//	    grace_period: 720h
//	  guard:
//	    max_destructive: 10         # a run is refused when the people its destructive changes
//	    max_destructive_percent: 10 # concern (disabled, deleted, deactivated, or losing a tag,
//	                                # agent group or role) exceed BOTH of these (the larger one
//	                                # is the allowance)
//	    min_source_users: 0         # fewer users read than this: nothing destructive
//	  concurrency: 4
//	  interval: 15m
//	  jitter: 10                # percent of interval, ±
//	  login_users:
//	    deactivate_on_leave: true
//	  state_file: /var/lib/bridge/state.json
//	  live: false               # also follow the directory's changes as they happen
//	  live_poll: 2s             # how often DirSync / SCIM / LDIF are asked for changes
type Config struct {
	// DryRun is observe mode, for the first days of a rollout: scheduled runs plan and report
	// (logs, /api/v1/status, metrics) but write nothing, and IdP pushes are stored but not
	// provisioned. What a person asks for explicitly (bridge sync, bridge provision,
	// POST /api/v1/sync or /provision) still writes.
	DryRun bool `yaml:"dry_run" json:"dry_run" env:"DRY_RUN, overwrite"`
	// Adopt makes bridge take over an existing agent (and login user) that has the e-mail of
	// a desired agent but is not bridge's yet. Off: such agents are left alone and reported.
	Adopt bool `yaml:"adopt" json:"adopt" env:"ADOPT, overwrite"`
	// Delete controls deletion of agents whose users left the directory.
	Delete DeleteConfig `yaml:"delete" json:"delete" env:", prefix=DELETE_"`
	// Guard bounds what one run may take away.
	Guard GuardConfig `yaml:"guard" json:"guard" env:", prefix=GUARD_"`
	// Concurrency is the number of write calls in flight at once.
	Concurrency int `yaml:"concurrency" json:"concurrency" env:"CONCURRENCY, overwrite"`
	// Interval between scheduled reconciles.
	Interval time.Duration `yaml:"interval" json:"interval" env:"INTERVAL, overwrite"`
	// Jitter is the random spread of the interval, in percent of it (0-100), both ways.
	Jitter float64 `yaml:"jitter" json:"jitter" env:"JITTER, overwrite"`
	// LoginUsers controls babelforce login users (managed through babelforce's SCIM API).
	LoginUsers LoginUsersConfig `yaml:"login_users" json:"login_users" env:", prefix=LOGIN_USERS_"`
	// StateFile is a small JSON file in which bridge remembers since when it has seen each of
	// its agents disabled (for delete.grace_period) and which groups and tags it manages.
	// Empty: kept in memory only (a restart starts the grace periods again).
	StateFile string `yaml:"state_file" json:"state_file" env:"STATE_FILE, overwrite"`
	// Live makes bridge serve follow the directory's change stream beside the periodic
	// reconcile: OpenLDAP syncrepl (the syncprov overlay), Active Directory DirSync, an
	// upstream SCIM service polled for meta.lastModified, an LDIF file watched. Each change
	// is queued as a scoped reconcile of the people it affects; the stream's cookie is kept
	// in the store, which is then opened even without inbound SCIM.
	Live bool `yaml:"live" json:"live" env:"LIVE, overwrite"`
	// LivePoll is how often a stream that must be polled (DirSync, SCIM, LDIF) asks for
	// changes (default 2s). syncrepl is pushed by the server and needs no polling.
	LivePoll time.Duration `yaml:"live_poll" json:"live_poll" env:"LIVE_POLL, overwrite"`
}

// DeleteConfig controls deletion.
type DeleteConfig struct {
	Enabled bool `yaml:"enabled" json:"enabled" env:"ENABLED, overwrite"`
	// GracePeriod is how long an agent stays disabled before bridge deletes it.
	GracePeriod time.Duration `yaml:"grace_period" json:"grace_period" env:"GRACE_PERIOD, overwrite"`
}

// GuardConfig bounds the destructive part of one run (disable, delete, deactivate login).
type GuardConfig struct {
	// MaxDestructive and MaxDestructivePercent (of the agents bridge owns): a run whose
	// destructive changes (disable, delete, deactivate, a lost tag, agent group or role)
	// concern more people than both is refused (no destructive change is applied; the rest
	// is). Either set to 0 leaves only the other. Both, not either: the larger is the
	// allowance, so a small directory is judged by the count and a large one by the share. A
	// damaged read is caught besides by the read checks (an incomplete source is an error) and
	// by rule-named groups that vanish (see Reconciler.guard).
	MaxDestructive        int     `yaml:"max_destructive" json:"max_destructive" env:"MAX_DESTRUCTIVE, overwrite"`
	MaxDestructivePercent float64 `yaml:"max_destructive_percent" json:"max_destructive_percent" env:"MAX_DESTRUCTIVE_PERCENT, overwrite"`
	// MinSourceUsers: a read with fewer users than this (and any empty read) applies nothing
	// destructive.
	MinSourceUsers int `yaml:"min_source_users" json:"min_source_users" env:"MIN_SOURCE_USERS, overwrite"`
	// Window: the people whose destructive changes scoped runs (pushes, live changes, runs of
	// a few people) applied are remembered in the state for this long (default: the sync
	// interval), and a scoped run counts them together with its own against
	// MaxDestructive/MaxDestructivePercent. Fifteen leavers pushed one at a time are judged
	// as one run of fifteen would be, not as fifteen runs of one. Whole runs count their own
	// read as before.
	Window time.Duration `yaml:"window" json:"window" env:"WINDOW, overwrite"`
}

// GuardWindow is Guard.Window, or Interval when unset.
func (c Config) GuardWindow() time.Duration { return cmp.Or(c.Guard.Window, c.Interval) }

// LoginUsersConfig controls login users.
type LoginUsersConfig struct {
	// DeactivateOnLeave deactivates the login user of a person who left the directory or
	// went out of scope (an inactive person's login user is always deactivated).
	DeactivateOnLeave bool `yaml:"deactivate_on_leave" json:"deactivate_on_leave" env:"DEACTIVATE_ON_LEAVE, overwrite"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Delete:      DeleteConfig{GracePeriod: 720 * time.Hour},
		Guard:       GuardConfig{MaxDestructive: 10, MaxDestructivePercent: 10},
		Concurrency: 4,
		Interval:    15 * time.Minute,
		Jitter:      10,
		LoginUsers:  LoginUsersConfig{DeactivateOnLeave: true},
		LivePoll:    DefaultLivePoll,
	}
}

// DefaultLivePoll is sync.live_poll when unset.
const DefaultLivePoll = 2 * time.Second

// LivePollInterval is LivePoll, or DefaultLivePoll when unset.
func (c Config) LivePollInterval() time.Duration {
	if c.LivePoll <= 0 {
		return DefaultLivePoll
	}
	return c.LivePoll
}

// Validate reports every problem at once; it changes nothing.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("sync.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Delete.GracePeriod < 0 {
		bad("delete.grace_period", "must not be negative, got %s", c.Delete.GracePeriod)
	}
	if c.Delete.Enabled && c.Delete.GracePeriod == 0 {
		bad("delete.grace_period", "must be set when delete.enabled is true (e.g. 720h); 0 would delete agents in the run that disables them")
	}
	if c.Guard.MaxDestructive < 0 {
		bad("guard.max_destructive", "must not be negative, got %d", c.Guard.MaxDestructive)
	}
	if c.Guard.MaxDestructivePercent < 0 || c.Guard.MaxDestructivePercent > 100 {
		bad("guard.max_destructive_percent", "must be between 0 and 100, got %g", c.Guard.MaxDestructivePercent)
	}
	if c.Guard.Window < 0 {
		bad("guard.window", "must not be negative, got %s", c.Guard.Window)
	}
	if c.Guard.MinSourceUsers < 0 {
		bad("guard.min_source_users", "must not be negative, got %d", c.Guard.MinSourceUsers)
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		bad("concurrency", "must be between 1 and 64, got %d", c.Concurrency)
	}
	if c.Interval < time.Minute {
		bad("interval", "must be at least 1m, got %s", c.Interval)
	}
	if c.Jitter < 0 || c.Jitter > 100 {
		bad("jitter", "must be a percentage between 0 and 100, got %g", c.Jitter)
	}
	if c.LivePoll != 0 && (c.LivePoll < 100*time.Millisecond || c.LivePoll > time.Hour) {
		bad("live_poll", "must be between 100ms and 1h, got %s", c.LivePoll)
	}
	return errors.Join(errs...)
}
