package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/babelforce/bridge/directory/store"
	"github.com/babelforce/bridge/internal/ui"
	"github.com/babelforce/bridge/provisioning"
)

// uiBackend is what the status pages (internal/ui) read and do, on the service's reconciler.
type uiBackend struct{ s *service }

// healthTimeout bounds the store's check of one overview page (upstreams are shown as their
// last background check found them).
const healthTimeout = 5 * time.Second

func (b uiBackend) Status(ctx context.Context) ui.Status {
	st := b.s.status(ctx)
	out := ui.Status{Version: st.Version, Runs: st.Runs, Running: st.Running, ObserveMode: b.s.app.cfg.Sync.DryRun, Store: st.Store}
	if st.NextRun != nil {
		out.NextRun = *st.NextRun
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	for _, c := range b.s.checkParts(ctx) {
		h := ui.Health{Name: c.name, OK: c.err == nil}
		if c.err != nil {
			// the same words /readyz logs; they name hosts, never secrets
			h.Detail = c.err.Error()
		}
		out.Health = append(out.Health, h)
	}
	now := time.Now()
	if st.Queue != nil {
		out.Facts = append(out.Facts, queueFact(*st.Queue, now))
	}
	if st.Live != nil {
		out.Facts = append(out.Facts, liveFact(*st.Live, now))
	}
	if a := b.s.app; a.store != nil {
		holders, err := a.store.LockHolders(ctx)
		if err != nil {
			out.Facts = append(out.Facts, ui.Fact{Name: "Run lock", Value: "unknown: " + err.Error(), Warn: true})
		} else {
			out.Facts = append(out.Facts, lockFacts(a.store.Backend(), holders, a.store.Replica(), st.Live != nil, now)...)
		}
	}
	return out
}

// lockFacts says which replica holds the run lock (and the stream lock, when the change
// stream is followed), as the lock rows in the store say; self is this replica's name.
func lockFacts(backend string, holders []store.LockHolder, self string, live bool, now time.Time) []ui.Fact {
	if backend != store.BackendPostgres {
		return []ui.Fact{{Name: "Run lock", Value: "this replica (" + backend + ": a single replica)"}}
	}
	byName := map[string]store.LockHolder{}
	for _, h := range holders {
		byName[h.Name] = h
	}
	who := func(h store.LockHolder) string {
		if h.Replica == self {
			return h.Replica + " (this replica)"
		}
		return h.Replica
	}
	fact := func(name, lock, idle string) ui.Fact {
		h, ok := byName[lock]
		switch {
		case !ok:
			return ui.Fact{Name: name, Value: "never taken"}
		case h.Held:
			return ui.Fact{Name: name, Value: "held by " + who(h)}
		default:
			return ui.Fact{Name: name, Value: fmt.Sprintf("%s; last held by %s, %s", idle, who(h), ui.Ago(now, h.Beat))}
		}
	}
	out := []ui.Fact{fact("Run lock", store.LockRun, "free (no run in progress)")}
	if live {
		f := fact("Stream lock", store.LockStream, "free")
		f.Warn = !strings.HasPrefix(f.Value, "held by ")
		if f.Warn {
			f.Value += ": no replica follows the change stream"
		}
		out = append(out, f)
	}
	return out
}

// queueFact is the change queue on the overview; it warns while entries fail.
func queueFact(q queueStatus, now time.Time) ui.Fact {
	f := ui.Fact{Name: "Change queue"}
	switch {
	case q.Depth == 0:
		f.Value = "empty"
	case q.Oldest.IsZero():
		f.Value = fmt.Sprintf("%d waiting", q.Depth)
	default:
		f.Value = fmt.Sprintf("%d waiting, oldest queued %s", q.Depth, ui.Ago(now, q.Oldest))
	}
	if q.Failing > 0 {
		f.Warn = true
		f.Value += fmt.Sprintf("; %d failing", q.Failing)
		if q.LastError != "" {
			f.Value += ", last error: " + q.LastError
		}
	}
	return f
}

// liveFact is the directory's change stream on the overview; it warns while this replica
// follows the stream but is not connected to it.
func liveFact(l provisioning.LiveStatus, now time.Time) ui.Fact {
	f := ui.Fact{Name: "Live changes"}
	var parts []string
	switch {
	case !l.Following && l.LastError != "":
		parts = append(parts, "not followed")
	case !l.Following:
		parts = append(parts, "another replica follows the stream, this one stands by")
	case l.Connected:
		parts = append(parts, "connected since "+ui.Ago(now, l.ConnectedSince))
	default:
		f.Warn = true
		parts = append(parts, "not connected")
		if l.Reconnects > 0 {
			parts = append(parts, fmt.Sprintf("lost %d times", l.Reconnects))
		}
	}
	if !l.LastEvent.IsZero() {
		parts = append(parts, fmt.Sprintf("last change %s (lag %ss)", ui.Ago(now, l.LastEvent), strconv.FormatFloat(l.LagSeconds, 'f', -1, 64)))
	} else if l.Following {
		parts = append(parts, "no change seen yet")
	}
	if l.People > 0 {
		parts = append(parts, fmt.Sprintf("%d people queued", l.People))
	}
	if l.LastError != "" {
		parts = append(parts, "last error: "+l.LastError)
	}
	f.Value = strings.Join(parts, "; ")
	return f
}

func (b uiBackend) Report(id uint64) (*provisioning.Report, bool, bool) {
	return b.s.app.rec.Report(id)
}

func (b uiBackend) Plan(ctx context.Context) (*provisioning.Plan, error) {
	return b.s.app.rec.Plan(ctx, provisioning.Scope{})
}

func (b uiBackend) Explain(ctx context.Context, query string) (*provisioning.Explanation, error) {
	return b.s.app.rec.Explain(ctx, query)
}

func (b uiBackend) Run(ctx context.Context, force bool) (*provisioning.Report, error) {
	return b.s.app.rec.Run(ctx, provisioning.RunOptions{Trigger: provisioning.TriggerManual, Force: force})
}

func (b uiBackend) Provision(ctx context.Context, query string) (*provisioning.Report, error) {
	return b.s.app.rec.ProvisionUsers(ctx, provisioning.TriggerManual, query)
}

// newUI builds the status pages; nil when ui.disabled.
func (s *service) newUI() (*ui.UI, error) {
	if s.app.cfg.UI.Disabled {
		return nil, nil
	}
	o := ui.Options{Backend: uiBackend{s}, Logger: s.logger.With("component", "ui")}
	if s.hasAdmin {
		o.CheckToken = s.isAdminToken
	}
	return ui.New(s.app.cfg.UI, o)
}

// isAdminToken compares tok with the admin token in constant time.
func (s *service) isAdminToken(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	return s.hasAdmin && subtle.ConstantTimeCompare(sum[:], s.adminSum[:]) == 1
}
