package provisioning

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/babelforce/bridge/directory/store"
)

// TestUnreadableActiveFailsClosed: a person whose active flag the source could not read
// (directory.User.Invalid) is never provisioned, and bridge's agent of a person whose flag
// turns to garbage is neither switched off nor changed: both are skipped with the reason.
func TestUnreadableActiveFailsClosed(t *testing.T) {
	people := standardPeople()
	people = append(people, person{id: "u-gus", userName: "gus", name: "Gus Garbage", email: "gus@example.com",
		invalid: `active is "yes", not a boolean`, groups: []string{"agents"}})
	e := newEnv(t, people, nil)
	ctx := context.Background()
	rep, err := e.rec.Run(ctx, RunOptions{Trigger: TriggerCLI})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range e.sim.Agents() {
		if strings.EqualFold(a.Email, "gus@example.com") {
			t.Fatal("a person whose active flag is garbage was provisioned")
		}
	}
	if !skippedWith(rep.Plan.Skipped, "gus", `active is "yes", not a boolean`) {
		t.Errorf("gus is not skipped with the reason: %+v", rep.Plan.Skipped)
	}

	// ann's flag turns to garbage (and she would look inactive): her agent stays as it is
	e.dir.edit("u-ann", func(p *person) { p.active, p.invalid, p.name = false, `active is 7, not a boolean`, "Ann Renamed" })
	rep, err = e.rec.Run(ctx, RunOptions{Trigger: TriggerCLI})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Plan.Changes {
		if c.SourceID == "u-ann" {
			t.Errorf("a change for ann although her active flag cannot be read: %s", ChangeLine(c))
		}
	}
	if ann := e.agentByEmail("ann@example.com"); !ann.IsEnabled() || ann.Name != "Ann Arbor" {
		t.Errorf("ann's agent: %+v; want it enabled and unchanged", ann)
	}
	if !skippedWith(rep.Plan.Skipped, "ann", "active is 7, not a boolean") {
		t.Errorf("ann is not skipped with the reason: %+v", rep.Plan.Skipped)
	}
}

// TestStoredActiveNotBooleanFailsClosed: a user in the inbound SCIM store whose active is not
// a boolean (written by an older version, or by hand) reads as not active with User.Invalid,
// and the store's active column does not count them.
func TestStoredActiveNotBooleanFailsClosed(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "bridge.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for i, active := range []any{"yes", true} {
		r := store.Resource{Kind: store.KindUser, Attributes: map[string]any{"userName": []string{"gus", "ann"}[i] + "@example.com", "active": active}}
		if _, err := st.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := st.Read(ctx)
	if err != nil || len(snap.Users) != 2 {
		t.Fatalf("read: %v, %+v", err, snap)
	}
	for _, u := range snap.Users {
		garbage := strings.HasPrefix(u.UserName, "gus")
		if u.Active == garbage || (u.Invalid != "") != garbage {
			t.Errorf("%s: active %v, invalid %q", u.UserName, u.Active, u.Invalid)
		}
	}
}

// skippedWith reports whether skipped names subject (or its e-mail) with a reason containing why.
func skippedWith(skipped []Skipped, subject, why string) bool {
	for _, s := range skipped {
		if strings.Contains(s.Subject, subject) && strings.Contains(s.Reason, why) {
			return true
		}
	}
	return false
}
