package directory

import (
	"slices"
	"strconv"
	"testing"
	"unsafe"
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

// TestResolveSharesDirectGroupsWhenNothingNests: a user whose groups are in no other group
// has one list for its direct and its transitive groups; one in a nested group gets its own,
// with the parent in it, and the direct list stays as it was.
func TestResolveSharesDirectGroupsWhenNothingNests(t *testing.T) {
	s := &Snapshot{
		Users: []User{{ID: "u1", Groups: []string{"g2", "g1"}}, {ID: "u2"}},
		Groups: []Group{{ID: "g1", MemberUsers: []string{"u1"}}, {ID: "g2"},
			{ID: "g3", MemberUsers: []string{"u2"}}, {ID: "g4", MemberGroups: []string{"g3"}}},
	}
	s.Resolve()
	u1, u2 := s.User("u1"), s.User("u2")
	if !slices.Equal(u1.Groups, []string{"g1", "g2"}) || !slices.Equal(s.Memberships["u1"], u1.Groups) {
		t.Fatalf("u1: groups %q, memberships %q", u1.Groups, s.Memberships["u1"])
	}
	if unsafe.SliceData(s.Memberships["u1"]) != unsafe.SliceData(u1.Groups) {
		t.Errorf("u1's direct and transitive groups are two lists")
	}
	if !slices.Equal(u2.Groups, []string{"g3"}) || !slices.Equal(s.Memberships["u2"], []string{"g3", "g4"}) {
		t.Fatalf("u2: groups %q, memberships %q", u2.Groups, s.Memberships["u2"])
	}
}

// TestUserListHintedHandsOverWithoutACopy: with a hint from the last read the users land in
// one chunk that all hands over as it is; more users than the hint's room, or far fewer, and
// all copies them into an exact array as before.
func TestUserListHintedHandsOverWithoutACopy(t *testing.T) {
	for _, tc := range []struct {
		hint, n int
		copied  bool
	}{{1000, 1000, false}, {1000, 1040, false}, {1000, 990, false}, {1000, 5000, true}, {1000, 100, true}} {
		l := userList{hint: tc.hint}
		for i := range tc.n {
			l.add(User{ID: strconv.Itoa(i)})
		}
		first := unsafe.SliceData(l.chunks[0])
		got := l.all()
		if len(got) != tc.n || cap(got) != tc.n {
			t.Fatalf("hint %d, %d users: len %d, cap %d", tc.hint, tc.n, len(got), cap(got))
		}
		for i := range got {
			if got[i].ID != strconv.Itoa(i) {
				t.Fatalf("hint %d, %d users: user %d is %q", tc.hint, tc.n, i, got[i].ID)
			}
		}
		if copied := unsafe.SliceData(got) != first; copied != tc.copied {
			t.Errorf("hint %d, %d users: copied %v, want %v", tc.hint, tc.n, copied, tc.copied)
		}
	}
}
