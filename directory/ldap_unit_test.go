package directory

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/sethvargo/go-envconfig"
)

func TestFormatGUID(t *testing.T) {
	cases := []struct{ b64, want string }{
		// Read over LDAP from Samba; samba-tool user show printed the same GUID.
		{"6stxh7FeHkeuOL5pTEk3NQ==", "8771cbea-5eb1-471e-ae38-be694c493735"},
		{"imMF5WiToUqYuXOuFm5/uA==", "e505638a-9368-4aa1-98b9-73ae166e7fb8"},
	}
	for _, c := range cases {
		raw, _ := base64.StdEncoding.DecodeString(c.b64)
		got, err := FormatGUID(raw)
		if err != nil || got != c.want {
			t.Errorf("FormatGUID(%s) = %q, %v; want %q", c.b64, got, err, c.want)
		}
		back, err := ParseGUID(strings.ToUpper("{" + c.want + "}"))
		if err != nil || !slices.Equal(back, raw) {
			t.Errorf("ParseGUID(%s) = %x, %v; want %x", c.want, back, err, raw)
		}
	}
	// The layout spelt out: bytes 00..0f.
	raw := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	if got, _ := FormatGUID(raw); got != "03020100-0504-0706-0809-0a0b0c0d0e0f" {
		t.Errorf("FormatGUID(00..0f) = %s", got)
	}
	if _, err := FormatGUID(raw[:15]); err == nil {
		t.Error("FormatGUID accepted 15 bytes")
	}
	for _, bad := range []string{"", "8771cbea5eb1471eae38be694c493735", "8771cbea-5eb1-471e-ae38-be694c49373x"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("ParseGUID(%q) accepted", bad)
		}
	}
}

func TestFormatSID(t *testing.T) {
	// S-1-5-21-1290143581-977710068-3834069574-500
	b := []byte{1, 5, 0, 0, 0, 0, 0, 5}
	for _, sub := range []uint32{21, 1290143581, 977710068, 3834069574, 500} {
		b = append(b, byte(sub), byte(sub>>8), byte(sub>>16), byte(sub>>24))
	}
	got, err := formatSID(b)
	if err != nil || got != "S-1-5-21-1290143581-977710068-3834069574-500" {
		t.Errorf("formatSID = %q, %v", got, err)
	}
	if _, err := formatSID(b[:10]); err == nil {
		t.Error("formatSID accepted a truncated SID")
	}
}

func TestParseRange(t *testing.T) {
	cases := []struct {
		in       string
		name     string
		lo, hi   int
		last, ok bool
	}{
		{"member", "member", 0, 0, false, false},
		{"member;range=0-1499", "member", 0, 1499, false, true},
		{"member;Range=1500-*", "member", 1500, -1, true, true},
		{"member;binary;range=10-19", "member;binary", 10, 19, false, true},
		{"member;range=x-1", "", 0, 0, false, false},
	}
	for _, c := range cases {
		name, lo, hi, last, ok := parseRange(c.in)
		if name != c.name || lo != c.lo || hi != c.hi || last != c.last || ok != c.ok {
			t.Errorf("parseRange(%q) = %q %d %d %v %v", c.in, name, lo, hi, last, ok)
		}
	}
}

func TestLDAPFilterEscaping(t *testing.T) {
	// What LookupUser puts in its filters.
	cases := map[string]string{
		"jdoe":         "jdoe",
		"*":            `\2a`,
		"a)(uid=*":     `a\29\28uid=\2a`,
		`back\slash`:   `back\5cslash`,
		"nul\x00byte":  `nul\00byte`,
		"cn=x,dc=y(1)": `cn=x,dc=y\281\29`,
		"Ünï":          `\c3\9cn\c3\af`, // bytes outside ASCII escaped, as RFC 4515 allows
	}
	for in, want := range cases {
		if got := ldap.EscapeFilter(in); got != want {
			t.Errorf("EscapeFilter(%q) = %q, want %q", in, got, want)
		}
		if _, err := ldap.CompileFilter("(uid=" + ldap.EscapeFilter(in) + ")"); err != nil {
			t.Errorf("escaped %q does not compile: %v", in, err)
		}
	}
}

