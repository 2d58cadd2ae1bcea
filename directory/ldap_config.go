package directory

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/babelforce/bridge/internal/secretfile"
)

// LDAP presets: the schema conventions of a directory product.
const (
	PresetOpenLDAP        = "openldap"
	PresetActiveDirectory = "active_directory"
)

// Defaults of LDAPConfig.
const (
	DefaultLDAPPageSize      = 500
	DefaultLDAPSearchTimeout = 5 * time.Minute
	DefaultLDAPDialTimeout   = 10 * time.Second
)

// LDAPConfig configures the LDAP source (OpenLDAP or Active Directory). Environment variables
// override the YAML keys (the CLI adds the prefix BRIDGE_LDAP_, e.g. BRIDGE_LDAP_BIND_DN,
// BRIDGE_LDAP_ATTR_USER_NAME); the bind password comes only from BRIDGE_LDAP_BIND_PASSWORD or
// from bind_password_file.
//
//	ldap:
//	  urls: [ldaps://dc1.example.com, ldaps://dc2.example.com]   # tried in order
//	  preset: active_directory          # or openldap
//	  ca_file: /etc/bridge/ad-ca.pem    # verify the server with this CA (else the system's)
//	  bind_dn: CN=bridge,OU=Service,DC=example,DC=com
//	  bind_password_file: /run/secrets/ldap-password
//	  user_base_dn: OU=Staff,DC=example,DC=com    # default: the server's naming context
//	  user_filter: (&(objectCategory=person)(objectClass=user)(department=Support))
//	  group_base_dn: OU=Groups,DC=example,DC=com
//	  page_size: 500                    # -1 turns paging off (servers without RFC 2696 only)
//	  search_timeout: 5m
//	  attributes:
//	    user_name: userPrincipalName    # override one attribute of the preset
//	    phone: [telephoneNumber, mobile]
//	  extra_attributes: [department, title]
//	  nested_groups: true
type LDAPConfig struct {
	// URLs are ldap:// or ldaps:// URLs, tried in order until one answers.
	URLs   []string `yaml:"urls" env:"URLS, overwrite"`
	Preset string   `yaml:"preset" env:"PRESET, overwrite"`
	// StartTLS upgrades ldap:// connections with the StartTLS extended operation.
	StartTLS bool `yaml:"start_tls" env:"START_TLS, overwrite"`
	// CAFile holds the PEM certificates that verify the server (default: the system's roots).
	CAFile string `yaml:"ca_file" env:"CA_FILE, overwrite"`
	// TLSServerName is the name the certificate must carry when it differs from the URL's host.
	TLSServerName string `yaml:"tls_server_name" env:"TLS_SERVER_NAME, overwrite"`
	// InsecureSkipVerify accepts any certificate. Only for tests; never on by default.
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" env:"INSECURE_SKIP_VERIFY, overwrite"`
	BindDN             string `yaml:"bind_dn" env:"BIND_DN, overwrite"`
	// BindPassword only from the environment or BindPasswordFile, never from YAML.
	BindPassword     string `yaml:"-" env:"BIND_PASSWORD, overwrite"`
	BindPasswordFile string `yaml:"bind_password_file" env:"BIND_PASSWORD_FILE, overwrite"`

	// UserBaseDN and GroupBaseDN default to the server's naming context (AD's
	// defaultNamingContext). Filters default to the preset's.
	UserBaseDN  string `yaml:"user_base_dn" env:"USER_BASE_DN, overwrite"`
	UserFilter  string `yaml:"user_filter" env:"USER_FILTER, overwrite"`
	GroupBaseDN string `yaml:"group_base_dn" env:"GROUP_BASE_DN, overwrite"`
	GroupFilter string `yaml:"group_filter" env:"GROUP_FILTER, overwrite"`

	// PageSize of the paged-results control (RFC 2696); 0 means the default 500, -1 turns
	// paging off.
	PageSize int `yaml:"page_size" env:"PAGE_SIZE, overwrite"`
	// SearchTimeout bounds a whole Read and is sent to the server as the time limit of each
	// search.
	SearchTimeout time.Duration `yaml:"search_timeout" env:"SEARCH_TIMEOUT, overwrite"`
	DialTimeout   time.Duration `yaml:"dial_timeout" env:"DIAL_TIMEOUT, overwrite"`

	// RangeSize is how many values of the member attribute to ask for per read on Active
	// Directory ("member;range=0-1499", then the next range…). Default 1500 (AD's MaxValRange)
	// for the active_directory preset, 0 for openldap (which knows no ranges). With 0 the
	// whole attribute is asked for, and ranges the server imposes are still followed.
	RangeSize int `yaml:"range_size" env:"RANGE_SIZE, overwrite"`

	// Attributes override the preset's attribute names one by one.
	Attributes LDAPAttributes `yaml:"attributes" env:", prefix=ATTR_"`
	// ExtraAttributes are fetched too and land in User.Attributes for mapping templates.
	ExtraAttributes []string `yaml:"extra_attributes" env:"EXTRA_ATTRIBUTES, overwrite"`
	// NestedGroups (default true): a group listed as a member of another group passes its
	// members on. When false, group members that are groups are ignored.
	NestedGroups *bool `yaml:"nested_groups" env:"NESTED_GROUPS, overwrite, noinit"`
}

