package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/internal/testenv"
)

// BenchmarkLiveLatency measures how long a directory change takes to reach babelforce with
// sync.live: slapd with syncprov and BRIDGE_BENCH_USERS users (default 10,000), `bridge
// serve` (no schedule) provisioned once, then 50 changes made one by one with ldapmodify
// (phone numbers, skill group joins, leavers taken out of their team group), each timed from
// just before ldapmodify starts until the simulator shows it. It prints the latencies (p50,
// p95, max) and how many full reconciles ran meanwhile (0: every change went through a
// scoped run). It is a measurement, not a test: run it alone,
//
//	BRIDGE_BENCH_USERS=100000 go test -run '^$' -bench LiveLatency -benchtime 1x -timeout 60m ./cmd/bridge/
func BenchmarkLiveLatency(b *testing.B) {
	testenv.Need(b, "slapd", "slapadd", "ldapmodify")
	n := 10000
	if v := os.Getenv("BRIDGE_BENCH_USERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			b.Fatalf("BRIDGE_BENCH_USERS=%q: want a number of at least 100", v)
		}
	}
	const changes = 50
	start := time.Now()
	seed := benchSeed(n)
	s := testenv.StartSlapd(b, testenv.SlapdOptions{SeedLDIF: seed, Syncprov: true, SizeLimit: -1})
	b.Logf("slapd with %d users and syncprov up in %s", n, time.Since(start).Round(time.Millisecond))
	sim := babelforcetest.New(b, babelforcetest.Options{})
	dir := b.TempDir()
	yaml := e2eConfigYAML(s.URL, filepath.Join(dir, "state.json"), 10, 10, "  live: true\n") +
		"store:\n  path: " + filepath.Join(dir, "bridge.db") + "\n"
	yaml = strings.Replace(yaml, "page_size: 5", "page_size: 1000", 1)
	yaml = strings.Replace(yaml, "search_timeout: 20s", "search_timeout: 10m", 1)
	yaml = strings.Replace(yaml, "concurrency: 4", "concurrency: 16", 1)
	yaml = strings.Replace(yaml, "timeout: 10s", "timeout: 60s", 1)
	env := mergeEnv(babelforceSimEnv(sim), slapdEnv(s))

	t0 := time.Now()
	l := startLiveServe(b, yaml, env, false)
	defer l.stop()
	wait := func(limit time.Duration, what string, cond func() bool) {
		b.Helper()
		waitEvery(b, 2*time.Millisecond, limit, what, cond)
	}
	wait(30*time.Minute, "the first full reconcile", l.firstLiveRunDone)
	agents := sim.Agents()
	b.Logf("first full reconcile (no cookie yet) done in %s: %d agents", time.Since(t0).Round(time.Millisecond), len(agents))
	byEmail := make(map[string]string, len(agents))
	for _, a := range agents {
		byEmail[a.Email] = a.ID
	}
	agent := func(i int) babelforce.Agent {
		a, _ := sim.Agent(byEmail[benchUID(i)+"@example.com"])
		return a
	}
	wait(time.Minute, "the stream live", func() bool { return l.svc.live.Status().Connected })
	before := l.svc.live.Status()

	ldif := filepath.Join(dir, "change.ldif")
	modify := func(text string) {
		if err := os.WriteFile(ldif, []byte(text), 0o600); err != nil {
			b.Fatal(err)
		}
		bin, _ := testenv.LookPath("ldapmodify")
		out, err := exec.Command(bin, "-x", "-H", s.URL, "-D", s.AdminDN, "-w", s.AdminPassword, "-f", ldif).CombinedOutput()
		if err != nil {
			b.Fatalf("ldapmodify: %v\n%s", err, out)
		}
	}
	var lat []time.Duration
	kinds := map[string][]time.Duration{}
	writes := map[string][]time.Duration{} // until ldapmodify returned: the server's write
	for c := 0; c < changes; c++ {
		i := (c*(n/changes) + 7) % n // people spread over the directory
		dn := fmt.Sprintf("uid=%s,ou=people,%s", benchUID(i), e2eSuffix)
		if agent(i).ID == "" {
			b.Fatalf("%s has no agent", benchUID(i))
		}
		var kind string
		var done func() bool
		began := time.Now()
		switch c % 3 {
		case 0:
			kind = "phone"
			num := fmt.Sprintf("+49 30 77%06d", c)
			modify(fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: telephoneNumber\ntelephoneNumber: %s\n-\n", dn, num))
			want := strings.ReplaceAll(num, " ", "")
			done = func() bool { return agent(i).Number == want }
		case 1:
			kind = "join"
			modify(fmt.Sprintf("dn: %s\nchangetype: modify\nadd: member\nmember: %s\n-\n", groupDN("skill-dutch"), dn))
			done = func() bool { return slices.Contains(agent(i).Tags, "dutch") }
		case 2:
			kind = "leaver"
			modify(fmt.Sprintf("dn: %s\nchangetype: modify\ndelete: member\nmember: %s\n-\n", groupDN(benchTeam(i)), dn))
			done = func() bool { a := agent(i); return !a.IsEnabled() }
		}
		writes[kind] = append(writes[kind], time.Since(began))
		wait(time.Minute, fmt.Sprintf("change %d (%s of %s)", c, kind, benchUID(i)), done)
		d := time.Since(began)
		lat = append(lat, d)
		kinds[kind] = append(kinds[kind], d)
	}
	after := l.svc.live.Status()
	pct := func(ds []time.Duration, p float64) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[min(len(s)-1, int(float64(len(s))*p+0.5)-1)]
	}
	fmt.Printf("live latency, %d users, %d changes one by one with ldapmodify (syncrepl):\n", n, changes)
	fmt.Printf("  all     p50 %6s  p95 %6s  max %6s\n", pct(lat, .5).Round(time.Millisecond), pct(lat, .95).Round(time.Millisecond), slices.Max(lat).Round(time.Millisecond))
	for _, k := range []string{"phone", "join", "leaver"} {
		fmt.Printf("  %-7s p50 %6s  p95 %6s  max %6s  (%d; ldapmodify alone p50 %s)\n", k, pct(kinds[k], .5).Round(time.Millisecond),
			pct(kinds[k], .95).Round(time.Millisecond), slices.Max(kinds[k]).Round(time.Millisecond), len(kinds[k]), pct(writes[k], .5).Round(time.Millisecond))
	}
	fmt.Printf("  full reconciles during the changes: %d; people queued by the stream: %d\n", after.FullRuns-before.FullRuns, after.People-before.People)
	b.ReportMetric(float64(pct(lat, .95).Milliseconds()), "p95-ms")
	b.ReportMetric(float64(pct(lat, .5).Milliseconds()), "p50-ms")
}