func TestLDAPConfigValidate(t *testing.T) {
	good := LDAPConfig{URLs: []string{"ldaps://dc1.example.com"}, BindDN: "cn=x,dc=example,dc=com", BindPassword: "p"}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	bad := LDAPConfig{
		URLs:          []string{"http://x", "ldap://", "ldaps://h/dc=x"},
		Preset:        "novell",
		BindDN:        "not a dn",
		UserBaseDN:    "nope",
		UserFilter:    "(objectClass=person",
		PageSize:      -5,
		RangeSize:     -1,
		SearchTimeout: -1,
		CAFile:        "/nonexistent/ca.pem",
		Attributes:    LDAPAttributes{IDFormat: "base32", UserName: "-", Phone: []string{"tele phone"}, DisabledMask: 2, DisabledValues: []string{"x"}},
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, key := range []string{"urls[0]:", "urls[1]:", "urls[2]:", "preset:", "bind_dn:", "bind_password_file:", "user_base_dn:",
		"user_filter:", "page_size:", "range_size:", "search_timeout:", "ca_file:", "attributes.id_format:", "attributes.user_name:",
		"attributes: \"tele phone\"", "attributes.disabled_values:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not mention %s:\n%v", key, err)
		}
	}
	if len(bad.URLs) != 3 || bad.PageSize != -5 || bad.Attributes.ID != "" {
		t.Error("Validate changed the config")
	}
	if err := (&LDAPConfig{}).Validate(); err == nil || !strings.Contains(err.Error(), "urls:") {
		t.Errorf("empty config: %v", err)
	}
	if err := (&LDAPConfig{URLs: []string{"ldaps://x"}, StartTLS: true}).Validate(); err == nil || !strings.Contains(err.Error(), "start_tls:") {
		t.Errorf("start_tls with ldaps only: %v", err)
	}
}

