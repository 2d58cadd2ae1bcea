package scimserver

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
