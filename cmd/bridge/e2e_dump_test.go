package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/babelforce/bridge/directory/directorytest"
	"github.com/babelforce/bridge/internal/testenv"
)

// dumpDoc is the part of `bridge directory dump --output json` these tests compare
// (directory.WriteDump documents the whole shape).
type dumpDoc struct {
	Source string `json:"source"`
	Counts struct {
		Users       int `json:"users"`
		ActiveUsers int `json:"active_users"`
		Groups      int `json:"groups"`
	} `json:"counts"`
	Users []struct {
		ID        string `json:"id"`
		UserName  string `json:"user_name"`
		Active    bool   `json:"active"`
		AllGroups []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"all_groups"`
	} `json:"users"`
	Groups []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"groups"`
}

// dumpUserView is what must be equal from every source: compared by names, never ids.
type dumpUserView struct {
	Active    bool
	AllGroups []string // sorted names of direct and nested groups
}

// dumpSource is one configured directory source for the CLI.
type dumpSource struct {
	name string
	yaml string            // the directory: section
	env  map[string]string // its secrets
}

// dumpConfig writes a configuration with the directory section of src and a babelforce
// section nothing contacts (a dump reads only the directory).
func dumpConfig(t *testing.T, src dumpSource) (path string, env map[string]string) {
	t.Helper()
	cfg := `babelforce:
  base_url: "http://127.0.0.1:1"
  username: admin@example.com
mapping:
  agent_source: "bridge:dump-test"
` + src.yaml
	env = map[string]string{"BRIDGE_BABELFORCE_PASSWORD": "dump-dummy-password"}
	for k, v := range src.env {
		env[k] = v
	}
	return writeTempFile(t, "bridge.yaml", cfg), env
}

func dumpLDIFSource(t *testing.T, d *directorytest.Directory) dumpSource {
	attr, values := directorytest.OpenLDAPDisabled()
	p := writeTempFile(t, "conformance.ldif", d.OpenLDAPExport("dc=example,dc=com"))
	return dumpSource{name: "ldif", yaml: fmt.Sprintf(`directory:
  type: ldif
  ldif:
    path: %q
    preset: openldap
    attributes: {disabled: %s, disabled_values: [%s]}
`, p, attr, strings.Join(values, ", "))}
}

func dumpSlapdSource(t *testing.T, d *directorytest.Directory) dumpSource {
	const suffix = "dc=example,dc=com"
	srv := testenv.StartSlapd(t, testenv.SlapdOptions{SeedLDIF: d.OpenLDAPLDIF(suffix), Suffix: suffix, TLS: true})
	attr, values := directorytest.OpenLDAPDisabled()
	return dumpSource{name: "slapd", yaml: fmt.Sprintf(`directory:
  type: ldap
  ldap:
    urls: [%q]
    ca_file: %q
    preset: openldap
    bind_dn: %q
    user_base_dn: "ou=people,%s"
    group_base_dn: "ou=groups,%s"
    page_size: 5
    attributes: {disabled: %s, disabled_values: [%s]}
`, srv.LDAPSURL, srv.CAFile, srv.BindDN, suffix, suffix, attr, strings.Join(values, ", ")),
		env: map[string]string{"BRIDGE_LDAP_BIND_PASSWORD": srv.BindPassword}}
}

func dumpScimmySource(t *testing.T, d *directorytest.Directory) dumpSource {
	seed, err := d.ScimmySeed()
	if err != nil {
		t.Fatal(err)
	}
	srv := testenv.StartScimmy(t, testenv.ScimmyOptions{SeedJSON: writeTempFile(t, "seed.json", string(seed))})
	return dumpSource{name: "scimmy", yaml: fmt.Sprintf(`directory:
  type: scim
  scim:
    base_url: %q
    page_size: 7
`, srv.URL), env: map[string]string{"BRIDGE_SCIM_SOURCE_TOKEN": srv.Token}}
}

func dumpSambaSource(t *testing.T, d *directorytest.Directory) dumpSource {
	srv := testenv.StartSamba(t, testenv.SambaOptions{})
	base := dumpSambaConformance(t, srv, d)
	return dumpSource{name: "samba", yaml: fmt.Sprintf(`directory:
  type: ldap
  ldap:
    urls: [%q]
    ca_file: %q
    preset: active_directory
    bind_dn: %q
    user_base_dn: %q
    group_base_dn: %q
`, srv.LDAPSURL, srv.CAFile, srv.BindDN, base, base),
		env: map[string]string{"BRIDGE_LDAP_BIND_PASSWORD": srv.BindPassword}}
}

// dumpSambaBase is the OU holding the conformance directory in this binary's shared domain
// controller. The rendering gives users their user names as sAMAccountName, which is unique in
// the domain, so the directory can be loaded only once per DC (one DC per test binary, see
// testenv.StartSamba): later callers, and callers finding it loaded by another test of this
// binary, reuse the OU it is in.
var dumpSambaBase struct {
	sync.Mutex
	dn string
}

func dumpSambaConformance(t *testing.T, srv *testenv.Samba, d *directorytest.Directory) string {
	t.Helper()
	dumpSambaBase.Lock()
	defer dumpSambaBase.Unlock()
	if dumpSambaBase.dn != "" {
		return dumpSambaBase.dn
	}
	conn, err := srv.Dial()
	if err != nil {
		t.Fatalf("samba: dial: %v", err)
	}
	defer conn.Close()
	if err := conn.Bind(srv.BindDN, srv.BindPassword); err != nil {
		t.Fatalf("samba: bind: %v", err)
	}
	first := d.Users[0].UserName
	res, err := conn.Search(ldap.NewSearchRequest(srv.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		fmt.Sprintf("(sAMAccountName=%s)", ldap.EscapeFilter(first)), []string{"dn"}, nil))
	if err != nil {
		t.Fatalf("samba: look for %s: %v", first, err)
	}
	if len(res.Entries) > 0 {
		dn, err := ldap.ParseDN(res.Entries[0].DN)
		if err != nil || len(dn.RDNs) < 2 {
			t.Fatalf("samba: parse %q: %v", res.Entries[0].DN, err)
		}
		parent := &ldap.DN{RDNs: dn.RDNs[1:]}
		dumpSambaBase.dn = parent.String()
		t.Logf("samba: the conformance directory is already loaded under %s; reusing it", dumpSambaBase.dn)
		return dumpSambaBase.dn
	}
	base := "OU=dump-conformance," + srv.BaseDN
	srv.Add(t, d.SambaLDIF(base))
	dumpSambaBase.dn = base
	return base
}

// dumpRead runs `bridge directory dump` in both formats against src and returns the parsed
// JSON and the text output.
func dumpRead(t *testing.T, src dumpSource) (*dumpDoc, string) {
	t.Helper()
	cfg, env := dumpConfig(t, src)
	out, jsonErrOut, code := runCLI(t, env, "directory", "dump", "--config", cfg, "--output", "json")
	if code != exitOK {
		t.Fatalf("%s: bridge directory dump: exit %d\nstderr: %s", src.name, code, jsonErrOut)
	}
	var doc dumpDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%s: dump JSON: %v\n%s", src.name, err, out)
	}
	text, errOut, code := runCLI(t, env, "directory", "dump", "--config", cfg)
	if code != exitOK {
		t.Fatalf("%s: bridge directory dump (text): exit %d\nstderr: %s", src.name, code, errOut)
	}
	for k, v := range env {
		if len(v) >= 8 && (strings.Contains(out, v) || strings.Contains(jsonErrOut, v) || strings.Contains(text, v) || strings.Contains(errOut, v)) {
			t.Errorf("%s: the dump printed the secret %s", src.name, k)
		}
	}
	return &doc, text
}

