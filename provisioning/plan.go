// Package provisioning reconciles babelforce with a directory: it reads the desired state
// (directory snapshot → mapping) and the actual state (babelforce), diffs them into a Plan of
// typed changes, checks the Plan against guards (ownership, deletion threshold, partial reads),
// and applies it with bounded concurrency. Every trigger (periodic reconcile, on-demand
// provisioning, inbound SCIM pushes, SSO drift) goes through the same plan/apply path.
package provisioning

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/mapping"
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
	// tried are the people a windowed plan's destructive calls concern, noted by apply before
	// it clears the ops it finished.
	tried []string
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

// plan computes the plan for snap: desired from mapping, actual from babelforce, the diff,
// the side tasks (unscoped runs only) and the guards. st gets newly seen disabled agents.
func (r *Reconciler) plan(ctx context.Context, snap *directory.Snapshot, scope Scope, force bool, st *state) (*Plan, *mapping.Desired, error) {
	p, desired, _, err := r.planActual(ctx, snap, scope, force, st)
	return p, desired, err
}

// planActual is plan that also returns the actual state it read.
func (r *Reconciler) planActual(ctx context.Context, snap *directory.Snapshot, scope Scope, force bool, st *state) (*Plan, *mapping.Desired, *actualState, error) {
	desired := mapping.Desire(snap, r.rules)
	if desired == nil {
		return nil, nil, nil, asRead(fmt.Errorf("map directory: no desired state"))
	}
	// Past the mapping only the number of users is needed: the snapshot (the largest thing
	// bridge holds) may be collected while babelforce is read.
	sourceUsers := len(snap.Users)
	var inScope map[string]bool
	agents := desired.Agents
	if len(scope.Users) > 0 {
		inScope = make(map[string]bool, len(scope.Users))
		for _, id := range scope.Users {
			inScope[key(id)] = true
		}
		agents = nil
		for _, a := range desired.Agents {
			if inScope[key(a.SourceID)] {
				agents = append(agents, a)
			}
		}
	}
	actual, err := r.readActual(ctx, desired, agents, scope.Users, inScope, st)
	if err != nil {
		return nil, nil, nil, asRead(fmt.Errorf("read babelforce: %w (nothing was changed)", err))
	}
	p, ops := diff(diffInput{desired: desired, agents: agents, scope: inScope, actual: actual, state: st,
		cfg: r.cfg, source: r.rules.AgentSource(), login: r.rules.LoginUsers(), integs: integrations(r.rules),
		now: r.now()})
	if inScope == nil {
		ops = append(ops, r.planTasks(ctx, p, r.tasks, st)...)
		sortOps(ops)
	}
	missing := missingRuleGroups(desired, st)
	if scope.sourceUsers > 0 {
		// a scoped read (ScopedSource) holds only the groups of the people in it: the guard
		// counts the whole directory's users, and the missing-group check is the whole runs'
		sourceUsers, missing, p.scoped = scope.sourceUsers, nil, true
	}
	var recent map[string]bool
	if inScope != nil {
		p.windowed = true
		recent = st.recentDestructive(r.now().Add(-r.cfg.GuardWindow()))
	}
	r.guard(p, ops, sourceUsers, actual.ownedTotal, missing, recent, force)
	for _, c := range p.Conflicts {
		r.log.Warn("leaver switched off despite a conflict", "subject", c.Subject, "source_id", c.SourceID, "conflict", c.Reason)
	}
	return p, desired, actual, nil
}

// planTasks plans the side tasks; one that cannot plan is in p.Errors (and p.sideErrs).
func (r *Reconciler) planTasks(ctx context.Context, p *Plan, tasks []SideTask, st *state) []*op {
	var ops []*op
	for _, t := range tasks {
		changes, err := planTask(ctx, t, st)
		if err != nil {
			err = asRead(fmt.Errorf("plan %s: %w", t.Name(), err))
			p.sideErrs = append(p.sideErrs, err)
			p.Errors = append(p.Errors, err.Error())
			continue
		}
		for _, c := range changes {
			ops = append(ops, &op{call: callSide, subject: c.Subject, task: t, changes: []Change{c}})
		}
	}
	return ops
}

// missingRuleGroups lists the groups the rules name exactly that the last good read (st) had
// and this one (desired) has not.
func missingRuleGroups(desired *mapping.Desired, st *state) []mapping.RuleGroup {
	var out []mapping.RuleGroup
	for _, g := range desired.RuleGroups {
		if !g.Found && slices.Contains(st.RuleGroups, g.Group) {
			out = append(out, g)
		}
	}
	return out
}

// foundRuleGroups lists the groups the rules name exactly that this read has: the state
// remembers them after a run that was not held back for a missing one.
func foundRuleGroups(desired *mapping.Desired) []string {
	var out []string
	for _, g := range desired.RuleGroups {
		if g.Found && !slices.Contains(out, g.Group) {
			out = append(out, g.Group)
		}
	}
	return out
}

// integrations lists the Agent Sync integrations the mapping manages.
func integrations(rules *mapping.Rules) []string {
	var out []string
	for _, e := range rules.Config().ExternalIDs {
		out = append(out, e.Integration)
	}
	return out
}
