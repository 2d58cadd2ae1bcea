package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"time"

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
	return out
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
