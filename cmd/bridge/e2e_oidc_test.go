package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/internal/testenv"
	"github.com/babelforce/bridge/provisioning"
)

// oidcSSOPutKey is how the simulator counts writes of the SSO configuration.
const oidcSSOPutKey = "PUT /auth/sso/configuration"

// oidcLDIF is a tiny directory for the sync case: two people, one group.
const oidcLDIF = `version: 1

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: uid=ann,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: ann
cn: Ann Archer
sn: Archer
givenName: Ann
mail: ann@example.com
entryUUID: 2f1d6c6e-0d0e-4d71-9f3b-5f2a4c1e0a01

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob Baker
sn: Baker
givenName: Bob
mail: bob@example.com
entryUUID: 2f1d6c6e-0d0e-4d71-9f3b-5f2a4c1e0a02

dn: cn=support,dc=example,dc=com
objectClass: groupOfNames
cn: support
member: uid=ann,ou=people,dc=example,dc=com
member: uid=bob,ou=people,dc=example,dc=com
entryUUID: 2f1d6c6e-0d0e-4d71-9f3b-5f2a4c1e0a03
`

// oidcSetup is one CLI configuration pointing at a simulator, with SSO enabled.
type oidcSetup struct {
	t        *testing.T
	sim      *babelforcetest.Server
	dir      string
	secret   string
	secrets  []string // every secret used so far: none may ever be printed
	stateDir string
}

func newOIDCSetup(t *testing.T, secret string) *oidcSetup {
	t.Helper()
	s := &oidcSetup{t: t, sim: babelforcetest.New(t, babelforcetest.Options{}), dir: t.TempDir(), stateDir: t.TempDir()}
	s.setSecret(secret)
	return s
}

func (s *oidcSetup) setSecret(secret string) {
	s.secret = secret
	s.secrets = append(s.secrets, secret)
}

// config writes a configuration with the given sso settings (issuer, client id) and returns
// its path. The state file (with the secret's fingerprint) is the same for every configuration
// of the setup.
func (s *oidcSetup) config(issuer, clientID string) string {
	s.t.Helper()
	ldif := writeTempFile(s.t, "dir.ldif", oidcLDIF)
	cfg := fmt.Sprintf(`
babelforce:
  base_url: %q
  username: %q
  max_attempts: 2
directory:
  type: ldif
  ldif: {path: %q, preset: openldap}
mapping:
  agent_source: "bridge:oidc-test"
sync:
  state_file: %q
sso:
  enabled: true
  issuer: %q
  client_id: %q
  allow_insecure_http: true
log:
  level: debug
  format: text
`, s.sim.URL, s.sim.Username, ldif, filepath.Join(s.stateDir, "state.json"), issuer, clientID)
	return writeTempFile(s.t, "bridge.yaml", cfg)
}

// run runs a bridge command with the simulator's password and the current SSO secret in the
// environment, and checks that no secret reached stdout or stderr.
func (s *oidcSetup) run(args ...string) (int, string, string) {
	s.t.Helper()
	out, errOut, code := runCLI(s.t, map[string]string{
		"BRIDGE_BABELFORCE_PASSWORD": s.sim.Password,
		"BRIDGE_SSO_CLIENT_SECRET":   s.secret,
	}, args...)
	for _, sec := range s.secrets {
		if strings.Contains(out, sec) || strings.Contains(errOut, sec) {
			s.t.Errorf("bridge %s printed the SSO client secret", strings.Join(args, " "))
		}
	}
	if strings.Contains(out, s.sim.Password) || strings.Contains(errOut, s.sim.Password) {
		s.t.Errorf("bridge %s printed the babelforce password", strings.Join(args, " "))
	}
	return code, out, errOut
}

func (s *oidcSetup) ssoPuts() int { return s.sim.Calls()[oidcSSOPutKey] }

