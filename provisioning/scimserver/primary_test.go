package scimserver

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/elimity-com/scim"
	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"
)

// TestOnePrimaryValue: RFC 7643 §2.4 allows primary=true on at most one value of a
// multi-valued attribute. Whatever way a write makes a second value primary (Okta's and
// Entra's PATCH shapes, PUT, POST), the value written last stays primary and the others
// become primary=false, so that the directory user's PrimaryEmail is the new one.
func TestOnePrimaryValue(t *testing.T) {
	const (
		oldWork = "old@work.example"
		home    = "pat@home.example"
		newMail = "new@work.example"
	)
	twoEmails := []map[string]any{
		{"value": oldWork, "type": "work", "primary": true},
		{"value": home, "type": "home"},
	}
	cases := []struct {
		name   string
		create map[string]any // extra attributes of the POST
		// one of:
		patch []map[string]any
		put   map[string]any
		// want: the one primary e-mail (and phone, when set)
		wantEmail, wantPhone string
		wantEmails           int
	}{
		{
			name:   "Okta PATCH add emails with primary true",
			create: map[string]any{"emails": twoEmails},
			patch: []map[string]any{{"op": "add", "path": "emails", "value": []map[string]any{
				{"value": newMail, "type": "other", "primary": true}}}},
			wantEmail: newMail, wantEmails: 3,
		},
		{
			name:   "Entra PATCH add without path, primary as the string true",
			create: map[string]any{"emails": twoEmails},
			patch: []map[string]any{{"op": "Add", "value": map[string]any{"emails": []map[string]any{
				{"value": newMail, "type": "other", "primary": "true"}}}}},
			wantEmail: newMail, wantEmails: 3,
		},
		{
			name:   "PATCH add of an existing earlier value with primary true",
			create: map[string]any{"emails": []map[string]any{{"value": home, "type": "home"}, {"value": oldWork, "type": "work", "primary": true}}},
			patch: []map[string]any{{"op": "add", "path": "emails", "value": []map[string]any{
				{"value": home, "primary": true}}}},
			wantEmail: home, wantEmails: 2,
		},
		{
			name:   "Entra PATCH replace emails[type eq work].value and .primary",
			create: map[string]any{"emails": []map[string]any{{"value": home, "type": "home", "primary": true}}},
			patch: []map[string]any{
				{"op": "Replace", "path": `emails[type eq "work"].value`, "value": newMail},
				{"op": "Replace", "path": `emails[type eq "work"].primary`, "value": "True"},
			},
			wantEmail: newMail, wantEmails: 2,
		},
		{
			name:   "Entra PATCH replace without path, filtered keys",
			create: map[string]any{"emails": []map[string]any{{"value": home, "type": "home", "primary": true}}},
			patch: []map[string]any{{"op": "Replace", "value": map[string]any{
				`emails[type eq "work"].value`: newMail,
			}}, {"op": "Replace", "value": map[string]any{
				`emails[type eq "work"].primary`: "true",
			}}},
			wantEmail: newMail, wantEmails: 2,
		},
		{
			name:   "PATCH replace of the whole list with two primaries",
			create: map[string]any{"emails": twoEmails},
			patch: []map[string]any{{"op": "replace", "path": "emails", "value": []map[string]any{
				{"value": oldWork, "type": "work", "primary": true},
				{"value": newMail, "type": "other", "primary": true},
			}}},
			wantEmail: newMail, wantEmails: 2,
		},
		{
			name:   "PATCH setting primary on every value",
			create: map[string]any{"emails": twoEmails},
			patch:  []map[string]any{{"op": "replace", "path": "emails.primary", "value": true}},
			// the last value is the one written last
			wantEmail: home, wantEmails: 2,
		},
		{
			name:   "PUT with two primaries",
			create: map[string]any{"emails": twoEmails},
			put: map[string]any{
				"emails": []map[string]any{
					{"value": oldWork, "type": "work", "primary": true},
					{"value": newMail, "type": "other", "primary": "true"},
				},
				"phoneNumbers": []map[string]any{
					{"value": "+49 30 1", "type": "work", "primary": true},
					{"value": "+49 30 2", "type": "mobile", "primary": true},
				},
			},
			wantEmail: newMail, wantPhone: "+49 30 2", wantEmails: 2,
		},
		{
			name: "POST with two primaries",
			create: map[string]any{
				"emails": []map[string]any{
					{"value": oldWork, "type": "work", "primary": true},
					{"value": newMail, "type": "other", "primary": true},
				},
				"phoneNumbers": []map[string]any{
					{"value": "+49 30 1", "type": "work", "primary": "True"},
					{"value": "+49 30 2", "type": "mobile", "primary": true},
				},
			},
			wantEmail: newMail, wantPhone: "+49 30 2", wantEmails: 2,
		},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, Config{}, Options{})
			userName := fmt.Sprintf("pat%d@example.com", i)
			id := createUser(t, f, userName, c.create)
			var res response
			switch {
			case c.patch != nil:
				res = f.do(http.MethodPatch, "/Users/"+id, patchBody(c.patch...))
			case c.put != nil:
				res = f.do(http.MethodPut, "/Users/"+id, userBody(userName, c.put))
			default:
				res = f.do(http.MethodGet, "/Users/"+id, nil)
			}
			if res.status != http.StatusOK {
				t.Fatalf("%d %s", res.status, res.raw)
			}
			checkOnePrimary(t, res.body, "emails", c.wantEmail, c.wantEmails)
			if c.wantPhone != "" {
				checkOnePrimary(t, res.body, "phoneNumbers", c.wantPhone, -1)
			}
			// and as stored, through the directory.Reader the reconciler uses
			got := f.do(http.MethodGet, "/Users/"+id, nil)
			checkOnePrimary(t, got.body, "emails", c.wantEmail, c.wantEmails)
			snap, err := f.st.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			u := snap.User(id)
			if u == nil {
				t.Fatalf("user %s not in the snapshot", id)
			}
			if pe := u.PrimaryEmail(); pe != c.wantEmail {
				t.Fatalf("directory PrimaryEmail = %q; want %q (emails %+v)", pe, c.wantEmail, u.Emails)
			}
			if c.wantPhone != "" {
				if pp := u.PrimaryPhone(); pp != c.wantPhone {
					t.Fatalf("directory PrimaryPhone = %q; want %q (phones %+v)", pp, c.wantPhone, u.Phones)
				}
			}
		})
	}
}

