package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/babelforce/bridge/directory/store"
	"github.com/babelforce/bridge/internal/testenv"
	"github.com/babelforce/bridge/provisioning/scimserver"
)

// The chart at deploy/helm/bridge, rendered by a real helm (BRIDGE_HELM, else helm on PATH;
// .ci/run builds helm.sh/helm/v4/cmd/helm at a pinned version). In CI a missing helm fails.

const chartDir = "../../deploy/helm/bridge"

func helmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BRIDGE_HELM"); p != "" {
		return p
	}
	p, err := exec.LookPath("helm")
	if err != nil {
		msg := "chart tests need helm: set BRIDGE_HELM or put helm on PATH " +
			"(GOFLAGS=-mod=mod go install helm.sh/helm/v4/cmd/helm@VERSION, the version .ci/run pins)"
		if testenv.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// helmTemplate renders the chart with the given values files (relative to the chart) and
// --set pairs; it returns the objects by kind, or helm's error output.
func helmTemplate(t *testing.T, valuesFiles []string, sets ...string) (map[string][]k8sObject, error) {
	t.Helper()
	helm := helmBinary(t)
	args := []string{"template", "bridge", chartDir, "--namespace", "idm"}
	for _, f := range valuesFiles {
		args = append(args, "--values", filepath.Join(chartDir, f))
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(helm, args...)
	home := t.TempDir() // helm reads and writes nothing of the user's
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.New(stderr.String())
	}
	objs := map[string][]k8sObject{}
	dec := yaml.NewDecoder(&stdout)
	for {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "helm's output is not YAML")
		var obj k8sObject
		require.NoError(t, node.Decode(&obj))
		if obj.Kind == "" {
			continue // an empty document
		}
		obj.node = &node
		objs[obj.Kind] = append(objs[obj.Kind], obj)
	}
	return objs, nil
}

// k8sObject holds what the tests read of a rendered object; decode reads the rest.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	node *yaml.Node
}

func (o k8sObject) decode(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, o.node.Decode(v))
}

