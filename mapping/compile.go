package mapping

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"

	"github.com/nyaruka/phonenumbers"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/directory"
)

// Rules is a compiled, validated Config. It is safe for concurrent use; the only state it
// keeps is a bounded memo of normalised phone numbers (filled from the second Desire on),
// which makes later runs faster and never changes a result.
type Rules struct {
	cfg             Config
	agentSource     string
	include         []groupSel
	exclude         []groupSel
	conds           []condition
	includeInactive bool
	requireEmail    bool

	name, email, number *fieldTemplate // nil: default

	region        string
	regionAttr    string
	regionAttrKey string
	// includeDetail is the skip detail of a user in none of include_groups.
	includeDetail string
	phoneRequired bool
	omitInvalid   bool

	skills      []*rule
	agentGroups []*rule
	roles       []*rule
	staticTags  []string

	defaultRoles []string
	loginUsers   bool
	externalIDs  []externalID

	// attrNames and allAttrs: see Attributes.
	attrNames []string
	allAttrs  bool

	phoneMu    sync.RWMutex
	phoneCache map[phoneKey]phoneResult
	// desires counts the Desire calls: the phone memo fills from the second on.
	desires atomic.Int64
}

// AgentSource returns the agent_source stamped on every agent.
func (r *Rules) AgentSource() string { return r.agentSource }

// LoginUsers reports whether bridge manages login users (login_users).
func (r *Rules) LoginUsers() bool { return r.loginUsers }

// Config returns the configuration the rules were compiled from.
func (r *Rules) Config() Config { return r.cfg }

type fieldTemplate struct {
	key  string // YAML path, e.g. "agent.name"
	text string
	desc string // key and quoted text, for Explain
	t    *template.Template
}

type externalID struct {
	key         string // "external_ids[0]"
	integration string
	attribute   string
	attrKey     string
	tmpl        *fieldTemplate
}

// groupSel names a group by name, DN or id.
type groupSel struct {
	raw  string
	id   string // raw, trimmed
	name string // lower-cased
	dn   string // normalised, "" when raw is not a DN
}

func newGroupSel(raw string) groupSel {
	s := groupSel{raw: raw, id: strings.TrimSpace(raw), name: strings.ToLower(strings.TrimSpace(raw))}
	s.dn = normDN(raw)
	return s
}

// groupKey is a group as selectors compare it, computed once per group.
type groupKey struct {
	id, name, dn string
}

func keyOf(g *directory.Group) groupKey {
	k := groupKey{id: g.ID, name: strings.ToLower(strings.TrimSpace(g.Name))}
	k.dn = normDN(g.DN)
	return k
}

func (s groupSel) matches(g groupKey) bool {
	if g.name == s.name || g.id == s.id {
		return true
	}
	return s.dn != "" && g.dn == s.dn
}

// normDN is directory.NormalizeDN's comparison key, "" for what is not a DN: rules and
// the directory compare DNs the same way (case, spacing, escapes, multi-valued RDNs).
func normDN(dn string) string {
	k, _ := directory.NormalizeDN(dn)
	return k
}

type condOp int

const (
	opEquals condOp = iota
	opNotEquals
	opOneOf
	opMatches
	opPresent
	opAbsent
)

type condition struct {
	key     string // "scope.conditions[0]"
	attr    string
	attrKey string // attr lower-cased, for attrValues
	op      condOp
	vals    []string // lower-cased for equals/not_equals/one_of
	re      *regexp.Regexp
	text    string // "employeeType equals contractor"
}

type ruleKind int

const (
	kindSkill ruleKind = iota
	kindAgentGroup
	kindRole
)

func (k ruleKind) section() string {
	return [...]string{"skills", "agent_groups", "roles"}[k]
}

func (k ruleKind) noun() string {
	return [...]string{"tag", "agent group", "role"}[k]
}

// rule is one compiled skill, agent group or role rule.
type rule struct {
	kind    ruleKind
	index   int
	key     string // "skills[2]"
	text    string // "match \"^skill-(.+)$\" -> tag \"$1\""
	sel     *groupSel
	re      *regexp.Regexp
	attr    string
	attrKey string
	lower   bool
	outputs []string
	// expand is true when outputs reference captures.
	expand bool
}

