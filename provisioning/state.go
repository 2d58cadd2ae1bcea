package provisioning

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// state is what bridge remembers between runs. babelforce has no field that could hold it
// faithfully, so it lives in a small JSON file (sync.state_file), written atomically.
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
}

// stateStore loads and saves the state; path "" keeps it in memory.
type stateStore struct {
	path string
	mu   sync.Mutex
	st   *state
}

func newState() *state {
	return &state{Disabled: map[string]time.Time{}, ExternalIDs: map[string][]string{}}
}

// load returns a copy of the current state, reading the file the first time.
func (s *stateStore) load() (*state, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil {
		st := newState()
		if s.path != "" {
			b, err := os.ReadFile(s.path)
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				return nil, fmt.Errorf("read state file: %w", err)
			default:
				if err := json.Unmarshal(b, st); err != nil {
					return nil, fmt.Errorf("read state file %s: %w (delete it to start afresh; delete grace periods restart)", s.path, err)
				}
				if st.Disabled == nil {
					st.Disabled = map[string]time.Time{}
				}
				if st.ExternalIDs == nil {
					st.ExternalIDs = map[string][]string{}
				}
			}
		}
		s.st = st
	}
	return s.st.clone(), nil
}

// save stores st and writes the file atomically (temp file, fsync, rename).
func (s *stateStore) save(st *state) error {
	s.mu.Lock()
	defer s.mu.Unlock()
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
