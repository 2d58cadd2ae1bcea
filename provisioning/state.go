package provisioning

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// state is what bridge remembers between runs. babelforce has no field that could hold it
// faithfully, so it lives in a small JSON file (sync.state_file), written atomically, or,
// with WithStateBackend, in a backend shared by all replicas (the store), as the same JSON.
type state struct {
	// Disabled maps an agent id to when bridge first saw it disabled while its person was
	// gone from the directory (or disabled it); the delete grace period runs from there.
	Disabled map[string]time.Time `json:"disabled"`
	// Tags and Groups are every tag and agent group name bridge has ever been asked to
	// manage; only these are removed from agents (hand-set ones stay).
	Tags   []string `json:"tags"`
	Groups []string `json:"groups"`
	// ExternalIDs maps an agent id to the integrations bridge set an external id for.
	ExternalIDs map[string][]string `json:"externalIds,omitempty"`
	// RuleGroups are the groups the mapping rules name exactly that the last good directory
	// read had (mapping.RuleGroup.Group): one missing from a later read holds back what that
	// run would take away (see guard).
	RuleGroups []string `json:"ruleGroups,omitempty"`
	// Destructive maps a person (op.person) to when a scoped run last applied a destructive
	// change to them; entries older than the guard's window are dropped (see
	// GuardConfig.Window).
	Destructive map[string]time.Time `json:"destructive,omitempty"`
	// Owned is how many agents bridge owns: counted by the last read of all of them (a whole
	// run, a run of many people), plus the agents runs created since, less those they
	// deleted. A run of a few people reads only theirs and judges
	// guard.max_destructive_percent against this.
	Owned int `json:"owned,omitempty"`
	// SSOSecret is the keyed fingerprint of the SSO client secret last written to babelforce
	// (see SSOTask).
	SSOSecret *secretFingerprint `json:"ssoSecret,omitempty"`
}

// recentDestructive returns the people of Destructive seen after since.
func (s *state) recentDestructive(since time.Time) map[string]bool {
	out := map[string]bool{}
	for k, at := range s.Destructive {
		if at.After(since) {
			out[k] = true
		}
	}
	return out
}

// noteDestructive drops the entries of Destructive older than window and, for a windowed
// plan (a run of some people), adds the people its calls (applied or tried) took something
// from.
func (s *state) noteDestructive(p *Plan, now time.Time, window time.Duration) {
	for k, at := range s.Destructive {
		if !at.After(now.Add(-window)) {
			delete(s.Destructive, k)
		}
	}
	if !p.windowed {
		return
	}
	for _, k := range p.tried {
		if s.Destructive == nil {
			s.Destructive = map[string]time.Time{}
		}
		s.Destructive[k] = now
	}
}

// StateBackend keeps the reconciler's state (a JSON document) where every replica of bridge
// sees it, e.g. *store.Store. LoadState returns nil or empty data when no state was saved
// yet; SaveState replaces the stored state.
type StateBackend interface {
	LoadState(ctx context.Context) ([]byte, error)
	SaveState(ctx context.Context, data []byte) error
}

// WithStateBackend keeps the state in b instead of sync.state_file. The state is then read
// at the start of every run (another replica may have changed it; the run lock serialises
// runs) and saved at its end. sync.state_file, when set, is only read: imported while b has
// no state yet (upgrading from one replica with a file to a shared store).
//
// When b is a RunLog too (*store.Store is), every run's compact report is saved there as well,
// and Runs shows the runs of every process sharing it.
func WithStateBackend(b StateBackend) Option {
	return func(r *Reconciler) {
		r.state.backend = b
		if l, ok := b.(RunLog); ok {
			r.runLog = l
		}
	}
}

// stateSaveTimeout bounds saving the state to the backend at the end of a run; the save does
// not stop when the run's ctx is cancelled (changes were applied; forgetting them is worse).
const stateSaveTimeout = 30 * time.Second

// stateStore loads and saves the state: in backend when set (path is then only imported),
// else in the file at path ("" keeps it in memory).
type stateStore struct {
	path    string
	backend StateBackend
	log     *slog.Logger
	mu      sync.Mutex
	st      *state // the file's state, cached after the first read (not with a backend)
	// imported: the file was imported into an empty backend once already (logged once).
	imported bool
}

