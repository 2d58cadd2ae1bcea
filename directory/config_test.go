package directory

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // substrings; none means valid
	}{
		{"no type", Config{}, []string{"type: required"}},
		{"unknown type", Config{Type: "nis"}, []string{`type: "nis" is not one of`}},
		{"ldap without section", Config{Type: "ldap"}, []string{"ldap: type is ldap but the ldap section is missing"}},
		{"scim without section", Config{Type: "scim", LDAP: &LDAPConfig{}}, []string{"scim: type is scim"}},
		{"ldif without section", Config{Type: "ldif"}, []string{"ldif: type is ldif"}},
		{"ldap delegates", Config{Type: "ldap", LDAP: &LDAPConfig{URLs: []string{"http://x"}}}, []string{"ldap.urls[0]:"}},
		{"scim delegates", Config{Type: "scim", SCIM: &SCIMSourceConfig{PageSize: -5}}, []string{"scim.base_url:", "scim.token:", "scim.page_size:"}},
		{"ldif delegates", Config{Type: "ldif", LDIF: &LDIFConfig{Preset: "x"}}, []string{"ldif.path:", "ldif.preset:"}},
		{"negative floor", Config{Type: "scim_push", MinUsers: -1}, []string{"min_users:"}},
		{"scim_push needs nothing", Config{Type: "scim_push"}, nil},
		{"ldif ok", Config{Type: "LDIF", LDIF: &LDIFConfig{Path: "x.ldif"}}, nil},
		{"other sections ignored", Config{Type: "ldif", LDIF: &LDIFConfig{Path: "x"}, SCIM: &SCIMSourceConfig{}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestConfigLoadSecrets(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(p, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Config{Type: "scim", SCIM: &SCIMSourceConfig{BaseURL: "https://idp.example.com/scim/v2", TokenFile: p}}
	if err := c.LoadSecrets(); err != nil || c.SCIM.Token != "s3cret" {
		t.Fatalf("scim: %v %q", err, c.SCIM.Token)
	}
	// The token read from token_file is not a second token (bridge loads secrets, then
	// validates: token_file alone used to be refused as "not both").
	if err := c.Validate(); err != nil {
		t.Fatalf("scim token from token_file: Validate = %v", err)
	}
	c.SCIM.tokenFromFile = false // as if BRIDGE_SCIM_SOURCE_TOKEN had been set as well
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("token and token_file: Validate = %v", err)
	}
	c = Config{Type: "ldap", LDAP: &LDAPConfig{BindPasswordFile: p}}
	if err := c.LoadSecrets(); err != nil || c.LDAP.BindPassword != "s3cret" {
		t.Fatalf("ldap: %v %q", err, c.LDAP.BindPassword)
	}
	c = Config{Type: "scim", SCIM: &SCIMSourceConfig{TokenFile: p + ".missing"}}
	if err := c.LoadSecrets(); err == nil || !strings.HasPrefix(err.Error(), "scim.token_file:") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestOpen(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d.ldif")
	if err := os.WriteFile(p, []byte(openLDAPSample), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(Config{Type: "ldif", LDIF: &LDIFConfig{Path: p}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := r.Read(context.Background())
	if err != nil || len(snap.Users) != 2 {
		t.Fatalf("read: %v", err)
	}

	// The min_users floor turns a too-small read into ErrIncomplete.
	r, err = Open(Config{Type: "ldif", LDIF: &LDIFConfig{Path: p}, MinUsers: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Read(context.Background())
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "2 users, fewer than min_users 3") {
		t.Fatalf("floor: %v", err)
	}
	if _, err := Open(Config{Type: "ldif", LDIF: &LDIFConfig{Path: p}, MinUsers: 2}, nil); err != nil {
		t.Fatal(err)
	}

	if _, err := Open(Config{Type: "scim_push"}, nil); err == nil || !strings.Contains(err.Error(), "directory/store") {
		t.Errorf("scim_push: %v", err)
	}
	if _, err := Open(Config{Type: "ldap"}, nil); err == nil || !strings.Contains(err.Error(), "ldap section is missing") {
		t.Errorf("invalid: %v", err)
	}
	r, err = Open(Config{Type: "scim", SCIM: &SCIMSourceConfig{BaseURL: "https://idp.example.com/scim/v2", Token: "t"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.(*SCIMSource); !ok {
		t.Errorf("scim: %T", r)
	}
	r, err = Open(Config{Type: "ldap", LDAP: &LDAPConfig{URLs: []string{"ldap://127.0.0.1:1"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.(*LDAPSource); !ok {
		t.Errorf("ldap: %T", r)
	}
}
