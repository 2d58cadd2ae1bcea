package main

// End-to-end tests of `bridge serve` (the acceptance checks of issue 5): the service is built
// in process from a YAML configuration exactly as the CLI builds it, serves on a loopback
// listener, and talks to the babelforce simulator over HTTP. IdP pushes are the recorded Okta
// and Entra ID sequences of testdata/scim.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/directory/store"
	"github.com/babelforce/bridge/internal/scimreplay"
	"github.com/babelforce/bridge/internal/testenv"
)

const (
	serveAgentSource = "bridge:e2e"
	serveSCIMError   = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// serveOptions vary the service a test starts.
type serveOptions struct {
	sim      *babelforcetest.Server // nil: a new simulator
	dir      string                 // store and state directory; "": a new temporary one
	schedule bool                   // run the scheduler (a run at start, then every hour)
	// maxAttempts of babelforce calls (default 1: a fault fails fast instead of retrying).
	maxAttempts int
	// oidcIssuer/oidcAudience configure JWT bearer tokens on the inbound SCIM endpoint.
	oidcIssuer, oidcAudience string
	concurrency              int               // sync.concurrency (default 4)
	password                 string            // the babelforce password bridge uses ("": the simulator's)
	env                      map[string]string // extra environment (BRIDGE_* overrides)
	// storeURL, when set, is the store given the way the documentation says for PostgreSQL:
	// the YAML has no store path, BRIDGE_STORE_PATH holds the URL (with its password, which
	// must never show in the logs), and the service must be ready (/readyz) once started.
	storeURL string
	// ln, when set, is the listener to serve on (a test that must know the address first).
	ln net.Listener
}

// serveInstance is one running `bridge serve`.
type serveInstance struct {
	t                          *testing.T
	sim                        *babelforcetest.Server
	dir                        string
	base                       string // http://127.0.0.1:port
	scimToken, adminToken, pwd string
	logs                       *lockedBuffer
	svc                        *service
	cancel                     context.CancelFunc
	done                       chan error
	stopOnce                   sync.Once
	stopErr                    error
	// moreSecrets must not appear in the logs either (e.g. a JWT a test sent).
	moreSecrets []string
	// storePath is the store's file or URL.
	storePath string
}

// serveSecret returns a random secret that cannot occur in logs by accident.
func serveSecret(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + "-" + base64.RawURLEncoding.EncodeToString(b)
}

// serveNewSim starts a simulator whose password is a random secret (so that the tests can
// look for it in the logs).
func serveNewSim(t *testing.T) *babelforcetest.Server {
	return babelforcetest.New(t, babelforcetest.Options{Password: serveSecret("bfpw"), Seed: 1})
}

const serveConfigTemplate = `
babelforce:
  base_url: %[1]s
  username: %[2]s
  max_attempts: %[3]d
  max_retry_time: 5s
  timeout: 10s
directory:
  type: scim_push
mapping:
  agent_source: %[4]q
  phone:
    default_region: DE
    invalid: omit
  skills:
    - {match: "^skill-(.+)$", tag: "$1", lowercase: true}
    - {group: "Night Shift", tags: [night]}
  agent_groups:
    - {match: "^team-(.+)$", agent_group: "$1"}
    - {match: "^Support Tier (.+)$", agent_group: "Tier $1"}
    - {match: "^Contoso (.+)$", agent_group: "Contoso $1"}
  roles:
    - {group: cc-supervisors, roles: [supervisor, reporter]}
  default_roles: [agent]
sync:
  interval: 1h
  jitter: 0
  concurrency: %[5]d
  state_file: %[6]s
inbound_scim:
  enabled: true
  oidc:
    issuer: %[7]q
    audience: %[8]q
    client_ids: [%[8]q]
store:
  path: %[9]s
server:
  listen: 127.0.0.1:0
  shutdown_timeout: 20s
log:
  level: debug
  format: json
`

// serveStart builds the service from a YAML configuration as `bridge serve` does and serves
// it on a 127.0.0.1 listener until the test ends (or stop is called).
func serveStart(t *testing.T, o serveOptions) *serveInstance {
	t.Helper()
	if o.sim == nil {
		o.sim = serveNewSim(t)
	}
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	if o.maxAttempts == 0 {
		o.maxAttempts = 1
	}
	if o.concurrency == 0 {
		o.concurrency = 4
	}
	if o.password == "" {
		o.password = o.sim.Password
	}
	s := &serveInstance{
		t: t, sim: o.sim, dir: o.dir, logs: &lockedBuffer{},
		scimToken: serveSecret("scimtok"), adminToken: serveSecret("admintok"), pwd: o.password,
		done: make(chan error, 1),
	}
	storePath := filepath.Join(o.dir, "bridge.db")
	s.storePath = storePath
	env := map[string]string{
		"BRIDGE_BABELFORCE_PASSWORD": o.password,
		"BRIDGE_INBOUND_SCIM_TOKENS": s.scimToken,
		"BRIDGE_SERVER_ADMIN_TOKEN":  s.adminToken,
	}
	if o.storeURL != "" {
		storePath = `""`
		s.storePath = o.storeURL
		env["BRIDGE_STORE_PATH"] = o.storeURL
		if u, err := url.Parse(o.storeURL); err == nil {
			if pw, ok := u.User.Password(); ok {
				s.moreSecrets = append(s.moreSecrets, pw)
			}
		}
	}
	raw := fmt.Sprintf(serveConfigTemplate, o.sim.URL, o.sim.Username, o.maxAttempts, serveAgentSource,
		o.concurrency, filepath.Join(o.dir, "state.json"), o.oidcIssuer, o.oidcAudience, storePath)
	maps.Copy(env, o.env)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	cfg, err := parseConfig(ctx, []byte(raw), "e2e.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, true)
	if err != nil {
		cancel()
		t.Fatalf("config: %v", err)
	}
	logger := newLogger(cfg.Log, s.logs)
	svc, err := newService(ctx, cfg, logger, appOptions{})
	if err != nil {
		cancel()
		t.Fatalf("new service: %v", err)
	}
	s.svc = svc
	ln := o.ln
	if ln == nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			cancel()
			svc.app.close()
			t.Fatalf("listen: %v", err)
		}
	}
	s.base = "http://" + ln.Addr().String()
	go func() { s.done <- svc.serve(ctx, ln, o.schedule) }()
	// Cleanups run last-in first-out: the logs are checked for secrets after the stop.
	t.Cleanup(func() { serveNoSecrets(t, s, s.logs.String()) })
	t.Cleanup(func() { _ = s.stop() })
	// The listener accepts already; a failure to build the handler ends serve at once.
	status, _, body := s.do(http.MethodGet, "/healthz", "", nil)
	if status != http.StatusOK {
		select {
		case err := <-s.done:
			t.Fatalf("serve: %v", err)
		default:
		}
		t.Fatalf("/healthz: %d %s", status, body)
	}
	if o.storeURL != "" {
		if status, _, body := s.do(http.MethodGet, "/readyz", "", nil); status != http.StatusOK {
			t.Fatalf("/readyz: %d %s", status, body)
		}
	}
	return s
}

// stop cancels the service's context (what SIGTERM does through signal.NotifyContext), waits
// for serve to return and closes the app.
func (s *serveInstance) stop() error {
	s.stopOnce.Do(func() {
		s.cancel()
		select {
		case s.stopErr = <-s.done:
		case <-time.After(30 * time.Second):
			s.stopErr = fmt.Errorf("serve did not return 30s after cancellation")
		}
		s.svc.app.close()
	})
	return s.stopErr
}

var serveHTTP = &http.Client{Timeout: 30 * time.Second}

// do sends one request; body is a string (sent as is) or a value (sent as JSON). It returns
// the status, the headers and the body.
func (s *serveInstance) do(method, path, token string, body any, headers ...string) (int, http.Header, []byte) {
	s.t.Helper()
	return serveDo(s.t, method, s.base+path, token, body, headers...)
}

func serveDo(t *testing.T, method, url, token string, body any, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := serveHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, raw
}

// unqueuedStore opens another handle on the service's store whose writes are not queued:
// what it writes reaches the store without being provisioned (as after an outage, or before
// bridge ran). It is closed when the test ends.
func (s *serveInstance) unqueuedStore() *store.Store {
	s.t.Helper()
	st, err := store.Open(context.Background(), s.storePath, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = st.Close() })
	return st
}

// drained waits until the service's change queue is empty: every push answered so far has
// been applied to babelforce (pushes are answered once stored and queued, and applied by
// the queue worker). It fails the test when the queue is not empty within 30 s.
func (s *serveInstance) drained() {
	s.t.Helper()
	serveWaitDrained(s.t, s.svc.app.store, 30*time.Second)
}

// serveWaitDrained polls st's change queue until it is empty or timeout passes (then the
// test fails with the queue's stats).
func serveWaitDrained(t *testing.T, st *store.Store, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		qs, err := st.QueueStats(context.Background())
		if err != nil {
			t.Fatalf("change queue: %v", err)
		}
		if qs.Depth == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the change queue is not drained after %s: %+v", timeout, qs)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// scim sends a SCIM request with the inbound token; after a write it waits until the queue
// is drained (see drained).
func (s *serveInstance) scim(method, path string, body any) (int, map[string]any) {
	s.t.Helper()
	status, _, raw := s.scimNoWait(method, path, body)
	if method != http.MethodGet && status < 300 {
		s.drained()
	}
	var m map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			s.t.Fatalf("%s %s: %d, body is not JSON: %v\n%s", method, path, status, err, raw)
		}
	}
	return status, m
}

// scimNoWait sends a SCIM request with the inbound token and returns at once.
func (s *serveInstance) scimNoWait(method, path string, body any) (int, http.Header, []byte) {
	s.t.Helper()
	return s.do(method, "/scim/v2"+path, s.scimToken, body)
}

// admin sends an admin API request and decodes the JSON answer.
func (s *serveInstance) admin(method, path string) (int, map[string]any) {
	s.t.Helper()
	status, _, raw := s.do(method, path, s.adminToken, nil)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		s.t.Fatalf("%s %s: %d, body is not JSON: %v\n%s", method, path, status, err, raw)
	}
	return status, m
}

