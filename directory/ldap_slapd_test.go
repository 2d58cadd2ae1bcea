package directory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/babelforce/bridge/internal/testenv"
)

const seedUsers = 1600

// startOrgSlapd starts slapd with the seed organisation (1,600 users, more than the server's
// size limit of 500 for unpaged searches).
func startOrgSlapd(t *testing.T, withTLS bool) *testenv.Slapd {
	t.Helper()
	return testenv.StartSlapd(t, testenv.SlapdOptions{
		SeedLDIF: testenv.OpenLDAPSeed("dc=example,dc=com", testenv.OrgSeed{Users: seedUsers}),
		TLS:      withTLS,
	})
}

func slapdConfig(s *testenv.Slapd) LDAPConfig {
	return LDAPConfig{
		URLs:         []string{s.URL},
		Preset:       PresetOpenLDAP,
		BindDN:       s.BindDN,
		BindPassword: s.BindPassword,
		UserBaseDN:   "ou=people," + s.Suffix,
		GroupBaseDN:  "ou=groups," + s.Suffix,
		DialTimeout:  5 * time.Second,
	}
}

func newTestLDAP(t *testing.T, cfg LDAPConfig) *LDAPSource {
	t.Helper()
	l, err := NewLDAP(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("NewLDAP: %v", err)
	}
	return l
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func groupIDsByName(s *Snapshot) map[string]string {
	m := map[string]string{}
	for _, g := range s.Groups {
		m[g.Name] = g.ID
	}
	return m
}

func userByName(t *testing.T, s *Snapshot, name string) *User {
	t.Helper()
	for i := range s.Users {
		if s.Users[i].UserName == name {
			return &s.Users[i]
		}
	}
	t.Fatalf("user %q not in snapshot", name)
	return nil
}

func namesOf(s *Snapshot, ids []string) []string {
	var out []string
	for _, id := range ids {
		if g := s.Group(id); g != nil {
			out = append(out, g.Name)
		}
	}
	slices.Sort(out)
	return out
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestLDAPOpenLDAPReadsEveryUserWithPaging(t *testing.T) {
	s := startOrgSlapd(t, false)
	l := newTestLDAP(t, slapdConfig(s))
	pages := map[string]int{}
	l.afterPage = func(kind string, _ int) { pages[kind]++ }
	snap, err := l.Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if got, want := len(snap.Users), seedUsers+1; got != want { // + Pat O'Brien; svc-backup is outside the base
		t.Fatalf("read %d users, want %d", got, want)
	}
	if got, want := len(snap.Groups), len(testenv.SeedGroups); got != want {
		t.Fatalf("read %d groups, want %d", got, want)
	}
	if pages["users"] != 4 { // 1,601 users in pages of 500
		t.Errorf("users read in %d pages, want 4", pages["users"])
	}
	if snap.Source != s.URL {
		t.Errorf("Source = %q, want %q", snap.Source, s.URL)
	}
	seen := map[string]bool{}
	for _, u := range snap.Users {
		if !uuidRE.MatchString(u.ID) {
			t.Fatalf("user %s id %q is not an entryUUID", u.UserName, u.ID)
		}
		if seen[u.UserName] {
			t.Fatalf("user %s read twice", u.UserName)
		}
		seen[u.UserName] = true
		if !u.Active {
			t.Errorf("user %s inactive; OpenLDAP has no disabled flag by default", u.UserName)
		}
	}
	for i := 0; i < seedUsers; i++ {
		if !seen[testenv.SeedUserName(i)] {
			t.Fatalf("user %s missing", testenv.SeedUserName(i))
		}
	}
	if seen["svc-backup"] {
		t.Error("svc-backup (outside user_base_dn) was read")
	}

	u := userByName(t, snap, "user0042")
	if u.DisplayName != "User 0042" || u.GivenName != "User" || u.FamilyName != "0042" {
		t.Errorf("names = %q/%q/%q", u.DisplayName, u.GivenName, u.FamilyName)
	}
	if u.PrimaryEmail() != "user0042@example.com" {
		t.Errorf("email = %q", u.PrimaryEmail())
	}
	wantPhones := []Phone{{Value: "+1 555 010042", Type: "work", Primary: true}, {Value: "+1 555 020042", Type: "mobile"}}
	if !slices.Equal(u.Phones, wantPhones) {
		t.Errorf("phones = %+v, want %+v", u.Phones, wantPhones)
	}
	if u.DN != "uid=user0042,ou=people,dc=example,dc=com" {
		t.Errorf("DN = %q", u.DN)
	}
	if u.Attr("entryUUID") != u.ID || u.Attr("uid") != "user0042" {
		t.Errorf("raw attributes = %v", u.Attributes)
	}
	if all := snap.Group(groupIDsByName(snap)["all-users"]); all == nil || len(all.MemberUsers) != seedUsers+1 {
		t.Errorf("all-users has %d members, want %d", len(all.MemberUsers), seedUsers+1)
	}
}

func TestLDAPOpenLDAPNestedGroupsAndCycle(t *testing.T) {
	s := startOrgSlapd(t, false)
	snap, err := newTestLDAP(t, slapdConfig(s)).Read(context.Background())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	want := map[string][]string{
		"user0000":  {"all-users", "level1", "level2", "level3"},
		"user0001":  {"all-users", "level1", "level2", "level3"},
		"pobrien":   {"all-users", "level1", "level2", "level3"}, // member DN spelt differently
		"user0002":  {"all-users", "level1", "level2"},
		"user0003":  {"all-users", "level1"},
		"user0010":  {"all-users", "cycle-a", "cycle-b", "cycle-c"},
		"user0011":  {"all-users", "cycle-a", "cycle-b", "cycle-c"},
		"user0012":  {"all-users", "cycle-a", "cycle-b", "cycle-c"},
		"user0020":  {"all-users", "outsiders"},
		"user0099":  {"all-users"},
		"user01599": nil,
	}
	delete(want, "user01599")
	for name, groups := range want {
		u := userByName(t, snap, name)
		if got := namesOf(snap, snap.Memberships[u.ID]); !slices.Equal(got, groups) {
			t.Errorf("%s is in %v, want %v", name, got, groups)
		}
	}
	ids := groupIDsByName(snap)
	level1 := snap.Group(ids["level1"])
	if !slices.Equal(level1.MemberGroups, []string{ids["level2"]}) || len(level1.MemberUsers) != 1 {
		t.Errorf("level1 = %+v", level1)
	}
	if out := snap.Group(ids["outsiders"]); len(out.MemberUsers) != 1 {
		t.Errorf("outsiders has %d members, want 1 (svc-backup is outside the user base)", len(out.MemberUsers))
	}
	// slapd's dynlist overlay computes transitive memberOf on its own: an independent oracle.
	conn, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Bind(s.BindDN, s.BindPassword); err != nil {
		t.Fatal(err)
	}
	res, err := conn.SearchWithPaging(ldap.NewSearchRequest("ou=people,"+s.Suffix, ldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(|(uid=user000*)(uid=user001*)(uid=pobrien)(uid=user0020))", []string{"uid", "memberOf"}, nil), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) < 20 {
		t.Fatalf("oracle returned %d entries", len(res.Entries))
	}
	for _, e := range res.Entries {
		var fromServer []string
		for _, dn := range e.GetAttributeValues("memberOf") {
			rdn := strings.SplitN(dn, ",", 2)[0]
			fromServer = append(fromServer, strings.TrimPrefix(rdn, "cn="))
		}
		slices.Sort(fromServer)
		u := userByName(t, snap, e.GetAttributeValue("uid"))
		if got := namesOf(snap, snap.Memberships[u.ID]); !slices.Equal(got, fromServer) {
			t.Errorf("%s: bridge says %v, slapd's memberOf says %v", u.UserName, got, fromServer)
		}
	}

	// nested_groups: false keeps only direct memberships.
	cfg := slapdConfig(s)
	off := false
	cfg.NestedGroups = &off
	flat, err := newTestLDAP(t, cfg).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u := userByName(t, flat, "user0000")
	if got := namesOf(flat, flat.Memberships[u.ID]); !slices.Equal(got, []string{"all-users", "level3"}) {
		t.Errorf("without nesting user0000 is in %v", got)
	}
}

func TestLDAPOpenLDAPWithoutPagingIsIncomplete(t *testing.T) {
	s := startOrgSlapd(t, false)
	cfg := slapdConfig(s)
	cfg.PageSize = -1
	snap, err := newTestLDAP(t, cfg).Read(context.Background())
	if snap != nil {
		t.Fatalf("got a snapshot of %d users from an incomplete read", len(snap.Users))
	}
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("err = %v, want ErrIncomplete", err)
	}
	if !strings.Contains(err.Error(), "size limit exceeded (4)") || !strings.Contains(err.Error(), "page_size") {
		t.Errorf("error does not say what happened and what to do: %v", err)
	}
}

func TestLDAPConnectionCutMidSearchIsIncomplete(t *testing.T) {
	s := startOrgSlapd(t, false)
	cfg := slapdConfig(s)
	cfg.PageSize = 100
	l := newTestLDAP(t, cfg)
	l.afterPage = func(kind string, page int) {
		if kind == "users" && page == 2 {
			s.Kill()
		}
	}
	snap, err := l.Read(context.Background())
	if snap != nil {
		t.Fatalf("got a snapshot of %d users from a cut read", len(snap.Users))
	}
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("err = %v, want ErrIncomplete", err)
	}
	t.Logf("error: %v", err)
}

func TestLDAPContextCancelledMidSearchIsIncomplete(t *testing.T) {
	s := startOrgSlapd(t, false)
	cfg := slapdConfig(s)
	cfg.PageSize = 100
	l := newTestLDAP(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l.afterPage = func(kind string, page int) {
		if kind == "users" && page == 3 {
			cancel()
		}
	}
	snap, err := l.Read(ctx)
	if snap != nil || !errors.Is(err, ErrIncomplete) || !errors.Is(err, context.Canceled) {
		t.Fatalf("snap = %v, err = %v; want nil and ErrIncomplete + context.Canceled", snap != nil, err)
	}
}

func TestLDAPBindAndReachabilityErrors(t *testing.T) {
	s := startOrgSlapd(t, false)

	t.Run("wrong password", func(t *testing.T) {
		cfg := slapdConfig(s)
		cfg.BindPassword = "wrong"
		_, err := newTestLDAP(t, cfg).Read(context.Background())
		want := "ldap bind as " + s.BindDN + " failed: invalid credentials (49): check bind_dn and the bind password"
		if err == nil || err.Error() != want {
			t.Fatalf("err = %v\nwant %s", err, want)
		}
		if errors.Is(err, ErrIncomplete) {
			t.Error("a bind failure is a configuration error, not an incomplete read")
		}
		if err := newTestLDAP(t, cfg).Check(context.Background()); err == nil || err.Error() != want {
			t.Fatalf("Check: %v", err)
		}
	})

	dead1 := fmt.Sprintf("ldap://127.0.0.1:%d", testenv.FreePort(t))
	dead2 := fmt.Sprintf("ldap://127.0.0.1:%d", testenv.FreePort(t))
	t.Run("unreachable", func(t *testing.T) {
		cfg := slapdConfig(s)
		cfg.URLs = []string{dead1, dead2}
		_, err := newTestLDAP(t, cfg).Read(context.Background())
		if err == nil || !strings.Contains(err.Error(), "could not connect to any server (tried 2)") ||
			!strings.Contains(err.Error(), dead1) || !strings.Contains(err.Error(), dead2) {
			t.Fatalf("err = %v, want one naming %s and %s", err, dead1, dead2)
		}
	})

	t.Run("failover", func(t *testing.T) {
		cfg := slapdConfig(s)
		cfg.URLs = []string{dead1, s.URL}
		l := newTestLDAP(t, cfg)
		if err := l.Check(context.Background()); err != nil {
			t.Fatalf("Check: %v", err)
		}
		snap, err := l.Read(context.Background())
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if snap.Source != s.URL || len(snap.Users) != seedUsers+1 {
			t.Fatalf("read %d users from %s", len(snap.Users), snap.Source)
		}
	})

	t.Run("failover past a silent server", func(t *testing.T) {
		// Accepts TCP connections and never answers.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		silent := "ldap://" + ln.Addr().String()
		cfg := slapdConfig(s)
		cfg.URLs = []string{silent, s.URL}
		cfg.DialTimeout = 300 * time.Millisecond
		snap, err := newTestLDAP(t, cfg).Read(context.Background())
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if snap.Source != s.URL {
			t.Fatalf("read from %s", snap.Source)
		}
		cfg.URLs = []string{silent}
		err = newTestLDAP(t, cfg).Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), silent) || !strings.Contains(err.Error(), "timed out") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("no such base", func(t *testing.T) {
		cfg := slapdConfig(s)
		cfg.UserBaseDN = "ou=nobody,dc=example,dc=com"
		_, err := newTestLDAP(t, cfg).Read(context.Background())
		if err == nil || !strings.Contains(err.Error(), "does not exist (32)") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("default base from the naming context", func(t *testing.T) {
		cfg := slapdConfig(s)
		cfg.UserBaseDN, cfg.GroupBaseDN = "", ""
		snap, err := newTestLDAP(t, cfg).Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// svc-backup is now inside the base, and so a member of outsiders.
		if len(snap.Users) != seedUsers+2 {
			t.Fatalf("read %d users", len(snap.Users))
		}
		if out := snap.Group(groupIDsByName(snap)["outsiders"]); len(out.MemberUsers) != 2 {
			t.Errorf("outsiders = %+v", out)
		}
	})
}

func TestLDAPOpenLDAPTLS(t *testing.T) {
	s := startOrgSlapd(t, true)
	cases := []struct {
		name     string
		url      string
		startTLS bool
		ca       bool
		insecure bool
		wantErr  string
	}{
		{name: "ldaps with CA", url: s.LDAPSURL, ca: true},
		{name: "starttls with CA", url: s.URL, startTLS: true, ca: true},
		{name: "ldaps without CA", url: s.LDAPSURL, wantErr: "certificate"},
		{name: "starttls without CA", url: s.URL, startTLS: true, wantErr: "certificate"},
		{name: "ldaps insecure by name", url: s.LDAPSURL, insecure: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := slapdConfig(s)
			cfg.URLs = []string{c.url}
			cfg.StartTLS = c.startTLS
			cfg.InsecureSkipVerify = c.insecure
			if c.ca {
				cfg.CAFile = s.CAFile
			}
			l := newTestLDAP(t, cfg)
			err := l.Check(context.Background())
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), "ca_file") {
					t.Fatalf("err = %v, want a %s error that names ca_file", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			snap, err := l.Read(context.Background())
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if len(snap.Users) != seedUsers+1 {
				t.Fatalf("read %d users", len(snap.Users))
			}
		})
	}
	t.Run("wrong host name", func(t *testing.T) {
		cfg := slapdConfig(s)
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.LDAPSURL, "ldaps://"))
		cfg.URLs = []string{"ldaps://127.0.0.1:" + port}
		cfg.CAFile = s.CAFile
		cfg.TLSServerName = "ldap.example.org"
		err := newTestLDAP(t, cfg).Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), "tls_server_name") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestLDAPDisabledFlagAndMemberOfMode(t *testing.T) {
	seed := testenv.OpenLDAPSeed("dc=example,dc=com", testenv.OrgSeed{Users: 30})
	s := testenv.StartSlapd(t, testenv.SlapdOptions{SeedLDIF: seed})
	cfg := slapdConfig(s)
	// employeeType "disabled" marks a disabled account in this directory.
	cfg.Attributes.Disabled = "employeeType"
	cfg.Attributes.DisabledValues = []string{"Disabled"}
	conn, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Bind(s.AdminDN, s.AdminPassword); err != nil {
		t.Fatal(err)
	}
	mod := ldap.NewModifyRequest("uid=user0005,ou=people,dc=example,dc=com", nil)
	mod.Add("employeeType", []string{"disabled"})
	if err := conn.Modify(mod); err != nil {
		t.Fatal(err)
	}
	snap, err := newTestLDAP(t, cfg).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range snap.Users {
		if u.Active == (u.UserName == "user0005") {
			t.Errorf("%s active = %v", u.UserName, u.Active)
		}
	}
	// member: "-" takes memberships from the users' memberOf (slapd's is transitive).
	cfg.Attributes.Member = "-"
	snap, err = newTestLDAP(t, cfg).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u := userByName(t, snap, "user0001")
	if got := namesOf(snap, snap.Memberships[u.ID]); !slices.Equal(got, []string{"all-users", "level1", "level2", "level3"}) {
		t.Errorf("user0001 via memberOf: %v", got)
	}
}

func TestLDAPReferralIsIncomplete(t *testing.T) {
	seed := testenv.OpenLDAPSeed("dc=example,dc=com", testenv.OrgSeed{Users: 30}) +
		"dn: ou=remote,ou=people,dc=example,dc=com\nobjectClass: referral\nobjectClass: extensibleObject\nou: remote\nref: ldap://other.example.com/ou=remote,ou=people,dc=example,dc=com\n\n"
	s := testenv.StartSlapd(t, testenv.SlapdOptions{SeedLDIF: seed})
	snap, err := newTestLDAP(t, slapdConfig(s)).Read(context.Background())
	if snap != nil || !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "ldap://other.example.com/") {
		t.Fatalf("snap = %v, err = %v; want ErrIncomplete naming the referral", snap != nil, err)
	}
}

func TestLDAPLookupUser(t *testing.T) {
	s := testenv.StartSlapd(t, testenv.SlapdOptions{SeedLDIF: testenv.OpenLDAPSeed("dc=example,dc=com", testenv.OrgSeed{Users: 30})})
	l := newTestLDAP(t, slapdConfig(s))
	full, err := l.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"USER0000", "pobrien", "user0010", "user0012", "user0020", "user0029"} {
		one, err := l.LookupUser(context.Background(), name)
		if err != nil {
			t.Fatalf("LookupUser(%s): %v", name, err)
		}
		if len(one.Users) != 1 || !strings.EqualFold(one.Users[0].UserName, name) {
			t.Fatalf("LookupUser(%s) = %d users", name, len(one.Users))
		}
		u := one.Users[0]
		want := full.User(u.ID)
		if want == nil || u.DisplayName != want.DisplayName || u.PrimaryEmail() != want.PrimaryEmail() {
			t.Errorf("LookupUser(%s) = %+v, full read has %+v", name, u, want)
		}
		if got, all := namesOf(one, one.Memberships[u.ID]), namesOf(full, full.Memberships[u.ID]); !slices.Equal(got, all) || len(got) == 0 {
			t.Errorf("LookupUser(%s) groups %v, full read %v", name, got, all)
		}
		if !slices.Equal(u.Groups, full.User(u.ID).Groups) {
			t.Errorf("LookupUser(%s) direct groups %v, full read %v", name, u.Groups, full.User(u.ID).Groups)
		}
	}
	// Input is escaped: a wildcard or a filter fragment matches nobody.
	for _, name := range []string{"*", "user00*", "user0001)(uid=*", "nobody"} {
		one, err := l.LookupUser(context.Background(), name)
		if err != nil || len(one.Users) != 0 || len(one.Groups) != 0 {
			t.Errorf("LookupUser(%q) = %v users, err %v; want none", name, one, err)
		}
	}
}

