package mapping

// Desired is the state babelforce should hold for one snapshot.
type Desired struct {
	// Agents in scope, sorted by SourceID.
	Agents []Agent `json:"agents"`
	// Skipped lists users that are out of scope or could not be mapped, with why, sorted by
	// UserID. A user with a mapping problem is skipped whole, never half-mapped.
	Skipped []Skip `json:"skipped,omitempty"`
	// AgentGroups is every agent group name some rule produced, sorted.
	AgentGroups []string `json:"agentGroups"`
	// Tags is every tag some rule produced, sorted.
	Tags []string `json:"tags"`
	// Warnings lists users that were mapped despite a problem, with what was left out (e.g. an
	// invalid number with phone.invalid: omit), sorted by UserID. Reason is "invalid".
	Warnings []Skip `json:"warnings,omitempty"`
	// Problems lists what is wrong between the rules and this directory, once each, sorted:
	// a group named by a rule that matches no group, a rule output that is not a valid tag or
	// role. An admin should fix these; nothing is skipped because of them.
	Problems []string `json:"problems,omitempty"`
	// RuleGroups lists the groups the rules name exactly (scope.include_groups and the group
	// of skills, agent_groups and roles rules) and whether this directory has them, in rule
	// order. A named group that vanishes between two reads is what a cut or filtered export
	// looks like; provisioning's guard uses this.
	RuleGroups []RuleGroup `json:"ruleGroups,omitempty"`
}

// RuleGroup is a group a rule names exactly.
type RuleGroup struct {
	// Rule is the rule's YAML key, e.g. "roles[0]" or "scope.include_groups[1]".
	Rule string `json:"rule"`
	// Group is the name, DN or id as the rule gives it.
	Group string `json:"group"`
	// Found says whether the directory read has the group.
	Found bool `json:"found"`
}

// Agent is one desired babelforce agent with its login user.
type Agent struct {
	// SourceID is the directory's stable id of the user; with AgentSource it identifies the
	// agents bridge owns.
	SourceID    string `json:"sourceId"`
	AgentSource string `json:"agentSource"`
	UserName    string `json:"userName"`
	Name        string `json:"name"`
	Email       string `json:"email"`
	// Number is E.164 (normalised) or "".
	Number string `json:"number,omitempty"`
	// Enabled is false for a user the directory marks inactive.
	Enabled bool `json:"enabled"`
	// Tags (skills), sorted, unique.
	Tags []string `json:"tags"`
	// AgentGroups are agent group names, sorted, unique.
	AgentGroups []string `json:"agentGroups"`
	// Roles of the login user, sorted, unique. Empty: no login user is managed.
	Roles []string `json:"roles"`
	// ExternalIDs maps an Agent Sync integration id to this user's id there.
	ExternalIDs map[string]string `json:"externalIds,omitempty"`
}

// Skip says why a directory user produced no agent.
type Skip struct {
	UserID string `json:"userId"`
	// UserName is the user's name, or its DN when it has none (never empty for a DN'd user).
	UserName string `json:"userName"`
	// Reason is "out_of_scope" or "invalid".
	Reason string `json:"reason"`
	// Detail says which rule or field, in words an admin can act on.
	Detail string `json:"detail"`
	// Inactive is set when the directory marks the user inactive: a leaver whose agent is
	// switched off even though the user could not be mapped.
	Inactive bool `json:"inactive,omitempty"`
}

// String names the user and says why, e.g.
// `ann (id 42): number "12" is not a valid phone number for region DE`.
func (s Skip) String() string {
	return describe(s.UserName, s.UserID) + ": " + s.Detail
}

// Skip reasons.
const (
	ReasonOutOfScope = "out_of_scope"
	ReasonInvalid    = "invalid"
)
