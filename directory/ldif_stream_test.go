package directory

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLDIFFollowReportsAChangedFileWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir.ldif")
	content := "dn: uid=a,ou=people,dc=x\nobjectClass: inetOrgPerson\nuid: a\ncn: A\nsn: A\nentryUUID: 1\n\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := NewLDIF(LDIFConfig{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.SetPollInterval(10 * time.Millisecond)
	f := follow(t, s, nil)
	first := f.next()
	if !first.Ready || !first.Full || len(first.Cookie) == 0 {
		t.Fatalf("first batch %+v, want Ready and Full with a cookie", first)
	}
	// a rewrite with the same content (new modification time) is no change
	later := time.Now().Add(time.Minute)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(path, later, later)
	if err := os.WriteFile(path, []byte(content+"dn: uid=b,ou=people,dc=x\nobjectClass: inetOrgPerson\nuid: b\ncn: B\nsn: B\nentryUUID: 2\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(path, later.Add(time.Minute), later.Add(time.Minute))
	c := f.next()
	if !c.Full || c.Ready || string(c.Cookie) == string(first.Cookie) {
		t.Fatalf("after a change: %+v, want Full with a new cookie", c)
	}
	f.cancel()
	<-f.done
	f.done <- nil
	// a restart with the kept cookie and the same file asks for nothing
	f2 := follow(t, s, c.Cookie)
	if again := f2.next(); !again.Ready || again.Full {
		t.Fatalf("resume with an unchanged file: %+v, want Ready, not Full", again)
	}
}
