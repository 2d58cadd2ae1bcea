package mapping

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/internal/intern"
)

// userResult is what one user maps to: an agent, or a skip; plus warnings.
type userResult struct {
	agent    Agent
	skip     *Skip
	warnings []Skip
}

// userMap is one user being mapped: what the steps of mapUser share. A step that cannot map
// the user returns the Skip that says why; the user is then skipped whole.
type userMap struct {
	p        *prepared
	r        *Rules
	x        *executor
	u        *directory.User
	tr       *trace    // nil unless Explain asks
	view     *userView // the user as templates see it; nil without templates
	warnings []Skip    // problems the user was mapped despite
}

// mapUser maps one user. Desire calls it with tr == nil; Explain with a trace. The steps run
// in this order because later ones depend on earlier ones: scope.require_email needs the
// e-mail, login roles need it too.
func (p *prepared) mapUser(x *executor, u *directory.User, tr *trace) userResult {
	m := userMap{p: p, r: p.r, x: x, u: u, tr: tr}
	if s := m.readable(); s != nil {
		return userResult{skip: s}
	}
	gidx := m.groups()
	if ok, detail := p.scope(u, gidx, tr); !ok {
		return userResult{skip: m.skip(ReasonOutOfScope, detail)}
	}
	if len(x.clone) > 0 {
		v := newView(u)
		m.view = &v
	}
	email, s := m.email()
	if s != nil {
		return userResult{skip: s}
	}
	name, s := m.name()
	if s != nil {
		return userResult{skip: s}
	}
	number, s := m.number()
	if s != nil {
		return userResult{skip: s}
	}
	ext, s := m.externalIDs()
	if s != nil {
		return userResult{skip: s}
	}
	tags, agentGroups, roles := m.groupValues(gidx)
	return userResult{
		agent: Agent{
			SourceID:    u.ID,
			AgentSource: m.r.agentSource,
			UserName:    u.UserName,
			Name:        name,
			Email:       email,
			Number:      number,
			Enabled:     u.Active,
			Tags:        m.x.shared.Of(tags, intern.String),
			AgentGroups: m.x.shared.Of(agentGroups, intern.String),
			Roles:       m.x.shared.Of(m.loginRoles(roles, email), intern.String),
			ExternalIDs: ext,
		},
		warnings: m.warnings,
	}
}

// skip says why the user produced no agent.
func (m *userMap) skip(reason, detail string) *Skip {
	return &Skip{UserID: m.u.ID, UserName: cmp.Or(m.u.UserName, m.u.DN), Reason: reason, Detail: detail, Inactive: !m.u.Active}
}

// field records, for Explain, where a field's value came from.
func (m *userMap) field(name, rawRule string, value, raw, problem string) {
	if m.tr != nil {
		m.tr.fields = append(m.tr.fields, FieldSource{Field: name, Rule: rawRule, Raw: raw, Value: value, Problem: problem})
	}
}

// readable skips a user without a directory id or one the source could not read.
func (m *userMap) readable() *Skip {
	u := m.u
	if strings.TrimSpace(u.ID) == "" {
		return m.skip(ReasonInvalid, "the user has no directory id, so bridge cannot own an agent for it")
	}
	if u.Invalid != "" {
		// neither provisioned nor switched off on a value nobody can read: left as it is
		// (Inactive false), whatever Active says
		if m.tr != nil {
			m.tr.scope = append(m.tr.scope, Check{Rule: "the directory user can be read", Passed: false, Detail: u.Invalid})
		}
		return &Skip{UserID: u.ID, UserName: cmp.Or(u.UserName, u.DN), Reason: ReasonInvalid,
			Detail: u.Invalid + "; bridge neither provisions nor switches off this person until the directory says"}
	}
	return nil
}

// groups returns the indexes of the user's groups (transitive memberships) in p.groups. The
// slice is the executor's, reused for the next user.
func (m *userMap) groups() []int {
	gidx := m.x.gidx[:0]
	for _, gid := range m.p.memberships(m.u) {
		if i, ok := m.p.idx[gid]; ok {
			gidx = append(gidx, i)
		}
	}
	m.x.gidx = gidx
	return gidx
}

