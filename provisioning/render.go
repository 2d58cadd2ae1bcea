package provisioning

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Summary counts a plan the way its summary lines say it.
type Summary struct {
	// Create, Update, Disable and Delete count agents (an agent with several changes is
	// updated once).
	Create  int `json:"create"`
	Update  int `json:"update"`
	Disable int `json:"disable"`
	Delete  int `json:"delete"`
	// LoginCreate, LoginUpdate and Deactivate count login users.
	LoginCreate int `json:"loginCreate"`
	LoginUpdate int `json:"loginUpdate"`
	Deactivate  int `json:"deactivate"`
	// Other counts changes of no agent nor login user (SSO, SCIM configuration).
	Other     int `json:"other"`
	Unchanged int `json:"unchanged"`
	// Skipped counts people bridge could not or would not map (invalid data, not owned,
	// inactive without an agent); OutOfScope the people the mapping's scope leaves out.
	Skipped    int `json:"skipped"`
	OutOfScope int `json:"outOfScope"`
	Held       int `json:"held"`
	// Conflicts counts leavers switched off despite a conflict (Plan.Conflicts).
	Conflicts int `json:"conflicts,omitempty"`
	// Changes counts the plan's changes by kind: what a run applies is counted under the same
	// kinds in its report (Report.Counts["create_agent/applied"]).
	Changes map[Kind]int `json:"changes,omitempty"`
	// Total is the number of changes.
	Total int `json:"total"`
}

// kindOrder is the order kinds are listed in summaries: the apply order.
var kindOrder = []Kind{UpdateSSO, UpdateSCIMConfig, CreateAgentGroup, CreateAgent, UpdateAgent, CreateLoginUser,
	UpdateLoginUser, SetExternalID, ClearExternalID, AddTag, RemoveTag, JoinAgentGroup, LeaveAgentGroup,
	EnableAgent, DisableAgent, DeactivateLogin, DeleteAgent}

// kindName is a kind in words: "create login user".
func kindName(k Kind) string {
	switch k {
	case JoinAgentGroup:
		return "add to agent group"
	case LeaveAgentGroup:
		return "remove from agent group"
	case DeactivateLogin:
		return "deactivate login user"
	}
	return strings.ReplaceAll(string(k), "_", " ")
}

