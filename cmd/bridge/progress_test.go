package main

import (
	"strings"
	"testing"
	"time"
)

func TestProgressBar(t *testing.T) {
	var b strings.Builder
	now := time.Unix(0, 0)
	p := drawProgress(&b, func() time.Time { return now })
	p(1, 10) // short runs stay quiet
	if b.Len() != 0 {
		t.Fatalf("drew for a 10-change run: %q", b.String())
	}
	now = now.Add(time.Second)
	p(25, 100)
	p(26, 100) // within 100 ms: not redrawn
	now = now.Add(200 * time.Millisecond)
	p(50, 100)
	p(100, 100) // the end erases the bar
	want := "\r[=======                       ] 25/100 changes (25%)" +
		"\r[===============               ] 50/100 changes (50%)" +
		"\r\033[K"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
	// not a terminal: no bar at all
	if progressBar(&b, time.Now) != nil {
		t.Error("a bar for a writer that is no terminal")
	}
}
