package main

import (
	"context"
	"sync"

	"github.com/babelforce/bridge/oidc"
)

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
