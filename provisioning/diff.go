package provisioning

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/mapping"
)

// key is the match key of a source id: babelforce may hand ids back lower-cased and without
// hyphens, so both sides are compared that way.
func key(sourceID string) string { return babelforce.NormalizeID(strings.TrimSpace(sourceID)) }

func lowerEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// callKind is the babelforce call an op makes; its order is the apply order (phases).
type callKind int

const (
	callSide callKind = iota
	callCreateGroup
	callCreateAgent // also adopting an agent (an UpdateAgent), so later phases know its id
	callUpdateAgent
	callCreateLogin
	callReplaceLogin
	callSetExternalID
	callClearExternalID
	callJoin
	callLeave
	callEnable
	callDisable
	callDeactivateLogin
	callDelete
)

// phase groups call kinds that may run concurrently with each other.
func (k callKind) phase() int {
	switch k {
	case callSide:
		return 0
	case callCreateGroup:
		return 1
	case callCreateAgent:
		return 2
	case callUpdateAgent, callCreateLogin, callReplaceLogin, callSetExternalID, callClearExternalID:
		return 3
	case callJoin, callLeave:
		return 4
	case callEnable:
		return 5
	case callDisable, callDeactivateLogin:
		return 6
	default:
		return 7
	}
}

// op is one babelforce write (or one bulk item) and the changes it carries.
type op struct {
	call    callKind
	subject string
	key     string // source key of the agent concerned
	agentID string // "" for an agent created in the same run: resolved by key
	changes []Change

	// want is the desired agent a create sends (callCreateAgent without it is an adoption),
	// and the login user callCreateLogin sends: the payload is built when the call is made,
	// not held from plan to write (a first sync plans two such calls a person).
	want       *mapping.Agent
	joins      []join                  // callCreateAgent (create): the agent groups it is created in
	update     *babelforce.AgentUpdate // callCreateAgent (adopt), callUpdateAgent
	group      string                  // callCreateGroup, callJoin, callLeave: group name
	groupID    string                  // callLeave
	scim       *babelforce.SCIMUser    // callReplaceLogin
	scimID     string                  // callReplaceLogin, callDeactivateLogin
	integ, ext string                  // external ids
	task       SideTask                // callSide
}

// join is an agent group a new agent is created in: the id when the group exists, else the
// group is created earlier in the same run and its id is looked up by name.
type join struct{ name, id string }

// person identifies the person an op concerns, for the guard's count of people.
func (o *op) person() string { return o.key + "\x00" + o.agentID }

func (o *op) destructive() bool {
	for _, c := range o.changes {
		if c.Destructive() {
			return true
		}
	}
	return false
}

// actualState is what babelforce holds, as read for one plan.
type actualState struct {
	// owned are bridge's agents (agentSource matches, sourceId set) in scope.
	owned []babelforce.Agent
	// ownedTotal counts every agent bridge owns (for the guard's percentage); equal to
	// len(owned) for unscoped runs.
	ownedTotal int
	// unowned maps a lower-cased e-mail to agents that are not bridge's; nil when not read.
	unowned map[string][]babelforce.Agent
	// groupID maps a lower-cased agent group name to its id (babelforce's names are unique
	// case-insensitively); groupName maps an id to the name.
	groupID   map[string]string
	groupName map[string]string
	// scimRead says the SCIM users below were read; byExt keys by key(externalId), byName by
	// lower-cased userName.
	scimRead   bool
	scimByExt  map[string]*babelforce.SCIMUser
	scimByName map[string]*babelforce.SCIMUser
	// extIDs maps an agent id to integration → external id, for the agents read.
	extIDs map[string]map[string]string
}

func newActual() *actualState {
	return &actualState{
		groupID: map[string]string{}, groupName: map[string]string{},
		scimByExt: map[string]*babelforce.SCIMUser{}, scimByName: map[string]*babelforce.SCIMUser{},
		extIDs: map[string]map[string]string{},
	}
}

