package babelforcetest

import (
	"slices"
	"strings"

	"github.com/babelforce/bridge/babelforce"
)

// Seeding and inspection helpers. They bypass HTTP (no call counting, no faults, no
// validation beyond what keeps the store consistent) and are safe for concurrent use.

// PutAgent stores a (creating it, or replacing the agent with the same id) and returns it as
// the API would answer it. An empty ID gets a fresh one; a hyphenated ID is normalised.
// Enabled nil means enabled. a.Groups makes the agent a member of exactly those groups,
// found by ID or else by name (a missing group is created).
func (s *Server) PutAgent(a babelforce.Agent) babelforce.Agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := babelforce.NormalizeID(a.ID)
	if id == "" {
		id = newID()
	}
	now := s.stamp()
	next := agentRec{id: id, created: now, name: a.Name, email: a.Email, number: a.Number,
		sourceID: a.SourceID, agentSource: a.AgentSource, enabled: a.IsEnabled(),
		tags: addUnique(nil, a.Tags...), updated: now}
	rec, ok := s.agents[id]
	if ok {
		next.created = rec.created
		s.replaceAgentLocked(rec, next)
	} else {
		if a.DateCreated != "" {
			next.created = a.DateCreated
		}
		rec = &next
		s.addAgentLocked(rec)
	}
	var groups []string
	for _, g := range a.Groups {
		groups = append(groups, s.findOrCreateGroupLocked(g.ID, g.Name))
	}
	s.setMembershipsLocked(rec, groups)
	return s.agentJSONLocked(rec)
}

func (s *Server) findOrCreateGroupLocked(id, name string) string {
	if g, ok := s.groups[babelforce.NormalizeID(id)]; ok && id != "" {
		return g.id
	}
	for _, gid := range s.groupOrder {
		if strings.EqualFold(s.groups[gid].name, name) {
			return gid
		}
	}
	gid := babelforce.NormalizeID(id)
	if gid == "" {
		gid = newID()
	}
	if name == "" {
		name = "group-" + gid[:8]
	}
	s.addGroupLocked(&groupRec{id: gid, name: name, created: s.stamp()})
	return gid
}

// Agent returns the agent with the given id.
func (s *Server) Agent(id string) (babelforce.Agent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[babelforce.NormalizeID(id)]
	if !ok {
		return babelforce.Agent{}, false
	}
	return s.agentJSONLocked(a), true
}

// Agents returns every agent in creation order, as the API renders them.
func (s *Server) Agents() []babelforce.Agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agentsJSONLocked(s.agentOrder)
}

// DeleteAgent removes an agent (with its memberships and external ids); it reports whether
// it existed.
func (s *Server) DeleteAgent(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	id = babelforce.NormalizeID(id)
	if _, ok := s.agents[id]; !ok {
		return false
	}
	s.deleteAgentLocked(id)
	return true
}

// PutAgentGroup stores g (creating it, or replacing the group with the same id) and returns it.
func (s *Server) PutAgentGroup(g babelforce.AgentGroup) babelforce.AgentGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := babelforce.NormalizeID(g.ID)
	if id == "" {
		id = newID()
	}
	rec, ok := s.groups[id]
	if !ok {
		rec = &groupRec{id: id, created: s.stamp()}
		s.addGroupLocked(rec)
	}
	rec.name, rec.tags = g.Name, addUnique(nil, g.Tags...)
	return groupJSON(rec)
}

// AgentGroups returns every agent group in creation order.
func (s *Server) AgentGroups() []babelforce.AgentGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]babelforce.AgentGroup, 0, len(s.groupOrder))
	for _, id := range s.groupOrder {
		out = append(out, groupJSON(s.groups[id]))
	}
	return out
}

// AgentGroupMembers returns the ids of a group's agents in the order they were added (nil
// for an unknown group).
func (s *Server) AgentGroupMembers(groupID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[babelforce.NormalizeID(groupID)]
	if !ok {
		return nil
	}
	return slices.Clone(g.members)
}

// AddAgentToGroup makes an agent a member of a group; it reports whether both exist.
func (s *Server) AddAgentToGroup(groupID, agentID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[babelforce.NormalizeID(groupID)]
	if !ok {
		return false
	}
	a, ok := s.agents[babelforce.NormalizeID(agentID)]
	if !ok {
		return false
	}
	s.joinLocked(a, g)
	return true
}

// AgentTags returns the tag catalogue (the sorted union of all agent tags).
func (s *Server) AgentTags() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agentTagsLocked()
}

