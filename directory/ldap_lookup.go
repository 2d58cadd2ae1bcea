package directory

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// LookupUser reads one user, found by user name (attributes.user_name, matched by the
// server's rules, usually case-insensitively), and the groups on the user's paths up through
// nested groups, without reading the whole directory: for on-demand provisioning of one user.
//
// The snapshot holds the user (none when no user matches) and those groups; each group lists
// only the members on the user's paths, and Memberships is resolved. More than one match is
// an error. With attributes.member "-" it falls back to a full Read.
func (l *LDAPSource) LookupUser(ctx context.Context, userName string) (*Snapshot, error) {
	if strings.TrimSpace(userName) == "" {
		return nil, fmt.Errorf("ldap lookup: empty user name")
	}
	if l.cfg.Attributes.Member == "-" {
		full, err := l.Read(ctx)
		if err != nil {
			return nil, err
		}
		return full.subset(userName), nil
	}
	started := l.now()
	r, userBase, groupBase, done, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	serverURL := r.url
	a := l.cfg.Attributes
	filter := fmt.Sprintf("(&%s(%s=%s))", l.cfg.UserFilter, a.UserName, ldap.EscapeFilter(userName))
	users, err := r.search("users", userBase, filter, l.userAttrs)
	if err != nil {
		return nil, err
	}
	if len(users) > 1 {
		var dns []string
		for _, u := range users {
			dns = append(dns, u.dn)
		}
		return nil, fmt.Errorf("ldap lookup of %q: %d users match (%s): make attributes.user_name unique", userName, len(users), strings.Join(dns, "; "))
	}
	snap := &Snapshot{Source: serverURL, ReadAt: started}
	if len(users) == 0 || l.isBindDN(users[0].dn) { // bridge's own account is no user
		snap.Resolve()
		return snap, nil
	}
	ue := users[0]
	uid, err := l.id(ue)
	if err != nil {
		return nil, fmt.Errorf("ldap %s: %w", serverURL, err)
	}
	if uid == "" {
		return nil, fmt.Errorf("ldap lookup of %q: %s has no %s: check attributes.id and the bind user's read rights", userName, ue.dn, a.ID)
	}
	snap.Users = []User{l.user(ue, uid)}
	// Walk up, one search per DN: the groups holding the user, then the groups holding those,
	// until none is new. Member lists are not read, only the edges found.
	groupAt := map[string]int{} // normalised DN → index in snap.Groups
	type node struct{ dn, id string }
	frontier := []node{{ue.dn, uid}}
	attrs := attrList(a.ID, a.GroupName)
	for len(frontier) > 0 {
		var next []node
		for _, child := range frontier {
			filter := fmt.Sprintf("(&%s(%s=%s))", l.cfg.GroupFilter, a.Member, ldap.EscapeFilter(child.dn))
			found, err := r.search("groups", groupBase, filter, attrs)
			if err != nil {
				return nil, err
			}
			for _, ge := range found {
				k, _ := NormalizeDN(ge.dn)
				i, known := groupAt[k]
				if !known {
					gid, err := l.id(ge)
					if err != nil || gid == "" {
						l.logger.Warn("ldap group without a usable id, skipped", "dn", ge.dn, "error", fmt.Sprint(err))
						continue
					}
					i = len(snap.Groups)
					groupAt[k] = i
					snap.Groups = append(snap.Groups, Group{ID: gid, Name: l.groupName(ge), DN: ge.dn})
					if l.cfg.nested() {
						next = append(next, node{ge.dn, gid})
					}
				}
				g := &snap.Groups[i]
				if child.id == uid {
					g.MemberUsers = append(g.MemberUsers, uid)
				} else {
					g.MemberGroups = append(g.MemberGroups, child.id)
				}
			}
		}
		frontier = next
	}
	snap.Resolve()
	return snap, nil
}

// subset returns the snapshot cut down to the user with the given user name (case-insensitive)
// and the groups the user belongs to.
func (s *Snapshot) subset(userName string) *Snapshot {
	out := &Snapshot{Source: s.Source, ReadAt: s.ReadAt}
	for _, u := range s.Users {
		if strings.EqualFold(u.UserName, userName) {
			out.Users = append(out.Users, u)
		}
	}
	in := map[string]bool{}
	for _, u := range out.Users {
		for _, g := range s.Memberships[u.ID] {
			in[g] = true
		}
	}
	for _, g := range s.Groups {
		if in[g.ID] {
			out.Groups = append(out.Groups, g)
		}
	}
	out.Resolve()
	return out
}