// checkOnePrimary checks that exactly one value of attr in a SCIM user body is primary, that
// it is want, that every other value that has a primary says false, and (n >= 0) that attr has n values.
func checkOnePrimary(t *testing.T, body map[string]any, attr, want string, n int) {
	t.Helper()
	list, _ := body[attr].([]any)
	if n >= 0 && len(list) != n {
		t.Fatalf("%s has %d values; want %d: %v", attr, len(list), n, list)
	}
	var primaries []string
	for _, e := range list {
		m, _ := e.(map[string]any)
		switch p := m["primary"]; p {
		case true:
			primaries = append(primaries, fmt.Sprint(m["value"]))
		case false, nil:
		default:
			t.Fatalf("%s: primary = %#v (not a boolean) in %v", attr, p, list)
		}
	}
	if len(primaries) != 1 || primaries[0] != want {
		t.Fatalf("%s primaries = %v; want only %q: %v", attr, primaries, want, list)
	}
}

// TestApplyPatchRepeatable: Store.Update runs the PATCH closure again on a fresh copy of the
// resource when the database asks to retry; applying the same operations twice must give the
// same document, and must not change the operations' values.
func TestApplyPatchRepeatable(t *testing.T) {
	idx := newSchemaIndex(schema.CoreUserSchema(), schema.ExtensionEnterpriseUser())
	path := func(s string) *filter.Path {
		p, err := filter.ParsePath([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return &p
	}
	ops := []scim.PatchOperation{
		{Op: "add", Path: path("emails"), Value: []any{map[string]any{"value": "b@x", "type": "home", "primary": true}}},
		{Op: "replace", Path: path(`emails[type eq "work"].primary`), Value: true},
		{Op: "add", Path: path("emails"), Value: []any{map[string]any{"value": "b@x", "display": "B"}}},
	}
	opsBefore := deepCopy([]any{ops[0].Value, ops[1].Value, ops[2].Value})
	stored := map[string]any{"userName": "x", "emails": []any{
		map[string]any{"value": "a@x", "type": "work", "primary": true},
	}}
	var results []map[string]any
	for range 2 {
		doc := deepCopy(stored).(map[string]any)
		if err := idx.applyPatch(doc, ops); err != nil {
			t.Fatal(err)
		}
		results = append(results, doc)
	}
	if !reflect.DeepEqual(results[0], results[1]) {
		t.Fatalf("second run differs:\n%v\n%v", results[0], results[1])
	}
	if got := []any{ops[0].Value, ops[1].Value, ops[2].Value}; !reflect.DeepEqual(got, opsBefore) {
		t.Fatalf("operations changed by applying them: %v; were %v", got, opsBefore)
	}
	checkOnePrimary(t, results[0], "emails", "a@x", 2)
}