func newState() *state {
	return &state{Disabled: map[string]time.Time{}, ExternalIDs: map[string][]string{}}
}

// loadContext returns a copy of the current state: read from the backend every time, or
// from the file the first time.
func (s *stateStore) loadContext(ctx context.Context) (*state, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backend != nil {
		return s.loadBackend(ctx)
	}
	if s.st == nil {
		st, _, err := s.readFile()
		if err != nil {
			return nil, err
		}
		s.st = st
	}
	return s.st.clone(), nil
}

// loadBackend reads the state from the backend, or imports the file while it has none.
func (s *stateStore) loadBackend(ctx context.Context) (*state, error) {
	b, err := s.backend.LoadState(ctx)
	if err != nil {
		return nil, fmt.Errorf("reconciler state: %w (nothing was changed)", err)
	}
	if len(bytes.TrimSpace(b)) > 0 {
		st := newState()
		if err := json.Unmarshal(b, st); err != nil {
			return nil, fmt.Errorf("load state from the store: %w (nothing was changed; the stored state is not valid JSON)", err)
		}
		return st.normalize(), nil
	}
	st, found, err := s.readFile()
	if err != nil {
		return nil, err
	}
	if found && s.log != nil {
		lvl := slog.LevelInfo
		if s.imported {
			lvl = slog.LevelDebug // said once is enough
		}
		s.imported = true
		s.log.Log(ctx, lvl, "the store has no reconciler state yet: importing the state file; the next run (not a dry run) saves it to the store",
			"state_file", s.path, "disabled_agents", len(st.Disabled), "tags", len(st.Tags), "groups", len(st.Groups))
	}
	return st, nil
}

// readFile reads the state file; found is false (and the state empty) when there is none.
func (s *stateStore) readFile() (st *state, found bool, err error) {
	st = newState()
	if s.path == "" {
		return st, false, nil
	}
	b, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return st, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("read state file: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, false, fmt.Errorf("read state file %s: %w (delete it to start afresh; delete grace periods restart)", s.path, err)
	}
	return st.normalize(), true, nil
}

// normalize fills the maps a JSON document left out.
func (st *state) normalize() *state {
	if st.Disabled == nil {
		st.Disabled = map[string]time.Time{}
	}
	if st.ExternalIDs == nil {
		st.ExternalIDs = map[string][]string{}
	}
	return st
}

// saveContext stores st: in the backend, or in the file, written atomically (temp file,
// fsync, rename).
func (s *stateStore) saveContext(ctx context.Context, st *state) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backend != nil {
		b, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("encode state: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stateSaveTimeout)
		defer cancel()
		if err := s.backend.SaveState(ctx, b); err != nil {
			return fmt.Errorf("reconciler state: %w", err)
		}
		return nil
	}
	s.st = st.clone()
	if s.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	f, err := os.CreateTemp(dir, ".bridge-state-*")
	if err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write state file %s: %w", s.path, err)
	}
	return nil
}

func (st *state) clone() *state {
	c := &state{
		Disabled:    maps.Clone(st.Disabled),
		Tags:        slices.Clone(st.Tags),
		Groups:      slices.Clone(st.Groups),
		ExternalIDs: make(map[string][]string, len(st.ExternalIDs)),
		RuleGroups:  slices.Clone(st.RuleGroups),
		Destructive: maps.Clone(st.Destructive),
		Owned:       st.Owned,
	}
	if st.SSOSecret != nil {
		fp := *st.SSOSecret
		c.SSOSecret = &fp
	}
	if c.Disabled == nil {
		c.Disabled = map[string]time.Time{}
	}
	for k, v := range st.ExternalIDs {
		c.ExternalIDs[k] = slices.Clone(v)
	}
	return c
}

// union returns the sorted union of a and b without duplicates.
func union(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	out = append(out, a...)
	out = append(out, b...)
	slices.Sort(out)
	return slices.Compact(out)
}
