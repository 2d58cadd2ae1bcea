package provisioning

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Summary counts a plan the way its last line says it.
type Summary struct {
	Create     int `json:"create"`
	Update     int `json:"update"`
	Disable    int `json:"disable"`
	Delete     int `json:"delete"`
	Deactivate int `json:"deactivate"`
	Other      int `json:"other"`
	Unchanged  int `json:"unchanged"`
	Skipped    int `json:"skipped"`
	Held       int `json:"held"`
	// Conflicts counts leavers switched off despite a conflict (Plan.Conflicts).
	Conflicts int `json:"conflicts,omitempty"`
}

// Summary counts agents to create, update (distinct agents with any other change), disable
// and delete.
func (p *Plan) Summary() Summary {
	s := Summary{Unchanged: p.Unchanged, Skipped: len(p.Skipped), Held: len(p.Held), Conflicts: len(p.Conflicts)}
	created := map[string]bool{}
	for _, c := range p.Changes {
		if c.Kind == CreateAgent {
			created[c.Subject] = true
		}
	}
	updated := map[string]bool{}
	for _, c := range p.Changes {
		switch c.Kind {
		case CreateAgent:
			s.Create++
		case DisableAgent:
			s.Disable++
		case DeleteAgent:
			s.Delete++
		case DeactivateLogin:
			s.Deactivate++
		case UpdateAgent, AddTag, RemoveTag, JoinAgentGroup, LeaveAgentGroup, EnableAgent,
			CreateLoginUser, UpdateLoginUser, SetExternalID, ClearExternalID:
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

// String is the summary line.
func (s Summary) String() string {
	line := fmt.Sprintf("Plan: %d to create, %d to update, %d to disable, %d to delete (%d unchanged, %d skipped)",
		s.Create, s.Update, s.Disable, s.Delete, s.Unchanged, s.Skipped)
	if s.Deactivate > 0 {
		line += fmt.Sprintf("; %d login %s to deactivate", s.Deactivate, plural(s.Deactivate, "user", "users"))
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

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// WriteText writes the plan as a reviewable diff: one line per change, the skipped, what a
// guard held back and why, and the summary line.
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, c := range p.Changes {
		b.WriteString(ChangeLine(c))
		b.WriteByte('\n')
	}
	for _, s := range p.Skipped {
		fmt.Fprintf(&b, "! skipped %s: %s\n", s.Subject, s.Reason)
	}
	for _, s := range p.Warnings {
		fmt.Fprintf(&b, "! warning %s: %s\n", s.Subject, s.Reason)
	}
	for _, s := range p.Conflicts {
		fmt.Fprintf(&b, "! conflict %s: %s\n", s.Subject, s.Reason)
	}
	for _, pr := range p.Problems {
		fmt.Fprintf(&b, "! config: %s\n", pr)
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
	if len(p.Changes) == 0 && len(p.Held) == 0 {
		// (with changes held back by a guard, babelforce does not match the directory)
		b.WriteString("No changes: babelforce matches the directory.\n")
	}
	b.WriteString(p.Summary().String())
	b.WriteByte('\n')
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

// WriteText writes what a run did: counts by kind and status, the failures, what a guard
// refused.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	mode := ""
	if r.DryRun {
		mode = ", dry run"
	}
	if r.Forced {
		mode += ", forced"
	}
	scope := "everyone"
	if len(r.Users) > 0 {
		scope = strings.Join(r.Users, ", ")
	}
	fmt.Fprintf(&b, "Run %s (trigger %s%s) for %s, took %s\n", r.Started.UTC().Format(time.RFC3339), r.Trigger, mode, scope,
		r.Duration.Round(time.Millisecond))
	if r.Plan != nil {
		b.WriteString(r.Plan.Summary().String())
		b.WriteByte('\n')
	}
	if !r.DryRun && r.Plan != nil {
		fmt.Fprintf(&b, "Applied %d, failed %d, skipped %d\n", r.Counts[StatusApplied], r.Counts[StatusFailed], r.Counts[StatusSkipped])
		for _, k := range slices.Sorted(maps.Keys(r.Counts)) {
			if strings.Contains(k, "/") {
				kind, status, _ := strings.Cut(k, "/")
				fmt.Fprintf(&b, "  %-26s %-8s %d\n", kind, status, r.Counts[k])
			}
		}
	}
	if r.Plan != nil {
		writeCapped(&b, "Skipped:", r.Plan.Skipped, reportListMax)
		writeCapped(&b, "Warnings:", r.Plan.Warnings, reportListMax)
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
	for _, res := range failed {
		known[fmt.Sprintf("%s %s: %s", strings.ReplaceAll(string(res.Change.Kind), "_", " "), res.Change.Subject, res.Error)] = true
	}
	var other []string
	for _, e := range r.Errors {
		if !known[e] {
			other = append(other, e)
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
