package testenv

import (
	"fmt"
	"strings"
)

// OrgSeed describes the test organisation that OpenLDAPSeed and ADSeed write. Names are
// fixed so tests can assert on them.
//
//   - users user0000 … user{N-1} under the people OU; every user has mail
//     userNNNN@example.com and telephoneNumber +1 555 01NNNN; even users also have a mobile.
//   - "Pat O'Brien, Jr." (user name pobrien), whose DN holds an escaped comma; groups refer to
//     it in another spelling (hex escape, other case, spaces).
//   - groups under the groups OU:
//     all-users ∋ every user;
//     level1 ∋ level2 ∋ level3 (nested three deep); level3 ∋ user0000, user0001, pobrien;
//     level2 ∋ user0002; level1 ∋ user0003;
//     cycle-a ∋ cycle-b ∋ cycle-c ∋ cycle-a; cycle-a ∋ user0010, cycle-b ∋ user0011,
//     cycle-c ∋ user0012;
//     outsiders ∋ user0020 and svc-backup, a user outside the people OU (not read by a
//     source whose user base is the people OU).
type OrgSeed struct {
	Users int
}

// Group names of the seed.
var SeedGroups = []string{"all-users", "level1", "level2", "level3", "cycle-a", "cycle-b", "cycle-c", "outsiders"}

// SeedUserName returns the user name of user i.
func SeedUserName(i int) string { return fmt.Sprintf("user%04d", i) }

// OpenLDAPSeed returns LDIF (for slapadd) of the organisation under suffix, with OUs
// ou=people, ou=groups and ou=services, inetOrgPerson users (RDN uid) and groupOfNames groups.
func OpenLDAPSeed(suffix string, o OrgSeed) string {
	var b strings.Builder
	for _, ou := range []string{"people", "groups", "services"} {
		fmt.Fprintf(&b, "dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n", ou, suffix, ou)
	}
	people := "ou=people," + suffix
	userDN := func(i int) string { return fmt.Sprintf("uid=%s,%s", SeedUserName(i), people) }
	for i := 0; i < o.Users; i++ {
		n := SeedUserName(i)
		fmt.Fprintf(&b, "dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: User %04d\nsn: %04d\ngivenName: User\ndisplayName: User %04d\nmail: %s@example.com\ntelephoneNumber: +1 555 01%04d\n",
			userDN(i), n, i, i, i, n, i)
		if i%2 == 0 {
			fmt.Fprintf(&b, "mobile: +1 555 02%04d\n", i)
		}
		b.WriteString("\n")
	}
	patDN := `cn=Pat O'Brien\, Jr.,` + people
	patOther := `CN=Pat O'Brien\2c Jr., OU=People,` + strings.ToUpper(suffix)
	fmt.Fprintf(&b, "dn: %s\nobjectClass: inetOrgPerson\nuid: pobrien\ncn: Pat O'Brien, Jr.\nsn: O'Brien\ngivenName: Pat\nmail: pat@example.com\n\n", patDN)
	svcDN := "uid=svc-backup,ou=services," + suffix
	fmt.Fprintf(&b, "dn: %s\nobjectClass: inetOrgPerson\nuid: svc-backup\ncn: Backup\nsn: Backup\n\n", svcDN)
	groups := "ou=groups," + suffix
	gdn := func(name string) string { return fmt.Sprintf("cn=%s,%s", name, groups) }
	group := func(name string, members ...string) {
		fmt.Fprintf(&b, "dn: %s\nobjectClass: groupOfNames\ncn: %s\n", gdn(name), name)
		for _, m := range members {
			fmt.Fprintf(&b, "member: %s\n", m)
		}
		b.WriteString("\n")
	}
	all := make([]string, 0, o.Users+1)
	for i := 0; i < o.Users; i++ {
		all = append(all, userDN(i))
	}
	all = append(all, patDN)
	group("all-users", all...)
	group("level1", gdn("level2"), userDN(3))
	group("level2", gdn("level3"), userDN(2))
	group("level3", userDN(0), userDN(1), patOther)
	group("cycle-a", gdn("cycle-b"), userDN(10))
	group("cycle-b", gdn("cycle-c"), userDN(11))
	group("cycle-c", gdn("cycle-a"), userDN(12))
	group("outsiders", userDN(20), svcDN)
	return b.String()
}

