package directory

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/babelforce/bridge/internal/testenv"
)

// sambaOrg is the seed organisation loaded once into the shared Samba DC.
type sambaOrg struct {
	dc   *testenv.Samba
	base string
}

var (
	sambaOrgOnce sync.Once
	sambaOrgVal  *sambaOrg
)

const sambaPrefix = "ldt-"

func startSambaOrg(t *testing.T) *sambaOrg {
	t.Helper()
	dc := testenv.StartSamba(t, testenv.SambaOptions{})
	sambaOrgOnce.Do(func() {
		base := dc.NewOU(t, "ldaptest")
		dc.Add(t, testenv.ADSeed(base, sambaPrefix, testenv.OrgSeed{Users: seedUsers}))
		sambaOrgVal = &sambaOrg{dc: dc, base: base}
	})
	if sambaOrgVal == nil {
		t.Fatal("loading the Samba seed failed in an earlier test")
	}
	return sambaOrgVal
}

func sambaConfig(o *sambaOrg) LDAPConfig {
	return LDAPConfig{
		URLs:         []string{o.dc.LDAPSURL},
		CAFile:       o.dc.CAFile,
		Preset:       PresetActiveDirectory,
		BindDN:       o.dc.BindDN,
		BindPassword: o.dc.BindPassword,
		UserBaseDN:   o.base,
		GroupBaseDN:  o.base,
	}
}

