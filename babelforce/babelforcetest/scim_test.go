package babelforcetest

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/babelforce/bridge/babelforce"
)

func scimUserBody(userName string, extra map[string]any) map[string]any {
	m := map[string]any{"schemas": []string{babelforce.SCIMUserSchema}, "userName": userName}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func patchBody(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{babelforce.SCIMPatchOpSchema}, "Operations": ops}
}

func TestSCIMUsers(t *testing.T) {
	sim := New(t, Options{})
	a := newAPI(t, sim)
	a.token = sim.SCIMToken

	var u babelforce.SCIMUser
	res := a.post("/auth/scim/v2/Users", scimUserBody("Ann@Example.com", map[string]any{
		"externalId": "ext-ann", "name": map[string]any{"givenName": "Ann", "familyName": "Example"},
		"displayName": "Ann Example", "roles": []map[string]any{{"value": "agent"}, {"value": "supervisor", "primary": "True"}},
		"phoneNumbers": []map[string]any{{"value": "+4930111", "type": "work"}}, "active": true, "password": "pw",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": "Support"},
	}), invalidRequest()).want(http.StatusCreated) // "primary": "True" is Azure AD's quirk, not RFC 7643
	if ct := res.Header.Get("Content-Type"); ct != "application/scim+json" {
		t.Errorf("content type %q", ct)
	}
	res.decode(&u)
	if !hexID.MatchString(u.ID) || u.UserName != "ann@example.com" || u.ExternalID != "ext-ann" || !u.IsActive() ||
		u.Name == nil || u.Name.GivenName != "Ann" || len(u.Roles) != 2 || u.Meta == nil || u.Meta.Location != sim.URL+"/auth/scim/v2/Users/"+u.ID {
		t.Fatalf("created %+v", u)
	}
	if res.Header.Get("Location") != u.Meta.Location {
		t.Errorf("Location %q", res.Header.Get("Location"))
	}
	// the same login through the Manager API
	users := sim.Users()
	if len(users) != 1 || users[0].Email != "ann@example.com" || !slices.Equal(users[0].Roles, []string{"agent", "supervisor"}) {
		t.Errorf("manager view %+v", users)
	}
	a.get("/api/v2/users/by-email/ann@example.com").want(http.StatusOK)

	// uniqueness, also against users created through the Manager API
	res = a.post("/auth/scim/v2/Users", scimUserBody("ANN@example.com", nil)).want(http.StatusConflict)
	var e scimError
	res.decode(&e)
	if e.Status != "409" || e.SCIMType != "uniqueness" || e.Detail == "" || e.Schemas[0] != babelforce.SCIMErrorSchema {
		t.Errorf("409 body %+v", e)
	}
	a.post("/api/v2/users", map[string]any{"email": "bob@example.com", "roles": []string{"agent"}, "activated": true}).want(http.StatusCreated)
	a.post("/auth/scim/v2/Users", scimUserBody("bob@example.com", nil)).want(http.StatusConflict)
	// validation
	a.post("/auth/scim/v2/Users", map[string]any{"userName": "c@example.com"}).want(http.StatusBadRequest)
	a.post("/auth/scim/v2/Users", scimUserBody("", nil), invalidRequest()).want(http.StatusBadRequest)
	a.post("/auth/scim/v2/Users", scimUserBody("not-an-email", nil)).want(http.StatusBadRequest)
	res = a.post("/auth/scim/v2/Users", scimUserBody("c@example.com", map[string]any{"roles": []map[string]string{{"value": "pope"}}})).want(http.StatusBadRequest)
	if res.obj()["scimType"] != "invalidValue" {
		t.Errorf("bad role: %s", res.Body)
	}
	a.post("/auth/scim/v2/Users", nil, rawBody(`{"schemas":`), invalidRequest()).want(http.StatusBadRequest)

	// filters and paging
	var l struct {
		TotalResults int                   `json:"totalResults"`
		StartIndex   int                   `json:"startIndex"`
		ItemsPerPage int                   `json:"itemsPerPage"`
		Resources    []babelforce.SCIMUser `json:"Resources"`
	}
	list := func(query string) {
		t.Helper()
		l.Resources = nil
		a.get("/auth/scim/v2/Users?" + query).want(http.StatusOK).decode(&l)
	}
	list("filter=" + url.QueryEscape(`userName eq "ANN@example.com"`))
	if l.TotalResults != 1 || l.Resources[0].ID != u.ID {
		t.Errorf("userName filter %+v", l)
	}
	list("filter=" + url.QueryEscape(`externalId eq "ext-ann"`))
	if l.TotalResults != 1 || l.Resources[0].ID != u.ID {
		t.Errorf("externalId filter %+v", l)
	}
	list("filter=" + url.QueryEscape(`emails.value eq "bob@example.com"`))
	if l.TotalResults != 1 || l.Resources[0].UserName != "bob@example.com" {
		t.Errorf("emails filter %+v", l)
	}
	list("filter=" + url.QueryEscape(`userName eq "nobody@example.com"`))
	if l.TotalResults != 0 || l.Resources == nil {
		t.Errorf("empty filter result %+v", l)
	}
	list("startIndex=2&count=1")
	if l.TotalResults != 2 || l.StartIndex != 2 || l.ItemsPerPage != 1 || l.Resources[0].UserName != "bob@example.com" {
		t.Errorf("paging %+v", l)
	}
	res = a.get("/auth/scim/v2/Users?filter=" + url.QueryEscape(`userName co "ann"`)).want(http.StatusBadRequest)
	if res.obj()["scimType"] != "invalidFilter" {
		t.Errorf("unsupported filter: %s", res.Body)
	}
	a.get("/auth/scim/v2/Users?filter=" + url.QueryEscape(`title eq "x"`)).want(http.StatusBadRequest)

	// get, hyphenated id
	a.get("/auth/scim/v2/Users/" + u.ID).want(http.StatusOK)
	res = a.get("/auth/scim/v2/Users/" + u.ID[:8] + "-" + u.ID[8:]).want(http.StatusNotFound)
	if res.obj()["status"] != "404" {
		t.Errorf("SCIM 404 body %s", res.Body)
	}

	// PATCH
	patch := func(want int, ops ...map[string]any) babelforce.SCIMUser {
		t.Helper()
		var out babelforce.SCIMUser
		res := a.patch("/auth/scim/v2/Users/"+u.ID, patchBody(ops...)).want(want)
		if want == http.StatusOK {
			res.decode(&out)
		}
		return out
	}
	got := patch(http.StatusOK, map[string]any{"op": "Replace", "path": "active", "value": "False"}) // Azure AD style
	if got.IsActive() {
		t.Error("active not replaced")
	}
	if findUser(sim, "ann@example.com").Enabled == nil || *findUser(sim, "ann@example.com").Enabled {
		t.Error("SCIM active=false did not disable the login")
	}
	got = patch(http.StatusOK,
		map[string]any{"op": "replace", "path": "name.givenName", "value": "Anna"},
		map[string]any{"op": "replace", "path": `phoneNumbers[type eq "work"].value`, "value": "+4930222"},
		map[string]any{"op": "add", "path": "roles", "value": []map[string]string{{"value": "manager"}}},
		map[string]any{"op": "remove", "path": `roles[value eq "supervisor"]`},
	)
	if got.Name.GivenName != "Anna" || got.Name.FamilyName != "Example" || len(got.PhoneNumbers) != 1 || got.PhoneNumbers[0].Value != "+4930222" {
		t.Errorf("after patch %+v", got)
	}
	if roles := roleList(got); !slices.Equal(roles, []string{"agent", "manager"}) {
		t.Errorf("roles after patch %v", roles)
	}
	// replace without a path (Azure AD style), dotted keys included
	got = patch(http.StatusOK, map[string]any{"op": "replace", "value": map[string]any{
		"active": true, "displayName": "Anna E.", "name.familyName": "Beispiel", "externalId": "ext-2",
	}})
	if !got.IsActive() || got.DisplayName != "Anna E." || got.Name.FamilyName != "Beispiel" || got.ExternalID != "ext-2" {
		t.Errorf("replace without path %+v", got)
	}
	got = patch(http.StatusOK, map[string]any{"op": "replace", "path": "name", "value": map[string]any{"formatted": "Anna Beispiel"}})
	if got.Name.Formatted != "Anna Beispiel" || got.Name.GivenName != "Anna" {
		t.Errorf("replace name keeps unspecified sub-attributes: %+v", got.Name)
	}
	got = patch(http.StatusOK,
		map[string]any{"op": "remove", "path": "roles", "value": []map[string]string{{"value": "agent"}}},
		map[string]any{"op": "remove", "path": "phoneNumbers"},
		map[string]any{"op": "replace", "path": "roles", "value": []map[string]string{{"value": "reporter"}, {"value": "agent"}}},
	)
	if roles := roleList(got); !slices.Equal(roles, []string{"reporter", "agent"}) || len(got.PhoneNumbers) != 0 {
		t.Errorf("after remove/replace %+v", got)
	}
	got = patch(http.StatusOK, map[string]any{"op": "replace", "path": "userName", "value": "Anna@Example.com"})
	if got.UserName != "anna@example.com" {
		t.Errorf("userName %q", got.UserName)
	}
	patch(http.StatusConflict, map[string]any{"op": "replace", "path": "userName", "value": "bob@example.com"})
	patch(http.StatusBadRequest, map[string]any{"op": "replace", "path": "roles", "value": []map[string]string{{"value": "king"}}})
	patch(http.StatusBadRequest, map[string]any{"op": "replace", "path": "active", "value": "perhaps"})
	patch(http.StatusBadRequest, map[string]any{"op": "move", "path": "active", "value": true})
	patch(http.StatusBadRequest, map[string]any{"op": "replace", "path": "shoeSize", "value": "44"})
	patch(http.StatusBadRequest, map[string]any{"op": "remove", "path": "userName"})
	patch(http.StatusBadRequest, map[string]any{"op": "remove"})
	a.patch("/auth/scim/v2/Users/"+u.ID, map[string]any{"schemas": []string{babelforce.SCIMUserSchema}, "Operations": []any{map[string]any{"op": "add"}}}).want(http.StatusBadRequest)
	a.patch("/auth/scim/v2/Users/"+strings.Repeat("d", 32), patchBody(map[string]any{"op": "replace", "path": "active", "value": true})).want(http.StatusNotFound)

	// PUT replaces
	var put babelforce.SCIMUser
	a.put("/auth/scim/v2/Users/"+u.ID, scimUserBody("anna@example.com", map[string]any{"active": false, "roles": []map[string]string{{"value": "agent"}}})).want(http.StatusOK).decode(&put)
	if put.IsActive() || put.DisplayName != "" || put.Name != nil || put.ExternalID != "" || !slices.Equal(roleList(put), []string{"agent"}) || put.ID != u.ID {
		t.Errorf("after PUT %+v", put)
	}
	a.put("/auth/scim/v2/Users/"+u.ID, scimUserBody("bob@example.com", nil)).want(http.StatusConflict)
	a.put("/auth/scim/v2/Users/"+strings.Repeat("d", 32), scimUserBody("z@example.com", nil)).want(http.StatusNotFound)

	// DELETE
	a.del("/auth/scim/v2/Users/" + u.ID).want(http.StatusNoContent)
	a.del("/auth/scim/v2/Users/" + u.ID).want(http.StatusNotFound)
	a.get("/api/v2/users/" + u.ID).want(http.StatusNotFound)
}

