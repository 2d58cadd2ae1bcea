package directorytest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/babelforce/bridge/directory"
)

// OpenLDAPDisabled is the attribute setting that makes an LDAP or LDIF source read the
// inactive user of OpenLDAPLDIF as disabled: employeeType "inactive".
func OpenLDAPDisabled() (attr string, values []string) { return "employeeType", []string{"inactive"} }

// The password every rendered Samba AD user gets (it satisfies AD's complexity rules).
const ADUserPassword = "Bridge-Conformance-1!"

// UUID returns the deterministic UUID the renderers give the user or group called name (as
// entryUUID, SCIM id and, byte for byte, objectGUID).
func UUID(kind, name string) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("bridge-conformance:"+kind+":"+name))
}

// OpenLDAPLDIF renders the directory for slapadd under suffix (the suffix entry itself is left
// out: the slapd helper adds it): ou=people and ou=groups, inetOrgPerson users (uid, cn, sn,
// givenName, displayName, mail, telephoneNumber, mobile, title, departmentNumber,
// employeeNumber, entryUUID), the inactive user marked with employeeType: inactive (read it
// with OpenLDAPDisabled), and groupOfNames groups whose member values name users and groups. A group with no member at
// all gets itself as member (groupOfNames requires one).
func (d *Directory) OpenLDAPLDIF(suffix string) string {
	var b strings.Builder
	w := ldifWriter{&b}
	w.entry("ou=people,"+suffix, "objectClass", "organizationalUnit", "ou", "people")
	w.entry("ou=groups,"+suffix, "objectClass", "organizationalUnit", "ou", "groups")
	for _, u := range d.Users {
		attrs := []string{
			"objectClass", "inetOrgPerson",
			"uid", u.UserName,
			"cn", u.DisplayName,
			"sn", u.FamilyName,
			"givenName", u.GivenName,
			"entryUUID", UUID("user", u.UserName).String(),
		}
		if !u.NoDisplayName {
			attrs = append(attrs, "displayName", u.DisplayName)
		}
		for _, m := range u.Emails {
			attrs = append(attrs, "mail", m)
		}
		for _, p := range u.Phones {
			attrs = append(attrs, phoneAttr(p.Type), p.Value)
		}
		attrs = appendIf(attrs, "title", u.Title)
		attrs = appendIf(attrs, "departmentNumber", u.Department)
		attrs = appendIf(attrs, "employeeNumber", u.EmployeeNumber)
		if u.Inactive {
			attrs = append(attrs, "employeeType", "inactive")
		}
		w.entry(d.openLDAPUserDN(u.UserName, suffix), attrs...)
	}
	for _, g := range d.Groups {
		attrs := []string{"objectClass", "groupOfNames", "cn", g.Name, "entryUUID", UUID("group", g.Name).String()}
		for _, m := range g.Users {
			attrs = append(attrs, "member", d.openLDAPUserDN(m, suffix))
		}
		for _, m := range g.Groups {
			attrs = append(attrs, "member", openLDAPGroupDN(m, suffix))
		}
		if len(g.Users)+len(g.Groups) == 0 {
			attrs = append(attrs, "member", openLDAPGroupDN(g.Name, suffix))
		}
		w.entry(openLDAPGroupDN(g.Name, suffix), attrs...)
	}
	return b.String()
}

// OpenLDAPExport renders what slapcat would export: the suffix entry followed by
// OpenLDAPLDIF, with a version line and comments.
func (d *Directory) OpenLDAPExport(suffix string) string {
	rdn, _, _ := strings.Cut(suffix, ",")
	_, val, _ := strings.Cut(rdn, "=")
	var b strings.Builder
	b.WriteString("# bridge conformance directory, OpenLDAP export\nversion: 1\n\n")
	w := ldifWriter{&b}
	w.entry(suffix, "objectClass", "dcObject", "objectClass", "organization", "dc", val, "o", val)
	b.WriteString(d.OpenLDAPLDIF(suffix))
	return b.String()
}

func (d *Directory) openLDAPUserDN(userName, suffix string) string {
	return "uid=" + escapeDNValue(userName) + ",ou=people," + suffix
}

func openLDAPGroupDN(name, suffix string) string {
	return "cn=" + escapeDNValue(name) + ",ou=groups," + suffix
}