func (a *actualState) addGroups(gs []babelforce.AgentGroup) {
	slices.SortFunc(gs, func(x, y babelforce.AgentGroup) int { return strings.Compare(x.ID, y.ID) })
	for _, g := range gs {
		id := babelforce.NormalizeID(g.ID)
		a.groupName[id] = g.Name
		if _, dup := a.groupID[strings.ToLower(g.Name)]; !dup {
			a.groupID[strings.ToLower(g.Name)] = id
		}
	}
}

func (a *actualState) addSCIMUsers(us []babelforce.SCIMUser) {
	a.scimRead = true
	for i := range us {
		u := &us[i]
		u.Meta = nil // never compared; the largest part of a SCIM user
		if u.ExternalID != "" {
			if k := key(u.ExternalID); a.scimByExt[k] == nil {
				a.scimByExt[k] = u
			}
		}
		if n := lowerEmail(u.UserName); n != "" {
			if _, dup := a.scimByName[n]; !dup {
				a.scimByName[n] = u
			}
		}
	}
}

// diffInput is everything the pure diff needs.
type diffInput struct {
	desired *mapping.Desired // whole, unscoped
	agents  []mapping.Agent  // the desired agents in scope
	scope   map[string]bool  // keys in scope; nil = everyone
	actual  *actualState
	state   *state // modified in place: remembers newly seen disabled agents
	cfg     Config
	source  string
	login   bool     // bridge manages login users
	integs  []string // Agent Sync integrations bridge manages
	now     time.Time
}

// differ carries one diff's input and what it collects besides ops.
type differ struct {
	diffInput
	p                                         *Plan
	managedTags, managedGroups, managedIntegs map[string]bool
	// relinked holds the old source keys of bridge's agents taken over by a new directory id.
	relinked map[string]bool
}

