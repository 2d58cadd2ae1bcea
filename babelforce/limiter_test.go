package babelforce

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func TestAdaptiveLimiterSlowsDownAfter429sAndRecovers(t *testing.T) {
	clock := newFakeClock()
	l := newAdaptiveLimiter(0, clock.Now, clock.Sleep)
	ctx := context.Background()
	// 20 requests at 20 per second, all answered: no limit.
	for range 20 {
		if err := l.wait(ctx); err != nil {
			t.Fatal(err)
		}
		l.observe(200, 0)
		clock.Advance(50 * time.Millisecond)
	}
	if rate, pause := l.limit(); rate != 0 || pause != 0 {
		t.Fatalf("limiting without a 429: rate %g pause %s", rate, pause)
	}
	// Odd 429s are left to the call that got them.
	for range throttleAt - 1 {
		l.observe(429, 0)
	}
	if rate, _ := l.limit(); rate != 0 {
		t.Fatalf("%d 429s slowed the client down (rate %g)", throttleAt-1, rate)
	}
	// One more: the client sends at half the rate it sent at, after the server's pause.
	l.observe(429, 3*time.Second)
	rate, pause := l.limit()
	if rate < 9 || rate > 11 || pause != 3*time.Second {
		t.Fatalf("after a pile of 429s: rate %g pause %s, want about 10/s and 3s", rate, pause)
	}
	// A second burst within throttleEvery does not cut the rate again.
	l.observe(429, 0)
	if r2, _ := l.limit(); r2 != rate {
		t.Errorf("rate cut twice by one burst: %g then %g", rate, r2)
	}
	// Every call waits for the pause, then they are spaced by the rate.
	before := len(clock.Sleeps())
	for range 3 {
		if err := l.wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sleeps := clock.Sleeps()[before:]
	if len(sleeps) == 0 || sleeps[0] != 3*time.Second {
		t.Fatalf("sleeps %v, want the 3s pause first", sleeps)
	}
	gap := time.Duration(float64(time.Second) / rate)
	for i, d := range sleeps[1:] {
		if d < gap-time.Millisecond || d > gap+time.Millisecond {
			t.Errorf("sleep %d = %s, want the rate's gap %s", i+1, d, gap)
		}
	}
	// Answers without 429s: the rate grows back and the limiter steps aside.
	steps := 0
	for rate, _ := l.limit(); rate != 0; rate, _ = l.limit() {
		clock.Advance(recoverEvery)
		l.observe(200, 0)
		if steps++; steps > 50 {
			t.Fatalf("never recovered; rate %g", rate)
		}
	}
	if steps < 2 {
		t.Errorf("recovered in %d step(s), want gradual", steps)
	}
}

func TestAdaptiveLimiterRecoversToTheConfiguredRate(t *testing.T) {
	clock := newFakeClock()
	l := newAdaptiveLimiter(5, clock.Now, clock.Sleep)
	for range throttleAt {
		_ = l.wait(context.Background())
		l.observe(429, 0)
	}
	if rate, _ := l.limit(); rate == 0 || rate > 5 {
		t.Fatalf("rate %g, want at most the configured 5/s", rate)
	}
	for range 20 {
		clock.Advance(recoverEvery)
		l.observe(200, 0)
	}
	if rate, _ := l.limit(); rate != 0 {
		t.Errorf("rate %g, want the adaptive limit gone (rate_limit alone applies)", rate)
	}
}

// The shared limiter holds every call of the client, not only the one answered 429.
func TestClientSlowsDownAsAWholeAfter429s(t *testing.T) {
	var n atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= throttleAt {
			w.Header().Set("Retry-After", "4")
			writeJSON(w, 429, map[string]any{"message": "slow down"})
			return
		}
		writeJSON(w, 200, okAgent)
	})
	e := newEnv(t, h, func(c *Config) { c.Token, c.Username, c.Password = "t", "", "" })
	ctx := context.Background()
	for int(n.Load()) < throttleAt {
		// calls answered 429 until the pile is high enough (some give up: max_attempts)
		_, _ = e.c.GetAgent(ctx, "0123456789abcdef0123456789abcdef")
	}
	if rate, _ := e.c.adaptive.limit(); rate == 0 {
		t.Fatal("the client did not slow down")
	}
	before := len(e.clock.Sleeps())
	for range 3 { // other calls, never answered 429 themselves
		if _, err := e.c.GetAgent(ctx, "0123456789abcdef0123456789abcdef"); err != nil {
			t.Fatal(err)
		}
	}
	if len(e.clock.Sleeps()) == before {
		t.Errorf("calls after the slow-down were not held back")
	}
}