// SambaLDIF renders the directory for ldapadd/ldapmodify against Samba AD under baseDN (an OU
// that the LDIF creates, e.g. "OU=conformance,DC=example,DC=test"): enabled users with
// userAccountControl 512 and a password (ADUserPassword, so LDAPS is needed), the inactive one
// with 514; groups with their user members; then "changetype: modify" records that nest the
// groups (both ends must exist first, and cycle-a/cycle-b refer to each other). AD's mail is
// single-valued: further addresses go to otherMailbox. Groups are named by cn; their
// sAMAccountName (unique in the domain) gets a tag derived from baseDN. User sAMAccountNames are
// the user names, so one domain holds the rendering once.
func (d *Directory) SambaLDIF(baseDN string) string {
	var b strings.Builder
	w := ldifWriter{&b}
	ou, _, _ := strings.Cut(baseDN, ",")
	_, ouName, _ := strings.Cut(ou, "=")
	w.entry(baseDN, "objectClass", "organizationalUnit", "ou", ouName)
	pw := adPassword(ADUserPassword)
	for _, u := range d.Users {
		uac := "512"
		if u.Inactive {
			uac = "514"
		}
		attrs := []string{
			"objectClass", "user",
			"sAMAccountName", u.UserName,
			"userPrincipalName", u.UserName + "@" + d.Domain,
			"givenName", u.GivenName,
			"sn", u.FamilyName,
		}
		attrs = d.adUserAttrs(attrs, u)
		attrs = append(attrs, "unicodePwd", pw, "userAccountControl", uac)
		w.entry(adUserDN(u, baseDN), attrs...)
	}
	for _, g := range d.Groups {
		// sAMAccountName is unique in the whole domain, which other tests share: tag it.
		sam := fmt.Sprintf("%s-%04x", g.Name, UUID("ou", strings.ToLower(baseDN)).ID()&0xffff)
		attrs := []string{"objectClass", "group", "cn", g.Name, "sAMAccountName", sam}
		for _, m := range g.Users {
			attrs = append(attrs, "member", adUserDN(*d.User(m), baseDN))
		}
		w.entry(adGroupDN(g.Name, baseDN), attrs...)
	}
	for _, g := range d.Groups {
		if len(g.Groups) == 0 {
			continue
		}
		fmt.Fprintf(&b, "dn: %s\nchangetype: modify\nadd: member\n", adGroupDN(g.Name, baseDN))
		for _, c := range g.Groups {
			w.line("member", adGroupDN(c, baseDN))
		}
		b.WriteString("-\n\n")
	}
	return b.String()
}

// ADExport renders what an ldifde/ldapsearch export of the directory from AD looks like, for
// the LDIF source's active_directory preset: objectGUID as base64 binary (the bytes of
// UUID("user"/"group", name)), objectClass top/person/organizationalPerson/user,
// sAMAccountName, userAccountControl 512/514, groups with every member (users and groups) in
// one record, plus entries that are neither users nor groups (the OU, a computer account).
func (d *Directory) ADExport(baseDN string) string {
	var b strings.Builder
	b.WriteString("# bridge conformance directory, Active Directory export\n# (the computer account below must not be read as a user)\n\n")
	w := ldifWriter{&b}
	ou, _, _ := strings.Cut(baseDN, ",")
	_, ouName, _ := strings.Cut(ou, "=")
	w.entry(baseDN, "objectClass", "top", "objectClass", "organizationalUnit", "ou", ouName,
		"objectGUID", binGUID(UUID("ou", baseDN)))
	for i, u := range d.Users {
		uac := "512"
		if u.Inactive {
			uac = "514"
		}
		attrs := []string{
			"objectClass", "top", "objectClass", "person", "objectClass", "organizationalPerson", "objectClass", "user",
			"cn", u.DisplayName,
			"sAMAccountName", u.UserName,
			"userPrincipalName", u.UserName + "@" + d.Domain,
			"givenName", u.GivenName,
			"sn", u.FamilyName,
			"objectGUID", binGUID(UUID("user", u.UserName)),
			"objectSid", binSID(1100 + i),
		}
		attrs = d.adUserAttrs(attrs, u)
		attrs = append(attrs, "userAccountControl", uac)
		w.entry(adUserDN(u, baseDN), attrs...)
	}
	w.entry("CN=WS-0042,"+baseDN,
		"objectClass", "top", "objectClass", "person", "objectClass", "organizationalPerson", "objectClass", "user", "objectClass", "computer",
		"cn", "WS-0042", "sAMAccountName", "WS-0042$", "userAccountControl", "4096",
		"objectGUID", binGUID(UUID("computer", "WS-0042")))
	for _, g := range d.Groups {
		attrs := []string{"objectClass", "top", "objectClass", "group", "cn", g.Name, "sAMAccountName", g.Name,
			"groupType", "-2147483646", "objectGUID", binGUID(UUID("group", g.Name))}
		for _, m := range g.Users {
			attrs = append(attrs, "member", adUserDN(*d.User(m), baseDN))
		}
		for _, c := range g.Groups {
			attrs = append(attrs, "member", adGroupDN(c, baseDN))
		}
		w.entry(adGroupDN(g.Name, baseDN), attrs...)
	}
	return b.String()
}