// diff computes the ops that bring actual to desired. It is pure apart from in.state.
func diff(in diffInput) (*Plan, []*op) {
	p := &Plan{}
	df := &differ{diffInput: in, p: p,
		managedTags:   setOf(union(in.desired.Tags, in.state.Tags)),
		managedGroups: setOf(lowerAll(union(in.desired.AgentGroups, in.state.Groups))),
		managedIntegs: setOf(in.integs),
		relinked:      map[string]bool{},
	}
	var ops []*op
	add := func(o *op) { ops = append(ops, o) }

	// bridge's agents by source key; a second agent with the same key is left alone.
	// ownedSorted points into in.actual.owned in the order of agent ids: not a copy of the
	// agents, which at 100,000 of them was the largest thing alive at the end of a plan.
	owned := make(map[string]*babelforce.Agent, len(in.actual.owned))
	ownedSorted := make([]*babelforce.Agent, len(in.actual.owned))
	for i := range in.actual.owned {
		ownedSorted[i] = &in.actual.owned[i]
	}
	slices.SortFunc(ownedSorted, func(a, b *babelforce.Agent) int { return strings.Compare(a.ID, b.ID) })
	ownedKeys := make([]string, len(ownedSorted)) // key(ownedSorted[i].SourceID)
	for i, a := range ownedSorted {
		k := key(a.SourceID)
		ownedKeys[i] = k
		if first, dup := owned[k]; dup {
			p.Skipped = append(p.Skipped, Skipped{Subject: subjectOf(a), SourceID: a.SourceID,
				Reason: fmt.Sprintf("duplicate agent for the same directory user; bridge manages agent %s and leaves this one alone", first.ID)})
			continue
		}
		owned[k] = a
	}

	// groups some desired agent joins and babelforce lacks are created first.
	created := map[string]bool{}
	for _, d := range in.agents {
		for _, g := range d.AgentGroups {
			if _, ok := in.actual.groupID[strings.ToLower(g)]; !ok && !created[strings.ToLower(g)] {
				created[strings.ToLower(g)] = true
				add(&op{call: callCreateGroup, subject: g, group: g,
					changes: []Change{{Kind: CreateAgentGroup, Subject: g, Value: g}}})
			}
		}
	}

	desiredKeys := make(map[string]bool, len(in.desired.Agents))
	for _, d := range in.desired.Agents {
		desiredKeys[key(d.SourceID)] = true
	}
	claimed := map[string]bool{} // agent ids adopted or relinked in this plan
	// bridge's agents whose person is gone, by e-mail: a directory user with a new id (an
	// account deleted and created again) takes over the agent of the old one.
	leaversByEmail := map[string][]*babelforce.Agent{}
	for i, a := range ownedSorted {
		if k := ownedKeys[i]; owned[k] == a && !desiredKeys[k] && a.Email != "" {
			leaversByEmail[lowerEmail(a.Email)] = append(leaversByEmail[lowerEmail(a.Email)], a)
		}
	}

	for i := range in.agents {
		d := &in.agents[i]
		k := key(d.SourceID)
		subject := lowerEmail(d.Email)
		if subject == "" {
			subject = d.UserName
		}
		a := owned[k]
		adopt := ""
		if l := leaversByEmail[lowerEmail(d.Email)]; a == nil && len(l) == 1 && !claimed[l[0].ID] {
			a, adopt = l[0], "the directory id of this person changed (was "+l[0].SourceID+")"
			claimed[a.ID] = true
			df.relinked[key(a.SourceID)] = true
		}
		if a == nil {
			// not bridge's yet: is there an agent with this e-mail?
			var match []babelforce.Agent
			if in.actual.unowned != nil && d.Email != "" && d.Enabled {
				for _, u := range in.actual.unowned[lowerEmail(d.Email)] {
					if !claimed[u.ID] {
						match = append(match, u)
					}
				}
			}
			switch {
			case len(match) > 1:
				p.Skipped = append(p.Skipped, Skipped{Subject: subject, SourceID: d.SourceID,
					Reason: fmt.Sprintf("%d agents not owned by bridge have this e-mail; bridge cannot tell which one is this person's (remove the duplicates)", len(match))})
				continue
			case len(match) == 1 && !in.cfg.Adopt:
				p.Skipped = append(p.Skipped, Skipped{Subject: subject, SourceID: d.SourceID,
					Reason: fmt.Sprintf("not owned by bridge: agent %s already has this e-mail; set sync.adopt: true to let bridge take it over", match[0].ID)})
				continue
			case len(match) == 1:
				m := match[0]
				claimed[m.ID] = true
				a = &m
				adopt = "adopt existing agent with the same e-mail"
			case !d.Enabled:
				// nothing to switch off: an agent is never created for someone inactive
				p.Skipped = append(p.Skipped, Skipped{Subject: subject, SourceID: d.SourceID,
					Reason: "inactive in directory: no agent is created for someone inactive"})
				continue
			default:
				ops = append(ops, df.createOps(d, k, subject)...)
				continue
			}
		}
		delete(in.state.Disabled, a.ID)
		n := len(ops)
		ops = append(ops, df.updateOps(d, k, a, subject, adopt)...)
		if len(ops) == n {
			p.Unchanged++
		}
	}

	// bridge's agents in scope without a desired agent: the person left or went out of scope.
	skipByKey := make(map[string]mapping.Skip, len(in.desired.Skipped))
	for _, s := range in.desired.Skipped {
		skipByKey[key(s.UserID)] = s
	}
	for i, a := range ownedSorted {
		k := ownedKeys[i]
		if owned[k] == nil || owned[k].ID != a.ID || desiredKeys[k] || claimed[a.ID] || (in.scope != nil && !in.scope[k]) {
			continue
		}
		subject := subjectOf(a)
		reason := "left directory"
		if s, ok := skipByKey[k]; ok {
			switch {
			case s.Reason == mapping.ReasonInvalid && !s.Inactive:
				p.Skipped = append(p.Skipped, Skipped{Subject: subject, SourceID: a.SourceID,
					Reason: "left unchanged: the directory user cannot be mapped: " + s.Detail})
				continue
			case s.Reason == mapping.ReasonInvalid:
				// a leaver is switched off even when the rest of them cannot be mapped
				reason = "inactive in directory"
				p.Conflicts = append(p.Conflicts, Skipped{Subject: subject, SourceID: a.SourceID,
					Reason: "switched off although the directory user cannot be mapped: " + s.Detail})
			default:
				reason = "out of scope"
				if s.Detail != "" {
					reason += ": " + s.Detail
				}
			}
		}
		if a.IsEnabled() {
			add(&op{call: callDisable, subject: subject, key: k, agentID: a.ID,
				changes: []Change{{Kind: DisableAgent, Subject: subject, SourceID: a.SourceID, AgentID: a.ID, Reason: reason}}})
		} else if since, ok := in.state.Disabled[a.ID]; !ok {
			in.state.Disabled[a.ID] = in.now
		} else if in.cfg.Delete.Enabled && in.now.Sub(since) >= in.cfg.Delete.GracePeriod {
			add(&op{call: callDelete, subject: subject, key: k, agentID: a.ID,
				changes: []Change{{Kind: DeleteAgent, Subject: subject, SourceID: a.SourceID, AgentID: a.ID,
					Reason: fmt.Sprintf("%s; disabled since %s", reason, since.UTC().Format(time.DateOnly))}}})
		}
		if in.login && in.cfg.LoginUsers.DeactivateOnLeave {
			if u := in.actual.scimByExt[k]; u != nil && u.IsActive() {
				add(&op{call: callDeactivateLogin, subject: subject, key: k, agentID: a.ID, scimID: u.ID,
					changes: []Change{{Kind: DeactivateLogin, Subject: lowerEmail(u.UserName), SourceID: a.SourceID, AgentID: a.ID, Reason: reason}}})
			}
		}
	}

	for _, s := range in.desired.Warnings {
		if in.scope != nil && !in.scope[key(s.UserID)] {
			continue
		}
		w := Skipped{Subject: cmp.Or(s.UserName, s.UserID), SourceID: s.UserID, Reason: s.Detail}
		if s.Inactive { // a leaver with a conflict (a shared e-mail): switched off all the same
			p.Conflicts = append(p.Conflicts, w)
			continue
		}
		p.Warnings = append(p.Warnings, w)
	}
	if in.scope == nil {
		p.Problems = slices.Clone(in.desired.Problems)
	}
	for _, s := range in.desired.Skipped {
		if in.scope != nil && !in.scope[key(s.UserID)] {
			continue
		}
		reason := strings.ReplaceAll(s.Reason, "_", " ")
		if s.Detail != "" {
			reason += ": " + s.Detail
		}
		p.Skipped = append(p.Skipped, Skipped{Subject: cmp.Or(s.UserName, s.UserID), SourceID: s.UserID, Reason: reason,
			OutOfScope: s.Reason == mapping.ReasonOutOfScope})
	}
	slices.SortStableFunc(p.Skipped, func(a, b Skipped) int { return strings.Compare(a.Subject, b.Subject) })
	sortOps(ops)
	return p, ops
}

