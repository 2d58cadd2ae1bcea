package directory

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"
)

// LDIFConfig configures the LDIF file source: a directory export (slapcat, ldapsearch -LLL,
// ldifde) read from disk. It is the `directory.ldif` section of the configuration (the CLI
// decides the environment prefix; the keys below are the env names after it).
//
//	directory:
//	  type: ldif
//	  ldif:
//	    path: /data/directory.ldif
//	    preset: openldap        # or active_directory (default openldap)
//	    attributes:             # the same overrides as directory.ldap.attributes
//	      disabled: pwdAccountLockedTime
//	    nested_groups: true
//
// The presets and attribute overrides are those of the LDAP source (LDAPAttributes, filled
// by LDAPConfig.SetDefaults), so that an export reads like the live directory. LDAP filters
// cannot be evaluated on a file; entries are classified by objectClass instead:
//
//	                openldap                                active_directory
//	users           objectClass inetOrgPerson, person,      objectClass user or person,
//	                organizationalPerson or posixAccount    but not computer
//	groups          groupOfNames, groupOfUniqueNames,       group
//	                posixGroup or groupOfURLs
//
// Group members come from attributes.member: values that are DNs are matched (in any case and
// spacing) against the DNs of the file, other values against user names (memberUid); members
// that name no user or group of the file are ignored. With member "-", the users'
// attributes.member_of DNs are used instead. An entry without the id attribute (a
// hand-written LDIF without entryUUID) gets its normalized DN as id. Password attributes are
// never copied into User.Attributes; binary values are: objectGUID in canonical GUID form,
// objectSid as S-1-…, anything else that is not UTF-8 as base64.
type LDIFConfig struct {
	Path   string `yaml:"path" env:"PATH, overwrite"`
	Preset string `yaml:"preset" env:"PRESET, overwrite"`
	// Attributes override the preset's attribute names, as in LDAPConfig.
	Attributes LDAPAttributes `yaml:"attributes" env:", prefix=ATTR_"`
	// NestedGroups (default true): group members that are groups pass their members on.
	NestedGroups *bool `yaml:"nested_groups" env:"NESTED_GROUPS, overwrite, noinit"`
}

// SetDefaults fills the preset (default openldap), the attribute names it implies and
// nested_groups (default true): the LDAP source's presets and defaulting, so that both read a
// directory the same way. Calling it twice changes nothing more.
func (c *LDIFConfig) SetDefaults() {
	lc := LDAPConfig{Preset: c.Preset, Attributes: c.Attributes, NestedGroups: c.NestedGroups}
	lc.SetDefaults()
	c.Preset, c.Attributes, c.NestedGroups = lc.Preset, lc.Attributes, lc.NestedGroups
}

// Validate reports every problem of the configuration at once; it reads no file.
func (c *LDIFConfig) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("path: required (the LDIF file to read)"))
	}
	if _, ok := ldifClasses[strings.ToLower(c.Preset)]; !ok && c.Preset != "" {
		errs = append(errs, fmt.Errorf("preset: must be %q or %q, got %q", PresetOpenLDAP, PresetActiveDirectory, c.Preset))
	}
	switch strings.ToLower(c.Attributes.IDFormat) {
	case "", "string", "guid", "hex":
	default:
		errs = append(errs, fmt.Errorf("attributes.id_format: must be string, guid or hex, got %q", c.Attributes.IDFormat))
	}
	for key, v := range map[string]string{"attributes.id": c.Attributes.ID, "attributes.user_name": c.Attributes.UserName, "attributes.group_name": c.Attributes.GroupName} {
		if v == "-" {
			errs = append(errs, fmt.Errorf("%s: is required and cannot be turned off", key))
		}
	}
	if c.Attributes.DisabledMask != 0 && len(c.Attributes.DisabledValues) > 0 {
		errs = append(errs, errors.New("attributes.disabled_values: set either disabled_mask or disabled_values, not both"))
	}
	return errors.Join(errs...)
}

// LDIFSource reads a directory from an LDIF file each time Read is called.
type LDIFSource struct {
	cfg     LDIFConfig
	attrs   LDAPAttributes
	classes ldifObjectClasses
	nested  bool
	logger  *slog.Logger
	now     func() time.Time
	readAll func(path string) ([]byte, error)
	poll    time.Duration // how often Follow looks at the file
}

// NewLDIF returns a source for cfg. An empty preset means "openldap".
func NewLDIF(cfg LDIFConfig, logger *slog.Logger) (*LDIFSource, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ldif source config: %w", err)
	}
	cfg.SetDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &LDIFSource{
		cfg:     cfg,
		attrs:   cfg.Attributes,
		classes: ldifClasses[cfg.Preset],
		nested:  *cfg.NestedGroups,
		logger:  logger,
		now:     time.Now,
		readAll: os.ReadFile,
		poll:    2 * time.Second,
	}, nil
}