func (d *Directory) adUserAttrs(attrs []string, u User) []string {
	if !u.NoDisplayName {
		attrs = append(attrs, "displayName", u.DisplayName)
	}
	for i, m := range u.Emails {
		if i == 0 {
			attrs = append(attrs, "mail", m)
		} else {
			attrs = append(attrs, "otherMailbox", m)
		}
	}
	for _, p := range u.Phones {
		attrs = append(attrs, phoneAttr(p.Type), p.Value)
	}
	attrs = appendIf(attrs, "title", u.Title)
	attrs = appendIf(attrs, "department", u.Department)
	attrs = appendIf(attrs, "employeeNumber", u.EmployeeNumber)
	return attrs
}

func adUserDN(u User, baseDN string) string {
	return "CN=" + escapeDNValue(u.DisplayName) + "," + baseDN
}

func adGroupDN(name, baseDN string) string { return "CN=" + escapeDNValue(name) + "," + baseDN }

// ScimmySeed renders the directory as the scimmy peer's seed: SCIM Users (ids from UUID, the
// enterprise extension with department and employeeNumber, emails with the first primary,
// phoneNumbers, active) and Groups with typed members.
func (d *Directory) ScimmySeed() ([]byte, error) {
	type multi struct {
		Value   string `json:"value"`
		Type    string `json:"type,omitempty"`
		Primary bool   `json:"primary,omitempty"`
	}
	type member struct {
		Value string `json:"value"`
		Type  string `json:"type"`
	}
	users := make([]map[string]any, 0, len(d.Users))
	for _, u := range d.Users {
		emails := []multi{}
		for i, m := range u.Emails {
			emails = append(emails, multi{Value: m, Type: "work", Primary: i == 0})
		}
		phones := []multi{}
		for i, p := range u.Phones {
			phones = append(phones, multi{Value: p.Value, Type: p.Type, Primary: i == 0})
		}
		su := map[string]any{
			"schemas":      []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
			"id":           UUID("user", u.UserName).String(),
			"externalId":   u.EmployeeNumber,
			"userName":     u.UserName,
			"name":         map[string]string{"givenName": u.GivenName, "familyName": u.FamilyName, "formatted": u.DisplayName},
			"active":       !u.Inactive,
			"emails":       emails,
			"phoneNumbers": phones,
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]string{
				"department": u.Department, "employeeNumber": u.EmployeeNumber,
			},
		}
		if !u.NoDisplayName {
			su["displayName"] = u.DisplayName
		}
		if u.Title != "" {
			su["title"] = u.Title
		}
		users = append(users, su)
	}
	groups := make([]map[string]any, 0, len(d.Groups))
	for _, g := range d.Groups {
		members := []member{}
		for _, m := range g.Users {
			members = append(members, member{Value: UUID("user", m).String(), Type: "User"})
		}
		for _, c := range g.Groups {
			members = append(members, member{Value: UUID("group", c).String(), Type: "Group"})
		}
		groups = append(groups, map[string]any{
			"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
			"id":          UUID("group", g.Name).String(),
			"displayName": g.Name,
			"members":     members,
		})
	}
	return json.MarshalIndent(map[string]any{"users": users, "groups": groups}, "", "  ")
}

// PhoneAttributes are the LDAP attributes the renderings put phones in, by type: the
// attributes.phone setting with which an LDAP or LDIF source reads them all.
func PhoneAttributes() []string {
	return []string{"telephoneNumber", "mobile", "homePhone", "facsimileTelephoneNumber", "pager"}
}

func phoneAttr(typ string) string {
	switch typ {
	case "mobile":
		return "mobile"
	case "home":
		return "homePhone"
	case "fax":
		return "facsimileTelephoneNumber"
	case "pager":
		return "pager"
	}
	return "telephoneNumber"
}

func appendIf(attrs []string, name, value string) []string {
	if value == "" {
		return attrs
	}
	return append(attrs, name, value)
}

// binGUID returns the 16 bytes AD stores for a GUID whose canonical string is id.String():
// the first three groups little-endian.
func binGUID(id uuid.UUID) string {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint32(b[0:4], binary.BigEndian.Uint32(id[0:4]))
	binary.LittleEndian.PutUint16(b[4:6], binary.BigEndian.Uint16(id[4:6]))
	binary.LittleEndian.PutUint16(b[6:8], binary.BigEndian.Uint16(id[6:8]))
	copy(b[8:], id[8:])
	return string(b)
}