type deployment struct {
	Spec struct {
		Replicas int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				AutomountServiceAccountToken *bool `yaml:"automountServiceAccountToken"`
				SecurityContext              struct {
					RunAsNonRoot   *bool          `yaml:"runAsNonRoot"`
					RunAsUser      *int64         `yaml:"runAsUser"`
					SeccompProfile seccompProfile `yaml:"seccompProfile"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
				Volumes    []volume    `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type seccompProfile struct {
	Type string `yaml:"type"`
}

type container struct {
	Name  string   `yaml:"name"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	StartupProbe    probe `yaml:"startupProbe"`
	LivenessProbe   probe `yaml:"livenessProbe"`
	ReadinessProbe  probe `yaml:"readinessProbe"`
	SecurityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		Privileged               *bool `yaml:"privileged"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
			Add  []string `yaml:"add"`
		} `yaml:"capabilities"`
		SeccompProfile seccompProfile `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type volume struct {
	Name      string         `yaml:"name"`
	ConfigMap *struct{}      `yaml:"configMap"`
	EmptyDir  map[string]any `yaml:"emptyDir"`
	PVC       *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
	Projected *struct {
		Sources []struct {
			Secret *struct {
				Name  string `yaml:"name"`
				Items []struct {
					Key  string `yaml:"key"`
					Path string `yaml:"path"`
				} `yaml:"items"`
			} `yaml:"secret"`
		} `yaml:"sources"`
	} `yaml:"projected"`
}

func (c container) mountOf(t *testing.T, file string) (volumeName string, readOnly bool) {
	t.Helper()
	best := ""
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") && len(m.MountPath) > len(best) {
			best, volumeName, readOnly = m.MountPath, m.Name, m.ReadOnly
		}
	}
	require.NotEmpty(t, best, "%s is on no volume (the root filesystem is read-only)", file)
	return volumeName, readOnly
}

func (d deployment) volume(t *testing.T, name string) volume {
	t.Helper()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %q", name)
	return volume{}
}

// rendered is one rendering of the chart: its Deployment, bridge's container and the config
// file from the ConfigMap.
type rendered struct {
	objs      map[string][]k8sObject
	dep       deployment
	bridge    container
	configRaw string
}

func render(t *testing.T, valuesFiles []string, sets ...string) rendered {
	t.Helper()
	objs, err := helmTemplate(t, valuesFiles, sets...)
	require.NoError(t, err)
	require.Len(t, objs["Deployment"], 1)
	require.Len(t, objs["ConfigMap"], 1)
	var r rendered
	r.objs = objs
	objs["Deployment"][0].decode(t, &r.dep)
	require.Len(t, r.dep.Spec.Template.Spec.Containers, 1)
	r.bridge = r.dep.Spec.Template.Spec.Containers[0]
	r.configRaw = objs["ConfigMap"][0].Data["config.yaml"]
	require.NotEmpty(t, r.configRaw)
	assert.Empty(t, objs["Secret"], "the chart creates no Secret: every secret comes from an existing one")
	return r
}

// checkPod checks what every rendering must hold: non-root, read-only root filesystem, no
// privilege, probes on /healthz and /readyz of the port bridge listens on, and every file
// bridge writes on a writable volume.
func checkPod(t *testing.T, r rendered, cfg *Config) {
	t.Helper()
	pod := r.dep.Spec.Template.Spec
	assert.Equal(t, new(true), pod.SecurityContext.RunAsNonRoot)
	require.NotNil(t, pod.SecurityContext.RunAsUser)
	assert.NotZero(t, *pod.SecurityContext.RunAsUser, "the pod runs as a non-root uid")
	assert.Equal(t, "RuntimeDefault", pod.SecurityContext.SeccompProfile.Type)
	assert.Equal(t, new(false), pod.AutomountServiceAccountToken, "bridge never talks to the Kubernetes API")

	sc := r.bridge.SecurityContext
	assert.Equal(t, new(true), sc.RunAsNonRoot)
	assert.Equal(t, new(true), sc.ReadOnlyRootFilesystem)
	assert.Equal(t, new(false), sc.AllowPrivilegeEscalation)
	assert.Equal(t, new(false), sc.Privileged)
	assert.Equal(t, []string{"ALL"}, sc.Capabilities.Drop)
	assert.Empty(t, sc.Capabilities.Add)
	assert.Equal(t, "RuntimeDefault", sc.SeccompProfile.Type)

	assert.Equal(t, []string{"serve", "--config", "/etc/bridge/config.yaml"}, r.bridge.Args)
	vol, _ := r.bridge.mountOf(t, "/etc/bridge/config.yaml")
	assert.NotNil(t, r.dep.volume(t, vol).ConfigMap, "config.yaml comes from the ConfigMap")

	// The probes hit the named port, and that port is the one server.listen opens.
	require.Len(t, r.bridge.Ports, 1)
	assert.Equal(t, "http", r.bridge.Ports[0].Name)
	_, port, ok := strings.Cut(cfg.Server.Listen, ":")
	require.True(t, ok, "server.listen %q", cfg.Server.Listen)
	assert.Equal(t, port, strconv.Itoa(r.bridge.Ports[0].ContainerPort), "server.listen and containerPort")
	for name, p := range map[string]probe{"startup": r.bridge.StartupProbe, "liveness": r.bridge.LivenessProbe, "readiness": r.bridge.ReadinessProbe} {
		require.NotNil(t, p.HTTPGet, "%s probe", name)
		assert.Equal(t, "http", p.HTTPGet.Port, "%s probe port", name)
		want := "/healthz"
		if name == "readiness" {
			want = "/readyz"
		}
		assert.Equal(t, want, p.HTTPGet.Path, "%s probe path", name)
	}
	assert.NotEmpty(t, r.bridge.Resources.Requests["memory"])
	assert.NotEmpty(t, r.bridge.Resources.Limits["memory"])

	// What bridge writes is on a writable volume: the SQLite store, the state file (with the
	// SSO secret's fingerprint), and /tmp (SQLite's temporary files).
	writes := []string{cfg.Sync.StateFile, "/tmp/x"}
	if !strings.Contains(cfg.Store.Path, "://") && cfg.Store.Path != "" {
		writes = append(writes, cfg.Store.Path)
	}
	for _, f := range writes {
		require.NotEmpty(t, f)
		_, ro := r.bridge.mountOf(t, f)
		assert.False(t, ro, "%s is on a read-only volume", f)
	}
}

// secretFileKeys lists the YAML path of every *_file key of Config that holds a secret (the
// sibling of a yaml:"-" field), so that a secret added to bridge without the chart fails here.
func secretFileKeys(typ reflect.Type, prefix string) []string {
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "-" {
			file, ok := typ.FieldByName(f.Name + "File")
			if !ok {
				panic("secret " + prefix + f.Name + " has no *_file key")
			}
			name, _, _ := strings.Cut(file.Tag.Get("yaml"), ",")
			out = append(out, prefix+name)
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && tag != "" {
			out = append(out, secretFileKeys(ft, prefix+tag+".")...)
		}
	}
	return out
}

// loadRenderedConfig parses the ConfigMap's config.yaml the way bridge serve does, after
// writing a file for each mounted secret (its content names its Secret and key) into a
// directory that stands in for the mount point.
func loadRenderedConfig(t *testing.T, r rendered) (*Config, map[string]string) {
	t.Helper()
	raw := r.configRaw
	contents := map[string]string{} // mount path -> content
	for _, v := range r.dep.Spec.Template.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		mount := ""
		for _, m := range r.bridge.VolumeMounts {
			if m.Name == v.Name {
				mount = m.MountPath
				assert.True(t, m.ReadOnly, "secrets are mounted read-only")
			}
		}
		require.NotEmpty(t, mount)
		dir := t.TempDir()
		for _, s := range v.Projected.Sources {
			require.NotNil(t, s.Secret)
			for _, it := range s.Secret.Items {
				content := "secret " + s.Secret.Name + "/" + it.Key + "-0123456789"
				require.NoError(t, os.WriteFile(filepath.Join(dir, it.Path), []byte(content+"\n"), 0o600))
				contents[path.Join(mount, it.Path)] = content
			}
		}
		raw = strings.ReplaceAll(raw, mount+"/", dir+"/")
	}
	// No secret in the environment: whatever bridge gets, it reads from the files.
	cfg, err := parseConfig(context.Background(), []byte(raw), "configmap", func(string) (string, bool) { return "", false }, true)
	require.NoError(t, err, "bridge refuses the rendered config:\n%s", r.configRaw)
	return cfg, contents
}

// configLookup reads a dotted key from the config file as YAML.
func configLookup(t *testing.T, raw, key string) (any, bool) {
	t.Helper()
	var m map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(raw), &m))
	var cur any = m
	for _, k := range strings.Split(key, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// configValue reads a dotted string key from the config file.
func configValue(t *testing.T, raw, key string) (string, bool) {
	t.Helper()
	v, _ := configLookup(t, raw, key)
	s, ok := v.(string)
	return s, ok
}

// configHas reports whether the config file has the dotted key, whatever its value.
func configHas(t *testing.T, raw, key string) bool {
	t.Helper()
	_, ok := configLookup(t, raw, key)
	return ok
}

func TestHelmChartDefaults(t *testing.T) {
	r := render(t, nil)
	// With no secret named, bridge would not start (no babelforce login): give one to parse.
	cfg, err := parseConfig(context.Background(), []byte(r.configRaw), "configmap", func(k string) (string, bool) {
		v, ok := map[string]string{
			"BRIDGE_BABELFORCE_USERNAME": "bridge@example.com", "BRIDGE_BABELFORCE_PASSWORD": "pw",
			"BRIDGE_INBOUND_SCIM_TOKENS": "token-0123456789abcdef",
		}[k]
		return v, ok
	}, true)
	require.NoError(t, err, "bridge refuses the default config:\n%s", r.configRaw)
	checkPod(t, r, cfg)

	assert.Equal(t, 1, r.dep.Spec.Replicas)
	assert.Equal(t, "Recreate", r.dep.Spec.Strategy.Type, "one SQLite file: never two pods at once")
	assert.Equal(t, "/var/lib/bridge/bridge.db", cfg.Store.Path)
	data := r.dep.volume(t, "data")
	require.NotNil(t, data.PVC, "SQLite lives on a PVC")
	require.Len(t, r.objs["PersistentVolumeClaim"], 1)
	assert.Equal(t, r.objs["PersistentVolumeClaim"][0].Metadata.Name, data.PVC.ClaimName)
	assert.Empty(t, r.objs["PodDisruptionBudget"], "no PDB for one replica")
	for _, kind := range []string{"Ingress", "ServiceMonitor", "NetworkPolicy"} {
		assert.Empty(t, r.objs[kind], "%s is off by default", kind)
	}
	require.Len(t, r.objs["Service"], 1)
	for _, v := range r.dep.Spec.Template.Spec.Volumes {
		assert.Nil(t, v.Projected, "no secret named, none mounted")
	}
	for _, e := range r.bridge.Env {
		assert.NotEqual(t, "BRIDGE_STORE_PATH", e.Name)
	}
}

func TestHelmChartSecretsAreMountedFiles(t *testing.T) {
	want := secretFileKeys(reflect.TypeFor[Config](), "")
	require.Len(t, want, 9, "bridge's secrets: %v", want)
	covered := map[string]bool{}
	for _, values := range []string{"ci/ldap-values.yaml", "ci/scim-source-values.yaml", "ci/postgres-values.yaml"} {
		t.Run(values, func(t *testing.T) {
			r := render(t, []string{values})
			cfg, contents := loadRenderedConfig(t, r)
			checkPod(t, r, cfg)
			for _, key := range want {
				file, ok := configValue(t, r.configRaw, key)
				if !ok {
					continue
				}
				covered[key] = true
				content, mounted := contents[file]
				assert.True(t, mounted, "%s: %s is not a file of a mounted Secret", key, file)
				assert.NotEmpty(t, content)
			}
			// Each secret reached bridge, through its file only (the environment was empty).
			loaded := []string{cfg.Babelforce.Password, cfg.Babelforce.Token, cfg.Babelforce.SCIMToken,
				cfg.SSO.ClientSecret, cfg.Server.AdminToken, cfg.UI.OIDC.ClientSecret}
			if cfg.Directory.LDAP != nil {
				loaded = append(loaded, cfg.Directory.LDAP.BindPassword)
			}
			if cfg.Directory.SCIM != nil {
				loaded = append(loaded, cfg.Directory.SCIM.Token)
			}
			var mounted []string
			for file, c := range contents {
				if f, ok := configValue(t, r.configRaw, "inbound_scim.tokens_file"); ok && f == file {
					// Inbound tokens are hashed and forgotten: the SCIM endpoint must take it.
					assert.True(t, inboundAccepts(t, cfg, c), "the inbound SCIM endpoint accepts the token of %s", file)
					continue
				}
				mounted = append(mounted, c)
			}
			var got []string
			for _, s := range loaded {
				if s != "" {
					got = append(got, s)
				}
			}
			assert.ElementsMatch(t, mounted, got, "every mounted secret is loaded by bridge, and nothing else")

			// None is inlined: no secret key in the ConfigMap (babelforce.password beside
			// babelforce.password_file, ...), no literal environment variable.
			for _, key := range want {
				inline := strings.TrimSuffix(key, "_file")
				assert.False(t, configHas(t, r.configRaw, inline), "the ConfigMap holds %s", inline)
			}
			for _, e := range r.bridge.Env {
				name := strings.ToUpper(e.Name)
				if strings.Contains(name, "PASSWORD") || strings.Contains(name, "TOKEN") ||
					strings.Contains(name, "SECRET") || name == "BRIDGE_STORE_PATH" {
					assert.Empty(t, e.Value, "%s is set inline", e.Name)
					require.NotNil(t, e.ValueFrom, "%s", e.Name)
					assert.NotNil(t, e.ValueFrom.SecretKeyRef, "%s comes from a Secret", e.Name)
				}
			}
		})
	}
	for _, key := range want {
		assert.True(t, covered[key], "no chart test mounts the secret of %s", key)
	}
}

// inboundAccepts reports whether bridge's inbound SCIM endpoint, built from cfg, lets a request
// with this bearer token in (and refuses one with another token).
func inboundAccepts(t *testing.T, cfg *Config, token string) bool {
	t.Helper()
	st, err := store.Open(context.Background(), ":memory:", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	h, err := scimserver.New(st, cfg.InboundSCIM, scimserver.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	status := func(tok string) int {
		req := httptest.NewRequest(http.MethodGet, "/ServiceProviderConfig", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	require.Equal(t, http.StatusUnauthorized, status("wrong-token-0123456789abcdef"))
	return status(token) == http.StatusOK
}

func TestHelmChartReplicasOnPostgres(t *testing.T) {
	r := render(t, []string{"ci/postgres-values.yaml"})
	cfg, _ := loadRenderedConfig(t, r)
	checkPod(t, r, cfg)

	assert.Equal(t, 3, r.dep.Spec.Replicas)
	assert.Equal(t, "RollingUpdate", r.dep.Spec.Strategy.Type)
	assert.Empty(t, cfg.Store.Path, "the URL is not in the ConfigMap")
	assert.NotContains(t, r.configRaw, "postgres")
	var storeEnv bool
	for _, e := range r.bridge.Env {
		if e.Name == "BRIDGE_STORE_PATH" {
			storeEnv = true
			require.NotNil(t, e.ValueFrom)
			require.NotNil(t, e.ValueFrom.SecretKeyRef)
			assert.Equal(t, "bridge-postgres", e.ValueFrom.SecretKeyRef.Name)
			assert.Equal(t, "url", e.ValueFrom.SecretKeyRef.Key)
		}
	}
	assert.True(t, storeEnv, "BRIDGE_STORE_PATH from the Secret")
	assert.Empty(t, r.objs["PersistentVolumeClaim"], "the store is in PostgreSQL")
	assert.NotNil(t, r.dep.volume(t, "data").EmptyDir)

	require.Len(t, r.objs["PodDisruptionBudget"], 1)
	var pdb struct {
		Spec struct {
			MaxUnavailable int `yaml:"maxUnavailable"`
			Selector       struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
		} `yaml:"spec"`
	}
	r.objs["PodDisruptionBudget"][0].decode(t, &pdb)
	assert.Equal(t, 1, pdb.Spec.MaxUnavailable)
	require.NotEmpty(t, pdb.Spec.Selector.MatchLabels)
	for k, v := range pdb.Spec.Selector.MatchLabels {
		assert.Equal(t, v, r.dep.Spec.Template.Metadata.Labels[k], "the PDB selects bridge's pods (%s)", k)
	}
}

func TestHelmChartOptionalObjects(t *testing.T) {
	r := render(t, []string{"ci/ldap-values.yaml"})
	require.Len(t, r.objs["Ingress"], 1)
	var ing struct {
		Spec struct {
			Rules []struct {
				HTTP struct {
					Paths []struct {
						Path    string `yaml:"path"`
						Backend struct {
							Service struct {
								Name string `yaml:"name"`
								Port struct {
									Name string `yaml:"name"`
								} `yaml:"port"`
							} `yaml:"service"`
						} `yaml:"backend"`
					} `yaml:"paths"`
				} `yaml:"http"`
			} `yaml:"rules"`
		} `yaml:"spec"`
	}
	r.objs["Ingress"][0].decode(t, &ing)
	require.Len(t, ing.Spec.Rules, 1)
	var paths []string
	for _, p := range ing.Spec.Rules[0].HTTP.Paths {
		paths = append(paths, p.Path)
		assert.Equal(t, r.objs["Service"][0].Metadata.Name, p.Backend.Service.Name)
		assert.Equal(t, "http", p.Backend.Service.Port.Name)
	}
	assert.Equal(t, []string{"/scim/v2", "/ui/"}, paths, "inbound SCIM and the UI only, never /api/v1 or /metrics")

	require.Len(t, r.objs["ServiceMonitor"], 1)
	var sm struct {
		Spec struct {
			Endpoints []struct {
				Port          string `yaml:"port"`
				Path          string `yaml:"path"`
				Authorization struct {
					Credentials struct {
						Name string `yaml:"name"`
						Key  string `yaml:"key"`
					} `yaml:"credentials"`
				} `yaml:"authorization"`
			} `yaml:"endpoints"`
		} `yaml:"spec"`
	}
	r.objs["ServiceMonitor"][0].decode(t, &sm)
	require.Len(t, sm.Spec.Endpoints, 1)
	ep := sm.Spec.Endpoints[0]
	assert.Equal(t, "/metrics", ep.Path)
	assert.Equal(t, "http", ep.Port)
	assert.Equal(t, "bridge-admin", ep.Authorization.Credentials.Name, "Prometheus sends the admin token from its Secret")

	require.Len(t, r.objs["NetworkPolicy"], 1)
	var np struct {
		Spec struct {
			PolicyTypes []string `yaml:"policyTypes"`
			Ingress     []struct {
				Ports []struct {
					Port string `yaml:"port"`
				} `yaml:"ports"`
				From []map[string]any `yaml:"from"`
			} `yaml:"ingress"`
			Egress []map[string]any `yaml:"egress"`
		} `yaml:"spec"`
	}
	r.objs["NetworkPolicy"][0].decode(t, &np)
	assert.Equal(t, []string{"Ingress", "Egress"}, np.Spec.PolicyTypes)
	require.Len(t, np.Spec.Ingress, 1)
	assert.Equal(t, "http", np.Spec.Ingress[0].Ports[0].Port)
	assert.Len(t, np.Spec.Ingress[0].From, 1)
	assert.Len(t, np.Spec.Egress, 2, "DNS and the configured rule")
}

func TestHelmChartRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		values []string
		sets   []string
		want   string
	}{
		"replicas without PostgreSQL": {sets: []string{"replicaCount=3"},
			want: "replicaCount 3 needs PostgreSQL"},
		"replicas without the store": {values: []string{"ci/postgres-values.yaml"},
			sets: []string{"config.directory.type=ldap", "config.inbound_scim.enabled=false"},
			want: "needs config.directory.type scim_push or config.inbound_scim.enabled true"},
		"inline password": {sets: []string{"config.babelforce.password=hunter2"},
			want: "config.babelforce.password would put a secret in the ConfigMap"},
		"inline bind password": {values: []string{"ci/ldap-values.yaml"}, sets: []string{"config.directory.ldap.bind_password=hunter2"},
			want: "config.directory.ldap.bind_password would put a secret in the ConfigMap"},
		"inline UI client secret": {sets: []string{"config.ui.oidc.client_secret=hunter2"},
			want: "config.ui.oidc.client_secret would put a secret in the ConfigMap"},
		"inline admin token": {sets: []string{"config.server.admin_token=hunter2"},
			want: "config.server.admin_token would put a secret in the ConfigMap"},
		"store path": {sets: []string{"config.store.path=postgres://bridge:hunter2@db/bridge"},
			want: "config.store.path is set by the chart"},
		"LDAP secret for another source": {sets: []string{"secrets.ldapBindPassword.name=x"},
			want: "secrets.ldapBindPassword is set but config.directory.type is not ldap"},
		"misspelt value": {sets: []string{"replicas=3"},
			want: "additional properties 'replicas' not allowed"},
		"misspelt secret": {sets: []string{"secrets.adminToken.nmae=bridge-admin"},
			want: "additional properties 'nmae' not allowed"},
		"metrics without a token": {sets: []string{"serviceMonitor.enabled=true"},
			want: "serviceMonitor.enabled needs secrets.adminToken"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := helmTemplate(t, tc.values, tc.sets...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "hunter2", "the refusal does not repeat the secret")
		})
	}
}