func TestLDAPSambaAD(t *testing.T) {
	o := startSambaOrg(t)
	cfg := sambaConfig(o)
	cfg.RangeSize = 500 // 1,601 members: 0-499, 500-999, 1000-1499, 1500-*
	l := newTestLDAP(t, cfg)
	ranged := 0
	l.afterPage = func(kind string, _ int) {
		if kind == "range" {
			ranged++
		}
	}
	snap, err := l.Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	// 1,600 users + pobrien + disabled01 + svc-backup (the base is the whole test OU); the
	// computer ws01$ is left out by the preset's filter.
	if got, want := len(snap.Users), seedUsers+3; got != want {
		t.Fatalf("read %d users, want %d", got, want)
	}
	for _, u := range snap.Users {
		if strings.HasSuffix(u.UserName, "$") {
			t.Errorf("computer %s read as a user", u.UserName)
		}
		if !uuidRE.MatchString(u.ID) {
			t.Fatalf("user %s id %q is not a canonical GUID", u.UserName, u.ID)
		}
	}

	t.Run("ranged member of a group over 1500", func(t *testing.T) {
		all := snap.Group(groupIDsByName(snap)["all-users"])
		if all == nil || len(all.MemberUsers) != seedUsers+1 {
			t.Fatalf("all-users has %d members, want %d", len(all.MemberUsers), seedUsers+1)
		}
		if ranged != 3 {
			t.Errorf("%d ranged reads, want 3 after the first range", ranged)
		}
		seen := map[string]bool{}
		for _, id := range all.MemberUsers {
			seen[id] = true
		}
		for i := 0; i < seedUsers; i++ {
			u := userByName(t, snap, sambaPrefix+testenv.SeedUserName(i))
			if !seen[u.ID] {
				t.Fatalf("%s missing from all-users", u.UserName)
			}
		}
	})

	t.Run("disabled account", func(t *testing.T) {
		if u := userByName(t, snap, sambaPrefix+"disabled01"); u.Active {
			t.Error("disabled01 (userAccountControl 514) read as active")
		}
		if u := userByName(t, snap, sambaPrefix+"user0001"); !u.Active {
			t.Error("user0001 (userAccountControl 544) read as inactive")
		}
	})

	t.Run("objectGUID is the canonical id", func(t *testing.T) {
		for _, name := range []string{"user0042", "pobrien"} {
			u := userByName(t, snap, sambaPrefix+name)
			if want := o.dc.ObjectGUID(t, sambaPrefix+name); u.ID != want {
				t.Errorf("%s: id %s, samba-tool says %s", name, u.ID, want)
			}
		}
		if want := o.dc.ObjectGUID(t, sambaPrefix+"level2"); groupIDsByName(snap)["level2"] != want {
			t.Errorf("level2: id %s, samba-tool says %s", groupIDsByName(snap)["level2"], want)
		}
	})

	t.Run("attributes", func(t *testing.T) {
		u := userByName(t, snap, sambaPrefix+"user0042")
		if u.PrimaryEmail() != "user0042@example.com" || u.PrimaryPhone() != "+1 555 010042" || u.DisplayName != "User 0042" {
			t.Errorf("user0042 = %+v", u)
		}
		if got := u.Attr("userPrincipalName"); got != sambaPrefix+"user0042@example.test" {
			t.Errorf("userPrincipalName = %q", got)
		}
		if got := u.Attr("objectGUID"); got != u.ID {
			t.Errorf("raw objectGUID = %q, want the canonical %q", got, u.ID)
		}
	})

	t.Run("lookup of one user", func(t *testing.T) {
		for _, name := range []string{"user0010", "pobrien", "USER0002"} {
			one, err := l.LookupUser(context.Background(), sambaPrefix+name)
			if err != nil {
				t.Fatal(err)
			}
			if len(one.Users) != 1 {
				t.Fatalf("LookupUser(%s) = %d users", name, len(one.Users))
			}
			id := one.Users[0].ID
			if got, want := namesOf(one, one.Memberships[id]), namesOf(snap, snap.Memberships[id]); !slices.Equal(got, want) {
				t.Errorf("LookupUser(%s) groups %v, full read %v", name, got, want)
			}
		}
	})

	t.Run("nested groups agree with AD's in-chain rule", func(t *testing.T) {
		conn, err := o.dc.Dial()
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.Bind(o.dc.BindDN, o.dc.BindPassword); err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{
			"user0000": {"all-users", "level1", "level2", "level3"},
			"pobrien":  {"all-users", "level1", "level2", "level3"},
			"user0002": {"all-users", "level1", "level2"},
			"user0003": {"all-users", "level1"},
			"user0010": {"all-users", "cycle-a", "cycle-b", "cycle-c"},
			"user0012": {"all-users", "cycle-a", "cycle-b", "cycle-c"},
			"user0020": {"all-users", "outsiders"},
			"user0500": {"all-users"},
		}
		for name, groups := range want {
			u := userByName(t, snap, sambaPrefix+name)
			got := namesOf(snap, snap.Memberships[u.ID])
			if !slices.Equal(got, groups) {
				t.Errorf("%s is in %v, want %v", name, got, groups)
			}
			// 1.2.840.113556.1.4.1941: LDAP_MATCHING_RULE_IN_CHAIN, AD's own transitive expansion.
			res, err := conn.Search(ldap.NewSearchRequest(o.base, ldap.ScopeWholeSubtree, 0, 0, 0, false,
				"(&(objectClass=group)(member:1.2.840.113556.1.4.1941:="+ldap.EscapeFilter(u.DN)+"))", []string{"cn"}, nil))
			if err != nil {
				t.Fatal(err)
			}
			var fromAD []string
			for _, e := range res.Entries {
				fromAD = append(fromAD, e.GetAttributeValue("cn"))
			}
			slices.Sort(fromAD)
			if !slices.Equal(got, fromAD) {
				t.Errorf("%s: bridge says %v, AD's in-chain rule says %v", name, got, fromAD)
			}
		}
	})
}

func TestLDAPSambaADFromDomainRoot(t *testing.T) {
	o := startSambaOrg(t)
	cfg := sambaConfig(o)
	cfg.UserBaseDN, cfg.GroupBaseDN = "", "" // defaultNamingContext; AD answers with references to its other partitions
	snap, err := newTestLDAP(t, cfg).Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	userByName(t, snap, "Guest") // a built-in account outside the test's OU
	userByName(t, snap, sambaPrefix+"user1599")
	for _, u := range snap.Users {
		if strings.EqualFold(u.UserName, "Administrator") {
			t.Errorf("the bind DN %s is a user of the snapshot", cfg.BindDN)
		}
	}
	if len(snap.Users) < seedUsers+3 {
		t.Fatalf("read %d users", len(snap.Users))
	}
}

