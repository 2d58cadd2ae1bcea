package mapping

import "strings"

// Config is the `mapping:` section of bridge's configuration: which directory users become
// babelforce agents and how their fields, skills, agent groups, login roles and external ids
// are derived. Compile checks it and turns it into Rules; Validate reports every problem at
// once, each prefixed with its YAML key path.
//
// Example (every key is optional except agent_source):
//
//	mapping:
//	  agent_source: "bridge:ldap"        # stamped on every agent; marks the agents bridge owns
//	  scope:
//	    include_groups: [babelforce-agents]             # name, DN or id; nested membership counts
//	    exclude_groups: ["cn=contractors,ou=groups,dc=example,dc=com"]
//	    conditions:
//	      - {attribute: employeeType, not_equals: contractor}
//	      - {attribute: mail, matches: "@example\\.com$"}
//	      - {attribute: telephoneNumber, present: true}
//	    include_inactive: true   # default true: inactive users are mapped with enabled: false
//	    require_email: true      # default true: users without an e-mail are out of scope
//	  agent:
//	    name: "{{.GivenName}} {{.FamilyName}}"   # default: displayName (LDAP/LDIF: attributes.display_name,
//	                                             # then display_name_fallback, default cn), else given + family, else userName
//	    email: '{{attr "mail"}}'                 # default: the primary e-mail (always lower-cased)
//	    number: '{{attr "telephoneNumber"}}'     # default: the primary phone number
//	  phone:
//	    default_region: DE       # for numbers without +country code
//	    region_attribute: c      # optional: a per-user ISO region (e.g. LDAP "c") wins over the default
//	    required: false          # true: a user without a number is skipped
//	    invalid: skip            # skip (default): skip the user; omit: map without a number, warn
//	  skills:
//	    - {group: team-support, tags: [support, english]}
//	    - {match: "^skill-(.+)$", tag: "$1", lowercase: true}
//	    - {attribute: preferredLanguage, match: "^(..)", tag: "lang-${1}", lowercase: true}
//	  static_tags: [bridge]
//	  agent_groups:
//	    - {group: team-support, agent_group: Support}
//	    - {match: "^team-(.+)$", agent_group: "$1"}
//	  roles:
//	    - {group: cc-supervisors, roles: [supervisor, reporter]}
//	    - {match: "^bf-role-(.+)$", role: "$1", lowercase: true}
//	  default_roles: [agent]     # roles for a user no role rule matched; default [agent]
//	  login_users: true          # false: bridge manages no login users (roles always empty)
//	  external_ids:
//	    - {integration: zendesk, attribute: employeeNumber}
//	    - {integration: salesforce, template: "{{.UserName}}"}
//
// Scope: a user is in scope when (1) include_groups is empty or the user is a member, directly
// or through nested groups, of at least one of them, (2) the user is a member of none of
// exclude_groups, (3) every condition holds, (4) the user is active or include_inactive is
// true, (5) the user has an e-mail or require_email is false. Groups are named by name
// (case-insensitive), by DN (compared case- and space-insensitively) or by id.
//
// Conditions look an attribute up among the user's raw attributes (case-insensitive); when
// the directory has no such attribute the user's model fields answer for these names:
// userName, displayName, givenName, familyName, email, phone, id, dn, externalId, active.
// Exactly one operator per condition: equals, not_equals, one_of (case-insensitive; any value
// of a multi-valued attribute may match, not_equals needs none to), matches (a regular
// expression; any value), present (true: has a non-empty value; false: has none).
//
// Templates are Go text/template over the user: .ID .UserName .DisplayName .GivenName
// .FamilyName .Email (primary e-mail) .Phone (primary phone) .DN .ExternalID .Active, the
// function attr "name" (first value of a raw attribute, "" when absent; also .Attr "name")
// and attrs "name" (all values), plus lower, upper, trim, replace OLD NEW S, trimPrefix,
// trimSuffix, default DEFAULT VALUE, join SEP LIST. Results are trimmed. A template that
// fails for a user skips that user with Reason "invalid".
//
// Rules (skills, agent_groups, roles) pick their input with exactly one of group (a group
// name, DN or id: applies when the user is a member, nested membership counts), match (a
// regular expression over the names of every group the user belongs to, nested membership
// counts) or attribute plus match (the regular expression over the values of the user's
// attribute). Outputs of match rules may use the captures: $1, ${1}, ${name} (write ${1}x,
// not $1x). lowercase: true lower-cases the outputs. A skill rule gives tag and/or tags, an
// agent group rule agent_group and/or agent_groups, a role rule role and/or roles. Tags and
// agent group names are trimmed, inner white space is collapsed; a rule output that ends up
// empty is no output. Roles must be babelforce roles (manager, owner, reporter, user, agent,
// supervisor, sales, router, scheduler).
//
// External ids: each entry gives the id of the user in one Agent Sync integration, from an
// attribute or a template; an empty value means no id.
type Config struct {
	AgentSource  string           `yaml:"agent_source" json:"agent_source"`
	Scope        ScopeConfig      `yaml:"scope" json:"scope"`
	Agent        AgentConfig      `yaml:"agent" json:"agent"`
	Phone        PhoneConfig      `yaml:"phone" json:"phone"`
	Skills       []SkillRule      `yaml:"skills" json:"skills,omitempty"`
	StaticTags   []string         `yaml:"static_tags" json:"static_tags,omitempty"`
	AgentGroups  []AgentGroupRule `yaml:"agent_groups" json:"agent_groups,omitempty"`
	Roles        []RoleRule       `yaml:"roles" json:"roles,omitempty"`
	DefaultRoles []string         `yaml:"default_roles" json:"default_roles,omitempty"`
	// LoginUsers (default true) says whether bridge manages login users; false leaves every
	// agent's Roles empty.
	LoginUsers  *bool            `yaml:"login_users" json:"login_users,omitempty"`
	ExternalIDs []ExternalIDRule `yaml:"external_ids" json:"external_ids,omitempty"`
}

