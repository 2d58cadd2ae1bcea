package directory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/babelforce/bridge/internal/testenv"
)

// scimWrite sends a SCIM write to srv and returns the resource's id.
func scimWrite(t *testing.T, srv *testenv.Scimmy, method, path string, body any) string {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+srv.Token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ID string `json:"id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode > 299 {
		t.Fatalf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	return out.ID
}

func TestSCIMFollowPollsLastModified(t *testing.T) {
	srv := testenv.StartScimmy(t, testenv.ScimmyOptions{})
	user := func(name string) map[string]any {
		return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": name, "active": true}
	}
	ann := scimWrite(t, srv, http.MethodPost, "/Users", user("ann@example.com"))
	src, err := NewSCIMSource(SCIMSourceConfig{BaseURL: srv.URL, Token: srv.Token}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	src.SetPollInterval(50 * time.Millisecond)
	f := follow(t, src, nil)
	first := f.next()
	if !first.Ready || !first.Full {
		t.Fatalf("first batch %+v, want Ready and Full", first)
	}
	// a change of a user names that user, once
	u := user("ann@example.com")
	u["displayName"] = "Ann Changed"
	scimWrite(t, srv, http.MethodPut, "/Users/"+ann, u)
	if got := f.users(); !slices.Equal(got, []string{ann}) {
		t.Fatalf("after a change: %v, want %s", got, ann)
	}
	bob := scimWrite(t, srv, http.MethodPost, "/Users", user("bob@example.com"))
	c := f.next()
	if c.Full || !slices.Equal(c.Users, []string{bob}) {
		t.Fatalf("after an add: %+v, want only %s (ann was reported already)", c, bob)
	}
	// a group change asks for everyone
	scimWrite(t, srv, http.MethodPost, "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Sales", "members": []map[string]string{{"value": bob}}})
	if c := f.next(); !c.Full {
		t.Fatalf("after a group add: %+v, want Full", c)
	}
}

func TestSCIMFollowWithoutLastModifiedFilter(t *testing.T) {
	// a service that ignores filters answers the far-future probe with its users
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/scim+json")
		_, _ = w.Write([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1,"startIndex":1,"itemsPerPage":1,"Resources":[{"id":"1","userName":"a"}]}`))
	}))
	defer srv.Close()
	src, err := NewSCIMSource(SCIMSourceConfig{BaseURL: srv.URL, Token: "t"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = src.Follow(context.Background(), nil, func(ChangeSet) { t.Error("a batch from a service without the filter") })
	if !errors.Is(err, ErrNoChangeStream) {
		t.Fatalf("Follow = %v, want ErrNoChangeStream", err)
	}
}