// serveAgentByEmail returns the simulator's agent with e-mail (case-insensitive).
func serveAgentByEmail(sim *babelforcetest.Server, email string) (babelforce.Agent, bool) {
	for _, a := range sim.Agents() {
		if strings.EqualFold(a.Email, email) {
			return a, true
		}
	}
	return babelforce.Agent{}, false
}

// serveLoginUser returns the simulator's login user with e-mail.
func serveLoginUser(sim *babelforcetest.Server, email string) (babelforce.SCIMUser, bool) {
	for _, u := range sim.SCIMUsers() {
		if strings.EqualFold(u.UserName, email) {
			return u, true
		}
	}
	return babelforce.SCIMUser{}, false
}

// serveWantAgent describes what the simulator must hold for one person.
type serveWantAgent struct {
	email    string
	name     string // "" not checked
	number   string // "" not checked
	enabled  bool
	tags     []string // nil: none
	groups   []string // agent group names; nil: none
	sourceID string   // "" not checked; else the pushed user's id (a ${var} of the sequence)
	roles    []string // login user roles; nil: no login user expected
	login    *bool    // login user active; nil: not checked
}

func (w serveWantAgent) check(t *testing.T, sim *babelforcetest.Server, label string) {
	t.Helper()
	a, ok := serveAgentByEmail(sim, w.email)
	if !ok {
		t.Errorf("%s: no agent with e-mail %s; agents: %s", label, w.email, serveDescribeAgents(sim))
		return
	}
	if w.name != "" && a.Name != w.name {
		t.Errorf("%s: agent %s name %q, want %q", label, w.email, a.Name, w.name)
	}
	if w.number != "" && a.Number != w.number {
		t.Errorf("%s: agent %s number %q, want %q", label, w.email, a.Number, w.number)
	}
	if a.IsEnabled() != w.enabled {
		t.Errorf("%s: agent %s enabled %v, want %v", label, w.email, a.IsEnabled(), w.enabled)
	}
	tags := slices.Clone(a.Tags)
	slices.Sort(tags)
	want := slices.Clone(w.tags)
	slices.Sort(want)
	if !slices.Equal(tags, want) {
		t.Errorf("%s: agent %s tags %v, want %v", label, w.email, tags, want)
	}
	var groups []string
	for _, g := range a.Groups {
		groups = append(groups, serveGroupName(sim, g))
	}
	slices.Sort(groups)
	wantGroups := slices.Clone(w.groups)
	slices.Sort(wantGroups)
	if !slices.Equal(groups, wantGroups) {
		t.Errorf("%s: agent %s groups %v, want %v", label, w.email, groups, wantGroups)
	}
	if a.AgentSource != serveAgentSource {
		t.Errorf("%s: agent %s agentSource %q, want %q", label, w.email, a.AgentSource, serveAgentSource)
	}
	if w.sourceID != "" && a.SourceID != w.sourceID {
		t.Errorf("%s: agent %s sourceId %q, want %q", label, w.email, a.SourceID, w.sourceID)
	}
	if w.roles == nil {
		return
	}
	u, ok := serveLoginUser(sim, w.email)
	if !ok {
		t.Errorf("%s: no login user %s", label, w.email)
		return
	}
	var roles []string
	for _, r := range u.Roles {
		roles = append(roles, r.Value)
	}
	slices.Sort(roles)
	wantRoles := slices.Clone(w.roles)
	slices.Sort(wantRoles)
	if !slices.Equal(roles, wantRoles) {
		t.Errorf("%s: login user %s roles %v, want %v", label, w.email, roles, wantRoles)
	}
	if w.sourceID != "" && u.ExternalID != w.sourceID {
		t.Errorf("%s: login user %s externalId %q, want %q", label, w.email, u.ExternalID, w.sourceID)
	}
	if w.login != nil && u.IsActive() != *w.login {
		t.Errorf("%s: login user %s active %v, want %v", label, w.email, u.IsActive(), *w.login)
	}
}

func serveGroupName(sim *babelforcetest.Server, g babelforce.GroupRef) string {
	if g.Name != "" {
		return g.Name
	}
	for _, ag := range sim.AgentGroups() {
		if ag.ID == g.ID {
			return ag.Name
		}
	}
	return g.ID
}

func serveDescribeAgents(sim *babelforcetest.Server) string {
	var b strings.Builder
	for _, a := range sim.Agents() {
		fmt.Fprintf(&b, "\n  %s <%s> enabled=%v tags=%v source=%s/%s", a.Name, a.Email, a.IsEnabled(), a.Tags, a.AgentSource, a.SourceID)
	}
	return b.String()
}

// --- replaying recorded IdP sequences (the format of testdata/scim/README.md) ---------------

// serveReplay sends every step of a recorded sequence to the service's /scim/v2 endpoint
// with the inbound token, checks each answer as the recording expects, and calls after
// (when not nil) after each step with the step's index and the saved variables.
func serveReplay(t *testing.T, s *serveInstance, raw []byte, after func(i int, vars map[string]string)) map[string]string {
	t.Helper()
	rf, err := scimreplay.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	send := func(r scimreplay.Request) scimreplay.Response {
		var body any
		if r.Body != nil {
			body = string(r.Body)
		}
		status, hdr, rawBody := s.do(r.Method, "/scim/v2"+r.Path, s.scimToken, body, r.HeaderPairs()...)
		if r.Method != http.MethodGet && status < 300 {
			s.drained()
		}
		return scimreplay.Response{Status: status, Header: hdr, Body: rawBody}
	}
	var afterStep scimreplay.AfterStep
	if after != nil {
		afterStep = func(i int, _ scimreplay.Step, vars scimreplay.Vars) { after(i, vars) }
	}
	return scimreplay.Run(t, rf, send, afterStep)
}

