package directory

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"time"
)

var _ Stream = (*LDIFSource)(nil)

// StreamName is "ldif:" and the file's path.
func (s *LDIFSource) StreamName() string { return "ldif:" + s.cfg.Path }

// SetPollInterval sets how often Follow looks at the file (default 2 s).
func (s *LDIFSource) SetPollInterval(d time.Duration) {
	if d > 0 {
		s.poll = d
	}
}

// Follow watches the file (its size and modification time, every poll interval) and reports
// a change of its content, once the file stayed the same for a poll interval, as a batch
// asking for a full reconcile: an LDIF file is re-read whole. The cookie is a digest of the content, so a restart with an unchanged file asks for
// nothing.
func (s *LDIFSource) Follow(ctx context.Context, cookie []byte, changed func(ChangeSet)) error {
	digest := func() ([]byte, os.FileInfo, error) {
		fi, err := os.Stat(s.cfg.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("ldif source: %w", err)
		}
		b, err := s.readAll(s.cfg.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("ldif source: %w", err)
		}
		sum := sha256.Sum256(b)
		return []byte(fmt.Sprintf("%x", sum)), fi, nil
	}
	cur, fi, err := digest()
	if err != nil {
		return err
	}
	changed(ChangeSet{Full: string(cur) != string(cookie), Ready: true, Cookie: cur, At: s.now(), Modified: fi.ModTime()})
	t := time.NewTicker(s.poll)
	defer t.Stop()
	var pending os.FileInfo
	same := func(a, b os.FileInfo) bool { return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) }
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now, err := os.Stat(s.cfg.Path)
		if err != nil {
			return fmt.Errorf("ldif source: %w", err)
		}
		if same(now, fi) {
			continue
		}
		if pending == nil || !same(now, pending) {
			// changed since the last look: read it once it has stayed the same for a poll
			// interval, not while it is being written
			pending = now
			continue
		}
		pending = nil
		next, nfi, err := digest()
		if err != nil {
			return err
		}
		fi = nfi
		if string(next) == string(cur) {
			continue
		}
		cur = next
		changed(ChangeSet{Full: true, Cookie: cur, At: s.now(), Modified: fi.ModTime()})
	}
}
