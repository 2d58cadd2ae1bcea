package mapping

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/babelforce/bridge/directory"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/mapping")

const testdataDir = "../testdata/mapping"

// goldenCase is one testdata/mapping/NAME.yaml: the mapping section as in bridge's config,
// optionally another snapshot and the users to explain.
type goldenCase struct {
	Snapshot string   `yaml:"snapshot"`
	Explain  []string `yaml:"explain"`
	Mapping  Config   `yaml:"mapping"`
}

func loadSnapshot(t testing.TB, name string) *directory.Snapshot {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var s directory.Snapshot
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	s.Resolve()
	return &s
}

func loadCase(t testing.TB, path string) goldenCase {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c goldenCase
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if c.Snapshot == "" {
		c.Snapshot = "snapshot.json"
	}
	return c
}

// golden compares got with the file, or rewrites the file with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./mapping -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update after checking the change):\n%s", path, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first differing lines of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 20; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			shown++
		}
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join(testdataDir, "*.yaml"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no cases in %s: %v", testdataDir, err)
	}
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			c := loadCase(t, path)
			rules, err := Compile(c.Mapping)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			s := loadSnapshot(t, c.Snapshot)
			d := Desire(s, rules)
			out, err := json.MarshalIndent(d, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(testdataDir, name+".golden.json"), append(out, '\n'))

			// every agent and skip must be explainable consistently with Desire.
			for _, id := range c.Explain {
				e := Explain(s, rules, id)
				if !e.Found {
					t.Fatalf("explain %s: not found", id)
				}
				var a *Agent
				for i := range d.Agents {
					if d.Agents[i].SourceID == id {
						a = &d.Agents[i]
					}
				}
				if (a == nil) != (e.Agent == nil) {
					t.Errorf("explain %s: agent %v, Desire %v", id, e.Agent, a)
				}
				if got := ExplainDesired(s, rules, d, id); !reflect.DeepEqual(got, e) {
					t.Errorf("explain %s: ExplainDesired with Desire's result differs from Explain:\n%+v\n%+v", id, got, e)
				}
			}
			if len(c.Explain) > 0 {
				var text strings.Builder
				var js []Explanation
				for _, id := range c.Explain {
					e := Explain(s, rules, id)
					text.WriteString(e.Text())
					text.WriteString("\n----\n\n")
					js = append(js, e)
				}
				golden(t, filepath.Join(testdataDir, name+".explain.golden.txt"), []byte(text.String()))
				out, err := json.MarshalIndent(js, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				golden(t, filepath.Join(testdataDir, name+".explain.golden.json"), append(out, '\n'))
			}
		})
	}
}
