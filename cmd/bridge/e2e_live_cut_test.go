package main

// The connection between `bridge serve` and the directory breaks while it follows the change
// stream: a TCP proxy between them (cutProxy) closes every connection and then closes each new
// one at once, the server itself staying up, until it lets connections through again.

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/internal/testenv"
)

// liveCut is one directory behind a proxy for TestServeLiveReconnectsAfterTheConnectionIsCut.
type liveCut struct {
	proxy *cutProxy
	yaml  string
	env   map[string]string
	sim   *babelforcetest.Server
	// change changes one person at the server itself (not through the proxy); applied says
	// babelforce shows it; subject is that person's audit subject.
	change  func(t *testing.T)
	applied func() bool
	subject string
	// conns is how many connections the stream keeps open while live.
	conns int64
}

// TestServeLiveReconnectsAfterTheConnectionIsCut: syncrepl (slapd with syncprov) and DirSync
// (Samba AD), each behind a proxy. When the proxy cuts the connection the stream reports
// disconnected (status and /api/v1/status); reconnect attempts fail while the proxy refuses,
// backing off exponentially (1 s, then 2 s); once connections go through again the stream is
// live after exactly one full reconcile (not one per attempt), a change made at the server
// while bridge could not reach it reaches babelforce exactly once, with no other write, and
// the stream holds as many connections to the server as before.
func TestServeLiveReconnectsAfterTheConnectionIsCut(t *testing.T) {
	t.Run("syncrepl", func(t *testing.T) {
		testenv.Need(t, "slapd", "slapadd")
		people := e2ePeople()
		s := testenv.StartSlapd(t, testenv.SlapdOptions{SeedLDIF: e2eSeedLDIF(people), Syncprov: true})
		proxy := startCutProxy(t, hostPort(t, s.URL), 0)
		sim := babelforcetest.New(t, babelforcetest.Options{})
		dir := t.TempDir()
		yaml := e2eConfigYAML("ldap://"+proxy.Addr, filepath.Join(dir, "state.json"), 10, 10, "  live: true\n") +
			"store:\n  path: " + filepath.Join(dir, "bridge.db") + "\n"
		checkLiveCut(t, liveCut{
			proxy: proxy, sim: sim,
			yaml: strings.Replace(yaml, "level: warn", "level: info", 1),
			env:  mergeEnv(babelforceSimEnv(sim), slapdEnv(s)),
			change: func(t *testing.T) {
				ldapReplace(t, ldapAdmin(t, s), "uid=anna.schmidt,ou=people,"+e2eSuffix, map[string][]string{"telephoneNumber": {"+49 30 5550001"}})
			},
			applied: func() bool { a, _ := agentByEmail(sim, "anna.schmidt@example.com"); return a.Number == "+49305550001" },
			subject: "anna.schmidt@example.com",
			conns:   1, // the persistent search
		})
	})
	t.Run("dirsync", func(t *testing.T) {
		dc := testenv.StartSamba(t, testenv.SambaOptions{})
		base := dc.NewOU(t, "livecut")
		dc.Add(t, testenv.ADSeed(base, fmt.Sprintf("lc%d-", time.Now().UnixNano()%1e6), testenv.OrgSeed{Users: 21}))
		proxy := startCutProxy(t, hostPort(t, dc.LDAPSURL), 0)
		sim := babelforcetest.New(t, babelforcetest.Options{})
		// DirSync notices the cut at its next poll: poll often so the test does not wait
		yaml := adLiveYAML("ldaps://"+proxy.Addr, dc, base, t.TempDir(), 200*time.Millisecond)
		user := testenv.SeedUserName(5)
		checkLiveCut(t, liveCut{
			proxy: proxy, sim: sim,
			yaml: strings.Replace(yaml, "level: warn", "level: info", 1),
			env:  mergeEnv(babelforceSimEnv(sim), map[string]string{"BRIDGE_LDAP_BIND_PASSWORD": dc.BindPassword}),
			change: func(t *testing.T) {
				dc.Add(t, fmt.Sprintf("dn: CN=%s,OU=people,%s\nchangetype: modify\nreplace: telephoneNumber\ntelephoneNumber: +49 30 5550005\n-\n", user, base))
			},
			applied: func() bool { a, _ := agentByEmail(sim, user+"@example.com"); return a.Number == "+49305550005" },
			subject: user + "@example.com",
			conns:   2, // DirSync polls and the change notification search
		})
	})
}

