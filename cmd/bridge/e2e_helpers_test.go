package main

// Shared helpers for tests that drive the bridge CLI end to end (run → real servers): run the
// CLI in-process with its own environment, write configuration files, talk to a test slapd as
// its admin, and cut an LDAP connection half-way with a TCP proxy. Other *_test.go files of this
// package may use them.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/internal/testenv"
)

// cliTimeout bounds one in-process CLI invocation of a test.
const cliTimeout = 2 * time.Minute

// cliEnvFor returns a cliEnv whose environment is exactly vars (the test process's own
// environment is not visible to it, so a developer's BRIDGE_* variables cannot leak in) and
// its two streams, which the command and the test may use at once.
func cliEnvFor(vars map[string]string) (env *cliEnv, stdout, stderr *lockedBuffer) {
	vars = maps.Clone(vars)
	stdout, stderr = &lockedBuffer{}, &lockedBuffer{}
	return &cliEnv{
		stdout: stdout,
		stderr: stderr,
		getenv: func(k string) string { return vars[k] },
		lookupEnv: func(k string) (string, bool) {
			v, ok := vars[k]
			return v, ok
		},
	}, stdout, stderr
}

// runCLI runs `bridge args...` in-process to completion with exactly env as its environment
// (see cliEnvFor) and returns what it wrote to stdout and stderr and its exit code.
func runCLI(t testing.TB, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	return runCLIContext(ctx, env, args...)
}

// runCLIContext is runCLI under the caller's context (for runs a test cancels or runs in a
// goroutine). It is safe to call from any goroutine.
func runCLIContext(ctx context.Context, env map[string]string, args ...string) (stdout, stderr string, code int) {
	e, out, errOut := cliEnvFor(env)
	code = run(ctx, e, args)
	return out.String(), errOut.String(), code
}

// bgCLI is a bridge command (serve, demo, simulate) running in-process in the background
// until the test ends or stop is called.
type bgCLI struct {
	t              testing.TB
	args           []string
	stdout, stderr *lockedBuffer
	cancel         context.CancelFunc
	exited         chan int
	stopped        bool
	code           int
}

// startCLI starts `bridge args...` in the background with exactly env as its environment
// (see cliEnvFor); it is stopped when the test ends.
func startCLI(t testing.TB, env map[string]string, args ...string) *bgCLI {
	t.Helper()
	e, out, errOut := cliEnvFor(env)
	ctx, cancel := context.WithCancel(context.Background())
	c := &bgCLI{t: t, args: args, stdout: out, stderr: errOut, cancel: cancel, exited: make(chan int, 1)}
	go func() { c.exited <- run(ctx, e, args) }()
	t.Cleanup(func() { c.stop() })
	return c
}

// waitFor polls stream (c.stdout or c.stderr) until re matches it and returns the match and
// its submatches. It fails the test when the command exits first or nothing matches within
// timeout (the command's start-up: a server that listens, a run at start).
func (c *bgCLI) waitFor(stream *lockedBuffer, re *regexp.Regexp, timeout time.Duration) []string {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := re.FindStringSubmatch(stream.String()); m != nil {
			return m
		}
		select {
		case code := <-c.exited:
			c.stopped, c.code = true, code
			c.t.Fatalf("bridge %s exited with %d before printing %s\nstdout:\n%s\nstderr:\n%s", strings.Join(c.args, " "), code, re, c.stdout, c.stderr)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("bridge %s printed nothing matching %s in %s\nstdout:\n%s\nstderr:\n%s", strings.Join(c.args, " "), re, timeout, c.stdout, c.stderr)
		}
	}
}

