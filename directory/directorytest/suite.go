package directorytest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/babelforce/bridge/directory"
)

// Options tunes Run for what a source can express.
type Options struct {
	// Directory is the expected logical directory; nil means Conformance(t).
	Directory *Directory
	// Attributes maps logical attributes ("title", "department", "employeeNumber") to the key
	// under which the source exposes them, checked with User.Attr (e.g. "departmentNumber"
	// for OpenLDAP, "enterprise.department" for SCIM). Unlisted ones are not checked.
	Attributes map[string]string
	// PrimaryEmailOnly: the source holds one e-mail per user (AD's single-valued mail), so
	// only the first expected address is compared, with User.PrimaryEmail.
	PrimaryEmailOnly bool
	// CheckID, when set, is called with every user and group id (e.g. to insist on GUID form).
	CheckID func(id string) error
	// Timeout of each Read; default one minute.
	Timeout time.Duration
}

// Run reads r twice and checks the snapshot against the logical directory, comparing by user
// name and group name: the set of users and groups, names (a user without a display name
// attribute by the source's fallback), e-mails, phones (value and type), the first of each
// primary, active flags, listed attributes, each group's direct members, each user's direct and
// transitive groups (through nesting and the cycle), unique non-empty ids, and ids that stay
// the same from one read to the next.
func Run(t *testing.T, name string, r directory.Reader, opts Options) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		want := opts.Directory
		if want == nil {
			want = Conformance(t)
		}
		timeout := opts.Timeout
		if timeout == 0 {
			timeout = time.Minute
		}
		read := func() *directory.Snapshot {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			snap, err := r.Read(ctx)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if snap == nil {
				t.Fatal("Read returned a nil snapshot and no error")
			}
			return snap
		}
		snap := read()
		for _, p := range Compare(want, snap, opts) {
			t.Error(p)
		}
		again := read()
		for _, p := range compareIDs(snap, again) {
			t.Error(p)
		}
	})
}

