package babelforcetest

import (
	"slices"
	"sort"
	"strings"
)

// The simulator keeps its records indexed like a database would, so that a list page costs
// O(page size), a uniqueness check O(1) and a filter by agentSource, sourceId, e-mail or
// externalId O(matches): a simulator slower than babelforce would hide bridge's own costs
// and make every large test slow.

// ordered is a record with a creation sequence number (unique, increasing).
type ordered interface {
	comparable
	order() int64
}

func (a *agentRec) order() int64 { return a.seq }
func (u *userRec) order() int64  { return u.seq }
func (g *groupRec) order() int64 { return g.seq }

// seqList holds records in creation order.
type seqList[T ordered] []T

// search returns where v sits (or would sit) in l.
func (l seqList[T]) search(v T) int {
	return sort.Search(len(l), func(i int) bool { return l[i].order() >= v.order() })
}

// insert adds v in creation order (appending in the common case of a new record).
func (l seqList[T]) insert(v T) seqList[T] {
	if n := len(l); n == 0 || l[n-1].order() < v.order() {
		return append(l, v)
	}
	i := l.search(v)
	if i < len(l) && l[i] == v {
		return l
	}
	return slices.Insert(l, i, v)
}

// remove drops v.
func (l seqList[T]) remove(v T) seqList[T] {
	if i := l.search(v); i < len(l) && l[i] == v {
		return slices.Delete(l, i, i+1)
	}
	return l
}

// keyIndex maps a key (an exact value, or a lower-cased one where babelforce compares
// without case) to the records holding it, in creation order. Empty keys are not indexed.
type keyIndex[T ordered] map[string]seqList[T]

func (ix keyIndex[T]) add(k string, v T) {
	if k != "" {
		ix[k] = ix[k].insert(v)
	}
}

func (ix keyIndex[T]) remove(k string, v T) {
	if k == "" {
		return
	}
	if l := ix[k].remove(v); len(l) > 0 {
		ix[k] = l
	} else {
		delete(ix, k)
	}
}

// first returns the oldest record with key k.
func (ix keyIndex[T]) first(k string) (T, bool) {
	var zero T
	if l := ix[k]; len(l) > 0 {
		return l[0], true
	}
	return zero, false
}

// ---- agents ----

// agentKeys are the indexed fields of an agent.
type agentKeys struct{ source, sourceID, email string }

func (a *agentRec) keys() agentKeys {
	return agentKeys{source: a.agentSource, sourceID: a.sourceID, email: strings.ToLower(a.email)}
}

// addAgentLocked stores a new agent (its seq is assigned here) and indexes it.
func (s *Server) addAgentLocked(a *agentRec) {
	s.seq++
	a.seq = s.seq
	s.agents[a.id] = a
	s.agentOrder = s.agentOrder.insert(a)
	s.indexAgentLocked(a, agentKeys{}, a.keys())
}

// indexAgentLocked moves a from the index entries of old to those of new; only changed keys
// are touched.
func (s *Server) indexAgentLocked(a *agentRec, old, new agentKeys) {
	if old.source != new.source {
		s.agentsBySource.remove(old.source, a)
		s.agentsBySource.add(new.source, a)
	}
	if old.sourceID != new.sourceID {
		s.agentsBySourceID.remove(old.sourceID, a)
		s.agentsBySourceID.add(new.sourceID, a)
	}
	if old.email != new.email {
		s.agentsByEmail.remove(old.email, a)
		s.agentsByEmail.add(new.email, a)
	}
}

// replaceAgentLocked makes *a next, keeping the indexes right.
func (s *Server) replaceAgentLocked(a *agentRec, next agentRec) {
	old := a.keys()
	next.seq, next.groups = a.seq, a.groups
	*a = next
	s.indexAgentLocked(a, old, a.keys())
}

func (s *Server) deleteAgentLocked(id string) {
	a := s.agents[id]
	if a == nil {
		return
	}
	s.setMembershipsLocked(a, nil)
	s.indexAgentLocked(a, a.keys(), agentKeys{})
	delete(s.agents, id)
	s.agentOrder = s.agentOrder.remove(a)
	delete(s.externalIDs, id)
}

// agentByEmailLocked returns the oldest agent with the e-mail (any case).
func (s *Server) agentByEmailLocked(email string) *agentRec {
	a, _ := s.agentsByEmail.first(strings.ToLower(email))
	return a
}

// ---- agent groups and memberships ----

func (s *Server) addGroupLocked(g *groupRec) {
	s.seq++
	g.seq = s.seq
	s.groups[g.id] = g
	s.groupOrder = append(s.groupOrder, g.id)
}

func (s *Server) deleteGroupLocked(g *groupRec) {
	for _, id := range g.members {
		if a := s.agents[id]; a != nil {
			a.groups = a.groups.remove(g)
		}
	}
	delete(s.groups, g.id)
	s.groupOrder = slices.DeleteFunc(s.groupOrder, func(x string) bool { return x == g.id })
}

// joinLocked makes a a member of g (members in the order they joined).
func (s *Server) joinLocked(a *agentRec, g *groupRec) {
	if slices.Contains(a.groups, g) {
		return
	}
	a.groups = a.groups.insert(g)
	g.members = append(g.members, a.id)
}

// leaveLocked removes a from g; it reports whether a was a member.
func (s *Server) leaveLocked(a *agentRec, g *groupRec) bool {
	if !slices.Contains(a.groups, g) {
		return false
	}
	a.groups = a.groups.remove(g)
	g.members = slices.DeleteFunc(g.members, func(id string) bool { return id == a.id })
	return true
}

// setMembershipsLocked makes a a member of exactly the groups with the given ids.
func (s *Server) setMembershipsLocked(a *agentRec, groupIDs []string) {
	for _, g := range slices.Clone(a.groups) {
		if !slices.Contains(groupIDs, g.id) {
			s.leaveLocked(a, g)
		}
	}
	for _, id := range groupIDs {
		if g := s.groups[id]; g != nil {
			s.joinLocked(a, g)
		}
	}
}

// ---- login users ----

// userKeys are the indexed fields of a login user.
type userKeys struct{ email, externalID string }

func (u *userRec) keys() userKeys { return userKeys{email: u.email, externalID: u.externalID} }

func (s *Server) addUserLocked(u *userRec) {
	s.seq++
	u.seq = s.seq
	s.users[u.id] = u
	s.userOrder = s.userOrder.insert(u)
	s.indexUserLocked(u, userKeys{}, u.keys())
}

func (s *Server) indexUserLocked(u *userRec, old, new userKeys) {
	if old.email != new.email {
		s.usersByEmail.remove(old.email, u)
		s.usersByEmail.add(new.email, u)
	}
	if old.externalID != new.externalID {
		s.usersByExt.remove(old.externalID, u)
		s.usersByExt.add(new.externalID, u)
	}
}

// replaceUserLocked makes *u next, keeping the indexes right.
func (s *Server) replaceUserLocked(u *userRec, next userRec) {
	old := u.keys()
	next.seq = u.seq
	*u = next
	s.indexUserLocked(u, old, u.keys())
}

func (s *Server) deleteUserLocked(id string) {
	u := s.users[id]
	if u == nil {
		return
	}
	s.indexUserLocked(u, u.keys(), userKeys{})
	delete(s.users, id)
	s.userOrder = s.userOrder.remove(u)
}

// userByEmailLocked returns the oldest user with the e-mail (stored lower-case).
func (s *Server) userByEmailLocked(email string) *userRec {
	u, _ := s.usersByEmail.first(strings.ToLower(strings.TrimSpace(email)))
	return u
}