// binSID returns a binary SID S-1-5-21-1-2-3-rid.
func binSID(rid int) string {
	b := []byte{1, 4, 0, 0, 0, 0, 0, 5}
	for _, sub := range []uint32{21, 1, 2, uint32(rid)} {
		b = binary.LittleEndian.AppendUint32(b, sub)
	}
	return string(b)
}

// adPassword encodes a password as AD's unicodePwd wants it: the quoted string in UTF-16LE.
func adPassword(pw string) string {
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 0, 2*len(u))
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return string(b)
}

// escapeDNValue escapes an attribute value for use in a DN (RFC 4514).
func escapeDNValue(v string) string {
	var b strings.Builder
	for i, r := range v {
		switch {
		case strings.ContainsRune(`,+"\<>;=`, r), r == '#' && i == 0, r == ' ' && (i == 0 || i == len(v)-1):
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ExportLDIF writes entries read from a server as an export of them (ldapsearch -LLL,
// slapcat) does: one record per entry, attributes in the order the server sent them, values
// that are not SAFE-STRINGs (binary GUIDs and SIDs, non-ASCII text) in base64.
func ExportLDIF(entries []*ldap.Entry) string {
	var b strings.Builder
	b.WriteString("version: 1\n\n")
	w := ldifWriter{&b}
	for _, e := range entries {
		w.line("dn", e.DN)
		for _, a := range e.Attributes {
			for _, v := range a.ByteValues {
				w.line(a.Name, string(v))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// ldifWriter writes LDIF records, base64-encoding values that are not SAFE-STRINGs (RFC 2849)
// and folding lines longer than 76 characters.
type ldifWriter struct{ b *strings.Builder }

func (w ldifWriter) entry(dn string, attrs ...string) {
	w.line("dn", dn)
	for i := 0; i+1 < len(attrs); i += 2 {
		w.line(attrs[i], attrs[i+1])
	}
	w.b.WriteString("\n")
}

func (w ldifWriter) line(name, value string) {
	var l string
	if safeString(value) {
		l = name + ": " + value
	} else {
		l = name + ":: " + base64.StdEncoding.EncodeToString([]byte(value))
	}
	for len(l) > 76 {
		w.b.WriteString(l[:76])
		w.b.WriteString("\n ")
		l = l[76:]
	}
	w.b.WriteString(l)
	w.b.WriteString("\n")
}

func safeString(v string) bool {
	if v == "" {
		return true
	}
	if v[0] == ' ' || v[0] == ':' || v[0] == '<' || v[len(v)-1] == ' ' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == 0 || c == '\n' || c == '\r' || c > 127 {
			return false
		}
	}
	return true
}

// Snapshot returns the directory as a resolved directory.Snapshot, as a perfect source would
// read it (ids from UUID, phones and e-mails typed like the renderings, attributes "title",
// "department" and "employeenumber"). Handy as input for tests of code downstream of sources.
func (d *Directory) Snapshot() *directory.Snapshot {
	snap := &directory.Snapshot{Source: "directorytest", ReadAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, u := range d.Users {
		du := directory.User{
			ID: UUID("user", u.UserName).String(), UserName: u.UserName, DisplayName: u.DisplayName,
			GivenName: u.GivenName, FamilyName: u.FamilyName, Active: !u.Inactive,
			Attributes: map[string][]string{},
		}
		for i, e := range u.Emails {
			du.Emails = append(du.Emails, directory.Email{Value: e, Type: "work", Primary: i == 0})
		}
		for i, p := range u.Phones {
			du.Phones = append(du.Phones, directory.Phone{Value: p.Value, Type: p.Type, Primary: i == 0})
		}
		for _, a := range []string{"title", "department", "employeeNumber"} {
			if v := u.Attr(a); v != "" {
				du.Attributes[strings.ToLower(a)] = []string{v}
			}
		}
		snap.Users = append(snap.Users, du)
	}
	for _, g := range d.Groups {
		dg := directory.Group{ID: UUID("group", g.Name).String(), Name: g.Name}
		for _, m := range g.Users {
			dg.MemberUsers = append(dg.MemberUsers, UUID("user", m).String())
		}
		for _, c := range g.Groups {
			dg.MemberGroups = append(dg.MemberGroups, UUID("group", c).String())
		}
		snap.Groups = append(snap.Groups, dg)
	}
	snap.Resolve()
	return snap
}
