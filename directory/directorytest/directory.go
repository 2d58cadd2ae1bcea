// Package directorytest is the conformance suite every directory source runs: one logical
// directory (testdata/directory/conformance.json: users, groups nested several levels deep, a
// membership cycle, an inactive user, a user in no group) is rendered for each kind of server
// (OpenLDAP LDIF for slapd, LDIF for Samba AD, a JSON seed for the scimmy SCIM peer, LDIF
// exports for the LDIF source), loaded there, read back through a directory.Reader, and Run
// compares what was read with the logical directory by user and group NAME (ids differ per
// source: entryUUID, objectGUID, SCIM ids).
package directorytest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"testing"
)

// Directory is a logical directory, independent of any source.
type Directory struct {
	Description string  `json:"description,omitempty"`
	Domain      string  `json:"domain"`
	Users       []User  `json:"users"`
	Groups      []Group `json:"groups"`
}

// User is a person of the logical directory, named by UserName.
type User struct {
	UserName       string   `json:"userName"`
	GivenName      string   `json:"givenName"`
	FamilyName     string   `json:"familyName"`
	DisplayName    string   `json:"displayName"`
	Emails         []string `json:"emails"`
	Phones         []Phone  `json:"phones"`
	Title          string   `json:"title,omitempty"`
	Department     string   `json:"department,omitempty"`
	EmployeeNumber string   `json:"employeeNumber,omitempty"`
	Inactive       bool     `json:"inactive,omitempty"`
	// NoDisplayName: the renderings leave out the display name attribute (LDAP displayName,
	// SCIM displayName), so that a source must fall back to cn (the DN's RDN in AD) or SCIM's
	// name.formatted, which hold DisplayName.
	NoDisplayName bool `json:"noDisplayName,omitempty"`
}

// Phone is a telephone number with its type: "work", "mobile", "home", "fax" or "pager"
// (rendered in LDAP as PhoneAttributes lists them). The first phone of a user is the primary.
type Phone struct {
	Value string `json:"value"`
	Type  string `json:"type"`
}

// Group is a group of the logical directory with its direct members, by name.
type Group struct {
	Name   string   `json:"name"`
	Users  []string `json:"users"`
	Groups []string `json:"groups"`
}

// Attr returns a logical attribute ("title", "department", "employeeNumber") of u.
func (u *User) Attr(name string) string {
	switch name {
	case "title":
		return u.Title
	case "department":
		return u.Department
	case "employeeNumber":
		return u.EmployeeNumber
	}
	return ""
}

// Load reads and checks a logical directory from a JSON file.
func Load(path string) (*Directory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Directory
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := d.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &d, nil
}

// DefaultPath is the path of testdata/directory/conformance.json in this checkout.
func DefaultPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "directory", "conformance.json")
}

// Conformance loads the conformance directory (DefaultPath) or fails the test.
func Conformance(t testing.TB) *Directory {
	t.Helper()
	d, err := Load(DefaultPath())
	if err != nil {
		t.Fatalf("conformance directory: %v", err)
	}
	return d
}

func (d *Directory) check() error {
	users := map[string]bool{}
	for _, u := range d.Users {
		if u.UserName == "" || users[u.UserName] {
			return fmt.Errorf("user %q: empty or duplicate userName", u.UserName)
		}
		users[u.UserName] = true
	}
	groups := map[string]bool{}
	for _, g := range d.Groups {
		if g.Name == "" || groups[g.Name] {
			return fmt.Errorf("group %q: empty or duplicate name", g.Name)
		}
		groups[g.Name] = true
	}
	for _, g := range d.Groups {
		for _, u := range g.Users {
			if !users[u] {
				return fmt.Errorf("group %q: unknown user %q", g.Name, u)
			}
		}
		for _, c := range g.Groups {
			if !groups[c] {
				return fmt.Errorf("group %q: unknown group %q", g.Name, c)
			}
		}
	}
	return nil
}

// User returns the user named userName, or nil.
func (d *Directory) User(userName string) *User {
	for i := range d.Users {
		if d.Users[i].UserName == userName {
			return &d.Users[i]
		}
	}
	return nil
}

// DirectGroups returns the names of the groups userName is a direct member of, sorted.
func (d *Directory) DirectGroups(userName string) []string {
	var out []string
	for _, g := range d.Groups {
		if slices.Contains(g.Users, userName) {
			out = append(out, g.Name)
		}
	}
	sort.Strings(out)
	return out
}

// TransitiveGroups returns the names of every group userName belongs to, directly or through
// nested groups (cycles included once), sorted.
func (d *Directory) TransitiveGroups(userName string) []string {
	parents := map[string][]string{}
	for _, g := range d.Groups {
		for _, c := range g.Groups {
			parents[c] = append(parents[c], g.Name)
		}
	}
	seen := map[string]bool{}
	stack := d.DirectGroups(userName)
	for len(stack) > 0 {
		g := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[g] {
			continue
		}
		seen[g] = true
		stack = append(stack, parents[g]...)
	}
	out := make([]string, 0, len(seen))
	for g := range seen {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}
