// Package provisioning reconciles babelforce with a directory: it reads the desired state
// (directory snapshot → mapping) and the actual state (babelforce), diffs them into a Plan of
// typed changes, checks the Plan against guards (ownership, deletion threshold, partial reads),
// and applies it with bounded concurrency. Every trigger (periodic reconcile, on-demand
// provisioning, inbound SCIM pushes, SSO drift) goes through the same plan/apply path.
package provisioning

import (
	"slices"
	"strings"
)

// Kind is the kind of one change.
type Kind string

// Change kinds. Destructive kinds are counted by the deletion guard.
const (
	CreateAgent      Kind = "create_agent"
	UpdateAgent      Kind = "update_agent"
	EnableAgent      Kind = "enable_agent"
	DisableAgent     Kind = "disable_agent"
	DeleteAgent      Kind = "delete_agent"
	AddTag           Kind = "add_tag"
	RemoveTag        Kind = "remove_tag"
	CreateAgentGroup Kind = "create_agent_group"
	JoinAgentGroup   Kind = "join_agent_group"
	LeaveAgentGroup  Kind = "leave_agent_group"
	CreateLoginUser  Kind = "create_login_user"
	UpdateLoginUser  Kind = "update_login_user"
	DeactivateLogin  Kind = "deactivate_login_user"
	SetExternalID    Kind = "set_external_id"
	ClearExternalID  Kind = "clear_external_id"
	UpdateSSO        Kind = "update_sso"
	UpdateSCIMConfig Kind = "update_scim_configuration"
)

// Destructive reports whether every change of this kind takes something away from a person
// (access). Change.Destructive also counts losses of skills, groups and roles.
func (k Kind) Destructive() bool {
	switch k {
	case DisableAgent, DeleteAgent, DeactivateLogin:
		return true
	}
	return false
}

// Destructive reports whether c takes something away from a person: access (disable,
// delete, deactivate), a tag (skill), an agent group or a role of their login user. The
// guards count these per person.
func (c Change) Destructive() bool {
	switch {
	case c.Kind.Destructive(), c.Kind == RemoveTag, c.Kind == LeaveAgentGroup:
		return true
	case c.Kind == UpdateLoginUser:
		return len(c.removedRoles()) > 0
	}
	return false
}

// removedRoles lists the roles an UpdateLoginUser change takes away.
func (c Change) removedRoles() []string {
	for _, f := range c.Fields {
		if f.Field != "roles" {
			continue
		}
		after := splitList(f.After)
		var out []string
		for _, r := range splitList(f.Before) {
			if !slices.Contains(after, r) {
				out = append(out, r)
			}
		}
		return out
	}
	return nil
}

// splitList splits "a, b" as FieldChange values list roles.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// FieldChange is one field of an update: before → after.
type FieldChange struct {
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// Change is one typed change to babelforce.
type Change struct {
	Kind Kind `json:"kind"`
	// Subject names what is changed in words an admin recognises: the agent's e-mail, a group
	// name, "sso".
	Subject string `json:"subject"`
	// SourceID is the directory id of the user concerned, if any.
	SourceID string `json:"sourceId,omitempty"`
	// AgentID is babelforce's id of the agent concerned, once known.
	AgentID string `json:"agentId,omitempty"`
	// Value carries the kind's argument: the tag, the group name, the integration id.
	Value string `json:"value,omitempty"`
	// Fields lists field-by-field differences for updates.
	Fields []FieldChange `json:"fields,omitempty"`
	// Reason says why, e.g. "left directory", "inactive in directory".
	Reason string `json:"reason,omitempty"`
}

// Plan is everything one run would change, in the order it is applied.
type Plan struct {
	Changes []Change `json:"changes"`
	// Skipped lists what was deliberately left alone, with why (out of scope, not owned,
	// invalid data).
	Skipped []Skipped `json:"skipped,omitempty"`
	// Warnings lists people mapped despite a problem (e.g. an invalid number left out).
	Warnings []Skipped `json:"warnings,omitempty"`
	// Conflicts lists leavers switched off although they have a conflict (an e-mail shared
	// with someone else, a field that cannot be mapped): a leaver never waits on a conflict.
	Conflicts []Skipped `json:"conflicts,omitempty"`
	// Problems are mismatches between the mapping rules and the directory (a rule naming a
	// group that does not exist), each once.
	Problems []string `json:"problems,omitempty"`
	// Errors are the side tasks that could not plan (an SSO check that failed, babelforce's SSO
	// configuration unreadable): the plan is incomplete and a run would fail them again.
	Errors []string `json:"errors,omitempty"`
	// Unchanged counts agents that already match.
	Unchanged int `json:"unchanged"`
	// Refused is set when a guard refused the destructive part of the plan.
	Refused []string `json:"refused,omitempty"`
	// Held lists the changes a guard held back (not applied), when Refused is set.
	Held []Change `json:"held,omitempty"`

	ops  []*op // the calls that apply Changes, in order
	held []*op // the calls of Held
	// sideErrs are the side tasks that could not plan.
	sideErrs []error
	// scoped: planned from a scoped read (ScopedSource): the state's rule groups are not
	// updated from it.
	scoped bool
	// windowed: a run of some people (Scope.Users): the people it takes something from are
	// remembered in state.Destructive for the guard's window.
	windowed bool
}

// Skipped is something the plan deliberately does not touch.
type Skipped struct {
	Subject  string `json:"subject"`
	SourceID string `json:"sourceId,omitempty"`
	Reason   string `json:"reason"`
	// OutOfScope: the mapping's scope leaves this person out (not a member of include_groups,
	// excluded, a condition, no e-mail). Such people are counted apart from the skipped ones
	// (a person bridge could not or would not map), and a plan's text gives them one line.
	OutOfScope bool `json:"outOfScope,omitempty"`
}

// Scope limits a plan to some directory users.
type Scope struct {
	// Users are directory user ids (sourceId); empty means everyone.
	Users []string `json:"users,omitempty"`
	// sourceUsers is the number of users in the whole directory when the snapshot planned is
	// a scoped read (ScopedSource); 0: the snapshot is the whole directory.
	sourceUsers int
}
