package directory_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/directory/directorytest"
	"github.com/babelforce/bridge/internal/testenv"
)

var guidForm = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func checkGUID(id string) error {
	if !guidForm.MatchString(id) {
		return fmt.Errorf("not in canonical GUID/UUID form")
	}
	return nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConformanceLDIF(t *testing.T) {
	d := directorytest.Conformance(t)
	disabledAttr, disabledValues := directorytest.OpenLDAPDisabled()

	openldap := writeFile(t, "openldap.ldif", d.OpenLDAPExport("dc=example,dc=com"))
	src, err := directory.NewLDIF(directory.LDIFConfig{
		Path:       openldap,
		Preset:     directory.PresetOpenLDAP,
		Attributes: directory.LDAPAttributes{Disabled: disabledAttr, DisabledValues: disabledValues, Phone: directorytest.PhoneAttributes()},
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	directorytest.Run(t, "ldif-openldap", src, directorytest.Options{
		Directory:  d,
		Attributes: map[string]string{"title": "title", "department": "departmentNumber", "employeeNumber": "employeeNumber"},
		CheckID:    checkGUID,
	})

	ad := writeFile(t, "ad.ldif", d.ADExport("OU=Staff,DC=example,DC=test"))
	src, err = directory.NewLDIF(directory.LDIFConfig{Path: ad, Preset: directory.PresetActiveDirectory,
		Attributes: directory.LDAPAttributes{Phone: directorytest.PhoneAttributes()}}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	directorytest.Run(t, "ldif-active-directory", src, directorytest.Options{
		Directory:        d,
		Attributes:       map[string]string{"title": "title", "department": "department", "employeeNumber": "employeeNumber"},
		PrimaryEmailOnly: true,
		CheckID:          checkGUID,
	})
}

func TestConformanceScimmy(t *testing.T) {
	d := directorytest.Conformance(t)
	seed, err := d.ScimmySeed()
	if err != nil {
		t.Fatal(err)
	}
	srv := testenv.StartScimmy(t, testenv.ScimmyOptions{SeedJSON: writeFile(t, "seed.json", string(seed))})
	for _, pageSize := range []int{100, 3} {
		src, err := directory.NewSCIMSource(directory.SCIMSourceConfig{BaseURL: srv.URL, Token: srv.Token, PageSize: pageSize}, testLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		directorytest.Run(t, fmt.Sprintf("scimmy-page-%d", pageSize), src, directorytest.Options{
			Directory: d,
			Attributes: map[string]string{
				"title":          "title",
				"department":     "enterprise.department",
				"employeeNumber": directory.EnterpriseUserSchema + ":employeeNumber",
			},
			CheckID: checkGUID,
		})
	}
}

func TestConformanceSlapd(t *testing.T) {
	d := directorytest.Conformance(t)
	const suffix = "dc=example,dc=com"
	srv := testenv.StartSlapd(t, testenv.SlapdOptions{SeedLDIF: d.OpenLDAPLDIF(suffix), Suffix: suffix, TLS: true})
	disabledAttr, disabledValues := directorytest.OpenLDAPDisabled()
	for _, tc := range []struct {
		name string
		cfg  directory.LDAPConfig
	}{
		{"slapd-ldap", directory.LDAPConfig{URLs: []string{srv.URL}}},
		{"slapd-ldaps-paged-5", directory.LDAPConfig{URLs: []string{srv.LDAPSURL}, CAFile: srv.CAFile, PageSize: 5}},
	} {
		cfg := tc.cfg
		cfg.Preset = directory.PresetOpenLDAP
		cfg.BindDN, cfg.BindPassword = srv.BindDN, srv.BindPassword
		cfg.UserBaseDN, cfg.GroupBaseDN = "ou=people,"+suffix, "ou=groups,"+suffix
		cfg.Attributes = directory.LDAPAttributes{Disabled: disabledAttr, DisabledValues: disabledValues, Phone: directorytest.PhoneAttributes()}
		cfg.ExtraAttributes = []string{"title", "departmentNumber", "employeeNumber"}
		src, err := directory.NewLDAP(cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		directorytest.Run(t, tc.name, src, directorytest.Options{
			Directory:  d,
			Attributes: map[string]string{"title": "title", "department": "departmentNumber", "employeeNumber": "employeeNumber"},
			CheckID:    checkGUID,
		})
	}
}

func TestConformanceSamba(t *testing.T) {
	d := directorytest.Conformance(t)
	srv, base := sambaConformance(t, d)
	src, err := directory.NewLDAP(sambaConformanceConfig(srv, base), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	directorytest.Run(t, "samba-ad", src, directorytest.Options{
		Directory:        d,
		Attributes:       map[string]string{"title": "title", "department": "department", "employeeNumber": "employeeNumber"},
		PrimaryEmailOnly: true,
		CheckID:          checkGUID,
	})
}

// sambaLoaded is the OU holding the conformance directory in this binary's domain controller:
// its users' sAMAccountNames are unique in the domain, so it is loaded once per binary.
var sambaLoaded struct {
	sync.Mutex
	base string
}

// sambaConformance starts (or joins) the domain controller and loads the conformance
// directory under OU=conformance once.
func sambaConformance(t *testing.T, d *directorytest.Directory) (*testenv.Samba, string) {
	t.Helper()
	srv := testenv.StartSamba(t, testenv.SambaOptions{})
	sambaLoaded.Lock()
	defer sambaLoaded.Unlock()
	if sambaLoaded.base == "" {
		base := "OU=conformance," + srv.BaseDN
		srv.Add(t, d.SambaLDIF(base))
		sambaLoaded.base = base
	}
	return srv, sambaLoaded.base
}

// sambaConformanceConfig reads the conformance directory from srv under base.
func sambaConformanceConfig(srv *testenv.Samba, base string) directory.LDAPConfig {
	return directory.LDAPConfig{
		URLs:            []string{srv.LDAPSURL},
		CAFile:          srv.CAFile,
		Preset:          directory.PresetActiveDirectory,
		BindDN:          srv.BindDN,
		BindPassword:    srv.BindPassword,
		UserBaseDN:      base,
		GroupBaseDN:     base,
		Attributes:      directory.LDAPAttributes{Phone: directorytest.PhoneAttributes()},
		ExtraAttributes: []string{"title", "department", "employeeNumber"},
	}
}
