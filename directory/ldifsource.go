package directory

import (
	"context"
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
// The entries of the file are turned into users and groups by the LDAP source's own code
// (the same User for the same entry: names, e-mails, typed phones and primaries, the display
// name fallback, ids, disabled flags, members). Group members come from attributes.member:
// values that are DNs are matched (through NormalizeDN) against the DNs of the file, other
// values against user names (memberUid); members that name no user or group of the file are
// ignored. With member "-", the users' attributes.member_of DNs are used instead. Unlike a
// search, the file gives every attribute of an entry: all land in User.Attributes but
// passwords; binary values in text form (objectGUID as a GUID, objectSid as S-1-…, anything
// else that is not UTF-8 as base64). One thing differs from a server on purpose: an entry
// without the id attribute (a hand-written LDIF without entryUUID) gets its normalized DN as
// id, where the LDAP source skips it (a server always has one, so its absence there means the
// bind user may not read it).
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
	classes ldifObjectClasses
	// asLDAP is never connected: its builder turns the file's entries into users and groups
	// exactly as the LDAP source turns a server's.
	asLDAP  *LDAPSource
	logger  *slog.Logger
	now     func() time.Time
	readAll func(path string) ([]byte, error)
	poll    time.Duration // how often Follow looks at the file
}

// NewLDIF returns a source for cfg. An empty preset means "openldap".
func NewLDIF(cfg LDIFConfig, logger *slog.Logger, opts ...Option) (*LDIFSource, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ldif source config: %w", err)
	}
	cfg.SetDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	lc := LDAPConfig{Preset: cfg.Preset, Attributes: cfg.Attributes, NestedGroups: cfg.NestedGroups}
	lc.SetDefaults()
	return &LDIFSource{
		cfg:     cfg,
		classes: ldifClasses[cfg.Preset],
		asLDAP:  &LDAPSource{cfg: lc, logger: logger, now: time.Now, keep: applyOptions(opts).keep},
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

func ldifHasClass(e *LDIFEntry, classes []string) bool {
	for _, oc := range e.Get("objectClass") {
		if slices.Contains(classes, strings.ToLower(strings.TrimSpace(oc))) {
			return true
		}
	}
	return false
}

// ldifEntry is e as the LDAP source's entry, which ldapBuild turns into a user or group.
func ldifEntry(e *LDIFEntry) *entry {
	out := &entry{dn: e.DN, line: e.Line, attrs: make(map[string][][]byte, len(e.Attrs))}
	for name, vals := range e.Attrs {
		bs := make([][]byte, len(vals))
		for i, v := range vals {
			bs[i] = []byte(v)
		}
		out.attrs[name] = bs
	}
	return out
}

// entryID is the LDAP source's id of e, else (no id attribute) its normalized DN; errors name
// the line.
func (s *LDIFSource) entryID(e *entry) (string, error) {
	if strings.TrimSpace(e.str(s.asLDAP.cfg.Attributes.ID)) == "" {
		if dn := DNText(ldifDNKey(e.dn)); dn != "" {
			return dn, nil
		}
		id := s.asLDAP.cfg.Attributes.ID
		return "", e.errorf("entry has an empty DN and no %s: give it a DN or an %s", id, id)
	}
	return s.asLDAP.id(e)
}

// snapshot classifies the entries by objectClass (users, groups, neither), rejects a DN that
// appears twice, and hands users, then groups, to the LDAP source's builder.
func (s *LDIFSource) snapshot(entries []LDIFEntry) (*Snapshot, error) {
	readAt := s.now()
	b := s.asLDAP.newBuild()
	b.idOf = s.entryID
	firstLine := map[string]int{}
	var users, groups []*LDIFEntry
	var errs []error
	for i := range entries {
		e := &entries[i]
		isGroup := ldifHasClass(e, s.classes.groups)
		isUser := !isGroup && ldifHasClass(e, s.classes.users) && !ldifHasClass(e, s.classes.notUsers)
		if !isGroup && !isUser {
			continue
		}
		k := ldifDNKey(e.DN)
		if first, dup := firstLine[k]; dup {
			errs = append(errs, &LDIFError{Line: e.Line, Msg: fmt.Sprintf("DN %q appears again (first at line %d)", e.DN, first)})
			continue
		}
		firstLine[k] = e.Line
		if isGroup {
			groups = append(groups, e)
		} else {
			users = append(users, e)
		}
	}
	for _, e := range users {
		b.addUser(ldifEntry(e))
	}
	for _, e := range groups {
		b.addGroup(ldifEntry(e))
	}
	snap, err := b.finish()
	if err = errors.Join(append(errs, err)...); err != nil {
		return nil, err
	}
	snap.ReadAt = readAt
	snap.Resolve()
	return snap, nil
}

// ldifDNKey is NormalizeDN's key for dn, or dn lower-cased and trimmed when it is not a DN.
func ldifDNKey(dn string) string {
	if k, ok := NormalizeDN(dn); ok {
		return k
	}
	return strings.ToLower(strings.TrimSpace(dn))
}
