package provisioning

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/babelforce/bridge/directory"
)

// TriggerLive is the trigger of runs a directory change stream asked for.
const TriggerLive = "live"

// ChangeStream is a directory's change feed: *directory.LDAPSource (syncrepl on OpenLDAP with
// syncprov, DirSync on Active Directory), the LDIF and upstream SCIM watchers.
type ChangeStream interface {
	StreamName() string
	Follow(ctx context.Context, cookie []byte, changed func(directory.ChangeSet)) error
}

// LiveSink is where a Follower puts what the stream reports: the people to reconcile, into a
// durable queue that a worker drains in coalesced scoped runs, and the stream's position.
// *store.Store is one.
type LiveSink interface {
	Enqueue(ctx context.Context, source string, ids ...string) error
	LoadStreamCookie(ctx context.Context, name string) ([]byte, error)
	SaveStreamCookie(ctx context.Context, name string, cookie []byte) error
}

// FollowerOptions configure a Follower; zero values take the defaults.
type FollowerOptions struct {
	Logger *slog.Logger
	// Source names who queued the people, e.g. "ldap" (the queue's source).
	Source string
	// FullRun reconciles everyone (a batch the stream could not reduce to people, and once
	// after every reconnect).
	FullRun func(ctx context.Context) error
	// Wake tells the queue's worker there is something to do (optional).
	Wake func()
	// Lead, when set, is taken before following and held while following: with several
	// replicas only the holder follows the stream (the others try again every LeadPoll).
	Lead     RunLockFunc
	LeadPoll time.Duration
	// Backoff is the wait before the first reconnect, doubled after each failure up to
	// MaxBackoff (defaults 1 s and 1 min).
	Backoff, MaxBackoff time.Duration
	// OnStatus sees the status after every change of it (metrics).
	OnStatus func(LiveStatus)
	Now      func() time.Time
	After    func(time.Duration) <-chan time.Time
}

// LiveStatus is what /api/v1/status and the metrics say about the change stream.
type LiveStatus struct {
	Stream string `json:"stream"`
	// Following is false while another replica follows the stream (or it is not followed
	// any more: the directory offers none).
	Following bool `json:"following"`
	Connected bool `json:"connected"`
	// ConnectedSince is when the stream last went live.
	ConnectedSince time.Time `json:"connectedSince,omitzero"`
	// LastEvent is when the last change arrived; LagSeconds how long after the server's
	// modification time it arrived (whole seconds on the server's side).
	LastEvent  time.Time `json:"lastEvent,omitzero"`
	LagSeconds float64   `json:"lagSeconds"`
	// Batches and People count what was queued; FullRuns the full reconciles asked for.
	Batches    int64  `json:"batches"`
	People     int64  `json:"people"`
	FullRuns   int64  `json:"fullRuns"`
	Reconnects int64  `json:"reconnects"`
	LastError  string `json:"lastError,omitempty"`
}

// Follower follows a directory's change stream beside the periodic reconcile: each batch of
// changes is reduced to the people it affects and queued (LiveSink.Enqueue, the same
// durable queue pushes use) before the stream's cookie is kept, so that nothing reported is
// lost and a restart resumes where it stopped. A batch the stream cannot reduce asks for a
// full reconcile, and so does every reconnect after the stream was lost (changes may have
// been missed); reconnects back off exponentially.
type Follower struct {
	stream ChangeStream
	sink   LiveSink
	opts   FollowerOptions

	fullReq chan struct{}

	mu     sync.Mutex
	status LiveStatus
}

// NewFollower returns a follower of stream into sink.
func NewFollower(stream ChangeStream, sink LiveSink, opts FollowerOptions) *Follower {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.LeadPoll <= 0 {
		opts.LeadPoll = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.After == nil {
		opts.After = time.After
	}
	if opts.Source == "" {
		opts.Source = TriggerLive
	}
	return &Follower{stream: stream, sink: sink, opts: opts, fullReq: make(chan struct{}, 1),
		status: LiveStatus{Stream: stream.StreamName()}}
}

// Status returns the stream's status now.
func (f *Follower) Status() LiveStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *Follower) update(change func(*LiveStatus)) {
	f.mu.Lock()
	change(&f.status)
	st := f.status
	f.mu.Unlock()
	if f.opts.OnStatus != nil {
		f.opts.OnStatus(st)
	}
}

