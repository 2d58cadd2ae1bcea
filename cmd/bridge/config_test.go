package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// exampleEnv supplies the secrets config.example.yaml expects from the environment.
func exampleEnv(extra map[string]string) func(string) (string, bool) {
	m := map[string]string{
		"BRIDGE_BABELFORCE_PASSWORD":   "pw",
		"BRIDGE_LDAP_BIND_PASSWORD":    "ldap-pw",
		"BRIDGE_SSO_CLIENT_SECRET":     "sso-secret",
		"BRIDGE_INBOUND_SCIM_TOKENS":   "token-one-0123456789,token-two-0123456789",
		"BRIDGE_SERVER_ADMIN_TOKEN":    "admin",
		"BRIDGE_UI_OIDC_CLIENT_SECRET": "ui-secret",
	}
	m["BRIDGE_LDAP_CA_FILE"] = os.Getenv("BRIDGE_TEST_CA")
	for k, v := range extra {
		m[k] = v
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// tokensFile writes a tokens file for the example's inbound_scim.tokens_file.
func tokensFile(t *testing.T) string {
	dir := t.TempDir()
	p := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(p, []byte("# IdP tokens\nfile-token-0123456789abcdef\n"), 0o600))
	ca := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(ca, []byte("not checked here"), 0o600))
	t.Setenv("BRIDGE_TEST_CA", ca)
	return p
}

func TestExampleConfigIsValid(t *testing.T) {
	raw, err := os.ReadFile("../../config.example.yaml")
	require.NoError(t, err)
	cfg, err := parseConfig(context.Background(), raw, "config.example.yaml", exampleEnv(map[string]string{
		"BRIDGE_INBOUND_SCIM_TOKENS_FILE": tokensFile(t),
	}), true)
	require.NoError(t, err)
	assert.Equal(t, "ldap", cfg.Directory.Type)
	assert.Equal(t, 15*time.Minute, cfg.Sync.Interval)
	assert.Equal(t, "pw", cfg.Babelforce.Password)
	assert.Equal(t, "bridge:ldap", cfg.Mapping.AgentSource)
	assert.Equal(t, "ui-secret", cfg.UI.OIDC.ClientSecret)
	assert.Equal(t, []string{"bridge-admins"}, cfg.UI.OIDC.Admins.Values)
}

func TestEnvironmentOverridesYAML(t *testing.T) {
	raw, err := os.ReadFile("../../config.example.yaml")
	require.NoError(t, err)
	cfg, err := parseConfig(context.Background(), raw, "x", exampleEnv(map[string]string{
		"BRIDGE_SYNC_INTERVAL":              "5m",
		"BRIDGE_BABELFORCE_BASE_URL":        "https://acme.babelforce.com",
		"BRIDGE_LDAP_BIND_DN":               "cn=other",
		"BRIDGE_SYNC_GUARD_MAX_DESTRUCTIVE": "3",
		"BRIDGE_INBOUND_SCIM_TOKENS_FILE":   tokensFile(t),
	}), true)
	require.NoError(t, err)
	assert.Equal(t, 5*time.Minute, cfg.Sync.Interval)
	assert.Equal(t, "https://acme.babelforce.com", cfg.Babelforce.BaseURL)
	assert.Equal(t, "cn=other", cfg.Directory.LDAP.BindDN)
	assert.Equal(t, 3, cfg.Sync.Guard.MaxDestructive)
}

func TestConfigListsEveryProblem(t *testing.T) {
	raw := []byte(`
babelforce:
  base_url: "ftp://babelforce"
  username: admin@example.com
directory:
  type: ldif
  ldif: {path: /nonexistent.ldif}
mapping:
  agent_source: ""
  skills:
    - {match: "(", tag: "$1"}
sync:
  interval: 15m
  concurrency: 0
`)
	_, err := parseConfig(context.Background(), raw, "bad.yaml", func(string) (string, bool) { return "", false }, true)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	msg := err.Error()
	for _, want := range []string{
		"babelforce.base_url", "babelforce.password", "mapping.agent_source", "mapping.skills[0].match", "sync.concurrency",
	} {
		assert.Contains(t, msg, want)
	}
	assert.GreaterOrEqual(t, len(flatten(ce.Err)), 5)
}

func TestSecretsAreNotAcceptedFromYAML(t *testing.T) {
	raw := []byte("babelforce:\n  base_url: https://services.babelforce.com\n  username: a\n  password: hunter2\n")
	_, err := parseConfig(context.Background(), raw, "x.yaml", func(string) (string, bool) { return "", false }, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "password")
	assert.NotContains(t, err.Error(), "hunter2")
}