// email is the agent's e-mail, lower-cased: agent.email's template, else the primary e-mail.
// It also applies scope.require_email.
func (m *userMap) email() (string, *Skip) {
	r, tr := m.r, m.tr
	var email, emailRule string
	if r.email != nil {
		v, err := m.x.run(r.email, m.u, m.view)
		if err != nil {
			m.field("email", r.email.desc, "", "", err.Error())
			return "", m.skip(ReasonInvalid, err.Error())
		}
		email, emailRule = v, r.email.desc
	} else {
		email, emailRule = strings.TrimSpace(m.u.PrimaryEmail()), "default: primary e-mail"
	}
	rawEmail := email
	email = strings.ToLower(email)
	if email == "" {
		if r.requireEmail {
			d := "has no e-mail address and scope.require_email is true"
			m.field("email", emailRule, "", rawEmail, d)
			if tr != nil {
				tr.scope = append(tr.scope, Check{Rule: "scope.require_email true", Passed: false, Detail: "no e-mail address"})
			}
			return "", m.skip(ReasonOutOfScope, d)
		}
	} else if tr != nil && r.requireEmail {
		tr.scope = append(tr.scope, Check{Rule: "scope.require_email true", Passed: true, Detail: "has an e-mail address"})
	}
	if email != "" {
		if problem := checkEmail(email); problem != "" {
			d := fmt.Sprintf("e-mail %q %s", rawEmail, problem)
			m.field("email", emailRule, "", rawEmail, d)
			return "", m.skip(ReasonInvalid, d)
		}
	}
	m.field("email", emailRule, email, rawEmail, "")
	return email, nil
}

// name is the agent's name: agent.name's template, else defaultName.
func (m *userMap) name() (string, *Skip) {
	r := m.r
	var name, nameRule, rawName string
	if r.name != nil {
		v, err := m.x.run(r.name, m.u, m.view)
		rawName = v
		if err != nil {
			m.field("name", r.name.desc, "", "", err.Error())
			return "", m.skip(ReasonInvalid, err.Error())
		}
		name, nameRule = collapseSpace(v), r.name.desc
		if name == "" {
			d := "the agent.name template gave an empty name"
			m.field("name", nameRule, "", v, d)
			return "", m.skip(ReasonInvalid, d)
		}
	} else {
		name, nameRule, rawName = defaultName(m.u)
		if name == "" {
			d := "no name: displayName, givenName, familyName and userName are all empty"
			m.field("name", nameRule, "", "", d)
			return "", m.skip(ReasonInvalid, d)
		}
	}
	m.field("name", nameRule, name, rawName, "")
	return name, nil
}

// number is the agent's number in E.164: agent.number's template, else the primary phone,
// normalised in the user's region. phone.required and phone.invalid decide what a missing or
// invalid number does; an inactive user is mapped without one (to switch the agent off).
func (m *userMap) number() (string, *Skip) {
	r, u := m.r, m.u
	var rawNumber, numberRule string
	if r.number != nil {
		v, err := m.x.run(r.number, u, m.view)
		if err != nil {
			m.field("number", r.number.desc, "", "", err.Error())
			return "", m.skip(ReasonInvalid, err.Error())
		}
		rawNumber, numberRule = v, r.number.desc
	} else {
		rawNumber, numberRule = strings.TrimSpace(u.PrimaryPhone()), "default: primary phone"
	}
	if rawNumber == "" {
		// an inactive user is mapped to disable its agent: a missing number must not stop that.
		if r.phoneRequired && u.Active {
			d := "has no phone number and phone.required is true"
			m.field("number", numberRule, "", "", d)
			return "", m.skip(ReasonInvalid, d)
		}
		m.field("number", numberRule, "", "", "")
		return "", nil
	}
	region := m.region()
	n, problem := r.normalizePhone(rawNumber, region)
	switch {
	case problem == "":
		if m.tr != nil && region != "" {
			numberRule += ", region " + region
		}
		m.field("number", numberRule, n, rawNumber, "")
		return n, nil
	case r.omitInvalid || !u.Active:
		d := problem + "; mapped without a number (phone.invalid: omit)"
		if !r.omitInvalid {
			d = problem + "; mapped without a number because the user is inactive"
		}
		m.field("number", numberRule, "", rawNumber, d)
		m.warnings = append(m.warnings, Skip{UserID: u.ID, UserName: u.UserName, Reason: ReasonInvalid, Detail: d})
		return "", nil
	default:
		m.field("number", numberRule, "", rawNumber, problem)
		return "", m.skip(ReasonInvalid, problem)
	}
}

