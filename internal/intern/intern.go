// Package intern keeps one copy of each distinct slice a long list repeats: at 100,000 people
// a few hundred distinct lists of tags, groups or roles serve every agent.
package intern

import "encoding/binary"

// Slices holds one copy of each distinct []T it has been given. The zero value is ready to use;
// it is not safe for concurrent use.
type Slices[T any] struct {
	m   map[string][]T
	key []byte
}

// Of returns the one copy of vs, by the key appendKey builds element by element (it appends
// v's key to the buffer it is given; String does it for strings). An empty vs is returned as it is.
// The copy has no room to grow, so an append to it copies; writing into its elements would
// change every holder, so the slices are read-only.
func (s *Slices[T]) Of(vs []T, appendKey func([]byte, T) []byte) []T {
	if len(vs) == 0 {
		return vs
	}
	s.key = s.key[:0]
	for _, v := range vs {
		s.key = appendKey(s.key, v)
	}
	if w, ok := s.m[string(s.key)]; ok {
		return w
	}
	if s.m == nil {
		s.m = map[string][]T{}
	}
	vs = vs[:len(vs):len(vs)]
	s.m[string(s.key)] = vs
	return vs
}

// String appends the key of a string element: its length, then its bytes, so that no two
// lists of strings have one key (a separator could also occur inside a value).
func String(b []byte, v string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}