func TestSecretFromFile(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret\n"), 0o600))
	raw := []byte(`
babelforce: {base_url: "https://services.babelforce.com", username: a, password_file: "` + pw + `"}
directory: {type: ldif, ldif: {path: "` + pw + `"}}
mapping: {agent_source: "bridge:test"}
`)
	cfg, err := parseConfig(context.Background(), raw, "x.yaml", func(string) (string, bool) { return "", false }, true)
	require.NoError(t, err)
	assert.Equal(t, "s3cret", cfg.Babelforce.Password)

	// server.admin_token_file reads like every other *_file: trailing line ending dropped, an
	// empty file is a problem of the configuration (not an admin API that silently answers
	// 401 to everyone).
	withAdmin := func(path string) []byte {
		return append(raw, []byte("server: {admin_token_file: \""+path+"\"}\n")...)
	}
	cfg, err = parseConfig(context.Background(), withAdmin(pw), "x.yaml", func(string) (string, bool) { return "", false }, true)
	require.NoError(t, err)
	assert.Equal(t, "s3cret", cfg.Server.AdminToken)
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	_, err = parseConfig(context.Background(), withAdmin(empty), "x.yaml", func(string) (string, bool) { return "", false }, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "server.admin_token_file")
	assert.Contains(t, err.Error(), "empty")
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := loadConfig(context.Background(), "/nonexistent/bridge.yaml", func(string) (string, bool) { return "", false }, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/nonexistent/bridge.yaml")
	_, err = loadConfig(context.Background(), "", nil, true)
	var ue usageError
	assert.True(t, errors.As(err, &ue))
}

// TestConfigPrint: config validate --print shows the effective configuration (environment
// overrides and defaults applied) and never a secret.
func TestConfigPrint(t *testing.T) {
	dir := t.TempDir()
	ldif := filepath.Join(dir, "d.ldif")
	require.NoError(t, os.WriteFile(ldif, []byte("dn: dc=example,dc=com\nobjectClass: top\n"), 0o600))
	cfgPath := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`
babelforce: {base_url: "https://services.babelforce.com", username: a}
directory: {type: ldif, ldif: {path: "`+ldif+`"}}
mapping: {agent_source: "bridge:test"}
`), 0o600))
	env := map[string]string{"BRIDGE_BABELFORCE_PASSWORD": "hunter2-secret", "BRIDGE_SYNC_INTERVAL": "7m"}
	var out, errOut strings.Builder
	code := run(context.Background(), &cliEnv{stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return env[k] }, lookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }},
		[]string{"config", "validate", "--config", cfgPath, "--print"})
	require.Equal(t, 0, code, errOut.String())
	assert.Contains(t, out.String(), "interval: 7m0s")     // the environment override
	assert.Contains(t, out.String(), "client_id: manager") // a default
	assert.NotContains(t, out.String()+errOut.String(), "hunter2-secret")
}

// TestExampleConfigDefaultsAreTheCodes: every value in config.example.yaml whose comment does
// not start with "e.g." claims to be the default. Removing all of them from the file must not
// change the effective configuration (what config validate --print shows).
func TestExampleConfigDefaultsAreTheCodes(t *testing.T) {
	raw, err := os.ReadFile("../../config.example.yaml")
	require.NoError(t, err)
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	var removed []string
	stripDefaults(&doc, "", &removed)
	require.NotEmpty(t, removed)
	stripped, err := yaml.Marshal(&doc)
	require.NoError(t, err)

	env := exampleEnv(map[string]string{"BRIDGE_INBOUND_SCIM_TOKENS_FILE": tokensFile(t)})
	effective := func(raw []byte) map[string]string {
		cfg, err := parseConfig(context.Background(), raw, "config.example.yaml", env, true)
		require.NoError(t, err, "%s", raw)
		out, err := yaml.Marshal(cfg.effective())
		require.NoError(t, err)
		var n yaml.Node
		require.NoError(t, yaml.Unmarshal(out, &n))
		leaves := map[string]string{}
		flattenYAML(&n, "", leaves)
		return leaves
	}
	full, defaults := effective(raw), effective(stripped)
	for _, key := range removed {
		if full[key] != defaults[key] {
			t.Errorf("config.example.yaml: %s: %s is shown as the default, but the default is %s (mark an example with \"# e.g.\")",
				key, full[key], defaults[key])
		}
	}
	t.Logf("%d values of config.example.yaml checked against the defaults in code", len(removed))
}

// stripDefaults removes from a YAML document every key whose comment does not start with
// "e.g." and whose value is not a mapping (mappings are stripped inside), collecting their paths.
func stripDefaults(n *yaml.Node, path string, removed *[]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			stripDefaults(c, path, removed)
		}
	case yaml.MappingNode:
		var keep []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := strings.TrimPrefix(path+"."+k.Value, ".")
			example := strings.HasPrefix(k.LineComment, "# e.g.") || strings.HasPrefix(v.LineComment, "# e.g.")
			switch {
			case example: // the whole value, a mapping too
				keep = append(keep, k, v)
			case v.Kind == yaml.MappingNode:
				stripDefaults(v, p, removed)
				keep = append(keep, k, v)
			default:
				*removed = append(*removed, p)
			}
		}
		n.Content = keep
	}
}

// flattenYAML maps the path of every non-mapping value to its YAML text.
func flattenYAML(n *yaml.Node, path string, out map[string]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			flattenYAML(c, path, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			flattenYAML(n.Content[i+1], strings.TrimPrefix(path+"."+n.Content[i].Value, "."), out)
		}
	default:
		b, _ := yaml.Marshal(n)
		out[path] = strings.TrimSpace(string(b))
	}
}
