package scimserver

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type replayFile struct {
	Description string       `json:"description"`
	Steps       []replayStep `json:"steps"`
	After       *struct {
		Users    *int `json:"users"`
		Groups   *int `json:"groups"`
		Snapshot []struct {
			User     string            `json:"user"`
			Active   *bool             `json:"active"`
			UserName string            `json:"userName"`
			Attrs    map[string]string `json:"attrs"`
			Groups   []string          `json:"groups"`
		} `json:"snapshot"`
	} `json:"after"`
}

type replayStep struct {
	Name    string            `json:"name"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
	Save    map[string]string `json:"save"`
	Expect  struct {
		Status   int               `json:"status"`
		Headers  map[string]string `json:"headers"`
		Body     map[string]any    `json:"body"`
		OnChange *[]change         `json:"onChange"`
	} `json:"expect"`
}

// TestReplay replays the recorded Okta and Entra ID sequences in testdata/scim against the
// handler backed by a real store, checking every response, every OnChange call and the
// store's snapshot afterwards.
func TestReplay(t *testing.T) {
	for _, idp := range []string{"okta", "entra"} {
		files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "scim", idp, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no recorded sequences for %s", idp)
		}
		for _, file := range files {
			t.Run(idp+"/"+strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
				replay(t, file)
			})
		}
	}
}

func replay(t *testing.T, file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rf replayFile
	if err := json.Unmarshal(raw, &rf); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	f := newFixture(t, Config{}, Options{})
	vars := map[string]string{}
	subst := func(s string) string {
		for k, v := range vars {
			s = strings.ReplaceAll(s, "${"+k+"}", v)
		}
		return s
	}
	for i, st := range rf.Steps {
		label := fmt.Sprintf("step %d (%s)", i+1, st.Name)
		var body any
		if len(st.Body) > 0 {
			body = subst(string(st.Body))
		}
		var headers []string
		for k, v := range st.Headers {
			headers = append(headers, k, v)
		}
		res := f.do(st.Method, subst(st.Path), body, headers...)
		changes := f.rec.take()
		if res.status != st.Expect.Status {
			t.Fatalf("%s: %s %s: status %d, want %d\n%s", label, st.Method, subst(st.Path), res.status, st.Expect.Status, res.raw)
		}
		for name, path := range st.Save {
			v, ok := lookup(res.body, path)
			s, isStr := v.(string)
			if !ok || !isStr || s == "" {
				t.Fatalf("%s: cannot save %s from %s\n%s", label, name, path, res.raw)
			}
			vars[name] = s
		}
		for h, want := range st.Expect.Headers {
			got := res.header.Get(h)
			if want == "<present>" && got != "" {
				continue
			}
			if got != subst(want) {
				t.Errorf("%s: header %s = %q, want %q", label, h, got, subst(want))
			}
		}
		for path, want := range st.Expect.Body {
			got, ok := lookup(res.body, path)
			switch want {
			case "<absent>":
				if ok {
					t.Errorf("%s: %s present (%v), want absent\n%s", label, path, got, res.raw)
				}
				continue
			case "<present>":
				if !ok || got == nil {
					t.Errorf("%s: %s absent, want present\n%s", label, path, res.raw)
				}
				continue
			}
			if s, isStr := want.(string); isStr {
				want = subst(s)
			}
			if !ok || !sameJSON(got, want) {
				t.Errorf("%s: %s = %v, want %v\n%s", label, path, got, want, res.raw)
			}
		}
		if st.Expect.OnChange != nil {
			want := *st.Expect.OnChange
			if len(changes) != len(want) {
				t.Errorf("%s: %d OnChange calls %+v, want %d %+v", label, len(changes), changes, len(want), want)
			} else {
				for j := range want {
					w := slices.Clone(want[j].Users)
					for k := range w {
						w[k] = subst(w[k])
					}
					slices.Sort(w)
					g := slices.Clone(changes[j].Users)
					slices.Sort(g)
					if changes[j].Trigger != want[j].Trigger || !slices.Equal(g, w) {
						t.Errorf("%s: OnChange %d = %s %v, want %s %v", label, j, changes[j].Trigger, g, want[j].Trigger, w)
					}
				}
			}
		}
	}
	if rf.After == nil {
		return
	}
	snap, err := f.st.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rf.After.Users != nil && len(snap.Users) != *rf.After.Users {
		t.Errorf("after: %d users, want %d", len(snap.Users), *rf.After.Users)
	}
	if rf.After.Groups != nil && len(snap.Groups) != *rf.After.Groups {
		t.Errorf("after: %d groups, want %d", len(snap.Groups), *rf.After.Groups)
	}
	for _, want := range rf.After.Snapshot {
		id := subst(want.User)
		u := snap.User(id)
		if u == nil {
			t.Errorf("after: user %s missing from the snapshot", id)
			continue
		}
		if want.Active != nil && u.Active != *want.Active {
			t.Errorf("after: user %s active = %v, want %v", id, u.Active, *want.Active)
		}
		if want.UserName != "" && u.UserName != want.UserName {
			t.Errorf("after: user %s userName = %q, want %q", id, u.UserName, want.UserName)
		}
		for k, v := range want.Attrs {
			if got := u.Attr(k); got != v {
				t.Errorf("after: user %s Attr(%q) = %q, want %q", id, k, got, v)
			}
		}
		if want.Groups != nil {
			w := make([]string, len(want.Groups))
			for i, g := range want.Groups {
				w[i] = subst(g)
			}
			slices.Sort(w)
			if !slices.Equal(u.Groups, w) {
				t.Errorf("after: user %s groups = %v, want %v", id, u.Groups, w)
			}
		}
	}
}
