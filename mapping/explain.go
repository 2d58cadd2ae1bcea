package mapping

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/babelforce/bridge/directory"
)

// Explanation says how the rules treat one directory user: for `bridge explain USER`.
type Explanation struct {
	UserID   string `json:"userId"`
	UserName string `json:"userName"`
	DN       string `json:"dn,omitempty"`
	Active   bool   `json:"active"`
	// Found is false when the snapshot has no user with that id (then only Problems says so).
	Found bool `json:"found"`
	// Groups names every group the user belongs to, directly or through nested groups, sorted.
	Groups  []string `json:"groups"`
	InScope bool     `json:"inScope"`
	// Scope is every scope rule with its result, in the order they are applied.
	Scope []Check `json:"scope"`
	// Fields says where name, email and number came from (raw -> normalised).
	Fields      []FieldSource `json:"fields,omitempty"`
	Tags        []Source      `json:"tags,omitempty"`
	AgentGroups []Source      `json:"agentGroups,omitempty"`
	Roles       []Source      `json:"roles,omitempty"`
	// RolesNote says why there are no roles when no rule is to blame (login_users: false, no
	// e-mail).
	RolesNote   string        `json:"rolesNote,omitempty"`
	ExternalIDs []FieldSource `json:"externalIds,omitempty"`
	// Agent is what Desire produces for the user; nil when skipped.
	Agent *Agent `json:"agent,omitempty"`
	// Skip says why the user produces no agent; nil when mapped.
	Skip     *Skip    `json:"skip,omitempty"`
	Warnings []Skip   `json:"warnings,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

// Check is one scope rule and its result for a user.
type Check struct {
	Rule   string `json:"rule"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

// FieldSource says which rule gave a field its value: Raw is what the directory (or the
// template) gave, Value what the agent gets.
type FieldSource struct {
	Field   string `json:"field"`
	Rule    string `json:"rule"`
	Raw     string `json:"raw,omitempty"`
	Value   string `json:"value"`
	Problem string `json:"problem,omitempty"`
}

// Source says which rule produced one tag, agent group or role.
type Source struct {
	Value string `json:"value"`
	// Rule is the YAML key of the rule, e.g. "skills[1]", "static_tags", "default_roles".
	Rule string `json:"rule"`
	// RuleText is the rule in words, e.g. `match "^skill-(.+)$" -> tag "$1"`.
	RuleText string `json:"ruleText,omitempty"`
	// From is the input that matched: `group "skill-French"` or `preferredLanguage "de"`.
	From string `json:"from,omitempty"`
}

// Explain says how the rules treat the user with the given directory id: whether in scope and
// why, which rule produced each field, tag, agent group, role and external id, and problems.
// It runs Desire over the whole snapshot so that e-mail collisions are reported too.
func Explain(s *directory.Snapshot, r *Rules, userID string) Explanation {
	return ExplainDesired(s, r, nil, userID)
}

// ExplainDesired is Explain for a caller that has mapped the snapshot already: d must be
// Desire(s, r) (nil: Explain computes it). It saves mapping the whole directory twice.
func ExplainDesired(s *directory.Snapshot, r *Rules, d *Desired, userID string) Explanation {
	e := Explanation{UserID: userID, Groups: []string{}, Scope: []Check{}}
	u := s.User(userID)
	if u == nil {
		for i := range s.Users {
			if s.Users[i].ID == userID {
				u = &s.Users[i]
				break
			}
		}
	}
	if u == nil {
		e.Problems = []string{fmt.Sprintf("the directory has no user with id %q", userID)}
		return e
	}
	e.Found, e.UserName, e.DN, e.Active = true, u.UserName, u.DN, u.Active

	if d == nil {
		d = Desire(s, r)
	}
	p := prepare(s, r)
	x := r.newExecutor()
	tr := &trace{}
	res := p.mapUser(x, u, tr)
	gids := p.memberships(u)
	for _, gid := range gids {
		if i, ok := p.idx[gid]; ok {
			e.Groups = append(e.Groups, p.groups[i].name)
		}
	}
	slices.Sort(e.Groups)
	e.Scope = append(e.Scope, tr.scope...)
	e.Fields = tr.fields
	e.ExternalIDs = tr.extIDs

	if i, ok := slices.BinarySearchFunc(d.Agents, u.ID, func(a Agent, id string) int { return strings.Compare(a.SourceID, id) }); ok {
		a := d.Agents[i]
		e.Agent = &a
	}
	for i := range d.Skipped {
		if d.Skipped[i].UserID == u.ID {
			sk := d.Skipped[i]
			e.Skip = &sk
			break
		}
	}
	for _, w := range d.Warnings {
		if w.UserID == u.ID {
			e.Warnings = append(e.Warnings, w)
		}
	}
	e.InScope = res.skip == nil || res.skip.Reason != ReasonOutOfScope
	if !e.InScope {
		return e
	}

	// where tags, agent groups and roles came from
	problems := map[string]struct{}{}
	var tagSrc, groupSrc, roleSrc []Source
	for _, t := range r.staticTags {
		tagSrc = append(tagSrc, Source{Value: t, Rule: "static_tags"})
	}
	var hits []hit
	for _, gid := range gids {
		if g := s.Group(gid); g != nil {
			for _, h := range groupHits(r, g) {
				h.input = "group " + quote(h.input)
				hits = append(hits, h)
			}
		}
	}
	attrHits(r, u, nil, func(h *hit) {
		c := *h
		c.input = h.rule.attr + " " + quote(h.input)
		hits = append(hits, c)
	})
	for _, h := range hits {
		for _, pr := range h.problems {
			problems[pr] = struct{}{}
		}
		for _, v := range h.values {
			src := Source{Value: v, Rule: h.rule.key, RuleText: h.rule.text, From: h.input}
			switch h.rule.kind {
			case kindSkill:
				tagSrc = append(tagSrc, src)
			case kindAgentGroup:
				groupSrc = append(groupSrc, src)
			case kindRole:
				roleSrc = append(roleSrc, src)
			}
		}
	}
	email := res.agent.Email
	for _, f := range tr.fields {
		if f.Field == "email" {
			email = f.Value
		}
	}
	switch {
	case !r.loginUsers:
		roleSrc = nil
		e.RolesNote = "login_users is false: bridge manages no login users"
	case email == "":
		roleSrc = nil
		e.RolesNote = "no e-mail address: no login user"
	case len(roleSrc) == 0:
		for _, ro := range r.defaultRoles {
			roleSrc = append(roleSrc, Source{Value: ro, Rule: "default_roles", RuleText: "no role rule matched"})
		}
		if len(r.defaultRoles) == 0 {
			e.RolesNote = "no role rule matched and default_roles is empty: no login user"
		}
	}
	e.Tags, e.AgentGroups, e.Roles = sortSources(tagSrc), sortSources(groupSrc), sortSources(roleSrc)
	for pr := range problems {
		e.Problems = append(e.Problems, pr)
	}
	slices.Sort(e.Problems)
	return e
}

func sortSources(s []Source) []Source {
	slices.SortFunc(s, func(a, b Source) int {
		return cmp.Or(strings.Compare(a.Value, b.Value), strings.Compare(a.Rule, b.Rule), strings.Compare(a.From, b.From))
	})
	return slices.Compact(s)
}

// Text renders the explanation for a terminal.
func (e Explanation) Text() string {
	var b strings.Builder
	_ = e.WriteText(&b)
	return b.String()
}

// WriteText writes the explanation for a terminal.
func (e Explanation) WriteText(w io.Writer) error {
	var b strings.Builder
	pf := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	if !e.Found {
		pf("user %s: not found\n", e.UserID)
		for _, p := range e.Problems {
			pf("  %s\n", p)
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	pf("user %s (id %s)\n", e.UserName, e.UserID)
	if e.DN != "" {
		pf("  dn:     %s\n", e.DN)
	}
	pf("  active: %t\n", e.Active)
	if len(e.Groups) > 0 {
		pf("  groups: %s\n", strings.Join(e.Groups, ", "))
	} else {
		pf("  groups: (none)\n")
	}
	pf("\nscope: ")
	if e.InScope {
		pf("in scope\n")
	} else {
		pf("OUT OF SCOPE\n")
	}
	if len(e.Scope) == 0 {
		pf("  (no scope rules: everyone is in scope)\n")
	}
	for _, c := range e.Scope {
		mark := "ok  "
		if !c.Passed {
			mark = "FAIL"
		}
		pf("  [%s] %s: %s\n", mark, c.Rule, c.Detail)
	}
	if len(e.Fields) > 0 {
		pf("\nfields:\n")
		for _, f := range e.Fields {
			pf("  %-7s %s", f.Field, quote(f.Value))
			if f.Raw != "" && f.Raw != f.Value {
				pf(" (from %s)", quote(f.Raw))
			}
			pf("  <- %s\n", f.Rule)
			if f.Problem != "" {
				pf("          problem: %s\n", f.Problem)
			}
		}
	}
	sources := func(title string, list []Source, note string) {
		if len(list) == 0 && note == "" && !e.InScope {
			return
		}
		pf("\n%s:\n", title)
		if len(list) == 0 {
			if note == "" {
				note = "(none)"
			}
			pf("  %s\n", note)
			return
		}
		for _, s := range list {
			pf("  %s  <- %s", quote(s.Value), s.Rule)
			if s.RuleText != "" {
				pf(": %s", s.RuleText)
			}
			if s.From != "" {
				pf("; matched %s", s.From)
			}
			pf("\n")
		}
		if note != "" {
			pf("  %s\n", note)
		}
	}
	if e.Skip == nil || e.Skip.Reason != ReasonOutOfScope {
		sources("tags", e.Tags, "")
		sources("agent groups", e.AgentGroups, "")
		sources("roles", e.Roles, e.RolesNote)
		if len(e.ExternalIDs) > 0 {
			pf("\nexternal ids:\n")
			for _, f := range e.ExternalIDs {
				v := quote(f.Value)
				if f.Value == "" {
					v = "(none)"
				}
				pf("  %s: %s  <- %s\n", f.Field, v, f.Rule)
				if f.Problem != "" {
					pf("          problem: %s\n", f.Problem)
				}
			}
		}
	}
	pf("\nresult: ")
	switch {
	case e.Agent != nil:
		state := "enabled"
		if !e.Agent.Enabled {
			state = "disabled (inactive in the directory)"
		}
		email := "<" + e.Agent.Email + ">"
		if e.Agent.Email == "" {
			email = "(no e-mail)"
		}
		pf("agent %s %s, %s\n", quote(e.Agent.Name), email, state)
	case e.Skip != nil:
		pf("skipped (%s): %s\n", e.Skip.Reason, e.Skip.Detail)
	default:
		pf("no agent\n")
	}
	for _, w := range e.Warnings {
		pf("  warning: %s\n", w.Detail)
	}
	if len(e.Problems) > 0 {
		pf("\nproblems:\n")
		for _, p := range e.Problems {
			pf("  %s\n", p)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Errors of FindUser.
var (
	ErrNoUser        = errors.New("no user matches")
	ErrAmbiguousUser = errors.New("more than one user matches")
)

// FindUser finds the one user a query names: an exact id first, else the id, userName, any
// e-mail or the DN compared case-insensitively. No match wraps ErrNoUser; several wrap
// ErrAmbiguousUser and list the candidates.
func FindUser(s *directory.Snapshot, query string) (*directory.User, error) {
	q := strings.TrimSpace(query)
	if q == "" {
		return nil, fmt.Errorf("%w an empty query: give an id, userName or e-mail", ErrNoUser)
	}
	for i := range s.Users {
		if s.Users[i].ID == q {
			return &s.Users[i], nil
		}
	}
	dn := normDN(q)
	var found []int
	for i := range s.Users {
		u := &s.Users[i]
		match := strings.EqualFold(u.ID, q) || strings.EqualFold(u.UserName, q) ||
			(dn != "" && u.DN != "" && normDN(u.DN) == dn)
		for _, e := range u.Emails {
			if strings.EqualFold(strings.TrimSpace(e.Value), q) {
				match = true
			}
		}
		if match {
			found = append(found, i)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w %q (compared with id, userName, e-mail and DN)", ErrNoUser, q)
	case 1:
		return &s.Users[found[0]], nil
	}
	var cands []string
	for _, i := range found {
		u := &s.Users[i]
		c := describe(u.UserName, u.ID)
		if em := u.PrimaryEmail(); em != "" {
			c += " <" + em + ">"
		}
		cands = append(cands, c)
	}
	return nil, fmt.Errorf("%w %q: %s; give the id instead", ErrAmbiguousUser, q, strings.Join(cands, ", "))
}