func sortOps(ops []*op) {
	slices.SortStableFunc(ops, func(a, b *op) int {
		return cmp.Or(cmp.Compare(a.call.phase(), b.call.phase()), strings.Compare(a.subject, b.subject),
			cmp.Compare(a.call, b.call), strings.Compare(a.group, b.group), strings.Compare(a.integ, b.integ))
	})
}

// createOps creates a new agent in one call that carries its tags and agent groups, then its
// login user and external ids: two writes per new person (agent, login user). The create op
// also carries the join changes, so the plan still lists each group joined.
// In createOps, updateOps, groupOps and loginOps k is key(d.SourceID), computed once by diff.
func (in *differ) createOps(d *mapping.Agent, k, subject string) []*op {
	fields := []FieldChange{{Field: "name", After: d.Name}}
	if d.Number != "" {
		fields = append(fields, FieldChange{Field: "number", After: d.Number})
	}
	if len(d.Tags) > 0 {
		fields = append(fields, FieldChange{Field: "tags", After: strings.Join(d.Tags, ", ")})
	}
	if len(d.AgentGroups) > 0 {
		fields = append(fields, FieldChange{Field: "groups", After: strings.Join(d.AgentGroups, ", ")})
	}
	if !d.Enabled {
		fields = append(fields, FieldChange{Field: "enabled", After: "false"})
	}
	create := &op{call: callCreateAgent, subject: subject, key: k, want: d,
		changes: []Change{{Kind: CreateAgent, Subject: subject, SourceID: d.SourceID, Fields: fields}}}
	for _, g := range d.AgentGroups {
		create.joins = append(create.joins, join{name: g, id: in.actual.groupID[strings.ToLower(g)]})
		create.changes = append(create.changes, Change{Kind: JoinAgentGroup, Subject: subject, SourceID: d.SourceID, Value: g})
	}
	ops := []*op{create}
	if o := in.loginOps(d, k, subject, ""); o != nil {
		ops = append(ops, o)
	}
	for _, integ := range slices.Sorted(maps.Keys(d.ExternalIDs)) {
		if v := d.ExternalIDs[integ]; v != "" {
			ops = append(ops, &op{call: callSetExternalID, subject: subject, key: k, integ: integ, ext: v,
				changes: []Change{{Kind: SetExternalID, Subject: subject, SourceID: d.SourceID, Value: integ,
					Fields: []FieldChange{{Field: integ, After: v}}}}})
		}
	}
	return ops
}

