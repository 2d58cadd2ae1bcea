package main

// End-to-end tests of sync.live: `bridge serve` follows slapd's syncrepl stream (syncprov)
// and each directory change reaches the babelforce simulator through a scoped run.

import (
	"context"
	"database/sql"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/directory/store"
	"github.com/babelforce/bridge/internal/testenv"
	"github.com/babelforce/bridge/internal/ui"
)

// liveServe is one `bridge serve` with sync.live; with schedule false everything it
// applies comes from the change stream.
type liveServe struct {
	svc    *service
	logs   *lockedBuffer
	cancel context.CancelFunc
	done   chan error
}

func startLiveServe(t testing.TB, yaml string, env map[string]string, schedule bool) *liveServe {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg, err := parseConfig(ctx, []byte(yaml), "live.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, true)
	if err != nil {
		cancel()
		t.Fatalf("config: %v", err)
	}
	l := &liveServe{logs: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	svc, err := newService(ctx, cfg, newLogger(cfg.Log, l.logs), appOptions{})
	if err != nil {
		cancel()
		t.Fatalf("new service: %v", err)
	}
	l.svc = svc
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { l.done <- svc.serve(ctx, ln, schedule) }()
	t.Cleanup(l.stop)
	return l
}

// stop ends serve as SIGTERM does and closes the app (the store).
func (l *liveServe) stop() {
	if l.cancel == nil {
		return
	}
	l.cancel()
	l.cancel = nil
	<-l.done
	l.svc.app.close()
}

// waitUntil polls cond every 10 ms until it holds, failing after timeout with what.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	waitEvery(t, 10*time.Millisecond, timeout, what, cond)
}

// waitEvery polls cond every interval until it holds, failing after timeout with what. The
// latency benchmarks poll more often than the tests, so that polling adds little to what they
// measure.
func waitEvery(t testing.TB, interval, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(interval) // polling interval, not a wait for an event
	}
}

// firstLiveRunDone says whether the serve's first live run (the stream's full reconcile) has
// finished.
func (l *liveServe) firstLiveRunDone() bool {
	for _, r := range l.svc.app.rec.Status() {
		if r.Trigger == "live" && !r.Finished.IsZero() {
			return true
		}
	}
	return false
}

func agentByEmail(sim *babelforcetest.Server, email string) (babelforce.Agent, bool) {
	for _, a := range sim.Agents() {
		if strings.EqualFold(a.Email, email) {
			return a, true
		}
	}
	return babelforce.Agent{}, false
}

// auditWrites counts the audit records of writes to babelforce about subject.
func auditWrites(logs, subject string) int {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "babelforce write") && strings.Contains(line, "subject="+subject) {
			n++
		}
	}
	return n
}