func TestOIDCCheckAndApply(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	s := newOIDCSetup(t, op.ClientSecret)
	cfg := s.config(op.Issuer, op.ClientID)

	code, out, errOut := s.run("sso", "check", "--config", cfg)
	if code != exitOK {
		t.Fatalf("oidc check: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	for _, check := range []string{"discovery", "issuer", "authorization_endpoint", "token_endpoint", "jwks"} {
		if !strings.Contains(out, "[ok  ] "+check) {
			t.Errorf("oidc check does not report %q as passed:\n%s", check, out)
		}
	}
	if !strings.Contains(out, op.Issuer) || !strings.Contains(out, "result: OK") {
		t.Errorf("oidc check report:\n%s", out)
	}
	if s.sim.WriteCalls() != 0 {
		t.Errorf("oidc check wrote to babelforce: %v", s.sim.Calls())
	}

	// first apply: one write, redirect URIs printed
	code, out, errOut = s.run("sso", "apply", "--config", cfg)
	if code != exitOK {
		t.Fatalf("oidc apply: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if s.ssoPuts() != 1 || s.sim.WriteCalls() != 1 {
		t.Fatalf("first apply: %d SSO PUTs, %d writes; want 1, 1 (%v)", s.ssoPuts(), s.sim.WriteCalls(), s.sim.Calls())
	}
	for _, want := range []string{"~ update sso", "applied", "Register these redirect URIs",
		s.sim.URL + "/auth/sso/callback/manager", s.sim.URL + "/auth/sso/callback/agent"} {
		if !strings.Contains(out, want) {
			t.Errorf("first apply: stdout lacks %q:\n%s", want, out)
		}
	}
	st := s.sim.SSOConfig()
	if !st.Enabled || st.Issuer != op.Issuer || st.ClientID != op.ClientID || st.ClientSecret != op.ClientSecret ||
		st.AuthorizationEndpoint != op.Issuer+"/auth" || st.TokenEndpoint != op.Issuer+"/oauth/token" {
		t.Errorf("simulator holds %+v", st)
	}

	// second apply, by the command's old name: nothing to write, and a deprecation warning
	code, out, errOut = s.run("oidc", "apply", "--config", cfg)
	if code != exitOK || s.ssoPuts() != 1 || s.sim.WriteCalls() != 1 {
		t.Errorf("second apply: exit %d, %d SSO PUTs, %d writes; want 0, 1, 1\nstdout: %s\nstderr: %s", code, s.ssoPuts(), s.sim.WriteCalls(), out, errOut)
	}
	if !strings.Contains(out, "No changes") || strings.Contains(out, "applied") {
		t.Errorf("second apply: stdout:\n%s", out)
	}
	if !strings.Contains(errOut, `the command "oidc" is deprecated, use "bridge sso"`) {
		t.Errorf("bridge oidc apply: no deprecation warning on stderr: %q", errOut)
	}

	// a new client id: one write
	cfg = s.config(op.Issuer, "renamed-client")
	code, out, errOut = s.run("sso", "apply", "--config", cfg)
	if code != exitOK || s.ssoPuts() != 2 || s.sim.SSOConfig().ClientID != "renamed-client" {
		t.Errorf("client id change: exit %d, %d SSO PUTs (want 2), stored client id %q\nstdout: %s\nstderr: %s",
			code, s.ssoPuts(), s.sim.SSOConfig().ClientID, out, errOut)
	}
	if !strings.Contains(out, "clientId") {
		t.Errorf("client id change: the plan does not name clientId:\n%s", out)
	}

	// a new secret: one write, the plan says the secret changed without showing it
	s.setSecret("rotated-secret-8d7c6b5a")
	code, out, errOut = s.run("sso", "apply", "--config", cfg)
	if code != exitOK || s.ssoPuts() != 3 || s.sim.SSOConfig().ClientSecret != "rotated-secret-8d7c6b5a" {
		t.Errorf("secret change: exit %d, %d SSO PUTs (want 3)\nstdout: %s\nstderr: %s", code, s.ssoPuts(), out, errOut)
	}
	if !strings.Contains(out, "clientSecret") {
		t.Errorf("secret change: the plan does not name clientSecret:\n%s", out)
	}
	if code, _, _ := s.run("sso", "apply", "--config", cfg); code != exitOK || s.ssoPuts() != 3 {
		t.Errorf("after the secret change: exit %d, %d SSO PUTs, want 3", code, s.ssoPuts())
	}

	// --dry-run shows the change and writes nothing
	cfg = s.config(op.Issuer, "dry-client")
	code, out, _ = s.run("sso", "apply", "--dry-run", "--config", cfg)
	if code != exitOK || s.ssoPuts() != 3 || !strings.Contains(out, "clientId") || strings.Contains(out, "applied") {
		t.Errorf("dry run: exit %d, %d SSO PUTs (want 3)\nstdout: %s", code, s.ssoPuts(), out)
	}

	// --output json: the run's report and nothing else on stdout
	code, out, errOut = s.run("sso", "apply", "--output", "json", "--config", cfg)
	if code != exitOK || s.ssoPuts() != 4 || s.sim.SSOConfig().ClientID != "dry-client" {
		t.Fatalf("apply --output json: exit %d, %d SSO PUTs (want 4)\nstdout: %s\nstderr: %s", code, s.ssoPuts(), out, errOut)
	}
	var rep provisioning.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("apply --output json: stdout is not one JSON report: %v\n%s", err, out)
	}
	if !slices.Equal(rep.Tasks, []string{"sso"}) || len(rep.Results) != 1 || rep.Results[0].Status != provisioning.StatusApplied ||
		rep.Results[0].Change.Kind != provisioning.UpdateSSO || rep.Counts[provisioning.StatusApplied] != 1 {
		t.Errorf("apply --output json: tasks %q, results %+v, counts %v; want one applied SSO change in a run limited to sso", rep.Tasks, rep.Results, rep.Counts)
	}
}

func TestOIDCRefusalsWriteNothing(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	cases := []struct {
		name   string
		issuer func(t *testing.T) string
		want   []string // in stdout+stderr of both check and apply
	}{
		{"issuer trailing slash", func(*testing.T) string { return op.Issuer + "/" },
			[]string{"issuer", op.Issuer}},
		{"unreachable JWKS", func(t *testing.T) string {
			dead := testenv.ClosedURL(t)
			return testenv.StartDiscoveryServer(t, func(iss string) map[string]any {
				doc := op.DiscoveryDocument(t)
				doc["issuer"], doc["jwks_uri"] = iss, dead+"/keys"
				return doc
			}).URL
		}, []string{"jwks"}},
		{"no email scope", func(t *testing.T) string {
			return testenv.StartDiscoveryServer(t, func(iss string) map[string]any {
				doc := op.DiscoveryDocument(t)
				doc["issuer"], doc["scopes_supported"] = iss, []string{"openid", "profile"}
				return doc
			}).URL
		}, []string{"scopes_supported", "email"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newOIDCSetup(t, "never-sent-3e2d1c")
			cfg := s.config(tc.issuer(t), "babelforce-web")
			for _, sub := range []string{"check", "apply"} {
				code, out, errOut := s.run("sso", sub, "--config", cfg)
				// check: the check failed (1); apply: its run could not read what it needs (3)
				if want := map[string]int{"check": exitError, "apply": exitRead}[sub]; code != want {
					t.Errorf("oidc %s: exit %d, want %d\nstdout: %s\nstderr: %s", sub, code, want, out, errOut)
				}
				both := out + errOut
				if !strings.Contains(both, "FAIL") && !strings.Contains(both, "failed") {
					t.Errorf("oidc %s: no failure reported:\n%s", sub, both)
				}
				for _, w := range tc.want {
					if !strings.Contains(both, w) {
						t.Errorf("oidc %s: output does not name %q:\n%s", sub, w, both)
					}
				}
			}
			if s.sim.WriteCalls() != 0 || s.ssoPuts() != 0 || s.sim.SSOConfig().ClientSecret != "" {
				t.Errorf("babelforce was written: %v", s.sim.Calls())
			}
			// plan says so too, in text and JSON, and exits 3: a sync would fail the same way
			code, out, errOut := s.run("plan", "--config", cfg)
			if code != exitRead || !strings.Contains(out, "! error: plan sso:") || strings.Contains(out, "No changes: babelforce matches") {
				t.Errorf("plan with a failing IdP: exit %d, want 3 and the failure\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			code, out, _ = s.run("plan", "--config", cfg, "--output", "json")
			var plan provisioning.Plan
			if err := json.Unmarshal([]byte(out), &plan); code != exitRead || err != nil || len(plan.Errors) != 1 ||
				!strings.Contains(plan.Errors[0], "sso") {
				t.Errorf("plan --output json with a failing IdP: exit %d, %v, errors %q", code, err, plan.Errors)
			}
			// a full sync stops the SSO part as well: its other changes may go through, the
			// SSO configuration is not written and the run reports the failure
			code, out, errOut = s.run("sync", "--config", cfg)
			if code == exitOK {
				t.Errorf("sync with a failing IdP: exit 0\nstdout: %s\nstderr: %s", out, errOut)
			}
			if s.ssoPuts() != 0 || s.sim.SSOConfig().ClientSecret != "" {
				t.Errorf("sync wrote the SSO configuration: %v", s.sim.Calls())
			}
			if !strings.Contains(out, "identity provider check failed") {
				t.Errorf("sync report does not name the SSO failure:\n%s", out)
			}
		})
	}
}

func TestOIDCInsecureIssuerRejected(t *testing.T) {
	s := newOIDCSetup(t, "never-sent-9f8e7d")
	cfg := s.config("http://idp.example.com/realms/acme", "babelforce-web")
	for _, args := range [][]string{
		{"config", "validate", "--config", cfg},
		{"sso", "check", "--config", cfg},
		{"sso", "apply", "--config", cfg},
	} {
		code, out, errOut := s.run(args...)
		if code != exitError {
			t.Errorf("bridge %s: exit %d, want 1", strings.Join(args[:2], " "), code)
		}
		if !strings.Contains(errOut, "sso.issuer") || !strings.Contains(errOut, "http") {
			t.Errorf("bridge %s: stderr does not explain the http issuer:\n%s", strings.Join(args[:2], " "), errOut)
		}
		if strings.Contains(out, "OK") {
			t.Errorf("bridge %s: stdout %q", strings.Join(args[:2], " "), out)
		}
	}
	if s.sim.TotalCalls() != 0 {
		t.Errorf("babelforce was contacted: %v", s.sim.Calls())
	}
}

// TestOIDCInSyncAndPlan: with sso.enabled, `bridge plan` shows the SSO change and `bridge sync`
// applies it with the directory's changes, in one report.
func TestOIDCInSyncAndPlan(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	s := newOIDCSetup(t, op.ClientSecret)
	cfg := s.config(op.Issuer, op.ClientID)

	code, out, errOut := s.run("plan", "--config", cfg)
	if code != exitOK {
		t.Fatalf("plan: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if !strings.Contains(out, "~ update sso") || !strings.Contains(out, "clientSecret") {
		t.Errorf("plan does not show the SSO change:\n%s", out)
	}
	code, out, errOut = s.run("plan", "--config", cfg, "--output", "json")
	if code != exitOK {
		t.Fatalf("plan json: exit %d\nstderr: %s", code, errOut)
	}
	var plan provisioning.Plan
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("plan json: %v\n%s", err, out)
	}
	if n := oidcCountKind(plan.Changes, provisioning.UpdateSSO); n != 1 {
		t.Errorf("plan has %d update_sso changes, want 1:\n%s", n, out)
	}
	if oidcCountKind(plan.Changes, provisioning.CreateAgent) != 2 {
		t.Errorf("plan does not create the two agents:\n%s", out)
	}
	if s.sim.WriteCalls() != 0 {
		t.Errorf("plan wrote to babelforce: %v", s.sim.Calls())
	}

	code, out, errOut = s.run("sync", "--config", cfg, "--output", "json")
	if code != exitOK {
		t.Fatalf("sync: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	var rep provisioning.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("sync report: %v\n%s", err, out)
	}
	if rep.Counts[string(provisioning.UpdateSSO)+"/"+provisioning.StatusApplied] != 1 {
		t.Errorf("sync report counts %v, want one applied update_sso", rep.Counts)
	}
	if s.ssoPuts() != 1 || len(s.sim.Agents()) != 2 || s.sim.SSOConfig().ClientID != op.ClientID {
		t.Errorf("after sync: %d SSO PUTs, %d agents, SSO %+v", s.ssoPuts(), len(s.sim.Agents()), s.sim.SSOConfig())
	}

	// the text report of a second sync: nothing to do, nothing written
	before := s.sim.WriteCalls()
	code, out, errOut = s.run("sync", "--config", cfg)
	if code != exitOK || s.sim.WriteCalls() != before {
		t.Errorf("second sync: exit %d, %d new writes\nstdout: %s\nstderr: %s", code, s.sim.WriteCalls()-before, out, errOut)
	}
}

func oidcCountKind(cs []provisioning.Change, k provisioning.Kind) int {
	n := 0
	for _, c := range cs {
		if c.Kind == k {
			n++
		}
	}
	return n
}

// TestOIDCApplyIsARunInStatus: bridge sso apply, run beside a service that shares its store,
// is a run like the service's own: its audit record goes to log.audit, and the service's
// /api/v1/status lists it (trigger cli, the sso task, where it ran). With babelforce's SSO
// endpoint failing, the report says so and the exit code is 3 (its setting could not be read).
func TestOIDCApplyIsARunInStatus(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	s := serveStart(t, serveOptions{})
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	cfg := writeTempFile(t, "bridge.yaml", fmt.Sprintf(`
babelforce:
  base_url: %q
  username: %q
  max_attempts: 1
directory:
  type: scim_push
mapping:
  agent_source: %q
store:
  path: %q
sso:
  enabled: true
  issuer: %q
  client_id: %q
  allow_insecure_http: true
log:
  audit: %q
`, s.sim.URL, s.sim.Username, serveAgentSource, s.storePath, op.Issuer, op.ClientID, audit))
	env := map[string]string{"BRIDGE_BABELFORCE_PASSWORD": s.pwd, "BRIDGE_SSO_CLIENT_SECRET": op.ClientSecret, "BRIDGE_INBOUND_SCIM_TOKENS": s.scimToken}
	out, errOut, code := runCLI(t, env, "sso", "apply", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "~ update sso") || !strings.Contains(out, "-> applied") {
		t.Fatalf("oidc apply: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	raw, err := os.ReadFile(audit)
	if err != nil || !strings.Contains(string(raw), `"kind":"update_sso"`) || !strings.Contains(string(raw), `"result":"applied"`) ||
		strings.Contains(string(raw), op.ClientSecret) {
		t.Errorf("audit log (%v):\n%s", err, raw)
	}

	var st struct {
		Runs []provisioning.Report `json:"runs"`
	}
	code, _, body := s.do(http.MethodGet, "/api/v1/status", s.adminToken, nil)
	if err := json.Unmarshal(body, &st); code != http.StatusOK || err != nil {
		t.Fatalf("status: %d %v %s", code, err, body)
	}
	found := false
	for _, r := range st.Runs {
		if r.Trigger == provisioning.TriggerCLI && slices.Equal(r.Tasks, []string{"sso"}) && r.Origin != "" && r.Counts["update_sso/applied"] == 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("the service's status does not list the oidc apply run:\n%s", body)
	}

	// babelforce's SSO endpoint failing: the report names it, exit 3 (could not read)
	if err := s.sim.SetFaults(babelforcetest.Faults{Rate5xx: 1, Paths: []string{"/auth/sso"}}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCLI(t, env, "sso", "apply", "--config", cfg)
	if code != exitRead || !strings.Contains(out, "read babelforce SSO configuration") {
		t.Errorf("oidc apply, babelforce failing: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// TestOIDCFingerprintFileDeprecated: sso.fingerprint_file still loads, and config validate
// (and every command) says what to do about it.
func TestOIDCFingerprintFileDeprecated(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	s := newOIDCSetup(t, op.ClientSecret)
	raw, err := os.ReadFile(s.config(op.Issuer, op.ClientID))
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeTempFile(t, "old.yaml", strings.Replace(string(raw), "  allow_insecure_http: true\n",
		"  allow_insecure_http: true\n  fingerprint_file: "+filepath.Join(t.TempDir(), "sso.fingerprint")+"\n", 1))
	code, out, errOut := s.run("config", "validate", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "OK") || !strings.Contains(errOut, "sso.fingerprint_file is deprecated") ||
		!strings.Contains(errOut, "remove the setting") {
		t.Errorf("config validate: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	code, _, errOut = s.run("sso", "apply", "--config", cfg)
	if code != exitOK || !strings.Contains(errOut, "sso.fingerprint_file is deprecated") || s.ssoPuts() != 1 {
		t.Errorf("oidc apply: exit %d, %d PUTs\nstderr: %s", code, s.ssoPuts(), errOut)
	}
}
