package intern

import (
	"slices"
	"testing"
	"unsafe"
)

func TestSlicesKeepsOneCopyOfEach(t *testing.T) {
	var s Slices[string]
	a := s.Of([]string{"de", "en"}, String)
	b := s.Of([]string{"de", "en"}, String)
	c := s.Of([]string{"de\x00en"}, String) // a separator inside a value is not a second value
	d := s.Of([]string{"den"}, String)
	if unsafe.SliceData(a) != unsafe.SliceData(b) || !slices.Equal(b, []string{"de", "en"}) {
		t.Fatalf("the same list is held twice: %q %q", a, b)
	}
	if unsafe.SliceData(d) == unsafe.SliceData(a) || !slices.Equal(d, []string{"den"}) || !slices.Equal(c, []string{"de\x00en"}) {
		t.Fatalf("different lists share: %q %q %q", a, c, d)
	}
	if e := s.Of([]string{}, String); e == nil || len(e) != 0 {
		t.Errorf("an empty list came back as %#v", e)
	}
	grown := append(a, "fr")
	grown[0] = "xx"
	if !slices.Equal(b, []string{"de", "en"}) || cap(a) != 2 {
		t.Errorf("an append to one holder reached another: %q", b)
	}
}
