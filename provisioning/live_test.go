package provisioning

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/babelforce/bridge/directory"
)

// scriptedStream hands each Follow call to the test: the test gets the cookie and the
// callback, and says what Follow returns.
type scriptedStream struct {
	calls chan *followCall
}

type followCall struct {
	ctx     context.Context
	cookie  []byte
	changed func(directory.ChangeSet)
	ret     chan error
}

func (s *scriptedStream) StreamName() string { return "test:stream" }

func (s *scriptedStream) Follow(ctx context.Context, cookie []byte, changed func(directory.ChangeSet)) error {
	c := &followCall{ctx: ctx, cookie: cookie, changed: changed, ret: make(chan error, 1)}
	s.calls <- c
	select {
	case err := <-c.ret:
		return err
	case <-ctx.Done():
		return nil
	}
}

// memSink is a LiveSink in memory that can be made to fail.
type memSink struct {
	mu       sync.Mutex
	queued   []string
	cookies  map[string][]byte
	failNext error
	events   chan string
}

func newMemSink() *memSink {
	return &memSink{cookies: map[string][]byte{}, events: make(chan string, 100)}
}

func (m *memSink) Enqueue(_ context.Context, source string, ids ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failNext; err != nil {
		m.failNext = nil
		m.events <- "enqueue failed"
		return err
	}
	m.queued = append(m.queued, ids...)
	m.events <- "enqueue " + source
	return nil
}

func (m *memSink) LoadStreamCookie(_ context.Context, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cookies[name], nil
}

func (m *memSink) SaveStreamCookie(_ context.Context, name string, c []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cookies[name] = c
	m.events <- "cookie " + string(c)
	return nil
}

func (m *memSink) Queued() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.queued)
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

func TestFollowerQueuesThenKeepsTheCookieAndReconnects(t *testing.T) {
	stream := &scriptedStream{calls: make(chan *followCall)}
	sink := newMemSink()
	fulls := make(chan struct{}, 10)
	backoffs := make(chan time.Duration, 10)
	fire := make(chan time.Time)
	wakes := 0
	f := NewFollower(stream, sink, FollowerOptions{
		Source:  "ldap",
		FullRun: func(context.Context) error { fulls <- struct{}{}; return nil },
		Wake:    func() { wakes++ },
		After: func(d time.Duration) <-chan time.Time {
			backoffs <- d
			return fire
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// first connect: no cookie; the stream says "reconcile everyone" and goes live
	c := recv(t, stream.calls, "Follow")
	if c.cookie != nil {
		t.Fatalf("first Follow got cookie %q", c.cookie)
	}
	at := time.Date(2026, 12, 5, 12, 0, 3, 0, time.UTC)
	c.changed(directory.ChangeSet{Full: true, Ready: true, Cookie: []byte("c1"), At: at})
	recv(t, fulls, "full run")
	if e := recv(t, sink.events, "cookie"); e != "cookie c1" {
		t.Fatalf("event %q", e)
	}
	if st := f.Status(); !st.Connected || !st.Following || st.FullRuns != 1 {
		t.Fatalf("status %+v", st)
	}
	// a change: queued first, then its cookie kept
	c.changed(directory.ChangeSet{Users: []string{"u1", "u2"}, Cookie: []byte("c2"), At: at, Modified: at.Add(-time.Second)})
	if e := recv(t, sink.events, "enqueue"); e != "enqueue ldap" {
		t.Fatalf("event %q, want the enqueue first", e)
	}
	if e := recv(t, sink.events, "cookie"); e != "cookie c2" {
		t.Fatalf("event %q", e)
	}
	if st := f.Status(); st.People != 2 || st.LagSeconds != 1 || !st.LastEvent.Equal(at) || wakes != 1 {
		t.Fatalf("status %+v, wakes %d", st, wakes)
	}
	// the queue fails: the stream is left without keeping the cookie, and resumed from c2
	sink.mu.Lock()
	sink.failNext = errors.New("store down")
	sink.mu.Unlock()
	c.changed(directory.ChangeSet{Users: []string{"u3"}, Cookie: []byte("c3"), At: at})
	recv(t, sink.events, "failed enqueue")
	if d := recv(t, backoffs, "backoff"); d != time.Second {
		t.Fatalf("first backoff %s, want 1s", d)
	}
	if st := f.Status(); st.Connected || st.LastError != "store down" {
		t.Fatalf("status after the failure %+v", st)
	}
	fire <- time.Now()
	c = recv(t, stream.calls, "Follow again")
	if string(c.cookie) != "c2" {
		t.Fatalf("resumed from %q, want c2 (c3 was never queued)", c.cookie)
	}
	// the server replays u3; after a lost stream the catch-up batch also asks for a full run
	c.changed(directory.ChangeSet{Users: []string{"u3"}, Cookie: []byte("c3"), Ready: true, At: at})
	recv(t, fulls, "full run after the reconnect")
	if e := recv(t, sink.events, "cookie"); e != "cookie c3" {
		t.Fatalf("event %q", e)
	}
	// the stream breaks twice: the backoff doubles
	c.ret <- errors.New("connection reset")
	if d := recv(t, backoffs, "backoff"); d != time.Second {
		t.Fatalf("backoff after a live stream broke: %s, want 1s (reset once live)", d)
	}
	fire <- time.Now()
	c = recv(t, stream.calls, "Follow")
	c.ret <- errors.New("connection refused")
	if d := recv(t, backoffs, "backoff"); d != 2*time.Second {
		t.Fatalf("second backoff %s, want 2s", d)
	}
	if got := sink.Queued(); !slices.Equal(got, []string{"u1", "u2"}) {
		t.Fatalf("queued %v", got)
	}
}

func TestFollowerStopsWithoutAChangeStreamAndWaitsForTheLead(t *testing.T) {
	stream := &scriptedStream{calls: make(chan *followCall)}
	sink := newMemSink()
	polls := make(chan time.Duration, 10)
	fire := make(chan time.Time)
	var mu sync.Mutex
	leader := false
	released := make(chan struct{}, 1)
	f := NewFollower(stream, sink, FollowerOptions{
		Lead: func(ctx context.Context) (context.Context, func(), bool, error) {
			mu.Lock()
			defer mu.Unlock()
			if !leader {
				return nil, nil, false, nil
			}
			return ctx, func() { released <- struct{}{} }, true, nil
		},
		After: func(d time.Duration) <-chan time.Time { polls <- d; return fire },
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	if d := recv(t, polls, "lead poll"); d != 5*time.Second {
		t.Fatalf("lead poll %s", d)
	}
	if st := f.Status(); st.Following {
		t.Fatalf("following without the lead: %+v", st)
	}
	mu.Lock()
	leader = true
	mu.Unlock()
	fire <- time.Now()
	c := recv(t, stream.calls, "Follow once the lead is taken")
	c.ret <- errors.Join(errors.New("ldap x"), directory.ErrNoChangeStream)
	recv(t, done, "Run to return")
	recv(t, released, "lead released")
	if st := f.Status(); st.Following || st.Connected || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
}