// Compile checks cfg and compiles its regular expressions and templates. It reports every
// problem at once (errors.Join), each prefixed with its YAML key path.
func Compile(cfg Config) (*Rules, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	cfg = cfg.WithDefaults()
	r := &Rules{cfg: cfg, phoneCache: map[phoneKey]phoneResult{}}

	r.agentSource = strings.TrimSpace(cfg.AgentSource)
	if r.agentSource == "" {
		bad("agent_source", `is required: it marks the agents bridge owns (e.g. "bridge:ldap")`)
	}

	// scope
	for i, g := range cfg.Scope.IncludeGroups {
		if strings.TrimSpace(g) == "" {
			bad(fmt.Sprintf("scope.include_groups[%d]", i), "must not be empty")
			continue
		}
		r.include = append(r.include, newGroupSel(g))
	}
	var names []string
	for _, sel := range r.include {
		names = append(names, sel.raw)
	}
	r.includeDetail = fmt.Sprintf("not a member of any include_groups (%s)", strings.Join(names, ", "))
	for i, g := range cfg.Scope.ExcludeGroups {
		if strings.TrimSpace(g) == "" {
			bad(fmt.Sprintf("scope.exclude_groups[%d]", i), "must not be empty")
			continue
		}
		r.exclude = append(r.exclude, newGroupSel(g))
	}
	for i, c := range cfg.Scope.Conditions {
		cond, err := compileCondition(fmt.Sprintf("scope.conditions[%d]", i), c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.conds = append(r.conds, cond)
	}
	r.includeInactive = *cfg.Scope.IncludeInactive
	r.requireEmail = *cfg.Scope.RequireEmail

	// agent field templates
	var err error
	if r.name, err = compileTemplate("agent.name", cfg.Agent.Name); err != nil {
		errs = append(errs, err)
	}
	if r.email, err = compileTemplate("agent.email", cfg.Agent.Email); err != nil {
		errs = append(errs, err)
	}
	if r.number, err = compileTemplate("agent.number", cfg.Agent.Number); err != nil {
		errs = append(errs, err)
	}

	// phone
	if reg := strings.TrimSpace(cfg.Phone.DefaultRegion); reg != "" {
		r.region = strings.ToUpper(reg)
		if !knownRegion(r.region) {
			bad("phone.default_region", "unknown region %q: use an ISO 3166 two-letter code such as DE, GB or US", reg)
		}
	}
	r.regionAttr = strings.TrimSpace(cfg.Phone.RegionAttribute)
	r.regionAttrKey = strings.ToLower(r.regionAttr)
	r.phoneRequired = cfg.Phone.Required
	switch strings.ToLower(strings.TrimSpace(cfg.Phone.Invalid)) {
	case "", "skip":
	case "omit":
		r.omitInvalid = true
	default:
		bad("phone.invalid", "must be skip or omit, got %q", cfg.Phone.Invalid)
	}

	// skills, agent groups, roles
	for i, s := range cfg.Skills {
		ru, err := compileRule(kindSkill, i, s.Selector, s.Tag, s.Tags)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.skills = append(r.skills, ru)
	}
	for i, t := range cfg.StaticTags {
		tag, problem := cleanName(t, false, true)
		if problem != "" {
			bad(fmt.Sprintf("static_tags[%d]", i), "tag %q %s", t, problem)
			continue
		}
		r.staticTags = append(r.staticTags, tag)
	}
	slices.Sort(r.staticTags)
	r.staticTags = slices.Compact(r.staticTags)
	for i, g := range cfg.AgentGroups {
		ru, err := compileRule(kindAgentGroup, i, g.Selector, g.AgentGroup, g.AgentGroups)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.agentGroups = append(r.agentGroups, ru)
	}
	for i, ro := range cfg.Roles {
		ru, err := compileRule(kindRole, i, ro.Selector, ro.Role, ro.Roles)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.roles = append(r.roles, ru)
	}
	for i, ro := range cfg.DefaultRoles {
		role, ok := knownRole(ro)
		if !ok {
			bad(fmt.Sprintf("default_roles[%d]", i), "unknown role %q: babelforce roles are %s", ro, strings.Join(babelforce.Roles, ", "))
			continue
		}
		r.defaultRoles = append(r.defaultRoles, role)
	}
	slices.Sort(r.defaultRoles)
	r.defaultRoles = slices.Compact(r.defaultRoles)
	r.loginUsers = *cfg.LoginUsers

	// external ids
	seen := map[string]int{}
	for i, e := range cfg.ExternalIDs {
		key := fmt.Sprintf("external_ids[%d]", i)
		x := externalID{key: key, integration: strings.TrimSpace(e.Integration), attribute: strings.TrimSpace(e.Attribute)}
		x.attrKey = strings.ToLower(x.attribute)
		ok := true
		if x.integration == "" {
			bad(key+".integration", "is required (the Agent Sync integration id, e.g. zendesk)")
			ok = false
		} else if j, dup := seen[strings.ToLower(x.integration)]; dup {
			bad(key+".integration", "%q is already mapped by external_ids[%d]", x.integration, j)
			ok = false
		} else {
			seen[strings.ToLower(x.integration)] = i
		}
		switch {
		case x.attribute != "" && e.Template != "":
			bad(key, "set attribute or template, not both")
			ok = false
		case x.attribute == "" && e.Template == "":
			bad(key, "set attribute or template")
			ok = false
		case e.Template != "":
			t, err := compileTemplate(key+".template", e.Template)
			if err != nil {
				errs = append(errs, err)
				ok = false
			}
			x.tmpl = t
		}
		if ok {
			r.externalIDs = append(r.externalIDs, x)
		}
	}

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r.collectAttributes()
	return r, nil
}

func compileCondition(key string, c Condition) (condition, error) {
	var errs []error
	cond := condition{key: key, attr: strings.TrimSpace(c.Attribute)}
	cond.attrKey = strings.ToLower(cond.attr)
	if cond.attr == "" {
		errs = append(errs, fmt.Errorf("%s.attribute: is required", key))
	}
	n := 0
	if c.Equals != "" {
		n++
		cond.op, cond.vals = opEquals, []string{strings.ToLower(c.Equals)}
		cond.text = fmt.Sprintf("%s equals %s", cond.attr, c.Equals)
	}
	if c.NotEquals != "" {
		n++
		cond.op, cond.vals = opNotEquals, []string{strings.ToLower(c.NotEquals)}
		cond.text = fmt.Sprintf("%s not_equals %s", cond.attr, c.NotEquals)
	}
	if len(c.OneOf) > 0 {
		n++
		cond.op, cond.vals = opOneOf, nil
		for _, v := range c.OneOf {
			cond.vals = append(cond.vals, strings.ToLower(v))
		}
		cond.text = fmt.Sprintf("%s one_of [%s]", cond.attr, strings.Join(c.OneOf, ", "))
	}
	if c.Matches != "" {
		n++
		re, err := regexp.Compile(c.Matches)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.matches: invalid regular expression %q: %s", key, c.Matches, reError(err)))
		}
		cond.op, cond.re = opMatches, re
		cond.text = fmt.Sprintf("%s matches %q", cond.attr, c.Matches)
	}
	if c.Present != nil {
		n++
		cond.op = opPresent
		cond.text = cond.attr + " present"
		if !*c.Present {
			cond.op = opAbsent
			cond.text = cond.attr + " absent"
		}
	}
	switch {
	case n == 0:
		errs = append(errs, fmt.Errorf("%s: needs one of equals, not_equals, one_of, matches or present", key))
	case n > 1:
		errs = append(errs, fmt.Errorf("%s: set only one of equals, not_equals, one_of, matches or present", key))
	}
	return cond, errors.Join(errs...)
}

