package secretfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for content, want := range map[string]string{
		"s3cret\n":      "s3cret",
		"s3cret\r\n":    "s3cret",
		"s3cret":        "s3cret",
		" pass word \n": " pass word ",
	} {
		if got, err := Read(write("ok", content)); err != nil || got != want {
			t.Errorf("Read(%q) = %q, %v; want %q", content, got, err, want)
		}
	}
	empty := write("empty", "\r\n\n")
	if _, err := Read(empty); err == nil || !strings.Contains(err.Error(), empty+" is empty") {
		t.Errorf("empty file: %v", err)
	}
	if _, err := Read(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}