// region is the region the user's number is read in: phone.region_attribute's value when it
// names a known region, else phone.default_region.
func (m *userMap) region() string {
	r := m.r
	if r.regionAttr != "" {
		if vals := attrValues(m.u, r.regionAttrKey); len(vals) > 0 {
			if reg := strings.ToUpper(strings.TrimSpace(vals[0])); knownRegion(reg) {
				return reg
			}
		}
	}
	return r.region
}

// externalIDs are the user's ids in the Agent Sync integrations (external_ids), by
// integration; an empty value is left out.
func (m *userMap) externalIDs() (map[string]string, *Skip) {
	r, tr := m.r, m.tr
	var ext map[string]string
	for _, e := range r.externalIDs {
		var v, rule string
		if e.tmpl != nil {
			var err error
			if tr != nil {
				rule = e.tmpl.desc
			}
			v, err = m.x.run(e.tmpl, m.u, m.view)
			if err != nil {
				if tr != nil {
					tr.extIDs = append(tr.extIDs, FieldSource{Field: e.integration, Rule: rule, Problem: err.Error()})
				}
				return nil, m.skip(ReasonInvalid, err.Error())
			}
		} else {
			if tr != nil {
				rule = e.key + ".attribute " + e.attribute
			}
			if vals := attrValues(m.u, e.attrKey); len(vals) > 0 {
				v = strings.TrimSpace(vals[0])
			}
		}
		if tr != nil {
			tr.extIDs = append(tr.extIDs, FieldSource{Field: e.integration, Rule: rule, Value: v})
		}
		if v == "" {
			continue
		}
		if ext == nil {
			ext = make(map[string]string, len(r.externalIDs))
		}
		ext[e.integration] = v
	}
	return ext, nil
}

// groupValues collects what the skills, agent_groups and roles rules give the user, from
// its groups (computed once per group by prepare) and its attributes: tags (static_tags
// included) and agent groups sorted and unique, roles as the rules gave them.
func (m *userMap) groupValues(gidx []int) (tags, agentGroups, roles []string) {
	r, x := m.r, m.x
	tags = append(make([]string, 0, len(r.staticTags)+4), r.staticTags...)
	for _, i := range gidx {
		gi := &m.p.groups[i]
		tags = append(tags, gi.tags...)
		agentGroups = append(agentGroups, gi.agentGroups...)
		roles = append(roles, gi.roles...)
	}
	if x.hasAttrRules {
		attrHits(r, m.u, x.memo, func(h *hit) {
			for _, pr := range h.problems {
				x.problems[pr] = struct{}{}
			}
			switch h.rule.kind {
			case kindSkill:
				tags = append(tags, h.values...)
			case kindAgentGroup:
				agentGroups = append(agentGroups, h.values...)
			case kindRole:
				roles = append(roles, h.values...)
			}
		})
	}
	tags = sortUnique(tags)
	agentGroups = sortUnique(agentGroups)
	if agentGroups == nil {
		agentGroups = []string{}
	}
	return tags, agentGroups, roles
}

// loginRoles are the roles of the user's login: none without login users or an e-mail, the
// rules' roles sorted and unique, else default_roles.
func (m *userMap) loginRoles(roles []string, email string) []string {
	r := m.r
	switch {
	case !r.loginUsers || email == "":
		roles = []string{}
	case len(roles) == 0:
		roles = slices.Clone(r.defaultRoles)
	default:
		roles = sortUnique(roles)
	}
	if roles == nil {
		roles = []string{}
	}
	return roles
}