func serveReadRecording(t *testing.T, idp, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "scim", idp, name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func serveBool(b bool) *bool { return &b }

// serveSkillSequence is a sequence of our own in the recorded format: the recorded ones put
// nobody in a skill-*, team-* or role group.
const serveSkillSequence = `{
  "description": "users in skill, team and role groups; a skill and a role taken away; a user deleted",
  "steps": [
    {"name": "create carol", "method": "POST", "path": "/Users",
     "body": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "carol@example.com",
              "name": {"givenName": "Carol", "familyName": "Clark"}, "emails": [{"primary": true, "value": "Carol@Example.com", "type": "work"}],
              "phoneNumbers": [{"value": "030 5550123", "type": "work"}], "active": true},
     "save": {"carol": "id"}, "expect": {"status": 201, "body": {"userName": "carol@example.com"}}},
    {"name": "create dave", "method": "POST", "path": "/Users",
     "body": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "dave@example.com", "displayName": "Dave Dunn",
              "emails": [{"primary": true, "value": "dave@example.com"}], "active": true},
     "save": {"dave": "id"}, "expect": {"status": 201}},
    {"name": "push skill-Billing with both", "method": "POST", "path": "/Groups",
     "body": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "skill-Billing",
              "members": [{"value": "${carol}"}, {"value": "${dave}"}]},
     "save": {"billing": "id"}, "expect": {"status": 201, "body": {"members/#": 2}}},
    {"name": "push skill-French with carol", "method": "POST", "path": "/Groups",
     "body": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "skill-French", "members": [{"value": "${carol}"}]},
     "save": {"french": "id"}, "expect": {"status": 201}},
    {"name": "push cc-supervisors with carol", "method": "POST", "path": "/Groups",
     "body": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "cc-supervisors", "members": [{"value": "${carol}"}]},
     "save": {"supervisors": "id"}, "expect": {"status": 201}},
    {"name": "push team-Support with dave", "method": "POST", "path": "/Groups",
     "body": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "team-Support", "members": [{"value": "${dave}"}]},
     "save": {"team": "id"}, "expect": {"status": 201}},
    {"name": "carol leaves skill-French", "method": "PATCH", "path": "/Groups/${french}",
     "body": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "remove", "path": "members[value eq \"${carol}\"]"}]},
     "expect": {"status": 200}},
    {"name": "carol leaves cc-supervisors", "method": "PATCH", "path": "/Groups/${supervisors}",
     "body": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Remove", "path": "members", "value": [{"value": "${carol}"}]}]},
     "expect": {"status": 200}},
    {"name": "carol is deleted", "method": "DELETE", "path": "/Users/${carol}", "expect": {"status": 204}}
  ]
}`

// TestServeReplayIdPSequences replays the recorded Okta and Entra ID sequences (and one of our
// own with skill, team and role groups) through /scim/v2 of a running service and checks after
// the steps that matter what the babelforce simulator holds: every push is provisioned at once.
func TestServeReplayIdPSequences(t *testing.T) {
	t.Parallel()
	yes, no := serveBool(true), serveBool(false)

	t.Run("okta/01-user-lifecycle", func(t *testing.T) {
		t.Parallel()
		s := serveStart(t, serveOptions{})
		const email = "test.user@okta.local"
		serveReplay(t, s, serveReadRecording(t, "okta", "01-user-lifecycle.json"), func(i int, v map[string]string) {
			label := fmt.Sprintf("after step %d", i+1)
			switch i {
			case 0:
				if n := len(s.sim.Agents()); n != 0 {
					t.Errorf("%s: %d agents before the first push", label, n)
				}
			case 1:
				serveWantAgent{email: email, name: "Test User", enabled: true, sourceID: v["user"], roles: []string{"agent"}, login: yes}.check(t, s.sim, label)
			case 4: // the duplicate was refused: still one agent
				if n := len(s.sim.Agents()); n != 1 {
					t.Errorf("%s: %d agents, want 1%s", label, n, serveDescribeAgents(s.sim))
				}
			case 5:
				serveWantAgent{email: email, name: "Another User", number: "+14155550100", enabled: true, sourceID: v["user"], roles: []string{"agent"}, login: yes}.check(t, s.sim, label)
			case 6, 9:
				serveWantAgent{email: email, name: "Another User", enabled: false, sourceID: v["user"], roles: []string{"agent"}, login: no}.check(t, s.sim, label)
			case 8:
				serveWantAgent{email: email, enabled: true, sourceID: v["user"], roles: []string{"agent"}, login: yes}.check(t, s.sim, label)
			}
		})
		if n := len(s.sim.Agents()); n != 1 {
			t.Errorf("%d agents, want 1%s", n, serveDescribeAgents(s.sim))
		}
	})

	t.Run("okta/02-group-push", func(t *testing.T) {
		t.Parallel()
		s := serveStart(t, serveOptions{})
		alice := func(v map[string]string, enabled bool, groups ...string) serveWantAgent {
			return serveWantAgent{email: "alice@example.com", name: "Alice Able", enabled: enabled, groups: groups, sourceID: v["alice"], roles: []string{"agent"}}
		}
		bob := func(v map[string]string, tags []string, groups ...string) serveWantAgent {
			return serveWantAgent{email: "bob@example.com", name: "Bob Baker", enabled: true, tags: tags, groups: groups, sourceID: v["bob"], roles: []string{"agent"}, login: yes}
		}
		serveReplay(t, s, serveReadRecording(t, "okta", "02-group-push.json"), func(i int, v map[string]string) {
			label := fmt.Sprintf("after step %d", i+1)
			switch i {
			case 1:
				alice(v, true).check(t, s.sim, label)
				bob(v, nil).check(t, s.sim, label)
			case 4: // both added to "Support Tier 1"
				alice(v, true, "Tier 1").check(t, s.sim, label)
				bob(v, nil, "Tier 1").check(t, s.sim, label)
			case 6: // alice removed with a value filter
				alice(v, true).check(t, s.sim, label)
				bob(v, nil, "Tier 1").check(t, s.sim, label)
			case 7: // renamed to "Support Tier One": bob moves to the new agent group
				bob(v, nil, "Tier One").check(t, s.sim, label)
			case 9: // PUT with both members
				alice(v, true, "Tier One").check(t, s.sim, label)
				bob(v, nil, "Tier One").check(t, s.sim, label)
			case 10: // Night Shift gives bob the night skill
				bob(v, []string{"night"}, "Tier One").check(t, s.sim, label)
			case 11: // the group is deleted
				alice(v, true).check(t, s.sim, label)
				bob(v, []string{"night"}).check(t, s.sim, label)
			case 13: // alice is deleted: her agent is disabled, not deleted
				w := alice(v, false)
				w.login = no
				w.check(t, s.sim, label)
				bob(v, []string{"night"}).check(t, s.sim, label)
			}
		})
		if n := len(s.sim.Agents()); n != 2 {
			t.Errorf("%d agents, want 2 (a deleted user's agent is kept, disabled)%s", n, serveDescribeAgents(s.sim))
		}
		if n := s.sim.Calls()["DELETE /api/v2/agents/{id}"]; n != 0 {
			t.Errorf("%d agent deletions, want none", n)
		}
	})

	t.Run("entra/01-user-lifecycle", func(t *testing.T) {
		t.Parallel()
		s := serveStart(t, serveOptions{})
		const first = "test_user_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"
		const updated = "updatedemail@microsoft.com"
		serveReplay(t, s, serveReadRecording(t, "entra", "01-user-lifecycle.json"), func(i int, v map[string]string) {
			label := fmt.Sprintf("after step %d", i+1)
			switch i {
			case 1:
				serveWantAgent{email: first, name: "Test User", enabled: true, sourceID: v["user"], roles: []string{"agent"}, login: yes}.check(t, s.sim, label)
			case 4: // e-mail and phone changed by PATCH with value-filter paths
				serveWantAgent{email: updated, name: "Test User", number: "+49301234567", enabled: true, sourceID: v["user"], roles: []string{"agent"}, login: yes}.check(t, s.sim, label)
				if n := len(s.sim.Agents()); n != 1 {
					t.Errorf("%s: %d agents, want 1 (the e-mail changed, the person did not)%s", label, n, serveDescribeAgents(s.sim))
				}
				if users := s.sim.SCIMUsers(); len(users) != 1 {
					t.Errorf("%s: %d login users, want 1 (the old e-mail's login must not stay behind): %+v", label, len(users), users)
				}
			case 6: // soft delete with the string "False"
				serveWantAgent{email: updated, enabled: false, sourceID: v["user"], roles: []string{"agent"}, login: no}.check(t, s.sim, label)
			case 8: // restored with "True"
				serveWantAgent{email: updated, enabled: true, sourceID: v["user"], roles: []string{"agent"}, login: yes}.check(t, s.sim, label)
			case 10:
				serveWantAgent{email: updated, name: "Test User", enabled: false, sourceID: v["user"], roles: []string{"agent"}, login: no}.check(t, s.sim, label)
			}
		})
		if n := len(s.sim.Agents()); n != 1 {
			t.Errorf("%d agents, want 1%s", n, serveDescribeAgents(s.sim))
		}
	})

	t.Run("entra/02-groups", func(t *testing.T) {
		t.Parallel()
		s := serveStart(t, serveOptions{})
		one := func(v map[string]string, enabled bool, groups ...string) serveWantAgent {
			return serveWantAgent{email: "one@contoso.com", name: "User One", enabled: enabled, groups: groups, sourceID: v["one"], roles: []string{"agent"}}
		}
		two := func(v map[string]string, groups ...string) serveWantAgent {
			return serveWantAgent{email: "two@contoso.com", name: "User Two", enabled: true, groups: groups, sourceID: v["two"], roles: []string{"agent"}, login: yes}
		}
		serveReplay(t, s, serveReadRecording(t, "entra", "02-groups.json"), func(i int, v map[string]string) {
			label := fmt.Sprintf("after step %d", i+1)
			switch i {
			case 1:
				one(v, true).check(t, s.sim, label)
				two(v).check(t, s.sim, label)
			case 4:
				one(v, true, "Contoso Support").check(t, s.sim, label)
				two(v, "Contoso Support").check(t, s.sim, label)
			case 8:
				one(v, true).check(t, s.sim, label)
				two(v, "Contoso Support").check(t, s.sim, label)
			case 9:
				two(v, "Contoso Support EU").check(t, s.sim, label)
			case 11: // hard delete: the agent is disabled, not deleted
				w := one(v, false)
				w.login = no
				w.check(t, s.sim, label)
				two(v, "Contoso Support EU").check(t, s.sim, label)
			}
		})
		if n := len(s.sim.Agents()); n != 2 {
			t.Errorf("%d agents, want 2%s", n, serveDescribeAgents(s.sim))
		}
	})

	t.Run("skills-teams-roles", func(t *testing.T) {
		t.Parallel()
		s := serveStart(t, serveOptions{})
		serveReplay(t, s, []byte(serveSkillSequence), func(i int, v map[string]string) {
			label := fmt.Sprintf("after step %d", i+1)
			carol := serveWantAgent{email: "carol@example.com", name: "Carol Clark", number: "+49305550123", enabled: true, sourceID: v["carol"], login: yes}
			dave := serveWantAgent{email: "dave@example.com", name: "Dave Dunn", enabled: true, sourceID: v["dave"], roles: []string{"agent"}, login: yes}
			switch i {
			case 5: // every group pushed
				carol.tags, carol.roles = []string{"billing", "french"}, []string{"supervisor", "reporter"}
				dave.tags, dave.groups = []string{"billing"}, []string{"Support"}
			case 6:
				carol.tags, carol.roles = []string{"billing"}, []string{"supervisor", "reporter"}
				dave.tags, dave.groups = []string{"billing"}, []string{"Support"}
			case 7:
				carol.tags, carol.roles = []string{"billing"}, []string{"agent"}
				dave.tags, dave.groups = []string{"billing"}, []string{"Support"}
			case 8:
				carol.tags, carol.roles, carol.enabled, carol.login = []string{"billing"}, []string{"agent"}, false, no
				dave.tags, dave.groups = []string{"billing"}, []string{"Support"}
			default:
				return
			}
			carol.check(t, s.sim, label)
			dave.check(t, s.sim, label)
		})
		if got := s.sim.AgentTags(); !slices.Equal(got, []string{"billing"}) {
			t.Errorf("tag catalogue %v", got)
		}
	})
}

// serveJWTIssuer is a minimal OpenID Connect issuer whose tokens the test mints itself
// (discovery from testenv.StartDiscoveryServer, a JWKS with one RSA key), for what the
// zitadel example OP cannot hand out: expired tokens.
type serveJWTIssuer struct {
	issuer string
	key    *rsa.PrivateKey
}

func serveStartJWTIssuer(t *testing.T) *serveJWTIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{
			"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
			"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
		}}})
	}))
	t.Cleanup(jwks.Close)
	d := testenv.StartDiscoveryServer(t, func(issuer string) map[string]any {
		return map[string]any{
			"issuer": issuer, "jwks_uri": jwks.URL,
			"authorization_endpoint": issuer + "/authorize", "token_endpoint": issuer + "/token",
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		}
	})
	return &serveJWTIssuer{issuer: d.URL, key: key}
}

