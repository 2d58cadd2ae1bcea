package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/babelforce/bridge/oidc"
)

// The upstreams bridge checks in the background (label values of bridge_upstream_up).
const (
	upstreamBabelforce = "babelforce"
	upstreamDirectory  = "directory"
	upstreamIdPJWKS    = "idp_jwks"
	// upstreamIdPUI and upstreamIdPSSO: the IdP the status pages sign people in with
	// (ui.oidc) and the one babelforce's SSO is configured with (sso), each when it is not an
	// issuer already checked.
	upstreamIdPUI  = "idp_ui"
	upstreamIdPSSO = "idp_sso"
)

// Background upstream checks: how often, and how long one check may take.
const (
	upstreamInterval = 10 * time.Second
	upstreamTimeout  = 5 * time.Second
)

// upstreamCheck checks one upstream; nil means up.
type upstreamCheck struct {
	name  string
	check func(ctx context.Context) error
}

// upstreamStatus is the last check of one upstream, as /api/v1/status shows it.
type upstreamStatus struct {
	Up        bool      `json:"up"`
	CheckedAt time.Time `json:"checkedAt"`
	Error     string    `json:"error,omitempty"`
}

// upstreams checks babelforce, the directory and the IdP's JWKS in the background, never in
// a probe: their health shows in bridge_upstream_up and /api/v1/status, while /readyz only
// says whether this replica can accept traffic (pushes are stored and queued whatever
// upstream is down).
type upstreams struct {
	checks  []upstreamCheck
	log     *slog.Logger
	observe func(name string, up bool)

	mu   sync.Mutex
	last map[string]upstreamStatus
}

// newUpstreams lists the checks of s's configuration.
func newUpstreams(s *service) *upstreams {
	u := &upstreams{log: s.logger.With("component", "upstreams"), last: map[string]upstreamStatus{},
		observe: func(name string, up bool) {
			v := 0.0
			if up {
				v = 1
			}
			s.metrics.upstreamUp.WithLabelValues(name).Set(v)
		}}
	client := s.app.client
	// An authenticated read, every time: a cached token alone proves nothing.
	u.checks = append(u.checks, upstreamCheck{upstreamBabelforce, func(ctx context.Context) error {
		_, err := client.ListAgentTags(ctx)
		return err
	}})
	if c, ok := s.app.source.(interface{ Check(context.Context) error }); ok {
		u.checks = append(u.checks, upstreamCheck{upstreamDirectory, c.Check})
	}
	cfg := s.app.cfg
	checked := map[string]bool{}
	idp := func(name, issuer string) {
		if issuer == "" || checked[issuer] {
			return
		}
		checked[issuer] = true
		u.checks = append(u.checks, upstreamCheck{name, func(ctx context.Context) error {
			return checkJWKS(ctx, issuer)
		}})
	}
	if oc := cfg.InboundSCIM.OIDC; cfg.InboundSCIM.Enabled && oc.Enabled() {
		idp(upstreamIdPJWKS, oc.Issuer)
	}
	if !cfg.UI.Disabled {
		idp(upstreamIdPUI, cfg.UI.OIDC.Issuer)
	}
	if cfg.SSO.Enabled {
		idp(upstreamIdPSSO, cfg.SSO.Issuer)
	}
	return u
}

// checkJWKS fetches the issuer's discovery document and its JWKS.
func checkJWKS(ctx context.Context, issuer string) error {
	_, rep, _ := oidc.Discover(ctx, issuer, oidc.DiscoverOptions{
		AllowInsecureHTTP: strings.HasPrefix(issuer, "http://"),
	})
	var failed []string
	for _, f := range rep.Failures() {
		if slices.Contains([]string{oidc.CheckIssuerURL, oidc.CheckDiscovery, oidc.CheckIssuer, oidc.CheckJWKS}, f.Check) {
			failed = append(failed, f.Message)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return nil
}

// run checks every upstream now and then every upstreamInterval until ctx ends.
func (u *upstreams) run(ctx context.Context) {
	t := time.NewTicker(upstreamInterval)
	defer t.Stop()
	for {
		u.checkAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkAll runs every check once, side by side.
func (u *upstreams) checkAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range u.checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
			defer cancel()
			err := c.check(cctx)
			if ctx.Err() != nil {
				return
			}
			st := upstreamStatus{Up: err == nil, CheckedAt: time.Now().UTC()}
			if err != nil {
				st.Error = err.Error()
			}
			u.mu.Lock()
			prev, seen := u.last[c.name]
			u.last[c.name] = st
			u.mu.Unlock()
			u.observe(c.name, st.Up)
			switch {
			case err != nil && (!seen || prev.Up):
				u.log.Warn("upstream down", "upstream", c.name, "error", err)
			case err == nil && seen && !prev.Up:
				u.log.Info("upstream up again", "upstream", c.name)
			}
		})
	}
	wg.Wait()
}

// status returns the last check of each upstream.
func (u *upstreams) status() map[string]upstreamStatus {
	u.mu.Lock()
	defer u.mu.Unlock()
	return maps.Clone(u.last)
}