// Run follows the stream until ctx ends, or until the directory says it has none.
func (f *Follower) Run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.runFull(ctx)
	}()
	defer wg.Wait()
	defer cancel()
	log := f.opts.Logger.With("stream", f.status.Stream)
	failures := 0
	lost := false
	leadLost := false
	for ctx.Err() == nil {
		held, release, ok := f.lead(ctx, leadLost)
		if !ok {
			return
		}
		// following stops when the lead is lost (held ends)
		err := f.followOnce(held, lost, func() { failures = 0 })
		leadLost = held.Err() != nil && ctx.Err() == nil
		release()
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, directory.ErrNoChangeStream) {
			log.Warn("sync.live: the directory offers no change stream; only the periodic reconcile applies its changes", "error", err)
			f.update(func(s *LiveStatus) { s.Following, s.Connected, s.LastError = false, false, err.Error() })
			return
		}
		lost = true
		failures++
		d := min(f.opts.Backoff<<min(failures-1, 20), f.opts.MaxBackoff)
		log.Warn("sync.live: change stream lost; reconnecting after a backoff, then one full reconcile", "error", err, "backoff", d)
		f.update(func(s *LiveStatus) {
			s.Connected = false
			s.Reconnects++
			if err != nil {
				s.LastError = err.Error()
			}
		})
		select {
		case <-ctx.Done():
			return
		case <-f.opts.After(d):
		}
	}
}

// lead takes the lead (Lead), waiting for it while another replica holds it; ok is false
// when ctx ended first. A follower that has just lost the lead (its lock session died)
// stands by for two LeadPolls first, so that a replica that still reaches the store, polling
// every LeadPoll, takes over.
func (f *Follower) lead(ctx context.Context, lost bool) (held context.Context, release func(), ok bool) {
	if f.opts.Lead == nil {
		f.update(func(s *LiveStatus) { s.Following = true })
		return ctx, func() {}, true
	}
	if lost {
		f.opts.Logger.Warn("sync.live: lost the lead (its lock session ended); standing by so that another replica can take over")
		f.update(func(s *LiveStatus) { s.Following, s.Connected = false, false })
		select {
		case <-ctx.Done():
			return nil, nil, false
		case <-f.opts.After(2 * f.opts.LeadPoll):
		}
	}
	logged := false
	for {
		held, release, ok, err := f.opts.Lead(ctx)
		if err == nil && ok {
			if release == nil {
				release = func() {}
			}
			if held == nil {
				held = ctx
			}
			f.update(func(s *LiveStatus) { s.Following = true })
			return held, release, true
		}
		if !logged {
			f.opts.Logger.Info("sync.live: another replica follows the change stream; this one stands by", "error", err)
			logged = true
		}
		f.update(func(s *LiveStatus) { s.Following, s.Connected = false, false })
		select {
		case <-ctx.Done():
			return nil, nil, false
		case <-f.opts.After(f.opts.LeadPoll):
		}
	}
}

// followOnce follows from the kept cookie until the stream breaks, ctx ends, or a batch
// cannot be queued (then the stream is left, to resume from the last kept cookie).
func (f *Follower) followOnce(ctx context.Context, lost bool, live func()) error {
	cookie, err := f.sink.LoadStreamCookie(ctx, f.status.Stream)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	err = f.stream.Follow(sctx, cookie, func(cs directory.ChangeSet) {
		if sctx.Err() != nil {
			return
		}
		if cs.Ready {
			live()
			f.update(func(s *LiveStatus) { s.Connected, s.ConnectedSince = true, f.opts.Now() })
			if lost {
				cs.Full = true // changes may have been missed while the stream was down
			}
		}
		if err := f.handle(sctx, cs); err != nil {
			cancel(err)
		}
	})
	if cause := context.Cause(sctx); cause != nil && ctx.Err() == nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if err == nil && ctx.Err() == nil {
		err = errors.New("the change stream ended")
	}
	return err
}

// handle queues one batch and then keeps its cookie.
func (f *Follower) handle(ctx context.Context, cs directory.ChangeSet) error {
	if cs.Full {
		f.requestFull()
	} else if len(cs.Users) > 0 {
		if err := f.sink.Enqueue(ctx, f.opts.Source, cs.Users...); err != nil {
			return err
		}
		if f.opts.Wake != nil {
			f.opts.Wake()
		}
	}
	if len(cs.Cookie) > 0 {
		if err := f.sink.SaveStreamCookie(ctx, f.status.Stream, cs.Cookie); err != nil {
			// queued already: a replay after a restart queues the same people again (a no-op)
			f.opts.Logger.Warn("sync.live: cannot keep the stream's position; a restart will replay these changes", "error", err)
		}
	}
	if cs.Empty() {
		return nil
	}
	f.update(func(s *LiveStatus) {
		s.Batches++
		s.People += int64(len(cs.Users))
		s.LastEvent = cs.At
		if !cs.Modified.IsZero() && !cs.At.IsZero() {
			s.LagSeconds = max(cs.At.Sub(cs.Modified).Seconds(), 0)
		}
	})
	return nil
}

func (f *Follower) requestFull() {
	f.update(func(s *LiveStatus) { s.FullRuns++ })
	select {
	case f.fullReq <- struct{}{}:
	default: // one is pending already
	}
}

// runFull runs the full reconciles asked for, one at a time; requests while one runs
// coalesce into one more.
func (f *Follower) runFull(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.fullReq:
		}
		if f.opts.FullRun == nil {
			continue
		}
		if err := f.opts.FullRun(ctx); err != nil && ctx.Err() == nil {
			f.opts.Logger.Warn("sync.live: the full reconcile the stream asked for failed; the periodic run retries", "error", err)
		}
	}
}
