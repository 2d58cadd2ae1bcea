package directory

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/babelforce/bridge/internal/testenv"
)

// follower runs Follow in the background and hands out its batches.
type follower struct {
	t       *testing.T
	batches chan ChangeSet
	done    chan error
	cancel  context.CancelFunc
}

func follow(t *testing.T, s Stream, cookie []byte) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{t: t, batches: make(chan ChangeSet, 100), done: make(chan error, 1), cancel: cancel}
	go func() { f.done <- s.Follow(ctx, cookie, func(c ChangeSet) { f.batches <- c }) }()
	t.Cleanup(func() {
		cancel()
		<-f.done
	})
	return f
}

// next returns the next batch (failing after a generous deadline: the stream is silent when
// something is broken).
func (f *follower) next() ChangeSet {
	f.t.Helper()
	select {
	case c := <-f.batches:
		return c
	case err := <-f.done:
		f.t.Fatalf("Follow ended: %v", err)
	case <-time.After(20 * time.Second):
		f.t.Fatal("no change reported within 20 s")
	}
	return ChangeSet{}
}

// users returns the next batch's users, failing when it asks for a full reconcile.
func (f *follower) users() []string {
	f.t.Helper()
	c := f.next()
	if c.Full {
		f.t.Fatalf("batch asks for a full reconcile, want named users: %+v", c)
	}
	return c.Users
}

// ldapAdmin is a connection bound as the rootdn, for writes.
func ldapAdmin(t *testing.T, s *testenv.Slapd) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Bind(s.AdminDN, s.AdminPassword); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func modify(t *testing.T, c *ldap.Conn, dn string, f func(*ldap.ModifyRequest)) {
	t.Helper()
	m := ldap.NewModifyRequest(dn, nil)
	f(m)
	if err := c.Modify(m); err != nil {
		t.Fatalf("modify %s: %v", dn, err)
	}
}