func benchUID(i int) string { return fmt.Sprintf("user%06d", i) }

func benchTeam(i int) string {
	if i%2 == 0 {
		return "team-support"
	}
	return "team-sales"
}

// benchSeed is an organisation of n people in the e2e mapping's shape: every one in a team
// group (both nested in babelforce-agents), a third in skill-english, an empty skill-dutch.
func benchSeed(n int) string {
	var b strings.Builder
	b.Grow(n * 300)
	for _, ou := range []string{"people", "groups"} {
		fmt.Fprintf(&b, "dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n", ou, e2eSuffix, ou)
	}
	members := map[string][]string{}
	for i := 0; i < n; i++ {
		uid := benchUID(i)
		dn := fmt.Sprintf("uid=%s,ou=people,%s", uid, e2eSuffix)
		fmt.Fprintf(&b, "dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: User %d\ngivenName: User\nsn: %d\ndisplayName: User %d\nmail: %s@example.com\ntelephoneNumber: +49 30 1%07d\n\n",
			dn, uid, i, i, i, uid, i)
		members[benchTeam(i)] = append(members[benchTeam(i)], dn)
		if i%3 == 0 {
			members["skill-english"] = append(members["skill-english"], dn)
		}
	}
	group := func(name string, ms []string) {
		fmt.Fprintf(&b, "dn: %s\nobjectClass: groupOfNames\ncn: %s\n", groupDN(name), name)
		for _, m := range ms {
			fmt.Fprintf(&b, "member: %s\n", m)
		}
		b.WriteString("\n")
	}
	group("team-support", members["team-support"])
	group("team-sales", members["team-sales"])
	group("skill-english", members["skill-english"])
	group("skill-dutch", []string{"cn=nobody"}) // groupOfNames needs a member
	group("babelforce-agents", []string{groupDN("team-support"), groupDN("team-sales")})
	return b.String()
}