// WithDefaults returns c with every unset setting at its default: include_inactive,
// require_email and login_users true, default_roles [agent], phone.invalid skip. Compile
// applies it; bridge config validate --print shows it.
func (c Config) WithDefaults() Config {
	t := func() *bool { v := true; return &v }
	if c.Scope.IncludeInactive == nil {
		c.Scope.IncludeInactive = t()
	}
	if c.Scope.RequireEmail == nil {
		c.Scope.RequireEmail = t()
	}
	if c.LoginUsers == nil {
		c.LoginUsers = t()
	}
	if c.DefaultRoles == nil {
		c.DefaultRoles = []string{"agent"}
	}
	if strings.TrimSpace(c.Phone.Invalid) == "" {
		c.Phone.Invalid = "skip"
	}
	return c
}

// ScopeConfig says which directory users are in scope (see Config).
type ScopeConfig struct {
	IncludeGroups []string    `yaml:"include_groups" json:"include_groups,omitempty"`
	ExcludeGroups []string    `yaml:"exclude_groups" json:"exclude_groups,omitempty"`
	Conditions    []Condition `yaml:"conditions" json:"conditions,omitempty"`
	// IncludeInactive (default true) maps inactive users with Enabled=false, so that their
	// agents get disabled; false puts them out of scope.
	IncludeInactive *bool `yaml:"include_inactive" json:"include_inactive,omitempty"`
	// RequireEmail (default true) puts users without an e-mail out of scope.
	RequireEmail *bool `yaml:"require_email" json:"require_email,omitempty"`
}