// updateOps brings an existing agent to d; adopt (the reason) is set when the agent becomes
// d's in this run: sourceId and agentSource are set in the same update.
func (in *differ) updateOps(d *mapping.Agent, k string, a *babelforce.Agent, subject string, adopt string) []*op {
	var ops []*op
	var u babelforce.AgentUpdate
	var fields []FieldChange
	if adopt != "" {
		u.SourceID = &d.SourceID
		fields = append(fields, FieldChange{Field: "sourceId", Before: a.SourceID, After: d.SourceID})
		if src := cmp.Or(d.AgentSource, in.source); a.AgentSource != src {
			u.AgentSource = &src
			fields = append(fields, FieldChange{Field: "agentSource", Before: a.AgentSource, After: src})
		}
	}
	if d.Name != "" && d.Name != a.Name {
		u.Name = &d.Name
		fields = append(fields, FieldChange{Field: "name", Before: a.Name, After: d.Name})
	}
	if d.Email != "" && !strings.EqualFold(d.Email, a.Email) {
		u.Email = &d.Email
		fields = append(fields, FieldChange{Field: "email", Before: a.Email, After: d.Email})
	}
	if d.Number != "" && d.Number != a.Number {
		u.Number = &d.Number
		fields = append(fields, FieldChange{Field: "number", Before: a.Number, After: d.Number})
	}
	var changes []Change
	if len(fields) > 0 {
		c := Change{Kind: UpdateAgent, Subject: subject, SourceID: d.SourceID, AgentID: a.ID, Fields: fields, Reason: adopt}
		changes = append(changes, c)
	}
	// tags: bridge's tags follow the directory, hand-set ones stay.
	if !sameSet(a.Tags, d.Tags) {
		in.tagOps(d, a, subject, &u, &changes)
	}
	if len(changes) > 0 {
		call := callUpdateAgent
		if adopt != "" {
			call = callCreateAgent
		}
		ops = append(ops, &op{call: call, subject: subject, key: k, agentID: a.ID, update: &u, changes: changes})
	}
	// agent groups
	if !in.sameGroups(a, d.AgentGroups) {
		ops = append(ops, in.groupOps(d, k, a, subject)...)
	}
	// enabled
	if d.Enabled != a.IsEnabled() {
		if d.Enabled {
			ops = append(ops, &op{call: callEnable, subject: subject, key: k, agentID: a.ID,
				changes: []Change{{Kind: EnableAgent, Subject: subject, SourceID: d.SourceID, AgentID: a.ID, Reason: "active in directory"}}})
		} else {
			ops = append(ops, &op{call: callDisable, subject: subject, key: k, agentID: a.ID,
				changes: []Change{{Kind: DisableAgent, Subject: subject, SourceID: d.SourceID, AgentID: a.ID, Reason: "inactive in directory"}}})
		}
	}
	if o := in.loginOps(d, k, subject, a.ID); o != nil {
		ops = append(ops, o)
	}
	// external ids (read only for agents that need them)
	if ext, read := in.actual.extIDs[a.ID]; read {
		for _, integ := range slices.Sorted(maps.Keys(d.ExternalIDs)) {
			v := d.ExternalIDs[integ]
			if v != "" && ext[integ] != v {
				ops = append(ops, &op{call: callSetExternalID, subject: subject, key: k, agentID: a.ID, integ: integ, ext: v,
					changes: []Change{{Kind: SetExternalID, Subject: subject, SourceID: d.SourceID, AgentID: a.ID, Value: integ,
						Fields: []FieldChange{{Field: integ, Before: ext[integ], After: v}}}}})
			}
		}
		for _, integ := range slices.Sorted(maps.Keys(ext)) {
			if d.ExternalIDs[integ] == "" && in.managedIntegs[integ] {
				ops = append(ops, &op{call: callClearExternalID, subject: subject, key: k, agentID: a.ID, integ: integ,
					changes: []Change{{Kind: ClearExternalID, Subject: subject, SourceID: d.SourceID, AgentID: a.ID, Value: integ,
						Fields: []FieldChange{{Field: integ, Before: ext[integ]}}}}})
			}
		}
	}
	return ops
}