func TestLDAPSyncreplReportsWhoEachChangeAffects(t *testing.T) {
	s := testenv.StartSlapd(t, testenv.SlapdOptions{
		SeedLDIF: testenv.OpenLDAPSeed("dc=example,dc=com", testenv.OrgSeed{Users: 30}),
		Syncprov: true,
	})
	l := newTestLDAP(t, slapdConfig(s))
	snap, err := l.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	id := func(name string) string { return userByName(t, snap, name).ID }
	people, groups := "ou=people,"+s.Suffix, "ou=groups,"+s.Suffix
	udn := func(i int) string { return fmt.Sprintf("uid=%s,%s", testenv.SeedUserName(i), people) }
	admin := ldapAdmin(t, s)

	f := follow(t, l, nil)
	first := f.next()
	if !first.Ready || !first.Full || len(first.Cookie) == 0 {
		t.Fatalf("first batch = %+v, want Ready and Full (no cookie yet) with a cookie", first)
	}
	cookie := first.Cookie

	// a phone number
	modify(t, admin, udn(5), func(m *ldap.ModifyRequest) { m.Replace("telephoneNumber", []string{"+1 555 999"}) })
	c := f.next()
	if !slices.Equal(c.Users, []string{id("user0005")}) || c.Full || c.Ready {
		t.Fatalf("phone change: %+v, want user0005 only", c)
	}
	if c.Modified.IsZero() || c.At.Before(c.Modified) {
		t.Errorf("Modified %v / At %v: want the server's modifyTimestamp, not after At", c.Modified, c.At)
	}
	if string(c.Cookie) == string(cookie) {
		t.Error("cookie did not move")
	}
	// a name
	modify(t, admin, udn(6), func(m *ldap.ModifyRequest) { m.Replace("displayName", []string{"Renamed Six"}) })
	if got := f.users(); !slices.Equal(got, []string{id("user0006")}) {
		t.Fatalf("name change: %v", got)
	}
	// a new user
	add := ldap.NewAddRequest("uid=newbie,"+people, nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("uid", []string{"newbie"})
	add.Attribute("cn", []string{"New Bie"})
	add.Attribute("sn", []string{"Bie"})
	if err := admin.Add(add); err != nil {
		t.Fatal(err)
	}
	newbie := f.users()
	if len(newbie) != 1 || !uuidRE.MatchString(newbie[0]) || slices.Contains(snapIDs(snap), newbie[0]) {
		t.Fatalf("add: %v, want the new user's entryUUID", newbie)
	}
	// a group join and a leave
	modify(t, admin, "cn=level1,"+groups, func(m *ldap.ModifyRequest) { m.Add("member", []string{udn(7)}) })
	if got := f.users(); !slices.Equal(got, []string{id("user0007")}) {
		t.Fatalf("join: %v, want user0007", got)
	}
	modify(t, admin, "cn=level1,"+groups, func(m *ldap.ModifyRequest) { m.Delete("member", []string{udn(3)}) })
	if got := f.users(); !slices.Equal(got, []string{id("user0003")}) {
		t.Fatalf("leave: %v, want user0003", got)
	}
	// a nested group change: level3 (user0000, user0001, pobrien) leaves level2, so its
	// members lose level2 and level1
	modify(t, admin, "cn=level2,"+groups, func(m *ldap.ModifyRequest) { m.Delete("member", []string{"cn=level3," + groups}) })
	want := []string{id("user0000"), id("user0001"), id("pobrien")}
	slices.Sort(want)
	if got := f.users(); !slices.Equal(got, want) {
		t.Fatalf("nested change: %v, want %v", got, want)
	}
	// a user joining level3 now only changes level3 for them
	modify(t, admin, "cn=level3,"+groups, func(m *ldap.ModifyRequest) { m.Add("member", []string{udn(8)}) })
	if got := f.users(); !slices.Equal(got, []string{id("user0008")}) {
		t.Fatalf("join nested: %v", got)
	}
	// a delete
	if err := admin.Del(ldap.NewDelRequest(udn(9), nil)); err != nil {
		t.Fatal(err)
	}
	if got := f.users(); !slices.Equal(got, []string{id("user0009")}) {
		t.Fatalf("delete: %v", got)
	}
	// a group description is no change for anybody: nothing is reported, the next change is
	modify(t, admin, "cn=level1,"+groups, func(m *ldap.ModifyRequest) { m.Replace("description", []string{"x"}) })
	modify(t, admin, udn(11), func(m *ldap.ModifyRequest) { m.Replace("mobile", []string{"+1"}) })
	last := f.next()
	if !slices.Equal(last.Users, []string{id("user0011")}) {
		t.Fatalf("after a description change: %+v", last)
	}
	cookie = last.Cookie
	f.cancel()
	if err := <-f.done; err != nil {
		t.Fatalf("Follow after cancel: %v", err)
	}
	f.done <- nil // for the cleanup

	// While nobody follows: a phone change and a delete; resuming from the cookie reports
	// exactly those, in the Ready batch, without a full reconcile.
	modify(t, admin, udn(12), func(m *ldap.ModifyRequest) { m.Replace("telephoneNumber", []string{"+1 555 12"}) })
	if err := admin.Del(ldap.NewDelRequest(udn(13), nil)); err != nil {
		t.Fatal(err)
	}
	f2 := follow(t, l, cookie)
	c = f2.next()
	want = []string{id("user0012"), id("user0013")}
	slices.Sort(want)
	if !c.Ready || c.Full || !slices.Equal(c.Users, want) {
		t.Fatalf("resume: %+v, want Ready with %v", c, want)
	}
	cookie = c.Cookie

	// The server restarts: the stream breaks (the caller reconnects) and resumes from the
	// cookie; a group changed while away asks for a full reconcile (who left is not known).
	s.Restart(t)
	select {
	case err := <-f2.done:
		if err == nil {
			t.Fatal("Follow returned nil after the server went away, want an error")
		}
		f2.done <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("Follow did not notice the server restart")
	}
	admin = ldapAdmin(t, s)
	modify(t, admin, "cn=level1,"+groups, func(m *ldap.ModifyRequest) { m.Add("member", []string{udn(14)}) })
	f3 := follow(t, l, cookie)
	if c := f3.next(); !c.Ready || !c.Full {
		t.Fatalf("resume after a group change: %+v, want Ready and Full", c)
	}
	modify(t, admin, udn(15), func(m *ldap.ModifyRequest) { m.Replace("telephoneNumber", []string{"+1 555 15"}) })
	if got := f3.users(); !slices.Equal(got, []string{id("user0015")}) {
		t.Fatalf("after resume: %v", got)
	}
}

func TestLDAPFollowWithoutChangeStream(t *testing.T) {
	s := testenv.StartSlapd(t, testenv.SlapdOptions{SeedLDIF: testenv.OpenLDAPSeed("dc=example,dc=com", testenv.OrgSeed{Users: 3})})
	err := newTestLDAP(t, slapdConfig(s)).Follow(context.Background(), nil, func(ChangeSet) { t.Error("batch from a server without syncprov") })
	if !errors.Is(err, ErrNoChangeStream) {
		t.Fatalf("Follow = %v, want ErrNoChangeStream", err)
	}
}

func snapIDs(s *Snapshot) []string {
	var out []string
	for _, u := range s.Users {
		out = append(out, u.ID)
	}
	return out
}

// checkScoped reads names with ReadUsers and compares each user, and the groups it is in
// through nesting, with the full read.
func checkScoped(t *testing.T, r scopedReader, full *Snapshot, ids []string) {
	t.Helper()
	scoped, total, err := r.ReadUsers(context.Background(), append(slices.Clone(ids), "no-such-id", "00000000-0000-0000-0000-000000000000"))
	if err != nil {
		t.Fatalf("ReadUsers: %v", err)
	}
	if total != len(full.Users) {
		t.Errorf("ReadUsers says the directory has %d users, the full read found %d", total, len(full.Users))
	}
	if len(scoped.Users) != len(ids) {
		t.Fatalf("ReadUsers returned %d users, want %d", len(scoped.Users), len(ids))
	}
	for _, id := range ids {
		got, want := scoped.User(id), full.User(id)
		if got == nil {
			t.Fatalf("user %s missing from the scoped read", id)
		}
		if !reflect.DeepEqual(*got, *want) {
			t.Errorf("user %s:\n scoped %+v\n full   %+v", want.UserName, *got, *want)
		}
		if g, w := namesOf(scoped, scoped.Memberships[id]), namesOf(full, full.Memberships[id]); !slices.Equal(g, w) {
			t.Errorf("user %s is in %v (scoped), %v (full)", want.UserName, g, w)
		}
	}
}

func TestLDAPReadUsersMatchesTheFullRead(t *testing.T) {
	s := testenv.StartSlapd(t, testenv.SlapdOptions{SeedLDIF: testenv.OpenLDAPSeed("dc=example,dc=com", testenv.OrgSeed{Users: 30})})
	l := newTestLDAP(t, slapdConfig(s))
	full, err := l.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range []string{"user0000", "user0002", "user0003", "user0010", "user0020", "user0029", "pobrien"} {
		ids = append(ids, userByName(t, full, n).ID)
	}
	checkScoped(t, l, full, ids)
	checkScoped(t, l, full, ids[:1])
	// before any full read, the total is counted
	checkScoped(t, newTestLDAP(t, slapdConfig(s)), full, ids[2:4])

	// without nested groups, as the full read
	cfg := slapdConfig(s)
	no := false
	cfg.NestedGroups = &no
	flat := newTestLDAP(t, cfg)
	if full, err = flat.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkScoped(t, flat, full, ids)
}
