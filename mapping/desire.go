package mapping

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/babelforce/bridge/directory"
)

// Desire applies the rules to a snapshot. It is deterministic: agents are sorted by SourceID,
// skipped users and warnings by UserID, tags and agent groups by name. It never modifies s.
//
// Memberships come from s.Memberships (transitive, filled by Snapshot.Resolve); a snapshot
// that was never resolved (nil Memberships) falls back to each user's direct groups.
//
// Rules are evaluated once per group, not per user; users are mapped on up to GOMAXPROCS
// goroutines (the result does not depend on how many).
func Desire(s *directory.Snapshot, r *Rules) *Desired {
	if s == nil {
		s = &directory.Snapshot{}
	}
	r.desires.Add(1)
	p := prepare(s, r)
	// Each user's agent is written straight into the agents the result keeps (the skipped
	// ones are squeezed out below): a second array of every agent, alive beside the snapshot
	// at the peak of a run, costs about 20 MB at 100,000 people.
	agents := make([]Agent, len(s.Users))
	type outcome struct {
		skip     *Skip
		warnings []Skip
	}
	results := make([]outcome, len(s.Users))

	workers := runtime.GOMAXPROCS(0)
	const chunk = 512
	if n := (len(s.Users) + chunk - 1) / chunk; n < workers {
		workers = max(n, 1)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	execs := make([]*executor, workers)
	for w := range workers {
		x := r.newExecutor()
		execs[w] = x
		wg.Go(func() {
			for {
				start := int(next.Add(chunk)) - chunk
				if start >= len(s.Users) {
					return
				}
				end := min(start+chunk, len(s.Users))
				for i := start; i < end; i++ {
					res := p.mapUser(x, &s.Users[i], nil)
					agents[i], results[i] = res.agent, outcome{res.skip, res.warnings}
				}
			}
		})
	}
	wg.Wait()

	d := &Desired{AgentGroups: []string{}, Tags: []string{}}
	problems := p.problems
	for _, x := range execs {
		for pr := range x.problems {
			problems[pr] = struct{}{}
		}
	}
	kept := 0
	for i := range results {
		res := &results[i]
		if res.skip != nil {
			d.Skipped = append(d.Skipped, *res.skip)
		} else {
			agents[kept] = agents[i]
			kept++
		}
		d.Warnings = append(d.Warnings, res.warnings...)
	}
	clear(agents[kept:]) // old copies of the agents moved forward: they must not pin their strings
	d.Agents = agents[:kept:kept]
	d.Agents, d.Skipped, d.Warnings = rejectCollisions(d.Agents, d.Skipped, d.Warnings)
	d.RuleGroups = p.ruleGroups

	tags := map[string]struct{}{}
	groups := map[string]struct{}{}
	for i := range d.Agents {
		for _, t := range d.Agents[i].Tags {
			tags[t] = struct{}{}
		}
		for _, g := range d.Agents[i].AgentGroups {
			groups[g] = struct{}{}
		}
	}
	d.Tags = sortedKeys(tags)
	d.AgentGroups = sortedKeys(groups)
	if len(problems) > 0 {
		d.Problems = sortedKeys(problems)
	}
	slices.SortFunc(d.Skipped, compareSkip)
	slices.SortFunc(d.Warnings, compareSkip)
	return d
}

func compareSkip(a, b Skip) int {
	return cmp.Or(strings.Compare(a.UserID, b.UserID), strings.Compare(a.Reason, b.Reason), strings.Compare(a.Detail, b.Detail))
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// rejectCollisions skips every agent whose e-mail another agent also has, and every agent
// whose SourceID another agent also has, naming the others. It returns agents sorted by
// SourceID. A leaver (an agent to be disabled) is never skipped for a shared e-mail: their
// agent is switched off all the same, with a warning naming the others.
func rejectCollisions(agents []Agent, skipped, warnings []Skip) ([]Agent, []Skip, []Skip) {
	slices.SortFunc(agents, func(a, b Agent) int {
		return cmp.Or(strings.Compare(a.SourceID, b.SourceID), strings.Compare(a.Email, b.Email))
	})
	byEmail := make(map[string][]int, len(agents))
	for i := range agents {
		if agents[i].Email != "" {
			byEmail[agents[i].Email] = append(byEmail[agents[i].Email], i)
		}
	}
	reject := map[int]string{}
	for email, idx := range byEmail {
		if len(idx) < 2 {
			continue
		}
		for _, i := range idx {
			var others []string
			for _, j := range idx {
				if j != i {
					others = append(others, describe(agents[j].UserName, agents[j].SourceID))
				}
			}
			reject[i] = fmt.Sprintf("e-mail %s is also the e-mail of %s; fix the directory so that each person has their own", email, strings.Join(others, ", "))
		}
	}
	for i := 1; i < len(agents); i++ {
		if agents[i].SourceID == agents[i-1].SourceID {
			for _, j := range []int{i - 1, i} {
				if _, done := reject[j]; !done {
					reject[j] = fmt.Sprintf("the directory has more than one user with id %q", agents[j].SourceID)
				}
			}
		}
	}
	if len(reject) == 0 {
		return agents, skipped, warnings
	}
	kept := agents[:0]
	for i, a := range agents {
		detail, ok := reject[i]
		switch {
		case ok && !a.Enabled && !strings.HasPrefix(detail, "the directory has more than one user with id"):
			warnings = append(warnings, Skip{UserID: a.SourceID, UserName: a.UserName, Reason: ReasonInvalid, Inactive: true,
				Detail: detail + " (switched off all the same: inactive in the directory)"})
		case ok:
			skipped = append(skipped, Skip{UserID: a.SourceID, UserName: a.UserName, Reason: ReasonInvalid, Detail: detail})
			continue
		}
		kept = append(kept, a)
	}
	return kept, skipped, warnings
}

func describe(userName, id string) string {
	if userName == "" {
		return fmt.Sprintf("user with id %s", id)
	}
	return fmt.Sprintf("%s (id %s)", userName, id)
}

// groupInfo is what the rules make of one group, computed once per Desire.
type groupInfo struct {
	name        string
	include     bool
	exclude     bool
	tags        []string
	agentGroups []string
	roles       []string
}

// prepared is a snapshot with every group's rule results computed.
type prepared struct {
	r      *Rules
	s      *directory.Snapshot
	idx    map[string]int
	groups []groupInfo
	// problems found while evaluating rules against groups (sorted into Desired.Problems).
	problems map[string]struct{}
	// ruleGroups: the groups rules name exactly, and whether the snapshot has them.
	ruleGroups []RuleGroup
}

func groupLabel(g *directory.Group) string {
	switch {
	case g.Name != "":
		return g.Name
	case g.DN != "":
		return g.DN
	}
	return g.ID
}

func prepare(s *directory.Snapshot, r *Rules) *prepared {
	p := &prepared{r: r, s: s, idx: make(map[string]int, len(s.Groups)), groups: make([]groupInfo, len(s.Groups)), problems: map[string]struct{}{}}
	includeHit := make([]bool, len(r.include))
	excludeHit := make([]bool, len(r.exclude))
	ruleHit := map[*rule]bool{}
	for i := range s.Groups {
		g := &s.Groups[i]
		p.idx[g.ID] = i
		gi := &p.groups[i]
		gi.name = groupLabel(g)
		gk := keyOf(g)
		for j, sel := range r.include {
			if sel.matches(gk) {
				gi.include, includeHit[j] = true, true
			}
		}
		for j, sel := range r.exclude {
			if sel.matches(gk) {
				gi.exclude, excludeHit[j] = true, true
			}
		}
		for _, h := range groupHits(r, g) {
			ruleHit[h.rule] = true
			for _, pr := range h.problems {
				p.problems[pr] = struct{}{}
			}
			switch h.rule.kind {
			case kindSkill:
				gi.tags = append(gi.tags, h.values...)
			case kindAgentGroup:
				gi.agentGroups = append(gi.agentGroups, h.values...)
			case kindRole:
				gi.roles = append(gi.roles, h.values...)
			}
		}
		gi.tags = sortUnique(gi.tags)
		gi.agentGroups = sortUnique(gi.agentGroups)
		gi.roles = sortUnique(gi.roles)
	}
	for j, hit := range includeHit {
		p.ruleGroups = append(p.ruleGroups, RuleGroup{Rule: fmt.Sprintf("scope.include_groups[%d]", j), Group: r.include[j].raw, Found: hit})
		if !hit {
			p.problems[fmt.Sprintf("scope.include_groups[%d] %q matches no group in the directory", j, r.include[j].raw)] = struct{}{}
		}
	}
	for j, hit := range excludeHit {
		if !hit {
			p.problems[fmt.Sprintf("scope.exclude_groups[%d] %q matches no group in the directory", j, r.exclude[j].raw)] = struct{}{}
		}
	}
	for _, rules := range [][]*rule{r.skills, r.agentGroups, r.roles} {
		for _, ru := range rules {
			if ru.sel != nil {
				p.ruleGroups = append(p.ruleGroups, RuleGroup{Rule: ru.key, Group: ru.sel.raw, Found: ruleHit[ru]})
			}
			if ru.sel != nil && !ruleHit[ru] {
				p.problems[fmt.Sprintf("%s group %q matches no group in the directory", ru.key, ru.sel.raw)] = struct{}{}
			}
		}
	}
	return p
}

func sortUnique(s []string) []string {
	if len(s) < 2 {
		return s
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// hit is one rule producing values for one input (a group name or an attribute value).
type hit struct {
	rule     *rule
	input    string // the group's name, or the attribute value
	values   []string
	problems []string
}

// groupHits applies every group and match rule to one group.
func groupHits(r *Rules, g *directory.Group) []hit {
	var hits []hit
	var gk *groupKey
	for _, rules := range [][]*rule{r.skills, r.agentGroups, r.roles} {
		for _, ru := range rules {
			if ru.attr != "" {
				continue
			}
			label := groupLabel(g)
			if ru.sel != nil {
				if gk == nil {
					k := keyOf(g)
					gk = &k
				}
				if ru.sel.matches(*gk) {
					hits = append(hits, hit{rule: ru, input: label, values: ru.outputs})
				}
				continue
			}
			if h, ok := ru.apply(g.Name, "group "+label); ok {
				h.input = label
				hits = append(hits, h)
			}
		}
	}
	return hits
}

// apply runs a match rule over one input; where names the input in problems.
func (ru *rule) apply(input, where string) (hit, bool) {
	m := ru.re.FindStringSubmatchIndex(input)
	if m == nil {
		return hit{}, false
	}
	h := hit{rule: ru, input: input}
	if !ru.expand {
		h.values = ru.outputs
		return h, true
	}
	for _, out := range ru.outputs {
		if !strings.Contains(out, "$") {
			h.values = append(h.values, out)
			continue
		}
		v := string(ru.re.ExpandString(nil, out, input, m))
		if ru.kind == kindRole {
			role, ok := knownRole(v)
			if !ok {
				if strings.TrimSpace(v) != "" {
					h.problems = append(h.problems, fmt.Sprintf("%s made unknown role %q from %s; ignored", ru.key, v, where))
				}
				continue
			}
			h.values = append(h.values, role)
			continue
		}
		clean, problem := cleanName(v, ru.lower, ru.kind == kindSkill)
		if problem != "" {
			if clean == "" && strings.TrimSpace(v) == "" {
				continue // an empty output is no output
			}
			h.problems = append(h.problems, fmt.Sprintf("%s made %s %q from %s, which %s; ignored", ru.key, ru.kind.noun(), v, where, problem))
			continue
		}
		h.values = append(h.values, clean)
	}
	return h, true
}

// attrHits applies the attribute rules to one user, calling found for each hit.
func attrHits(r *Rules, u *directory.User, memo map[memoKey]hit, found func(*hit)) {
	for _, rules := range [][]*rule{r.skills, r.agentGroups, r.roles} {
		for _, ru := range rules {
			if ru.attr == "" {
				continue
			}
			for _, v := range attrValues(u, ru.attrKey) {
				k := memoKey{ru, v}
				h, ok := memo[k]
				if !ok {
					h, ok = ru.apply(v, fmt.Sprintf("%s %q", ru.attr, v))
					if !ok {
						h = hit{}
					}
					if memo != nil && len(memo) < 100000 {
						memo[k] = h
					}
				}
				if h.rule != nil {
					found(&h)
				}
			}
		}
	}
}

type memoKey struct {
	rule  *rule
	value string
}

// trace collects how a user was mapped, for Explain.
type trace struct {
	scope  []Check
	fields []FieldSource
	extIDs []FieldSource
}

func (p *prepared) memberships(u *directory.User) []string {
	if p.s.Memberships == nil {
		return u.Groups
	}
	return p.s.Memberships[u.ID]
}

// scope decides whether u is in scope; the detail names the rule that left it out. With a
// trace it evaluates every rule.
func (p *prepared) scope(u *directory.User, gidx []int, tr *trace) (bool, string) {
	r := p.r
	in, detail := true, ""
	fail := func(d string) {
		if in {
			in, detail = false, d
		}
	}
	if len(r.include) > 0 {
		member := ""
		for _, i := range gidx {
			if p.groups[i].include {
				member = p.groups[i].name
				break
			}
		}
		d := r.includeDetail
		if member == "" {
			fail(d)
			if tr == nil {
				return false, d
			}
		}
		if tr != nil {
			var names []string
			for _, sel := range r.include {
				names = append(names, sel.raw)
			}
			c := Check{Rule: fmt.Sprintf("scope.include_groups [%s]", strings.Join(names, ", ")), Passed: member != "", Detail: d}
			if member != "" {
				c.Detail = "member of " + member
			}
			tr.scope = append(tr.scope, c)
		}
	}
	if len(r.exclude) > 0 {
		excluded := ""
		for _, i := range gidx {
			if p.groups[i].exclude {
				excluded = p.groups[i].name
				break
			}
		}
		if excluded != "" {
			fail("member of excluded group " + excluded)
			if tr == nil {
				return false, detail
			}
		}
		if tr != nil {
			var names []string
			for _, sel := range r.exclude {
				names = append(names, sel.raw)
			}
			c := Check{Rule: fmt.Sprintf("scope.exclude_groups [%s]", strings.Join(names, ", ")), Passed: excluded == "", Detail: "member of none"}
			if excluded != "" {
				c.Detail = "member of excluded group " + excluded
			}
			tr.scope = append(tr.scope, c)
		}
	}
	for _, c := range r.conds {
		vals := attrValues(u, c.attrKey)
		ok := c.eval(vals)
		if !ok {
			fail(fmt.Sprintf("condition %s not met", c.text))
			if tr == nil {
				return false, detail
			}
		}
		if tr != nil {
			d := fmt.Sprintf("%s is absent", c.attr)
			if len(vals) > 0 {
				q := make([]string, len(vals))
				for i, v := range vals {
					q[i] = fmt.Sprintf("%q", v)
				}
				d = fmt.Sprintf("%s is %s", c.attr, strings.Join(q, ", "))
			}
			tr.scope = append(tr.scope, Check{Rule: fmt.Sprintf("%s %s", c.key, c.text), Passed: ok, Detail: d})
		}
	}
	if !r.includeInactive {
		if !u.Active {
			fail("inactive in the directory and scope.include_inactive is false")
			if tr == nil {
				return false, detail
			}
		}
		if tr != nil {
			d := "active"
			if !u.Active {
				d = "inactive"
			}
			tr.scope = append(tr.scope, Check{Rule: "scope.include_inactive false", Passed: u.Active, Detail: d})
		}
	}
	return in, detail
}

func (c *condition) eval(vals []string) bool {
	switch c.op {
	case opPresent, opAbsent:
		present := false
		for _, v := range vals {
			if strings.TrimSpace(v) != "" {
				present = true
				break
			}
		}
		return present == (c.op == opPresent)
	case opMatches:
		for _, v := range vals {
			if c.re.MatchString(v) {
				return true
			}
		}
		return false
	case opNotEquals:
		for _, v := range vals {
			if strings.EqualFold(v, c.vals[0]) {
				return false
			}
		}
		return true
	default: // equals, one_of
		for _, v := range vals {
			for _, want := range c.vals {
				if strings.EqualFold(v, want) {
					return true
				}
			}
		}
		return false
	}
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// defaultName is displayName (as the source read it: the attribute it came from is named),
// else "givenName familyName", else userName. It returns the name, the rule and the raw value.
func defaultName(u *directory.User) (string, string, string) {
	if n := collapseSpace(u.DisplayName); n != "" {
		return n, "default: " + cmp.Or(u.DisplayNameFrom, "displayName"), u.DisplayName
	}
	if gf := u.GivenName + " " + u.FamilyName; gf != " " {
		if n := collapseSpace(gf); n != "" {
			return n, "default: givenName familyName", strings.TrimSpace(gf)
		}
	}
	return strings.TrimSpace(u.UserName), "default: userName", u.UserName
}

// collapseSpace trims s and collapses inner runs of white space to one space, without
// allocating when s is already clean.
func collapseSpace(s string) string {
	clean := true
	prevSpace := true // a leading space is not clean
	for i := 0; i < len(s); i++ {
		c := s[i]
		space := c == ' '
		if c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c >= 0x80 || (space && prevSpace) {
			clean = false
			break
		}
		prevSpace = space
	}
	if clean && !prevSpace {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// checkEmail returns a problem with an e-mail address (already lower-cased), or "".
func checkEmail(email string) string {
	at := strings.IndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return "is not an e-mail address (no local part, @ and domain)"
	}
	local, domain := email[:at], email[at+1:]
	for i := 0; i < len(email); i++ {
		switch c := email[i]; {
		case c <= ' ' || c == 0x7f:
			return "is not an e-mail address (contains a space or a control character)"
		case strings.IndexByte(",;:<>()[]\\\"", c) >= 0:
			return fmt.Sprintf("is not an e-mail address (contains %q)", c)
		}
	}
	if strings.IndexByte(domain, '@') >= 0 {
		return "is not an e-mail address (more than one @)"
	}
	for _, part := range []string{local, domain} {
		if part[0] == '.' || part[len(part)-1] == '.' || strings.Contains(part, "..") {
			return "is not an e-mail address (misplaced dot)"
		}
	}
	return ""
}