// mint signs a token for aud that expires at exp, with key (nil: the issuer's).
func (i *serveJWTIssuer) mint(t *testing.T, aud string, exp time.Time, key *rsa.PrivateKey) string {
	t.Helper()
	if key == nil {
		key = i.key
	}
	b64 := base64.RawURLEncoding.EncodeToString
	header, _ := json.Marshal(map[string]any{"alg": "RS256", "kid": "k1", "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{"iss": i.issuer, "aud": aud, "sub": "okta-scim", "azp": aud,
		"iat": exp.Add(-time.Hour).Unix(), "exp": exp.Unix()})
	signing := b64(header) + "." + b64(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}

// serveWantSCIM401 checks a refused SCIM request: 401, a SCIM error body, WWW-Authenticate.
func serveWantSCIM401(t *testing.T, s *serveInstance, label, authorization string) {
	t.Helper()
	var headers []string
	if authorization != "" {
		headers = []string{"Authorization", authorization}
	}
	status, hdr, raw := s.do(http.MethodGet, "/scim/v2/Users", "", nil, headers...)
	if status != http.StatusUnauthorized {
		t.Errorf("%s: status %d, want 401\n%s", label, status, raw)
		return
	}
	var body struct {
		Schemas []string `json:"schemas"`
		Status  string   `json:"status"`
		Detail  string   `json:"detail"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Errorf("%s: body is not JSON: %v\n%s", label, err, raw)
		return
	}
	if !slices.Contains(body.Schemas, serveSCIMError) || body.Status != "401" {
		t.Errorf("%s: body %s is not a SCIM error with status \"401\"", label, raw)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/scim+json") {
		t.Errorf("%s: Content-Type %q", label, ct)
	}
	if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("%s: WWW-Authenticate %q", label, hdr.Get("WWW-Authenticate"))
	}
}

// serveWantSCIMOK checks that a SCIM list request with the token is answered.
func serveWantSCIMOK(t *testing.T, s *serveInstance, label, token string) {
	t.Helper()
	status, _, raw := s.do(http.MethodGet, "/scim/v2/Users", token, nil)
	if status != http.StatusOK || !strings.Contains(string(raw), "ListResponse") {
		t.Errorf("%s: status %d, want 200 with a ListResponse\n%s", label, status, raw)
	}
}

// TestServeAuth checks who may call what: the inbound SCIM endpoint takes the configured
// static tokens and JWTs of the configured issuer and audience; /healthz and /readyz are
// open; the admin API and /metrics need the admin token.
func TestServeAuth(t *testing.T) {
	t.Parallel()

	t.Run("zitadel", func(t *testing.T) {
		t.Parallel()
		op := testenv.StartOIDCProvider(t)
		s := serveStart(t, serveOptions{oidcIssuer: op.Issuer, oidcAudience: op.ServiceClientID})

		serveWantSCIM401(t, s, "no Authorization header", "")
		serveWantSCIM401(t, s, "wrong static token", "Bearer "+serveSecret("nope"))
		serveWantSCIM401(t, s, "basic auth", "Basic "+base64.StdEncoding.EncodeToString([]byte("okta:"+s.scimToken)))
		serveWantSCIM401(t, s, "admin token on the SCIM endpoint", "Bearer "+s.adminToken)
		serveWantSCIM401(t, s, "simulator token", "Bearer "+s.sim.SCIMToken)

		jwt := op.ServiceToken(t)
		s.moreSecrets = append(s.moreSecrets, jwt, strings.Split(jwt, ".")[2])
		// The issuer is plain http on loopback, which inbound_scim accepts; the configuration
		// has no sso section (the verifier does not depend on sso.allow_insecure_http).
		serveWantSCIMOK(t, s, "JWT of the issuer for the audience", jwt)
		serveWantSCIMOK(t, s, "static token", s.scimToken)
		// A write with the JWT is stored and provisioned like any other.
		status, _, raw := s.do(http.MethodPost, "/scim/v2/Users", jwt, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
			"userName":"jwt.user@example.com","emails":[{"value":"jwt.user@example.com","primary":true}],"displayName":"Jay Dub","active":true}`)
		if status != http.StatusCreated {
			t.Fatalf("POST with the JWT: %d %s", status, raw)
		}
		s.drained()
		serveWantAgent{email: "jwt.user@example.com", name: "Jay Dub", enabled: true}.check(t, s.sim, "pushed with a JWT")

		// The ID token of the web client has the wrong audience.
		idToken := op.IDToken(t)
		serveWantSCIM401(t, s, "JWT for another audience", "Bearer "+idToken)
		parts := strings.Split(jwt, ".")
		claims, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		forged := strings.Replace(string(claims), `"sub":"`, `"sub":"x`, 1)
		serveWantSCIM401(t, s, "JWT with altered claims", "Bearer "+parts[0]+"."+base64.RawURLEncoding.EncodeToString([]byte(forged))+"."+parts[2])

		// Health needs no token; readiness checks the store.
		if status, _, raw := s.do(http.MethodGet, "/healthz", "", nil); status != http.StatusOK || string(raw) != "ok\n" {
			t.Errorf("/healthz: %d %q", status, raw)
		}
		if status, _, raw := s.do(http.MethodGet, "/readyz", "", nil); status != http.StatusOK || string(raw) != "ready\n" {
			t.Errorf("/readyz: %d %q", status, raw)
		}
		// Admin endpoints: no token, a wrong one, the SCIM token: 401; the admin token: 200.
		for _, ep := range []struct{ method, path string }{
			{http.MethodGet, "/api/v1/status"}, {http.MethodPost, "/api/v1/sync?dry_run=true"},
			{http.MethodPost, "/api/v1/provision/jwt.user@example.com"}, {http.MethodGet, "/metrics"},
			{http.MethodGet, "/api/v1/explain/jwt.user@example.com"},
		} {
			for _, tok := range []struct{ name, value string }{{"no token", ""}, {"wrong token", serveSecret("x")}, {"SCIM token", s.scimToken}, {"JWT", jwt}} {
				status, hdr, raw := s.do(ep.method, ep.path, tok.value, nil)
				if status != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" {
					t.Errorf("%s %s with %s: %d (WWW-Authenticate %q), want 401\n%s", ep.method, ep.path, tok.name, status, hdr.Get("WWW-Authenticate"), raw)
				}
			}
			if status, _, raw := s.do(ep.method, ep.path, s.adminToken, nil); status != http.StatusOK {
				t.Errorf("%s %s with the admin token: %d\n%s", ep.method, ep.path, status, raw)
			}
		}
	})

	// A person's ID token is refused even when its audience and client are the configured
	// ones: it is a sign-in, not a provisioning credential (issue 10).
	t.Run("zitadel ID token", func(t *testing.T) {
		t.Parallel()
		op := testenv.StartOIDCProvider(t)
		s := serveStart(t, serveOptions{oidcIssuer: op.Issuer, oidcAudience: op.ClientID})
		serveWantSCIM401(t, s, "ID token from the code flow", "Bearer "+op.IDToken(t))
		if !strings.Contains(s.logs.String(), "an ID token") {
			t.Errorf("the refusal of the ID token is not logged with its reason")
		}
	})

	// The IdP cannot be reached to check a JWT: 503 with Retry-After, not 401 (issue 10).
	t.Run("IdP unreachable", func(t *testing.T) {
		t.Parallel()
		s := serveStart(t, serveOptions{oidcIssuer: testenv.ClosedURL(t), oidcAudience: "bridge-scim"})
		iss := serveStartJWTIssuer(t)
		status, hdr, raw := s.do(http.MethodGet, "/scim/v2/Users", iss.mint(t, "bridge-scim", time.Now().Add(time.Hour), nil), nil)
		if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(string(raw), "urn:ietf:params:scim:api:messages:2.0:Error") {
			t.Errorf("JWT with the IdP down: %d (Retry-After %q) %s", status, hdr.Get("Retry-After"), raw)
		}
		serveWantSCIMOK(t, s, "static token with the IdP down", s.scimToken)
	})

	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		iss := serveStartJWTIssuer(t)
		s := serveStart(t, serveOptions{oidcIssuer: iss.issuer, oidcAudience: "bridge-scim"})
		// The control: a fresh token of the same issuer and key is accepted.
		serveWantSCIMOK(t, s, "valid minted token", iss.mint(t, "bridge-scim", time.Now().Add(10*time.Minute), nil))
		serveWantSCIM401(t, s, "expired token", "Bearer "+iss.mint(t, "bridge-scim", time.Now().Add(-10*time.Minute), nil))
		serveWantSCIM401(t, s, "wrong audience", "Bearer "+iss.mint(t, "someone-else", time.Now().Add(10*time.Minute), nil))
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		serveWantSCIM401(t, s, "token signed by another key", "Bearer "+iss.mint(t, "bridge-scim", time.Now().Add(10*time.Minute), other))
		if !strings.Contains(s.logs.String(), "expired") {
			t.Errorf("the refusal of the expired token is not logged with its reason")
		}
	})
}

// serveSeedUsers writes n users (userN@example.com) straight into the store at dir, as if
// an IdP had pushed them while bridge could not reach babelforce, plus groups (display name →
// member indexes; nil: everyone). It returns the users' ids.
func serveSeedUsers(t *testing.T, st *store.Store, first, n int, groups map[string][]int) []string {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, 0, n)
	for i := first; i < first+n; i++ {
		email := fmt.Sprintf("user%03d@example.com", i)
		r, err := st.Create(ctx, store.Resource{Kind: store.KindUser, Attributes: map[string]any{
			"userName": email,
			"name":     map[string]any{"givenName": "User", "familyName": fmt.Sprintf("N%03d", i)},
			"emails":   []any{map[string]any{"value": email, "primary": true, "type": "work"}},
			"active":   true,
		}})
		if err != nil {
			t.Fatalf("seed %s: %v", email, err)
		}
		ids = append(ids, r.ID)
	}
	for name, idx := range groups {
		var members []any
		if idx == nil {
			for _, id := range ids {
				members = append(members, map[string]any{"value": id, "type": "User"})
			}
		}
		for _, i := range idx {
			members = append(members, map[string]any{"value": ids[i], "type": "User"})
		}
		if _, err := st.Create(ctx, store.Resource{Kind: store.KindGroup, Attributes: map[string]any{"displayName": name, "members": members}}); err != nil {
			t.Fatalf("seed group %s: %v", name, err)
		}
	}
	return ids
}

// serveReport decodes the "report" of an admin API answer.
func serveReport(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	rep, ok := body["report"].(map[string]any)
	if !ok {
		t.Fatalf("answer without a report: %v", body)
	}
	return rep
}

func serveCount(rep map[string]any, key string) int {
	counts, _ := rep["counts"].(map[string]any)
	n, _ := counts[key].(float64)
	return int(n)
}