func TestServeLiveFollowsSyncreplAndResumesFromTheCookie(t *testing.T) {
	testenv.Need(t, "slapd", "slapadd")
	people := e2ePeople()
	s := testenv.StartSlapd(t, testenv.SlapdOptions{SeedLDIF: e2eSeedLDIF(people), Syncprov: true})
	sim := babelforcetest.New(t, babelforcetest.Options{})
	dir := t.TempDir()
	yaml := e2eConfigYAML(s.URL, filepath.Join(dir, "state.json"), 10, 10, "  live: true\n") +
		"store:\n  path: " + filepath.Join(dir, "bridge.db") + "\n"
	yaml = strings.Replace(yaml, "level: warn", "level: info", 1)
	env := mergeEnv(babelforceSimEnv(sim), slapdEnv(s))
	inScope := 0
	for _, p := range people {
		if p.inScope() {
			inScope++
		}
	}
	agent := func(uid string) babelforce.Agent {
		a, _ := agentByEmail(sim, uid+"@example.com")
		return a
	}

	// with the schedule (interval 15 min): no cookie yet, so the stream asks for one full
	// reconcile, and that is the scheduler's first run (not a second one beside it)
	l := startLiveServe(t, yaml, env, true)
	waitUntil(t, 30*time.Second, "the first full reconcile", func() bool { return len(sim.Agents()) == inScope })
	waitUntil(t, 10*time.Second, "the stream live", func() bool { return l.svc.live.Status().Connected })
	waitUntil(t, 30*time.Second, "the first run finished", func() bool { return !l.svc.app.rec.Busy() })
	if runs := l.svc.app.rec.Status(); len(runs) != 1 || runs[0].Trigger != "schedule" || len(runs[0].Users) != 0 {
		t.Errorf("runs at the start: %d, want one full scheduled run: %+v", len(runs), runs)
	}
	if st := l.svc.status(t.Context()); st.Live == nil || !st.Live.Connected || !st.Live.Following {
		t.Errorf("/api/v1/status live = %+v, want connected and following", st.Live)
	}
	// the status page's overview says so too, and shows the change queue
	facts := map[string]ui.Fact{}
	for _, f := range (uiBackend{l.svc}).Status(t.Context()).Facts {
		facts[f.Name] = f
	}
	if f := facts["Live changes"]; f.Warn || !strings.HasPrefix(f.Value, "connected since ") {
		t.Errorf("overview's live changes = %+v, want connected", f)
	}
	if f, ok := facts["Change queue"]; !ok || f.Warn {
		t.Errorf("overview's change queue = %+v, want shown, no warning", f)
	}
	admin := ldapAdmin(t, s)
	within := 15 * time.Second

	// a phone number
	ldapReplace(t, admin, "uid=anna.schmidt,ou=people,"+e2eSuffix, map[string][]string{"telephoneNumber": {"+49 30 5550001"}})
	waitUntil(t, within, "anna's new number", func() bool { return agent("anna.schmidt").Number == "+49305550001" })
	// a name
	ldapReplace(t, admin, "uid=ben.mueller,ou=people,"+e2eSuffix, map[string][]string{"displayName": {"Benjamin Mueller"}, "cn": {"Benjamin Mueller"}})
	waitUntil(t, within, "ben's new name", func() bool { return agent("ben.mueller").Name == "Benjamin Mueller" })
	// a group join and a leave
	ldapMembers(t, admin, groupDN("skill-french"), []string{"uid=clara.weber,ou=people," + e2eSuffix}, nil)
	waitUntil(t, within, "clara's french skill", func() bool { return slices.Contains(agent("clara.weber").Tags, "french") })
	ldapMembers(t, admin, groupDN("skill-german"), nil, []string{"uid=elif.yilmaz,ou=people," + e2eSuffix})
	waitUntil(t, within, "elif without german", func() bool {
		a := agent("elif.yilmaz")
		return a.ID != "" && !slices.Contains(a.Tags, "german")
	})
	// a nested group change: a new skill group holding the team-sales group
	ldapAdd(t, admin, groupDN("skill-dutch"), map[string][]string{"objectClass": {"groupOfNames"}, "cn": {"skill-dutch"}, "member": {groupDN("team-sales")}})
	waitUntil(t, within, "every sales agent speaks dutch", func() bool {
		for _, p := range people {
			if p.in("team-sales") && !slices.Contains(agent(p.uid).Tags, "dutch") {
				return false
			}
		}
		return true
	})
	if slices.Contains(agent("anna.schmidt").Tags, "dutch") {
		t.Error("anna (support) got the sales group's skill")
	}
	// a leaver out of scope, and a deleted entry: both agents disabled
	ldapMembers(t, admin, groupDN("team-support"), nil, []string{"uid=quinn.adams,ou=people," + e2eSuffix})
	waitUntil(t, within, "quinn disabled", func() bool { a := agent("quinn.adams"); return a.ID != "" && !a.IsEnabled() })
	ldapDelete(t, admin, "uid=paul.richter,ou=people,"+e2eSuffix)
	waitUntil(t, within, "paul disabled", func() bool { a := agent("paul.richter"); return a.ID != "" && !a.IsEnabled() })
	if st := l.svc.live.Status(); st.FullRuns != 1 || st.People < 7 || st.Reconnects != 0 {
		t.Errorf("live status %+v: want one full run (the start), the people named, no reconnect", st)
	}

	// slapd restarts: the stream reconnects and reconciles everyone once
	s.Restart(t)
	waitUntil(t, 30*time.Second, "the reconnect", func() bool {
		st := l.svc.live.Status()
		return st.Reconnects >= 1 && st.Connected && st.FullRuns == 2
	})
	admin = ldapAdmin(t, s)
	ldapReplace(t, admin, "uid=david.okafor,ou=people,"+e2eSuffix, map[string][]string{"telephoneNumber": {"+49 30 5550004"}})
	waitUntil(t, within, "david's new number after the reconnect", func() bool { return agent("david.okafor").Number == "+49305550004" })

	// bridge stops; a change while it is down is applied once after the restart, from the
	// kept cookie (no full reconcile)
	l.stop()
	ldapReplace(t, admin, "uid=karl.fischer,ou=people,"+e2eSuffix, map[string][]string{"telephoneNumber": {"+49 30 5550011"}})
	l2 := startLiveServe(t, yaml, env, false)
	waitUntil(t, within, "karl's number after the restart", func() bool { return agent("karl.fischer").Number == "+49305550011" })
	serveWaitDrained(t, l2.svc.app.store, within)
	st := l2.svc.live.Status()
	if st.FullRuns != 0 || st.People != 1 {
		t.Errorf("after the restart: %+v, want karl alone named and no full reconcile", st)
	}
	if n := auditWrites(l2.logs.String(), "karl.fischer@example.com"); n != 1 {
		t.Errorf("%d writes about karl after the restart, want 1\n%s", n, l2.logs.String())
	}
	if n := auditWrites(l2.logs.String(), "anna.schmidt@example.com"); n != 0 {
		t.Errorf("%d writes about anna after the restart, want none (nothing changed)", n)
	}
}

