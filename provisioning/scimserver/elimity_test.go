package scimserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/elimity-com/scim"
	scimfilter "github.com/elimity-com/scim/filter"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

// TestElimityLimits checks, against the pinned elimity-com/scim, each limitation the package
// doc gives as the reason for code of ours (filter.go, response.go, project, the corrected
// ServiceProviderConfig). When an upgrade lifts one, this test fails: use the library for it
// then and delete our code, or correct the package doc.
func TestElimityLimits(t *testing.T) {
	user, enterprise := schema.CoreUserSchema(), schema.ExtensionEnterpriseUser()
	refused := func(f string) bool {
		v, err := scimfilter.NewValidator(f, user, enterprise)
		return err != nil || v.Validate() != nil
	}
	// filters: validated against the core schema and each extension separately, without the
	// common attributes
	for _, f := range []string{
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x" and active eq true`,
		`externalId eq "x"`,
		`id eq "x"`,
		`meta.lastModified gt "2020-01-01T00:00:00Z"`,
	} {
		if !refused(f) {
			t.Errorf("elimity now accepts the filter %s: filter.go may not need to take filters away from it", f)
		}
	}
	// a sub-attribute of a multi-valued attribute cannot be evaluated
	v, err := scimfilter.NewValidator(`emails.value co "ann"`, user, enterprise)
	if err != nil || v.Validate() != nil {
		t.Fatalf("emails.value co: %v", err)
	}
	ann := map[string]any{"userName": "ann", "emails": []any{map[string]any{"value": "ann@example.com"}}}
	if v.PassesFilter(ann) == nil {
		t.Errorf("elimity now evaluates emails.value co on a multi-valued attribute")
	}

	lib, err := scim.NewServer(&scim.ServerArgs{
		ServiceProviderConfig: &scim.ServiceProviderConfig{SupportFiltering: true, SupportPatch: true},
		ResourceTypes: []scim.ResourceType{{ID: optional.NewString("User"), Name: "User", Endpoint: "/Users",
			Schema: user, Handler: oneUser{}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) map[string]any {
		t.Helper()
		rr := httptest.NewRecorder()
		lib.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, path, nil))
		var doc map[string]any
		if rr.Code != http.StatusOK || json.Unmarshal(rr.Body.Bytes(), &doc) != nil {
			t.Fatalf("GET %s: %d %s", path, rr.Code, rr.Body)
		}
		return doc
	}
	// the ServiceProviderConfig says ETags are unsupported, whatever the handler does
	if etag, _ := get("/ServiceProviderConfig")["etag"].(map[string]any); etag["supported"] != false {
		t.Errorf("elimity's ServiceProviderConfig now says etag %v: serviceProviderConfig may not need to correct it", etag)
	}
	// a list: itemsPerPage is the requested count, locations are relative, and the attributes
	// parameter is ignored
	list := get("/Users?count=10&attributes=userName")
	if list["itemsPerPage"] != float64(10) {
		t.Errorf("elimity's itemsPerPage is now %v for one resource returned: finishResponse may not need to correct it", list["itemsPerPage"])
	}
	res, _ := list["Resources"].([]any)
	if len(res) != 1 {
		t.Fatalf("list: %v", list)
	}
	first, _ := res[0].(map[string]any)
	if first["displayName"] == nil {
		t.Errorf("elimity now applies the attributes parameter: project may not be needed")
	}
	if meta, _ := first["meta"].(map[string]any); meta["location"] != "Users/1" {
		t.Errorf("elimity's location without a base URL is now %v: finishResponse may not need to make it absolute", meta["location"])
	}
}

// oneUser is a ResourceHandler with one user, ann.
type oneUser struct{}

func (oneUser) ann() scim.Resource {
	return scim.Resource{ID: "1", Attributes: scim.ResourceAttributes{"userName": "ann", "displayName": "Ann"}}
}

func (u oneUser) Create(*http.Request, scim.ResourceAttributes) (scim.Resource, error) {
	return u.ann(), nil
}

func (u oneUser) Get(*http.Request, string) (scim.Resource, error) { return u.ann(), nil }

func (u oneUser) GetAll(*http.Request, scim.ListRequestParams) (scim.Page, error) {
	return scim.Page{TotalResults: 1, Resources: []scim.Resource{u.ann()}}, nil
}

func (u oneUser) Replace(*http.Request, string, scim.ResourceAttributes) (scim.Resource, error) {
	return u.ann(), nil
}

func (oneUser) Delete(*http.Request, string) error { return nil }

func (u oneUser) Patch(*http.Request, string, []scim.PatchOperation) (scim.Resource, error) {
	return u.ann(), nil
}