// Compare returns every difference between the logical directory and snap (empty when they
// match), as sentences naming the user or group.
func Compare(want *Directory, snap *directory.Snapshot, opts Options) []string {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	if snap.Source == "" {
		bad("snapshot: Source is empty")
	}
	if snap.ReadAt.IsZero() {
		bad("snapshot: ReadAt is zero")
	}

	ids := map[string]string{}
	checkID := func(kind, name, id string) {
		if id == "" {
			bad("%s %q: empty id", kind, name)
			return
		}
		if prev, dup := ids[id]; dup {
			bad("%s %q: id %q is also the id of %s", kind, name, id, prev)
		}
		ids[id] = kind + " " + name
		if opts.CheckID != nil {
			if err := opts.CheckID(id); err != nil {
				bad("%s %q: id %q: %v", kind, name, id, err)
			}
		}
	}

	usersByName := map[string]*directory.User{}
	userNameByID := map[string]string{}
	for i := range snap.Users {
		u := &snap.Users[i]
		checkID("user", u.UserName, u.ID)
		if _, dup := usersByName[u.UserName]; dup {
			bad("user %q read twice", u.UserName)
		}
		usersByName[u.UserName] = u
		userNameByID[u.ID] = u.UserName
	}
	groupsByName := map[string]*directory.Group{}
	groupNameByID := map[string]string{}
	for i := range snap.Groups {
		g := &snap.Groups[i]
		checkID("group", g.Name, g.ID)
		if _, dup := groupsByName[g.Name]; dup {
			bad("group %q read twice", g.Name)
		}
		groupsByName[g.Name] = g
		groupNameByID[g.ID] = g.Name
	}

	var wantUsers, wantGroups []string
	for _, u := range want.Users {
		wantUsers = append(wantUsers, u.UserName)
	}
	for _, g := range want.Groups {
		wantGroups = append(wantGroups, g.Name)
	}
	if missing, extra := diff(wantUsers, keys(usersByName)); len(missing)+len(extra) > 0 {
		bad("users: missing %q, unexpected %q", missing, extra)
	}
	if missing, extra := diff(wantGroups, keys(groupsByName)); len(missing)+len(extra) > 0 {
		bad("groups: missing %q, unexpected %q", missing, extra)
	}

	names := func(idList []string, byID map[string]string) []string {
		out := make([]string, 0, len(idList))
		for _, id := range idList {
			if n, ok := byID[id]; ok {
				out = append(out, n)
			} else {
				out = append(out, "id:"+id)
			}
		}
		sort.Strings(out)
		return out
	}

	for _, wu := range want.Users {
		u := usersByName[wu.UserName]
		if u == nil {
			continue
		}
		who := fmt.Sprintf("user %q", wu.UserName)
		eq := func(field, got, want string) {
			if got != want {
				bad("%s: %s = %q, want %q", who, field, got, want)
			}
		}
		eq("DisplayName", u.DisplayName, wu.DisplayName)
		eq("GivenName", u.GivenName, wu.GivenName)
		eq("FamilyName", u.FamilyName, wu.FamilyName)
		if u.Active == wu.Inactive {
			bad("%s: Active = %v, want %v", who, u.Active, !wu.Inactive)
		}
		if opts.PrimaryEmailOnly {
			if len(wu.Emails) > 0 {
				eq("PrimaryEmail()", strings.ToLower(u.PrimaryEmail()), strings.ToLower(wu.Emails[0]))
			}
		} else {
			var got []string
			for _, e := range u.Emails {
				got = append(got, strings.ToLower(e.Value))
			}
			var exp []string
			for _, e := range wu.Emails {
				exp = append(exp, strings.ToLower(e))
			}
			if !sameSet(got, exp) {
				bad("%s: emails %q, want %q", who, sorted(got), sorted(exp))
			}
		}
		var gotPh, expPh []string
		for _, p := range u.Phones {
			gotPh = append(gotPh, p.Type+":"+p.Value)
		}
		for _, p := range wu.Phones {
			expPh = append(expPh, p.Type+":"+p.Value)
		}
		if !sameSet(gotPh, expPh) {
			bad("%s: phones %q, want %q", who, sorted(gotPh), sorted(expPh))
		}
		// the first phone and e-mail of the logical user are the primary ones, and only they
		primaries := func(kind string, flags []bool, got, want string) {
			n := 0
			for _, p := range flags {
				if p {
					n++
				}
			}
			if n != 1 || !strings.EqualFold(got, want) {
				bad("%s: %d primary %s, the primary is %q, want one, %q", who, n, kind, got, want)
			}
		}
		if len(wu.Phones) > 0 {
			var flags []bool
			for _, p := range u.Phones {
				flags = append(flags, p.Primary)
			}
			primaries("phones", flags, u.PrimaryPhone(), wu.Phones[0].Value)
		}
		if len(wu.Emails) > 0 {
			var flags []bool
			for _, e := range u.Emails {
				flags = append(flags, e.Primary)
			}
			primaries("e-mails", flags, u.PrimaryEmail(), wu.Emails[0])
		}
		for logical, key := range opts.Attributes {
			if got, exp := u.Attr(key), wu.Attr(logical); got != exp {
				bad("%s: Attr(%q) = %q, want %q (%s)", who, key, got, exp, logical)
			}
		}
		if got, exp := names(u.Groups, groupNameByID), want.DirectGroups(wu.UserName); !sameSet(got, exp) {
			bad("%s: direct groups %q, want %q", who, got, exp)
		}
		if got, exp := names(snap.Memberships[u.ID], groupNameByID), want.TransitiveGroups(wu.UserName); !sameSet(got, exp) {
			bad("%s: transitive groups %q, want %q", who, got, exp)
		}
	}

	for _, wg := range want.Groups {
		g := groupsByName[wg.Name]
		if g == nil {
			continue
		}
		if got := names(g.MemberUsers, userNameByID); !sameSet(got, wg.Users) {
			bad("group %q: member users %q, want %q", wg.Name, got, sorted(wg.Users))
		}
		if got := names(g.MemberGroups, groupNameByID); !sameSet(got, wg.Groups) {
			bad("group %q: member groups %q, want %q", wg.Name, got, sorted(wg.Groups))
		}
	}
	return probs
}

// compareIDs checks that two reads gave every user and group the same id.
func compareIDs(a, b *directory.Snapshot) []string {
	var probs []string
	ua := map[string]string{}
	for _, u := range a.Users {
		ua[u.UserName] = u.ID
	}
	for _, u := range b.Users {
		if id, ok := ua[u.UserName]; ok && id != u.ID {
			probs = append(probs, fmt.Sprintf("user %q: id %q on the first read, %q on the second", u.UserName, id, u.ID))
		}
	}
	ga := map[string]string{}
	for _, g := range a.Groups {
		ga[g.Name] = g.ID
	}
	for _, g := range b.Groups {
		if id, ok := ga[g.Name]; ok && id != g.ID {
			probs = append(probs, fmt.Sprintf("group %q: id %q on the first read, %q on the second", g.Name, id, g.ID))
		}
	}
	if len(a.Users) != len(b.Users) || len(a.Groups) != len(b.Groups) {
		probs = append(probs, fmt.Sprintf("second read: %d users and %d groups, first: %d and %d", len(b.Users), len(b.Groups), len(a.Users), len(a.Groups)))
	}
	return probs
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

func sameSet(a, b []string) bool {
	x, y := sorted(a), sorted(b)
	x, y = slices.Compact(x), slices.Compact(y)
	return slices.Equal(x, y) && len(a) == len(b)
}

// diff returns the names in want that got lacks, and those in got that want lacks.
func diff(want, got []string) (missing, extra []string) {
	w := map[string]bool{}
	for _, n := range want {
		w[n] = true
	}
	g := map[string]bool{}
	for _, n := range got {
		g[n] = true
		if !w[n] {
			extra = append(extra, n)
		}
	}
	for _, n := range want {
		if !g[n] {
			missing = append(missing, n)
		}
	}
	return missing, extra
}