func compileRule(kind ruleKind, i int, sel Selector, one string, many []string) (*rule, error) {
	key := fmt.Sprintf("%s[%d]", kind.section(), i)
	var errs []error
	bad := func(k, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", key, k, fmt.Sprintf(format, args...)))
	}
	ru := &rule{kind: kind, index: i, key: key, lower: sel.Lowercase, attr: strings.TrimSpace(sel.Attribute)}
	ru.attrKey = strings.ToLower(ru.attr)
	var input string
	switch {
	case sel.Group != "" && (sel.Match != "" || ru.attr != ""):
		bad("", "set group, or match (optionally with attribute), not both")
	case strings.TrimSpace(sel.Group) != "":
		gs := newGroupSel(sel.Group)
		ru.sel = &gs
		input = fmt.Sprintf("group %q", sel.Group)
	case sel.Match != "":
		re, err := regexp.Compile(sel.Match)
		if err != nil {
			bad(".match", "invalid regular expression %q: %s", sel.Match, reError(err))
		}
		ru.re = re
		input = fmt.Sprintf("match %q", sel.Match)
		if ru.attr != "" {
			input = fmt.Sprintf("attribute %s match %q", ru.attr, sel.Match)
		}
	case ru.attr != "":
		bad(".match", "is required with attribute (use \"^(.+)$\" to take every value)")
	default:
		bad("", "needs group or match")
	}

	outKey := map[ruleKind][2]string{
		kindSkill:      {"tag", "tags"},
		kindAgentGroup: {"agent_group", "agent_groups"},
		kindRole:       {"role", "roles"},
	}[kind]
	type out struct{ key, val string }
	var outs []out
	if one != "" {
		outs = append(outs, out{"." + outKey[0], one})
	}
	for j, m := range many {
		outs = append(outs, out{fmt.Sprintf(".%s[%d]", outKey[1], j), m})
	}
	if len(outs) == 0 {
		bad("", "needs %s or %s", outKey[0], outKey[1])
	}
	for _, o := range outs {
		if strings.Contains(o.val, "$") {
			if ru.re == nil && ru.sel != nil {
				bad(o.key, "%q uses $ captures, which only a match rule has", o.val)
				continue
			}
			if ru.re != nil {
				if p := checkCaptures(ru.re, o.val); p != "" {
					bad(o.key, "%s", p)
					continue
				}
			}
			ru.expand = true
			ru.outputs = append(ru.outputs, o.val)
			continue
		}
		v := o.val
		if ru.lower {
			v = strings.ToLower(v)
		}
		if kind == kindRole {
			role, ok := knownRole(v)
			if !ok {
				bad(o.key, "unknown role %q: babelforce roles are %s", o.val, strings.Join(babelforce.Roles, ", "))
				continue
			}
			ru.outputs = append(ru.outputs, role)
			continue
		}
		clean, problem := cleanName(v, ru.lower, kind == kindSkill)
		if problem != "" {
			bad(o.key, "%s %q %s", kind.noun(), o.val, problem)
			continue
		}
		ru.outputs = append(ru.outputs, clean)
	}
	var quoted []string
	for _, o := range ru.outputs {
		quoted = append(quoted, fmt.Sprintf("%q", o))
	}
	noun := kind.noun()
	if len(quoted) > 1 {
		noun += "s"
	}
	ru.text = fmt.Sprintf("%s -> %s %s", input, noun, strings.Join(quoted, ", "))
	if ru.lower {
		ru.text += " (lowercase)"
	}
	return ru, errors.Join(errs...)
}