func roleList(u babelforce.SCIMUser) []string {
	var out []string
	for _, r := range u.Roles {
		out = append(out, r.Value)
	}
	return out
}

func TestSCIMConfigurationAndFeatures(t *testing.T) {
	sim := New(t, Options{})
	a := newAPI(t, sim).login()
	var c babelforce.SCIMConfiguration
	a.get("/auth/scim/v2/configuration").want(http.StatusOK).decode(&c)
	if !c.Features.SCIM || !c.Features.Roles || c.Features.Groups || c.DefaultRoles == nil {
		t.Errorf("default configuration %+v", c)
	}
	// ServiceProviderConfig and Groups (501 either way)
	var spc map[string]any
	a.get("/auth/scim/v2/ServiceProviderConfig").want(http.StatusOK).decode(&spc)
	if spc["patch"].(map[string]any)["supported"] != true {
		t.Errorf("ServiceProviderConfig %v", spc)
	}
	res := a.get("/auth/scim/v2/Groups").want(http.StatusNotImplemented)
	if m := res.obj(); m["status"] != "501" || !strings.Contains(m["detail"].(string), "disabled") {
		t.Errorf("Groups: %s", res.Body)
	}
	a.post("/auth/scim/v2/Groups", map[string]any{"displayName": "x"}, unspecified()).want(http.StatusNotImplemented)

	want := babelforce.SCIMConfiguration{DefaultRoles: []string{"agent"}, Customizer: "microsoft",
		Features: babelforce.SCIMFeatures{SCIM: true, Groups: true, Roles: false, PhoneNumberSync: true}}
	a.put("/auth/scim/v2/configuration", want).want(http.StatusOK).decode(&c)
	if c.Customizer != "microsoft" || !slices.Equal(c.DefaultRoles, []string{"agent"}) || c.Features != want.Features {
		t.Errorf("stored %+v", c)
	}
	if got := sim.SCIMConfiguration(); got.Customizer != "microsoft" {
		t.Errorf("SCIMConfiguration() %+v", got)
	}
	a.put("/auth/scim/v2/configuration", map[string]any{"defaultRoles": []string{"emperor"}, "features": map[string]any{}}, invalidRequest()).want(http.StatusBadRequest)
	a.put("/auth/scim/v2/configuration", map[string]any{"defaultRoles": []string{}}, invalidRequest()).want(http.StatusBadRequest)
	res = a.get("/auth/scim/v2/Groups").want(http.StatusNotImplemented)
	if !strings.Contains(res.obj()["detail"].(string), "not implemented") {
		t.Errorf("Groups with the feature on: %s", res.Body)
	}

	// roles feature off: incoming roles ignored, defaultRoles used
	var u babelforce.SCIMUser
	a.post("/auth/scim/v2/Users", scimUserBody("r@example.com", map[string]any{"roles": []map[string]string{{"value": "owner"}}})).want(http.StatusCreated).decode(&u)
	if !slices.Equal(roleList(u), []string{"agent"}) {
		t.Errorf("roles with feature off: %v", roleList(u))
	}
	// scim feature off: /Users refuses
	want.Features.SCIM = false
	sim.SetSCIMConfiguration(want)
	res = a.get("/auth/scim/v2/Users").want(http.StatusForbidden)
	if res.obj()["status"] != "403" {
		t.Errorf("SCIM off: %s", res.Body)
	}
}