func TestLDAPConfigDefaultsAndEnv(t *testing.T) {
	var ad LDAPConfig
	ad.Preset = "Active_Directory"
	ad.SetDefaults()
	if ad.Attributes.ID != "objectGUID" || ad.Attributes.IDFormat != "guid" || ad.Attributes.UserName != "sAMAccountName" ||
		ad.Attributes.Disabled != "userAccountControl" || ad.Attributes.DisabledMask != 2 || ad.RangeSize != 1500 ||
		ad.PageSize != 500 || !ad.nested() || !strings.Contains(ad.UserFilter, "objectCategory=person") ||
		!slices.Contains(ad.ExtraAttributes, "userPrincipalName") {
		t.Errorf("AD defaults = %+v", ad)
	}
	again := ad
	again.ExtraAttributes = slices.Clone(ad.ExtraAttributes)
	again.SetDefaults()
	if len(again.ExtraAttributes) != len(ad.ExtraAttributes) {
		t.Error("SetDefaults is not idempotent")
	}
	var ol LDAPConfig
	ol.Attributes.ID = "uidNumber"
	ol.SetDefaults()
	if ol.Preset != PresetOpenLDAP || ol.Attributes.IDFormat != "string" || ol.RangeSize != 0 || ol.Attributes.UserName != "uid" {
		t.Errorf("openldap defaults = %+v", ol)
	}

	env := map[string]string{
		"BRIDGE_LDAP_URLS":             "ldaps://a,ldaps://b",
		"BRIDGE_LDAP_BIND_PASSWORD":    "from-env",
		"BRIDGE_LDAP_ATTR_USER_NAME":   "userPrincipalName",
		"BRIDGE_LDAP_ATTR_PHONE":       "telephoneNumber,ipPhone",
		"BRIDGE_LDAP_PAGE_SIZE":        "250",
		"BRIDGE_LDAP_SEARCH_TIMEOUT":   "90s",
		"BRIDGE_LDAP_EXTRA_ATTRIBUTES": "department,title",
	}
	var c LDAPConfig
	c.URLs = []string{"ldap://from-yaml"}
	process := func(c *LDAPConfig, env map[string]string) {
		t.Helper()
		err := envconfig.ProcessWith(context.Background(), &envconfig.Config{
			Target:   c,
			Lookuper: envconfig.PrefixLookuper("BRIDGE_LDAP_", envconfig.MapLookuper(env)),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	process(&c, env)
	if !slices.Equal(c.URLs, []string{"ldaps://a", "ldaps://b"}) || c.BindPassword != "from-env" ||
		c.Attributes.UserName != "userPrincipalName" || !slices.Equal(c.Attributes.Phone, []string{"telephoneNumber", "ipPhone"}) ||
		c.PageSize != 250 || c.SearchTimeout.Seconds() != 90 || len(c.ExtraAttributes) != 2 {
		t.Errorf("after env: %+v", c)
	}
	if c.NestedGroups != nil {
		t.Error("nested_groups was set although the environment does not name it")
	}
	process(&c, map[string]string{"BRIDGE_LDAP_NESTED_GROUPS": "false"})
	if c.NestedGroups == nil || *c.NestedGroups {
		t.Error("BRIDGE_LDAP_NESTED_GROUPS=false not applied")
	}
}

func TestLDAPConfigLoadSecrets(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(f, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := LDAPConfig{BindPasswordFile: f}
	if err := c.LoadSecrets(); err != nil || c.BindPassword != "s3cret" {
		t.Fatalf("LoadSecrets = %v, password %q", err, c.BindPassword)
	}
	c = LDAPConfig{BindPassword: "env", BindPasswordFile: f}
	if err := c.LoadSecrets(); err != nil || c.BindPassword != "env" {
		t.Fatalf("the environment's password must win: %v %q", err, c.BindPassword)
	}
	c = LDAPConfig{BindPasswordFile: filepath.Join(t.TempDir(), "missing")}
	if err := c.LoadSecrets(); err == nil || !strings.HasPrefix(err.Error(), "bind_password_file:") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestLDAPSearchErrorsClassified(t *testing.T) {
	l, err := NewLDAP(LDAPConfig{URLs: []string{"ldap://x"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &ldapRead{l: l, url: "ldap://x", parent: context.Background(), ctx: context.Background()}
	cases := []struct {
		err        error
		incomplete bool
		says       string
	}{
		{ldap.NewError(ldap.LDAPResultSizeLimitExceeded, errors.New("server said so")), true, "size limit exceeded (4)"},
		{ldap.NewError(ldap.LDAPResultTimeLimitExceeded, errors.New("server said so")), true, "time limit exceeded (3): raise search_timeout"},
		{ldap.NewError(ldap.LDAPResultReferral, errors.New("server said so")), true, "referral (10) not followed"},
		{ldap.NewError(ldap.LDAPResultAdminLimitExceeded, errors.New("server said so")), true, "administrative limit exceeded (11)"},
		{ldap.NewError(ldap.ErrorNetwork, errors.New("server said so")), true, "Network Error"},
		{ldap.NewError(ldap.LDAPResultBusy, errors.New("server said so")), true, "Busy"},
		{ldap.NewError(ldap.LDAPResultNoSuchObject, errors.New("server said so")), false, "does not exist (32)"},
		{ldap.NewError(ldap.LDAPResultInsufficientAccessRights, errors.New("server said so")), false, "insufficient access (50)"},
		{ldap.NewError(ldap.LDAPResultUnavailableCriticalExtension, errors.New("server said so")), false, "page_size: -1"},
	}
	for _, c := range cases {
		got := r.fail("users", "dc=x", 7, c.err)
		if errors.Is(got, ErrIncomplete) != c.incomplete || !strings.Contains(got.Error(), c.says) || !strings.Contains(got.Error(), "after 7 entries") {
			t.Errorf("fail(%v) = %v (incomplete %v), want incomplete=%v and %q", c.err, got, errors.Is(got, ErrIncomplete), c.incomplete, c.says)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.ctx, r.parent = ctx, ctx
	if got := r.fail("users", "dc=x", 0, errors.New("closed")); !errors.Is(got, ErrIncomplete) || !errors.Is(got, context.Canceled) {
		t.Errorf("cancelled: %v", got)
	}
}

// TestDisabledBy: attributes.disabled as both the LDAP and the LDIF source apply it.
func TestDisabledBy(t *testing.T) {
	mask := LDAPAttributes{DisabledMask: 2}
	values := LDAPAttributes{DisabledValues: []string{"TRUE", "locked"}}
	presence := LDAPAttributes{}
	for _, c := range []struct {
		a       LDAPAttributes
		vals    []string
		want    bool
		wantErr bool
	}{
		{mask, nil, false, false},
		{mask, []string{"514"}, true, false},
		{mask, []string{" 512 "}, false, false},
		{mask, []string{"disabled"}, false, true},
		{values, []string{"no", " true "}, true, false},
		{values, []string{"Locked"}, true, false},
		{values, []string{"false"}, false, false},
		{presence, nil, false, false},
		{presence, []string{""}, true, false},
	} {
		got, err := c.a.disabledBy(c.vals)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("%+v.disabledBy(%q) = %v, %v; want %v, error %v", c.a, c.vals, got, err, c.want, c.wantErr)
		}
	}
}
