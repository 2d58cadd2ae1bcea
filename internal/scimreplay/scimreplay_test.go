package scimreplay

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

const seq = `{
  "description": "two steps",
  "steps": [
    {"name": "create", "method": "POST", "path": "/Users", "headers": {"X-Test": "1"},
     "body": {"userName": "ann"}, "save": {"ann": "id"},
     "expect": {"status": 201, "headers": {"ETag": "<present>", "Location": "/Users/${ann}"},
                "body": {"userName": "ann", "emails/#": 2, "emails/1/value": "b@example.com",
                         "members": "<absent>", "meta/version": "<present>"},
                "onChange": [{"trigger": "x"}]}},
    {"name": "get", "method": "GET", "path": "/Users/${ann}", "expect": {"status": 200, "body": {"id": "${ann}"}}}
  ],
  "after": {"users": 1}
}`

func TestRunSubstitutesSavesAndChecks(t *testing.T) {
	f, err := Parse([]byte(seq))
	if err != nil {
		t.Fatal(err)
	}
	if string(f.After) != `{"users": 1}` || !strings.Contains(string(f.Steps[0].Expect.OnChange), "trigger") {
		t.Errorf("caller parts not kept: after %s, onChange %s", f.After, f.Steps[0].Expect.OnChange)
	}
	var got []Request
	send := func(r Request) Response {
		got = append(got, r)
		if r.Method == http.MethodPost {
			h := http.Header{"Etag": {`W/"1"`}, "Location": {"/Users/u1"}}
			return Response{Status: 201, Header: h, Body: []byte(`{"id":"u1","userName":"ann","emails":[{"value":"a@example.com"},{"value":"b@example.com"}],"meta":{"version":"1"}}`)}
		}
		return Response{Status: 200, Body: []byte(`{"id":"u1"}`)}
	}
	var steps []int
	vars := Run(t, f, send, func(i int, st Step, v Vars) {
		steps = append(steps, i)
		if v["ann"] != "u1" {
			t.Errorf("after %s: vars %v", st.Label(i), v)
		}
	})
	if vars["ann"] != "u1" || !slices.Equal(steps, []int{0, 1}) {
		t.Errorf("vars %v, after called for %v", vars, steps)
	}
	if p := (Request{Headers: map[string]string{"b": "2", "a": "1"}}).HeaderPairs(); !slices.Equal(p, []string{"a", "1", "b", "2"}) {
		t.Errorf("HeaderPairs = %v", p)
	}
	if len(got) != 2 || got[1].Path != "/Users/u1" || got[1].Body != nil || string(got[0].Body) != `{"userName": "ann"}` || got[0].Headers["X-Test"] != "1" {
		t.Errorf("requests %+v", got)
	}
}

// recTB records failures; Fatal ends the goroutine the way testing.T does.
type recTB struct {
	testing.TB
	mu     sync.Mutex
	errs   []string
	fatals []string
}

func (r *recTB) Helper() {}
func (r *recTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recTB) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	runtime.Goexit()
}

func runRec(t *testing.T, f *File, send Send) *recTB {
	tb := &recTB{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); Run(tb, f, send, nil) }()
	<-done
	return tb
}

func TestRunFailures(t *testing.T) {
	f, err := Parse([]byte(seq))
	if err != nil {
		t.Fatal(err)
	}
	// wrong status stops the replay
	tb := runRec(t, f, func(Request) Response { return Response{Status: 500} })
	if len(tb.fatals) != 1 || !strings.Contains(tb.fatals[0], "step 1 (create): POST /Users: status 500, want 201") {
		t.Errorf("wrong status: fatals %v", tb.fatals)
	}
	// no id to save stops the replay
	tb = runRec(t, f, func(Request) Response { return Response{Status: 201, Body: []byte(`{}`)} })
	if len(tb.fatals) != 1 || !strings.Contains(tb.fatals[0], "cannot save") {
		t.Errorf("missing save: fatals %v", tb.fatals)
	}
	// every wrong header and body value is reported, and the replay goes on
	tb = runRec(t, f, func(r Request) Response {
		if r.Method == http.MethodPost {
			return Response{Status: 201, Header: http.Header{"Location": {"/Users/other"}},
				Body: []byte(`{"id":"u1","userName":"bob","emails":[{}],"members":[]}`)}
		}
		return Response{Status: 200, Body: []byte(`{"id":"u2"}`)}
	})
	// step 1: ETag, Location, userName, emails/#, emails/1/value, members, meta/version; step 2: id
	if len(tb.fatals) != 0 || len(tb.errs) != 8 {
		t.Errorf("mismatches: fatals %v, %d errors %q, want 8", tb.fatals, len(tb.errs), tb.errs)
	}
	all := strings.Join(tb.errs, "\n")
	for _, want := range []string{
		"header ETag missing", `header Location = "/Users/other", want "/Users/u1"`, "userName = bob, want ann",
		"emails/# = 1, want 2", "emails/1/value = <nil>, want b@example.com", "members present", "meta/version absent",
		"step 2 (get): id = u2, want u1",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no failure %q in %s", want, all)
		}
	}
}

func TestCheckers(t *testing.T) {
	doc, err := Decode([]byte(`{"a":{"b":[{"c":2.0},"x"]},"n":null}`))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]any{"a/b/0/c": json.Number("2.0"), "a/b/1": "x", "a/b/#": json.Number("2")} {
		if got, ok := Lookup(doc, path); !ok || got != want {
			t.Errorf("Lookup(%s) = %v, %v; want %v", path, got, ok, want)
		}
	}
	for _, path := range []string{"a/z", "a/b/2", "a/b/-1", "a/b/0/c/d", "a/b/x"} {
		if got, ok := Lookup(doc, path); ok {
			t.Errorf("Lookup(%s) = %v, want not found", path, got)
		}
	}
	if !SameJSON(json.Number("2.0"), 2) || SameJSON(json.Number("2"), "2") || !SameJSON(map[string]any{"a": 1, "b": 2}, map[string]any{"b": 2.0, "a": 1}) {
		t.Error("SameJSON compares JSON values")
	}
	if msgs := CheckBody(doc, map[string]any{"n": "<present>", "a/b/1": "${v}", "q": "<absent>"}, Vars{"v": "x"}); len(msgs) != 1 || !strings.Contains(msgs[0], "n absent") {
		t.Errorf("CheckBody: %v", msgs)
	}
	if _, err := Decode([]byte("not json")); err == nil {
		t.Error("Decode accepted a non-JSON body")
	}
	if d, err := Decode([]byte(" \n")); d != nil || err != nil {
		t.Errorf("Decode(blank) = %v, %v", d, err)
	}
}

func TestLoadAndParseErrors(t *testing.T) {
	if _, err := Parse([]byte(`{"steps": []}`)); err == nil || !strings.Contains(err.Error(), "no steps") {
		t.Errorf("no steps: %v", err)
	}
	if _, err := Parse([]byte(`{`)); err == nil {
		t.Error("broken JSON accepted")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "scim", "*", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recordings in testdata/scim: %v", err)
	}
	for _, file := range files {
		if _, err := Load(file); err != nil {
			t.Error(err)
		}
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}
