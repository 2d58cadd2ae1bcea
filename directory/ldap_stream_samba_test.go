package directory

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelforce/bridge/internal/testenv"
)

// TestLDAPDirSyncReportsWhoEachChangeAffects follows a fresh OU of the shared Samba DC with
// DirSync polled (change notifications ignored), and checks the scoped read against the full
// read there too.
func TestLDAPDirSyncReportsWhoEachChangeAffects(t *testing.T) {
	dc := testenv.StartSamba(t, testenv.SambaOptions{})
	base := dc.NewOU(t, "dirsync")
	const prefix = "ds-"
	dc.Add(t, testenv.ADSeed(base, prefix, testenv.OrgSeed{Users: 21}))
	cfg := LDAPConfig{URLs: []string{dc.LDAPSURL}, CAFile: dc.CAFile, Preset: PresetActiveDirectory,
		BindDN: dc.BindDN, BindPassword: dc.BindPassword, UserBaseDN: base, GroupBaseDN: base}
	l := newTestLDAP(t, cfg)
	l.SetPollInterval(50 * time.Millisecond) // the test waits for batches, not for the clock
	l.pollOnly = true                        // DirSync polled alone (notifications: below)
	full, err := l.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	id := func(name string) string {
		for _, u := range full.Users {
			if u.UserName == prefix+name {
				return u.ID
			}
		}
		t.Fatalf("no user %s", name)
		return ""
	}
	checkScoped(t, l, full, []string{id("user0000"), id("user0002"), id("user0003"), id("user0010"), id("pobrien"), id("disabled01")})

	people, groups := "OU=people,"+base, "OU=groups,"+base
	udn := func(i int) string { return fmt.Sprintf("CN=%s,%s", testenv.SeedUserName(i), people) }
	change := func(ldif string) { dc.Add(t, ldif) }

	f := follow(t, l, nil)
	if c := f.next(); !c.Ready || !c.Full || len(c.Cookie) == 0 {
		t.Fatalf("first batch = %+v, want Ready and Full with a cookie", c)
	}
	expect := func(what string, names ...string) []byte {
		t.Helper()
		var want []string
		for _, n := range names {
			want = append(want, id(n))
		}
		slices.Sort(want)
		c := f.next()
		if c.Full || !slices.Equal(c.Users, want) {
			t.Fatalf("%s: %+v, want %v", what, c, names)
		}
		return c.Cookie
	}
	change(fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: telephoneNumber\ntelephoneNumber: +1 555 999\n-\n", udn(5)))
	expect("phone", "user0005")
	change(fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: displayName\ndisplayName: Renamed Six\n-\n", udn(6)))
	expect("name", "user0006")
	change(fmt.Sprintf("dn: CN=newbie,%s\nobjectClass: user\nsAMAccountName: %snewbie\nmail: newbie@example.com\nuserAccountControl: 544\n\n", people, prefix))
	if c := f.next(); c.Full || len(c.Users) != 1 || !uuidRE.MatchString(c.Users[0]) || slices.Contains(snapIDs(full), c.Users[0]) {
		t.Fatalf("add: %+v, want the new user's objectGUID", c)
	}
	change(fmt.Sprintf("dn: CN=level1,%s\nchangetype: modify\nadd: member\nmember: %s\n-\n", groups, udn(7)))
	expect("join", "user0007")
	change(fmt.Sprintf("dn: CN=level1,%s\nchangetype: modify\ndelete: member\nmember: %s\n-\n", groups, udn(3)))
	expect("leave", "user0003")
	change(fmt.Sprintf("dn: CN=level2,%s\nchangetype: modify\ndelete: member\nmember: CN=level3,%s\n-\n", groups, groups))
	expect("nested group leaves", "user0000", "user0001", "pobrien")
	change(fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n-\n", udn(9)))
	expect("disable", "user0009")
	change(fmt.Sprintf("dn: %s\nchangetype: delete\n", udn(10)))
	c := f.next()
	if c.Full || !slices.Contains(c.Users, id("user0010")) {
		t.Fatalf("delete: %+v, want user0010 named", c)
	}
	cookie := c.Cookie
	f.cancel()
	<-f.done
	f.done <- nil

	// changes while nobody follows are reported once on resume, by name
	change(fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: telephoneNumber\ntelephoneNumber: +1 555 11\n-\n", udn(11)))
	f = follow(t, l, cookie)
	if c := f.next(); !c.Ready || c.Full || !slices.Equal(c.Users, []string{id("user0011")}) {
		t.Fatalf("resume: %+v, want Ready with user0011", c)
	}
}

// TestLDAPDirSyncWakesOnChangeNotification: with the DirSync poll interval at an hour, changes
// still arrive, one batch each: Samba AD offers AD's change notification control, and each
// notification makes the stream poll DirSync at once.
func TestLDAPDirSyncWakesOnChangeNotification(t *testing.T) {
	dc := testenv.StartSamba(t, testenv.SambaOptions{})
	base := dc.NewOU(t, "notify")
	const prefix = "nt-"
	dc.Add(t, testenv.ADSeed(base, prefix, testenv.OrgSeed{Users: 21}))
	cfg := LDAPConfig{URLs: []string{dc.LDAPSURL}, CAFile: dc.CAFile, Preset: PresetActiveDirectory,
		BindDN: dc.BindDN, BindPassword: dc.BindPassword, UserBaseDN: base, GroupBaseDN: base}
	l := newTestLDAP(t, cfg)
	l.SetPollInterval(time.Hour)
	logs := &lockedLog{}
	l.logger = slog.New(slog.NewTextHandler(logs, nil))
	full, err := l.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	id := func(name string) string {
		for _, u := range full.Users {
			if u.UserName == prefix+name {
				return u.ID
			}
		}
		t.Fatalf("no user %s", name)
		return ""
	}
	people, groups := "OU=people,"+base, "OU=groups,"+base
	udn := func(i int) string { return fmt.Sprintf("CN=%s,%s", testenv.SeedUserName(i), people) }

	f := follow(t, l, nil)
	if c := f.next(); !c.Ready || !c.Full {
		t.Fatalf("first batch = %+v, want Ready and Full", c)
	}
	if !strings.Contains(logs.String(), "ldap change notification: DirSync polls as soon as") {
		t.Fatalf("the stream does not follow change notifications:\n%s", logs.String())
	}
	for _, c := range []struct{ what, ldif, user string }{
		{"phone", fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: telephoneNumber\ntelephoneNumber: +1 555 777\n-\n", udn(5)), "user0005"},
		{"join", fmt.Sprintf("dn: CN=level1,%s\nchangetype: modify\nadd: member\nmember: %s\n-\n", groups, udn(7)), "user0007"},
		{"disable", fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n-\n", udn(9)), "user0009"},
	} {
		dc.Add(t, c.ldif)
		if got := f.next(); got.Full || !slices.Equal(got.Users, []string{id(c.user)}) {
			t.Fatalf("%s: %+v, want %s alone", c.what, got, c.user)
		}
	}
	if strings.Contains(logs.String(), "change notification ended") {
		t.Errorf("the notification search ended:\n%s", logs.String())
	}
}

// lockedLog is a log sink that a test reads while the stream writes to it.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