// Read parses the file and returns the resolved snapshot.
func (s *LDIFSource) Read(ctx context.Context) (*Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := s.readAll(s.cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("ldif source: %w", err)
	}
	entries, err := ParseLDIF(strings.NewReader(string(b)))
	if err != nil {
		return nil, fmt.Errorf("ldif source: %s: %w", s.cfg.Path, err)
	}
	snap, err := s.snapshot(entries)
	if err != nil {
		return nil, fmt.Errorf("ldif source: %s: %w", s.cfg.Path, err)
	}
	snap.Source = "ldif:" + s.cfg.Path
	s.logger.Info("read ldif directory", "path", s.cfg.Path, "preset", s.cfg.Preset, "entries", len(entries), "users", len(snap.Users), "groups", len(snap.Groups))
	return snap, nil
}

type ldifObjectClasses struct {
	users, notUsers, groups []string
}

var ldifClasses = map[string]ldifObjectClasses{
	PresetOpenLDAP: {
		users:  []string{"inetorgperson", "person", "organizationalperson", "posixaccount"},
		groups: []string{"groupofnames", "groupofuniquenames", "posixgroup", "groupofurls"},
	},
	PresetActiveDirectory: {
		users:    []string{"user", "person"},
		notUsers: []string{"computer"},
		groups:   []string{"group"},
	},
}

// ldifSecretAttrs are never copied into User.Attributes.
var ldifSecretAttrs = map[string]bool{
	"userpassword": true, "unicodepwd": true, "authpassword": true, "sambantpassword": true,
	"sambalmpassword": true, "ntpwdhistory": true, "lmpwdhistory": true, "dbcspwd": true,
	"supplementalcredentials": true, "pwdhistory": true, "krbprincipalkey": true,
}

func ldifHasClass(e *LDIFEntry, classes []string) bool {
	for _, oc := range e.Get("objectClass") {
		if slices.Contains(classes, strings.ToLower(strings.TrimSpace(oc))) {
			return true
		}
	}
	return false
}

// ldifGet returns the values of attr, or nil when attr is "" or "-" (turned off).
func ldifGet(e *LDIFEntry, attr string) []string {
	if attr == "" || attr == "-" {
		return nil
	}
	return e.Get(attr)
}