// Condition is one attribute condition of the scope; exactly one operator is set.
type Condition struct {
	Attribute string   `yaml:"attribute" json:"attribute"`
	Equals    string   `yaml:"equals,omitempty" json:"equals,omitempty"`
	NotEquals string   `yaml:"not_equals,omitempty" json:"not_equals,omitempty"`
	OneOf     []string `yaml:"one_of,omitempty" json:"one_of,omitempty"`
	Matches   string   `yaml:"matches,omitempty" json:"matches,omitempty"`
	Present   *bool    `yaml:"present,omitempty" json:"present,omitempty"`
}

// AgentConfig holds the optional templates of the agent's fields (see Config for defaults).
type AgentConfig struct {
	Name   string `yaml:"name" json:"name,omitempty"`
	Email  string `yaml:"email" json:"email,omitempty"`
	Number string `yaml:"number" json:"number,omitempty"`
}

// PhoneConfig says how numbers are normalised to E.164. An extension after the number ("ext.
// 12", "x12", "Durchwahl 12", ";ext=12", "#12") is dropped, never dialled; a number with any
// other letter, or one that is not valid for its region, is invalid (see Invalid).
type PhoneConfig struct {
	// DefaultRegion is the ISO 3166 region (e.g. "DE") for numbers written without a country
	// code. Empty: such numbers are invalid.
	DefaultRegion string `yaml:"default_region" json:"default_region,omitempty"`
	// RegionAttribute names a user attribute holding the user's own region (e.g. LDAP "c");
	// when it holds a known region it wins over DefaultRegion.
	RegionAttribute string `yaml:"region_attribute" json:"region_attribute,omitempty"`
	// Required skips active users without a number (Reason "invalid").
	Required bool `yaml:"required" json:"required,omitempty"`
	// Invalid says what an invalid number does: "skip" (default) skips the user with Reason
	// "invalid"; "omit" maps the user without a number and lists the problem in
	// Desired.Warnings. Inactive users are always mapped without the number (with a
	// warning), so that a bad number never keeps a leaver's agent enabled.
	Invalid string `yaml:"invalid" json:"invalid,omitempty"`
}

// Selector picks a rule's input: exactly one of Group, or Match (over group names), or
// Attribute with Match (over the attribute's values).
type Selector struct {
	Group     string `yaml:"group,omitempty" json:"group,omitempty"`
	Match     string `yaml:"match,omitempty" json:"match,omitempty"`
	Attribute string `yaml:"attribute,omitempty" json:"attribute,omitempty"`
	// Lowercase lower-cases the rule's outputs.
	Lowercase bool `yaml:"lowercase,omitempty" json:"lowercase,omitempty"`
}

// SkillRule maps groups (or attribute values) to agent tags.
type SkillRule struct {
	Selector `yaml:",inline"`
	Tag      string   `yaml:"tag,omitempty" json:"tag,omitempty"`
	Tags     []string `yaml:"tags,omitempty" json:"tags,omitempty"`
}

// AgentGroupRule maps groups (or attribute values) to babelforce agent group names.
type AgentGroupRule struct {
	Selector    `yaml:",inline"`
	AgentGroup  string   `yaml:"agent_group,omitempty" json:"agent_group,omitempty"`
	AgentGroups []string `yaml:"agent_groups,omitempty" json:"agent_groups,omitempty"`
}

// RoleRule maps groups (or attribute values) to babelforce login roles.
type RoleRule struct {
	Selector `yaml:",inline"`
	Role     string   `yaml:"role,omitempty" json:"role,omitempty"`
	Roles    []string `yaml:"roles,omitempty" json:"roles,omitempty"`
}

// ExternalIDRule gives a user's id in one Agent Sync integration, from exactly one of
// Attribute or Template.
type ExternalIDRule struct {
	Integration string `yaml:"integration" json:"integration"`
	Attribute   string `yaml:"attribute,omitempty" json:"attribute,omitempty"`
	Template    string `yaml:"template,omitempty" json:"template,omitempty"`
}

// Validate reports every problem of the configuration at once (it compiles and discards).
func (c Config) Validate() error {
	_, err := Compile(c)
	return err
}
