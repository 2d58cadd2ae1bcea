package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce/babelforcetest/spectest"
)

var simListening = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)

// simStart runs `bridge simulate ARGS` in the background until the test ends and returns the
// address it printed and the running command.
func simStart(t *testing.T, args ...string) (base string, cli *bgCLI) {
	t.Helper()
	cli = startCLI(t, nil, append([]string{"simulate"}, args...)...)
	return cli.waitFor(cli.stdout, simListening, 10*time.Second)[1], cli
}

// simSpec talks to a running simulator and checks every request to an operation of
// testdata/babelforce/openapi.yaml, and its response, against that spec.
type simSpec struct {
	t *testing.T
	v *spectest.Validator
}

func newSimSpec(t *testing.T, base string) *simSpec {
	t.Helper()
	return &simSpec{t: t, v: spectest.New(t, base)}
}

type simResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r simResponse) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
	return m
}

// do sends a request; contentType "" with a body means JSON. inSpec says whether the
// operation is one of the spec's (then request and response are validated).
func (s *simSpec) do(method, path, contentType string, body []byte, token string, inSpec bool) simResponse {
	s.t.Helper()
	res := s.v.Do(s.t, spectest.Request{Method: method, Path: path, ContentType: contentType, Body: body, Token: token, NoRoute: !inSpec})
	return simResponse{Status: res.Status, Header: res.Header, Body: res.Body}
}

func (s *simSpec) passwordGrant(user, pass string) simResponse {
	s.t.Helper()
	form := url.Values{"grant_type": {"password"}, "client_id": {"manager"}, "username": {user}, "password": {pass}}
	return s.do(http.MethodPost, "/oauth/token", "application/x-www-form-urlencoded", []byte(form.Encode()), "", true)
}

func simJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var simHexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestSimulateByHand is what someone does with `bridge simulate` and curl: a password grant,
// agents created and paged, stats, faults; every answer of a published operation matches
// babelforce's spec.
func TestSimulateByHand(t *testing.T) {
	base, cli := simStart(t, "--listen", "127.0.0.1:0", "--username", "u", "--password", "p")
	api := newSimSpec(t, base)

	// password grant
	res := api.passwordGrant("u", "p")
	if res.Status != http.StatusOK {
		t.Fatalf("token: status %d: %s", res.Status, res.Body)
	}
	tok := res.object(t)
	access, _ := tok["access_token"].(string)
	if access == "" || !strings.EqualFold(fmt.Sprint(tok["token_type"]), "bearer") {
		t.Fatalf("token response %s", res.Body)
	}

	res = api.passwordGrant("u", "wrong")
	if res.Status != http.StatusBadRequest && res.Status != http.StatusUnauthorized {
		t.Fatalf("wrong password: status %d, want 400 or 401: %s", res.Status, res.Body)
	}
	if e, _ := res.object(t)["error"].(string); e == "" {
		t.Errorf("wrong password: no error field in %s", res.Body)
	}

	// no token, no agents
	if res := api.do(http.MethodGet, "/api/v2/agents", "", nil, "", false); res.Status != http.StatusUnauthorized {
		t.Errorf("GET agents without token: status %d, want 401", res.Status)
	}

	// create 25 agents
	ids := map[string]bool{}
	for i := range 25 {
		body := simJSON(t, map[string]any{"name": fmt.Sprintf("Agent %02d", i), "email": fmt.Sprintf("agent%02d@example.com", i)})
		res := api.do(http.MethodPost, "/api/v2/agents", "", body, access, true)
		if res.Status != http.StatusCreated {
			t.Fatalf("create agent %d: status %d: %s", i, res.Status, res.Body)
		}
		var created struct {
			Item    map[string]any `json:"item"`
			Success bool           `json:"success"`
		}
		if err := json.Unmarshal(res.Body, &created); err != nil {
			t.Fatal(err)
		}
		id, _ := created.Item["id"].(string)
		if !created.Success || !simHexID.MatchString(id) || created.Item["name"] != fmt.Sprintf("Agent %02d", i) {
			t.Fatalf("create agent %d: %s", i, res.Body)
		}
		ids[id] = true
	}
	if len(ids) != 25 {
		t.Errorf("%d distinct ids for 25 agents", len(ids))
	}

	// page 2 of 3
	res = api.do(http.MethodGet, "/api/v2/agents?page=2&max=10", "", nil, access, true)
	if res.Status != http.StatusOK {
		t.Fatalf("list agents: status %d: %s", res.Status, res.Body)
	}
	var page struct {
		Items      []map[string]any `json:"items"`
		Pagination map[string]any   `json:"pagination"`
	}
	if err := json.Unmarshal(res.Body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 10 {
		t.Errorf("page 2: %d items, want 10", len(page.Items))
	}
	for _, it := range page.Items {
		id, _ := it["id"].(string)
		if !simHexID.MatchString(id) || !ids[id] {
			t.Errorf("page 2 lists id %q, not one of the created agents in 32 lower-case hex", id)
		}
	}
	for k, want := range map[string]float64{"current": 2, "max": 10, "pages": 3, "total": 25} {
		if got, ok := page.Pagination[k].(float64); !ok || got != want {
			t.Errorf("pagination.%s = %v, want %v (pagination %v)", k, page.Pagination[k], want, page.Pagination)
		}
	}
	res = api.do(http.MethodGet, "/api/v2/agents?page=3&max=10", "", nil, access, true)
	if err := json.Unmarshal(res.Body, &page); err != nil || len(page.Items) != 5 {
		t.Errorf("page 3: %d items (want 5), %v", len(page.Items), err)
	}

	// stats need no token
	res = api.do(http.MethodGet, "/_simulator/stats", "", nil, "", false)
	if res.Status != http.StatusOK {
		t.Fatalf("stats: status %d: %s", res.Status, res.Body)
	}
	var stats struct {
		Calls  map[string]int `json:"calls"`
		Agents int            `json:"agents"`
		Writes int            `json:"writes"`
	}
	if err := json.Unmarshal(res.Body, &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Agents != 25 || stats.Calls["POST /api/v2/agents"] != 25 || stats.Calls["GET /api/v2/agents"] != 3 || stats.Writes != 25 {
		t.Errorf("stats: agents %d, writes %d, calls %v; want 25 agents, 25 writes, 25 POST and 3 GET", stats.Agents, stats.Writes, stats.Calls)
	}

	// faults: a token is needed to set them
	faults := simJSON(t, map[string]any{"rate429": 1, "retryAfter": "2s"})
	if res := api.do(http.MethodPost, "/_simulator/faults", "", faults, "", false); res.Status != http.StatusUnauthorized {
		t.Errorf("faults without token: status %d, want 401", res.Status)
	}
	if res := api.do(http.MethodPost, "/_simulator/faults", "", faults, access, false); res.Status != http.StatusOK {
		t.Fatalf("faults with token: status %d: %s", res.Status, res.Body)
	}
	res = api.do(http.MethodGet, "/api/v2/agents", "", nil, access, true)
	if res.Status != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "2" {
		t.Errorf("with rate429=1: status %d, Retry-After %q; want 429 and 2", res.Status, res.Header.Get("Retry-After"))
	}

	if code := cli.stop(); code != exitOK {
		t.Errorf("bridge simulate exited %d after cancel, want 0", code)
	}
}

func TestSimulateBadFaultRate(t *testing.T) {
	out, errOut, code := runCLI(t, nil, "simulate", "--listen", "127.0.0.1:0", "--fault-rate", "2")
	if code != exitRefused {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(errOut, "--fault-rate") || !strings.Contains(errOut, "between 0 and 1") {
		t.Errorf("stderr does not explain the fault rate: %q", errOut)
	}
	if strings.Contains(out, "listening") {
		t.Errorf("simulator started anyway: %q", out)
	}
}

func TestCLIVersion(t *testing.T) {
	out, _, code := runCLI(t, nil, "version")
	if code != exitOK || !strings.HasPrefix(out, "bridge ") {
		t.Errorf("bridge version: exit %d, stdout %q", code, out)
	}
}

func TestCLIUnknownCommand(t *testing.T) {
	out, errOut, code := runCLI(t, nil, "frobnicate")
	if code != exitRefused {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(errOut, `unknown command "frobnicate"`) || !strings.Contains(errOut, "usage: bridge") {
		t.Errorf("stderr %q", errOut)
	}
	if out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}
	if out, _, code := runCLI(t, nil); code != exitOK || !strings.Contains(out, "usage: bridge") {
		t.Errorf("no command: exit %d, stdout %q; want the command list and 0", code, out)
	}
}

func TestCLIHelpListsEveryCommand(t *testing.T) {
	out, _, code := runCLI(t, nil, "help")
	if code != exitOK {
		t.Errorf("exit %d, want 0", code)
	}
	for _, c := range commands() {
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(c.name) + `\s+\S`).MatchString(out) {
			t.Errorf("help does not list %q:\n%s", c.name, out)
		}
	}
	for _, name := range []string{"demo", "plan", "sync", "provision", "explain", "serve", "directory", "sso", "config", "simulate", "version"} {
		if !strings.Contains(out, "  "+name+" ") {
			t.Errorf("help does not list %q", name)
		}
	}
}

func TestCLIConfigValidate(t *testing.T) {
	ldif := writeTempFile(t, "dir.ldif", "dn: dc=example,dc=com\nobjectClass: domain\ndc: example\n")
	good := writeTempFile(t, "good.yaml", `
babelforce: {base_url: "https://services.babelforce.com", username: admin@example.com}
directory: {type: ldif, ldif: {path: "`+ldif+`"}}
mapping: {agent_source: "bridge:test"}
`)
	vars := map[string]string{"BRIDGE_BABELFORCE_PASSWORD": "pw-4711"}
	out, errOut, code := runCLI(t, vars, "config", "validate", "--config", good)
	if code != exitOK || !strings.Contains(out, "OK") || !strings.Contains(out, good) {
		t.Errorf("good config: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if strings.Contains(out+errOut, "pw-4711") {
		t.Errorf("the password was printed")
	}

	// three mistakes: an ftp base URL, no agent_source, a negative sync concurrency
	bad := writeTempFile(t, "bad.yaml", `
babelforce: {base_url: "ftp://services.babelforce.com", username: admin@example.com}
directory: {type: ldif, ldif: {path: "`+ldif+`"}}
mapping: {agent_source: ""}
sync: {concurrency: -3}
`)
	out, errOut, code = runCLI(t, vars, "config", "validate", "--config", bad)
	if code != exitError {
		t.Errorf("bad config: exit %d, want 1", code)
	}
	for _, want := range []string{"babelforce.base_url", "mapping.agent_source", "sync.concurrency", "3 problem(s)"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("bad config: stderr does not name %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(out, "OK") {
		t.Errorf("bad config: stdout %q", out)
	}

	if _, errOut, code := runCLI(t, nil, "config", "validate"); code != exitRefused || !strings.Contains(errOut, "--config") {
		t.Errorf("no --config: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := runCLI(t, nil, "config", "check"); code != exitRefused || !strings.Contains(errOut, "config validate") {
		t.Errorf("config check: exit %d, stderr %q", code, errOut)
	}
}
