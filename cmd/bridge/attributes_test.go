package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/internal/testenv"
)

// TestPlanKeepsOnlyTheAttributesTheMappingReads (issue 11): plan and sync keep of each
// user's raw attributes only those the mapping names, so a rule still sees what it names
// (a template's title, a condition's employeeType); an attribute no rule names
// (departmentNumber) is not kept there, while `bridge directory dump` still shows it.
func TestPlanKeepsOnlyTheAttributesTheMappingReads(t *testing.T) {
	const suffix = "dc=example,dc=com"
	var seed strings.Builder
	fmt.Fprintf(&seed, "dn: ou=people,%[1]s\nobjectClass: organizationalUnit\nou: people\n\n", suffix)
	for _, p := range []struct{ uid, title, typ string }{{"ann", "Lead", "staff"}, {"bob", "Clerk", "contractor"}} {
		fmt.Fprintf(&seed, "dn: uid=%[1]s,ou=people,%[4]s\nobjectClass: inetOrgPerson\nuid: %[1]s\ncn: %[1]s\nsn: Lee\n"+
			"mail: %[1]s@example.com\ntitle: %[2]s\nemployeeType: %[3]s\ndepartmentNumber: 42\n\n", p.uid, p.title, p.typ, suffix)
	}
	srv := testenv.StartSlapd(t, testenv.SlapdOptions{SeedLDIF: seed.String(), Suffix: suffix})
	sim := babelforcetest.New(t, babelforcetest.Options{})
	cfg := writeConfig(t, fmt.Sprintf(`
babelforce: {base_url: "http://127.0.0.1:1"}
directory:
  type: ldap
  ldap:
    urls: [%q]
    preset: openldap
    user_base_dn: "ou=people,%[2]s"
    group_base_dn: "ou=people,%[2]s"
    extra_attributes: [title, employeeType, departmentNumber]
mapping:
  agent_source: "bridge:attrs"
  agent: {name: '{{attr "title"}} {{.FamilyName}}'}
  scope: {conditions: [{attribute: employeeType, equals: staff}]}
`, srv.URL, suffix))
	env := mergeEnv(babelforceSimEnv(sim), slapdEnv(srv))

	out, errOut, code := runCLI(t, env, "plan", "--config", cfg, "--output", "json")
	if code != exitOK {
		t.Fatalf("plan: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, `"Lead Lee"`) || strings.Contains(out, `"Clerk Lee"`) {
		t.Errorf("plan: want ann's agent named by her title and bob out of scope by his employeeType:\n%s", out)
	}

	out, errOut, code = runCLI(t, env, "directory", "dump", "--config", cfg, "--output", "json")
	if code != exitOK {
		t.Fatalf("directory dump: exit %d\n%s", code, errOut)
	}
	var dump struct {
		Users []struct {
			Attributes map[string][]string `json:"attributes"`
		} `json:"users"`
	}
	if err := json.Unmarshal([]byte(out), &dump); err != nil {
		t.Fatal(err)
	}
	if len(dump.Users) != 2 || !slices.Equal(dump.Users[0].Attributes["departmentnumber"], []string{"42"}) {
		t.Errorf("directory dump does not show departmentNumber:\n%s", out)
	}

	// the source plan and sync read through keeps only what the rules name
	e, _, _ := cliEnvFor(env)
	c, err := loadConfig(context.Background(), cfg, e.lookupEnv, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, every := range []bool{false, true} {
		a, err := newApp(context.Background(), c, slog.New(slog.DiscardHandler), appOptions{everyAttribute: every})
		if err != nil {
			t.Fatal(err)
		}
		snap, err := a.source.Read(context.Background())
		a.close()
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Sorted(maps.Keys(snap.Users[0].Attributes))
		if every && !slices.Contains(got, "departmentnumber") {
			t.Errorf("every attribute: kept %q", got)
		}
		if !every && !slices.Equal(got, []string{"employeetype", "title"}) {
			t.Errorf("plan's source kept %q, want employeetype and title", got)
		}
	}
}
