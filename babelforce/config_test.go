package babelforce

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"go.yaml.in/yaml/v3"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{BaseURL: "https://services.babelforce.com", Username: "u@x", Password: "p"}
	tests := []struct {
		name string
		mod  func(*Config)
		want []string // substrings, each must appear; empty = valid
	}{
		{"valid password", func(*Config) {}, nil},
		{"valid token", func(c *Config) { c.Username, c.Password, c.Token = "", "", "t" }, nil},
		{"valid token file", func(c *Config) { c.Username, c.Password, c.TokenFile = "", "", "/x" }, nil},
		{"valid password file", func(c *Config) { c.Password, c.PasswordFile = "", "/x" }, nil},
		{"http loopback", func(c *Config) { c.BaseURL = "http://127.0.0.1:8080" }, nil},
		{"http localhost", func(c *Config) { c.BaseURL = "http://localhost:8080/" }, nil},
		{"missing base url", func(c *Config) { c.BaseURL = "" }, []string{"base_url: is required"}},
		{"relative base url", func(c *Config) { c.BaseURL = "foo" }, []string{`base_url: must be an absolute http(s) URL, got "foo"`}},
		{"http remote", func(c *Config) { c.BaseURL = "http://services.babelforce.com" }, []string{"base_url: must use https"}},
		{"no credentials", func(c *Config) { c.Username, c.Password = "", "" }, []string{"username: is required", "password: is required"}},
		{"no password", func(c *Config) { c.Password = "" }, []string{`password: is required for username "u@x"`}},
		{"both", func(c *Config) { c.Token = "t" }, []string{"token: set either"}},
		{"every number at once", func(c *Config) {
			c.Timeout, c.RateLimit, c.Burst, c.MaxConcurrency, c.MaxAttempts, c.MaxRetryTime, c.PageSize = -1, -1, -1, -1, -1, -1, 5000
		}, []string{"timeout:", "rate_limit:", "burst:", "max_concurrency:", "max_attempts:", "max_retry_time:", "page_size:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			before := c
			err := c.Validate()
			if c != before {
				t.Errorf("Validate changed the config")
			}
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestConfigYAMLAndDefaults(t *testing.T) {
	doc := `
base_url: https://acme.babelforce.com
username: bridge@acme.com
password: must-be-ignored
password_file: /run/pw
timeout: 10s
rate_limit: 2.5
max_retry_time: 1m
insecure_skip_verify: true
page_size: 50
`
	var c Config
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	if c.Password != "" {
		t.Errorf("password read from YAML: %q", c.Password)
	}
	if c.BaseURL != "https://acme.babelforce.com" || c.PasswordFile != "/run/pw" || c.Timeout != 10*time.Second ||
		c.RateLimit != 2.5 || c.MaxRetryTime != time.Minute || !c.InsecureSkipVerify || c.PageSize != 50 {
		t.Errorf("decoded %+v", c)
	}
	c.SetDefaults()
	if c.ClientID != "manager" || c.MaxAttempts != 5 || c.MaxConcurrency != 8 || c.Burst != 3 || c.PageSize != 50 || c.Timeout != 10*time.Second {
		t.Errorf("defaults %+v", c)
	}
}

func TestLoadSecrets(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Config{PasswordFile: pw, TokenFile: filepath.Join(dir, "missing")}
	err := c.LoadSecrets()
	if c.Password != "hunter2" {
		t.Errorf("password %q", c.Password)
	}
	if err == nil || !strings.Contains(err.Error(), "token_file:") {
		t.Errorf("want token_file error, got %v", err)
	}
	c = Config{Password: "env-wins", PasswordFile: pw}
	if err := c.LoadSecrets(); err != nil || c.Password != "env-wins" {
		t.Errorf("got %q, %v", c.Password, err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(Config{BaseURL: "ftp://x", CAFile: "/nonexistent"})
	if err == nil || !strings.Contains(err.Error(), "base_url:") || !strings.Contains(err.Error(), "username:") {
		t.Fatalf("got %v", err)
	}
	_, err = New(Config{BaseURL: "https://x.example", Token: "t", CAFile: "/nonexistent/ca.pem"})
	if err == nil || !strings.Contains(err.Error(), "ca_file:") {
		t.Fatalf("got %v", err)
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	c := Config{BaseURL: "https://from-yaml.example", Username: "yaml-user"}
	err := envconfig.ProcessWith(context.Background(), &envconfig.Config{
		Target: &c,
		Lookuper: envconfig.PrefixLookuper("BRIDGE_BABELFORCE_", envconfig.MapLookuper(map[string]string{
			"BRIDGE_BABELFORCE_BASE_URL":             "https://acme.babelforce.com",
			"BRIDGE_BABELFORCE_PASSWORD":             "env-pw",
			"BRIDGE_BABELFORCE_TIMEOUT":              "5s",
			"BRIDGE_BABELFORCE_RATE_LIMIT":           "7.5",
			"BRIDGE_BABELFORCE_INSECURE_SKIP_VERIFY": "true",
			"BRIDGE_BABELFORCE_SCIM_TOKEN":           "scim-tok",
		})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL != "https://acme.babelforce.com" || c.Username != "yaml-user" || c.Password != "env-pw" ||
		c.Timeout != 5*time.Second || c.RateLimit != 7.5 || !c.InsecureSkipVerify || c.SCIMToken != "scim-tok" {
		t.Errorf("got %+v", c)
	}
}
