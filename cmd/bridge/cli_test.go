package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/babelforce/bridge/internal/testenv"
)

// TestCLIHelpExitsZero: every command's --help (and -h, and bridge help COMMAND) prints its
// usage to stdout and exits 0; nothing goes to stderr.
func TestCLIHelpExitsZero(t *testing.T) {
	cases := [][]string{
		{},
		{"help"},
		{"--help"},
		{"-h"},
		{"directory", "dump", "--help"},
		{"sso", "check", "--help"},
		{"sso", "apply", "-h"},
		{"config", "validate", "--help"},
	}
	for _, c := range commands() {
		cases = append(cases, []string{c.name, "--help"}, []string{c.name, "-h"}, []string{"help", c.name})
	}
	for _, args := range cases {
		t.Run(strings.Join(append([]string{"bridge"}, args...), " "), func(t *testing.T) {
			// a configuration in the environment must not change what --help does
			out, errOut, code := runCLI(t, map[string]string{"BRIDGE_CONFIG": "/nonexistent.yaml"}, args...)
			if code != exitOK {
				t.Errorf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			if !strings.Contains(out, "usage: bridge") {
				t.Errorf("stdout has no usage:\n%s", out)
			}
			if errOut != "" {
				t.Errorf("stderr %q, want nothing", errOut)
			}
			if len(args) > 0 && args[0] != "help" && !strings.HasPrefix(args[0], "-") {
				if !strings.Contains(out, "usage: bridge "+args[0]) {
					t.Errorf("usage is not the command's own:\n%s", out)
				}
			}
		})
	}
	// a flag of the command is listed with its help
	out, _, _ := runCLI(t, nil, "sync", "--help")
	for _, want := range []string{"-dry-run", "-force", "-config"} {
		if !strings.Contains(out, want) {
			t.Errorf("bridge sync --help does not list %s:\n%s", want, out)
		}
	}
}

// TestCLIBadFlagPrintedOnce: a wrong flag is one line on stderr naming the flag and the usage,
// exit 2.
func TestCLIBadFlagPrintedOnce(t *testing.T) {
	out, errOut, code := runCLI(t, nil, "plan", "--frobnicate")
	if code != exitRefused {
		t.Errorf("exit %d, want 2", code)
	}
	if n := strings.Count(errOut, "frobnicate"); n != 1 {
		t.Errorf("stderr names the flag %d times, want once:\n%s", n, errOut)
	}
	if !strings.Contains(errOut, "usage: bridge plan") || out != "" {
		t.Errorf("stdout %q, stderr %q", out, errOut)
	}
}

// TestDirectoryDumpNeedsNoBabelforceSecret: commands that never call babelforce run without
// its password; those that do still ask for it.
func TestDirectoryDumpNeedsNoBabelforceSecret(t *testing.T) {
	ldif, err := os.ReadFile("../../testdata/demo/directory.ldif")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "directory.ldif")
	if err := os.WriteFile(path, ldif, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeTempFile(t, "bridge.yaml", `
babelforce: {base_url: "https://services.babelforce.com", username: admin@example.com}
directory: {type: ldif, ldif: {path: "`+path+`", preset: openldap}}
mapping: {agent_source: "bridge:test"}
`)
	out, errOut, code := runCLI(t, nil, "directory", "dump", "--config", cfg)
	if code != exitOK {
		t.Fatalf("directory dump without the babelforce password: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "anna.schmidt@example.com") {
		t.Errorf("dump does not show the directory:\n%s", out)
	}
	if strings.Contains(errOut, "password") {
		t.Errorf("stderr mentions the password: %s", errOut)
	}

	out, errOut, code = runCLI(t, nil, "config", "validate", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "OK") {
		t.Errorf("config validate without the babelforce password: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "no babelforce credentials") {
		t.Errorf("config validate does not note the missing credentials: %q", errOut)
	}

	_, errOut, code = runCLI(t, nil, "plan", "--config", cfg)
	if code != exitError || !strings.Contains(errOut, "babelforce.password") {
		t.Errorf("plan without the babelforce password: exit %d, stderr %q; want 1 naming babelforce.password", code, errOut)
	}
}

// TestConfigPrintRoundTrips: config validate --print shows the effective values (role agent,
// login users on, the preset's attributes) under the keys config validate reads, and its
// output validates again to the same output: bridge config validate --print |
// bridge config validate --config /dev/stdin.
func TestConfigPrintRoundTrips(t *testing.T) {
	vars := map[string]string{
		"BRIDGE_INBOUND_SCIM_TOKENS": "0123456789abcdef0123456789abcdef",
		"BRIDGE_LDIF_PATH":           "../../testdata/demo/directory.ldif",
	}
	first, errOut, code := runCLI(t, vars, "config", "validate", "--print", "--config", "../../testdata/demo/config.yaml")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		"default_roles:\n    - agent\n", "login_users: true\n", "include_inactive: true\n", "require_email: true\n",
		"user_name: uid\n", "nested_groups: true\n", "password_sync: false\n", "phone_number_sync: false\n",
		"max_body_bytes: 1048576\n", "path: ':memory:'\n", "timeout: 30s\n",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("--print does not show %q:\n%s", want, first)
		}
	}
	for _, bad := range []string{"passwordsync", "phonenumbersync", ": null\n    ", "include_inactive: null", "login_users: null"} {
		if strings.Contains(first, bad) {
			t.Errorf("--print shows %q:\n%s", bad, first)
		}
	}
	printed := writeTempFile(t, "printed.yaml", first)
	second, errOut, code := runCLI(t, vars, "config", "validate", "--print", "--config", printed)
	if code != exitOK {
		t.Fatalf("the printed configuration does not validate: exit %d\n%s\n%s", code, errOut, first)
	}
	_, firstBody, _ := strings.Cut(first, "\n")
	_, secondBody, _ := strings.Cut(second, "\n")
	if firstBody != secondBody {
		t.Errorf("the printed configuration prints differently:\nfirst:\n%s\nsecond:\n%s", first, second)
	}
	if _, err := parseConfig(t.Context(), []byte(first), "printed", func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, false); err != nil {
		t.Errorf("the printed configuration does not parse: %v", err)
	}

	// a wrong key is named as such, without a Go type
	wrong := writeTempFile(t, "wrong.yaml", strings.Replace(first, "password_sync:", "passwordsync:", 1))
	_, errOut, code = runCLI(t, vars, "config", "validate", "--config", wrong)
	if code != exitError || !strings.Contains(errOut, "unknown key passwordsync") || strings.Contains(errOut, "struct {") {
		t.Errorf("a wrong key: exit %d, stderr %q", code, errOut)
	}
}

// TestDemoOnceShowsNoLogLines: bridge demo --once prints its tour and nothing else: no log
// line, no audit record (those go to the demo's audit file) on either stream.
func TestDemoOnceShowsNoLogLines(t *testing.T) {
	out, errOut, code := runCLI(t, nil, "demo", "--once")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if errOut != "" {
		t.Errorf("stderr is not empty:\n%s", errOut)
	}
	for _, raw := range []string{"level=", "msg=", `"msg":`, "log=audit", `"log":"audit"`} {
		if strings.Contains(out, raw) {
			t.Errorf("stdout has a raw log line (%s):\n%s", raw, out)
		}
	}
	for _, want := range []string{"== 2. applying it", "Applied 32 of 32 changes, failed 0", "each has an audit record in ",
		"  out of scope katrin.vogel: member of excluded group it-admins", "0 changes, 0 write calls to babelforce"} {
		if !strings.Contains(out, want) {
			t.Errorf("the tour lacks %q:\n%s", want, out)
		}
	}
}

// TestOIDCCheckNeedsNoBabelforceSecret: oidc check only talks to the IdP.
func TestOIDCCheckNeedsNoBabelforceSecret(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	ldif := writeTempFile(t, "dir.ldif", "dn: dc=example,dc=com\nobjectClass: domain\ndc: example\n")
	cfg := writeTempFile(t, "bridge.yaml", `
babelforce: {base_url: "https://services.babelforce.com", username: admin@example.com}
directory: {type: ldif, ldif: {path: "`+ldif+`"}}
mapping: {agent_source: "bridge:test"}
sso: {enabled: true, issuer: "`+op.Issuer+`", client_id: "`+op.ClientID+`", allow_insecure_http: true}
`)
	out, errOut, code := runCLI(t, map[string]string{"BRIDGE_SSO_CLIENT_SECRET": op.ClientSecret}, "sso", "check", "--config", cfg)
	if code != exitOK || strings.Contains(errOut, "password") {
		t.Errorf("oidc check without the babelforce password: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestCLIUsageNamesEveryFlag: the usage line of each command (shown by bridge help and
// --help, and copied into the README's command table) names every flag the command or one of
// its subcommands takes, and no flag that none of them takes.
func TestCLIUsageNamesEveryFlag(t *testing.T) {
	subs := map[string][]string{"directory": {"dump"}, "sso": {"check", "apply"}, "config": {"validate"}}
	flagLine := regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`)
	usageFlag := regexp.MustCompile(`--([a-z][a-z0-9-]*)`)
	for _, c := range commands() {
		invocations := [][]string{{c.name}}
		if s, ok := subs[c.name]; ok {
			invocations = nil
			for _, sub := range s {
				invocations = append(invocations, []string{c.name, sub})
			}
		}
		taken := map[string]bool{}
		for _, inv := range invocations {
			out, _, code := runCLI(t, nil, append(inv, "--help")...)
			if code != exitOK {
				t.Fatalf("bridge %s --help: exit %d", strings.Join(inv, " "), code)
			}
			for _, m := range flagLine.FindAllStringSubmatch(out, -1) {
				taken[m[1]] = true
				if !strings.Contains(c.synopsis, "--"+m[1]) {
					t.Errorf("bridge %s takes -%s, but its usage line %q does not name it", strings.Join(inv, " "), m[1], c.synopsis)
				}
			}
		}
		for _, m := range usageFlag.FindAllStringSubmatch(c.synopsis, -1) {
			if !taken[m[1]] {
				t.Errorf("usage line of bridge %s names --%s, which it does not take", c.name, m[1])
			}
		}
	}
}

// TestCLIOIDCIsTheOldNameOfSSO: bridge oidc (the command's name before it was called after the
// sso section it acts on) still works, with the same subcommands and flags, and says on
// stderr that it is deprecated.
func TestCLIOIDCIsTheOldNameOfSSO(t *testing.T) {
	for _, args := range [][]string{{"oidc", "check", "--help"}, {"oidc", "apply", "-h"}, {"oidc", "--help"}} {
		out, errOut, code := runCLI(t, nil, args...)
		if code != exitOK || !strings.Contains(out, "usage: bridge sso check --config FILE | apply") {
			t.Errorf("bridge %s: exit %d, stdout:\n%s", strings.Join(args, " "), code, out)
		}
		if !strings.Contains(errOut, `the command "oidc" is deprecated, use "bridge sso"`) {
			t.Errorf("bridge %s: stderr %q, want the deprecation", strings.Join(args, " "), errOut)
		}
	}
	if out, _, code := runCLI(t, nil, "help", "oidc"); code != exitOK || !strings.Contains(out, "usage: bridge sso") {
		t.Errorf("bridge help oidc: exit %d, stdout:\n%s", code, out)
	}
	if out, _, _ := runCLI(t, nil, "help"); strings.Contains(out, "  oidc ") {
		t.Errorf("bridge help lists the old name:\n%s", out)
	}
}
