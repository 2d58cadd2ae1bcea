package directory

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// syncGroup is what the syncrepl stream remembers of a group, to tell who joined or left it
// when the server reports the group's new state.
type syncGroup struct {
	dn      string // normalised
	name    string
	members map[string]string // normalised member DN → the DN as the server spells it
}

// syncMsg is one message of one of the two persistent searches.
type syncMsg struct {
	kind     string // "users" or "groups"
	entry    *ldap.Entry
	controls []ldap.Control
	end      bool
	err      error
}

// syncrepl follows users and groups with two refreshAndPersist searches on one connection.
// Users: an added, changed or deleted entry affects that user. Groups: the stream sends a
// changed group whole, so the groups are read once at the start and kept, and a change
// affects the members who joined or left (through nested groups too). Changes while bridge
// was away (the refresh phase of a kept cookie) are reported as one Ready batch; it asks for a
// full reconcile when the server reports them as "what is still present" instead of what was
// deleted (syncprov without a session log), when a group changed meanwhile (who left it is
// unknown: the kept groups were read after the change), or when there was no cookie.
func (s *ldapStream) syncrepl(ctx context.Context, sc streamCookie, resumed bool, changed func(ChangeSet)) error {
	l := s.l
	a := l.cfg.Attributes
	groups := map[string]*syncGroup{} // by entryUUID
	groupByDN := map[string]string{}  // normalised DN → entryUUID
	memberAttr := a.Member
	if memberAttr == "-" {
		memberAttr = ""
	}
	{ // the groups as they are now
		r := s.reader(ctx)
		attrs := attrList("entryUUID", a.GroupName, "cn", memberAttr)
		entries, err := r.search("groups", s.groupBase, l.cfg.GroupFilter, attrs)
		if err != nil {
			return err
		}
		for _, e := range entries {
			uuid := e.str("entryUUID")
			g := s.syncGroupOf(e)
			groups[uuid] = g
			groupByDN[g.dn] = uuid
		}
	}
	// usersOf returns the user DNs in group uuid, through nested groups.
	usersOf := func(g *syncGroup, out map[string]string) {
		seen := map[*syncGroup]bool{}
		var walk func(g *syncGroup)
		walk = func(g *syncGroup) {
			if g == nil || seen[g] {
				return
			}
			seen[g] = true
			for k, dn := range g.members {
				if u, ok := groupByDN[k]; ok {
					walk(groups[u])
					continue
				}
				out[k] = dn
			}
		}
		walk(g)
	}

	userAttrs := attrList("entryUUID", a.ID, "modifyTimestamp")
	groupAttrs := attrList("entryUUID", a.GroupName, "cn", memberAttr, "modifyTimestamp")
	// Persistent searches wait as long as nothing changes: no client-side request timeout on
	// this connection (lookups on it carry a server-side time limit; ctx closes it).
	s.conn.SetTimeout(0)
	ch := make(chan syncMsg, 64)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := func(kind, base, filter string, attrs []string, cookie []byte) {
		req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil)
		resp := s.conn.Syncrepl(sctx, req, 64, ldap.SyncRequestModeRefreshAndPersist, cookie, false)
		go func() {
			for resp.Next() {
				select {
				case ch <- syncMsg{kind: kind, entry: resp.Entry(), controls: resp.Controls()}:
				case <-sctx.Done():
					return
				}
			}
			select {
			case ch <- syncMsg{kind: kind, end: true, err: resp.Err()}:
			case <-sctx.Done():
			}
		}()
	}
	start("users", s.userBase, l.cfg.UserFilter, userAttrs, sc.Users)
	start("groups", s.groupBase, l.cfg.GroupFilter, groupAttrs, sc.Groups)

	refreshing := map[string]bool{"users": true, "groups": true}
	batch := idSet{}
	var memberDNs map[string]string // user DNs whose membership changed, resolved at emit
	full := !resumed
	var newest time.Time
	emit := func(ready bool) error {
		if len(memberDNs) > maxNamedUsers {
			full = true
		}
		if !full && len(memberDNs) > 0 {
			dns := make([]string, 0, len(memberDNs))
			for _, dn := range memberDNs {
				dns = append(dns, dn)
			}
			ids, err := s.userIDsOf(dns)
			if err != nil {
				return err
			}
			batch.add(ids...)
		}
		if len(batch) > maxNamedUsers {
			full = true
		}
		cs := ChangeSet{Full: full, Cookie: sc.encode(), Ready: ready, At: l.now(), Modified: newest}
		if !full {
			cs.Users = batch.sorted()
		}
		if ready || !cs.Empty() {
			changed(cs)
		}
		batch, memberDNs, full, newest = idSet{}, nil, false, time.Time{}
		return nil
	}
	for {
		var m syncMsg
		select {
		case <-ctx.Done():
			return nil
		case m = <-ch:
		}
		if m.end {
			if ctx.Err() != nil {
				return nil
			}
			if m.err != nil {
				return fmt.Errorf("ldap %s: syncrepl %s: %w", s.url, m.kind, m.err)
			}
			return fmt.Errorf("ldap %s: syncrepl %s: %w", s.url, m.kind, errStreamEnded)
		}
		wasRefreshing := refreshing["users"] || refreshing["groups"]
		for _, c := range m.controls {
			switch c := c.(type) {
			case *ldap.ControlSyncState:
				s.setCookie(&sc, m.kind, c.Cookie)
				if m.entry == nil {
					continue
				}
				newest = modified(m.entry, newest)
				uuid := c.EntryUUID.String()
				if m.kind == "users" {
					switch c.State {
					case ldap.SyncStatePresent:
						full = true // a present phase: who was deleted is not said
					case ldap.SyncStateAdd, ldap.SyncStateModify:
						e, err := newEntry(m.entry)
						if err != nil {
							return fmt.Errorf("ldap %s: syncrepl: %w", s.url, err)
						}
						id, err := l.id(e)
						if err != nil || id == "" {
							l.logger.Warn("ldap syncrepl: changed user without a readable id, ignored", "dn", m.entry.DN, "error", fmt.Sprint(err))
							continue
						}
						s.idByUUID[uuid] = id
						if k, ok := NormalizeDN(m.entry.DN); ok {
							s.idByDN[k] = id
						}
						batch.add(id)
					case ldap.SyncStateDelete:
						id := s.idByUUID[uuid]
						if id == "" && strings.EqualFold(a.ID, "entryUUID") {
							id = uuid
						}
						if id == "" {
							l.logger.Info("ldap syncrepl: a user bridge has not seen left; its id is unknown, so everyone is reconciled", "entry_uuid", uuid)
							full = true
						}
						batch.add(id)
						if k, ok := NormalizeDN(m.entry.DN); ok {
							delete(s.idByDN, k)
						}
					}
					continue
				}
				// groups
				if refreshing["groups"] && resumed && c.State != ldap.SyncStatePresent {
					full = true // changed while bridge was away: who left is not known
				}
				old := groups[uuid]
				switch c.State {
				case ldap.SyncStatePresent:
					full = true
				case ldap.SyncStateAdd, ldap.SyncStateModify:
					e, err := newEntry(m.entry)
					if err != nil {
						return fmt.Errorf("ldap %s: syncrepl: %w", s.url, err)
					}
					g := s.syncGroupOf(e)
					if old != nil {
						delete(groupByDN, old.dn)
					}
					groups[uuid] = g
					groupByDN[g.dn] = uuid
					if memberDNs == nil {
						memberDNs = map[string]string{}
					}
					switch {
					case old == nil:
						usersOf(g, memberDNs)
					case old.dn != g.dn || old.name != g.name:
						usersOf(g, memberDNs)
						usersOf(old, memberDNs)
					default:
						for k, dn := range g.members {
							if _, was := old.members[k]; !was {
								s.memberChanged(k, dn, groups, groupByDN, usersOf, memberDNs)
							}
						}
						for k, dn := range old.members {
							if _, is := g.members[k]; !is {
								s.memberChanged(k, dn, groups, groupByDN, usersOf, memberDNs)
							}
						}
					}
				case ldap.SyncStateDelete:
					if old != nil {
						if memberDNs == nil {
							memberDNs = map[string]string{}
						}
						usersOf(old, memberDNs)
						delete(groups, uuid)
						delete(groupByDN, old.dn)
					}
				}
			case *ldap.ControlSyncInfo:
				switch {
				case c.NewCookie != nil:
					s.setCookie(&sc, m.kind, c.NewCookie.Cookie)
				case c.RefreshDelete != nil:
					s.setCookie(&sc, m.kind, c.RefreshDelete.Cookie)
					if c.RefreshDelete.RefreshDone {
						refreshing[m.kind] = false
					}
				case c.RefreshPresent != nil:
					s.setCookie(&sc, m.kind, c.RefreshPresent.Cookie)
					full = true // after a present phase, deletions are implicit
					if c.RefreshPresent.RefreshDone {
						refreshing[m.kind] = false
					}
				case c.SyncIdSet != nil:
					s.setCookie(&sc, m.kind, c.SyncIdSet.Cookie)
					if !c.SyncIdSet.RefreshDeletes {
						full = true
						continue
					}
					for _, u := range c.SyncIdSet.SyncUUIDs {
						uuid := u.String()
						if m.kind == "groups" {
							if g := groups[uuid]; g != nil {
								if memberDNs == nil {
									memberDNs = map[string]string{}
								}
								usersOf(g, memberDNs)
								delete(groups, uuid)
								delete(groupByDN, g.dn)
							}
							continue
						}
						id := s.idByUUID[uuid]
						if id == "" && strings.EqualFold(a.ID, "entryUUID") {
							id = uuid
						}
						if id == "" {
							full = true
						}
						batch.add(id)
					}
				}
			}
		}
		switch {
		case wasRefreshing && !refreshing["users"] && !refreshing["groups"]:
			l.logger.Info("ldap syncrepl stream live", "url", s.url, "resumed", resumed, "full_reconcile", full)
			if err := emit(true); err != nil {
				return err
			}
		case !wasRefreshing:
			if err := emit(false); err != nil {
				return err
			}
		}
	}
}

