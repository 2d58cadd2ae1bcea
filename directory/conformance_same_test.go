package directory_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/directory/directorytest"
	"github.com/babelforce/bridge/internal/testenv"
)

// The LDAP and the LDIF source turn an entry into a User by one path: the same entries, read
// from a server (slapd, Samba AD) and from an export of that server, give the same users and
// groups, field by field.
func TestSameUsersFromLDAPAndItsLDIFExport(t *testing.T) {
	d := directorytest.Conformance(t)
	t.Run("slapd", func(t *testing.T) {
		const suffix = "dc=example,dc=com"
		srv := testenv.StartSlapd(t, testenv.SlapdOptions{SeedLDIF: d.OpenLDAPLDIF(suffix), Suffix: suffix})
		attr, values := directorytest.OpenLDAPDisabled()
		attrs := directory.LDAPAttributes{Disabled: attr, DisabledValues: values, Phone: directorytest.PhoneAttributes()}
		cfg := directory.LDAPConfig{URLs: []string{srv.URL}, Preset: directory.PresetOpenLDAP,
			BindDN: srv.BindDN, BindPassword: srv.BindPassword,
			UserBaseDN: "ou=people," + suffix, GroupBaseDN: "ou=groups," + suffix,
			Attributes: attrs, ExtraAttributes: []string{"title", "departmentNumber", "employeeNumber"}}
		conn, err := ldap.DialURL(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// as slapcat, with the operational entryUUID (all of "+" would bring the dynlist
		// overlay's transitive member and memberOf values, which slapcat does not export)
		export := exportLDIF(t, conn, srv.BindDN, srv.BindPassword, []string{"*", "entryUUID"}, cfg.UserBaseDN, cfg.GroupBaseDN)
		compareLDAPAndLDIF(t, cfg, directory.LDIFConfig{Path: writeFile(t, "slapd.ldif", export), Preset: cfg.Preset, Attributes: attrs})
	})
	t.Run("samba", func(t *testing.T) {
		srv, base := sambaConformance(t, d)
		cfg := sambaConformanceConfig(srv, base)
		conn, err := srv.Dial()
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		export := exportLDIF(t, conn, srv.BindDN, srv.BindPassword, []string{"*"}, base)
		compareLDAPAndLDIF(t, cfg, directory.LDIFConfig{Path: writeFile(t, "samba.ldif", export), Preset: cfg.Preset, Attributes: cfg.Attributes})
	})
}

// exportLDIF binds and exports every entry under the bases as LDIF.
func exportLDIF(t *testing.T, conn *ldap.Conn, bindDN, password string, attrs []string, bases ...string) string {
	t.Helper()
	if err := conn.Bind(bindDN, password); err != nil {
		t.Fatal(err)
	}
	var entries []*ldap.Entry
	for _, base := range bases {
		res, err := conn.SearchWithPaging(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", attrs, nil), 100)
		if err != nil {
			t.Fatalf("export %s: %v", base, err)
		}
		entries = append(entries, res.Entries...)
	}
	return directorytest.ExportLDIF(entries)
}

func compareLDAPAndLDIF(t *testing.T, lc directory.LDAPConfig, fc directory.LDIFConfig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ls, err := directory.NewLDAP(lc, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	fromLDAP, err := ls.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := directory.NewLDIF(fc, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	fromLDIF, err := fs.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(fromLDAP.Users) < 20 || len(fromLDIF.Users) != len(fromLDAP.Users) || len(fromLDIF.Groups) != len(fromLDAP.Groups) {
		t.Fatalf("LDAP read %d users and %d groups, LDIF %d and %d", len(fromLDAP.Users), len(fromLDAP.Groups), len(fromLDIF.Users), len(fromLDIF.Groups))
	}
	for _, lu := range fromLDAP.Users {
		fu := fromLDIF.User(lu.ID)
		if fu == nil {
			t.Errorf("user %s (%s): not in the LDIF read", lu.UserName, lu.ID)
			continue
		}
		// A search returns the attributes asked for, an export every one: compare those the
		// search returned.
		got := *fu
		got.Attributes = map[string][]string{}
		for k := range lu.Attributes {
			if v, ok := fu.Attributes[k]; ok {
				got.Attributes[k] = v
			}
		}
		for _, diff := range fieldDiffs(lu, got) {
			t.Errorf("user %s: %s", lu.UserName, diff)
		}
		if !slices.Equal(fromLDAP.Memberships[lu.ID], fromLDIF.Memberships[lu.ID]) {
			t.Errorf("user %s: memberships %v from LDAP, %v from LDIF", lu.UserName, fromLDAP.Memberships[lu.ID], fromLDIF.Memberships[lu.ID])
		}
	}
	for _, lg := range fromLDAP.Groups {
		fg := fromLDIF.Group(lg.ID)
		if fg == nil {
			t.Errorf("group %s (%s): not in the LDIF read", lg.Name, lg.ID)
			continue
		}
		for _, diff := range fieldDiffs(lg, *fg) {
			t.Errorf("group %s: %s", lg.Name, diff)
		}
	}
	// the row is worth something only if the fields are filled
	var fax, pager, fallback bool
	for _, u := range fromLDAP.Users {
		for _, p := range u.Phones {
			fax = fax || p.Type == "fax"
			pager = pager || p.Type == "pager"
		}
		fallback = fallback || (u.DisplayName != "" && u.DisplayNameFrom == "cn")
	}
	if !fax || !pager || !fallback {
		t.Errorf("the directory read has a fax %v, a pager %v, a display name from cn %v: want all", fax, pager, fallback)
	}
}

// fieldDiffs names every exported field in which a (from LDAP) and b (from LDIF) differ.
func fieldDiffs[T any](a, b T) []string {
	var out []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		f := va.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if x, y := va.Field(i).Interface(), vb.Field(i).Interface(); !reflect.DeepEqual(x, y) {
			out = append(out, fmt.Sprintf("%s = %+v from LDAP, %+v from LDIF", f.Name, x, y))
		}
	}
	return out
}
