package directory

import (
	"strconv"
	"testing"
)

func TestUserListKeepsOrderInOneExactArray(t *testing.T) {
	for _, n := range []int{0, 1, 16, 17, maxUserChunk, 3*maxUserChunk + 5} {
		var l userList
		for i := range n {
			l.add(User{ID: strconv.Itoa(i)})
		}
		seen := 0
		l.each(func(u *User) {
			if u.ID != strconv.Itoa(seen) {
				t.Fatalf("%d users: each saw %q at %d", n, u.ID, seen)
			}
			seen++
		})
		if seen != n {
			t.Fatalf("%d users: each saw %d", n, seen)
		}
		got := l.all()
		if len(got) != n || cap(got) != n {
			t.Fatalf("%d users: len %d, cap %d", n, len(got), cap(got))
		}
		for i := range got {
			if got[i].ID != strconv.Itoa(i) {
				t.Fatalf("%d users: user %d is %q", n, i, got[i].ID)
			}
		}
		if n == 0 && got != nil {
			t.Error("no users: want nil, as an empty read always gave")
		}
		if l.n != 0 || l.chunks != nil {
			t.Errorf("%d users: the list is not emptied", n)
		}
	}
}

// TestMemberByUserNameAfterTheRead: a member value that reads as a DN but names no user or
// group entry is looked up as a user name at the end of the read (userNamed, built then).
func TestMemberByUserNameAfterTheRead(t *testing.T) {
	in := `dn: uid=a\3Db,ou=people,dc=x
objectClass: inetOrgPerson
uid: a=b
cn: A
sn: B

dn: cn=g,ou=groups,dc=x
objectClass: groupOfNames
cn: g
member: a=b
`
	snap, err := readLDIF(t, LDIFConfig{Path: writeLDIF(t, in)})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Groups) != 1 || len(snap.Users) != 1 || len(snap.Groups[0].MemberUsers) != 1 || snap.Groups[0].MemberUsers[0] != snap.Users[0].ID {
		t.Fatalf("users %+v, groups %+v: want the user named a=b in g", snap.Users, snap.Groups)
	}
}