// checkCaptures reports a reference to a capture group the expression does not have.
func checkCaptures(re *regexp.Regexp, tmpl string) string {
	names := re.SubexpNames()
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '$' || i+1 >= len(tmpl) {
			continue
		}
		rest := tmpl[i+1:]
		if rest[0] == '$' {
			i++
			continue
		}
		var name string
		if rest[0] == '{' {
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return fmt.Sprintf("%q has an unclosed ${", tmpl)
			}
			name = rest[1:end]
		} else {
			j := 0
			for j < len(rest) && (rest[j] == '_' || rest[j] >= '0' && rest[j] <= '9' || rest[j] >= 'a' && rest[j] <= 'z' || rest[j] >= 'A' && rest[j] <= 'Z') {
				j++
			}
			name = rest[:j]
		}
		if name == "" {
			continue
		}
		if n, ok := atoi(name); ok {
			if n > re.NumSubexp() {
				return fmt.Sprintf("%q refers to capture %d but the expression has %d", tmpl, n, re.NumSubexp())
			}
			continue
		}
		if !slices.Contains(names, name) {
			return fmt.Sprintf("%q refers to capture %q, which the expression does not have (write ${1}x, not $1x)", tmpl, name)
		}
	}
	return ""
}

func atoi(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > 1000 {
			return n, true
		}
	}
	return n, true
}

// reError returns the part of a regexp error after "error parsing regexp: ".
func reError(err error) string {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, "error parsing regexp: "); ok {
		// "missing closing ): `(`" -> "missing closing )"
		if i := strings.LastIndex(after, ": `"); i >= 0 {
			return after[:i]
		}
		return after
	}
	return msg
}

// knownRole returns the babelforce role named by s (case-insensitive).
func knownRole(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	return s, slices.Contains(babelforce.Roles, s)
}

var supportedRegions = phonenumbers.GetSupportedRegions()

func knownRegion(r string) bool {
	_, ok := supportedRegions[r]
	return ok
}

// cleanName makes a tag or agent group name: trimmed, inner white space collapsed to one
// space, optionally lower-cased. It returns a problem when the result cannot be used (empty,
// a control character, a comma in a tag).
func cleanName(s string, lower, tag bool) (string, string) {
	s = strings.Join(strings.Fields(s), " ")
	if lower {
		s = strings.ToLower(s)
	}
	if s == "" {
		return "", "is empty"
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", "contains a control character"
		}
	}
	if tag && strings.Contains(s, ",") {
		return "", "contains a comma, which babelforce's tag filters cannot take"
	}
	return s, ""
}
