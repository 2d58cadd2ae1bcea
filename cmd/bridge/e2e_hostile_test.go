package main

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeRandomMethodsAddNoMetricSeries: 500 unauthenticated requests with made-up methods
// leave the number of metric series unchanged and write a few log lines, not 500 (issue 10:
// 2,000 such requests took /metrics from 37 KB to 265 KB).
func TestServeRandomMethodsAddNoMetricSeries(t *testing.T) {
	t.Parallel()
	s := serveStart(t, serveOptions{})
	series := func() int {
		t.Helper()
		status, _, raw := s.do(http.MethodGet, "/metrics", s.adminToken, nil)
		if status != http.StatusOK {
			t.Fatalf("/metrics: %d", status)
		}
		n := 0
		for _, line := range strings.Split(string(raw), "\n") {
			if line != "" && !strings.HasPrefix(line, "#") {
				n++
			}
		}
		return n
	}
	// one made-up method first: its series ("other", 401) may appear once
	s.do("WARMUP", "/scim/v2/Users", "", nil)
	// the background upstream check adds its series (bridge_upstream_up, babelforce calls)
	// once, at start: count after it
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, _, raw := s.do(http.MethodGet, "/metrics", s.adminToken, nil)
		if _, ok := serveMetric(string(raw), `bridge_upstream_up{upstream="babelforce"}`); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no background upstream check within 20 s")
		}
	}
	before := series()
	logBefore := strings.Count(s.logs.String(), "not authenticated")
	r := rand.New(rand.NewPCG(7, 8))
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for range 500 {
		m := make([]byte, 3+r.IntN(8))
		for j := range m {
			m[j] = letters[r.IntN(len(letters))]
		}
		s.do(string(m), "/scim/v2/Users", "", nil)
	}
	if after := series(); after != before {
		t.Errorf("%d metric series before 500 requests with made-up methods, %d after", before, after)
	}
	if n := strings.Count(s.logs.String(), "not authenticated") - logBefore; n > 5 {
		t.Errorf("%d log lines for 500 unauthenticated requests", n)
	}
}