// LDAPAttributes names the LDAP attributes bridge reads. An empty field keeps the preset's
// choice; "-" turns an optional one off.
type LDAPAttributes struct {
	// ID is the stable id of users and groups (entryUUID, objectGUID).
	ID string `yaml:"id" env:"ID, overwrite"`
	// IDFormat says how to render the id: "string", "guid" (binary GUID in canonical
	// 8-4-4-4-12 form, AD byte order), "hex". Default: guid for objectGUID and
	// mS-DS-ConsistencyGuid, string otherwise.
	IDFormat string `yaml:"id_format" env:"ID_FORMAT, overwrite"`
	UserName string `yaml:"user_name" env:"USER_NAME, overwrite"`
	// DisplayName is the attribute a person's name is read from (default displayName); when
	// the entry has none, the attributes of DisplayNameFallback are tried in order (default
	// [cn]). "-" turns either off. A person still without a name is named by the mapping from
	// given + family name, else the user name (mapping.agent.name can replace all of this).
	DisplayName         string   `yaml:"display_name" env:"DISPLAY_NAME, overwrite"`
	DisplayNameFallback []string `yaml:"display_name_fallback" env:"DISPLAY_NAME_FALLBACK, overwrite"`
	GivenName           string   `yaml:"given_name" env:"GIVEN_NAME, overwrite"`
	FamilyName          string   `yaml:"family_name" env:"FAMILY_NAME, overwrite"`
	Email               string   `yaml:"email" env:"EMAIL, overwrite"`
	Phone               []string `yaml:"phone" env:"PHONE, overwrite"`
	// Member is the group attribute listing member DNs (member, uniqueMember) or, when its
	// values are not DNs, user names (memberUid).
	Member string `yaml:"member" env:"MEMBER, overwrite"`
	// MemberOf is the user attribute listing group DNs. It is used for memberships only when
	// Member is "-"; it is fetched whenever it is named in extra_attributes.
	MemberOf  string `yaml:"member_of" env:"MEMBER_OF, overwrite"`
	GroupName string `yaml:"group_name" env:"GROUP_NAME, overwrite"`
	// Disabled names the attribute that marks a disabled account. With DisabledMask (AD:
	// userAccountControl and 2) the value is a number and any masked bit disables; with
	// DisabledValues a value equal to one of them (case-insensitively) disables; with neither,
	// the attribute's presence disables (e.g. pwdAccountLockedTime).
	Disabled       string   `yaml:"disabled" env:"DISABLED, overwrite"`
	DisabledMask   uint64   `yaml:"disabled_mask" env:"DISABLED_MASK, overwrite"`
	DisabledValues []string `yaml:"disabled_values" env:"DISABLED_VALUES, overwrite"`
}

// displayName returns the person's name from the display_name attribute, else from the first
// display_name_fallback attribute that has one, and the attribute it came from ("-" turns an
// attribute off). first reads the first value of an attribute.
func (a LDAPAttributes) displayName(first func(attr string) string) (name, from string) {
	for _, attr := range append([]string{a.DisplayName}, a.DisplayNameFallback...) {
		if attr == "" || attr == "-" {
			continue
		}
		if v := strings.TrimSpace(first(attr)); v != "" {
			return v, attr
		}
	}
	return "", ""
}

type ldapPreset struct {
	userFilter, groupFilter string
	rangeSize               int
	attrs                   LDAPAttributes
	extra                   []string
}

