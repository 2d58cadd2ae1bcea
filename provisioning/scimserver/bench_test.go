package scimserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/babelforce/bridge/directory/store"
)

// BenchmarkCreateAndPatchUser measures one Entra-style create plus one PATCH through the
// whole handler (auth, normalisation, library validation, store).
func BenchmarkCreateAndPatchUser(b *testing.B) {
	f := newFixture(b, Config{}, Options{})
	i := 0
	for b.Loop() {
		i++
		req := httptest.NewRequest(http.MethodPost, "/Users", strings.NewReader(fmt.Sprintf(
			`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bench%d@example.com","active":"True",
			"emails":[{"primary":true,"type":"work","value":"bench%d@example.com"}],"name":{"givenName":"B","familyName":"%d"}}`, i, i, i)))
		req.Header.Set("Authorization", "Bearer "+testToken)
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, req)
		if w.Code != http.StatusCreated {
			b.Fatalf("create: %d %s", w.Code, w.Body)
		}
		id := w.Header().Get("Location")
		id = id[strings.LastIndex(id, "/")+1:]
		req = httptest.NewRequest(http.MethodPatch, "/Users/"+id, strings.NewReader(
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`))
		req.Header.Set("Authorization", "Bearer "+testToken)
		w = httptest.NewRecorder()
		f.h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("patch: %d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkPatchLimits measures the PATCHes issue 10 found superlinear (8,000 operations took
// 56 s): 10,000 operations (refused with 400), and the largest accepted PATCH against a group
// of 10,000 members: MaxPatchOperations removals of one member each, Okta's way.
//
//	go test -run XXX -bench PatchLimits -benchtime 3x ./provisioning/scimserver/
func BenchmarkPatchLimits(b *testing.B) {
	f := newFixture(b, Config{}, Options{})
	var members []any
	for i := range 10000 {
		r, err := f.st.Create(context.Background(), store.Resource{Kind: store.KindUser,
			Attributes: map[string]any{"userName": fmt.Sprintf("m%d@example.com", i)}})
		if err != nil {
			b.Fatal(err)
		}
		members = append(members, map[string]any{"value": r.ID})
	}
	res := f.do(http.MethodPost, "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "big", "members": members})
	if res.status != http.StatusCreated {
		b.Fatalf("create group: %d %s", res.status, res.raw)
	}
	group := "/Groups/" + res.body["id"].(string)
	b.Run("10000 operations", func(b *testing.B) {
		ops := make([]map[string]any, 10000)
		for i := range ops {
			ops[i] = map[string]any{"op": "replace", "path": "displayName", "value": fmt.Sprint("n", i)}
		}
		raw, _ := json.Marshal(patchBody(ops...))
		c0 := processCPU()
		for b.Loop() {
			if res := f.do(http.MethodPatch, group, raw); res.status != http.StatusBadRequest {
				b.Fatalf("%d %s", res.status, res.raw)
			}
		}
		b.ReportMetric(float64(processCPU()-c0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	})
	b.Run("1000 member removals and adds", func(b *testing.B) {
		remove := make([]map[string]any, MaxPatchOperations)
		add := make([]map[string]any, MaxPatchOperations)
		for i := range remove {
			id := members[i].(map[string]any)["value"]
			remove[i] = map[string]any{"op": "remove", "path": fmt.Sprintf(`members[value eq "%s"]`, id)}
			add[i] = map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": id}}}
		}
		rawRemove, _ := json.Marshal(patchBody(remove...))
		rawAdd, _ := json.Marshal(patchBody(add...))
		c0 := processCPU()
		for b.Loop() {
			for _, raw := range [][]byte{rawRemove, rawAdd} {
				if res := f.do(http.MethodPatch, group, raw); res.status != http.StatusOK {
					b.Fatalf("%d %s", res.status, res.raw)
				}
			}
		}
		// two PATCHes per op
		b.ReportMetric(float64(processCPU()-c0)/float64(time.Millisecond)/float64(2*b.N), "cpu-ms/patch")
	})
}

// processCPU is the CPU time the process has used (user and system): on a shared machine it
// says more about a request's cost than the wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
