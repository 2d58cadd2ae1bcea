package provisioning

import (
	"fmt"
)

// guard checks the plan's destructive part (disable, delete, deactivate login) and, unless
// forced, holds it back when the directory read looks wrong (empty, or fewer users than
// guard.min_source_users) or when it concerns more people than both guard.max_destructive
// and guard.max_destructive_percent of the agents bridge owns. The rest of the plan is still
// applied. It fills p.Changes, p.Held and p.Refused.
func (r *Reconciler) guard(p *Plan, ops []*op, sourceUsers, owned int, force bool) {
	people := map[string]bool{}
	for _, o := range ops {
		if o.destructive() {
			people[o.key+"\x00"+o.agentID] = true
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
		pct := 100 * float64(n) / float64(max(owned, 1))
		if n > g.MaxDestructive && pct > g.MaxDestructivePercent {
			reasons = append(reasons, fmt.Sprintf("%d people would be disabled, deleted or deactivated (%.1f%% of the %d agents bridge owns), more than guard.max_destructive (%d) and guard.max_destructive_percent (%g%%); review the plan and run again with --force to apply it",
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
			p.held = append(p.held, o)
			p.Held = append(p.Held, o.changes...)
			continue
		}
		p.ops = append(p.ops, o)
		p.Changes = append(p.Changes, o.changes...)
	}
}
