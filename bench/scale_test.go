//go:build scale

package bench

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/internal/testenv"
)

var (
	people   = flag.Int("n", 10000, "number of people in the generated directory")
	memLimit = flag.String("bridge-gomemlimit", "", "GOMEMLIMIT of the bridge runs (e.g. 250MiB); the simulator is not limited")
	rate     = flag.Float64("rate-limit", 0, "babelforce.rate_limit of the bridge runs (requests per second; 0: none); the table then says how close the first sync came to calls / rate")
)

const suffix = "dc=example,dc=com"

// seedLDIF writes the generated directory.
func seedLDIF(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, "dn: ou=people,%[1]s\nobjectClass: organizationalUnit\nou: people\n\ndn: ou=groups,%[1]s\nobjectClass: organizationalUnit\nou: groups\n\n", suffix)
	dn := func(i int) string { return fmt.Sprintf("uid=u%07d,ou=people,%s", i, suffix) }
	for i := range n {
		phone := fmt.Sprintf("+49 30 %08d", i)
		if i%3 == 0 {
			phone = fmt.Sprintf("030 %08d", i) // national format: normalised with default_region DE
		}
		fmt.Fprintf(w, "dn: %s\nobjectClass: inetOrgPerson\nuid: u%07d\ncn: Person %d\nsn: %d\ngivenName: Person\ndisplayName: Person %d\nmail: u%07d@example.com\ntelephoneNumber: %s\n\n",
			dn(i), i, i, i, i, i, phone)
	}
	group := func(name string, members []string) {
		fmt.Fprintf(w, "dn: cn=%s,ou=groups,%s\nobjectClass: groupOfNames\ncn: %s\n", name, suffix, name)
		for _, m := range members {
			fmt.Fprintf(w, "member: %s\n", m)
		}
		w.WriteString("\n")
	}
	all := make([]string, n)
	for i := range n {
		all[i] = dn(i)
	}
	group("everyone", all)
	byMod := func(mod, r int, every int) []string {
		var out []string
		for i := r; i < n; i += mod {
			if every <= 1 || (i/mod)%every == 0 {
				out = append(out, dn(i))
			}
		}
		return out
	}
	for t := range 100 {
		group(fmt.Sprintf("team-%02d", t), byMod(100, t, 1)) // everyone is in one team
	}
	for s := range 50 {
		group(fmt.Sprintf("skill-%02d", s), byMod(50, s, 2)) // half of the people have a skill
	}
	misc := max(n*2/100-151-2, 1)
	for g := range misc {
		var m []string
		for i := g; i < n; i += misc {
			if (i/misc)%2 == 1 { // the other half is in a misc group
				m = append(m, dn(i))
			}
		}
		if len(m) == 0 {
			m = []string{dn(g % n)}
		}
		group(fmt.Sprintf("misc-%05d", g), m)
	}
	group("cycle-a", []string{"cn=cycle-b,ou=groups," + suffix, dn(0)})
	group("cycle-b", []string{"cn=cycle-a,ou=groups," + suffix, dn(1)})
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

const configYAML = `babelforce:
  base_url: %[1]q
  username: %[2]q
  rate_limit: %[6]g
  max_concurrency: 8
  page_size: 100
  timeout: 60s
directory:
  type: ldap
  ldap:
    urls: [%[3]q]
    preset: openldap
    user_base_dn: ou=people,%[4]s
    group_base_dn: ou=groups,%[4]s
    page_size: 500
    search_timeout: 10m
mapping:
  agent_source: "bridge:scale"
  scope:
    include_groups: [everyone]
  phone:
    default_region: DE
  skills:
    - {match: "^skill-(.+)$", tag: "$1", lowercase: true}
  agent_groups:
    - {match: "^team-(.+)$", agent_group: "$1"}
  default_roles: [agent]
sync:
  state_file: %[5]q
  concurrency: 8
  guard:
    max_destructive: 10
    max_destructive_percent: 10
log:
  level: error
  format: text
`

