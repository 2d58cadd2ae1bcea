package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/babelforce/bridge/babelforce/babelforcetest"
)

// runSimulate serves the in-memory babelforce simulator until interrupted.
func runSimulate(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet("simulate", env, nil, false)
	listen := fs.String("listen", "127.0.0.1:8081", "address to listen on")
	user := fs.String("username", babelforcetest.DefaultUsername, "user name the token endpoint accepts")
	pass := fs.String("password", babelforcetest.DefaultPassword, "password the token endpoint accepts")
	rate := fs.Float64("fault-rate", 0, "share of API requests (0-1) that fail: 30% of them 429 with Retry-After, 30% 500/502/503/504, 10% dropped connections, 10% answers cut after the headers, 20% answers lost after the write was applied")
	if _, err := parseFlags(env, fs, args); err != nil {
		return fail(env, err)
	}
	if *rate < 0 || *rate > 1 {
		return fail(env, usageError{fmt.Sprintf("--fault-rate must be between 0 and 1, got %v", *rate)})
	}
	sim := babelforcetest.NewServer(babelforcetest.Options{
		Username: *user, Password: *pass,
		Seed:   time.Now().UnixNano(),
		Faults: babelforcetest.Mix(*rate, time.Second),
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail(env, fmt.Errorf("listen on %s: %w", *listen, err))
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(env.stdout, `babelforce simulator listening on %s
  token:      curl -s -d grant_type=password -d client_id=manager -d username=%s -d password=%s %s/oauth/token
  agents:     curl -s -H "Authorization: Bearer TOKEN" %s/api/v2/agents
  SCIM token: %s (static bearer token, accepted on every endpoint)
  stats:      curl -s %s/_simulator/stats
  faults:     curl -s -H "Authorization: Bearer TOKEN" -d '{"rate429":0.2,"retryAfter":"1s"}' %s/_simulator/faults
`, base, *user, *pass, base, base, sim.SCIMToken, base, base)
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
		return exitOK
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return exitOK
		}
		return fail(env, err)
	}
}
