package babelforcetest

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/internal/httpx"
)

// ClientConfig is a babelforce.Config for the simulator: its URL, credentials and SCIM
// token, 5 attempts per call, a 10s request timeout.
func (s *Server) ClientConfig() babelforce.Config {
	return babelforce.Config{
		BaseURL:     s.URL,
		Username:    s.Username,
		Password:    s.Password,
		SCIMToken:   s.SCIMToken,
		ClientID:    "manager",
		Timeout:     10 * time.Second,
		MaxAttempts: 5,
	}
}

// FastSleep is a babelforce.WithSleep function that waits a thousandth of the asked time
// (a Retry-After of 1s waits 1ms), so retry paths run at test speed.
func FastSleep(ctx context.Context, d time.Duration) error {
	return httpx.Sleep(ctx, d/1000)
}

// WarpClock is a clock for a babelforce.Client whose Sleep waits a thousandth of the asked
// time, like FastSleep, and moves the clock on by the whole of it, so that what the client
// computes from its clock (retry budgets, the adaptive limiter's spacing and recovery, token
// expiry) sees the time it asked to wait as passed. It starts at the real time.
type WarpClock struct{ ahead atomic.Int64 }

// Now is the real time plus every wait so far.
func (w *WarpClock) Now() time.Time { return time.Now().Add(time.Duration(w.ahead.Load())) }

// Sleep waits d/1000 (or until ctx ends) and moves the clock on by d.
func (w *WarpClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := FastSleep(ctx, d); err != nil {
		return err
	}
	w.ahead.Add(int64(d))
	return nil
}

// Client returns a *babelforce.Client for the simulator (ClientConfig, a WarpClock for its
// clock and sleep; opts come after and may override). With a nil t a configuration error
// panics.
func (s *Server) Client(t TB, opts ...babelforce.Option) *babelforce.Client {
	if t != nil {
		t.Helper()
	}
	w := &WarpClock{}
	c, err := babelforce.New(s.ClientConfig(), append([]babelforce.Option{babelforce.WithClock(w.Now), babelforce.WithSleep(w.Sleep)}, opts...)...)
	if err != nil {
		if t == nil {
			panic("babelforcetest: client: " + err.Error())
		}
		t.Fatalf("babelforcetest: client: %v", err)
	}
	return c
}