// TestServePushWhileBabelforceFails: a user pushed while babelforce answers 5xx is stored and
// answered 201 with the stored resource at once; nothing reaches babelforce; the push stays
// queued (in /api/v1/status and the metrics) and is applied once babelforce is back, without
// anyone asking.
func TestServePushWhileBabelforceFails(t *testing.T) {
	t.Parallel()
	s := serveStart(t, serveOptions{})
	if err := s.sim.SetFaults(babelforcetest.Faults{Rate5xx: 1, Paths: []string{"/api/v2", "/auth/scim"}}); err != nil {
		t.Fatal(err)
	}
	s.sim.ResetCalls()
	status, _, raw := s.scimNoWait(http.MethodPost, "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName":"outage@example.com","name":{"givenName":"Otto","familyName":"Age"},
		"emails":[{"value":"outage@example.com","primary":true}],"phoneNumbers":[{"value":"+49 30 5550100","type":"work"}],"active":true}`)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil || status != http.StatusCreated {
		t.Fatalf("push during the outage: %d %s", status, raw)
	}
	id, _ := body["id"].(string)
	meta, _ := body["meta"].(map[string]any)
	if id == "" || body["userName"] != "outage@example.com" || body["active"] != true || meta["version"] != `W/"1"` || meta["resourceType"] != "User" {
		t.Errorf("answer is not the stored resource: %v", body)
	}
	if status, got := s.scim(http.MethodGet, "/Users/"+id, nil); status != http.StatusOK || got["userName"] != "outage@example.com" {
		t.Errorf("GET the pushed user: %d %v", status, got)
	}
	// the worker tries, fails and keeps the push queued
	var queue map[string]any
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, st := s.admin(http.MethodGet, "/api/v1/status")
		queue, _ = st["queue"].(map[string]any)
		if f, _ := queue["failing"].(float64); f >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempt of the queued push in /api/v1/status: %v", st)
		}
	}
	if d, _ := queue["depth"].(float64); d != 1 || queue["lastError"] == "" {
		t.Errorf("queue during the outage: %v, want depth 1 with the last error", queue)
	}
	if n := len(s.sim.Agents()); n != 0 {
		t.Errorf("%d agents in babelforce during the outage%s", n, serveDescribeAgents(s.sim))
	}
	if n := len(s.sim.SCIMUsers()); n != 0 {
		t.Errorf("%d login users in babelforce during the outage", n)
	}
	if n := s.sim.WriteCalls(); n != 0 {
		t.Errorf("%d write calls reached babelforce during the outage: %v", n, s.sim.Calls())
	}
	reads := 0
	for k, n := range s.sim.Calls() {
		if strings.HasPrefix(k, "GET /api/v2/") || strings.HasPrefix(k, "GET /auth/scim/") {
			reads += n
		}
	}
	if reads == 0 {
		t.Errorf("bridge did not even try babelforce for the push: %v", s.sim.Calls())
	}
	if !strings.Contains(s.logs.String(), "change queue: run failed") {
		t.Errorf("the failed provisioning of the push is not logged")
	}
	_, _, raw = s.do(http.MethodGet, "/metrics", s.adminToken, nil)
	if v, ok := serveMetric(string(raw), `bridge_runs_total{result="error",trigger="scim_push"}`); !ok || v < 1 {
		t.Errorf("metrics: the failed push run is not counted (%v %v)", v, ok)
	}
	// babelforce could not be read: a read error, no failed write
	if v, ok := serveMetric(string(raw), `bridge_run_errors_total{phase="read",trigger="scim_push"}`); !ok || v < 1 {
		t.Errorf("metrics: the push run's read error is not counted by phase (%v %v)", v, ok)
	}
	if _, ok := serveMetric(string(raw), `bridge_run_errors_total{phase="apply",trigger="scim_push"}`); ok {
		t.Errorf("metrics: a run that could not read counted an apply error")
	}
	if !regexp.MustCompile(`(?m)^bridge_babelforce_requests_total\{endpoint="GET /[^"]+",status="50[0-4]"\} [1-9]`).Match(raw) {
		t.Errorf("metrics: no babelforce 5xx answers counted")
	}

	if err := s.sim.SetFaults(babelforcetest.Faults{}); err != nil {
		t.Fatal(err)
	}
	s.drained()
	serveWantAgent{email: "outage@example.com", name: "Otto Age", number: "+49305550100", enabled: true,
		sourceID: id, roles: []string{"agent"}, login: serveBool(true)}.check(t, s.sim, "after the outage")
	if n := s.sim.Calls()["POST /api/v2/agents"]; n != 1 {
		t.Errorf("%d agent creates after the outage, want 1", n)
	}
	// The gauge is set by the worker's look at the queue after its run, a moment after the
	// store's queue is empty: it must come to 0, not stay at the depth seen before the drain.
	waitUntil(t, 10*time.Second, "bridge_queue_depth 0 after the queue drained", func() bool {
		_, _, raw = s.do(http.MethodGet, "/metrics", s.adminToken, nil)
		depth, ok := serveMetric(string(raw), `bridge_queue_depth`)
		return ok && depth == 0
	})
}

// TestServeRestartWithQueuedPushes: pushes answered while babelforce fails stay in the
// durable queue; the serve process is stopped before they apply, and a new one started on
// the same store applies every queued change exactly once, without anyone asking for a sync.
func TestServeRestartWithQueuedPushes(t *testing.T) {
	t.Parallel()
	const n = 20
	sim := serveNewSim(t)
	a := serveStart(t, serveOptions{sim: sim})
	// a person provisioned before the outage, who leaves during it
	status, body := a.scim(http.MethodPost, "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName":"leaver@example.com","name":{"givenName":"Lea","familyName":"Ver"},"emails":[{"value":"leaver@example.com","primary":true}],"active":true}`)
	leaver, _ := body["id"].(string)
	if status != http.StatusCreated || leaver == "" {
		t.Fatalf("push the leaver: %d %v", status, body)
	}
	serveWantAgent{email: "leaver@example.com", enabled: true, roles: []string{"agent"}, login: serveBool(true)}.check(t, sim, "before the outage")

	if err := sim.SetFaults(babelforcetest.Faults{Rate5xx: 1, Paths: []string{"/api/v2", "/auth/scim"}}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		email := fmt.Sprintf("queued%02d@example.com", i)
		status, _, raw := a.scimNoWait(http.MethodPost, "/Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
			"userName":%q,"name":{"givenName":"Queued","familyName":"N%02d"},"emails":[{"value":%q,"primary":true}],"active":true}`, email, i, email))
		if status != http.StatusCreated {
			t.Fatalf("push %s during the outage: %d %s", email, status, raw)
		}
	}
	if status, _, raw := a.scimNoWait(http.MethodPatch, "/Users/"+leaver, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","path":"active","value":false}]}`); status != http.StatusOK {
		t.Fatalf("deactivate the leaver during the outage: %d %s", status, raw)
	}
	// the worker has tried (and failed) at least once before the process stops
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		qs, err := a.svc.app.store.QueueStats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if qs.Failing >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempt of the queued pushes: %+v", qs)
		}
	}
	if err := a.stop(); err != nil {
		t.Fatalf("stop the first serve: %v", err)
	}
	st, err := store.Open(context.Background(), a.storePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := st.QueueStats(context.Background())
	_ = st.Close()
	if err != nil || qs.Depth != n+1 {
		t.Fatalf("queue after the first serve stopped: %+v, %v; want %d entries", qs, err, n+1)
	}
	if got := len(sim.Agents()); got != 1 {
		t.Fatalf("%d agents before the restart, want only the leaver's%s", got, serveDescribeAgents(sim))
	}

	if err := sim.SetFaults(babelforcetest.Faults{}); err != nil {
		t.Fatal(err)
	}
	sim.ResetCalls()
	b := serveStart(t, serveOptions{sim: sim, dir: a.dir})
	b.drained()
	calls := sim.Calls()
	if calls["POST /api/v2/agents"] != n || calls["POST /auth/scim/v2/Users"] != n {
		t.Errorf("after the restart: %d agent creates and %d login-user creates, want %d each: %v",
			calls["POST /api/v2/agents"], calls["POST /auth/scim/v2/Users"], n, calls)
	}
	perEmail := map[string]int{}
	for _, ag := range sim.Agents() {
		perEmail[strings.ToLower(ag.Email)]++
	}
	for i := range n {
		if e := fmt.Sprintf("queued%02d@example.com", i); perEmail[e] != 1 {
			t.Errorf("%s has %d agents, want 1", e, perEmail[e])
		}
	}
	serveWantAgent{email: "leaver@example.com", enabled: false, roles: []string{"agent"}, login: serveBool(false)}.check(t, sim, "after the restart")
	// each new person: an agent and a login user; the leaver: disable and deactivate
	writes := sim.WriteCalls()
	if writes != 2*n+2 || calls["PUT /api/v2/agents/{id}/disable"] != 1 {
		t.Errorf("%d writes to apply the queue after the restart, want %d (one per change): %v", writes, 2*n+2, calls)
	}
	if status, body := b.admin(http.MethodPost, "/api/v1/sync"); status != http.StatusOK || serveCount(serveReport(t, body), "applied") != 0 {
		t.Errorf("sync after the queue drained: %d %v, want nothing to do", status, body)
	}
	if w := sim.WriteCalls(); w != writes {
		t.Errorf("the sync after the queue drained wrote %d calls", w-writes)
	}
}

// TestServeShutdownDuringReconcile cancels the service (what SIGTERM does) while a run of
// 300 users is applying against a slow babelforce, then starts a new service on the same
// store and simulator: it converges, every user has exactly one agent, and a further sync
// writes nothing. The scheduled run stops early (writes in flight finish); a run started
// through POST /api/v1/sync is a request in flight, which the graceful shutdown lets finish.
func TestServeShutdownDuringReconcile(t *testing.T) {
	t.Parallel()
	for _, trigger := range []string{"schedule", "manual"} {
		t.Run(trigger, func(t *testing.T) {
			t.Parallel()
			serveShutdownDuringReconcile(t, trigger)
		})
	}
}

