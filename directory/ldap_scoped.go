package directory

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

var _ scopedReader = (*LDAPSource)(nil)

// idFilterChunk is how many ids one user search asks for.
const idFilterChunk = 50

// ReadUsers reads the users with the given ids (under user_base_dn and user_filter; the others
// are absent from the snapshot) and the groups they belong to, directly or through nested
// groups (each found with a (member=DN) search, so a group's other members are not read).
// The snapshot is resolved; its groups list only the users read as members. Like Read, it is
// complete or an error. total is the number of users the last full Read found (counted with
// a search of user DNs when there was none yet), for the guards.
func (l *LDAPSource) ReadUsers(ctx context.Context, ids []string) (snap *Snapshot, total int, err error) {
	started := l.now()
	r, userBase, groupBase, done, err := l.open(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer done()
	total = int(l.total.Load())
	if total == 0 {
		es, err := r.search("users", userBase, l.cfg.UserFilter, []string{"1.1"})
		if err != nil {
			return nil, 0, err
		}
		total = len(es)
		l.total.Store(int64(total))
	}
	a := l.cfg.Attributes
	var users []*entry
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	for chunk := range slices.Chunk(ids, idFilterChunk) {
		var f strings.Builder
		f.WriteString("(&" + l.cfg.UserFilter + "(|")
		n := 0
		for _, id := range chunk {
			v, err := l.idFilterValue(id)
			if err != nil {
				l.logger.Debug("ldap scoped read: id not of this directory's form, skipped", "id", id, "error", err.Error())
				continue
			}
			fmt.Fprintf(&f, "(%s=%s)", a.ID, v)
			n++
		}
		f.WriteString("))")
		if n == 0 {
			continue
		}
		es, err := r.search("users", userBase, f.String(), l.userAttrs)
		if err != nil {
			return nil, 0, err
		}
		users = append(users, es...)
	}
	if err := r.completeRanges(users); err != nil {
		return nil, 0, err
	}
	snap = &Snapshot{Source: r.url, ReadAt: started}
	userByDN := map[string]string{}
	for _, e := range users {
		id, err := l.id(e)
		if err != nil || id == "" || !slices.Contains(ids, id) || l.isBindDN(e.dn) {
			continue // not asked for (a case-insensitive match of another spelling), unreadable, or bridge's own account
		}
		if k, ok := NormalizeDN(e.dn); ok {
			userByDN[k] = id
		}
		snap.Users = append(snap.Users, l.user(e, id))
	}
	groupAttrs := attrList(a.ID, a.GroupName, "cn")
	groups := map[string]*Group{} // by normalised DN
	parentsRead := map[string]bool{}
	var order []string
	// addGroup records the group entry e (once) and returns it.
	addGroup := func(e *entry) (*Group, string, error) {
		k, ok := NormalizeDN(e.dn)
		if !ok {
			return nil, "", nil
		}
		if g := groups[k]; g != nil {
			return g, k, nil
		}
		id, err := l.id(e)
		if err != nil {
			return nil, "", fmt.Errorf("ldap %s: %w", r.url, err)
		}
		if id == "" {
			return nil, "", nil
		}
		g := &Group{ID: id, Name: l.groupName(e), DN: e.dn}
		groups[k] = g
		order = append(order, k)
		return g, k, nil
	}
	if a.Member != "-" {
		// containing returns the groups with dn as a direct member.
		containing := func(dn string) ([]*entry, error) {
			f := fmt.Sprintf("(&%s(%s=%s))", l.cfg.GroupFilter, a.Member, ldap.EscapeFilter(dn))
			return r.search("groups", groupBase, f, groupAttrs)
		}
		for i := range snap.Users {
			u := &snap.Users[i]
			es, err := containing(u.DN)
			if err != nil {
				return nil, 0, err
			}
			var frontier []string
			for _, e := range es {
				g, k, err := addGroup(e)
				if err != nil {
					return nil, 0, err
				}
				if g == nil {
					continue
				}
				g.MemberUsers = append(g.MemberUsers, u.ID)
				frontier = append(frontier, k)
			}
			// parents of the groups found, once per group
			for l.cfg.nested() && len(frontier) > 0 {
				k := frontier[0]
				frontier = frontier[1:]
				child := groups[k]
				if parentsRead[k] {
					continue
				}
				parentsRead[k] = true
				es, err := containing(child.DN)
				if err != nil {
					return nil, 0, err
				}
				for _, e := range es {
					g, pk, err := addGroup(e)
					if err != nil {
						return nil, 0, err
					}
					if g == nil || slices.Contains(g.MemberGroups, child.ID) {
						continue
					}
					g.MemberGroups = append(g.MemberGroups, child.ID)
					frontier = append(frontier, pk)
				}
			}
		}
	} else if a.MemberOf != "" && a.MemberOf != "-" {
		for i := range snap.Users {
			u := &snap.Users[i]
			for _, dn := range u.Attributes[strings.ToLower(a.MemberOf)] {
				k, ok := NormalizeDN(dn)
				if !ok {
					continue
				}
				g := groups[k]
				if g == nil {
					res, err := r.conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
						l.cfg.GroupFilter, groupAttrs, nil))
					if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
						continue
					}
					if err != nil {
						return nil, 0, r.fail("groups", dn, 0, err)
					}
					if len(res.Entries) != 1 || !underBase(dn, groupBase) {
						continue // not a group bridge reads
					}
					e, err := newEntry(res.Entries[0])
					if err != nil {
						return nil, 0, err
					}
					if g, _, err = addGroup(e); err != nil {
						return nil, 0, err
					}
					if g == nil {
						continue
					}
				}
				u.Groups = append(u.Groups, g.ID)
			}
		}
	}
	for _, k := range order {
		snap.Groups = append(snap.Groups, *groups[k])
	}
	snap.Resolve()
	l.logger.Debug("ldap scoped read", "url", r.url, "asked", len(ids), "users", len(snap.Users), "groups", len(snap.Groups),
		"duration", l.now().Sub(started).String())
	return snap, total, nil
}

// idFilterValue renders a user id as an assertion value for attributes.id in a filter.
func (l *LDAPSource) idFilterValue(id string) (string, error) {
	var raw []byte
	switch strings.ToLower(l.cfg.Attributes.IDFormat) {
	case "guid":
		b, err := ParseGUID(id)
		if err != nil {
			return "", err
		}
		raw = b
	case "hex":
		b, err := hex.DecodeString(id)
		if err != nil {
			return "", err
		}
		raw = b
	default:
		return ldap.EscapeFilter(id), nil
	}
	var b strings.Builder
	for _, c := range raw {
		fmt.Fprintf(&b, `\%02x`, c)
	}
	return b.String(), nil
}

// underBase reports whether dn is base or below it, comparing through NormalizeDN (an
// empty base is the root, above every DN).
func underBase(dn, base string) bool {
	d, ok := NormalizeDN(dn)
	if !ok {
		return false
	}
	if strings.TrimSpace(base) == "" {
		return true
	}
	b, ok := NormalizeDN(base)
	return ok && (d == b || strings.HasSuffix(d, "\x00"+b))
}