func dumpView(doc *dumpDoc) map[string]dumpUserView {
	out := make(map[string]dumpUserView, len(doc.Users))
	for _, u := range doc.Users {
		v := dumpUserView{Active: u.Active, AllGroups: []string{}}
		for _, g := range u.AllGroups {
			v.AllGroups = append(v.AllGroups, g.Name)
		}
		sort.Strings(v.AllGroups)
		out[u.UserName] = v
	}
	return out
}

// dumpWant is what every source should report, from the logical directory.
func dumpWant(d *directorytest.Directory) map[string]dumpUserView {
	out := make(map[string]dumpUserView, len(d.Users))
	for _, u := range d.Users {
		groups := d.TransitiveGroups(u.UserName)
		if groups == nil {
			groups = []string{}
		}
		out[u.UserName] = dumpUserView{Active: !u.Inactive, AllGroups: groups}
	}
	return out
}

// dumpDiff lists the differences between two views, one sentence each.
func dumpDiff(want, got map[string]dumpUserView) []string {
	var diffs []string
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("user %s missing", name))
		case g.Active != w.Active:
			diffs = append(diffs, fmt.Sprintf("user %s: active %v, want %v", name, g.Active, w.Active))
		case !slices.Equal(g.AllGroups, w.AllGroups):
			diffs = append(diffs, fmt.Sprintf("user %s: groups %v, want %v", name, g.AllGroups, w.AllGroups))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected user %s", name))
		}
	}
	sort.Strings(diffs)
	return diffs
}

var dumpGUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestDumpSameAcrossSources is issue 3's check: `bridge directory dump` against an LDIF export,
// OpenLDAP, Samba AD and an upstream SCIM service holding the same directory prints the same
// users, the same transitive group names per user and the same active flags.
func TestDumpSameAcrossSources(t *testing.T) {
	d := directorytest.Conformance(t)
	want := dumpWant(d)
	starts := []struct {
		name  string
		start func(*testing.T, *directorytest.Directory) dumpSource
	}{
		{"ldif", dumpLDIFSource},
		{"slapd", dumpSlapdSource},
		{"samba", dumpSambaSource},
		{"scimmy", dumpScimmySource},
	}
	views := map[string]map[string]dumpUserView{}
	for _, s := range starts {
		t.Run(s.name, func(t *testing.T) {
			doc, text := dumpRead(t, s.start(t, d))
			if doc.Source == "" {
				t.Errorf("dump names no source")
			}
			active := 0
			for _, u := range d.Users {
				if !u.Inactive {
					active++
				}
			}
			if doc.Counts.Users != len(d.Users) || doc.Counts.ActiveUsers != active || doc.Counts.Groups != len(d.Groups) ||
				len(doc.Users) != len(d.Users) || len(doc.Groups) != len(d.Groups) {
				t.Errorf("counts %+v with %d users and %d groups listed; want %d users (%d active), %d groups",
					doc.Counts, len(doc.Users), len(doc.Groups), len(d.Users), active, len(d.Groups))
			}
			ids := map[string]bool{}
			for _, u := range doc.Users {
				if !dumpGUID.MatchString(u.ID) || ids[u.ID] {
					t.Errorf("user %s: id %q is not a unique GUID", u.UserName, u.ID)
				}
				ids[u.ID] = true
			}
			for _, diff := range dumpDiff(want, dumpView(doc)) {
				t.Errorf("%s", diff)
			}

			// the text form: a header, then one line per user starting with the user name
			for _, h := range []string{"Source:", "Users:   " + fmt.Sprint(len(d.Users)), "Groups:  " + fmt.Sprint(len(d.Groups))} {
				if !strings.Contains(text, h) {
					t.Errorf("text dump lacks %q:\n%s", h, text)
				}
			}
			if !regexp.MustCompile(`(?m)^USER\s+NAME\s+ACTIVE\s+EMAIL\s+PHONE\s+GROUPS\s+VIA NESTING\s*$`).MatchString(text) {
				t.Errorf("text dump lacks the user table header:\n%s", text)
			}
			for _, u := range d.Users {
				line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(u.UserName) + `\s.*$`).FindString(text)
				if line == "" {
					t.Errorf("text dump has no line for %s", u.UserName)
					continue
				}
				if wantActive := map[bool]string{true: " NO ", false: " yes "}[u.Inactive]; !strings.Contains(line, wantActive) {
					t.Errorf("text dump line for %s does not say %q: %s", u.UserName, strings.TrimSpace(wantActive), line)
				}
			}
			views[s.name] = dumpView(doc)
		})
	}
	// every pair of sources that ran agrees (implied by the comparisons above, but this
	// names the two sources when they do not)
	var names []string
	for n := range views {
		names = append(names, n)
	}
	sort.Strings(names)
	for i := 1; i < len(names); i++ {
		for _, diff := range dumpDiff(views[names[0]], views[names[i]]) {
			t.Errorf("%s vs %s: %s", names[i], names[0], diff)
		}
	}
	if len(names) < len(starts) && testenv.InCI() {
		t.Errorf("only %v ran", names)
	}
	t.Logf("compared %d users across %v", len(want), names)
}

// TestDumpBadUsage: a dump without a subcommand, with a wrong format or against a directory
// that cannot be read says what is wrong.
func TestDumpBadUsage(t *testing.T) {
	d := directorytest.Conformance(t)
	src := dumpLDIFSource(t, d)
	cfg, env := dumpConfig(t, src)
	if _, errOut, code := runCLI(t, env, "directory", "--config", cfg); code != exitRefused || !strings.Contains(errOut, "directory dump") {
		t.Errorf("no subcommand: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := runCLI(t, env, "directory", "dump", "--config", cfg, "--output", "yaml"); code != exitRefused || !strings.Contains(errOut, "--output") {
		t.Errorf("--output yaml: exit %d, stderr %q", code, errOut)
	}
	missing := dumpSource{name: "missing", yaml: "directory:\n  type: ldif\n  ldif: {path: /nonexistent/export.ldif}\n"}
	cfg, env = dumpConfig(t, missing)
	out, errOut, code := runCLI(t, env, "directory", "dump", "--config", cfg)
	if code != exitError || !strings.Contains(errOut, "/nonexistent/export.ldif") {
		t.Errorf("missing LDIF: exit %d, stderr %q", code, errOut)
	}
	if out != "" {
		t.Errorf("missing LDIF: stdout %q", out)
	}
}