// BenchmarkLDAPReadSlapd measures a full read of 1,601 users and 8 groups (pages of 500).
func BenchmarkLDAPReadSlapd(b *testing.B) {
	s := testenv.StartSlapd(b, testenv.SlapdOptions{SeedLDIF: testenv.OpenLDAPSeed("dc=example,dc=com", testenv.OrgSeed{Users: seedUsers})})
	l, err := NewLDAP(slapdConfig(s), nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := l.Read(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// startProxy forwards TCP connections to the server of ldapURL and returns its own URL;
// limit(i) says what the i-th connection (from 0) gets: -1 everything, 0 nothing (closed at
// once), n > 0 the first n bytes of the server's answers, then the connection is cut.
func startProxy(t *testing.T, ldapURL string, limit func(i int) int64) (proxyURL string, conns *atomic.Int32) {
	t.Helper()
	u, err := url.Parse(ldapURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = &atomic.Int32{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := limit(int(conns.Add(1) - 1))
			if n == 0 {
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", u.Host)
			if err != nil {
				c.Close()
				continue
			}
			go func() {
				defer c.Close()
				defer s.Close()
				go func() { _, _ = io.Copy(s, c) }()
				var from io.Reader = s
				if n > 0 {
					from = io.LimitReader(s, n)
				}
				_, _ = io.Copy(c, from)
			}()
		}
	}()
	return "ldap://" + ln.Addr().String(), conns
}

// TestLDAPGroupsOnASecondConnection: the groups are read on a second connection while the
// users are read on the first, giving the snapshot one connection gives; a second
// connection the server refuses makes the groups wait for the users on the first; one cut
// in the middle of the groups makes the read incomplete.
func TestLDAPGroupsOnASecondConnection(t *testing.T) {
	s := startOrgSlapd(t, false)
	read := func(limit func(int) int64) (*Snapshot, int32, error) {
		t.Helper()
		proxy, conns := startProxy(t, s.URL, limit)
		cfg := slapdConfig(s)
		cfg.URLs = []string{proxy}
		cfg.PageSize = 100
		snap, err := newTestLDAP(t, cfg).Read(context.Background())
		if snap != nil {
			snap.Source, snap.ReadAt = "", time.Time{}
		}
		return snap, conns.Load(), err
	}

	both, n, err := read(func(int) int64 { return -1 })
	if err != nil || n != 2 {
		t.Fatalf("read on %d connections: %v", n, err)
	}
	if len(both.Users) != seedUsers+1 || len(both.Groups) == 0 || len(both.Memberships) == 0 {
		t.Fatalf("read %d users, %d groups, %d memberships", len(both.Users), len(both.Groups), len(both.Memberships))
	}

	one, n, err := read(func(i int) int64 { return map[bool]int64{true: -1, false: 0}[i == 0] })
	if err != nil || n != 2 {
		t.Fatalf("read with the second connection refused (%d asked): %v", n, err)
	}
	if !reflect.DeepEqual(one, both) {
		t.Fatalf("one connection read another directory than two: %d users, %d groups", len(one.Users), len(one.Groups))
	}

	// the groups' connection gets its bind and root answers and part of the groups
	cut, _, err := read(func(i int) int64 { return map[bool]int64{true: -1, false: 20_000}[i == 0] })
	if cut != nil || !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "read groups") {
		t.Fatalf("snap = %v, err = %v; want ErrIncomplete reading groups", cut != nil, err)
	}
}