func serveShutdownDuringReconcile(t *testing.T, trigger string) {
	const users = 300
	sim := serveNewSim(t)
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "bridge.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := serveSeedUsers(t, st, 0, users, map[string][]int{"skill-Phones": nil, "team-Sales": nil})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetFaults(babelforcetest.Faults{Latency: 5 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}

	s1 := serveStart(t, serveOptions{sim: sim, dir: dir, schedule: trigger == "schedule"})
	manual := make(chan int, 1)
	if trigger == "manual" {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, s1.base+"/api/v1/sync", nil)
			req.Header.Set("Authorization", "Bearer "+s1.adminToken)
			resp, err := serveHTTP.Do(req)
			if err != nil {
				manual <- -1
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			manual <- resp.StatusCode
		}()
	}
	// Poll (the only way to see a run from outside) until the run is well under way.
	deadline := time.Now().Add(20 * time.Second)
	for len(sim.Agents()) < 40 {
		if time.Now().After(deadline) {
			t.Fatalf("the run created only %d agents in 20s", len(sim.Agents()))
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := s1.stop(); err != nil {
		t.Fatalf("serve after cancellation: %v", err)
	}
	if !strings.Contains(s1.logs.String(), "shutting down") {
		t.Errorf("no shutdown logged")
	}
	after1 := sim.Agents()
	logins1 := len(sim.SCIMUsers())
	t.Logf("%s run stopped by the shutdown left %d agents, %d login users", trigger, len(after1), logins1)
	// Nothing half-written: every agent there is bridge's, for one of the users, and has the
	// data it was created with.
	for _, a := range after1 {
		if a.AgentSource != serveAgentSource || !slices.Contains(ids, a.SourceID) || !slices.Equal(a.Tags, []string{"phones"}) {
			t.Errorf("half-written agent after the interrupted run: %+v", a)
		}
	}
	switch trigger {
	case "schedule":
		if len(after1) == users && logins1 == users {
			t.Fatalf("the run finished before the cancellation; the test proves nothing")
		}
	case "manual":
		// The request was in flight: its run stopped like a scheduled one, after the writes
		// in flight, and the answer says so.
		if code := <-manual; code != http.StatusServiceUnavailable {
			t.Errorf("POST /api/v1/sync in flight at shutdown: %d, want 503", code)
		}
		if len(after1) == users && logins1 == users {
			t.Fatalf("the run finished before the cancellation; the test proves nothing")
		}
	}

	if err := sim.SetFaults(babelforcetest.Faults{}); err != nil {
		t.Fatal(err)
	}
	s2 := serveStart(t, serveOptions{sim: sim, dir: dir})
	status, ans := s2.admin(http.MethodPost, "/api/v1/sync")
	if status != http.StatusOK {
		t.Fatalf("sync after restart: %d %v", status, ans["error"])
	}
	rep := serveReport(t, ans)
	if got, want := serveCount(rep, "create_agent/applied"), users-len(after1); got != want {
		t.Errorf("sync after restart created %d agents, want %d", got, want)
	}
	if n := serveCount(rep, "failed"); n != 0 {
		t.Errorf("%d changes failed after restart: %v", n, rep["errors"])
	}
	agents := sim.Agents()
	if len(agents) != users {
		t.Errorf("%d agents, want %d", len(agents), users)
	}
	bySource := map[string]int{}
	byEmail := map[string]int{}
	for _, a := range agents {
		bySource[a.SourceID]++
		byEmail[strings.ToLower(a.Email)]++
		if a.AgentSource != serveAgentSource || !slices.Equal(a.Tags, []string{"phones"}) || len(a.Groups) != 1 || !a.IsEnabled() {
			t.Errorf("agent not converged: %+v", a)
		}
	}
	for _, id := range ids {
		if bySource[id] != 1 {
			t.Errorf("user %s has %d agents, want 1", id, bySource[id])
		}
	}
	for e, n := range byEmail {
		if n != 1 {
			t.Errorf("%d agents with e-mail %s", n, e)
		}
	}
	if n := len(sim.SCIMUsers()); n != users {
		t.Errorf("%d login users, want %d", n, users)
	}
	if n := len(sim.AgentGroupMembers(sim.AgentGroups()[0].ID)); n != users {
		t.Errorf("agent group %s has %d members, want %d", sim.AgentGroups()[0].Name, n, users)
	}

	sim.ResetCalls()
	status, ans = s2.admin(http.MethodPost, "/api/v1/sync")
	if status != http.StatusOK {
		t.Fatalf("second sync: %d %v", status, ans["error"])
	}
	if n := serveCount(serveReport(t, ans), "applied"); n != 0 {
		t.Errorf("a further sync applied %d changes, want 0", n)
	}
	if n := sim.WriteCalls(); n != 0 {
		t.Errorf("a further sync made %d write calls, want 0: %v", n, sim.Calls())
	}
}

// serveMetric returns the value of the sample whose name and labels are exactly series
// (labels in the exposition's sorted order), and whether it is there.
func serveMetric(exposition, series string) (float64, bool) {
	for _, line := range strings.Split(exposition, "\n") {
		rest, ok := strings.CutPrefix(line, series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		return v, err == nil
	}
	return 0, false
}

// serveAudit returns the audit records of the logs.
func serveAudit(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %q", err, line)
		}
		if rec["log"] == "audit" {
			out = append(out, rec)
		}
	}
	return out
}

