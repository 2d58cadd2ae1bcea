package provisioning

import (
	"context"
	"testing"
	"time"
)

// TestReportHistory: runs are numbered; Report gives the last few whole (plan and every
// result) and older ones compact, as Status keeps them.
func TestReportHistory(t *testing.T) {
	e := newEnv(t, standardPeople(), nil)
	first := e.run(RunOptions{})
	if first.ID != 1 {
		t.Fatalf("first run's id %d", first.ID)
	}
	for i := 0; i < fullKept; i++ {
		e.run(RunOptions{})
	}
	last := e.rec.Status()[0]
	if last.ID != uint64(fullKept+1) {
		t.Fatalf("last run's id %d, want %d", last.ID, fullKept+1)
	}
	rep, full, ok := e.rec.Report(last.ID)
	if !ok || !full || rep.Plan == nil {
		t.Fatalf("the last run: ok %v full %v plan %v", ok, full, rep != nil && rep.Plan != nil)
	}
	rep, full, ok = e.rec.Report(1)
	if !ok || full || rep.Plan != nil || rep.Summary == nil || rep.Summary.Create != first.Summary.Create {
		t.Fatalf("the first run: ok %v full %v %+v", ok, full, rep)
	}
	if _, _, ok := e.rec.Report(99); ok {
		t.Fatal("run 99 found")
	}
}

// TestNextRun: while the scheduler waits, NextRun says when it starts the next run.
func TestNextRun(t *testing.T) {
	e := newEnv(t, standardPeople(), func(c *Config) { c.Interval = time.Hour; c.Jitter = 0 })
	waiting := make(chan time.Duration)
	ticks := make(chan time.Time)
	rec := e.newReconciler(e.client, WithAfter(func(d time.Duration) <-chan time.Time { waiting <- d; return ticks }))
	if !rec.NextRun().IsZero() {
		t.Fatal("NextRun before scheduling")
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { rec.Schedule(ctx); close(stopped) }()
	d := <-waiting
	if got, want := rec.NextRun(), e.now.Add(d); !got.Equal(want) || d != time.Hour {
		t.Errorf("NextRun %v, want %v (in %v)", got, want, d)
	}
	cancel()
	<-stopped
	if !rec.NextRun().IsZero() {
		t.Error("NextRun after the scheduler stopped")
	}
}
