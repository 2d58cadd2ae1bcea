package main

// End-to-end tests of `bridge serve` (the acceptance checks of issue 5): the service is built
// in process from a YAML configuration exactly as the CLI builds it, serves on a loopback
// listener, and talks to the babelforce simulator over HTTP. IdP pushes are the recorded Okta
// and Entra ID sequences of testdata/scim.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/babelforce/babelforcetest"
)

const (
	serveAgentSource = "bridge:e2e"
	serveSCIMError   = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// serveSyncBuffer is a bytes.Buffer safe for concurrent writers and readers (logs, stdout).
type serveSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *serveSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *serveSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveOptions vary the service a test starts.
type serveOptions struct {
	sim      *babelforcetest.Server // nil: a new simulator
	dir      string                 // store and state directory; "": a new temporary one
	schedule bool                   // run the scheduler (a run at start, then every hour)
	// maxAttempts of babelforce calls (default 1: a fault fails fast instead of retrying).
	maxAttempts int
	// oidcIssuer/oidcAudience configure JWT bearer tokens on the inbound SCIM endpoint.
	oidcIssuer, oidcAudience string
	concurrency              int // sync.concurrency (default 4)
}

// serveInstance is one running `bridge serve`.
type serveInstance struct {
	t                          *testing.T
	sim                        *babelforcetest.Server
	dir                        string
	base                       string // http://127.0.0.1:port
	scimToken, adminToken, pwd string
	logs                       *serveSyncBuffer
	svc                        *service
	cancel                     context.CancelFunc
	done                       chan error
	stopOnce                   sync.Once
	stopErr                    error
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
sso:
  allow_insecure_http: true   # the CLI passes this to the inbound SCIM token verifier
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
	s := &serveInstance{
		t: t, sim: o.sim, dir: o.dir, logs: &serveSyncBuffer{},
		scimToken: serveSecret("scimtok"), adminToken: serveSecret("admintok"), pwd: o.sim.Password,
		done: make(chan error, 1),
	}
	raw := fmt.Sprintf(serveConfigTemplate, o.sim.URL, o.sim.Username, o.maxAttempts, serveAgentSource,
		o.concurrency, filepath.Join(o.dir, "state.json"), o.oidcIssuer, o.oidcAudience,
		filepath.Join(o.dir, "bridge.db"))
	env := map[string]string{
		"BRIDGE_BABELFORCE_PASSWORD": o.sim.Password,
		"BRIDGE_INBOUND_SCIM_TOKENS": s.scimToken,
		"BRIDGE_SERVER_ADMIN_TOKEN":  s.adminToken,
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	cfg, err := parseConfig(ctx, []byte(raw), "e2e.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		cancel()
		t.Fatalf("config: %v", err)
	}
	logger := newLogger(cfg.Log, s.logs)
	svc, err := newService(ctx, cfg, logger, nil)
	if err != nil {
		cancel()
		t.Fatalf("new service: %v", err)
	}
	s.svc = svc
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		svc.app.close()
		t.Fatalf("listen: %v", err)
	}
	s.base = "http://" + ln.Addr().String()
	go func() { s.done <- svc.serve(ctx, ln, o.schedule) }()
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

// scim sends a SCIM request with the inbound token.
func (s *serveInstance) scim(method, path string, body any) (int, map[string]any) {
	s.t.Helper()
	status, _, raw := s.do(method, "/scim/v2"+path, s.scimToken, body)
	var m map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			s.t.Fatalf("%s %s: %d, body is not JSON: %v\n%s", method, path, status, err, raw)
		}
	}
	return status, m
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

type serveReplayFile struct {
	Description string            `json:"description"`
	Steps       []serveReplayStep `json:"steps"`
}

type serveReplayStep struct {
	Name    string            `json:"name"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
	Save    map[string]string `json:"save"`
	Expect  struct {
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    map[string]any    `json:"body"`
	} `json:"expect"`
}

// serveReplay sends every step of a recorded sequence to the service's /scim/v2 endpoint
// with the inbound token, checks each answer as the recording expects, and calls after
// (when not nil) after each step with the step's index and the saved variables.
func serveReplay(t *testing.T, s *serveInstance, raw []byte, after func(i int, vars map[string]string)) map[string]string {
	t.Helper()
	var rf serveReplayFile
	if err := json.Unmarshal(raw, &rf); err != nil {
		t.Fatalf("replay file: %v", err)
	}
	if len(rf.Steps) == 0 {
		t.Fatal("replay file has no steps")
	}
	vars := map[string]string{}
	subst := func(s string) string {
		for k, v := range vars {
			s = strings.ReplaceAll(s, "${"+k+"}", v)
		}
		return s
	}
	for i, st := range rf.Steps {
		label := fmt.Sprintf("step %d (%s)", i+1, st.Name)
		var body any
		if len(st.Body) > 0 {
			body = subst(string(st.Body))
		}
		var headers []string
		for k, v := range st.Headers {
			headers = append(headers, k, v)
		}
		path := subst(st.Path)
		status, hdr, rawBody := s.do(st.Method, "/scim/v2"+path, s.scimToken, body, headers...)
		if status != st.Expect.Status {
			t.Fatalf("%s: %s %s: status %d, want %d\n%s", label, st.Method, path, status, st.Expect.Status, rawBody)
		}
		var doc any
		if len(bytes.TrimSpace(rawBody)) > 0 {
			if err := json.Unmarshal(rawBody, &doc); err != nil {
				t.Fatalf("%s: body is not JSON: %v\n%s", label, err, rawBody)
			}
		}
		for name, p := range st.Save {
			v, ok := serveLookup(doc, p)
			str, isStr := v.(string)
			if !ok || !isStr || str == "" {
				t.Fatalf("%s: cannot save %s from %s\n%s", label, name, p, rawBody)
			}
			vars[name] = str
		}
		for h, want := range st.Expect.Headers {
			got := hdr.Get(h)
			if want == "<present>" {
				if got == "" {
					t.Errorf("%s: header %s missing", label, h)
				}
				continue
			}
			if got != subst(want) {
				t.Errorf("%s: header %s = %q, want %q", label, h, got, subst(want))
			}
		}
		for p, want := range st.Expect.Body {
			got, ok := serveLookup(doc, p)
			switch want {
			case "<absent>":
				if ok {
					t.Errorf("%s: %s present (%v), want absent", label, p, got)
				}
				continue
			case "<present>":
				if !ok || got == nil {
					t.Errorf("%s: %s absent, want present", label, p)
				}
				continue
			}
			if str, isStr := want.(string); isStr {
				want = subst(str)
			}
			if !ok || !serveSameJSON(got, want) {
				t.Errorf("%s: %s = %v, want %v\n%s", label, p, got, want, rawBody)
			}
		}
		if after != nil {
			after(i, vars)
		}
	}
	return vars
}

// serveLookup follows a /-separated path of keys and indexes; a final # is an array's length.
func serveLookup(doc any, path string) (any, bool) {
	cur := doc
	for _, part := range strings.Split(path, "/") {
		switch v := cur.(type) {
		case map[string]any:
			var ok bool
			if cur, ok = v[part]; !ok {
				return nil, false
			}
		case []any:
			if part == "#" {
				return float64(len(v)), true
			}
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func serveSameJSON(a, b any) bool {
	ra, err1 := json.Marshal(a)
	rb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ra, rb)
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
