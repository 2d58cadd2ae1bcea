// Package directory is bridge's model of a customer's directory (users, groups and their
// memberships) and the sources that read it: LDAP (OpenLDAP and Active Directory), an upstream
// SCIM 2.0 service, an LDIF file, and the store of what IdPs push to bridge's inbound SCIM
// endpoint (directory/store). It knows nothing about babelforce.
//
// Every source produces a *Snapshot. A read is complete or it is an error: a size limit, a time
// limit, a dropped connection or a ranged read cut short never yields a smaller snapshot, because
// downstream a missing user means "disable this agent".
package directory

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// ErrIncomplete marks a read that did not return the whole directory (size or time limit,
// referral, dropped connection, a short page). Callers must not act on anything they read.
var ErrIncomplete = errors.New("incomplete directory read")

// Reader is what every source implements.
type Reader interface {
	// Read returns the whole directory or an error; never a partial snapshot.
	Read(ctx context.Context) (*Snapshot, error)
}

// Email is one e-mail address of a user.
type Email struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

// Phone is one telephone number of a user, as the directory holds it (not normalised).
type Phone struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

// User is a person in the directory.
type User struct {
	// ID is the stable id that survives renames: entryUUID (OpenLDAP), objectGUID in its
	// canonical form (AD), the SCIM id (upstream SCIM and the inbound store).
	ID          string `json:"id"`
	UserName    string `json:"userName"`
	ExternalID  string `json:"externalId,omitempty"`
	DN          string `json:"dn,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
	// DisplayNameFrom is the attribute DisplayName was read from (LDAP and LDIF sources:
	// attributes.display_name or one of its fallbacks); empty for SCIM sources.
	DisplayNameFrom string  `json:"displayNameFrom,omitempty"`
	GivenName       string  `json:"givenName,omitempty"`
	FamilyName      string  `json:"familyName,omitempty"`
	Emails          []Email `json:"emails,omitempty"`
	Phones          []Phone `json:"phoneNumbers,omitempty"`
	Active          bool    `json:"active"`
	// Invalid says why the source could not read a value that decides what bridge does with
	// this person (e.g. "active is \"yes\", not a boolean"): the mapping then skips them
	// (Reason invalid) and leaves their agent as it is. Empty for a user read whole.
	Invalid string `json:"invalid,omitempty"`
	// Attributes holds the raw attributes as read (lower-cased names), for mapping templates
	// and conditions. SCIM sources flatten to paths such as "title" or
	// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department".
	Attributes map[string][]string `json:"attributes,omitempty"`
	// Groups holds the ids of the groups the user is a direct member of.
	Groups []string `json:"groups,omitempty"`
}

// PrimaryEmail returns the primary e-mail, else the first, else "".
func (u *User) PrimaryEmail() string {
	for _, e := range u.Emails {
		if e.Primary && e.Value != "" {
			return e.Value
		}
	}
	for _, e := range u.Emails {
		if e.Value != "" {
			return e.Value
		}
	}
	return ""
}

// PrimaryPhone returns the primary phone number, else the first, else "".
func (u *User) PrimaryPhone() string {
	for _, p := range u.Phones {
		if p.Primary && p.Value != "" {
			return p.Value
		}
	}
	for _, p := range u.Phones {
		if p.Value != "" {
			return p.Value
		}
	}
	return ""
}

// Attr returns the first value of a raw attribute (name matched case-insensitively), or "".
func (u *User) Attr(name string) string {
	if v := u.Attributes[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	for k, v := range u.Attributes {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// Group is a group in the directory.
type Group struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	DN         string `json:"dn,omitempty"`
	ExternalID string `json:"externalId,omitempty"`
	// MemberUsers and MemberGroups hold the ids of the direct members.
	MemberUsers  []string `json:"memberUsers,omitempty"`
	MemberGroups []string `json:"memberGroups,omitempty"`
}

// Snapshot is one complete read of a directory.
type Snapshot struct {
	Users  []User  `json:"users"`
	Groups []Group `json:"groups"`
	// Memberships maps a user id to the ids of every group the user belongs to, directly or
	// through nested groups, sorted. Filled by Resolve.
	Memberships map[string][]string `json:"memberships"`
	ReadAt      time.Time           `json:"readAt"`
	// Source says where it was read from, e.g. "ldap://dc1.example.com" or "scim-store".
	Source string `json:"source"`
}

// Resolve fills u.Groups (direct memberships, merged from both directions) and
// s.Memberships (transitive, through nested groups, cycles tolerated; a user's entry may be
// its Groups slice itself, so both are read-only), and sorts users by id
// and groups by id so that snapshots compare equal however they were read. Every source calls
// it once at the end of Read.
func (s *Snapshot) Resolve() {
	slices.SortFunc(s.Users, func(a, b User) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Groups, func(a, b Group) int { return strings.Compare(a.ID, b.ID) })
	userIdx := make(map[string]int, len(s.Users))
	for i := range s.Users {
		userIdx[s.Users[i].ID] = i
	}
	groupIdx := make(map[string]int, len(s.Groups))
	for i := range s.Groups {
		groupIdx[s.Groups[i].ID] = i
	}
	// direct: user (index) -> groups, from both the group's member list and the user's own
	// list; duplicates are dropped below.
	direct := make([][]string, len(s.Users))
	for _, g := range s.Groups {
		for _, uid := range g.MemberUsers {
			if i, ok := userIdx[uid]; ok {
				direct[i] = append(direct[i], g.ID)
			}
		}
	}
	for i := range s.Users {
		for _, gid := range s.Users[i].Groups {
			if _, ok := groupIdx[gid]; ok {
				direct[i] = append(direct[i], gid)
			}
		}
	}
	// parents: group -> groups that contain it.
	parents := make(map[string][]string)
	for _, g := range s.Groups {
		for _, child := range g.MemberGroups {
			if _, ok := groupIdx[child]; ok && child != g.ID {
				parents[child] = append(parents[child], g.ID)
			}
		}
	}
	// ancestors of each group, memoised; a visited set per walk makes cycles harmless.
	closure := make(map[string][]string, len(s.Groups))
	ancestors := func(gid string) []string {
		if c, ok := closure[gid]; ok {
			return c
		}
		seen := map[string]bool{gid: true}
		stack := []string{gid}
		for len(stack) > 0 {
			g := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, p := range parents[g] {
				if !seen[p] {
					seen[p] = true
					stack = append(stack, p)
				}
			}
		}
		out := make([]string, 0, len(seen))
		for g := range seen {
			out = append(out, g)
		}
		slices.Sort(out)
		closure[gid] = out
		return out
	}
	s.Memberships = make(map[string][]string, len(s.Users))
	var all []string
	for i := range s.Users {
		u := &s.Users[i]
		d := direct[i]
		slices.Sort(d)
		u.Groups = slices.Clip(slices.Compact(d))
		if len(u.Groups) == 0 {
			u.Groups = nil
			continue
		}
		all = all[:0]
		for _, gid := range u.Groups {
			all = append(all, ancestors(gid)...)
		}
		slices.Sort(all)
		all = slices.Compact(all)
		if slices.Equal(all, u.Groups) {
			// no nested group adds any: the direct groups serve as the transitive ones (one
			// list less a person, about 6 MB at 100,000)
			s.Memberships[u.ID] = u.Groups
			continue
		}
		s.Memberships[u.ID] = slices.Clone(all)
	}
}

// User returns the user with the given id, or nil. It searches the sorted users, so it needs
// a resolved snapshot (Resolve sorts them).
func (s *Snapshot) User(id string) *User {
	i, ok := slices.BinarySearchFunc(s.Users, id, func(u User, id string) int { return strings.Compare(u.ID, id) })
	if !ok {
		return nil
	}
	return &s.Users[i]
}

// Group returns the group with the given id, or nil. Like User, it needs a resolved snapshot.
func (s *Snapshot) Group(id string) *Group {
	i, ok := slices.BinarySearchFunc(s.Groups, id, func(g Group, id string) int { return strings.Compare(g.ID, id) })
	if !ok {
		return nil
	}
	return &s.Groups[i]
}

// compact stores the user's strings (the fields and every attribute value) in one
// allocation, each distinct value once: a source that builds a user from raw values holds
// each name, e-mail and number twice (a field and its attribute) and pays an allocation per
// string; at 100,000 people that is a good part of a read's memory. The strings are
// substrings of one shared string, so nothing else changes.
func (u *User) compact() {
	ptrs := make([]*string, 0, 16+len(u.Attributes))
	ptrs = append(ptrs, &u.ID, &u.UserName, &u.ExternalID, &u.DN, &u.DisplayName, &u.GivenName, &u.FamilyName)
	for i := range u.Emails {
		ptrs = append(ptrs, &u.Emails[i].Value)
	}
	for i := range u.Phones {
		ptrs = append(ptrs, &u.Phones[i].Value)
	}
	for _, vals := range u.Attributes {
		for i := range vals {
			ptrs = append(ptrs, &vals[i])
		}
	}
	// distinct values (a user has a few dozen strings at most: a linear search is cheapest)
	distinct := make([]string, 0, len(ptrs))
	size := 0
	for _, p := range ptrs {
		if *p != "" && !slices.Contains(distinct, *p) {
			distinct = append(distinct, *p)
			size += len(*p)
		}
	}
	var b strings.Builder
	b.Grow(size)
	for _, s := range distinct {
		b.WriteString(s)
	}
	blob, off := b.String(), 0
	for i, s := range distinct {
		distinct[i], off = blob[off:off+len(s)], off+len(s)
	}
	for _, p := range ptrs {
		if *p == "" {
			continue
		}
		*p = distinct[slices.Index(distinct, *p)]
	}
}