func TestLDAPSambaADErrors(t *testing.T) {
	o := startSambaOrg(t)
	t.Run("plain ldap refuses simple bind", func(t *testing.T) {
		cfg := sambaConfig(o)
		cfg.URLs = []string{o.dc.URL}
		err := newTestLDAP(t, cfg).Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), "use ldaps:// or start_tls") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		cfg := sambaConfig(o)
		cfg.BindPassword = "nope"
		err := newTestLDAP(t, cfg).Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), "invalid credentials (49): check bind_dn and the bind password") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestLDAPSambaADDefaultRangeAndEarlyStop(t *testing.T) {
	o := startSambaOrg(t)
	t.Run("default range size 1500", func(t *testing.T) {
		l := newTestLDAP(t, sambaConfig(o))
		ranged := 0
		l.afterPage = func(kind string, _ int) {
			if kind == "range" {
				ranged++
			}
		}
		snap, err := l.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if all := snap.Group(groupIDsByName(snap)["all-users"]); len(all.MemberUsers) != seedUsers+1 || ranged != 1 {
			t.Fatalf("all-users has %d members after %d ranged reads", len(all.MemberUsers), ranged)
		}
	})

	t.Run("a ranged read that stops early is an error", func(t *testing.T) {
		dc := o.dc
		base := dc.NewOU(t, "shrink")
		dc.Add(t, testenv.ADSeed(base, "shr-", testenv.OrgSeed{Users: 30}))
		cfg := sambaConfig(o)
		cfg.UserBaseDN, cfg.GroupBaseDN = base, base
		cfg.RangeSize = 10
		l := newTestLDAP(t, cfg)
		// After the groups page (all-users: 31 members, values 0-9 read), all but five members
		// leave: the next range (10-19) no longer exists.
		l.afterPage = func(kind string, _ int) {
			if kind != "groups" {
				return
			}
			conn, err := dc.Dial()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			if err := conn.Bind(dc.BindDN, dc.BindPassword); err != nil {
				t.Error(err)
				return
			}
			var gone []string
			for i := 5; i < 30; i++ {
				gone = append(gone, "CN="+testenv.SeedUserName(i)+",OU=people,"+base)
			}
			mod := ldap.NewModifyRequest("CN=all-users,OU=groups,"+base, nil)
			mod.Delete("member", gone)
			if err := conn.Modify(mod); err != nil {
				t.Error(err)
			}
		}
		snap, err := l.Read(context.Background())
		if snap != nil || !errors.Is(err, ErrIncomplete) {
			if snap != nil {
				g := snap.Group(groupIDsByName(snap)["all-users"])
				t.Logf("all-users: %d users", len(g.MemberUsers))
			}
			t.Fatalf("snap = %v, err = %v; want ErrIncomplete", snap != nil, err)
		}
		if !strings.Contains(err.Error(), "changed during the read") {
			t.Errorf("error does not say why: %v", err)
		}
	})

	t.Run("a group deleted between ranges is an error", func(t *testing.T) {
		dc := o.dc
		base := dc.NewOU(t, "vanish")
		dc.Add(t, testenv.ADSeed(base, "van-", testenv.OrgSeed{Users: 30}))
		cfg := sambaConfig(o)
		cfg.UserBaseDN, cfg.GroupBaseDN = base, base
		cfg.RangeSize = 10
		l := newTestLDAP(t, cfg)
		l.afterPage = func(kind string, _ int) {
			if kind == "groups" {
				dc.Add(t, "dn: CN=all-users,OU=groups,"+base+"\nchangetype: delete\n\n")
			}
		}
		snap, err := l.Read(context.Background())
		if snap != nil || !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "disappeared") {
			t.Fatalf("snap = %v, err = %v; want ErrIncomplete", snap != nil, err)
		}
	})
}
