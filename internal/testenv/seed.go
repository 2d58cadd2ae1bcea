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