func checkLiveCut(t *testing.T, c liveCut) {
	t.Helper()
	l := startLiveServe(t, c.yaml, c.env, false)
	// no cookie yet: the stream asks for one full reconcile, which provisions everyone
	waitUntil(t, 60*time.Second, "the stream live", func() bool { return l.svc.live.Status().Connected })
	waitUntil(t, 60*time.Second, "the first full reconcile", l.firstLiveRunDone)
	if c.applied() {
		t.Fatal("the change is in babelforce before it was made")
	}
	// once the runs are over, only the stream's connections stay open
	waitUntil(t, 30*time.Second, fmt.Sprintf("%d connections open", c.conns), func() bool { return c.proxy.Open() == c.conns })
	before := l.svc.live.Status()
	if before.FullRuns != 1 || before.Reconnects != 0 {
		t.Fatalf("before the cut: %+v, want one full reconcile and no reconnect", before)
	}
	mark := len(l.logs.String())

	c.proxy.cutAll()
	waitUntil(t, 30*time.Second, "the stream disconnected", func() bool {
		st := l.svc.live.Status()
		return !st.Connected && st.Reconnects >= 1
	})
	if st := l.svc.status(t.Context()); st.Live == nil || st.Live.Connected || !st.Live.Following || st.Live.LastError == "" {
		t.Errorf("/api/v1/status live while cut = %+v, want following, not connected, the error named", st.Live)
	}
	c.change(t)
	// the first reconnect attempt (after 1 s) fails too: the next waits twice as long
	waitUntil(t, 30*time.Second, "a second failed reconnect", func() bool { return l.svc.live.Status().Reconnects >= 2 })
	if c.applied() {
		t.Fatal("the change reached babelforce while the directory was unreachable")
	}
	c.proxy.restore()
	waitUntil(t, 30*time.Second, "the stream live again", func() bool { return l.svc.live.Status().Connected })
	waitUntil(t, 30*time.Second, "the change made while cut", c.applied)
	waitUntil(t, 30*time.Second, "the full reconcile after the reconnect", func() bool {
		n := 0
		for _, r := range l.svc.app.rec.Status() {
			if r.Trigger == "live" && len(r.Users) == 0 && !r.Finished.IsZero() {
				n++
			}
		}
		return n == 2 && !l.svc.app.rec.Busy()
	})
	serveWaitDrained(t, l.svc.app.store, 30*time.Second)
	// the stream live again holds as many connections as before the cut, no more
	waitUntil(t, 30*time.Second, fmt.Sprintf("%d connections open after the reconnect", c.conns), func() bool { return c.proxy.Open() == c.conns })

	after := l.svc.live.Status()
	if after.Reconnects != 2 || after.FullRuns != before.FullRuns+1 || !after.Connected {
		t.Errorf("after the reconnect: %+v, want 2 reconnects and one more full reconcile", after)
	}
	logs := l.logs.String()[mark:]
	var backoffs []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "change stream lost") {
			_, b, _ := strings.Cut(line, "backoff=")
			b, _, _ = strings.Cut(b, " ")
			backoffs = append(backoffs, b)
		}
	}
	if strings.Join(backoffs, " ") != "1s 2s" {
		t.Errorf("backoffs %q, want 1s then 2s\n%s", backoffs, logs)
	}
	if n := auditWrites(logs, c.subject); n != 1 {
		t.Errorf("%d writes about %s, want 1\n%s", n, c.subject, logs)
	}
	if n := strings.Count(logs, "babelforce write"); n != 1 {
		t.Errorf("%d writes to babelforce since the cut, want 1 (the change)\n%s", n, logs)
	}
}
