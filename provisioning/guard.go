package provisioning

import (
	"fmt"
	"slices"
	"strings"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/mapping"
)

// guard checks the plan's destructive part and, unless forced, holds it back when the
// directory read looks wrong, and applies the rest. Destructive is whatever takes something
// away from a person (Change.Destructive): disabling or deleting their agent, deactivating
// their login user, and taking a tag (skill), an agent group or a role away; the guard counts
// people, not changes. It holds back:
//
//   - when the read has no users, or fewer than guard.min_source_users;
//   - when a group that a rule names exactly (missing) was in the last good read and is
//     missing from this one: a cut or filtered export looks like that;
//   - when the destructive changes concern more people than guard.max_destructive AND more
//     than guard.max_destructive_percent of the agents bridge owns; a run of some people
//     (a push, a live change) counts with its own the people that other such runs took
//     something from within guard.window (recent), so trickled leavers add up. Both must be exceeded:
//     the larger of the two is the allowance, so a small directory is judged by the count and
//     a large one by the share, and routine leavers of a large directory pass. What a damaged
//     read looks like is caught by the checks above and by counting lost skills, groups and
//     roles: the LDIF export cut before its skill and supervisor groups (3,000 people: 166
//     disabled, 2,078 losing tags or roles) is held back by every one of them.
//
// A held-back change is split from what else its call carries: an update that adds a tag and
// takes another away still adds the tag (and keeps the other); a login user update still
// changes the name (and keeps the roles). It fills p.Changes, p.Held and p.Refused.
func (r *Reconciler) guard(p *Plan, ops []*op, sourceUsers, owned int, missing []mapping.RuleGroup, recent map[string]bool, force bool) {
	people := map[string]bool{}
	for _, o := range ops {
		if o.destructive() {
			people[o.person()] = true
		}
	}
	var reasons []string
	if n := len(people); n > 0 {
		g := r.cfg.Guard
		switch {
		case sourceUsers == 0:
			reasons = append(reasons, fmt.Sprintf("the directory read returned no users, so %d people would lose access; nothing is disabled, deleted or deactivated (check the source; if it really is empty, run again with --force)", n))
		case sourceUsers < g.MinSourceUsers:
			reasons = append(reasons, fmt.Sprintf("the directory read returned %d users, fewer than guard.min_source_users (%d); nothing is disabled, deleted or deactivated (check the source, lower the setting, or run again with --force)", sourceUsers, g.MinSourceUsers))
		}
		for _, mg := range missing {
			reasons = append(reasons, fmt.Sprintf("group %q, named by mapping rule %s, was in the last good directory read and is missing from this one (a cut or filtered export?), so %d people would lose access, skills, agent groups or roles; nothing is taken away until the group is back, the rule is changed, or a run with --force accepts it",
				mg.Group, mg.Rule, n))
		}
		total := n
		for k := range recent {
			if !people[k] {
				total++
			}
		}
		pct := 100 * float64(total) / float64(max(owned, 1))
		switch {
		case total <= g.MaxDestructive || pct <= g.MaxDestructivePercent:
		case total > n:
			reasons = append(reasons, fmt.Sprintf("%d people would be disabled, deleted or deactivated, or lose skills, agent groups or roles in this run, %d in all with the scoped runs (pushes, live changes, runs of some people) of the last %s (guard.window), more than guard.max_destructive (%d) and guard.max_destructive_percent (%g%%) of the %d agents bridge owns; many people leaving one at a time looks like a damaged source too: review and run again with --force, or wait for the window to pass",
				n, total, r.cfg.GuardWindow(), g.MaxDestructive, g.MaxDestructivePercent, owned))
		default:
			reasons = append(reasons, fmt.Sprintf("%d people would be disabled, deleted or deactivated, or lose skills, agent groups or roles (%.1f%% of the %d agents bridge owns), more than guard.max_destructive (%d) and guard.max_destructive_percent (%g%%); review the plan and run again with --force to apply it",
				n, pct, owned, g.MaxDestructive, g.MaxDestructivePercent))
		}
	}
	if len(reasons) > 0 && force {
		r.log.Warn("guard overridden by force", "reasons", reasons)
		reasons = nil
	}
	p.Changes, p.Held, p.ops, p.held, p.Refused = nil, nil, nil, nil, reasons
	for _, o := range ops {
		if len(reasons) > 0 && o.destructive() {
			keep, held := splitDestructive(o)
			p.held = append(p.held, held)
			p.Held = append(p.Held, held.changes...)
			if keep == nil {
				continue
			}
			o = keep
		}
		p.ops = append(p.ops, o)
	}
	// one copy of the changes: each op's changes are its part of p.Changes (a first sync
	// plans hundreds of thousands)
	n := 0
	for _, o := range p.ops {
		n += len(o.changes)
	}
	if n > 0 {
		p.Changes = make([]Change, 0, n)
	}
	for _, o := range p.ops {
		start := len(p.Changes)
		p.Changes = append(p.Changes, o.changes...)
		o.changes = p.Changes[start:len(p.Changes):len(p.Changes)]
	}
}

// splitDestructive splits a destructive op into what may still be applied (nil when nothing)
// and what is held back.
func splitDestructive(o *op) (keep, held *op) {
	switch {
	case o.call == callUpdateAgent || (o.call == callCreateAgent && o.want == nil):
		// an update (or a take-over): the tags it removes stay, the rest goes ahead
		var kept, removed []Change
		for _, c := range o.changes {
			if c.Kind == RemoveTag {
				removed = append(removed, c)
			} else {
				kept = append(kept, c)
			}
		}
		h := *o
		h.changes = removed
		if len(kept) == 0 {
			return nil, &h
		}
		k := *o
		k.changes = kept
		if o.update != nil && o.update.Tags != nil {
			tags := slices.Clone(*o.update.Tags)
			for _, c := range removed {
				if !slices.Contains(tags, c.Value) {
					tags = append(tags, c.Value)
				}
			}
			u := *o.update // o and the held part share o.update
			u.Tags = &tags
			k.update = &u
		}
		return &k, &h
	case o.call == callReplaceLogin && o.scim != nil && len(o.changes) == 1:
		// a login user update: the roles it removes stay, the rest goes ahead
		c := o.changes[0]
		removed := c.removedRoles()
		h := *o
		k := *o
		u := *o.scim
		var fields []FieldChange
		for _, f := range c.Fields {
			if f.Field != "roles" {
				fields = append(fields, f)
				continue
			}
			after := splitList(f.After)
			for _, rr := range removed {
				u.Roles = append(slices.Clone(u.Roles), babelforce.SCIMValue{Value: rr})
				after = append(after, rr)
			}
			if !sameRoles(roleValues(splitList(f.Before)), after) {
				fields = append(fields, FieldChange{Field: "roles", Before: f.Before, After: joinSorted(after)})
			}
		}
		if len(fields) == 0 {
			return nil, &h
		}
		kc := c
		kc.Fields = fields
		k.changes = []Change{kc}
		k.scim = &u
		return &k, &h
	}
	return nil, o
}

// joinSorted is xs sorted, without repeats, and joined as FieldChange values list roles.
func joinSorted(xs []string) string {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return strings.Join(slices.Compact(xs), ", ")
}
