package babelforcetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"slices"
	"sort"
	"strings"

	"github.com/babelforce/bridge/babelforce"
)

type agentRec struct {
	id, name, email, number, sourceID, agentSource string
	enabled                                        bool
	tags                                           []string
	created, updated                               string
	seq                                            int64
	groups                                         seqList[*groupRec] // in group creation order
}

type groupRec struct {
	id, name string
	tags     []string
	created  string
	seq      int64
	members  []string // agent ids, in the order they were added
}

// ---- rendering (callers hold s.mu) ----

func (s *Server) agentJSONLocked(a *agentRec) babelforce.Agent {
	return s.agentsJSONLocked([]*agentRec{a})[0]
}

// agentsJSONLocked renders recs with their groups in group creation order; it costs
// O(len(recs) + their memberships), so a list renders just its page.
func (s *Server) agentsJSONLocked(recs []*agentRec) []babelforce.Agent {
	out := make([]babelforce.Agent, len(recs))
	for i, a := range recs {
		en := a.enabled
		out[i] = babelforce.Agent{
			ID: a.id, Name: a.name, Email: a.email, Number: a.number, Enabled: &en,
			Tags: slices.Clone(a.tags), SourceID: a.sourceID, AgentSource: a.agentSource,
			DateCreated: a.created, LastUpdated: a.updated,
		}
		for _, g := range a.groups {
			out[i].Groups = append(out[i].Groups, babelforce.GroupRef{ID: g.id, Name: g.name, DateCreated: g.created})
		}
	}
	return out
}

// membersLocked returns the ids of the agents in the groups keep selects.
func (s *Server) membersLocked(keep func(*groupRec) bool) map[string]bool {
	in := map[string]bool{}
	for _, gid := range s.groupOrder {
		if g := s.groups[gid]; keep(g) {
			for _, id := range g.members {
				in[id] = true
			}
		}
	}
	return in
}

func groupJSON(g *groupRec) babelforce.AgentGroup {
	return babelforce.AgentGroup{ID: g.id, Name: g.name, Tags: slices.Clone(g.tags)}
}

// ---- validation ----

type validationError struct {
	status int
	code   string
	msg    string
}

func (e *validationError) Error() string { return e.msg }