// stop cancels the command's context (what SIGTERM does through signal.NotifyContext) and
// returns its exit code; the test fails when the command has not returned 30s later.
func (c *bgCLI) stop() int {
	c.cancel()
	if !c.stopped {
		c.stopped = true
		select {
		case c.code = <-c.exited:
		case <-time.After(30 * time.Second):
			c.t.Fatalf("bridge %s did not stop 30s after cancellation", strings.Join(c.args, " "))
		}
	}
	return c.code
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers and readers (a running command's
// streams, loggers of concurrent writes).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// writeConfig writes a configuration file into a fresh temporary directory and returns its path.
func writeConfig(t testing.TB, yaml string) string {
	t.Helper()
	return writeTempFile(t, "bridge.yaml", yaml)
}

// writeTempFile writes content to name in a fresh temporary directory and returns its path.
func writeTempFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	return p
}

// mergeEnv returns the union of the maps; later maps win.
func mergeEnv(envs ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, e := range envs {
		maps.Copy(out, e)
	}
	return out
}

// babelforceSimEnv is the environment that points bridge's babelforce section at a simulator
// (base URL, username and the password, which never lives in a config file).
func babelforceSimEnv(sim *babelforcetest.Server) map[string]string {
	return map[string]string{
		"BRIDGE_BABELFORCE_BASE_URL": sim.URL,
		"BRIDGE_BABELFORCE_USERNAME": sim.Username,
		"BRIDGE_BABELFORCE_PASSWORD": sim.Password,
	}
}

// slapdEnv is the environment that binds bridge's LDAP source as the slapd's reader user.
// (The URL goes into the YAML: see ldapYAML.)
func slapdEnv(s *testenv.Slapd) map[string]string {
	return map[string]string{
		"BRIDGE_LDAP_BIND_DN":       s.BindDN,
		"BRIDGE_LDAP_BIND_PASSWORD": s.BindPassword,
	}
}

// ldapAdmin returns a connection to the slapd bound as its rootdn, for changing the directory
// in a test; it is closed when the test ends.
func ldapAdmin(t testing.TB, s *testenv.Slapd) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatalf("dial slapd %s: %v", s.URL, err)
	}
	if err := c.Bind(s.AdminDN, s.AdminPassword); err != nil {
		c.Close()
		t.Fatalf("bind slapd as %s: %v", s.AdminDN, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ldapReplace replaces attributes of one entry (attribute → new values) as the slapd's admin.
func ldapReplace(t testing.TB, c *ldap.Conn, dn string, attrs map[string][]string) {
	t.Helper()
	req := ldap.NewModifyRequest(dn, nil)
	for a, vs := range attrs {
		req.Replace(a, vs)
	}
	if err := c.Modify(req); err != nil {
		t.Fatalf("ldap modify %s: %v", dn, err)
	}
}

// ldapMembers adds and removes member values of a groupOfNames.
func ldapMembers(t testing.TB, c *ldap.Conn, groupDN string, add, del []string) {
	t.Helper()
	req := ldap.NewModifyRequest(groupDN, nil)
	if len(add) > 0 {
		req.Add("member", add)
	}
	if len(del) > 0 {
		req.Delete("member", del)
	}
	if err := c.Modify(req); err != nil {
		t.Fatalf("ldap modify members of %s: %v", groupDN, err)
	}
}

// ldapAdd adds one entry (attribute → values) as the slapd's admin.
func ldapAdd(t testing.TB, c *ldap.Conn, dn string, attrs map[string][]string) {
	t.Helper()
	req := ldap.NewAddRequest(dn, nil)
	for _, a := range slices.Sorted(maps.Keys(attrs)) {
		req.Attribute(a, attrs[a])
	}
	if err := c.Add(req); err != nil {
		t.Fatalf("ldap add %s: %v", dn, err)
	}
}

// ldapDelete deletes entries as the slapd's admin.
func ldapDelete(t testing.TB, c *ldap.Conn, dns ...string) {
	t.Helper()
	for _, dn := range dns {
		if err := c.Del(ldap.NewDelRequest(dn, nil)); err != nil {
			t.Fatalf("ldap delete %s: %v", dn, err)
		}
	}
}

// cutProxy is a TCP proxy on loopback in front of a server. It counts the bytes the server
// sends to clients; once that count would pass its limit (when positive) it forwards only up
// to the limit and then closes every connection, and from then on closes each new connection
// at once: a server that goes away in the middle of an answer and stays away.
type cutProxy struct {
	Addr   string // 127.0.0.1:PORT
	target string
	limit  int64

	served atomic.Int64
	open   atomic.Int64 // connections through the proxy not closed yet
	cut    atomic.Bool
	ln     net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

// startCutProxy starts a proxy to target (host:port); limit <= 0 never cuts. It is stopped when
// the test ends.
func startCutProxy(t testing.TB, target string, limit int64) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &cutProxy{Addr: ln.Addr().String(), target: target, limit: limit, ln: ln}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Served is the number of bytes forwarded from the server to clients so far.
func (p *cutProxy) Served() int64 { return p.served.Load() }

// Open is the number of connections through the proxy that neither side has closed yet.
func (p *cutProxy) Open() int64 { return p.open.Load() }

// Cut reports whether the proxy has cut the connections.
func (p *cutProxy) Cut() bool { return p.cut.Load() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.cut.Load() {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.track(c, up)
		p.open.Add(1)
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); _ = up.Close() }()
		go func() { defer p.wg.Done(); defer p.open.Add(-1); p.down(c, up) }()
	}
}

func (p *cutProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, cs...)
}

// down copies server → client, counting, and cuts at the limit.
func (p *cutProxy) down(client, server net.Conn) {
	defer client.Close()
	buf := make([]byte, 512)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			before := p.served.Add(int64(n)) - int64(n)
			if p.limit > 0 && before+int64(n) > p.limit {
				keep := max(p.limit-before, 0)
				p.served.Store(p.limit)
				_, _ = client.Write(chunk[:keep])
				p.cutAll()
				return
			}
			if _, werr := client.Write(chunk); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *cutProxy) cutAll() {
	p.cut.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

// restore lets new connections through again after a cut (the server is reachable again);
// the connections cut stay closed.
func (p *cutProxy) restore() {
	p.mu.Lock()
	p.conns = nil
	p.mu.Unlock()
	p.cut.Store(false)
}

func (p *cutProxy) close() {
	_ = p.ln.Close()
	p.cutAll()
	p.wg.Wait()
}

// hostPort returns the host:port of an ldap:// or ldaps:// URL.
func hostPort(t testing.TB, rawURL string) string {
	t.Helper()
	hp, ok := strings.CutPrefix(rawURL, "ldap://")
	if !ok {
		hp, ok = strings.CutPrefix(rawURL, "ldaps://")
	}
	if !ok {
		t.Fatalf("not an ldap:// or ldaps:// URL: %q", rawURL)
	}
	return strings.TrimSuffix(hp, "/")
}

// writesOf returns the calls counted by the simulator whose endpoint is not a read (GET) and not
// the token endpoint, for failure messages and exact write assertions.
func writesOf(calls map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range calls {
		if strings.HasPrefix(k, "GET ") || strings.Contains(k, "/oauth/") || strings.Contains(k, "/_simulator/") {
			continue
		}
		out[k] = v
	}
	return out
}

// errNoLine is returned by lineWith when no line of the text contains every part.
var errNoLine = errors.New("no such line")

// lineWith returns the first line of text that contains every part.
func lineWith(text string, parts ...string) (string, error) {
	for _, line := range strings.Split(text, "\n") {
		ok := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				ok = false
				break
			}
		}
		if ok {
			return line, nil
		}
	}
	return "", fmt.Errorf("%w containing %q", errNoLine, parts)
}
