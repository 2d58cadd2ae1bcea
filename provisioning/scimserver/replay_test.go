package scimserver

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/babelforce/bridge/internal/scimreplay"
)

// replayAfter is the end state a recording expects of the store (its "after" part).
type replayAfter struct {
	Users    *int `json:"users"`
	Groups   *int `json:"groups"`
	Snapshot []struct {
		User     string            `json:"user"`
		Active   *bool             `json:"active"`
		UserName string            `json:"userName"`
		Attrs    map[string]string `json:"attrs"`
		Groups   []string          `json:"groups"`
	} `json:"snapshot"`
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
	rf, err := scimreplay.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Config{}, Options{})
	send := func(r scimreplay.Request) scimreplay.Response {
		var body any
		if r.Body != nil {
			body = string(r.Body)
		}
		res := f.do(r.Method, r.Path, body, r.HeaderPairs()...)
		return scimreplay.Response{Status: res.status, Header: res.header, Body: res.raw}
	}
	checkChanges := func(i int, st scimreplay.Step, vars scimreplay.Vars) {
		changes := f.rec.take()
		if st.Expect.OnChange == nil || string(st.Expect.OnChange) == "null" {
			return // omitted: no check
		}
		label := st.Label(i)
		var want []change
		if err := json.Unmarshal(st.Expect.OnChange, &want); err != nil {
			t.Fatalf("%s: onChange: %v", label, err)
		}
		if len(changes) != len(want) {
			t.Errorf("%s: %d OnChange calls %+v, want %d %+v", label, len(changes), changes, len(want), want)
			return
		}
		for j := range want {
			w := slices.Clone(want[j].Users)
			for k := range w {
				w[k] = vars.Subst(w[k])
			}
			slices.Sort(w)
			g := slices.Clone(changes[j].Users)
			slices.Sort(g)
			if changes[j].Trigger != want[j].Trigger || !slices.Equal(g, w) {
				t.Errorf("%s: OnChange %d = %s %v, want %s %v", label, j, changes[j].Trigger, g, want[j].Trigger, w)
			}
		}
	}
	vars := scimreplay.Run(t, rf, send, checkChanges)
	subst := vars.Subst
	if rf.After == nil || string(rf.After) == "null" {
		return
	}
	var after replayAfter
	if err := json.Unmarshal(rf.After, &after); err != nil {
		t.Fatalf("%s: after: %v", file, err)
	}
	snap, err := f.st.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after.Users != nil && len(snap.Users) != *after.Users {
		t.Errorf("after: %d users, want %d", len(snap.Users), *after.Users)
	}
	if after.Groups != nil && len(snap.Groups) != *after.Groups {
		t.Errorf("after: %d groups, want %d", len(snap.Groups), *after.Groups)
	}
	for _, want := range after.Snapshot {
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
