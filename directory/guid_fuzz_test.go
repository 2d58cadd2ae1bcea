package directory_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/babelforce/bridge/directory"
)

// FuzzGUID: ParseGUID(FormatGUID(b)) gives b back for every 16-byte b (also with braces and in
// upper case); FormatGUID refuses any other length; ParseGUID never panics and whatever it
// accepts formats back to the same GUID.
func FuzzGUID(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, "00112233-4455-6677-8899-aabbccddeeff")
	f.Add(bytes.Repeat([]byte{0xff}, 16), "{FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF}")
	f.Add([]byte{}, "")
	f.Add([]byte{1, 2, 3}, "0011223344556677-8899-aabbccddeeff")
	f.Add(bytes.Repeat([]byte{0xab}, 17), " {00112233-4455-6677-8899-aabbccddeeGG} ")
	f.Add(bytes.Repeat([]byte{0}, 15), "+0112233-4455-6677-8899-aabbccddeeff")
	f.Add(bytes.Repeat([]byte{7}, 16), "00112233-4455-6677-8899-aabbccdd\xffff")
	f.Fuzz(func(t *testing.T, b []byte, s string) {
		str, err := directory.FormatGUID(b)
		if len(b) != 16 {
			if err == nil {
				t.Fatalf("FormatGUID accepted %d bytes: %q", len(b), str)
			}
		} else {
			if err != nil {
				t.Fatalf("FormatGUID(%x): %v", b, err)
			}
			if len(str) != 36 || strings.ToLower(str) != str {
				t.Fatalf("FormatGUID(%x) = %q, not canonical", b, str)
			}
			for _, form := range []string{str, strings.ToUpper(str), "{" + str + "}"} {
				back, err := directory.ParseGUID(form)
				if err != nil {
					t.Fatalf("ParseGUID(%q): %v", form, err)
				}
				if !bytes.Equal(back, b) {
					t.Fatalf("ParseGUID(%q) = %x, want %x", form, back, b)
				}
			}
		}
		raw, err := directory.ParseGUID(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if len(raw) != 16 {
			t.Fatalf("ParseGUID(%q) gave %d bytes", s, len(raw))
		}
		again, err := directory.FormatGUID(raw)
		if err != nil {
			t.Fatal(err)
		}
		back, err := directory.ParseGUID(again)
		if err != nil || !bytes.Equal(back, raw) {
			t.Fatalf("ParseGUID(%q) = %x formats to %q which parses to %x (%v)", s, raw, again, back, err)
		}
	})
}
