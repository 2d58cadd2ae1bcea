package directory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

var _ Stream = (*SCIMSource)(nil)

// StreamName is "scim:" and a digest of the base URL and the filters.
func (s *SCIMSource) StreamName() string {
	h := sha256.Sum256([]byte(s.base.String() + "\x00" + s.cfg.UserFilter + "\x00" + s.cfg.GroupFilter))
	return "scim:" + hex.EncodeToString(h[:])[:12]
}

// SetPollInterval sets how often Follow asks for changes (default 2 s).
func (s *SCIMSource) SetPollInterval(d time.Duration) {
	if d > 0 {
		s.poll = d
	}
}

// scimFuture is a lastModified no resource has: the probe of filter support.
const scimFuture = "2999-01-01T00:00:00Z"

// Follow polls the upstream SCIM service for users and groups modified since the last look
// (filter meta.lastModified gt "<time>", with user_filter / group_filter). A changed user
// affects that user; a changed group asks for a full reconcile (SCIM says who is in it now,
// not who left). Deletions leave no trace in SCIM: they wait for the periodic run. The cookie
// is the newest meta.lastModified seen. A service that rejects the filter, or ignores it
// (answers the probe of a far-future time with resources), has no change stream
// (ErrNoChangeStream).
func (s *SCIMSource) Follow(ctx context.Context, cookie []byte, changed func(ChangeSet)) error {
	if err := s.probeLastModified(ctx); err != nil {
		return err
	}
	since, resumed := time.Time{}, false
	if t, err := time.Parse(time.RFC3339Nano, string(cookie)); err == nil {
		since, resumed = t, true
	} else {
		// from now on (a full reconcile covers what came before); a minute of overlap for
		// a server clock behind bridge's
		since = s.now().Add(-time.Minute).UTC()
	}
	seenAt := map[string]bool{} // ids modified exactly at since, already reported
	first := true
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		if !first {
			t.Reset(s.poll)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		filter := func(extra string) string {
			f := fmt.Sprintf("meta.lastModified ge %q", since.Format(time.RFC3339Nano))
			if extra != "" {
				f = "(" + extra + ") and " + f
			}
			return f
		}
		users, err := s.list(ctx, "Users", filter(s.cfg.UserFilter))
		if err != nil {
			return err
		}
		groups, err := s.list(ctx, "Groups", filter(s.cfg.GroupFilter))
		if err != nil {
			return err
		}
		batch := idSet{}
		newest, newestIDs := since, map[string]bool{}
		note := func(raw json.RawMessage) (string, bool) {
			var r struct {
				ID   string `json:"id"`
				Meta struct {
					LastModified string `json:"lastModified"`
				} `json:"meta"`
			}
			if json.Unmarshal(raw, &r) != nil || r.ID == "" {
				return "", false
			}
			lm, err := time.Parse(time.RFC3339Nano, r.Meta.LastModified)
			if err != nil {
				return r.ID, true
			}
			if lm.Equal(since) && seenAt[r.ID] {
				return "", false // reported by the last poll
			}
			switch {
			case lm.After(newest):
				newest, newestIDs = lm, map[string]bool{r.ID: true}
			case lm.Equal(newest):
				newestIDs[r.ID] = true
			}
			return r.ID, true
		}
		for _, raw := range users {
			if id, ok := note(raw); ok {
				batch.add(id)
			}
		}
		full := !resumed && first
		for _, raw := range groups {
			if _, ok := note(raw); ok {
				full = true
			}
		}
		if newest.After(since) {
			since, seenAt = newest, newestIDs
		} else {
			for id := range newestIDs {
				seenAt[id] = true
			}
		}
		cs := ChangeSet{Full: full || len(batch) > maxNamedUsers, Cookie: []byte(since.Format(time.RFC3339Nano)), Ready: first, At: s.now()}
		if !cs.Full {
			cs.Users = batch.sorted()
		}
		if first {
			s.logger.Info("scim change stream live (polling meta.lastModified)", "source", s.base.String(), "resumed", resumed, "poll", s.poll.String())
		}
		if first || !cs.Empty() {
			changed(cs)
		}
		first = false
	}
}

// probeLastModified asks for users modified after a far-future time: a service that
// supports the filter answers with none.
func (s *SCIMSource) probeLastModified(ctx context.Context) error {
	q := url.Values{}
	q.Set("filter", fmt.Sprintf("meta.lastModified gt %q", scimFuture))
	q.Set("count", "1")
	var page scimListResponse
	if err := s.get(ctx, "Users", q, &page); err != nil {
		if strings.Contains(err.Error(), "HTTP 400") || strings.Contains(err.Error(), "HTTP 501") {
			return fmt.Errorf("scim source %s: %w: it does not filter by meta.lastModified: %w", s.base, ErrNoChangeStream, err)
		}
		return err
	}
	if len(page.Resources) > 0 || (page.TotalResults != nil && *page.TotalResults > 0) {
		return fmt.Errorf("scim source %s: %w: it ignores the filter meta.lastModified gt %q (answered with users)", s.base, ErrNoChangeStream, scimFuture)
	}
	return nil
}
