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
