package directory

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// LDIF presets: which object classes are users and groups and which attributes hold what.
const (
	PresetOpenLDAP        = "openldap"
	PresetActiveDirectory = "active_directory"
)

// LDIFConfig configures the LDIF file source: a directory export (slapcat, ldapsearch -LLL,
// ldifde) read from disk. It is the `directory.ldif` section of the configuration; the
// environment prefix is BRIDGE_LDIF_ (BRIDGE_LDIF_PATH, ...).
//
//	directory:
//	  type: ldif
//	  ldif:
//	    path: /data/directory.ldif
//	    preset: openldap        # or active_directory
//
// The presets:
//
//	                openldap                                active_directory
//	users           objectClass inetOrgPerson, person,      objectClass user or person
//	                organizationalPerson or posixAccount    (not computer)
//	groups          groupOfNames, groupOfUniqueNames,       group
//	                posixGroup, groupOfURLs(*)
//	id              entryUUID, else the DN                  objectGUID (canonical form), else the DN
//	userName        uid, else mail                          sAMAccountName, else userPrincipalName
//	displayName     displayName, else cn                    displayName, else cn
//	names           givenName, sn                           givenName, sn
//	emails          mail (type "work")                      mail (type "work")
//	phones          telephoneNumber (work), mobile,         telephoneNumber, otherTelephone (work),
//	                homePhone (home)                        mobile, homePhone (home)
//	inactive when   pwdAccountLockedTime is set,            userAccountControl has bit 2
//	                nsAccountLock is true or shadowExpire   (ACCOUNTDISABLE)
//	                is in the past
//	group name      cn                                      cn
//	members         member, uniqueMember (DNs, any case),   member (DNs, any case)
//	                memberUid (uid values)
//
// (*) groupOfURLs only with static member values: an export does not evaluate memberURL.
// Member DNs that name no entry of the file are ignored. Password attributes are never copied
// into User.Attributes; binary values are: objectGUID in its canonical form, objectSid as
// S-1-…, anything else that is not UTF-8 as base64.
type LDIFConfig struct {
	Path   string `yaml:"path" env:"PATH, overwrite"`
	Preset string `yaml:"preset" env:"PRESET, overwrite"`
}

// Validate reports every problem of the configuration at once; it reads no file.
func (c *LDIFConfig) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("path: required (the LDIF file to read)"))
	}
	if _, ok := ldifPresets[c.Preset]; !ok && c.Preset != "" {
		errs = append(errs, fmt.Errorf("preset: %q is not one of %q, %q", c.Preset, PresetOpenLDAP, PresetActiveDirectory))
	}
	return errors.Join(errs...)
}

// LDIFSource reads a directory from an LDIF file each time Read is called.
type LDIFSource struct {
	cfg     LDIFConfig
	preset  ldifPreset
	logger  *slog.Logger
	now     func() time.Time
	readAll func(path string) ([]byte, error)
}

// NewLDIF returns a source for cfg. An empty preset means "openldap".
func NewLDIF(cfg LDIFConfig, logger *slog.Logger) (*LDIFSource, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ldif source config: %w", err)
	}
	if cfg.Preset == "" {
		cfg.Preset = PresetOpenLDAP
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &LDIFSource{cfg: cfg, preset: ldifPresets[cfg.Preset], logger: logger, now: time.Now, readAll: os.ReadFile}, nil
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
	snap, err := s.preset.snapshot(entries, s.now(), s.logger)
	if err != nil {
		return nil, fmt.Errorf("ldif source: %s: %w", s.cfg.Path, err)
	}
	snap.Source = "ldif:" + s.cfg.Path
	s.logger.Info("read ldif directory", "path", s.cfg.Path, "preset", s.cfg.Preset, "entries", len(entries), "users", len(snap.Users), "groups", len(snap.Groups))
	return snap, nil
}

type ldifPhone struct{ attr, typ string }

type ldifPreset struct {
	userClasses    []string
	notUserClasses []string
	groupClasses   []string
	idAttr         string // binary GUID when guid is true
	guid           bool
	userName       []string
	emails         []string
	phones         []ldifPhone
	memberUID      bool
	inactive       func(e *LDIFEntry, now time.Time) bool
}

var ldifPresets = map[string]ldifPreset{
	PresetOpenLDAP: {
		userClasses:  []string{"inetorgperson", "person", "organizationalperson", "posixaccount"},
		groupClasses: []string{"groupofnames", "groupofuniquenames", "posixgroup", "groupofurls"},
		idAttr:       "entryuuid",
		userName:     []string{"uid", "mail"},
		emails:       []string{"mail"},
		phones:       []ldifPhone{{"telephonenumber", "work"}, {"mobile", "mobile"}, {"homephone", "home"}},
		memberUID:    true,
		inactive:     ldifOpenLDAPInactive,
	},
	PresetActiveDirectory: {
		userClasses:    []string{"user", "person"},
		notUserClasses: []string{"computer"},
		groupClasses:   []string{"group"},
		idAttr:         "objectguid",
		guid:           true,
		userName:       []string{"samaccountname", "userprincipalname"},
		emails:         []string{"mail"},
		phones:         []ldifPhone{{"telephonenumber", "work"}, {"othertelephone", "work"}, {"mobile", "mobile"}, {"homephone", "home"}},
		inactive:       ldifADInactive,
	},
}

