// Package scimreplay replays recorded SCIM request sequences (testdata/scim/**.json, format in
// testdata/scim/README.md) in tests: it loads the steps, substitutes ${var} from values saved
// by earlier steps, sends each request through a caller-supplied function and checks the
// status, headers and body the recording expects. Body paths are /-separated keys and array
// indexes ("a/b/0"); a final "#" is an array's length; "<absent>" and "<present>" test
// presence.
//
// Checks that depend on the system under test (the recording's onChange and after parts) are
// left to the caller, which gets them as raw JSON.
package scimreplay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// File is one recorded sequence.
type File struct {
	Description string `json:"description"`
	Steps       []Step `json:"steps"`
	// After describes the end state; its meaning is the caller's.
	After json.RawMessage `json:"after,omitempty"`
}

// Step is one request and what its answer must be.
type Step struct {
	Name    string            `json:"name"`
	Method  string            `json:"method"`
	Path    string            `json:"path"` // relative to the SCIM base; ${var} substituted
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"` // ${var} substituted
	Save    map[string]string `json:"save"` // variable name → body path of a string value
	Expect  Expect            `json:"expect"`
}

// Expect is what a step's answer must hold.
type Expect struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"` // "<present>": any non-empty value
	Body    map[string]any    `json:"body"`    // body path → value, "<absent>" or "<present>"
	// OnChange is checked by the caller (nil when the recording has none).
	OnChange json.RawMessage `json:"onChange,omitempty"`
}

// Label names step i (0-based) in failure messages.
func (s Step) Label(i int) string { return fmt.Sprintf("step %d (%s)", i+1, s.Name) }

// Parse decodes a recorded sequence.
func Parse(raw []byte) (*File, error) {
	var f File
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("replay file: %w", err)
	}
	if len(f.Steps) == 0 {
		return nil, errors.New("replay file has no steps")
	}
	return &f, nil
}

// Load reads and decodes the recorded sequence in file.
func Load(file string) (*File, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read replay file: %w", err)
	}
	f, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return f, nil
}

// Vars are the values saved by earlier steps.
type Vars map[string]string

// Subst replaces every ${name} in s with its saved value.
func (v Vars) Subst(s string) string {
	for k, val := range v {
		s = strings.ReplaceAll(s, "${"+k+"}", val)
	}
	return s
}

// Request is one step's request, variables substituted.
type Request struct {
	Method  string
	Path    string            // relative to the SCIM base
	Headers map[string]string // as recorded
	Body    []byte            // nil: no body
}

// HeaderPairs returns the recorded headers as name, value pairs, sorted by name.
func (r Request) HeaderPairs() []string {
	names := slices.Sorted(maps.Keys(r.Headers))
	pairs := make([]string, 0, 2*len(names))
	for _, n := range names {
		pairs = append(pairs, n, r.Headers[n])
	}
	return pairs
}

// Response is the answer to a Request.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Send sends one request to the system under test; it may fail t itself.
type Send func(Request) Response

// AfterStep is called after step i passed its checks, with the variables saved so far.
type AfterStep func(i int, st Step, vars Vars)

// Run replays f's steps through send and checks every answer: a wrong status or a value
// that cannot be saved stops the test, other mismatches are reported and the replay goes on.
// after (may be nil) runs after each step. Run returns the saved variables.
func Run(t testing.TB, f *File, send Send, after AfterStep) Vars {
	t.Helper()
	vars := Vars{}
	for i, st := range f.Steps {
		label := st.Label(i)
		req := Request{Method: st.Method, Path: vars.Subst(st.Path), Headers: st.Headers}
		if len(st.Body) > 0 {
			req.Body = []byte(vars.Subst(string(st.Body)))
		}
		res := send(req)
		if res.Status != st.Expect.Status {
			t.Fatalf("%s: %s %s: status %d, want %d\n%s", label, st.Method, req.Path, res.Status, st.Expect.Status, res.Body)
		}
		doc, err := Decode(res.Body)
		if err != nil {
			t.Fatalf("%s: body is not JSON: %v\n%s", label, err, res.Body)
		}
		for name, p := range st.Save {
			v, ok := Lookup(doc, p)
			s, isStr := v.(string)
			if !ok || !isStr || s == "" {
				t.Fatalf("%s: cannot save %s from %s\n%s", label, name, p, res.Body)
			}
			vars[name] = s
		}
		for _, msg := range CheckHeaders(res.Header, st.Expect.Headers, vars) {
			t.Errorf("%s: %s", label, msg)
		}
		for _, msg := range CheckBody(doc, st.Expect.Body, vars) {
			t.Errorf("%s: %s\n%s", label, msg, res.Body)
		}
		if after != nil {
			after(i, st, vars)
		}
	}
	return vars
}

// Decode decodes a response body with numbers as json.Number; an empty body is nil.
func Decode(body []byte) (any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// CheckHeaders returns one message for every expected header that h lacks or holds with
// another value (after substitution); "<present>" accepts any non-empty value.
func CheckHeaders(h http.Header, want map[string]string, vars Vars) []string {
	var msgs []string
	for name, w := range want {
		got := h.Get(name)
		if w == "<present>" {
			if got == "" {
				msgs = append(msgs, fmt.Sprintf("header %s missing", name))
			}
			continue
		}
		if got != vars.Subst(w) {
			msgs = append(msgs, fmt.Sprintf("header %s = %q, want %q", name, got, vars.Subst(w)))
		}
	}
	return msgs
}

// CheckBody returns one message for every body path whose value in doc is not the expected
// one (strings substituted; "<absent>" and "<present>" test presence).
func CheckBody(doc any, want map[string]any, vars Vars) []string {
	var msgs []string
	for p, w := range want {
		got, ok := Lookup(doc, p)
		switch w {
		case "<absent>":
			if ok {
				msgs = append(msgs, fmt.Sprintf("%s present (%v), want absent", p, got))
			}
			continue
		case "<present>":
			if !ok || got == nil {
				msgs = append(msgs, fmt.Sprintf("%s absent, want present", p))
			}
			continue
		}
		if s, isStr := w.(string); isStr {
			w = vars.Subst(s)
		}
		if !ok || !SameJSON(got, w) {
			msgs = append(msgs, fmt.Sprintf("%s = %v, want %v", p, got, w))
		}
	}
	return msgs
}

// Lookup follows a /-separated path of object keys and array indexes in a decoded JSON
// document; a final "#" is an array's length (as a json.Number).
func Lookup(doc any, path string) (any, bool) {
	cur := doc
	for _, seg := range strings.Split(path, "/") {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			if seg == "#" {
				return json.Number(strconv.Itoa(len(c))), true
			}
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// SameJSON reports whether two values encode to the same JSON once decoded again (so 2,
// 2.0 and json.Number("2") are equal, and map key order does not matter).
func SameJSON(got, want any) bool {
	norm := func(v any) ([]byte, bool) {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, false
		}
		var x any
		if err := json.Unmarshal(b, &x); err != nil {
			return nil, false
		}
		b, err = json.Marshal(x)
		return b, err == nil
	}
	g, ok1 := norm(got)
	w, ok2 := norm(want)
	return ok1 && ok2 && bytes.Equal(g, w)
}