// sameGroups reports whether a is in exactly the groups named want (case-insensitively).
func (in *differ) sameGroups(a *babelforce.Agent, want []string) bool {
	if len(a.Groups) != len(want) {
		return false
	}
	for _, g := range a.Groups {
		name := in.actual.groupName[babelforce.NormalizeID(g.ID)]
		if name == "" {
			name = g.Name
		}
		if !slices.ContainsFunc(want, func(w string) bool { return strings.EqualFold(w, name) }) {
			return false
		}
	}
	return true
}

// groupOps joins a to the groups of d it is not in and takes it out of the groups bridge
// manages that d does not name.
func (in *differ) groupOps(d *mapping.Agent, k string, a *babelforce.Agent, subject string) []*op {
	var ops []*op
	inGroup := map[string]string{}    // lower-cased name -> id
	groupNames := map[string]string{} // lower-cased name -> name
	for _, g := range a.Groups {
		id := babelforce.NormalizeID(g.ID)
		name := in.actual.groupName[id]
		if name == "" {
			name = g.Name
		}
		inGroup[strings.ToLower(name)] = id
		groupNames[strings.ToLower(name)] = name
	}
	for _, g := range d.AgentGroups {
		if _, ok := inGroup[strings.ToLower(g)]; !ok {
			ops = append(ops, &op{call: callJoin, subject: subject, key: k, agentID: a.ID, group: g, groupID: in.actual.groupID[strings.ToLower(g)],
				changes: []Change{{Kind: JoinAgentGroup, Subject: subject, SourceID: d.SourceID, AgentID: a.ID, Value: g}}})
		}
	}
	wantGroup := setOf(lowerAll(d.AgentGroups))
	for _, lname := range slices.Sorted(maps.Keys(inGroup)) {
		if in.managedGroups[lname] && !wantGroup[lname] {
			name := groupNames[lname]
			ops = append(ops, &op{call: callLeave, subject: subject, key: k, agentID: a.ID, group: name, groupID: inGroup[lname],
				changes: []Change{{Kind: LeaveAgentGroup, Subject: subject, SourceID: d.SourceID, AgentID: a.ID, Value: name}}})
		}
	}
	return ops
}