func ldifFirst(e *LDIFEntry, attr string) string {
	if v := ldifGet(e, attr); len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

type ldifRef struct {
	kind string // "user" or "group"
	id   string
	line int
}

func (s *LDIFSource) entryID(e *LDIFEntry) (string, error) {
	var v string // untrimmed: a binary GUID may start or end with a space byte
	if vals := ldifGet(e, s.attrs.ID); len(vals) > 0 {
		v = vals[0]
	}
	if strings.TrimSpace(v) == "" {
		if dn := DNText(ldifDNKey(e.DN)); dn != "" {
			return dn, nil
		}
		return "", &LDIFError{Line: e.Line, Msg: fmt.Sprintf("entry has an empty DN and no %s: give it a DN or an %s", s.attrs.ID, s.attrs.ID)}
	}
	switch strings.ToLower(s.attrs.IDFormat) {
	case "guid":
		if len(v) == 16 {
			return FormatGUID([]byte(v))
		}
		if b, err := ParseGUID(v); err == nil { // already in string form
			return FormatGUID(b)
		}
		return "", &LDIFError{Line: e.Line, Msg: fmt.Sprintf("%s: %s is neither 16 bytes (base64 in LDIF: \"%s:: …\") nor a GUID string", e.DN, s.attrs.ID, s.attrs.ID)}
	case "hex":
		return hex.EncodeToString([]byte(v)), nil
	}
	return strings.TrimSpace(v), nil
}

// disabled applies attributes.disabled as the LDAP source does (LDAPAttributes.disabledBy).
func (s *LDIFSource) disabled(e *LDIFEntry) bool {
	disabled, err := s.attrs.disabledBy(ldifGet(e, s.attrs.Disabled))
	if err != nil {
		s.logger.Warn("ldif disabled flag is not a number, user treated as active", "dn", e.DN, "attribute", s.attrs.Disabled, "error", err)
	}
	return disabled
}

func (s *LDIFSource) snapshot(entries []LDIFEntry) (*Snapshot, error) {
	snap := &Snapshot{ReadAt: s.now()}
	byDN := map[string]ldifRef{}
	byName := map[string]string{}
	ids := map[string]int{}
	type pending struct {
		e   *LDIFEntry
		idx int
	}
	var groupEntries, userEntries []pending
	var errs []error
	for i := range entries {
		e := &entries[i]
		isGroup := ldifHasClass(e, s.classes.groups)
		isUser := !isGroup && ldifHasClass(e, s.classes.users) && !ldifHasClass(e, s.classes.notUsers)
		if !isGroup && !isUser {
			continue
		}
		id, err := s.entryID(e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if first, dup := ids[id]; dup {
			errs = append(errs, &LDIFError{Line: e.Line, Msg: fmt.Sprintf("%s has the same id %q as the entry at line %d", e.DN, id, first)})
			continue
		}
		ids[id] = e.Line
		ndn := ldifDNKey(e.DN)
		if prev, dup := byDN[ndn]; dup {
			errs = append(errs, &LDIFError{Line: e.Line, Msg: fmt.Sprintf("DN %q appears again (first at line %d)", e.DN, prev.line)})
			continue
		}
		if isGroup {
			byDN[ndn] = ldifRef{kind: "group", id: id, line: e.Line}
			snap.Groups = append(snap.Groups, Group{ID: id, Name: ldifFirst(e, s.attrs.GroupName), DN: e.DN})
			groupEntries = append(groupEntries, pending{e: e, idx: len(snap.Groups) - 1})
			continue
		}
		byDN[ndn] = ldifRef{kind: "user", id: id, line: e.Line}
		u := s.user(e, id)
		if u.UserName != "" {
			byName[strings.ToLower(u.UserName)] = id
		}
		snap.Users = append(snap.Users, u)
		userEntries = append(userEntries, pending{e: e, idx: len(snap.Users) - 1})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	unknown := 0
	for _, ge := range groupEntries {
		g := &snap.Groups[ge.idx]
		for _, m := range ldifGet(ge.e, s.attrs.Member) {
			m = strings.TrimSpace(m)
			key, isDN := NormalizeDN(ldifStripUID(m))
			if !isDN {
				// not a DN: a user name (memberUid)
				if id, ok := byName[strings.ToLower(m)]; ok {
					g.MemberUsers = append(g.MemberUsers, id)
				} else {
					unknown++
				}
				continue
			}
			ref, ok := byDN[key]
			switch {
			case !ok:
				unknown++
			case ref.kind == "user":
				g.MemberUsers = append(g.MemberUsers, ref.id)
			case ref.id != g.ID && s.nested:
				g.MemberGroups = append(g.MemberGroups, ref.id)
			}
		}
		slices.Sort(g.MemberUsers)
		g.MemberUsers = slices.Compact(g.MemberUsers)
		slices.Sort(g.MemberGroups)
		g.MemberGroups = slices.Compact(g.MemberGroups)
	}
	if s.attrs.Member == "-" {
		for _, ue := range userEntries {
			u := &snap.Users[ue.idx]
			for _, dn := range ldifGet(ue.e, s.attrs.MemberOf) {
				if ref, ok := byDN[ldifDNKey(dn)]; ok && ref.kind == "group" {
					u.Groups = append(u.Groups, ref.id)
				} else {
					unknown++
				}
			}
		}
	}
	if unknown > 0 {
		s.logger.Debug("ldif members that are not users or groups of the file were ignored", "count", unknown)
	}
	snap.Resolve()
	return snap, nil
}

func (s *LDIFSource) user(e *LDIFEntry, id string) User {
	a := s.attrs
	u := User{
		ID:         id,
		DN:         e.DN,
		UserName:   ldifFirst(e, a.UserName),
		GivenName:  ldifFirst(e, a.GivenName),
		FamilyName: ldifFirst(e, a.FamilyName),
		Active:     !s.disabled(e),
		Attributes: make(map[string][]string, len(e.Attrs)),
	}
	u.DisplayName, u.DisplayNameFrom = a.displayName(func(attr string) string { return ldifFirst(e, attr) })
	for _, v := range ldifGet(e, a.Email) {
		if v = strings.TrimSpace(v); v != "" {
			u.Emails = append(u.Emails, Email{Value: v, Type: "work"})
		}
	}
	for _, attr := range a.Phone {
		typ := "work"
		switch strings.ToLower(attr) {
		case "mobile", "mobiletelephonenumber", "othermobile":
			typ = "mobile"
		case "homephone", "otherhomephone":
			typ = "home"
		}
		for _, v := range ldifGet(e, attr) {
			if v = strings.TrimSpace(v); v != "" {
				u.Phones = append(u.Phones, Phone{Value: v, Type: typ})
			}
		}
	}
	for name, vals := range e.Attrs {
		if ldifSecretAttrs[name] {
			continue
		}
		out := make([]string, 0, len(vals))
		for _, v := range vals {
			out = append(out, attrString(name, []byte(v)))
		}
		u.Attributes[name] = out
	}
	return u
}

// ldifStripUID removes the optional "#'0101'B" unique identifier of a uniqueMember value.
func ldifStripUID(v string) string {
	if i := strings.LastIndex(v, "#'"); i > 0 && strings.HasSuffix(v, "'B") {
		return v[:i]
	}
	return v
}

// ldifDNKey is NormalizeDN's key for dn, or dn lower-cased and trimmed when it is not a DN.
func ldifDNKey(dn string) string {
	if k, ok := NormalizeDN(dn); ok {
		return k
	}
	return strings.ToLower(strings.TrimSpace(dn))
}
