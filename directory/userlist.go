package directory

// userList collects users as a source reads them and hands them over in one array of the
// exact length. A slice grown by append doubles its array: at 100,000 users the last
// doubling made room for 131,072, and both arrays were alive while it copied. The list
// instead fills chunks that are never copied until the one copy at the end.
//
// A source that read its directory before (bridge serve) sets hint to the number it found
// then: the first chunk makes room for that many and a little more, and when every user fits
// in it, all hands that chunk over without a copy (at 100,000 users the copy took 22 MB more
// for a moment, and 0.4 s of CPU).
type userList struct {
	chunks [][]User
	n      int
	hint   int
}

// maxUserChunk is how many users a chunk holds at most (about 400 KB).
const maxUserChunk = 2048

func (l *userList) add(u User) {
	if len(l.chunks) == 0 || len(l.chunks[len(l.chunks)-1]) == cap(l.chunks[len(l.chunks)-1]) {
		// chunks grow to maxUserChunk, so that a small directory needs no large one
		size := min(maxUserChunk, max(16, l.n))
		if len(l.chunks) == 0 && l.hint > 0 {
			size = l.hint + l.hint/32 + 16
		}
		l.chunks = append(l.chunks, make([]User, 0, size))
	}
	last := &l.chunks[len(l.chunks)-1]
	*last = append(*last, u)
	l.n++
}

// each calls f for every user added so far, in order.
func (l *userList) each(f func(*User)) {
	for _, c := range l.chunks {
		for i := range c {
			f(&c[i])
		}
	}
}

// all returns the users in the order added, in one array of the exact length, and empties l.
func (l *userList) all() []User {
	if l.n == 0 {
		return nil
	}
	if c := l.chunks[0]; len(l.chunks) == 1 && cap(c)-len(c) <= len(c)/16+16 {
		// one chunk holds everyone (the hinted one, or a small directory's) with little room
		// to spare: no copy
		l.chunks, l.n = nil, 0
		return c[:len(c):len(c)]
	}
	out := make([]User, 0, l.n)
	for i, c := range l.chunks {
		out = append(out, c...)
		l.chunks[i] = nil // collectable once copied
	}
	l.chunks, l.n = nil, 0
	return out
}