// TestServeLiveOneReplicaFollows: two serves with sync.live share a PostgreSQL store; only
// the holder of the stream lock follows the stream. When its lock session is terminated
// (pg_terminate_backend), the other replica takes over and changes keep arriving.
func TestServeLiveOneReplicaFollows(t *testing.T) {
	testenv.Need(t, "slapd", "slapadd")
	people := e2ePeople()
	s := testenv.StartSlapd(t, testenv.SlapdOptions{SeedLDIF: e2eSeedLDIF(people), Syncprov: true})
	pg := testenv.StartPostgres(t)
	sim := babelforcetest.New(t, babelforcetest.Options{})
	dir := t.TempDir()
	yaml := e2eConfigYAML(s.URL, filepath.Join(dir, "state.json"), 10, 10, "  live: true\n") +
		"store:\n  path: " + pg.URL + "\n"
	yaml = strings.Replace(yaml, "level: warn", "level: info", 1)
	env := mergeEnv(babelforceSimEnv(sim), slapdEnv(s))
	agent := func(uid string) babelforce.Agent {
		a, _ := agentByEmail(sim, uid+"@example.com")
		return a
	}
	following := func(l *liveServe) bool { st := l.svc.live.Status(); return st.Following && st.Connected }
	standing := func(l *liveServe) bool {
		return !l.svc.live.Status().Following && strings.Contains(l.logs.String(), "another replica follows the change stream")
	}

	a := startLiveServe(t, yaml, env, false)
	waitUntil(t, 30*time.Second, "A follows", func() bool { return following(a) })
	b := startLiveServe(t, yaml, env, false)
	waitUntil(t, 30*time.Second, "B stands by", func() bool { return standing(b) })
	waitUntil(t, 30*time.Second, "the first full reconcile", func() bool { return agent("anna.schmidt").ID != "" })
	admin := ldapAdmin(t, s)
	ldapReplace(t, admin, "uid=anna.schmidt,ou=people,"+e2eSuffix, map[string][]string{"telephoneNumber": {"+49 30 5550001"}})
	waitUntil(t, 15*time.Second, "anna's new number", func() bool { return agent("anna.schmidt").Number == "+49305550001" })
	if st := b.svc.live.Status(); st.Following || st.Batches != 0 {
		t.Errorf("B followed the stream beside A: %+v", st)
	}
	// B's overview says it stands by and who holds the stream lock (both serves run in this
	// process, so both are named by its host and pid)
	facts := map[string]ui.Fact{}
	for _, f := range (uiBackend{b.svc}).Status(t.Context()).Facts {
		facts[f.Name] = f
	}
	if f := facts["Live changes"]; !strings.HasPrefix(f.Value, "another replica follows the stream, this one stands by") || f.Warn {
		t.Errorf("B's overview: live changes = %+v", f)
	}
	if f := facts["Stream lock"]; f.Value != "held by "+a.svc.app.store.Replica()+" (this replica)" || f.Warn {
		t.Errorf("B's overview: stream lock = %+v", f)
	}
	if _, ok := facts["Run lock"]; !ok {
		t.Errorf("B's overview names no run lock: %+v", facts)
	}

	// A's stream lock session dies: B takes over, A stands by
	db, err := sql.Open("pgx", pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// the stream lock's key (store.streamLockKey) is 0x6272696467650003: objid holds its low half
	var killed int
	if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND objid = x'67650003'::bigint`).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminate the stream lock session: %d sessions, %v", killed, err)
	}
	waitUntil(t, 30*time.Second, "B follows", func() bool { return following(b) })
	waitUntil(t, 30*time.Second, "A stands by", func() bool { return !a.svc.live.Status().Following })
	ldapReplace(t, admin, "uid=ben.mueller,ou=people,"+e2eSuffix, map[string][]string{"telephoneNumber": {"+49 30 5550002"}})
	waitUntil(t, 15*time.Second, "ben's new number through B", func() bool { return agent("ben.mueller").Number == "+49305550002" })
	if st := b.svc.live.Status(); st.Batches == 0 {
		t.Errorf("B follows but saw no change: %+v", st)
	}
	hs, err := b.svc.app.store.LockHolders(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.Name == store.LockStream && !h.Held {
			t.Errorf("stream lock row: %+v, want held", h)
		}
	}
	// /api/v1/status names this replica and the lock holders
	st := b.svc.status(t.Context())
	held := map[string]bool{}
	for _, h := range st.Locks {
		held[h.Name] = h.Held && h.Replica == st.Replica
	}
	if st.Replica == "" || !held[store.LockStream] {
		t.Errorf("status of B: replica %q, locks %+v; want the stream lock held by B", st.Replica, st.Locks)
	}
}