// tagOps adds the tag changes of a to d: tags bridge manages follow the directory, others
// stay; the whole new list goes into u.
func (in *differ) tagOps(d *mapping.Agent, a *babelforce.Agent, subject string, u *babelforce.AgentUpdate, changes *[]Change) {
	have := setOf(a.Tags)
	want := setOf(d.Tags)
	var adds, removes []string
	for _, t := range d.Tags {
		if !have[t] {
			adds = append(adds, t)
		}
	}
	for t := range have {
		if in.managedTags[t] && !want[t] {
			removes = append(removes, t)
		}
	}
	if len(adds)+len(removes) == 0 {
		return
	}
	slices.Sort(adds)
	slices.Sort(removes)
	var next []string
	for t := range have {
		if !in.managedTags[t] || want[t] {
			next = append(next, t)
		}
	}
	next = union(next, d.Tags)
	u.Tags = &next
	for _, t := range adds {
		*changes = append(*changes, Change{Kind: AddTag, Subject: subject, SourceID: d.SourceID, AgentID: a.ID, Value: t})
	}
	for _, t := range removes {
		*changes = append(*changes, Change{Kind: RemoveTag, Subject: subject, SourceID: d.SourceID, AgentID: a.ID, Value: t})
	}
}

// sameSet reports whether have (any order, maybe duplicated) holds exactly want (sorted,
// unique), without allocating in the common small case.
func sameSet(have, want []string) bool {
	if len(have) != len(want) {
		return false
	}
	for i, t := range have {
		if (i < len(want) && want[i] == t) || slices.Contains(want, t) {
			continue
		}
		return false
	}
	for _, t := range want {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

// loginOps manages the login user of d through babelforce's SCIM API: bridge's login users
// carry the directory id as SCIM externalId.
func (in *differ) loginOps(d *mapping.Agent, k, subject, agentID string) *op {
	if !in.login || len(d.Roles) == 0 || !in.actual.scimRead {
		return nil
	}
	u := in.actual.scimByExt[k]
	adopting := false
	if u == nil {
		if other := in.actual.scimByName[lowerEmail(d.Email)]; other != nil {
			relink := other.ExternalID != "" && in.relinked[key(other.ExternalID)]
			if !in.cfg.Adopt && !relink {
				in.p.Skipped = append(in.p.Skipped, Skipped{Subject: subject, SourceID: d.SourceID,
					Reason: "not owned by bridge: login user " + lowerEmail(other.UserName) + " exists and is not managed by bridge; set sync.adopt: true to let bridge take it over"})
				return nil
			}
			if !d.Enabled {
				return nil // nothing to take over for someone inactive
			}
			u, adopting = other, true
		}
	}
	if u == nil {
		if !d.Enabled {
			return nil // no account for someone inactive
		}
		return &op{call: callCreateLogin, subject: subject, key: k, agentID: agentID, want: d,
			changes: []Change{{Kind: CreateLoginUser, Subject: subject, SourceID: d.SourceID, AgentID: agentID,
				Fields: []FieldChange{{Field: "roles", After: strings.Join(d.Roles, ", ")}}}}}
	}
	if !d.Enabled && u.IsActive() && !adopting {
		return &op{call: callDeactivateLogin, subject: subject, key: k, agentID: agentID, scimID: u.ID,
			changes: []Change{{Kind: DeactivateLogin, Subject: subject, SourceID: d.SourceID, AgentID: agentID, Reason: "inactive in directory"}}}
	}
	var fields []FieldChange
	if adopting { // otherwise u was found by k: its externalId is d's already
		fields = append(fields, FieldChange{Field: "externalId", Before: u.ExternalID, After: d.SourceID})
	}
	// compared with what desiredLogin would set, which is built only when something differs
	// (this runs for every agent with a login user).
	if userName := lowerEmail(d.Email); !strings.EqualFold(u.UserName, userName) {
		fields = append(fields, FieldChange{Field: "userName", Before: u.UserName, After: userName})
	}
	if u.DisplayName != d.Name {
		fields = append(fields, FieldChange{Field: "displayName", Before: u.DisplayName, After: d.Name})
	}
	if !sameRoles(u.Roles, d.Roles) {
		fields = append(fields, FieldChange{Field: "roles",
			Before: strings.Join(scimRoles(u.Roles), ", "), After: strings.Join(scimRoles(roleValues(d.Roles)), ", ")})
	}
	if u.IsActive() != d.Enabled {
		fields = append(fields, FieldChange{Field: "active", Before: fmt.Sprint(u.IsActive()), After: fmt.Sprint(d.Enabled)})
	}
	if len(fields) == 0 {
		return nil
	}
	want := desiredLogin(d, u)
	c := Change{Kind: UpdateLoginUser, Subject: subject, SourceID: d.SourceID, AgentID: agentID, Fields: fields}
	if adopting {
		c.Reason = "adopt existing login user with the same e-mail"
	}
	return &op{call: callReplaceLogin, subject: subject, key: k, agentID: agentID, scimID: u.ID, scim: want, changes: []Change{c}}
}

// newAgent is the agent a create sends for d: source is the agent source when d has none.
func newAgent(d *mapping.Agent, source string) *babelforce.Agent {
	enabled := d.Enabled
	return &babelforce.Agent{Name: d.Name, Email: d.Email, Number: d.Number, Enabled: &enabled,
		Tags: slices.Clone(d.Tags), SourceID: d.SourceID, AgentSource: cmp.Or(d.AgentSource, source)}
}

// desiredLogin is the SCIM user d should have; attributes bridge does not manage are kept
// from have.
func desiredLogin(d *mapping.Agent, have *babelforce.SCIMUser) *babelforce.SCIMUser {
	u := &babelforce.SCIMUser{}
	if have != nil {
		*u = *have
		u.Meta = nil
	}
	u.Schemas = []string{babelforce.SCIMUserSchema}
	u.ExternalID = d.SourceID
	u.UserName = lowerEmail(d.Email)
	u.DisplayName = d.Name
	name := babelforce.SCIMName{}
	if u.Name != nil {
		name = *u.Name
	}
	name.Formatted = d.Name
	u.Name = &name
	u.Emails = []babelforce.SCIMValue{{Value: lowerEmail(d.Email), Type: "work", Primary: true}}
	u.Roles = roleValues(d.Roles)
	active := d.Enabled
	u.Active = &active
	return u
}

// roleValues is roles as SCIM values (nil for none).
func roleValues(roles []string) []babelforce.SCIMValue {
	var out []babelforce.SCIMValue
	for _, r := range roles {
		out = append(out, babelforce.SCIMValue{Value: r})
	}
	return out
}

// sameRoles reports whether have holds the roles want, compared as scimRoles does; when have
// lists exactly want's values in order (the usual case) it allocates nothing.
func sameRoles(have []babelforce.SCIMValue, want []string) bool {
	if slices.EqualFunc(have, want, func(v babelforce.SCIMValue, r string) bool { return v.Value == r }) {
		return true
	}
	return slices.Equal(scimRoles(have), scimRoles(roleValues(want)))
}

// scimRoles is the lower-cased, sorted, distinct non-empty values of vs.
func scimRoles(vs []babelforce.SCIMValue) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if v.Value != "" {
			out = append(out, strings.ToLower(v.Value))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func lowerAll(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strings.ToLower(x)
	}
	return out
}

func setOf(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func subjectOf(a *babelforce.Agent) string {
	if a.Email != "" {
		return lowerEmail(a.Email)
	}
	if a.Name != "" {
		return a.Name
	}
	return "agent " + a.ID
}
