package main

import (
	"slices"
	"testing"
	"time"

	"github.com/babelforce/bridge/directory/store"
	"github.com/babelforce/bridge/internal/ui"
	"github.com/babelforce/bridge/provisioning"
)

// TestOverviewFacts: the change queue and the live stream as the overview names them, with a
// warning while queue entries fail or a followed stream is not connected.
func TestOverviewFacts(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		got  ui.Fact
		want ui.Fact
	}{
		{"empty queue", queueFact(queueStatus{}, now), ui.Fact{Name: "Change queue", Value: "empty"}},
		{"waiting", queueFact(queueStatus{QueueStats: store.QueueStats{Depth: 3, Oldest: now.Add(-42 * time.Second)}}, now),
			ui.Fact{Name: "Change queue", Value: "3 waiting, oldest queued 42s ago"}},
		{"failing", queueFact(queueStatus{QueueStats: store.QueueStats{Depth: 2, Oldest: now.Add(-5 * time.Minute), Failing: 2,
			LastError: "babelforce: 503 Service Unavailable"}}, now),
			ui.Fact{Name: "Change queue", Value: "2 waiting, oldest queued 5m ago; 2 failing, last error: babelforce: 503 Service Unavailable", Warn: true}},
		{"live connected", liveFact(provisioning.LiveStatus{Stream: "ldap_syncrepl", Following: true, Connected: true,
			ConnectedSince: now.Add(-2 * time.Hour), LastEvent: now.Add(-3 * time.Second), LagSeconds: 1, People: 7}, now),
			ui.Fact{Name: "Live changes", Value: "connected since 2h 0m ago; last change 3s ago (lag 1s); 7 people queued"}},
		{"live fresh", liveFact(provisioning.LiveStatus{Stream: "ad_dirsync", Following: true, Connected: true, ConnectedSince: now}, now),
			ui.Fact{Name: "Live changes", Value: "connected since 0s ago; no change seen yet"}},
		{"live lost", liveFact(provisioning.LiveStatus{Stream: "ldap_syncrepl", Following: true, Reconnects: 2,
			LastError: "ldap: connection refused"}, now),
			ui.Fact{Name: "Live changes", Value: "not connected; lost 2 times; no change seen yet; last error: ldap: connection refused", Warn: true}},
		{"standing by", liveFact(provisioning.LiveStatus{Stream: "ldap_syncrepl"}, now),
			ui.Fact{Name: "Live changes", Value: "another replica follows the stream, this one stands by"}},
		{"no stream", liveFact(provisioning.LiveStatus{Stream: "scim_lastmodified", LastError: "the directory offers no change stream"}, now),
			ui.Fact{Name: "Live changes", Value: "not followed; last error: the directory offers no change stream"}},
	} {
		if c.got != c.want {
			t.Errorf("%s:\n got  %+v\n want %+v", c.name, c.got, c.want)
		}
	}
}

// TestOverviewLockFacts: which replica holds the run lock and the stream lock, from the lock
// rows; a warning when no replica follows the change stream.
func TestOverviewLockFacts(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	self := "bridge-0 pid 1"
	for _, c := range []struct {
		name    string
		backend string
		holders []store.LockHolder
		live    bool
		want    []ui.Fact
	}{
		{"sqlite", store.BackendSQLite, nil, true, []ui.Fact{{Name: "Run lock", Value: "this replica (sqlite: a single replica)"}}},
		{"never taken", store.BackendPostgres, nil, false, []ui.Fact{{Name: "Run lock", Value: "never taken"}}},
		{"held here, stream elsewhere", store.BackendPostgres, []store.LockHolder{
			{Name: store.LockRun, Replica: self, Held: true, Beat: now},
			{Name: store.LockStream, Replica: "bridge-1 pid 1", Held: true, Beat: now}}, true,
			[]ui.Fact{{Name: "Run lock", Value: "held by bridge-0 pid 1 (this replica)"}, {Name: "Stream lock", Value: "held by bridge-1 pid 1"}}},
		{"released, stream lost", store.BackendPostgres, []store.LockHolder{
			{Name: store.LockRun, Replica: "bridge-1 pid 1", Beat: now.Add(-3 * time.Minute)},
			{Name: store.LockStream, Replica: self, Beat: now.Add(-10 * time.Second)}}, true,
			[]ui.Fact{{Name: "Run lock", Value: "free (no run in progress); last held by bridge-1 pid 1, 3m ago"},
				{Name: "Stream lock", Value: "free; last held by bridge-0 pid 1 (this replica), 10s ago: no replica follows the change stream", Warn: true}}},
	} {
		if got := lockFacts(c.backend, c.holders, self, c.live, now); !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got  %+v\n want %+v", c.name, got, c.want)
		}
	}
}