// ldifOpenLDAPInactive: ppolicy lock, 389-DS/FreeIPA nsAccountLock, or an expired shadow account.
func ldifOpenLDAPInactive(e *LDIFEntry, now time.Time) bool {
	if e.First("pwdAccountLockedTime") != "" {
		return true
	}
	if strings.EqualFold(strings.TrimSpace(e.First("nsAccountLock")), "true") {
		return true
	}
	if v := strings.TrimSpace(e.First("shadowExpire")); v != "" {
		days, err := strconv.ParseInt(v, 10, 64)
		if err == nil && days >= 0 && days <= now.Unix()/86400 {
			return true
		}
	}
	return false
}

// ldifADInactive: userAccountControl bit ACCOUNTDISABLE (0x2).
func ldifADInactive(e *LDIFEntry, _ time.Time) bool {
	v := strings.TrimSpace(e.First("userAccountControl"))
	if v == "" {
		return false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return err == nil && n&2 != 0
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

type ldifRef struct {
	kind string // "user" or "group"
	id   string
	line int
}

func (p ldifPreset) entryID(e *LDIFEntry) (string, error) {
	v := e.First(p.idAttr)
	if v == "" {
		return ldifNormalizeDN(e.DN), nil
	}
	if p.guid {
		g, err := ldifGUID(v)
		if err != nil {
			return "", &LDIFError{Line: e.Line, Msg: fmt.Sprintf("%s: objectGUID: %v", e.DN, err)}
		}
		return g, nil
	}
	return strings.ToLower(strings.TrimSpace(v)), nil
}

func (p ldifPreset) snapshot(entries []LDIFEntry, now time.Time, logger *slog.Logger) (*Snapshot, error) {
	snap := &Snapshot{ReadAt: now}
	byDN := map[string]ldifRef{}
	byUID := map[string]string{}
	ids := map[string]int{}
	type groupEntry struct {
		e   *LDIFEntry
		idx int
	}
	var groupEntries []groupEntry
	var errs []error
	for i := range entries {
		e := &entries[i]
		isGroup := ldifHasClass(e, p.groupClasses)
		isUser := !isGroup && ldifHasClass(e, p.userClasses) && !ldifHasClass(e, p.notUserClasses)
		if !isGroup && !isUser {
			continue
		}
		id, err := p.entryID(e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if first, dup := ids[id]; dup {
			errs = append(errs, &LDIFError{Line: e.Line, Msg: fmt.Sprintf("%s has the same id %q as the entry at line %d", e.DN, id, first)})
			continue
		}
		ids[id] = e.Line
		ndn := ldifNormalizeDN(e.DN)
		if prev, dup := byDN[ndn]; dup {
			errs = append(errs, &LDIFError{Line: e.Line, Msg: fmt.Sprintf("DN %q appears again (first at line %d)", e.DN, prev.line)})
			continue
		}
		if isGroup {
			byDN[ndn] = ldifRef{kind: "group", id: id, line: e.Line}
			snap.Groups = append(snap.Groups, Group{ID: id, Name: e.First("cn"), DN: e.DN})
			groupEntries = append(groupEntries, groupEntry{e: e, idx: len(snap.Groups) - 1})
			continue
		}
		byDN[ndn] = ldifRef{kind: "user", id: id, line: e.Line}
		u := p.user(e, id, now)
		if uid := e.First("uid"); uid != "" {
			byUID[strings.ToLower(uid)] = id
		}
		snap.Users = append(snap.Users, u)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	unknown := 0
	for _, ge := range groupEntries {
		g := &snap.Groups[ge.idx]
		members := append(slices.Clone(ge.e.Get("member")), ge.e.Get("uniqueMember")...)
		for _, m := range members {
			ref, ok := byDN[ldifNormalizeDN(ldifStripUID(m))]
			switch {
			case !ok:
				unknown++
			case ref.kind == "user":
				g.MemberUsers = append(g.MemberUsers, ref.id)
			case ref.id != g.ID:
				g.MemberGroups = append(g.MemberGroups, ref.id)
			}
		}
		if p.memberUID {
			for _, uid := range ge.e.Get("memberUid") {
				if id, ok := byUID[strings.ToLower(strings.TrimSpace(uid))]; ok {
					g.MemberUsers = append(g.MemberUsers, id)
				} else {
					unknown++
				}
			}
		}
		slices.Sort(g.MemberUsers)
		g.MemberUsers = slices.Compact(g.MemberUsers)
		slices.Sort(g.MemberGroups)
		g.MemberGroups = slices.Compact(g.MemberGroups)
	}
	if unknown > 0 {
		logger.Debug("ldif group members that are not users or groups of the file were ignored", "count", unknown)
	}
	snap.Resolve()
	return snap, nil
}

func (p ldifPreset) user(e *LDIFEntry, id string, now time.Time) User {
	u := User{
		ID:          id,
		DN:          e.DN,
		DisplayName: e.First("displayName"),
		GivenName:   e.First("givenName"),
		FamilyName:  e.First("sn"),
		Active:      !p.inactive(e, now),
		Attributes:  make(map[string][]string, len(e.Attrs)),
	}
	if u.DisplayName == "" {
		u.DisplayName = e.First("cn")
	}
	for _, a := range p.userName {
		if v := e.First(a); v != "" {
			u.UserName = v
			break
		}
	}
	for _, a := range p.emails {
		for _, v := range e.Get(a) {
			if v = strings.TrimSpace(v); v != "" {
				u.Emails = append(u.Emails, Email{Value: v, Type: "work"})
			}
		}
	}
	for _, ph := range p.phones {
		for _, v := range e.Get(ph.attr) {
			if v = strings.TrimSpace(v); v != "" {
				u.Phones = append(u.Phones, Phone{Value: v, Type: ph.typ})
			}
		}
	}
	for name, vals := range e.Attrs {
		if ldifSecretAttrs[name] {
			continue
		}
		out := make([]string, 0, len(vals))
		for _, v := range vals {
			out = append(out, ldifAttrString(name, v))
		}
		u.Attributes[name] = out
	}
	return u
}

// ldifAttrString renders a value for User.Attributes: text as is, objectGUID and objectSid in
// their usual string forms, other binary values as base64.
func ldifAttrString(name, v string) string {
	switch name {
	case "objectguid":
		if g, err := ldifGUID(v); err == nil {
			return g
		}
	case "objectsid":
		if s, err := ldifSID([]byte(v)); err == nil {
			return s
		}
	}
	if utf8.ValidString(v) {
		return v
	}
	return base64.StdEncoding.EncodeToString([]byte(v))
}

// ldifGUID turns a 16-byte AD objectGUID into its canonical string form
// (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, the first three groups little-endian), as AD tools
// show it. A value that already is in string form is returned lower-cased.
func ldifGUID(v string) (string, error) {
	if len(v) == 36 && strings.Count(v, "-") == 4 {
		return strings.ToLower(v), nil
	}
	b := []byte(v)
	if len(b) != 16 {
		return "", fmt.Errorf("expected 16 bytes (base64 in LDIF: \"objectGUID:: …\"), got %d", len(b))
	}
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]), binary.LittleEndian.Uint16(b[6:8]),
		b[8:10], b[10:16]), nil
}

// ldifSID renders a binary security identifier as S-R-I-S-S….
func ldifSID(b []byte) (string, error) {
	if len(b) < 8 || len(b) != 8+4*int(b[1]) {
		return "", errors.New("not a SID")
	}
	var auth uint64
	for _, x := range b[2:8] {
		auth = auth<<8 | uint64(x)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "S-%d-%d", b[0], auth)
	for i := 0; i < int(b[1]); i++ {
		fmt.Fprintf(&sb, "-%d", binary.LittleEndian.Uint32(b[8+4*i:]))
	}
	return sb.String(), nil
}

// ldifStripUID removes the optional "#'0101'B" unique identifier of a uniqueMember value.
func ldifStripUID(v string) string {
	if i := strings.LastIndex(v, "#'"); i > 0 && strings.HasSuffix(v, "'B") {
		return v[:i]
	}
	return v
}

// ldifNormalizeDN returns a DN in a form that compares equal for equal DNs: attribute types and
// values lower-cased, spaces around separators removed, escapes resolved. A string that does
// not parse as a DN is lower-cased and trimmed.
func ldifNormalizeDN(dn string) string {
	parsed, err := ldap.ParseDN(strings.TrimSpace(dn))
	if err != nil {
		return strings.ToLower(strings.TrimSpace(dn))
	}
	var sb strings.Builder
	for i, rdn := range parsed.RDNs {
		if i > 0 {
			sb.WriteByte(',')
		}
		atts := slices.Clone(rdn.Attributes)
		slices.SortFunc(atts, func(a, b *ldap.AttributeTypeAndValue) int {
			return strings.Compare(strings.ToLower(a.Type), strings.ToLower(b.Type))
		})
		for j, a := range atts {
			if j > 0 {
				sb.WriteByte('+')
			}
			sb.WriteString(strings.ToLower(a.Type))
			sb.WriteByte('=')
			sb.WriteString(strings.ToLower(strings.TrimSpace(a.Value)))
		}
	}
	return sb.String()
}
