package main

// End-to-end test of several `bridge serve` replicas behind a load balancer: they share one
// PostgreSQL store (a throwaway cluster, see testenv.StartPostgres) and one babelforce
// simulator, and reconcile one at a time through the store's run lock.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/directory/store"
	"github.com/babelforce/bridge/internal/testenv"
	"github.com/babelforce/bridge/provisioning"
)

// replicaStart starts one replica (serveStart) with the store at storeURL given the way the
// documentation says: the YAML has no store path, BRIDGE_STORE_PATH holds the URL.
func replicaStart(t *testing.T, sim *babelforcetest.Server, storeURL string, schedule bool) *serveInstance {
	t.Helper()
	return serveStart(t, serveOptions{sim: sim, storeURL: storeURL, schedule: schedule})
}

// runSpan is when one run held the run lock.
type runSpan struct {
	who             string
	started, finish time.Time
}

// wantNoOverlap fails when two runs were in flight at the same time.
func wantNoOverlap(t *testing.T, spans []runSpan) {
	t.Helper()
	for i := range spans {
		for j := i + 1; j < len(spans); j++ {
			a, b := spans[i], spans[j]
			if a.started.Before(b.finish) && b.started.Before(a.finish) {
				t.Errorf("runs overlapped: %s %s–%s and %s %s–%s", a.who, a.started.Format(time.RFC3339Nano),
					a.finish.Format(time.RFC3339Nano), b.who, b.started.Format(time.RFC3339Nano), b.finish.Format(time.RFC3339Nano))
			}
		}
	}
}