// memberChanged adds to out the users affected by member k joining or leaving a group: the
// user itself, or every user of a nested group.
func (s *ldapStream) memberChanged(k, dn string, groups map[string]*syncGroup, groupByDN map[string]string,
	usersOf func(*syncGroup, map[string]string), out map[string]string) {
	if u, ok := groupByDN[k]; ok {
		usersOf(groups[u], out)
		return
	}
	out[k] = dn
}

// syncGroupOf is what the stream keeps of a group entry.
func (s *ldapStream) syncGroupOf(e *entry) *syncGroup {
	k, _ := NormalizeDN(e.dn)
	g := &syncGroup{dn: k, name: s.l.groupName(e), members: map[string]string{}}
	if m := s.l.cfg.Attributes.Member; m != "-" {
		for _, v := range e.strs(m) {
			if mk, ok := NormalizeDN(v); ok {
				g.members[mk] = v
			}
		}
	}
	return g
}

// setCookie keeps a cookie the server sent (an empty one changes nothing).
func (s *ldapStream) setCookie(sc *streamCookie, kind string, c []byte) {
	if len(c) == 0 {
		return
	}
	if kind == "users" {
		sc.Users = append([]byte(nil), c...)
	} else {
		sc.Groups = append([]byte(nil), c...)
	}
}