// PutUser stores a login user (creating it, or replacing the user with the same id) and
// returns it as the Manager API renders it. Email is lower-cased; Enabled and Activated nil
// mean true. Roles are stored as given.
func (s *Server) PutUser(u babelforce.User) babelforce.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.putUserLocked(babelforce.NormalizeID(u.ID), func(rec *userRec) {
		rec.email = strings.ToLower(strings.TrimSpace(u.Email))
		rec.roles = addUnique(nil, u.Roles...)
		rec.enabled = u.Enabled == nil || *u.Enabled
		rec.activated = u.Activated == nil || *u.Activated
	})
	return userOut(s.managedUserLocked(rec))
}

// putUserLocked creates the user with the id (a fresh one when empty) or replaces it, with
// the fields fill sets.
func (s *Server) putUserLocked(id string, fill func(*userRec)) *userRec {
	if id == "" {
		id = newID()
	}
	rec, ok := s.users[id]
	if !ok {
		now := s.stamp()
		rec = &userRec{id: id, created: now, updated: now, version: 1}
		fill(rec)
		s.addUserLocked(rec)
		return rec
	}
	next := *rec
	fill(&next)
	s.replaceUserLocked(rec, next)
	s.touchLocked(rec)
	return rec
}

func userOut(m managedUser) babelforce.User {
	en, act := m.Enabled, m.Activated
	return babelforce.User{ID: m.ID, Email: m.Email, Username: m.Email, Roles: m.Roles, Enabled: &en, Activated: &act, Agent: m.Agent}
}

// Users returns every login user in creation order, as the Manager API renders them.
func (s *Server) Users() []babelforce.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]babelforce.User, 0, len(s.userOrder))
	for _, u := range s.userOrder {
		out = append(out, userOut(s.managedUserLocked(u)))
	}
	return out
}

// PasswordResets returns how often a password reset was requested for email.
func (s *Server) PasswordResets(email string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.userByEmailLocked(email); u != nil {
		return u.passwordResets
	}
	return 0
}

// PutSCIMUser stores a login user from its SCIM form (creating it, or replacing the user with
// the same id) and returns it as SCIM renders it. UserName is lower-cased; Active nil means
// active; roles are taken from Roles[].Value.
func (s *Server) PutSCIMUser(u babelforce.SCIMUser) babelforce.SCIMUser {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.putUserLocked(babelforce.NormalizeID(u.ID), func(rec *userRec) {
		rec.email = strings.ToLower(strings.TrimSpace(u.UserName))
		rec.externalID, rec.displayName = u.ExternalID, u.DisplayName
		rec.name = nil
		if u.Name != nil {
			n := *u.Name
			rec.name = &n
		}
		rec.emails, rec.phones = slices.Clone(u.Emails), slices.Clone(u.PhoneNumbers)
		rec.roles = nil
		for _, r := range u.Roles {
			rec.roles = addUnique(rec.roles, r.Value)
		}
		rec.enabled = u.IsActive()
		rec.activated = true
	})
	return s.scimUserLocked(rec, s.URL)
}

// SCIMUsers returns every login user in creation order, as SCIM renders them.
func (s *Server) SCIMUsers() []babelforce.SCIMUser {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]babelforce.SCIMUser, 0, len(s.userOrder))
	for _, u := range s.userOrder {
		out = append(out, s.scimUserLocked(u, s.URL))
	}
	return out
}

// SCIMConfiguration returns the SCIM configuration.
func (s *Server) SCIMConfiguration() babelforce.SCIMConfiguration {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.scimConfig
	c.DefaultRoles = nonNil(slices.Clone(c.DefaultRoles))
	return c
}

// SetSCIMConfiguration replaces the SCIM configuration and returns it.
func (s *Server) SetSCIMConfiguration(c babelforce.SCIMConfiguration) babelforce.SCIMConfiguration {
	s.mu.Lock()
	c.DefaultRoles = nonNil(slices.Clone(c.DefaultRoles))
	s.scimConfig = c
	s.mu.Unlock()
	return s.SCIMConfiguration()
}

// SSOConfig returns the stored SSO configuration, including the client secret unmasked and
// without redirect URIs (which the API fills in on every read).
func (s *Server) SSOConfig() babelforce.SSOConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneSSO(s.sso)
}

// SetSSOConfig replaces the stored SSO configuration (RedirectURIs is ignored).
func (s *Server) SetSSOConfig(c babelforce.SSOConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c = cloneSSO(c)
	c.RedirectURIs = nil
	s.sso = c
}

// ExternalIDs returns an agent's external ids sorted by integration id.
func (s *Server) ExternalIDs(agentID string) []babelforce.ExternalID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.externalIDsLocked(babelforce.NormalizeID(agentID))
}

// SetExternalID stores an agent's external id for an integration (no check that the agent
// exists).
func (s *Server) SetExternalID(agentID, integrationID, externalID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	agentID = babelforce.NormalizeID(agentID)
	if s.externalIDs[agentID] == nil {
		s.externalIDs[agentID] = map[string]string{}
	}
	s.externalIDs[agentID][integrationID] = externalID
}
