package babelforce

import (
	"context"
	"sync"
	"time"
)

// Tuning of the shared limiter that slows the whole client down after 429 answers.
const (
	// throttleWindow is how many of the latest answers the limiter looks at.
	throttleWindow = 20
	// throttleAt: this many 429s among the latest answers (two in five) slow the client down:
	// babelforce pushing back on most of what it is sent. Odd 429s (fewer) are only retried
	// by the call that got them; a client that slowed down at every stray 429 would crawl.
	throttleAt = 8
	// recoverBelow: at most this many 429s among the latest answers let the rate grow again.
	recoverBelow = 3
	// throttleEvery is the least time between two slow-downs, so that one burst of 429s
	// answering requests sent at the same time cuts the rate once, not once per answer.
	throttleEvery = time.Second
	// recoverEvery is the least time between two speed-ups.
	recoverEvery = 2 * time.Second
	// minRate is the slowest the limiter makes the client (requests per second).
	minRate = 1.0
	// defaultPause is how long every call waits after a slow-down when the 429 did not say
	// (Retry-After).
	defaultPause = time.Second
)

// adaptiveLimiter is the one limiter all calls of a Client share. Its rate follows the
// answers: when 429s pile up (throttleAt of the last throttleWindow answers) it halves the
// rate the client was sending at and holds every call until the server's Retry-After; while
// answers come back without 429s it raises the rate by half every recoverEvery, until it is
// back at the configured rate_limit (or, with none configured, at twice the rate at which
// the server first pushed back), and then steps aside. Time comes from the client's clock and
// sleep, so tests do not wait.
type adaptiveLimiter struct {
	now   func() time.Time
	sleep func(context.Context, time.Duration) error

	mu sync.Mutex
	// recent holds whether each of the latest answers was a 429 (a ring of throttleWindow).
	recent  [throttleWindow]bool
	pos     int
	tooMany int // 429s in recent
	// starts holds the start times of the latest requests, to measure the rate sent at.
	starts   [throttleWindow]time.Time
	startPos int
	// rate is the current limit in requests per second; 0 = not limiting.
	rate float64
	// ceiling is the rate at which the limiter steps aside again.
	ceiling    float64
	configured float64
	next       time.Time // the earliest start of the next request while limiting
	pauseUntil time.Time // every call waits until then
	lastChange time.Time
}

func newAdaptiveLimiter(configured float64, now func() time.Time, sleep func(context.Context, time.Duration) error) *adaptiveLimiter {
	return &adaptiveLimiter{now: now, sleep: sleep, configured: configured}
}

// wait holds a call until the limiter lets it start: after a pause, and spaced by the
// current rate.
func (l *adaptiveLimiter) wait(ctx context.Context) error {
	l.mu.Lock()
	now := l.now()
	start := now
	if l.pauseUntil.After(start) {
		start = l.pauseUntil
	}
	if l.rate > 0 {
		if l.next.After(start) {
			start = l.next
		}
		l.next = start.Add(time.Duration(float64(time.Second) / l.rate))
	}
	l.starts[l.startPos] = start
	l.startPos = (l.startPos + 1) % throttleWindow
	l.mu.Unlock()
	if d := start.Sub(now); d > 0 {
		return l.sleep(ctx, d)
	}
	return nil
}

// observe records one answer: status 429 (with the server's Retry-After, 0 when none) or
// anything else (network errors are not counted).
func (l *adaptiveLimiter) observe(status int, retryAfter time.Duration) {
	tooMany := status == 429
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.recent[l.pos] {
		l.tooMany--
	}
	l.recent[l.pos] = tooMany
	if tooMany {
		l.tooMany++
	}
	l.pos = (l.pos + 1) % throttleWindow
	now := l.now()
	switch {
	case tooMany && l.tooMany >= throttleAt && now.Sub(l.lastChange) >= throttleEvery:
		sent := l.sentRate()
		if l.rate == 0 {
			l.ceiling = l.configured
			if l.ceiling == 0 {
				l.ceiling = 2 * sent
			}
			l.rate = sent
		}
		l.rate = max(minRate, min(l.rate, sent)/2)
		l.next = now
		if retryAfter <= 0 {
			retryAfter = defaultPause
		}
		if until := now.Add(retryAfter); until.After(l.pauseUntil) {
			l.pauseUntil = until
		}
		l.lastChange = now
	case !tooMany && l.rate > 0 && l.tooMany <= recoverBelow && now.Sub(l.lastChange) >= recoverEvery:
		l.rate *= 1.5
		if l.rate >= l.ceiling {
			l.rate = 0 // back to normal: the configured rate_limit (if any) applies alone
		}
		l.lastChange = now
	}
}

// sentRate is the rate at which the latest requests started, in requests per second.
func (l *adaptiveLimiter) sentRate() float64 {
	var first, last time.Time
	n := 0
	for _, t := range l.starts {
		if t.IsZero() {
			continue
		}
		n++
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	span := last.Sub(first).Seconds()
	if n < 2 || span <= 0 {
		return 10 * minRate
	}
	return max(minRate, float64(n-1)/span)
}

// limit returns the current limit in requests per second (0: not limiting) and how long
// every call is held from now.
func (l *adaptiveLimiter) limit() (float64, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rate, max(0, l.pauseUntil.Sub(l.now()))
}