func TestSCIMSeedHelpers(t *testing.T) {
	sim := New(t, Options{})
	f := false
	u := sim.PutSCIMUser(babelforce.SCIMUser{UserName: "Seed@Example.com", Active: &f, Roles: []babelforce.SCIMValue{{Value: "agent"}}})
	if u.UserName != "seed@example.com" || u.IsActive() || !hexID.MatchString(u.ID) {
		t.Errorf("PutSCIMUser %+v", u)
	}
	got := sim.SCIMUsers()
	if len(got) != 1 || got[0].ID != u.ID {
		t.Errorf("SCIMUsers %+v", got)
	}
	mu := sim.PutUser(babelforce.User{Email: "m@example.com", Roles: []string{"manager"}})
	if len(sim.SCIMUsers()) != 2 || sim.SCIMUsers()[1].ID != mu.ID {
		t.Errorf("manager user not visible through SCIM: %+v", sim.SCIMUsers())
	}
	for i := range 3 {
		sim.PutAgent(babelforce.Agent{Name: fmt.Sprint(i), Tags: []string{"t" + fmt.Sprint(i%2)}})
	}
	if tags := sim.AgentTags(); !slices.Equal(tags, []string{"t0", "t1"}) {
		t.Errorf("AgentTags %v", tags)
	}
}
