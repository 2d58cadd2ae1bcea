package babelforcetest

import (
	"net/http"
	"sort"
	"strings"
)

func (s *Server) registerRoutes() {
	const (
		get, post, put, del, patch = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch
	)
	s.handle(post, "/oauth/token", s.token)

	s.handle(get, "/api/v2/agents", s.listAgents)
	s.handle(post, "/api/v2/agents", s.createAgent)
	s.handle(get, "/api/v2/agents/{id}", s.getAgent)
	s.handle(put, "/api/v2/agents/{id}", s.updateAgent)
	s.handle(del, "/api/v2/agents/{id}", s.deleteAgent)
	s.handle(put, "/api/v2/agents/{id}/enable", s.setAgentEnabled(true))
	s.handle(put, "/api/v2/agents/{id}/disable", s.setAgentEnabled(false))
	s.handle(post, "/api/v2/agents/bulk/enable", s.bulkAgents(true))
	s.handle(post, "/api/v2/agents/bulk/disable", s.bulkAgents(false))
	s.handle(get, "/api/v2/agents/{id}/external-ids", s.listExternalIDs)
	s.handle(put, "/api/v2/agents/{id}/external-ids/{integrationId}", s.setExternalID)
	s.handle(del, "/api/v2/agents/{id}/external-ids/{integrationId}", s.deleteExternalID)

	s.handle(get, "/api/v2/agents/groups", s.listGroups)
	s.handle(post, "/api/v2/agents/groups", s.createGroup)
	s.handle(get, "/api/v2/agents/groups/{id}", s.getGroup)
	s.handle(put, "/api/v2/agents/groups/{id}", s.updateGroup)
	s.handle(del, "/api/v2/agents/groups/{id}", s.deleteGroup)
	s.handle(get, "/api/v2/agents/groups/{groupId}/agents", s.listGroupMembers)
	s.handle(post, "/api/v2/agents/groups/{groupId}/agents", s.addGroupMember)
	s.handle(del, "/api/v2/agents/groups/{groupId}/agents/{agentId}", s.removeGroupMember)

	s.handle(get, "/api/v2/tags/agent", s.listAgentTags)
	s.handle(get, "/api/v2/tags/{category}", s.listOtherTags)

	s.handle(get, "/api/v2/users", s.listUsers)
	s.handle(post, "/api/v2/users", s.createUser)
	s.handle(get, "/api/v2/users/{id}", s.getUser)
	s.handle(get, "/api/v2/users/by-email/{email}", s.getUserByEmail)
	s.handle(post, "/api/v2/users/enable", s.usersAction("enable"))
	s.handle(post, "/api/v2/users/disable", s.usersAction("disable"))
	s.handle(post, "/api/v2/users/delete", s.usersAction("delete"))
	s.handle(post, "/api/v2/users/reset-password", s.usersAction("reset-password"))
	s.handle(get, "/api/v2/users/roles", s.listRoles)
	s.handle(post, "/api/v2/users/roles", s.userRoles(true))
	s.handle(post, "/api/v2/users/roles/remove", s.userRoles(false))

	s.handle(get, "/auth/scim/v2/Users", s.scimList)
	s.handle(post, "/auth/scim/v2/Users", s.scimCreate)
	s.handle(get, "/auth/scim/v2/Users/{id}", s.scimGet)
	s.handle(put, "/auth/scim/v2/Users/{id}", s.scimReplace)
	s.handle(patch, "/auth/scim/v2/Users/{id}", s.scimPatch)
	s.handle(del, "/auth/scim/v2/Users/{id}", s.scimDelete)
	s.handle(get, "/auth/scim/v2/ServiceProviderConfig", s.scimServiceProviderConfig)
	for _, m := range []string{get, post, put, patch, del} {
		s.handle(m, "/auth/scim/v2/Groups", s.scimGroups)
		s.handle(m, "/auth/scim/v2/Groups/{id}", s.scimGroups)
	}
	s.handle(get, "/auth/scim/v2/configuration", s.getSCIMConfig)
	s.handle(put, "/auth/scim/v2/configuration", s.putSCIMConfig)

	s.handle(get, "/auth/sso/configuration", s.getSSO)
	s.handle(put, "/auth/sso/configuration", s.putSSO)

	s.handle(get, "/_simulator/stats", s.stats)
	s.handle(get, "/_simulator/faults", s.getFaults)
	s.handle(post, "/_simulator/faults", s.postFaults)
}

// ---- /_simulator ----

// Stats is the body of GET /_simulator/stats.
type Stats struct {
	// Calls maps "METHOD /path/template" to the number of requests.
	Calls map[string]int `json:"calls"`
	// Endpoints lists the keys of Calls, sorted.
	Endpoints []string `json:"endpoints"`
	// Total is the number of requests; Writes those WriteCalls counts.
	Total  int `json:"total"`
	Writes int `json:"writes"`
	// Agents, AgentGroups, Users count the stored objects.
	Agents      int `json:"agents"`
	AgentGroups int `json:"agentGroups"`
	Users       int `json:"users"`
}

// Stats returns what GET /_simulator/stats answers.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Calls: map[string]int{}, Endpoints: []string{}, Writes: s.writeCallsLocked(),
		Agents: len(s.agents), AgentGroups: len(s.groups), Users: len(s.users)}
	for k, v := range s.calls {
		st.Calls[k] = v
		st.Endpoints = append(st.Endpoints, k)
		st.Total += v
	}
	sort.Strings(st.Endpoints)
	return st
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request, _ params) {
	writeJSON(w, http.StatusOK, s.Stats())
}

type faultsJSON struct {
	Rate429    float64  `json:"rate429"`
	Rate5xx    float64  `json:"rate5xx"`
	RetryAfter string   `json:"retryAfter"`
	Latency    string   `json:"latency"`
	DropRate   float64  `json:"dropRate"`
	CutRate    float64  `json:"cutRate"`
	LostRate   float64  `json:"lostRate"`
	Paths      []string `json:"paths"`
}

func faultsOut(f Faults) faultsJSON {
	p := f.Paths
	if p == nil {
		p = []string{}
	}
	return faultsJSON{Rate429: f.Rate429, Rate5xx: f.Rate5xx, RetryAfter: f.RetryAfter.String(), Latency: f.Latency.String(), DropRate: f.DropRate,
		CutRate: f.CutRate, LostRate: f.LostRate, Paths: p}
}

func (s *Server) getFaults(w http.ResponseWriter, r *http.Request, _ params) {
	writeJSON(w, http.StatusOK, faultsOut(s.CurrentFaults()))
}

// postFaults replaces the faults: {"rate429":0.1,"rate5xx":0,"retryAfter":"1s",
// "latency":"50ms","dropRate":0,"paths":["/api/v2/agents"]}.
func (s *Server) postFaults(w http.ResponseWriter, r *http.Request, _ params) {
	var f Faults
	if !s.decodeJSON(w, r, &f) {
		return
	}
	for i, p := range f.Paths {
		if !strings.HasPrefix(p, "/") {
			s.writeError(w, r, http.StatusBadRequest, "bad_request", "paths["+itoa(i)+"] must start with /")
			return
		}
	}
	if err := s.SetFaults(f); err != nil {
		s.writeError(w, r, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, faultsOut(f))
}