// ADSeed returns LDIF (for Samba.Add) of the same organisation for Active Directory under the
// existing container base (e.g. an OU from Samba.NewOU): OU=people, OU=groups, OU=services,
// users CN=userNNNN with sAMAccountName prefix+"userNNNN" and userAccountControl 544
// (enabled, no password), plus:
//   - prefix+"disabled01", userAccountControl 514 (ACCOUNTDISABLE);
//   - a computer prefix+"ws01$" in OU=people, which the AD user filter must leave out;
//   - the groups of OpenLDAPSeed (sAMAccountName prefix+name), all-users holding every user
//     (more than AD's 1,500 values per read when Users > 1,500, so it must be read in ranges).
//
// AD checks that members exist, so groups come after users and the cycle is closed by a
// modify at the end. sAMAccountNames are unique per domain: give each seed its own prefix.
func ADSeed(base, prefix string, o OrgSeed) string {
	var b strings.Builder
	for _, ou := range []string{"people", "groups", "services"} {
		fmt.Fprintf(&b, "dn: OU=%s,%s\nobjectClass: organizationalUnit\n\n", ou, base)
	}
	people := "OU=people," + base
	userDN := func(i int) string { return fmt.Sprintf("CN=%s,%s", SeedUserName(i), people) }
	for i := 0; i < o.Users; i++ {
		n := SeedUserName(i)
		fmt.Fprintf(&b, "dn: %s\nobjectClass: user\nsAMAccountName: %s%s\nuserPrincipalName: %s%s@example.test\ngivenName: User\nsn: %04d\ndisplayName: User %04d\nmail: %s@example.com\ntelephoneNumber: +1 555 01%04d\nuserAccountControl: 544\n",
			userDN(i), prefix, n, prefix, n, i, i, n, i)
		if i%2 == 0 {
			fmt.Fprintf(&b, "mobile: +1 555 02%04d\n", i)
		}
		b.WriteString("\n")
	}
	patDN := `CN=Pat O'Brien\, Jr.,` + people
	fmt.Fprintf(&b, "dn: %s\nobjectClass: user\nsAMAccountName: %spobrien\ngivenName: Pat\nsn: O'Brien\nmail: pat@example.com\nuserAccountControl: 544\n\n", patDN, prefix)
	fmt.Fprintf(&b, "dn: CN=disabled01,%s\nobjectClass: user\nsAMAccountName: %sdisabled01\nmail: disabled01@example.com\nuserAccountControl: 514\n\n", people, prefix)
	fmt.Fprintf(&b, "dn: CN=ws01,%s\nobjectClass: computer\nsAMAccountName: %sws01$\nuserAccountControl: 4096\n\n", people, prefix)
	svcDN := "CN=svc-backup,OU=services," + base
	fmt.Fprintf(&b, "dn: %s\nobjectClass: user\nsAMAccountName: %ssvc-backup\nuserAccountControl: 544\n\n", svcDN, prefix)
	groups := "OU=groups," + base
	gdn := func(name string) string { return fmt.Sprintf("CN=%s,%s", name, groups) }
	group := func(name string, members ...string) {
		fmt.Fprintf(&b, "dn: %s\nobjectClass: group\nsAMAccountName: %s%s\n", gdn(name), prefix, name)
		for _, m := range members {
			fmt.Fprintf(&b, "member: %s\n", m)
		}
		b.WriteString("\n")
	}
	all := make([]string, 0, o.Users+1)
	for i := 0; i < o.Users; i++ {
		all = append(all, userDN(i))
	}
	all = append(all, patDN)
	group("all-users", all...)
	group("level3", userDN(0), userDN(1), patDN)
	group("level2", gdn("level3"), userDN(2))
	group("level1", gdn("level2"), userDN(3))
	group("cycle-c", userDN(12))
	group("cycle-b", gdn("cycle-c"), userDN(11))
	group("cycle-a", gdn("cycle-b"), userDN(10))
	fmt.Fprintf(&b, "dn: %s\nchangetype: modify\nadd: member\nmember: %s\n-\n\n", gdn("cycle-c"), gdn("cycle-a"))
	group("outsiders", userDN(20), svcDN)
	return b.String()
}