// TestServeAdminAPIAndMetrics: dry run, sync, status, provisioning one user, metrics.
func TestServeAdminAPIAndMetrics(t *testing.T) {
	t.Parallel()
	s := serveStart(t, serveOptions{})
	ids := serveSeedUsers(t, s.unqueuedStore(), 1, 3, map[string][]int{"skill-Chat": {0, 1}})

	// A dry run returns the plan and writes nothing.
	s.sim.ResetCalls()
	status, ans := s.admin(http.MethodPost, "/api/v1/sync?dry_run=true")
	if status != http.StatusOK {
		t.Fatalf("dry run: %d %v", status, ans)
	}
	rep := serveReport(t, ans)
	plan, _ := rep["plan"].(map[string]any)
	changes, _ := plan["changes"].([]any)
	creates := 0
	for _, c := range changes {
		if c.(map[string]any)["kind"] == "create_agent" {
			creates++
		}
	}
	if creates != 3 || rep["dryRun"] != true {
		t.Errorf("dry run plan has %d create_agent changes (dryRun %v), want 3: %v", creates, rep["dryRun"], plan)
	}
	if n := s.sim.WriteCalls(); n != 0 || len(s.sim.Agents()) != 0 {
		t.Errorf("dry run wrote: %d write calls, %d agents", n, len(s.sim.Agents()))
	}
	if status, _, raw := s.do(http.MethodPost, "/api/v1/sync?dry_run=maybe", s.adminToken, nil); status != http.StatusBadRequest {
		t.Errorf("dry_run=maybe: %d %s", status, raw)
	}

	// The run.
	status, ans = s.admin(http.MethodPost, "/api/v1/sync")
	if status != http.StatusOK {
		t.Fatalf("sync: %d %v", status, ans)
	}
	if n := serveCount(serveReport(t, ans), "create_agent/applied"); n != 3 {
		t.Errorf("sync created %d agents, want 3", n)
	}
	writesOfRun := s.sim.WriteCalls()

	// Status shows the last run with its counts.
	status, ans = s.admin(http.MethodGet, "/api/v1/status")
	runs, _ := ans["runs"].([]any)
	if status != http.StatusOK || len(runs) != 2 {
		t.Fatalf("status: %d, %d runs, want 2: %v", status, len(runs), ans)
	}
	last := runs[0].(map[string]any)
	if last["trigger"] != "manual" || last["dryRun"] == true || serveCount(last, "create_agent/applied") != 3 || serveCount(last, "applied") != writesOfRun {
		t.Errorf("status: last run %v, want the manual run with 3 agents created and %d changes applied", last, writesOfRun)
	}
	if runs[1].(map[string]any)["dryRun"] != true {
		t.Errorf("status: the run before the last is not the dry run: %v", runs[1])
	}

	// Provision one user on demand (pushed to the store without provisioning).
	more := serveSeedUsers(t, s.unqueuedStore(), 4, 1, nil)
	status, ans = s.admin(http.MethodPost, "/api/v1/provision/user004@example.com")
	if status != http.StatusOK || serveCount(serveReport(t, ans), "create_agent/applied") != 1 {
		t.Errorf("provision user004: %d %v", status, ans)
	}
	serveWantAgent{email: "user004@example.com", name: "User N004", enabled: true, sourceID: more[0], roles: []string{"agent"}}.check(t, s.sim, "provisioned")
	serveWantAgent{email: "user001@example.com", enabled: true, tags: []string{"chat"}, sourceID: ids[0], roles: []string{"agent"}}.check(t, s.sim, "synced")
	status, ans = s.admin(http.MethodPost, "/api/v1/provision/nobody@example.com")
	if status != http.StatusNotFound || !strings.Contains(fmt.Sprint(ans["error"]), "nobody@example.com") {
		t.Errorf("provision an unknown user: %d %v, want 404 naming the user", status, ans)
	}

	// Explain over the admin API: the same answer as bridge explain, as JSON.
	status, ans = s.admin(http.MethodGet, "/api/v1/explain/user004@example.com")
	if status != http.StatusOK || ans["agent"] == nil || ans["owned"] != true {
		t.Errorf("explain user004: %d %v, want the owned agent", status, ans)
	}
	if m, _ := ans["mapping"].(map[string]any); m == nil || m["inScope"] != true {
		t.Errorf("explain user004: mapping %v, want in scope", ans["mapping"])
	}
	if status, ans = s.admin(http.MethodGet, "/api/v1/explain/nobody@example.com"); status != http.StatusNotFound {
		t.Errorf("explain an unknown user: %d %v, want 404", status, ans)
	}

	// A push, and a refused SCIM request, for the SCIM counters.
	if status, body := s.scim(http.MethodPost, "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"pushed@example.com","emails":[{"value":"pushed@example.com","primary":true}],"active":true}`); status != http.StatusCreated {
		t.Fatalf("push: %d %v", status, body)
	}
	serveWantSCIM401(t, s, "no token", "")

	status, _, raw := s.do(http.MethodGet, "/metrics", s.adminToken, nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	m := string(raw)
	for series, want := range map[string]float64{
		`bridge_runs_total{result="ok",trigger="manual"}`:                               2, // the sync and the provisioning
		`bridge_runs_total{result="dry_run",trigger="manual"}`:                          1,
		`bridge_runs_total{result="ok",trigger="scim_push"}`:                            1,
		`bridge_changes_total{kind="create_agent",status="applied"}`:                    5,
		`bridge_changes_total{kind="create_login_user",status="applied"}`:               5,
		`bridge_babelforce_requests_total{endpoint="POST /api/v2/agents",status="201"}`: 5,
		`bridge_scim_requests_total{method="POST",status="201"}`:                        1,
		`bridge_scim_requests_total{method="GET",status="401"}`:                         1,
	} {
		got, ok := serveMetric(m, series)
		if !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if t.Failed() {
		for _, line := range strings.Split(m, "\n") {
			if strings.HasPrefix(line, "bridge_") {
				t.Log(line)
			}
		}
	}
}

// TestServeAuditLog: every write to babelforce leaves an audit record naming the trigger,
// the kind of change and its subject, and no secret appears anywhere in the logs.
func TestServeAuditLog(t *testing.T) {
	t.Parallel()
	s := serveStart(t, serveOptions{})
	s.sim.ResetCalls()
	serveReplay(t, s, []byte(serveSkillSequence), nil)
	serveSeedUsers(t, s.unqueuedStore(), 1, 2, map[string][]int{"skill-Chat": {0, 1}, "team-Chat": {1}})
	if status, ans := s.admin(http.MethodPost, "/api/v1/sync"); status != http.StatusOK {
		t.Fatalf("sync: %d %v", status, ans)
	}
	if status, ans := s.admin(http.MethodPost, "/api/v1/provision/dave@example.com"); status != http.StatusOK {
		t.Fatalf("provision: %d %v", status, ans)
	}
	writes := s.sim.WriteCalls()
	joinCalls := s.sim.Calls()["POST /api/v2/agents/groups/{groupId}/agents"]
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	logs := s.logs.String()
	audit := serveAudit(t, logs)
	// one record per write call, plus one per agent group a new agent was created in (the
	// create call carries those joins)
	joins := 0
	for _, r := range audit {
		if r["kind"] == "join_agent_group" {
			joins++
		}
	}
	if writes == 0 || len(audit) != writes+joins-joinCalls {
		t.Errorf("%d audit records for %d write calls to babelforce and %d joins (%d by their own call) (%v)",
			len(audit), writes, joins, joinCalls, s.sim.Calls())
	}
	kinds := map[string]int{}
	triggers := map[string]int{}
	for _, r := range audit {
		for _, k := range []string{"trigger", "kind", "subject", "result"} {
			if v, _ := r[k].(string); v == "" {
				t.Errorf("audit record without %s: %v", k, r)
			}
		}
		if r["result"] != "applied" {
			t.Errorf("audit record of a failed write: %v", r)
		}
		kinds[fmt.Sprint(r["kind"])]++
		triggers[fmt.Sprint(r["trigger"])]++
	}
	for _, k := range []string{"create_agent", "create_login_user", "create_agent_group", "join_agent_group", "add_tag", "remove_tag", "update_login_user", "disable_agent", "deactivate_login_user"} {
		if kinds[k] == 0 {
			t.Errorf("no audit record of kind %s (kinds: %v)", k, kinds)
		}
	}
	if triggers["scim_push"] == 0 || triggers["manual"] == 0 {
		t.Errorf("audit triggers %v, want scim_push and manual", triggers)
	}
	serveNoSecrets(t, s, logs)
}

// serveNoSecrets fails when a secret of the instance appears in logs.
func serveNoSecrets(t *testing.T, s *serveInstance, logs string) {
	t.Helper()
	for name, secret := range map[string]string{"inbound SCIM token": s.scimToken, "admin token": s.adminToken, "babelforce password": s.pwd} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
	for _, secret := range s.moreSecrets {
		if strings.Contains(logs, secret) {
			t.Errorf("a bearer token sent to the service appears in the logs")
		}
	}
}

// TestServeDemo runs `bridge demo --listen 127.0.0.1:0`, reads the SCIM URL, the tokens and
// the example user from what it prints, pushes the user the way the printed curl does, and
// finds her agent in the demo's babelforce simulator and her run in the admin API.
func TestServeDemo(t *testing.T) {
	t.Parallel()
	demoCLI := startCLI(t, nil, "demo", "--listen", "127.0.0.1:0")
	stdout, stderr := demoCLI.stdout, demoCLI.stderr
	// The demo prints the curl lines once it listens.
	demoCLI.waitFor(stdout, regexp.MustCompile(regexp.QuoteMeta("Ctrl-C stops the demo.")), 30*time.Second)
	out := stdout.String()
	if !strings.Contains(out, "0 changes, 0 write calls to babelforce") {
		t.Errorf("the demo's second run was not a no-op:\n%s", out)
	}
	find := func(re string) []string {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("demo output has nothing matching %s:\n%s", re, out)
		}
		return m
	}
	m := find(`curl -s -X POST (http://127\.0\.0\.1:\d+/scim/v2/Users) \\\s+-H "Authorization: Bearer (\S+)"`)
	scimURL, scimToken := m[1], m[2]
	user := find(`(?s)-d '(\{.*?\})'`)[1]
	m = find(`curl -s -H "Authorization: Bearer (\S+)" "(http://127\.0\.0\.1:\d+)/api/v2/agents\?q=zoe"`)
	simToken, simURL := m[1], m[2]
	adminToken := find(`admin API \(token (\S+)\):`)[1]
	base := strings.TrimSuffix(scimURL, "/scim/v2/Users")
	// The tour ends in the browser: the status pages' address and the token to sign in with.
	m = find(`(http://127\.0\.0\.1:\d+/ui/)\s+\(sign in with the admin token (\S+)\)`)
	if m[1] != base+"/ui/" || m[2] != adminToken {
		t.Errorf("the demo names the status pages %s with token %s, want %s/ui/ and the admin token", m[1], m[2], base)
	}
	if code, _, raw := serveDo(t, http.MethodGet, m[1], m[2], nil); code != http.StatusOK || !strings.Contains(string(raw), "<h1>Overview</h1>") {
		t.Errorf("the demo's status pages: %d\n%s", code, raw)
	}

	type runs struct {
		Runs []struct {
			Trigger string         `json:"trigger"`
			Counts  map[string]int `json:"counts"`
		} `json:"runs"`
		Queue struct {
			Depth int `json:"depth"`
		} `json:"queue"`
	}
	status := func() runs {
		t.Helper()
		code, _, raw := serveDo(t, http.MethodGet, base+"/api/v1/status", adminToken, nil)
		var st runs
		if err := json.Unmarshal(raw, &st); code != http.StatusOK || err != nil || len(st.Runs) == 0 {
			t.Fatalf("admin status: %d %v %s", code, err, raw)
		}
		return st
	}
	// The service's scheduler runs once at start; wait for that run so that the push's own
	// run is the one that creates the agent.
	deadline := time.Now().Add(30 * time.Second)
	for st := status(); st.Runs[0].Trigger != "schedule"; st = status() {
		if time.Now().After(deadline) {
			t.Fatalf("no scheduled run in the demo's status: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := status(); st.Runs[0].Counts["applied"] != 0 {
		t.Errorf("the scheduled run after the demo's two runs applied changes: %+v", st.Runs[0])
	}

	code, _, raw := serveDo(t, http.MethodPost, scimURL, scimToken, user)
	if code != http.StatusCreated {
		t.Fatalf("push the printed example user: %d %s", code, raw)
	}
	// the push is answered once stored and queued; the queue worker applies it
	deadline = time.Now().Add(30 * time.Second)
	for st := status(); st.Queue.Depth != 0; st = status() {
		if time.Now().After(deadline) {
			t.Fatalf("the demo's change queue is not drained: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	code, _, raw = serveDo(t, http.MethodGet, simURL+"/api/v2/agents?q=zoe", simToken, nil)
	if code != http.StatusOK {
		t.Fatalf("simulator agents?q=zoe: %d %s", code, raw)
	}
	var list struct {
		Items []babelforce.Agent `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatalf("simulator answer: %v\n%s", err, raw)
	}
	if len(list.Items) != 1 || list.Items[0].Email != "zoe@example.com" || list.Items[0].Name != "Zoe Newman" ||
		list.Items[0].Number != "+49305550199" || !list.Items[0].IsEnabled() || list.Items[0].AgentSource == "" {
		t.Errorf("simulator agents for zoe: %s", raw)
	}
	st := status()
	if st.Runs[0].Trigger != "scim_push" || st.Runs[0].Counts["create_agent/applied"] != 1 {
		t.Errorf("admin status: last run %+v, want the push creating one agent", st.Runs[0])
	}
	if c := demoCLI.stop(); c != exitOK {
		t.Errorf("demo exited with %d after cancellation\nstderr:\n%s", c, stderr)
	}
	for _, secret := range []string{scimToken, adminToken} {
		if strings.Contains(stderr.String(), secret) {
			t.Errorf("a token appears in the demo's logs")
		}
	}
}

// TestServeCommand runs `bridge serve --config FILE` itself (flags, config file, secrets from
// the environment, logs on stderr), pushes a user, and stops it the way SIGTERM does.
func TestServeCommand(t *testing.T) {
	t.Parallel()
	sim := serveNewSim(t)
	dir := t.TempDir()
	scimToken, adminToken := serveSecret("scimtok"), serveSecret("admintok")
	raw := fmt.Sprintf(serveConfigTemplate, sim.URL, sim.Username, 1, serveAgentSource, 4,
		filepath.Join(dir, "state.json"), "", "", filepath.Join(dir, "bridge.db"))
	cfgPath := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(cfgPath, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"BRIDGE_BABELFORCE_PASSWORD": sim.Password,
		"BRIDGE_INBOUND_SCIM_TOKENS": scimToken,
		"BRIDGE_SERVER_ADMIN_TOKEN":  adminToken,
		"BRIDGE_LOG_LEVEL":           "info",
	}
	serve := startCLI(t, vars, "serve", "--config", cfgPath)
	stdout, stderr := serve.stdout, serve.stderr
	// The listen address (port 0) is in the "bridge serving" log line.
	m := serve.waitFor(stderr, regexp.MustCompile(`"msg":"bridge serving","addr":"(127\.0\.0\.1:\d+)"`), 20*time.Second)
	base := "http://" + m[1]
	status, _, body := serveDo(t, http.MethodPost, base+"/scim/v2/Users", scimToken, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName":"cli@example.com","displayName":"Cli User","emails":[{"value":"cli@example.com","primary":true}],"active":true}`)
	if status != http.StatusCreated {
		t.Fatalf("push: %d %s", status, body)
	}
	// serve starts with a scheduled run; a push that lands while it runs is answered at once
	// and provisioned right after it, so wait for the agent (and its login user).
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if status, _, body := serveDo(t, http.MethodGet, base+"/api/v1/status", adminToken, nil); status == http.StatusOK && strings.Contains(string(body), `"scim_push"`) {
			break
		}
	}
	serveWantAgent{email: "cli@example.com", name: "Cli User", enabled: true, roles: []string{"agent"}}.check(t, sim, "pushed to bridge serve")
	if status, _, body := serveDo(t, http.MethodGet, base+"/api/v1/status", adminToken, nil); status != http.StatusOK || !strings.Contains(string(body), `"scim_push"`) {
		t.Errorf("status with the admin token from the environment: %d %s", status, body)
	}
	if c := serve.stop(); c != exitOK {
		t.Errorf("serve exited with %d after cancellation\n%s", c, stderr)
	}
	logs := stderr.String()
	if !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("no orderly stop logged\n%s", logs)
	}
	if strings.Contains(logs, `"level":"DEBUG"`) {
		t.Errorf("BRIDGE_LOG_LEVEL=info did not override the file's debug level")
	}
	for _, secret := range []string{scimToken, adminToken, sim.Password} {
		if strings.Contains(logs+stdout.String(), secret) {
			t.Errorf("a secret appears in the output of bridge serve")
		}
	}
}

// TestServeConcurrentPushes: an IdP pushing many users at once (Okta and Entra ID send
// requests in parallel) gets every one stored and provisioned; a full sync afterwards finds
// nothing left to do. A user pushed inactive gets no agent.
func TestServeConcurrentPushes(t *testing.T) {
	t.Parallel()
	s := serveStart(t, serveOptions{})
	const n = 25
	type answer struct {
		status int
		id     string
		err    error
	}
	answers := make(chan answer, n+1)
	push := func(i int, active bool) {
		email := fmt.Sprintf("p%02d@example.com", i)
		body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,
			"name":{"givenName":"P","familyName":"%02d"},"emails":[{"value":%q,"primary":true}],"active":%v}`, email, i, email, active)
		req, _ := http.NewRequest(http.MethodPost, s.base+"/scim/v2/Users", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.scimToken)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := serveHTTP.Do(req)
		if err != nil {
			answers <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		var res struct {
			ID string `json:"id"`
		}
		err = json.NewDecoder(resp.Body).Decode(&res)
		answers <- answer{status: resp.StatusCode, id: res.ID, err: err}
	}
	for i := range n {
		go push(i, true)
	}
	go push(n, false)
	var ids []string
	for range n + 1 {
		a := <-answers
		if a.err != nil || a.status != http.StatusCreated {
			t.Errorf("concurrent push: %d %v", a.status, a.err)
			continue
		}
		ids = append(ids, a.id)
	}
	// A push that arrives while a run is in flight is answered at once and provisioned right
	// after that run (the IdP must not wait): wait for the queue to be worked off.
	deadline := time.Now().Add(20 * time.Second)
	for len(s.sim.Agents()) < n || len(s.sim.SCIMUsers()) < n {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	agents := s.sim.Agents()
	if len(agents) != n {
		t.Errorf("%d agents after %d concurrent pushes of active users, want %d%s", len(agents), n, n, serveDescribeAgents(s.sim))
	}
	for _, a := range agents {
		if !slices.Contains(ids, a.SourceID) || !a.IsEnabled() {
			t.Errorf("agent %+v", a)
		}
	}
	if _, ok := serveAgentByEmail(s.sim, fmt.Sprintf("p%02d@example.com", n)); ok {
		t.Errorf("an agent was created for a user pushed inactive")
	}
	s.sim.ResetCalls()
	status, ans := s.admin(http.MethodPost, "/api/v1/sync")
	if status != http.StatusOK {
		t.Fatalf("sync: %d %v", status, ans)
	}
	if w := s.sim.WriteCalls(); w != 0 {
		t.Errorf("the sync after the pushes made %d writes, want 0: %v", w, s.sim.Calls())
	}
}

// TestServeReadiness: /readyz says whether this replica can serve (its store answers), not
// whether babelforce does: with bridge's babelforce credentials refused it stays 200, while
// the background check shows babelforce down in bridge_upstream_up and /api/v1/status.
func TestServeReadiness(t *testing.T) {
	t.Parallel()
	s := serveStart(t, serveOptions{password: serveSecret("wrongpw")})
	if status, _, raw := s.do(http.MethodGet, "/readyz", "", nil); status != http.StatusOK || string(raw) != "ready\n" {
		t.Errorf("/readyz with refused babelforce credentials: %d %s, want 200", status, raw)
	}
	if status, _, raw := s.do(http.MethodGet, "/healthz", "", nil); status != http.StatusOK {
		t.Errorf("/healthz: %d %s", status, raw)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, _, raw := s.do(http.MethodGet, "/metrics", s.adminToken, nil)
		if v, ok := serveMetric(string(raw), `bridge_upstream_up{upstream="babelforce"}`); ok {
			if v != 0 {
				t.Errorf("bridge_upstream_up{upstream=\"babelforce\"} = %v with refused credentials, want 0", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no bridge_upstream_up{upstream=\"babelforce\"} in /metrics")
		}
	}
	_, st := s.admin(http.MethodGet, "/api/v1/status")
	ups, _ := st["upstreams"].(map[string]any)
	bf, _ := ups["babelforce"].(map[string]any)
	if bf["up"] != false || !strings.Contains(fmt.Sprint(bf["error"]), "rejected the credentials") {
		t.Errorf("status upstreams: %v, want babelforce down with the error", ups)
	}
	// the store is what readiness needs: closed, the replica is not ready
	if err := s.svc.app.store.Close(); err != nil {
		t.Fatal(err)
	}
	if status, _, raw := s.do(http.MethodGet, "/readyz", "", nil); status != http.StatusServiceUnavailable || !strings.Contains(string(raw), "store") {
		t.Errorf("/readyz with the store closed: %d %s, want 503 naming the store", status, raw)
	}
}

// TestServeObserveMode: with sync.dry_run (observe mode) a push is stored and answered but
// nothing reaches babelforce; scheduled runs only plan; an explicit POST /api/v1/sync writes.
func TestServeObserveMode(t *testing.T) {
	t.Parallel()
	s := serveStart(t, serveOptions{schedule: true, env: map[string]string{"BRIDGE_SYNC_DRY_RUN": "true"}})
	if status, body := s.scim(http.MethodPost, "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"obs@example.com","emails":[{"value":"obs@example.com","primary":true}],"active":true}`); status != http.StatusCreated {
		t.Fatalf("push: %d %v", status, body)
	}
	if n := len(s.sim.Agents()); n != 0 || s.sim.WriteCalls() != 0 {
		t.Fatalf("observe mode: %d agents, %d write calls after a push", n, s.sim.WriteCalls())
	}
	status, ans := s.admin(http.MethodPost, "/api/v1/sync")
	if status != http.StatusOK || serveCount(serveReport(t, ans), "create_agent/applied") != 1 {
		t.Fatalf("explicit sync in observe mode: %d %v", status, ans)
	}
	if _, ok := serveAgentByEmail(s.sim, "obs@example.com"); !ok {
		t.Errorf("the explicit sync did not create the agent")
	}
	if !strings.Contains(s.logs.String(), "observe mode") {
		t.Errorf("observe mode not logged at start")
	}
}

// TestServeLeaverWithSharedEmail: when a second person has the same e-mail as person A,
// deactivating A (PATCH active false) still disables A's agent and login user in the run the
// push triggers; the conflict is logged, not a reason to leave A enabled.
func TestServeLeaverWithSharedEmail(t *testing.T) {
	t.Parallel()
	s := serveStart(t, serveOptions{})
	user := func(userName string) string {
		return fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,
			"name":{"givenName":"Sam","familyName":"Shared"},"emails":[{"value":"shared@example.com","primary":true}],"active":true}`, userName)
	}
	status, a := s.scim(http.MethodPost, "/Users", user("sam.a"))
	if status != http.StatusCreated {
		t.Fatalf("push A: %d %v", status, a)
	}
	if ag, ok := serveAgentByEmail(s.sim, "shared@example.com"); !ok || !ag.IsEnabled() {
		t.Fatalf("A's agent not provisioned: %+v%s", ag, serveDescribeAgents(s.sim))
	}
	if status, b := s.scim(http.MethodPost, "/Users", user("sam.b")); status != http.StatusCreated {
		t.Fatalf("push B: %d %v", status, b)
	}
	status, body := s.scim(http.MethodPatch, "/Users/"+a["id"].(string), `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","path":"active","value":false}]}`)
	if status != http.StatusOK {
		t.Fatalf("deactivate A: %d %v", status, body)
	}
	ag, ok := serveAgentByEmail(s.sim, "shared@example.com")
	if !ok || ag.IsEnabled() {
		t.Errorf("A's agent is still enabled after A was deactivated: %+v%s", ag, serveDescribeAgents(s.sim))
	}
	for _, u := range s.sim.SCIMUsers() {
		if strings.EqualFold(u.UserName, "shared@example.com") && u.IsActive() {
			t.Errorf("A's login user is still active: %+v", u)
		}
	}
	if n := len(s.sim.Agents()); n != 1 {
		t.Errorf("%d agents, want A's only (B shares the e-mail)%s", n, serveDescribeAgents(s.sim))
	}
	if !strings.Contains(s.logs.String(), "leaver switched off despite a conflict") {
		t.Errorf("the conflict is not logged")
	}
}