func TestReplicasSharePostgresStore(t *testing.T) {
	pg := testenv.StartPostgres(t)
	sim := serveNewSim(t)
	// Both replicas run their scheduler (a run at start, then hourly).
	a := replicaStart(t, sim, pg.URL, true)
	b := replicaStart(t, sim, pg.URL, true)
	if a.svc.app.store.Backend() != "postgres" {
		t.Fatalf("store backend = %q", a.svc.app.store.Backend())
	}

	// A user pushed to replica A is there for replica B.
	var pushed []string
	for i := range 3 {
		email := fmt.Sprintf("pushed%d@example.com", i)
		status, body := a.scim(http.MethodPost, "/Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
			"userName":%q,"name":{"givenName":"Pushed","familyName":"N%d"},"emails":[{"value":%q,"primary":true}],"active":true}`, email, i, email))
		if status != http.StatusCreated {
			t.Fatalf("push %s to A: %d %v", email, status, body)
		}
		id, _ := body["id"].(string)
		if status, got := b.scim(http.MethodGet, "/Users/"+id, nil); status != http.StatusOK || got["userName"] != email {
			t.Fatalf("GET %s on B: %d %v", id, status, got)
		}
		pushed = append(pushed, email)
	}
	status, list := b.scim(http.MethodGet, `/Users?filter=`+url.QueryEscape(`userName eq "PUSHED1@example.com"`), nil)
	if status != http.StatusOK || list["totalResults"] != float64(1) {
		t.Fatalf("filter on B: %d %v", status, list)
	}
	// The same userName pushed to B now is a conflict, as on one bridge.
	if status, body := b.scim(http.MethodPost, "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"Pushed0@Example.com","active":true}`); status != http.StatusConflict {
		t.Fatalf("duplicate userName on B: %d %v", status, body)
	}

	// Users that reached the store without being provisioned (as after an outage).
	seeded := serveSeedUsers(t, a.unqueuedStore(), 100, 40, map[string][]int{"team-blue": nil})
	emails := append([]string(nil), pushed...)
	for i := 100; i < 140; i++ {
		emails = append(emails, fmt.Sprintf("user%03d@example.com", i))
	}

	var spans []runSpan
	// Both schedulers fire at the same moment (Schedule's own call): whoever gets the run
	// lock reconciles, the other skips with ErrOtherReplica (or runs after it).
	errs := make([]error, 2)
	reps := make([]*provisioning.Report, 2)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, s := range []*serveInstance{a, b} {
		wg.Go(func() {
			<-start
			reps[i], errs[i] = s.svc.app.rec.Run(context.Background(), provisioning.RunOptions{Trigger: provisioning.TriggerSchedule})
		})
	}
	close(start)
	wg.Wait()
	skipped := 0
	for i, err := range errs {
		switch {
		case err == nil:
			spans = append(spans, runSpan{fmt.Sprintf("scheduled run %d", i), reps[i].Started, reps[i].Finished})
		case errors.Is(err, provisioning.ErrBusy):
			skipped++
		default:
			t.Fatalf("scheduled run on replica %d: %v", i, err)
		}
	}
	t.Logf("simultaneous scheduled runs: %d ran, %d skipped", len(spans), skipped)

	// Manual syncs on both at once: the second waits for the first.
	type answer struct {
		status int
		body   []byte
		err    error
	}
	answers := make([]answer, 2)
	for i, s := range []*serveInstance{a, b} {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, s.base+"/api/v1/sync", nil)
			if err != nil {
				answers[i].err = err
				return
			}
			req.Header.Set("Authorization", "Bearer "+s.adminToken)
			resp, err := serveHTTP.Do(req)
			if err != nil {
				answers[i].err = err
				return
			}
			defer resp.Body.Close()
			answers[i].status = resp.StatusCode
			answers[i].body, answers[i].err = io.ReadAll(resp.Body)
		})
	}
	wg.Wait()
	for i, ans := range answers {
		if ans.err != nil || ans.status != http.StatusOK {
			t.Fatalf("manual sync on replica %d: %d %v %s", i, ans.status, ans.err, ans.body)
		}
		var body map[string]any
		if err := json.Unmarshal(ans.body, &body); err != nil {
			t.Fatal(err)
		}
		rep := serveReport(t, body)
		started, err1 := time.Parse(time.RFC3339Nano, fmt.Sprint(rep["started"]))
		finished, err2 := time.Parse(time.RFC3339Nano, fmt.Sprint(rep["finished"]))
		if err1 != nil || err2 != nil {
			t.Fatalf("report times: %v %v", err1, err2)
		}
		spans = append(spans, runSpan{fmt.Sprintf("manual sync %d", i), started, finished})
	}
	wantNoOverlap(t, spans)

	// Exactly one agent per user, whichever replica made it.
	perEmail := map[string]int{}
	owned := 0
	for _, ag := range sim.Agents() {
		if ag.AgentSource == serveAgentSource {
			owned++
			perEmail[strings.ToLower(ag.Email)]++
		}
	}
	for _, e := range emails {
		if perEmail[e] != 1 {
			t.Errorf("%s has %d agents, want 1", e, perEmail[e])
		}
	}
	if owned != len(emails) {
		t.Errorf("bridge owns %d agents, want %d:\n%s", owned, len(emails), serveDescribeAgents(sim))
	}

	// A further sync, on either replica, changes nothing.
	sim.ResetCalls()
	for _, s := range []*serveInstance{b, a} {
		status, body := s.admin(http.MethodPost, "/api/v1/sync")
		if status != http.StatusOK || serveCount(serveReport(t, body), "applied") != 0 {
			t.Fatalf("sync after convergence: %d %v", status, body)
		}
	}
	if n := sim.WriteCalls(); n != 0 {
		t.Fatalf("a sync after convergence wrote %d calls: %v", n, sim.Calls())
	}

	// The reconciler's state is in the store, shared: no replica writes its state file, and a
	// tag that replica A was asked to manage is removed by a replica C that never gave it.
	for _, s := range []*serveInstance{a, b} {
		if _, err := os.Stat(filepath.Join(s.dir, "state.json")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("replica wrote a state file %s/state.json (%v); the state belongs in the store", s.dir, err)
		}
	}
	ctx := context.Background()
	// written unqueued, so that the syncs below are what applies them
	raw := a.unqueuedStore()
	vip, err := raw.Create(ctx, store.Resource{Kind: store.KindGroup, Attributes: map[string]any{
		"displayName": "skill-VIP", "members": []any{map[string]any{"value": seeded[0], "type": "User"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := a.admin(http.MethodPost, "/api/v1/sync"); status != http.StatusOK || serveCount(serveReport(t, body), "applied") != 1 {
		t.Fatalf("sync on A after adding skill-VIP: %d %v", status, body)
	}
	if ag, ok := serveAgentByEmail(sim, "user100@example.com"); !ok || !slices.Contains(ag.Tags, "vip") {
		t.Fatalf("user100's agent after A's sync: %+v", ag)
	}
	if raw, err := b.svc.app.store.LoadState(ctx); err != nil || !strings.Contains(string(raw), `"vip"`) {
		t.Fatalf("the shared state does not name the managed tag vip: %s, %v", raw, err)
	}
	c := replicaStart(t, sim, pg.URL, false)
	if _, err := raw.Delete(ctx, store.KindGroup, vip.ID); err != nil {
		t.Fatal(err)
	}
	if status, body := c.admin(http.MethodPost, "/api/v1/sync"); status != http.StatusOK || serveCount(serveReport(t, body), "applied") != 1 {
		t.Fatalf("sync on C after removing skill-VIP: %d %v", status, body)
	}
	if ag, ok := serveAgentByEmail(sim, "user100@example.com"); !ok || slices.Contains(ag.Tags, "vip") {
		t.Errorf("replica C left the managed tag vip on user100's agent: %+v", ag)
	}
}

// TestReplicasLockSessionKilledMidRun: replica A's run-lock session is terminated
// (pg_terminate_backend) in the middle of a sync of many users; replica B's sync, asked for
// at once, takes the lock over. A stops writing before B starts: babelforce sees exactly one
// write per planned change, and the end state is right (one agent per user; a further sync
// changes nothing).
func TestReplicasLockSessionKilledMidRun(t *testing.T) {
	pg := testenv.StartPostgres(t)
	replicasLoseLockMidRun(t, pg.URL, func() {
		db, err := sql.Open("pgx", pg.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		// the run lock is the only session-level advisory lock in this database
		var killed int
		if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&killed); err != nil || killed != 1 {
			t.Fatalf("terminate the lock session: %d sessions, %v", killed, err)
		}
	})
}

// TestReplicasPostgresRestartMidRun: the PostgreSQL server (a cluster of this test's own) is
// restarted while replica A's sync holds the run lock and writes; replica B's sync, asked
// for once the server is back, takes the lock. As with a terminated session: one writer at a
// time, babelforce sees exactly one write per planned change, and a further sync is a no-op.
func TestReplicasPostgresRestartMidRun(t *testing.T) {
	pg := testenv.StartPostgresCluster(t)
	replicasLoseLockMidRun(t, pg.URL, func() {
		pg.Stop()
		pg.Start(t)
	})
}

// replicasLoseLockMidRun runs the scenario of the two tests above: replica A's sync of many
// users against a slow babelforce loses its run lock (lose, called after A's 10th write),
// then replica B syncs. It checks that A stopped, B's sync succeeded, babelforce saw one
// write per planned change and the end state is right.
func replicasLoseLockMidRun(t *testing.T, storeURL string, lose func()) {
	const users = 120
	sim := serveNewSim(t)
	a := replicaStart(t, sim, storeURL, false)
	b := replicaStart(t, sim, storeURL, false)
	serveSeedUsers(t, a.unqueuedStore(), 0, users, nil)

	status, body := a.admin(http.MethodPost, "/api/v1/sync?dry_run=true")
	planned := serveCount(serveReport(t, body), "planned")
	if status != http.StatusOK || planned < users {
		t.Fatalf("dry run: %d, %d changes planned: %v", status, planned, body)
	}
	// slow writes, so that the run is still going when its lock session dies
	if err := sim.SetFaults(babelforcetest.Faults{Latency: 40 * time.Millisecond, Paths: []string{"/api/v2/agents", "/auth/scim"}}); err != nil {
		t.Fatal(err)
	}
	sim.ResetCalls()
	syncOn := func(s *serveInstance, out *int, body *[]byte) func() {
		return func() {
			req, _ := http.NewRequest(http.MethodPost, s.base+"/api/v1/sync", nil)
			req.Header.Set("Authorization", "Bearer "+s.adminToken)
			resp, err := serveHTTP.Do(req)
			if err != nil {
				t.Errorf("sync on %s: %v", s.base, err)
				return
			}
			*body, _ = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			*out = resp.StatusCode
		}
	}
	var wg sync.WaitGroup
	var statusA, statusB int
	var bodyA, bodyB []byte
	wg.Go(syncOn(a, &statusA, &bodyA))
	for deadline := time.Now().Add(30 * time.Second); sim.WriteCalls() < 10; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("A's sync wrote nothing: %v", sim.Calls())
		}
	}
	lose()
	wg.Go(syncOn(b, &statusB, &bodyB))
	wg.Wait()
	if statusB != http.StatusOK {
		t.Errorf("B's sync: %d, want 200: %s", statusB, strings.Join(strings.Fields(string(bodyB)), " "))
	}
	if statusA == http.StatusOK {
		t.Errorf("A's sync answered 200 although its lock was lost mid-run")
	}
	if !strings.Contains(a.logs.String(), "run lock lost") {
		t.Errorf("A did not log the loss of its run lock")
	}
	if err := sim.SetFaults(babelforcetest.Faults{}); err != nil {
		t.Fatal(err)
	}
	if got := sim.WriteCalls(); got != planned {
		t.Errorf("babelforce saw %d writes for %d planned changes: %v", got, planned, sim.Calls())
	}
	perEmail := map[string]int{}
	for _, ag := range sim.Agents() {
		perEmail[strings.ToLower(ag.Email)]++
	}
	for i := range users {
		if e := fmt.Sprintf("user%03d@example.com", i); perEmail[e] != 1 {
			t.Errorf("%s has %d agents, want 1", e, perEmail[e])
		}
	}
	if status, body := b.admin(http.MethodPost, "/api/v1/sync"); status != http.StatusOK || serveCount(serveReport(t, body), "applied") != 0 {
		t.Errorf("sync after both: %d %v, want nothing to do", status, body)
	}
}