// sortedKinds lists the kinds of counts in kindOrder, unknown ones last by name.
func sortedKinds[V any](counts map[Kind]V) []Kind {
	var out []Kind
	for _, k := range kindOrder {
		if _, ok := counts[k]; ok {
			out = append(out, k)
		}
	}
	var rest []Kind
	for k := range counts {
		if !slices.Contains(kindOrder, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// Summary counts agents to create, update (distinct agents with any other change), disable
// and delete, login users, the skipped and out-of-scope people, and every change by kind.
func (p *Plan) Summary() Summary {
	s := Summary{Unchanged: p.Unchanged, Held: len(p.Held), Total: len(p.Changes), Conflicts: len(p.Conflicts)}
	for _, sk := range p.Skipped {
		if sk.OutOfScope {
			s.OutOfScope++
		} else {
			s.Skipped++
		}
	}
	created := map[string]bool{}
	for _, c := range p.Changes {
		if c.Kind == CreateAgent {
			created[c.Subject] = true
		}
	}
	updated := map[string]bool{}
	for _, c := range p.Changes {
		if s.Changes == nil {
			s.Changes = map[Kind]int{}
		}
		s.Changes[c.Kind]++
		switch c.Kind {
		case CreateAgent:
			s.Create++
		case DisableAgent:
			s.Disable++
		case DeleteAgent:
			s.Delete++
		case CreateLoginUser:
			s.LoginCreate++
		case UpdateLoginUser:
			s.LoginUpdate++
		case DeactivateLogin:
			s.Deactivate++
		case UpdateAgent, AddTag, RemoveTag, JoinAgentGroup, LeaveAgentGroup, EnableAgent, SetExternalID, ClearExternalID:
			if !created[c.Subject] {
				updated[c.Subject] = true
			}
		case CreateAgentGroup:
		default:
			s.Other++
		}
	}
	s.Update = len(updated)
	return s
}

// String is the summary line: agents, people left alone, login users, what a guard held.
func (s Summary) String() string {
	line := fmt.Sprintf("Plan: %d to create, %d to update, %d to disable, %d to delete (%d unchanged, %d skipped, %d out of scope)",
		s.Create, s.Update, s.Disable, s.Delete, s.Unchanged, s.Skipped, s.OutOfScope)
	var login []string
	for _, x := range []struct {
		n    int
		verb string
	}{{s.LoginCreate, "to create"}, {s.LoginUpdate, "to update"}, {s.Deactivate, "to deactivate"}} {
		if x.n > 0 {
			login = append(login, fmt.Sprintf("%d %s", x.n, x.verb))
		}
	}
	if len(login) > 0 {
		line += "; login users: " + strings.Join(login, ", ")
	}
	if s.Other > 0 {
		line += fmt.Sprintf("; %d other %s", s.Other, plural(s.Other, "change", "changes"))
	}
	if s.Held > 0 {
		line += fmt.Sprintf("; %d %s held back by guard", s.Held, plural(s.Held, "change", "changes"))
	}
	if s.Conflicts > 0 {
		line += fmt.Sprintf("; %d %s switched off despite a conflict", s.Conflicts, plural(s.Conflicts, "leaver", "leavers"))
	}
	return line
}

// ChangesLine counts the changes by kind, in the words a run's report uses for what it
// applied: "Changes: 32 (2 create agent group, 10 create agent, ...)".
func (s Summary) ChangesLine() string {
	if s.Total == 0 {
		return "Changes: 0"
	}
	var parts []string
	for _, k := range sortedKinds(s.Changes) {
		parts = append(parts, fmt.Sprintf("%d %s", s.Changes[k], kindName(k)))
	}
	return fmt.Sprintf("Changes: %d (%s)", s.Total, strings.Join(parts, ", "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// TextOptions tune the text form of plans and reports.
type TextOptions struct {
	// ShowOutOfScope lists every person out of scope instead of counting them in one line.
	ShowOutOfScope bool
}

// WriteText writes the plan as a reviewable diff (WriteTextWith without options).
func (p *Plan) WriteText(w io.Writer) error { return p.WriteTextWith(w, TextOptions{}) }

// WriteTextWith writes the plan as a reviewable diff: the problems of the configuration first,
// one line per change, the skipped people and the warnings, the people out of scope (one count
// line unless o.ShowOutOfScope), what a guard held back and why, and the summary lines.
func (p *Plan) WriteTextWith(w io.Writer, o TextOptions) error {
	var b strings.Builder
	for _, pr := range p.Problems {
		fmt.Fprintf(&b, "! config: %s\n", pr)
	}
	for _, e := range p.Errors {
		fmt.Fprintf(&b, "! error: %s\n", e)
	}
	for _, c := range p.Changes {
		b.WriteString(ChangeLine(c))
		b.WriteByte('\n')
	}
	outOfScope := 0
	for _, s := range p.Skipped {
		if s.OutOfScope {
			outOfScope++
			continue
		}
		fmt.Fprintf(&b, "! skipped %s: %s\n", s.Subject, s.Reason)
	}
	for _, s := range p.Warnings {
		fmt.Fprintf(&b, "! warning %s: %s\n", s.Subject, s.Reason)
	}
	for _, s := range p.Conflicts {
		fmt.Fprintf(&b, "! conflict %s: %s\n", s.Subject, s.Reason)
	}
	switch {
	case outOfScope > 0 && o.ShowOutOfScope:
		for _, s := range p.Skipped {
			if s.OutOfScope {
				fmt.Fprintf(&b, "  out of scope %s: %s\n", s.Subject, strings.TrimPrefix(s.Reason, "out of scope: "))
			}
		}
	case outOfScope > 0:
		fmt.Fprintf(&b, "  %d %s out of scope (--show-out-of-scope lists them)\n", outOfScope, plural(outOfScope, "person", "people"))
	}
	if len(p.Refused) > 0 {
		b.WriteString("\nRefused by guard (these changes are NOT applied):\n")
		for _, r := range p.Refused {
			fmt.Fprintf(&b, "  %s\n", r)
		}
		for _, c := range p.Held {
			fmt.Fprintf(&b, "  # %s\n", ChangeLine(c))
		}
	}
	switch {
	case len(p.Changes) == 0 && len(p.Held) == 0 && len(p.Errors) > 0:
		b.WriteString("No changes planned, but the plan is incomplete: see the errors above.\n")
	case len(p.Changes) == 0 && len(p.Held) == 0:
		// (with changes held back by a guard, babelforce does not match the directory)
		b.WriteString("No changes: babelforce matches the directory.\n")
	}
	sum := p.Summary()
	b.WriteString(sum.String())
	b.WriteByte('\n')
	if sum.Total > 0 {
		b.WriteString(sum.ChangesLine())
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the plan as indented JSON (stable: changes in apply order, skipped by
// subject) with its summary.
func (p *Plan) WriteJSON(w io.Writer) error {
	type planJSON struct {
		*Plan
		Summary Summary `json:"summary"`
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(planJSON{Plan: p, Summary: p.Summary()})
}

// ChangeLine renders one change: "+" adds, "~" changes, "-" takes away.
func ChangeLine(c Change) string {
	suffix := ""
	if c.Reason != "" {
		suffix = "  (" + c.Reason + ")"
	}
	fields := func(create bool) string {
		var parts []string
		for _, f := range c.Fields {
			if create {
				parts = append(parts, f.Field+": "+f.After)
			} else {
				parts = append(parts, fmt.Sprintf("%s: %q → %q", f.Field, f.Before, f.After))
			}
		}
		if len(parts) == 0 {
			return ""
		}
		return "  " + strings.Join(parts, "  ")
	}
	switch c.Kind {
	case CreateAgent:
		return "+ create agent " + c.Subject + fields(true) + suffix
	case CreateAgentGroup:
		return "+ create agent group " + c.Value + suffix
	case UpdateAgent:
		return "~ update agent " + c.Subject + fields(false) + suffix
	case AddTag:
		return fmt.Sprintf("+ add tag %s to %s%s", c.Value, c.Subject, suffix)
	case RemoveTag:
		return fmt.Sprintf("- remove tag %s from %s%s", c.Value, c.Subject, suffix)
	case JoinAgentGroup:
		return fmt.Sprintf("+ add %s to agent group %s%s", c.Subject, c.Value, suffix)
	case LeaveAgentGroup:
		return fmt.Sprintf("- remove %s from agent group %s%s", c.Subject, c.Value, suffix)
	case EnableAgent:
		return "~ enable agent " + c.Subject + suffix
	case DisableAgent:
		return "- disable agent " + c.Subject + suffix
	case DeleteAgent:
		return "- delete agent " + c.Subject + suffix
	case CreateLoginUser:
		return "+ create login user " + c.Subject + fields(true) + suffix
	case UpdateLoginUser:
		return "~ update login user " + c.Subject + fields(false) + suffix
	case DeactivateLogin:
		return "- deactivate login user " + c.Subject + suffix
	case SetExternalID:
		return fmt.Sprintf("~ set external id %s of %s%s%s", c.Value, c.Subject, fields(false), suffix)
	case ClearExternalID:
		return fmt.Sprintf("- clear external id %s of %s%s", c.Value, c.Subject, suffix)
	}
	return fmt.Sprintf("~ %s %s%s%s", strings.ReplaceAll(string(c.Kind), "_", " "), c.Subject, fields(false), suffix)
}

// WriteText writes what a run did (WriteTextWith without options).
func (r *Report) WriteText(w io.Writer) error { return r.WriteTextWith(w, TextOptions{}) }

// WriteTextWith writes what a run did: the plan's summary, the changes applied, failed and not
// applied by kind (the kinds of the plan's Changes line), the skipped people and warnings,
// the failures, what a guard refused.
func (r *Report) WriteTextWith(w io.Writer, o TextOptions) error {
	var b strings.Builder
	mode := ""
	if r.DryRun {
		mode = ", dry run"
	}
	if r.Forced {
		mode += ", forced"
	}
	scope := "everyone"
	switch {
	case len(r.Tasks) > 0:
		scope = "the " + strings.Join(r.Tasks, ", ") + " settings"
	case len(r.Users) > 0:
		scope = strings.Join(r.Users, ", ")
	}
	fmt.Fprintf(&b, "Run %s (trigger %s%s) for %s, took %s\n", r.Started.UTC().Format(time.RFC3339), r.Trigger, mode, scope,
		r.Duration.Round(time.Millisecond))
	if len(r.Tasks) > 0 && r.Plan != nil {
		// a run of side tasks only: its changes one by one, no people to count
		r.writeTaskChanges(&b)
	} else if r.Plan != nil {
		for _, pr := range r.Plan.Problems {
			fmt.Fprintf(&b, "! config: %s\n", pr)
		}
		sum := r.Plan.Summary()
		b.WriteString(sum.String())
		b.WriteByte('\n')
		b.WriteString(sum.ChangesLine())
		b.WriteByte('\n')
	}
	if !r.DryRun && r.Plan != nil && len(r.Tasks) == 0 {
		fmt.Fprintf(&b, "Applied %d of %d changes, failed %d, not applied %d\n", r.Counts[StatusApplied], len(r.Plan.Changes),
			r.Counts[StatusFailed], r.Counts[StatusSkipped])
		byKind := map[Kind][]string{}
		for k, n := range r.Counts {
			if kind, status, ok := strings.Cut(k, "/"); ok {
				byKind[Kind(kind)] = append(byKind[Kind(kind)], fmt.Sprintf("%s %d", status, n))
			}
		}
		for _, k := range sortedKinds(byKind) {
			slices.Sort(byKind[k])
			fmt.Fprintf(&b, "  %-26s %s\n", kindName(k), strings.Join(byKind[k], ", "))
		}
	}
	if r.Plan != nil {
		var skipped, outOfScope []Skipped
		for _, s := range r.Plan.Skipped {
			if s.OutOfScope {
				outOfScope = append(outOfScope, s)
			} else {
				skipped = append(skipped, s)
			}
		}
		writeCapped(&b, "Skipped:", skipped, reportListMax)
		writeCapped(&b, "Warnings:", r.Plan.Warnings, reportListMax)
		if o.ShowOutOfScope {
			writeCapped(&b, "Out of scope:", outOfScope, len(outOfScope))
		} else if len(outOfScope) > 0 {
			fmt.Fprintf(&b, "Out of scope: %d %s (--show-out-of-scope lists them)\n", len(outOfScope), plural(len(outOfScope), "person", "people"))
		}
	}
	var failed []Result
	for _, res := range r.Results {
		if res.Status == StatusFailed {
			failed = append(failed, res)
		}
	}
	if len(failed) > 0 {
		b.WriteString("Failed:\n")
		for _, res := range failed {
			fmt.Fprintf(&b, "  %s: %s\n", ChangeLine(res.Change), res.Error)
		}
	}
	if len(r.Refused) > 0 {
		b.WriteString("Refused by guard:\n")
		for _, x := range r.Refused {
			fmt.Fprintf(&b, "  %s\n", x)
		}
	}
	// errors that are neither a failed change nor the guard's refusal (a failed read, a side
	// task that could not plan, the state file)
	known := map[string]bool{(&GuardError{Reasons: r.Refused}).Error(): true}
	if r.Plan != nil {
		for _, pr := range r.Plan.Problems {
			known[pr] = true
		}
	}
	for _, res := range failed {
		known[fmt.Sprintf("%s %s: %s", strings.ReplaceAll(string(res.Change.Kind), "_", " "), res.Change.Subject, res.Error)] = true
	}
	read := map[string]bool{}
	for _, e := range r.ReadErrors {
		read[e.Message] = true
	}
	var notRead, other []string
	for _, e := range r.Errors {
		switch {
		case known[e]:
		case read[e]:
			notRead = append(notRead, e)
		default:
			other = append(other, e)
		}
	}
	if len(notRead) > 0 {
		b.WriteString("Could not read (nothing was written on its account):\n")
		for _, e := range notRead {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	if len(other) > 0 {
		b.WriteString("Errors:\n")
		for _, e := range other {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTaskChanges writes what a run of side tasks only planned and did, change by change.
func (r *Report) writeTaskChanges(b *strings.Builder) {
	if len(r.Plan.Changes) == 0 {
		if len(r.Plan.Errors) == 0 {
			fmt.Fprintf(b, "No changes: babelforce's %s settings match the configuration.\n", strings.Join(r.Tasks, ", "))
		}
		return
	}
	status := map[string]string{}
	for _, res := range r.Results {
		status[ChangeLine(res.Change)] = res.Status
	}
	for _, c := range r.Plan.Changes {
		line := ChangeLine(c)
		switch st := status[line]; {
		case r.DryRun:
			fmt.Fprintf(b, "%s\n", line)
		case st != "":
			fmt.Fprintf(b, "%s\n  -> %s\n", line, st)
		default:
			fmt.Fprintf(b, "%s\n  -> not applied\n", line)
		}
	}
}

// reportListMax is how many skipped people or warnings a report's text names; the plan
// (bridge plan) lists them all.
const reportListMax = 20

func writeCapped(b *strings.Builder, title string, items []Skipped, max int) {
	if len(items) == 0 {
		return
	}
	b.WriteString(title + "\n")
	for i, s := range items {
		if i == max {
			fmt.Fprintf(b, "  ... and %d more (bridge plan lists them all)\n", len(items)-max)
			break
		}
		fmt.Fprintf(b, "  %s: %s\n", s.Subject, s.Reason)
	}
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
