package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/provisioning"
)

// bigDirectoryLDIF writes an LDIF of people, of whom every fifth is in babelforce-agents
// (one in ten of those a supervisor), four of the agents have a number that is no phone
// number, and returns its path and how many are in scope.
func bigDirectoryLDIF(t *testing.T, people int) (path string, inScope int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("dn: dc=example,dc=com\nobjectClass: domain\ndc: example\n\n")
	b.WriteString("dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n\n")
	var agents, supervisors []string
	badNumbers := 0
	for i := range people {
		dn := fmt.Sprintf("uid=p%04d,ou=people,dc=example,dc=com", i)
		phone := fmt.Sprintf("030 555%04d", i)
		if i%5 == 0 {
			agents = append(agents, dn)
			if len(agents)%10 == 0 {
				supervisors = append(supervisors, dn)
			}
			if badNumbers < 4 && i > 0 {
				phone = "ext. 4711"
				badNumbers++
			}
		}
		fmt.Fprintf(&b, "dn: %s\nobjectClass: inetOrgPerson\nuid: p%04d\ncn: Person %04d\nsn: %04d\ngivenName: Person\n"+
			"mail: p%04d@example.com\ntelephoneNumber: %s\nentryUUID: 00000000-0000-4000-8000-%012d\n\n", dn, i, i, i, i, phone, i)
	}
	group := func(name string, members []string) {
		fmt.Fprintf(&b, "dn: cn=%s,dc=example,dc=com\nobjectClass: groupOfNames\ncn: %s\nentryUUID: 00000000-0000-4000-9000-%012d\n", name, name, len(name))
		for _, m := range members {
			fmt.Fprintf(&b, "member: %s\n", m)
		}
		b.WriteString("\n")
	}
	group("babelforce-agents", agents)
	group("cc-supervisors", supervisors)
	return writeTempFile(t, "big.ldif", b.String()), len(agents) - badNumbers
}

// TestPlanCountsEqualAppliedCounts: on a 2,400-person directory the plan counts every change
// by kind (login users included) exactly as the run then applies them; the people out of scope
// are one line; the problem of the configuration (an include group that matches nothing)
// comes first.
func TestPlanCountsEqualAppliedCounts(t *testing.T) {
	const people = 2400
	ldif, inScope := bigDirectoryLDIF(t, people)
	sim := babelforcetest.New(t, babelforcetest.Options{})
	cfg := writeConfig(t, `
babelforce: {base_url: "http://127.0.0.1:1"}
directory: {type: ldif, ldif: {path: "`+filepath.ToSlash(ldif)+`", preset: openldap}}
mapping:
  agent_source: "bridge:big"
  scope: {include_groups: [babelforce-agents, no-such-group]}
  phone: {default_region: DE}
  roles: [{group: cc-supervisors, roles: [supervisor]}]
sync: {guard: {max_destructive: 0}}
`)
	env := babelforceSimEnv(sim)

	out, errOut, code := runCLI(t, env, "plan", "--config", cfg, "--output", "json")
	if code != exitOK {
		t.Fatalf("plan: exit %d\n%s", code, errOut)
	}
	var plan struct {
		Summary provisioning.Summary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("plan json: %v", err)
	}
	s := plan.Summary
	if s.Create != inScope || s.LoginCreate != inScope || s.Changes[provisioning.CreateLoginUser] != inScope {
		t.Errorf("plan: %d agents and %d login users to create, want %d of each", s.Create, s.LoginCreate, inScope)
	}
	if s.OutOfScope != people-people/5 || s.Skipped != 4 {
		t.Errorf("plan: %d out of scope, %d skipped; want %d and 4", s.OutOfScope, s.Skipped, people-people/5)
	}

	text, _, _ := runCLI(t, env, "plan", "--config", cfg)
	lines := strings.Split(strings.TrimSpace(text), "\n")
	t.Logf("plan, first and last lines:\n%s\n...\n%s", lines[0], strings.Join(lines[len(lines)-8:], "\n"))
	if !strings.HasPrefix(lines[0], "! config:") || !strings.Contains(lines[0], "no-such-group") {
		t.Errorf("the problem of the configuration is not the first line: %q", lines[0])
	}
	if n := strings.Count(text, "out of scope"); n != 2 { // the count line and the summary
		t.Errorf("plan text mentions out of scope %d times, want the count line and the summary:\n%s", n, grepLines(text, "out of scope"))
	}
	if want := fmt.Sprintf("  %d people out of scope (--show-out-of-scope lists them)", s.OutOfScope); !strings.Contains(text, want+"\n") {
		t.Errorf("plan text lacks %q", want)
	}
	if n := strings.Count(text, "! skipped "); n != 4 {
		t.Errorf("plan text lists %d skipped people, want the 4 with a bad number", n)
	}
	all, _, _ := runCLI(t, env, "plan", "--config", cfg, "--show-out-of-scope")
	if n := strings.Count(all, "  out of scope "); n != s.OutOfScope {
		t.Errorf("--show-out-of-scope lists %d people, want %d", n, s.OutOfScope)
	}

	auditFile := filepath.Join(t.TempDir(), "audit.jsonl")
	out, errOut, code = runCLI(t, mergeEnv(env, map[string]string{"BRIDGE_LOG_AUDIT": auditFile}), "sync", "--config", cfg, "--output", "json")
	if code != exitOK {
		t.Fatalf("sync: exit %d\n%s", code, errOut)
	}
	// the audit records went to log.audit, one per change, and nowhere else
	audit, err := os.ReadFile(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(audit), `"log":"audit"`); n != s.Total {
		t.Errorf("log.audit has %d audit records, want one per change (%d)", n, s.Total)
	}
	if strings.Contains(out+errOut, "babelforce write") {
		t.Errorf("audit records outside log.audit:\n%s", errOut)
	}
	var rep provisioning.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report json: %v", err)
	}
	for kind, n := range s.Changes {
		if got := rep.Counts[string(kind)+"/applied"]; got != n {
			t.Errorf("%s: planned %d, applied %d", kind, n, got)
		}
	}
	t.Logf("applied %v", rep.Counts)
	if rep.Counts[provisioning.StatusApplied] != s.Total {
		t.Errorf("applied %d changes, the plan had %d", rep.Counts[provisioning.StatusApplied], s.Total)
	}
	if got := len(sim.SCIMUsers()); got != s.LoginCreate {
		t.Errorf("babelforce holds %d login users, the plan said %d to create", got, s.LoginCreate)
	}

	text, _, code = runCLI(t, env, "plan", "--config", cfg)
	if code != exitOK || !strings.Contains(text, "No changes") {
		t.Errorf("the second plan: exit %d\n%s", code, text)
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
