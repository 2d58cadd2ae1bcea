// Package secretfile reads a secret (password, token, client secret) from the file a *_file
// setting names, the way every config section of bridge does.
package secretfile

import (
	"fmt"
	"os"
	"strings"
)

// Read returns the content of path without trailing line endings; other white space is kept
// (it may belong to a password). A file holding nothing else is an error.
func Read(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