var ldapPresets = map[string]ldapPreset{
	PresetOpenLDAP: {
		userFilter:  "(objectClass=inetOrgPerson)",
		groupFilter: "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
		attrs: LDAPAttributes{
			ID:          "entryUUID",
			IDFormat:    "string",
			UserName:    "uid",
			DisplayName: "displayName",
			GivenName:   "givenName",
			FamilyName:  "sn",
			Email:       "mail",
			Phone:       []string{"telephoneNumber", "mobile"},
			Member:      "member",
			MemberOf:    "memberOf",
			GroupName:   "cn",
			Disabled:    "-",
		},
	},
	PresetActiveDirectory: {
		// objectCategory=person leaves out computers (which are objectClass=user too).
		userFilter:  "(&(objectCategory=person)(objectClass=user))",
		groupFilter: "(objectClass=group)",
		rangeSize:   1500,
		attrs: LDAPAttributes{
			ID:           "objectGUID",
			IDFormat:     "guid",
			UserName:     "sAMAccountName",
			DisplayName:  "displayName",
			GivenName:    "givenName",
			FamilyName:   "sn",
			Email:        "mail",
			Phone:        []string{"telephoneNumber", "mobile"},
			Member:       "member",
			MemberOf:     "memberOf",
			GroupName:    "cn",
			Disabled:     "userAccountControl",
			DisabledMask: 0x2,
		},
		extra: []string{"userPrincipalName"},
	},
}

// SetDefaults fills what is unset from the preset (default openldap) and the package
// defaults. Calling it twice changes nothing more.
func (c *LDAPConfig) SetDefaults() {
	if c.Preset == "" {
		c.Preset = PresetOpenLDAP
	}
	p, ok := ldapPresets[strings.ToLower(c.Preset)]
	if !ok {
		return // Validate reports it
	}
	c.Preset = strings.ToLower(c.Preset)
	if c.UserFilter == "" {
		c.UserFilter = p.userFilter
	}
	if c.GroupFilter == "" {
		c.GroupFilter = p.groupFilter
	}
	a := &c.Attributes
	str := func(dst *string, def string) {
		if *dst == "" {
			*dst = def
		}
	}
	idWasSet := a.ID != ""
	str(&a.ID, p.attrs.ID)
	if a.IDFormat == "" {
		switch {
		case strings.EqualFold(a.ID, "objectGUID"), strings.EqualFold(a.ID, "mS-DS-ConsistencyGuid"):
			a.IDFormat = "guid"
		case idWasSet:
			a.IDFormat = "string"
		default:
			a.IDFormat = p.attrs.IDFormat
		}
	}
	str(&a.UserName, p.attrs.UserName)
	str(&a.DisplayName, p.attrs.DisplayName)
	if a.DisplayNameFallback == nil {
		a.DisplayNameFallback = []string{"cn"} // both presets: cn is mandatory in inetOrgPerson and AD
	}
	str(&a.GivenName, p.attrs.GivenName)
	str(&a.FamilyName, p.attrs.FamilyName)
	str(&a.Email, p.attrs.Email)
	if a.Phone == nil {
		a.Phone = append([]string(nil), p.attrs.Phone...)
	}
	str(&a.Member, p.attrs.Member)
	str(&a.MemberOf, p.attrs.MemberOf)
	str(&a.GroupName, p.attrs.GroupName)
	if a.Disabled == "" {
		a.Disabled = p.attrs.Disabled
		if a.DisabledMask == 0 && len(a.DisabledValues) == 0 {
			a.DisabledMask = p.attrs.DisabledMask
		}
	}
	for _, e := range p.extra {
		if !containsFold(c.ExtraAttributes, e) {
			c.ExtraAttributes = append(c.ExtraAttributes, e)
		}
	}
	if c.RangeSize == 0 {
		c.RangeSize = p.rangeSize
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultLDAPPageSize
	}
	if c.SearchTimeout == 0 {
		c.SearchTimeout = DefaultLDAPSearchTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultLDAPDialTimeout
	}
	if c.NestedGroups == nil {
		t := true
		c.NestedGroups = &t
	}
}

// LoadSecrets reads bind_password_file when no password came from the environment.
func (c *LDAPConfig) LoadSecrets() error {
	if c.BindPassword != "" || c.BindPasswordFile == "" {
		return nil
	}
	pw, err := secretfile.Read(c.BindPasswordFile)
	if err != nil {
		return fmt.Errorf("bind_password_file: %w", err)
	}
	c.BindPassword = pw
	return nil
}

