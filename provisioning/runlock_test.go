package provisioning

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// sharedLock is a fake cross-replica run lock: at most one holder at a time.
type sharedLock struct {
	mu     sync.Mutex
	holder string
	calls  int
	// onCall, when set, runs (lock held) before each attempt with its number (1-based).
	onCall func(n int)
	err    error
}

func (l *sharedLock) take(name string) RunLockFunc {
	return func(ctx context.Context) (context.Context, func(), bool, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.calls++
		if l.onCall != nil {
			l.onCall(l.calls)
		}
		if l.err != nil {
			return nil, nil, false, l.err
		}
		if l.holder != "" {
			return nil, nil, false, nil
		}
		l.holder = name
		return ctx, func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.holder == name {
				l.holder = ""
			}
		}, true, nil
	}
}

func (l *sharedLock) set(holder string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.holder = holder
}

func (l *sharedLock) state() (holder string, calls int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holder, l.calls
}

func (f *fixture) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// syncBuffer is a log sink safe for the scheduler goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunLockScheduleSkipsWhileAnotherReplicaRuns: a scheduled run does not wait for the run
// lock: it is skipped, nothing is read or written, and the scheduler tries again next tick.
func TestRunLockScheduleSkipsWhileAnotherReplicaRuns(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	lock := &sharedLock{holder: "replica-b"}
	var logs syncBuffer
	ticks := make(chan time.Time)
	// waiting is told each time the scheduler has finished a run and waits for its next tick,
	// so the test changes the lock only between runs, never during one.
	waiting := make(chan struct{})
	e.rec = e.newReconciler(e.client, WithRunLock(lock.take("replica-a")),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		WithAfter(func(time.Duration) <-chan time.Time { waiting <- struct{}{}; return ticks }))

	_, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerSchedule})
	if !errors.Is(err, ErrOtherReplica) || !errors.Is(err, ErrBusy) {
		t.Fatalf("scheduled run while another replica holds the lock: %v", err)
	}
	if n := e.dir.readCount(); n != 0 || len(e.sim.Agents()) != 0 || e.sim.WriteCalls() != 0 {
		t.Fatalf("a skipped run read the directory %d times, wrote %d calls", n, e.sim.WriteCalls())
	}
	if e.rec.Busy() {
		t.Fatal("the in-process lock was not released after the skipped run")
	}

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { e.rec.Schedule(ctx); close(stopped) }()
	<-waiting // the first scheduled run (skipped) is done
	if !strings.Contains(logs.String(), "another replica is reconciling") {
		t.Errorf("log lacks the skip:\n%s", logs.String())
	}
	if len(e.sim.Agents()) != 0 {
		t.Fatal("the scheduler reconciled while another replica held the lock")
	}
	lock.set("") // replica-b is done
	ticks <- time.Time{}
	<-waiting // the second scheduled run is done
	cancel()
	<-stopped
	if len(e.sim.Agents()) != 4 {
		t.Fatalf("agents after the lock was free: %d, want 4", len(e.sim.Agents()))
	}
	if holder, _ := lock.state(); holder != "" {
		t.Fatalf("run lock still held by %q after the run", holder)
	}
	// Skipped runs leave no report; the one that ran does.
	st := e.rec.Status()
	if len(st) != 1 || st[0].Counts["create_agent/applied"] != 4 {
		t.Fatalf("status: %+v", st)
	}
}

// TestRunLockOnDemandWaits: manual and CLI runs ask again until the other replica is done.
func TestRunLockOnDemandWaits(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	lock := &sharedLock{holder: "replica-b"}
	lock.onCall = func(n int) {
		if n == 3 {
			lock.holder = "" // replica-b finishes while we wait
		}
	}
	e.rec = e.newReconciler(e.client, WithRunLock(lock.take("replica-a")))
	e.rec.runLockPoll = time.Millisecond
	if _, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerManual}); err != nil {
		t.Fatal(err)
	}
	if holder, calls := lock.state(); calls != 3 || holder != "" {
		t.Fatalf("lock attempts %d (want 3), holder after the run %q", calls, holder)
	}
	if len(e.sim.Agents()) != 4 {
		t.Fatalf("agents: %d", len(e.sim.Agents()))
	}

	lock.set("replica-b")
	lock.mu.Lock()
	lock.calls = 0
	lock.mu.Unlock()
	e.dir.edit("u-ann", func(p *person) { p.name = "Ann Abbott" })
	rep, err := e.rec.ProvisionUsers(context.Background(), TriggerCLI, "u-ann")
	if err != nil || rep.Counts["update_agent/applied"] != 1 {
		t.Fatalf("provision after waiting: %v, counts %v", err, rep)
	}
}

// TestRunLockWaitIsBounded: a run that never gets the lock gives up after the run lock wait
// (or when its context ends) with ErrOtherReplica, having read nothing.
func TestRunLockWaitIsBounded(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	lock := &sharedLock{holder: "replica-b"}
	e.rec = e.newReconciler(e.client, WithRunLock(lock.take("replica-a")), WithRunLockWait(30*time.Millisecond))
	e.rec.runLockPoll = time.Millisecond
	_, err := e.rec.ProvisionUsers(context.Background(), TriggerSCIMPush, "u-ann")
	if !errors.Is(err, ErrOtherReplica) || !strings.Contains(err.Error(), "waited 30ms") {
		t.Fatalf("err = %v", err)
	}
	if _, calls := lock.state(); calls < 2 {
		t.Fatalf("lock asked %d times; want it asked again while waiting", calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.rec.Run(ctx, RunOptions{Trigger: TriggerManual}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	if n := e.dir.readCount(); n != 0 || e.sim.WriteCalls() != 0 {
		t.Fatalf("runs without the lock read %d times, wrote %d calls", n, e.sim.WriteCalls())
	}
	if e.rec.Busy() {
		t.Fatal("the in-process lock is still held")
	}
	// No wait at all.
	e.rec = e.newReconciler(e.client, WithRunLock(lock.take("replica-a")), WithRunLockWait(0))
	if _, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerManual}); !errors.Is(err, ErrOtherReplica) {
		t.Fatalf("no wait: %v", err)
	}
}

// TestRunLockErrorAndOrder: a failing lock fails the run before anything is read; the
// in-process lock is taken first (a scheduled run while this process runs does not even ask).
func TestRunLockErrorAndOrder(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	lock := &sharedLock{err: errors.New("database unreachable")}
	e.rec = e.newReconciler(e.client, WithRunLock(lock.take("replica-a")))
	_, err := e.rec.Run(context.Background(), RunOptions{Trigger: TriggerManual})
	if err == nil || !strings.Contains(err.Error(), "take the run lock: database unreachable") || errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v", err)
	}
	if e.dir.readCount() != 0 {
		t.Fatal("read the directory without the lock")
	}
	lock.err = nil
	e.rec.running <- struct{}{}
	_, err = e.rec.Run(context.Background(), RunOptions{Trigger: TriggerSchedule})
	<-e.rec.running
	if !errors.Is(err, ErrBusy) || errors.Is(err, ErrOtherReplica) {
		t.Fatalf("busy here: %v", err)
	}
	if _, calls := lock.state(); calls != 1 {
		t.Fatalf("the run lock was asked %d times; want once (only by the first run)", calls)
	}
}
