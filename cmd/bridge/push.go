package main

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/babelforce/bridge/oidc"
	"github.com/babelforce/bridge/provisioning"
)

// pushProvisioner provisions the users an IdP push touched. When no run is in flight it does
// so at once, inside the SCIM request, so the IdP's write and babelforce agree when the
// answer leaves. While a run is in flight it queues the users and answers at once: an IdP
// must not wait for a long reconcile (Entra quarantines slow endpoints); the queue is
// provisioned right after. What is pushed is stored first either way, so nothing is lost if
// bridge stops before the queue is worked off: the next periodic run picks it up.
type pushProvisioner struct {
	rec *provisioning.Reconciler
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]bool
	wake    chan struct{}
}

func newPushProvisioner(rec *provisioning.Reconciler, log *slog.Logger) *pushProvisioner {
	return &pushProvisioner{rec: rec, log: log, pending: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// onChange is the inbound SCIM endpoint's OnChange hook.
func (p *pushProvisioner) onChange(ctx context.Context, _ string, userIDs []string) error {
	if len(userIDs) == 0 {
		return nil
	}
	if !p.rec.Busy() {
		err := p.provision(ctx, userIDs)
		if !errors.Is(err, provisioning.ErrOtherReplica) {
			return err
		}
		// another replica is reconciling: queue like a local run in flight
	}
	p.enqueue(userIDs)
	p.log.Info("scim push queued behind the running reconcile", "users", len(userIDs))
	return nil
}

func (p *pushProvisioner) enqueue(userIDs []string) {
	p.mu.Lock()
	for _, id := range userIDs {
		p.pending[id] = true
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run works off the queue until ctx ends.
func (p *pushProvisioner) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
		p.mu.Lock()
		ids := slices.Sorted(maps.Keys(p.pending))
		clear(p.pending)
		p.mu.Unlock()
		if err := p.provision(ctx, ids); err != nil && ctx.Err() == nil {
			p.log.Warn("provisioning queued scim pushes failed; the next periodic run retries", "users", len(ids), "error", err)
		}
	}
}

// provision reconciles ids; a batch with a user that has neither a directory entry nor an
// agent (created and deleted before bridge saw it) is retried one by one.
func (p *pushProvisioner) provision(ctx context.Context, ids []string) error {
	_, err := p.rec.ProvisionUsers(ctx, provisioning.TriggerSCIMPush, ids...)
	if !errors.Is(err, provisioning.ErrUnknownUser) || len(ids) == 1 {
		return err
	}
	var errs []error
	for _, id := range ids {
		if _, err := p.rec.ProvisionUsers(ctx, provisioning.TriggerSCIMPush, id); err != nil && !errors.Is(err, provisioning.ErrUnknownUser) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// lazyVerifier builds the IdP token verifier on first use and again after a failure, so that
// bridge starts (and serves static tokens and runs its schedule) while the IdP is down.
type lazyVerifier struct {
	cfg oidc.VerifierConfig

	mu sync.Mutex
	v  *oidc.TokenVerifier
}

func (l *lazyVerifier) Verify(ctx context.Context, raw string) error {
	l.mu.Lock()
	v := l.v
	if v == nil {
		var err error
		v, err = oidc.NewTokenVerifier(ctx, l.cfg)
		if err != nil {
			l.mu.Unlock()
			return err
		}
		l.v = v
	}
	l.mu.Unlock()
	return v.Verify(ctx, raw)
}