// Validate reports every problem at once, each prefixed with its YAML key. It changes nothing
// and accepts unset fields that SetDefaults would fill.
func (c *LDAPConfig) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if len(c.URLs) == 0 {
		bad("urls", "at least one ldap:// or ldaps:// URL is required")
	}
	anyPlain := false
	for i, raw := range c.URLs {
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			bad(fmt.Sprintf("urls[%d]", i), "%q is not a URL: %v", raw, err)
		case u.Scheme != "ldap" && u.Scheme != "ldaps":
			bad(fmt.Sprintf("urls[%d]", i), "%q: scheme must be ldap or ldaps", raw)
		case u.Host == "":
			bad(fmt.Sprintf("urls[%d]", i), "%q has no host", raw)
		case u.Path != "" && u.Path != "/":
			bad(fmt.Sprintf("urls[%d]", i), "%q: put the base DN in user_base_dn, not in the URL", raw)
		default:
			if u.Scheme == "ldap" {
				anyPlain = true
			}
		}
	}
	if c.StartTLS && !anyPlain && len(c.URLs) > 0 {
		bad("start_tls", "only applies to ldap:// URLs (ldaps:// is TLS already)")
	}
	preset := strings.ToLower(c.Preset)
	if _, ok := ldapPresets[preset]; !ok && preset != "" {
		bad("preset", "must be %q or %q, got %q", PresetOpenLDAP, PresetActiveDirectory, c.Preset)
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			bad("ca_file", "%v", err)
		}
	}
	if c.BindDN != "" {
		if _, err := ldap.ParseDN(c.BindDN); err != nil && !strings.ContainsAny(c.BindDN, "@\\") {
			bad("bind_dn", "%q is not a DN (nor an AD user@domain or DOMAIN\\user name): %v", c.BindDN, err)
		}
		if c.BindPassword == "" && c.BindPasswordFile == "" {
			bad("bind_password_file", "bind_dn is set but no password: set BRIDGE_LDAP_BIND_PASSWORD or bind_password_file")
		}
	}
	for key, dn := range map[string]string{"user_base_dn": c.UserBaseDN, "group_base_dn": c.GroupBaseDN} {
		if dn == "" {
			continue
		}
		if _, err := ldap.ParseDN(dn); err != nil {
			bad(key, "%q is not a DN: %v", dn, err)
		}
	}
	for key, f := range map[string]string{"user_filter": c.UserFilter, "group_filter": c.GroupFilter} {
		if f == "" {
			continue
		}
		if _, err := ldap.CompileFilter(f); err != nil {
			bad(key, "%q is not an LDAP filter: %v", f, err)
		}
	}
	if c.PageSize < -1 {
		bad("page_size", "must be positive (or -1 to turn paging off), got %d", c.PageSize)
	}
	if c.PageSize > 100000 {
		bad("page_size", "%d is too large (servers cap it; 500 to 1000 is usual)", c.PageSize)
	}
	if c.RangeSize < 0 {
		bad("range_size", "must not be negative")
	}
	if c.SearchTimeout < 0 {
		bad("search_timeout", "must not be negative")
	}
	if c.DialTimeout < 0 {
		bad("dial_timeout", "must not be negative")
	}
	switch strings.ToLower(c.Attributes.IDFormat) {
	case "", "string", "guid", "hex":
	default:
		bad("attributes.id_format", "must be string, guid or hex, got %q", c.Attributes.IDFormat)
	}
	for key, v := range map[string]string{"attributes.id": c.Attributes.ID, "attributes.user_name": c.Attributes.UserName, "attributes.group_name": c.Attributes.GroupName} {
		if v == "-" {
			bad(key, "is required and cannot be turned off")
		}
	}
	for _, name := range append(append([]string{
		c.Attributes.ID, c.Attributes.UserName, c.Attributes.DisplayName, c.Attributes.GivenName,
		c.Attributes.FamilyName, c.Attributes.Email, c.Attributes.Member, c.Attributes.MemberOf,
		c.Attributes.GroupName, c.Attributes.Disabled,
	}, c.Attributes.Phone...), c.ExtraAttributes...) {
		if name != "" && name != "-" && !validAttrName(name) {
			bad("attributes", "%q is not an attribute name", name)
		}
	}
	if c.Attributes.DisabledMask != 0 && len(c.Attributes.DisabledValues) > 0 {
		bad("attributes.disabled_values", "set either disabled_mask or disabled_values, not both")
	}
	return errors.Join(errs...)
}

// validAttrName accepts attribute descriptions: a name or an OID, with options (";binary").
func validAttrName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == ';') {
			return false
		}
	}
	return true
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// nested reports whether nested groups are followed (default true).
func (c *LDAPConfig) nested() bool { return c.NestedGroups == nil || *c.NestedGroups }