// BenchmarkLiveLatencyAD is BenchmarkLiveLatency against the Samba AD domain controller
// (DirSync polled every sync.live_poll, default 2 s): BRIDGE_BENCH_AD_USERS users (default
// 200) in a fresh OU, 20 changes one by one with ldapmodify (phone numbers, skill group
// joins, accounts disabled), each timed from just before ldapmodify until the simulator
// shows it.
//
//	go test -run '^$' -bench LiveLatencyAD -benchtime 1x -timeout 30m ./cmd/bridge/
func BenchmarkLiveLatencyAD(b *testing.B) {
	testenv.Need(b, "ldapmodify")
	n := 200
	if v := os.Getenv("BRIDGE_BENCH_AD_USERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 21 {
			b.Fatalf("BRIDGE_BENCH_AD_USERS=%q: want a number of at least 21", v)
		}
	}
	const changes = 20
	dc := testenv.StartSamba(b, testenv.SambaOptions{})
	base := dc.NewOU(b, "livebench")
	prefix := fmt.Sprintf("lb%d-", time.Now().UnixNano()%1e6)
	start := time.Now()
	dc.Add(b, testenv.ADSeed(base, prefix, testenv.OrgSeed{Users: n})+
		fmt.Sprintf("dn: CN=skill-dutch,OU=groups,%s\nobjectClass: group\nsAMAccountName: %sskill-dutch\n\n", base, prefix))
	b.Logf("samba: %d users added in %s", n, time.Since(start).Round(time.Millisecond))
	sim := babelforcetest.New(b, babelforcetest.Options{})
	dir := b.TempDir()
	poll := 2 * time.Second
	yaml := adLiveYAML(dc.LDAPSURL, dc, base, dir, poll)
	env := mergeEnv(babelforceSimEnv(sim), map[string]string{"BRIDGE_LDAP_BIND_PASSWORD": dc.BindPassword})
	l := startLiveServe(b, yaml, env, false)
	defer l.stop()
	wait := func(limit time.Duration, what string, cond func() bool) {
		b.Helper()
		waitEvery(b, 5*time.Millisecond, limit, what, cond)
	}
	wait(10*time.Minute, "the first full reconcile", l.firstLiveRunDone)
	wait(time.Minute, "the stream live", func() bool { return l.svc.live.Status().Connected })
	byEmail := map[string]string{}
	for _, a := range sim.Agents() {
		byEmail[a.Email] = a.ID
	}
	agent := func(i int) babelforce.Agent {
		a, _ := sim.Agent(byEmail[testenv.SeedUserName(i)+"@example.com"])
		return a
	}
	before := l.svc.live.Status()
	ldif := filepath.Join(dir, "change.ldif")
	modify := func(text string) {
		if err := os.WriteFile(ldif, []byte(text), 0o600); err != nil {
			b.Fatal(err)
		}
		bin, _ := testenv.LookPath("ldapmodify")
		cmd := exec.Command(bin, "-x", "-H", dc.LDAPSURL, "-D", dc.BindDN, "-w", dc.BindPassword, "-f", ldif)
		cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+dc.CAFile, "LDAPTLS_REQCERT=demand")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("ldapmodify: %v\n%s", err, out)
		}
	}
	var lat []time.Duration
	for c := 0; c < changes; c++ {
		i := 30 + c*((n-30)/changes) // clear of the seed's special users
		dn := fmt.Sprintf("CN=%s,OU=people,%s", testenv.SeedUserName(i), base)
		if agent(i).ID == "" {
			b.Fatalf("%s has no agent; runs: %+v\n%s", testenv.SeedUserName(i), l.svc.app.rec.Status(), l.logs.String())
		}
		var done func() bool
		began := time.Now()
		switch c % 3 {
		case 0:
			num := fmt.Sprintf("+49 30 77%06d", c)
			modify(fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: telephoneNumber\ntelephoneNumber: %s\n-\n", dn, num))
			want := strings.ReplaceAll(num, " ", "")
			done = func() bool { return agent(i).Number == want }
		case 1:
			modify(fmt.Sprintf("dn: CN=skill-dutch,OU=groups,%s\nchangetype: modify\nadd: member\nmember: %s\n-\n", base, dn))
			done = func() bool { return slices.Contains(agent(i).Tags, "dutch") }
		case 2:
			modify(fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n-\n", dn))
			done = func() bool { a := agent(i); return !a.IsEnabled() }
		}
		wait(time.Minute, fmt.Sprintf("change %d of %s", c, testenv.SeedUserName(i)), done)
		lat = append(lat, time.Since(began))
	}
	after := l.svc.live.Status()
	s := slices.Clone(lat)
	slices.Sort(s)
	p95 := s[min(len(s)-1, int(float64(len(s))*.95+0.5)-1)]
	fmt.Printf("live latency, Samba AD, %d users, %d changes one by one with ldapmodify (DirSync polled every %s):\n", n, changes, poll)
	fmt.Printf("  p50 %s  p95 %s  max %s\n", s[len(s)/2-1].Round(time.Millisecond), p95.Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
	fmt.Printf("  full reconciles during the changes: %d; people queued by the stream: %d\n", after.FullRuns-before.FullRuns, after.People-before.People)
	b.ReportMetric(float64(p95.Milliseconds()), "p95-ms")
}

// adLiveYAML is the configuration of a `bridge serve` with sync.live that reads the people
// and groups OUs of an ADSeed under base from the Samba DC dc at url (its LDAPS URL or a
// proxy's in front of it), polling DirSync every poll; state and store go to
// dir; logs are warnings, as text. The bind password comes from BRIDGE_LDAP_BIND_PASSWORD.
func adLiveYAML(url string, dc *testenv.Samba, base, dir string, poll time.Duration) string {
	return fmt.Sprintf(`babelforce:
  base_url: http://127.0.0.1:1
  username: nobody@example.com
  rate_limit: 0
  timeout: 60s
directory:
  type: ldap
  ldap:
    urls: [%q]
    ca_file: %q
    preset: active_directory
    bind_dn: %q
    user_base_dn: OU=people,%[4]s
    group_base_dn: OU=groups,%[4]s
mapping:
  agent_source: "bridge:bench-ad"
  phone: {invalid: omit}            # the seed's +1 555 01… numbers are fictional
  skills:
    - {match: "^skill-(.+)$", tag: "$1", lowercase: true}
  default_roles: [agent]
sync:
  state_file: %[5]q
  concurrency: 8
  live: true
  live_poll: %[6]s
store:
  path: %[7]q
log:
  level: warn
  format: text
`, url, dc.CAFile, dc.BindDN, base, filepath.Join(dir, "state.json"), poll, filepath.Join(dir, "bridge.db"))
}