func badRequest(format string, args ...any) *validationError {
	return &validationError{status: http.StatusBadRequest, code: "validation_error", msg: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) *validationError {
	return &validationError{status: http.StatusConflict, code: "conflict", msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *validationError {
	return &validationError{status: http.StatusNotFound, code: "not_found", msg: fmt.Sprintf(format, args...)}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err *validationError) {
	s.writeError(w, r, err.status, err.code, err.msg)
}

// agentLocked returns the agent with the id, or answers 404 and returns nil.
func (s *Server) agentLocked(w http.ResponseWriter, r *http.Request, id string) *agentRec {
	a := s.agents[id]
	if a == nil {
		s.fail(w, r, notFound("agent %q not found", id))
	}
	return a
}

// groupLocked returns the agent group with the id, or answers 404 and returns nil.
func (s *Server) groupLocked(w http.ResponseWriter, r *http.Request, id string) *groupRec {
	g := s.groups[id]
	if g == nil {
		s.fail(w, r, notFound("agent group %q not found", id))
	}
	return g
}

// writeItem answers {"item": item, "success": true}, babelforce's shape for one object.
func writeItem(w http.ResponseWriter, status int, item any) {
	writeJSON(w, status, map[string]any{"item": item, "success": true})
}

func validEmail(e string) bool {
	a, err := mail.ParseAddress(e)
	return err == nil && a.Address == e && a.Name == ""
}

func rawString(field string, raw json.RawMessage) (string, *validationError) {
	if string(raw) == "null" {
		return "", nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", badRequest("%s must be a string", field)
	}
	return v, nil
}

func cleanTags(field string, raw json.RawMessage) ([]string, *validationError) {
	if string(raw) == "null" {
		return nil, nil
	}
	var tags []string
	if err := json.Unmarshal(raw, &tags); err != nil {
		return nil, badRequest("%s must be an array of strings", field)
	}
	var out []string
	for i, t := range tags {
		if strings.TrimSpace(t) == "" {
			return nil, badRequest("%s[%d] must not be empty", field, i)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// applyAgentFields applies the fields present in body to a (a copy); groups is non-nil when
// the body sets the group memberships. Callers hold s.mu.
func (s *Server) applyAgentFields(a *agentRec, body map[string]json.RawMessage) (groups []string, setGroups bool, verr *validationError) {
	for k, raw := range body {
		switch k {
		case "name", "email", "number", "sourceId", "agentSource":
			v, err := rawString(k, raw)
			if err != nil {
				return nil, false, err
			}
			switch k {
			case "name":
				a.name = v
			case "email":
				if v != "" && !validEmail(v) {
					return nil, false, badRequest("email %q is not a valid e-mail address", v)
				}
				a.email = v
			case "number":
				a.number = v
			case "sourceId":
				a.sourceID = v
			case "agentSource":
				a.agentSource = v
			}
		case "enabled":
			if string(raw) == "null" {
				a.enabled = true
				continue
			}
			if err := json.Unmarshal(raw, &a.enabled); err != nil {
				return nil, false, badRequest("enabled must be a boolean")
			}
		case "tags":
			tags, err := cleanTags("tags", raw)
			if err != nil {
				return nil, false, err
			}
			a.tags = tags
		case "groups":
			setGroups = true
			if string(raw) == "null" {
				continue
			}
			var refs []struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(raw, &refs); err != nil {
				return nil, false, badRequest("groups must be an array of {\"id\": ...} objects")
			}
			for i, ref := range refs {
				if _, ok := s.groups[ref.ID]; !ok {
					return nil, false, badRequest("groups[%d]: agent group %q not found", i, ref.ID)
				}
				if !slices.Contains(groups, ref.ID) {
					groups = append(groups, ref.ID)
				}
			}
		}
	}
	if strings.TrimSpace(a.name) == "" {
		return nil, false, badRequest("name is required")
	}
	if a.email != "" {
		for _, o := range s.agentsByEmail[strings.ToLower(a.email)] {
			if o.id != a.id {
				return nil, false, conflict("an agent with email %q already exists (id %s)", a.email, o.id)
			}
		}
	}
	return groups, setGroups, nil
}

func decodeObject(s *Server, w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, bool) {
	var body map[string]json.RawMessage
	if !s.decodeJSON(w, r, &body) {
		return nil, false
	}
	if body == nil {
		s.writeError(w, r, http.StatusBadRequest, "bad_request", "request body must be a JSON object")
		return nil, false
	}
	return body, true
}

// ---- agents ----

func splitMulti(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, _ params) {
	page, size, ok := s.pageParams(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	var enabled *bool
	if v := q.Get("enabled"); v != "" {
		switch v {
		case "true":
			t := true
			enabled = &t
		case "false":
			f := false
			enabled = &f
		default:
			s.writeError(w, r, http.StatusBadRequest, "bad_request", fmt.Sprintf("enabled %q must be true or false", v))
			return
		}
	}
	tags, groupIDs, groupNames := splitMulti(q["tags"]), splitMulti(q["groupIds"]), splitMulti(q["groups"])
	search := strings.ToLower(q.Get("q"))
	name := strings.ToLower(q.Get("name"))

	s.mu.Lock()
	defer s.mu.Unlock()
	// The group filters and q's group-name match become sets of member ids, computed once.
	var inGroupIDs, inGroupNames, inSearchGroups map[string]bool
	if len(groupIDs) > 0 {
		inGroupIDs = s.membersLocked(func(g *groupRec) bool { return slices.Contains(groupIDs, g.id) })
	}
	if len(groupNames) > 0 {
		inGroupNames = s.membersLocked(func(g *groupRec) bool { return slices.Contains(groupNames, g.name) })
	}
	if search != "" {
		inSearchGroups = s.membersLocked(func(g *groupRec) bool { return strings.Contains(strings.ToLower(g.name), search) })
	}
	// The candidates come from the most selective index; when that index was the only
	// filter they are the hits, and only the page is rendered.
	candidates := s.agentOrder
	sourceID, source, number := q.Get("sourceId"), q.Get("source"), q.Get("number")
	if sourceID != "" {
		candidates = s.agentsBySourceID[sourceID]
	}
	if l := s.agentsBySource[source]; source != "" && len(l) < len(candidates) {
		candidates = l
	}
	hits := []*agentRec(candidates)
	if (sourceID != "" && source != "") || number != "" || name != "" || enabled != nil || len(tags) > 0 ||
		inGroupIDs != nil || inGroupNames != nil || search != "" {
		hits = nil
	} else {
		candidates = nil
	}
	for _, a := range candidates {
		if sourceID != "" && a.sourceID != sourceID {
			continue
		}
		if source != "" && a.agentSource != source {
			continue
		}
		if number != "" && a.number != number {
			continue
		}
		if name != "" && !strings.Contains(strings.ToLower(a.name), name) {
			continue
		}
		if enabled != nil && a.enabled != *enabled {
			continue
		}
		if len(tags) > 0 && !slices.ContainsFunc(tags, func(t string) bool { return slices.Contains(a.tags, t) }) {
			continue
		}
		if inGroupIDs != nil && !inGroupIDs[a.id] {
			continue
		}
		if inGroupNames != nil && !inGroupNames[a.id] {
			continue
		}
		if search != "" && !inSearchGroups[a.id] && !matchesQ(a, search) {
			continue
		}
		hits = append(hits, a)
	}
	from, to, p := paginate(r, len(hits), page, size)
	writeJSON(w, http.StatusOK, map[string]any{"items": s.agentsJSONLocked(hits[from:to]), "pagination": p})
}

// matchesQ is the q filter on the agent's own fields: a case-insensitive substring of name,
// email, number or sourceId (search is lower-case). A group name matching also counts; the
// caller checks that.
func matchesQ(a *agentRec, search string) bool {
	for _, h := range []string{a.name, a.email, a.number, a.sourceID} {
		if strings.Contains(strings.ToLower(h), search) {
			return true
		}
	}
	return false
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func (s *Server) createAgent(w http.ResponseWriter, r *http.Request, _ params) {
	body, ok := decodeObject(s, w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.stamp()
	a := &agentRec{id: newID(), enabled: true, created: now, updated: now}
	groups, setGroups, verr := s.applyAgentFields(a, body)
	if verr != nil {
		s.fail(w, r, verr)
		return
	}
	s.addAgentLocked(a)
	if setGroups {
		s.setMembershipsLocked(a, groups)
	}
	writeItem(w, http.StatusCreated, s.agentJSONLocked(a))
}

func (s *Server) getAgent(w http.ResponseWriter, r *http.Request, p params) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.agentLocked(w, r, p["id"])
	if a == nil {
		return
	}
	writeItem(w, http.StatusOK, s.agentJSONLocked(a))
}

func (s *Server) updateAgent(w http.ResponseWriter, r *http.Request, p params) {
	body, ok := decodeObject(s, w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.agentLocked(w, r, p["id"])
	if a == nil {
		return
	}
	next := *a
	next.tags = slices.Clone(a.tags)
	groups, setGroups, verr := s.applyAgentFields(&next, body)
	if verr != nil {
		s.fail(w, r, verr)
		return
	}
	next.updated = s.stamp()
	s.replaceAgentLocked(a, next)
	if setGroups {
		s.setMembershipsLocked(a, groups)
	}
	writeItem(w, http.StatusOK, s.agentJSONLocked(a))
}

func (s *Server) deleteAgent(w http.ResponseWriter, r *http.Request, p params) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.agentLocked(w, r, p["id"]) == nil {
		return
	}
	s.deleteAgentLocked(p["id"])
	message(w, "Agent deleted")
}

func (s *Server) setAgentEnabled(enabled bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p params) {
		s.mu.Lock()
		defer s.mu.Unlock()
		a := s.agentLocked(w, r, p["id"])
		if a == nil {
			return
		}
		if a.enabled != enabled {
			a.enabled = enabled
			a.updated = s.stamp()
		}
		if enabled {
			message(w, "Agent enabled")
		} else {
			message(w, "Agent disabled")
		}
	}
}

type bulkResult struct {
	ID      string            `json:"id"`
	Success bool              `json:"success"`
	Error   string            `json:"error,omitempty"`
	Item    *babelforce.Agent `json:"item,omitempty"`
}

func (s *Server) bulkAgents(enabled bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ params) {
		var body struct {
			IDs *[]string `json:"ids"`
		}
		if !s.decodeJSON(w, r, &body) {
			return
		}
		if body.IDs == nil {
			s.writeError(w, r, http.StatusBadRequest, "validation_error", "ids is required")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		out := []bulkResult{}
		for _, id := range *body.IDs {
			a, ok := s.agents[id]
			if !ok {
				out = append(out, bulkResult{ID: id, Success: false, Error: fmt.Sprintf("agent %q not found", id)})
				continue
			}
			if a.enabled != enabled {
				a.enabled = enabled
				a.updated = s.stamp()
			}
			item := s.agentJSONLocked(a)
			out = append(out, bulkResult{ID: id, Success: true, Item: &item})
		}
		writeJSON(w, http.StatusOK, map[string]any{"bulk": out})
	}
}

// ---- agent groups ----

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request, _ params) {
	page, size, ok := s.pageParams(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	items := make([]babelforce.AgentGroup, 0, len(s.groupOrder))
	for _, id := range s.groupOrder {
		items = append(items, groupJSON(s.groups[id]))
	}
	s.mu.Unlock()
	from, to, p := paginate(r, len(items), page, size)
	writeJSON(w, http.StatusOK, map[string]any{"items": items[from:to], "pagination": p})
}

func (s *Server) applyGroupFields(g *groupRec, body map[string]json.RawMessage) *validationError {
	for k, raw := range body {
		switch k {
		case "name":
			v, err := rawString("name", raw)
			if err != nil {
				return err
			}
			g.name = v
		case "tags":
			tags, err := cleanTags("tags", raw)
			if err != nil {
				return err
			}
			g.tags = tags
		}
	}
	if strings.TrimSpace(g.name) == "" {
		return badRequest("name is required")
	}
	for _, o := range s.groups {
		if o.id != g.id && strings.EqualFold(o.name, g.name) {
			return conflict("an agent group named %q already exists (id %s)", g.name, o.id)
		}
	}
	return nil
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request, _ params) {
	body, ok := decodeObject(s, w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &groupRec{id: newID(), created: s.stamp()}
	if verr := s.applyGroupFields(g, body); verr != nil {
		s.fail(w, r, verr)
		return
	}
	s.addGroupLocked(g)
	writeItem(w, http.StatusCreated, groupJSON(g))
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request, p params) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupLocked(w, r, p["id"])
	if g == nil {
		return
	}
	writeItem(w, http.StatusOK, groupJSON(g))
}

func (s *Server) updateGroup(w http.ResponseWriter, r *http.Request, p params) {
	body, ok := decodeObject(s, w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupLocked(w, r, p["id"])
	if g == nil {
		return
	}
	next := *g
	if verr := s.applyGroupFields(&next, body); verr != nil {
		s.fail(w, r, verr)
		return
	}
	g.name, g.tags = next.name, next.tags
	writeItem(w, http.StatusOK, groupJSON(g))
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request, p params) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupLocked(w, r, p["id"])
	if g == nil {
		return
	}
	s.deleteGroupLocked(g)
	message(w, "AgentGroup deleted")
}

func (s *Server) listGroupMembers(w http.ResponseWriter, r *http.Request, p params) {
	page, size, ok := s.pageParams(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	g := s.groupLocked(w, r, p["groupId"])
	if g == nil {
		s.mu.Unlock()
		return
	}
	from, to, pg := paginate(r, len(g.members), page, size)
	recs := make([]*agentRec, 0, to-from)
	for _, id := range g.members[from:to] {
		recs = append(recs, s.agents[id])
	}
	items := s.agentsJSONLocked(recs)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "pagination": pg})
}

func (s *Server) addGroupMember(w http.ResponseWriter, r *http.Request, p params) {
	var body struct {
		ID string `json:"id"`
	}
	if !s.decodeJSON(w, r, &body) {
		return
	}
	if body.ID == "" {
		s.writeError(w, r, http.StatusBadRequest, "validation_error", "id (the agent's id) is required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupLocked(w, r, p["groupId"])
	if g == nil {
		return
	}
	a := s.agentLocked(w, r, body.ID)
	if a == nil {
		return
	}
	s.joinLocked(a, g)
	writeJSON(w, http.StatusOK, map[string]any{"item": groupJSON(g), "agent": s.agentJSONLocked(a), "success": true, "message": "Agent added to group"})
}

func (s *Server) removeGroupMember(w http.ResponseWriter, r *http.Request, p params) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupLocked(w, r, p["groupId"])
	if g == nil {
		return
	}
	if a := s.agents[p["agentId"]]; a == nil || !s.leaveLocked(a, g) {
		s.fail(w, r, notFound("agent %q is not a member of agent group %q", p["agentId"], g.id))
		return
	}
	writeItem(w, http.StatusOK, groupJSON(g))
}

// ---- tags ----

func (s *Server) agentTagsLocked() []string {
	set := map[string]bool{}
	for _, a := range s.agents {
		for _, t := range a.tags {
			set[t] = true
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func (s *Server) listAgentTags(w http.ResponseWriter, r *http.Request, _ params) {
	s.mu.Lock()
	tags := s.agentTagsLocked()
	s.mu.Unlock()
	items := make([]map[string]any, 0, len(tags))
	for _, t := range tags {
		items = append(items, map[string]any{"name": t, "category": "agent"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "success": true})
}

func (s *Server) listOtherTags(w http.ResponseWriter, r *http.Request, _ params) {
	writeJSON(w, http.StatusOK, map[string]any{"items": []any{}, "success": true})
}

// ---- Agent Sync external ids ----

func (s *Server) externalIDsLocked(agentID string) []babelforce.ExternalID {
	m := s.externalIDs[agentID]
	out := make([]babelforce.ExternalID, 0, len(m))
	for k, v := range m {
		out = append(out, babelforce.ExternalID{IntegrationID: k, ExternalID: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IntegrationID < out[j].IntegrationID })
	return out
}

func (s *Server) listExternalIDs(w http.ResponseWriter, r *http.Request, p params) {
	page, size, ok := s.pageParams(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	if s.agentLocked(w, r, p["id"]) == nil {
		s.mu.Unlock()
		return
	}
	items := s.externalIDsLocked(p["id"])
	s.mu.Unlock()
	from, to, pg := paginate(r, len(items), page, size)
	writeJSON(w, http.StatusOK, map[string]any{"items": items[from:to], "pagination": pg})
}

func (s *Server) setExternalID(w http.ResponseWriter, r *http.Request, p params) {
	var body struct {
		ExternalID string `json:"externalId"`
	}
	if !s.decodeJSON(w, r, &body) {
		return
	}
	if strings.TrimSpace(body.ExternalID) == "" {
		s.writeError(w, r, http.StatusBadRequest, "validation_error", "externalId is required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.agentLocked(w, r, p["id"]) == nil {
		return
	}
	if s.externalIDs[p["id"]] == nil {
		s.externalIDs[p["id"]] = map[string]string{}
	}
	s.externalIDs[p["id"]][p["integrationId"]] = body.ExternalID
	writeJSON(w, http.StatusOK, map[string]any{
		"item":    babelforce.ExternalID{IntegrationID: p["integrationId"], ExternalID: body.ExternalID},
		"success": true,
	})
}

func (s *Server) deleteExternalID(w http.ResponseWriter, r *http.Request, p params) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.agentLocked(w, r, p["id"]) == nil {
		return
	}
	if _, ok := s.externalIDs[p["id"]][p["integrationId"]]; !ok {
		s.fail(w, r, notFound("agent %q has no external id for integration %q", p["id"], p["integrationId"]))
		return
	}
	delete(s.externalIDs[p["id"]], p["integrationId"])
	message(w, "External id deleted")
}
