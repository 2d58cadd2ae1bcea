package store

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/babelforce/bridge/directory"
)

// parityUser is one SCIM user as an IdP sends it, with most of what RFC 7643 allows.
const parityUser = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
  "id": "u-1",
  "externalId": "00u1",
  "userName": "Ann@Example.com",
  "name": {"givenName": "Ann", "familyName": "Archer", "honorificPrefix": "Dr."},
  "title": "Team Lead",
  "userType": "Employee",
  "active": false,
  "locale": "de-DE",
  "emails": [
    {"value": "ann.private@example.org", "type": "home"},
    {"value": "ann@example.com", "type": "work", "primary": true, "display": "Ann at work"},
    {"value": "ann@example.com", "type": "other"}
  ],
  "phoneNumbers": [{"value": "+49 30 1234567", "type": "work", "primary": "True"}, {"value": "0171 555", "type": "mobile"}],
  "addresses": [{"type": "work", "locality": "Berlin", "country": "DE", "formatted": "Hauptstr. 1, Berlin"}],
  "roles": [{"value": "supervisor"}],
  "x-tags": ["one", "two", 3],
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
    "department": "Support",
    "employeeNumber": 42,
    "manager": {"value": "u-2", "displayName": "Bob", "$ref": "../Users/u-2"}
  },
  "meta": {"resourceType": "User", "location": "https://idp.example.com/scim/v2/Users/u-1"}
}`

// TestStoreAndSCIMSourceAgree feeds the same SCIM user (and a group holding it) to the upstream
// SCIM source and to the store: both must give the same directory.User, attributes included.
func TestStoreAndSCIMSourceAgree(t *testing.T) { eachBackend(t, testStoreAndSCIMSourceAgree) }

func testStoreAndSCIMSourceAgree(t *testing.T, openStore func(*testing.T) *Store) {
	ctx := context.Background()
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(parityUser))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	grp := map[string]any{"id": "g-1", "displayName": "Support", "externalId": "grp-ext",
		"members": []any{map[string]any{"value": "u-1", "type": "User"}}}

	// The upstream SCIM source, against a server that lists exactly these two resources.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res []any
		switch {
		case strings.HasSuffix(r.URL.Path, "/Users"):
			res = []any{json.RawMessage(parityUser)}
		case strings.HasSuffix(r.URL.Path, "/Groups"):
			res = []any{grp}
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/scim+json")
		_ = json.NewEncoder(w).Encode(map[string]any{"totalResults": len(res), "startIndex": 1,
			"itemsPerPage": len(res), "Resources": res})
	}))
	defer srv.Close()
	src, err := directory.NewSCIMSource(directory.SCIMSourceConfig{BaseURL: srv.URL + "/scim/v2", Token: "t"}, nil, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	fromSource, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The store, given the same user and group the way the inbound SCIM endpoint stores them.
	s := openStore(t)
	ids := []string{"u-1", "g-1"}
	s.newID = func() string { id := ids[0]; ids = ids[1:]; return id }
	attrs := map[string]any{}
	for k, v := range doc {
		attrs[k] = v
	}
	mustCreate(t, s, Resource{Kind: KindUser, ExternalID: "00u1", Attributes: attrs})
	mustCreate(t, s, group("Support", "u-1"))
	fromStore, err := s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if len(fromSource.Users) != 1 || len(fromStore.Users) != 1 {
		t.Fatalf("users: source %d, store %d; want 1 each", len(fromSource.Users), len(fromStore.Users))
	}
	a, b := fromSource.Users[0], fromStore.Users[0]
	if !reflect.DeepEqual(a, b) {
		t.Errorf("the SCIM source and the store disagree on the same SCIM user:\nsource: %s\nstore:  %s", dump(t, a), dump(t, b))
	}
	if !reflect.DeepEqual(fromSource.Memberships, fromStore.Memberships) {
		t.Errorf("memberships: source %v, store %v", fromSource.Memberships, fromStore.Memberships)
	}
	// And what they agree on is right.
	if a.ID != "u-1" || a.UserName != "Ann@Example.com" || a.ExternalID != "00u1" || a.Active ||
		a.DisplayName != "Ann Archer" || a.PrimaryEmail() != "ann@example.com" || a.PrimaryPhone() != "+49 30 1234567" ||
		!reflect.DeepEqual(a.Groups, []string{"g-1"}) {
		t.Errorf("user = %s", dump(t, a))
	}
	for key, want := range map[string][]string{
		"title":                     {"Team Lead"},
		"emails":                    {"ann.private@example.org", "ann@example.com"},
		"emails.work":               {"ann@example.com"},
		"emails.primary":            {"ann@example.com"},
		"phonenumbers.primary":      {"+49 30 1234567"},
		"addresses":                 {"Hauptstr. 1, Berlin"},
		"addresses.work.locality":   {"Berlin"},
		"x-tags":                    {"one", "two", "3"},
		"enterprise.department":     {"Support"},
		"enterprise.employeenumber": {"42"},
		"enterprise.manager":        {"u-2"},
		strings.ToLower(directory.EnterpriseUserSchema) + ":manager.displayname": {"Bob"},
		"externalid": {"00u1"},
		"active":     {"false"},
	} {
		if got := a.Attributes[key]; !reflect.DeepEqual(got, want) {
			t.Errorf("Attributes[%q] = %q, want %q", key, got, want)
		}
	}
	for k := range a.Attributes {
		if k != strings.ToLower(k) || strings.Contains(k, "$ref") || strings.HasPrefix(k, "meta") || k == "schemas" {
			t.Errorf("attribute key %q: want lower-case keys and no meta, schemas or $ref", k)
		}
	}
}

func dump(t *testing.T, u directory.User) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(u); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
