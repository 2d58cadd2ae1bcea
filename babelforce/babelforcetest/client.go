package babelforcetest

import (
	"context"
	"testing"
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

// Client returns a *babelforce.Client for the simulator (ClientConfig, FastSleep; opts
// come after and may override). With a nil t a configuration error panics.
func (s *Server) Client(t testing.TB, opts ...babelforce.Option) *babelforce.Client {
	if t != nil {
		t.Helper()
	}
	c, err := babelforce.New(s.ClientConfig(), append([]babelforce.Option{babelforce.WithSleep(FastSleep)}, opts...)...)
	if err != nil {
		if t == nil {
			panic("babelforcetest: client: " + err.Error())
		}
		t.Fatalf("babelforcetest: client: %v", err)
	}
	return c
}