// measurement is one row of the table.
type measurement struct {
	name           string
	wall, cpu      time.Duration
	rssKB          int64
	calls          map[string]int
	writes, people int
}

var timeRE = map[string]*regexp.Regexp{
	"user":  regexp.MustCompile(`User time \(seconds\): ([0-9.]+)`),
	"sys":   regexp.MustCompile(`System time \(seconds\): ([0-9.]+)`),
	"rss":   regexp.MustCompile(`Maximum resident set size \(kbytes\): ([0-9]+)`),
	"wall":  regexp.MustCompile(`Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([0-9:.]+)`),
	"exitc": regexp.MustCompile(`Exit status: ([0-9]+)`),
}

// timed runs a command under /usr/bin/time -v and returns its measurement and stdout.
func timed(t *testing.T, name string, env []string, args ...string) (measurement, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command("/usr/bin/time", append([]string{"-v"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	m := measurement{name: name}
	s := errb.String()
	sec := func(k string) time.Duration {
		if x := timeRE[k].FindStringSubmatch(s); x != nil {
			f, _ := strconv.ParseFloat(x[1], 64)
			return time.Duration(f * float64(time.Second))
		}
		return 0
	}
	m.cpu = sec("user") + sec("sys")
	if x := timeRE["rss"].FindStringSubmatch(s); x != nil {
		m.rssKB, _ = strconv.ParseInt(x[1], 10, 64)
	}
	if x := timeRE["wall"].FindStringSubmatch(s); x != nil {
		var d time.Duration
		for _, p := range strings.Split(x[1], ":") {
			f, _ := strconv.ParseFloat(p, 64)
			d = d*60 + time.Duration(f*float64(time.Second))
		}
		m.wall = d
	}
	if err != nil {
		t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", name, err, tail(out.String()), tail(s))
	}
	return m, out.String()
}

func tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}

func TestScale(t *testing.T) {
	bin := os.Getenv("BRIDGE_BIN")
	if bin == "" {
		t.Fatal("BRIDGE_BIN must name a bridge binary (bench/scale.sh builds one)")
	}
	n := *people
	dir := t.TempDir()
	ldif := filepath.Join(dir, "seed.ldif")
	start := time.Now()
	if err := seedLDIF(ldif, n); err != nil {
		t.Fatal(err)
	}
	slapd := testenv.StartSlapd(t, testenv.SlapdOptions{SeedLDIF: ldif})
	t.Logf("directory of %d people generated and loaded in %s", n, time.Since(start).Round(time.Millisecond))

	// anchor A: ldapsearch, users then groups with their members, paged
	anchorA := measurement{name: "anchor A: ldapsearch users + groups' members (paged)"}
	for _, q := range [][]string{
		{"-b", "ou=people," + suffix, "(objectClass=inetOrgPerson)", "uid", "cn", "displayName", "mail", "telephoneNumber", "entryUUID"},
		{"-b", "ou=groups," + suffix, "(objectClass=groupOfNames)", "cn", "member", "entryUUID"},
	} {
		args := append([]string{"ldapsearch", "-x", "-LLL", "-H", slapd.URL, "-D", slapd.BindDN, "-w", slapd.BindPassword, "-E", "pr=500/noprompt"}, q...)
		m, out := timed(t, "ldapsearch", nil, args...)
		anchorA.wall += m.wall
		anchorA.cpu += m.cpu
		anchorA.rssKB = max(anchorA.rssKB, m.rssKB)
		if q[1] == "ou=people,"+suffix {
			if got := strings.Count(out, "\ndn: ") + 1; got < n {
				t.Fatalf("ldapsearch read %d people, want %d", got, n)
			}
		}
	}

	// anchor A′: the same read through go-ldap, as its own process (this test binary again)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	anchorGo, out := timed(t, "anchor A′: the same read through go-ldap (two connections, entries dropped)",
		[]string{ldapReadEnv + "=" + strings.Join([]string{slapd.URL, slapd.BindDN, slapd.BindPassword}, "\n")}, self)
	if got := strings.Fields(out); len(got) != 2 || got[0] != strconv.Itoa(n) {
		t.Fatalf("anchor A′ read %q, want %d people", out, n)
	}

	sim := babelforcetest.New(t, babelforcetest.Options{})
	state := filepath.Join(dir, "state.json")
	cfg := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, configYAML, sim.URL, sim.Username, slapd.URL, suffix, state, *rate), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"BRIDGE_BABELFORCE_PASSWORD=" + sim.Password, "BRIDGE_LDAP_BIND_DN=" + slapd.BindDN, "BRIDGE_LDAP_BIND_PASSWORD=" + slapd.BindPassword}
	if *memLimit != "" {
		env = append(env, "GOMEMLIMIT="+*memLimit)
	}
	run := func(name string, args ...string) measurement {
		t.Helper()
		sim.ResetCalls()
		m, _ := timed(t, name, env, append([]string{bin}, args...)...)
		m.calls = sim.Calls()
		m.writes = sim.WriteCalls()
		return m
	}

	var rows []measurement
	first := run("bridge sync (first: creates everyone)", "sync", "--config", cfg)
	first.people = n
	if got := len(sim.Agents()); got != n {
		t.Errorf("first sync: %d agents, want %d", got, n)
	}

	// anchor B: a paged GET of every agent
	client, err := babelforce.New(babelforce.Config{BaseURL: sim.URL, Username: sim.Username, Password: sim.Password, PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	sim.ResetCalls()
	startB := time.Now()
	agents, err := client.ListAgents(context.Background(), babelforce.AgentFilter{})
	if err != nil || len(agents) != n {
		t.Fatalf("anchor B: %d agents, %v", len(agents), err)
	}
	anchorB := measurement{name: "anchor B: paged GET of all agents (simulator)", wall: time.Since(startB), calls: sim.Calls()}
	agents = nil

	noopPlan := run("bridge plan (no-op)", "plan", "--config", cfg)
	noopSync := run("bridge sync (no-op)", "sync", "--config", cfg)
	if noopSync.writes != 0 {
		t.Errorf("no-op sync made %d writes: %v", noopSync.writes, noopSync.calls)
	}

	// 100 changed people: a new telephone number each
	conn, err := ldap.DialURL(slapd.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Bind(slapd.AdminDN, slapd.AdminPassword); err != nil {
		t.Fatal(err)
	}
	changed := min(100, n)
	for i := range changed {
		mod := ldap.NewModifyRequest(fmt.Sprintf("uid=u%07d,ou=people,%s", i*(n/changed), suffix), nil)
		mod.Replace("telephoneNumber", []string{fmt.Sprintf("+49 40 %08d", i)})
		if err := conn.Modify(mod); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	hundred := run(fmt.Sprintf("bridge sync (%d changed people)", changed), "sync", "--config", cfg)
	hundred.people = changed
	if hundred.writes != changed {
		t.Errorf("%d changed people: %d writes, want %d: %v", changed, hundred.writes, changed, hundred.calls)
	}
	rows = append(rows, anchorA, anchorGo, anchorB, first, noopPlan, noopSync, hundred)

	// the table
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d people, %d groups (machine: %d CPUs; bridge GOMEMLIMIT %q, rate_limit %g)\n\n", n, n*2/100, runtime.NumCPU(), *memLimit, *rate)
	b.WriteString("| run | wall | CPU | peak RSS | calls (writes) |\n|---|---|---|---|---|\n")
	for _, m := range rows {
		rss := "–"
		if m.rssKB > 0 {
			rss = fmt.Sprintf("%d MB", m.rssKB/1024)
		}
		cpu := "–"
		if m.cpu > 0 {
			cpu = m.cpu.Round(10 * time.Millisecond).String()
		}
		total := 0
		for _, v := range m.calls {
			total += v
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d (%d) |\n", m.name, m.wall.Round(10*time.Millisecond), cpu, rss, total, m.writes)
	}
	ab := anchorA.wall + anchorB.wall
	fmt.Fprintf(&b, "\nno-op plan / (A + B) = %.2f; no-op plan peak RSS per person = %.1f KB\n",
		float64(noopPlan.wall)/float64(ab), float64(noopPlan.rssKB)*1024/float64(n)/1000)
	fmt.Fprintf(&b, "A′ / (A + B) = %.2f (go-ldap's read alone); no-op plan / (A′ + B) = %.2f\n",
		float64(anchorGo.wall)/float64(ab), float64(noopPlan.wall)/float64(anchorGo.wall+anchorB.wall))
	fmt.Fprintf(&b, "first sync: %.2f write calls per new person, %.2f ms wall per person\n",
		float64(first.writes)/float64(n), float64(first.wall.Milliseconds())/float64(n))
	if *rate > 0 {
		total := 0
		for _, v := range first.calls {
			total += v
		}
		floor := time.Duration(float64(total) / *rate * float64(time.Second))
		fmt.Fprintf(&b, "rate_limit %g/s: the first sync made %d calls (%d writes) in %s; calls / rate = %s; ratio %.2f\n",
			*rate, total, first.writes, first.wall.Round(10*time.Millisecond), floor.Round(10*time.Millisecond), float64(first.wall)/float64(floor))
	}
	b.WriteString("\ncalls by kind:\n")
	for _, m := range []measurement{first, noopPlan, hundred} {
		keys := make([]string, 0, len(m.calls))
		for k := range m.calls {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintf(&b, "  %s:", m.name)
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%d;", k, m.calls[k])
		}
		b.WriteString("\n")
	}
	fmt.Print(b.String())
}

// ldapReadEnv makes this test binary read the directory through go-ldap and exit (anchor A′):
// its value is the slapd URL, bind DN and password, one a line.
const ldapReadEnv = "BRIDGE_BENCH_LDAP_READ"

func TestMain(m *testing.M) {
	if v := os.Getenv(ldapReadEnv); v != "" {
		os.Exit(ldapRead(strings.Split(v, "\n")))
	}
	os.Exit(m.Run())
}

// ldapRead reads the users and the groups' members paged (500) through go-ldap on two
// connections at once, as bridge does, drops every entry, and prints how many of each it read.
func ldapRead(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, ldapReadEnv+": want URL, bind DN and password")
		return 2
	}
	queries := []struct {
		base, filter string
		attrs        []string
	}{
		{"ou=people," + suffix, "(objectClass=inetOrgPerson)", []string{"uid", "cn", "displayName", "mail", "telephoneNumber", "entryUUID"}},
		{"ou=groups," + suffix, "(objectClass=groupOfNames)", []string{"cn", "member", "entryUUID"}},
	}
	counts := make([]int, len(queries))
	errs := make([]error, len(queries))
	var wg sync.WaitGroup
	for i, q := range queries {
		wg.Go(func() {
			c, err := ldap.DialURL(args[0])
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			if errs[i] = c.Bind(args[1], args[2]); errs[i] != nil {
				return
			}
			paging := ldap.NewControlPaging(500)
			req := ldap.NewSearchRequest(q.base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, q.filter, q.attrs, []ldap.Control{paging})
			for {
				res, err := c.Search(req)
				if err != nil {
					errs[i] = err
					return
				}
				counts[i] += len(res.Entries)
				pc, _ := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
				if pc == nil || len(pc.Cookie) == 0 {
					return
				}
				paging.SetCookie(pc.Cookie)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, "anchor A′:", err)
			return 1
		}
	}
	fmt.Println(counts[0], counts[1])
	return 0
}
