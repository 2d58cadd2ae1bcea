package store

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/directory/directorytest"
)

// The pushed-SCIM source passes the directory conformance suite on both backends: the
// conformance directory pushed as an IdP would (users, then groups, then the groups' members,
// nested ones included) reads back with the same names, typed phones, primaries, the display
// name fallback (name.formatted), active flags, attributes and memberships.
func TestConformancePushedSCIM(t *testing.T) {
	d := directorytest.Conformance(t)
	seedJSON, err := d.ScimmySeed()
	if err != nil {
		t.Fatal(err)
	}
	var seed struct{ Users, Groups []map[string]any }
	if err := json.Unmarshal(seedJSON, &seed); err != nil {
		t.Fatal(err)
	}
	eachBackend(t, func(t *testing.T, open func(*testing.T) *Store) {
		s := open(t)
		ctx := context.Background()
		ids := map[string]string{} // seed id → stored id
		push := func(kind Kind, doc map[string]any) {
			attrs := map[string]any{}
			for k, v := range doc {
				if k != "id" && k != "schemas" && k != "externalId" && k != "members" {
					attrs[k] = v
				}
			}
			ext, _ := doc["externalId"].(string)
			r, err := s.Create(ctx, Resource{Kind: kind, ExternalID: ext, Attributes: attrs})
			if err != nil {
				t.Fatalf("create %v: %v", doc["id"], err)
			}
			ids[doc["id"].(string)] = r.ID
		}
		for _, u := range seed.Users {
			push(KindUser, u)
		}
		for _, g := range seed.Groups {
			push(KindGroup, g)
		}
		for _, g := range seed.Groups {
			var members []any
			for _, m := range g["members"].([]any) {
				m := m.(map[string]any)
				members = append(members, map[string]any{"value": ids[m["value"].(string)], "type": m["type"]})
			}
			if _, _, err := s.Update(ctx, KindGroup, ids[g["id"].(string)], func(r *Resource) error {
				r.Attributes["members"] = members
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		directorytest.Run(t, "pushed", s, directorytest.Options{
			Directory: d,
			Attributes: map[string]string{
				"title":          "title",
				"department":     "enterprise.department",
				"employeeNumber": directory.EnterpriseUserSchema + ":employeeNumber",
			},
		})
	})
}
