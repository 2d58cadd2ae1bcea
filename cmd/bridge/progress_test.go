package main

import (
	"strings"
	"testing"
	"time"
)

func TestProgressPrinter(t *testing.T) {
	var b strings.Builder
	now := time.Unix(0, 0)
	p := progressPrinter(&b, func() time.Time { return now })
	p(1, 10) // short runs stay quiet
	if b.Len() != 0 {
		t.Fatalf("printed for a 10-change run: %q", b.String())
	}
	p(1, 100)
	p(2, 100) // same second: quiet
	now = now.Add(1500 * time.Millisecond)
	p(50, 100)
	p(100, 100) // the end is always printed
	want := "applied 1/100 changes (1%)\napplied 50/100 changes (50%)\napplied 100/100 changes (100%)\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
