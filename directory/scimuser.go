package directory

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// EnterpriseUserSchema is the URN of the SCIM enterprise user extension (RFC 7643 section 4.3).
const EnterpriseUserSchema = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// SCIMUser turns one SCIM 2.0 User resource (RFC 7643 section 4.1), decoded from JSON (numbers
// as json.Number or float64), into a User. The upstream SCIM source and the store of what IdPs
// push (directory/store) both use it, so the same SCIM user gives the same User wherever it
// comes from. Attribute names are matched ignoring case.
//
//   - id → ID, userName, externalId; displayName, else name.formatted, else given and family
//     name → DisplayName; name.givenName/familyName
//   - emails and phoneNumbers (value, type, primary) → Emails, Phones
//   - active: missing means true; JSON booleans and the strings "true"/"false" in any case
//     (Entra ID sends "True"/"False") are accepted; anything else sets Invalid (see below)
//   - groups with type "direct" or no type → Groups
//   - every attribute also goes into Attributes, flattened by FlattenSCIMUser.
//
// It fails when the id is missing; the User returned with that error is filled from everything
// else. An active that is not a boolean is no error of the read: the User is then not active
// and Invalid says why, so the mapping skips that one person and leaves their agent alone
// (neither provisioned nor switched off on a flag nobody can read).
func SCIMUser(doc map[string]any) (User, error) {
	str := func(m map[string]any, name string) string { return scimScalar(scimField(m, name)) }
	u := User{
		ID:          str(doc, "id"),
		UserName:    str(doc, "userName"),
		ExternalID:  str(doc, "externalId"),
		DisplayName: str(doc, "displayName"),
		Active:      true,
		Attributes:  FlattenSCIMUser(doc),
	}
	if name, ok := scimField(doc, "name").(map[string]any); ok {
		u.GivenName = str(name, "givenName")
		u.FamilyName = str(name, "familyName")
		if u.DisplayName == "" {
			u.DisplayName = str(name, "formatted")
		}
	}
	if u.DisplayName == "" {
		u.DisplayName = strings.TrimSpace(u.GivenName + " " + u.FamilyName)
	}
	for _, e := range scimMulti(scimField(doc, "emails")) {
		if v := str(e, "value"); v != "" {
			p, _ := scimBool(scimField(e, "primary"))
			u.Emails = append(u.Emails, Email{Value: v, Type: str(e, "type"), Primary: p})
		}
	}
	for _, e := range scimMulti(scimField(doc, "phoneNumbers")) {
		if v := str(e, "value"); v != "" {
			p, _ := scimBool(scimField(e, "primary"))
			u.Phones = append(u.Phones, Phone{Value: v, Type: str(e, "type"), Primary: p})
		}
	}
	for _, g := range scimMulti(scimField(doc, "groups")) {
		t := strings.ToLower(str(g, "type"))
		if v := str(g, "value"); v != "" && (t == "" || t == "direct") {
			u.Groups = append(u.Groups, v)
		}
	}
	active, ok := SCIMActive(scimField(doc, "active"))
	u.Active = active
	if !ok {
		u.Invalid = fmt.Sprintf("active is %s, not a boolean", scimShow(scimField(doc, "active")))
	}
	if u.ID == "" {
		return u, fmt.Errorf("user %q has no id", u.UserName)
	}
	return u, nil
}

// SCIMActive reads a SCIM "active" value: missing (nil) means true; JSON booleans and the
// strings "true"/"false" in any case are accepted. Anything else is not ok, and not active:
// bridge fails closed on an active flag it cannot read.
func SCIMActive(v any) (active, ok bool) {
	if v == nil {
		return true, true
	}
	return scimBool(v)
}

// scimShow shows a value that should have been something else, briefly.
func scimShow(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	if len(b) > 40 {
		b = append(b[:37], "..."...)
	}
	return string(b)
}

// FlattenSCIMUser turns a SCIM User resource into the attribute map of User: keys lower-cased
// SCIM paths (look-ups through User.Attr ignore case anyway), values without repeats, in the
// resource's order.
//
//   - simple attributes: "username", "title", "usertype", "active" ("true"/"false"),
//     "externalid", "id", ...
//   - sub-attributes of complex ones: "name.givenname", "name.formatted", ...; a complex one
//     with a "value" (manager) also holds that value under its own name
//   - multi-valued ones: "emails" (every value, else its "formatted"), "emails.work" (the
//     values of that type), "emails.primary" (the primary one); the other sub-attributes as
//     "addresses.locality" and "addresses.work.locality"; "groups" holds the group ids and
//     "groups.display" their names. The same for phoneNumbers, ims, photos, roles, ...
//   - schema extensions: "<urn>:<attribute>", e.g.
//     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department",
//     "…:manager" (the manager's id) and "…:manager.displayname"; for the enterprise extension
//     also the short alias "enterprise.department", "enterprise.employeenumber",
//     "enterprise.manager", "enterprise.manager.displayname", "enterprise.costcenter", ...
//   - never schemas, meta, password or a $ref.
func FlattenSCIMUser(doc map[string]any) map[string][]string {
	attrs := scimAttrs{}
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		lk := strings.ToLower(k)
		switch lk {
		case "schemas", "meta", "password":
			continue
		}
		if strings.HasPrefix(lk, "urn:") {
			attrs.flatten(k, doc[k], ":") // a schema extension: "<urn>:<attribute>"
			if lk == strings.ToLower(EnterpriseUserSchema) {
				attrs.flatten("enterprise", doc[k], ".")
			}
			continue
		}
		attrs.flatten(k, doc[k], ".")
	}
	return attrs
}

// scimAttrs collects flattened attributes.
type scimAttrs map[string][]string

// add appends the non-empty values not yet under key (lower-cased).
func (a scimAttrs) add(key string, vals ...string) {
	key = strings.ToLower(key)
	for _, v := range vals {
		if v != "" && !slices.Contains(a[key], v) {
			a[key] = append(a[key], v)
		}
	}
}

// flatten adds the values under key (and below it); sep joins key and the names of its
// sub-attributes (":" below an extension URN, "." elsewhere).
func (a scimAttrs) flatten(key string, v any, sep string) {
	switch x := v.(type) {
	case map[string]any:
		// e.g. manager: {value, displayName, $ref}: the key itself holds the value.
		a.add(key, scimScalar(scimField(x, "value")))
		for _, sub := range slices.Sorted(maps.Keys(x)) {
			if sub != "$ref" {
				a.flatten(key+sep+sub, x[sub], ".")
			}
		}
	case []any:
		for _, item := range x {
			if obj, ok := item.(map[string]any); ok {
				a.multiValue(key, obj)
			} else {
				a.add(key, scimScalars(item)...)
			}
		}
	default:
		a.add(key, scimScalar(x))
	}
}

// multiValue adds one entry of a multi-valued attribute such as emails.
func (a scimAttrs) multiValue(key string, obj map[string]any) {
	typ := scimScalar(scimField(obj, "type"))
	val := scimScalar(scimField(obj, "value"))
	if val == "" {
		val = scimScalar(scimField(obj, "formatted")) // addresses have no value
	}
	a.add(key, val)
	if typ != "" {
		a.add(key+"."+typ, val)
	}
	if primary, _ := scimBool(scimField(obj, "primary")); primary {
		a.add(key+".primary", val)
	}
	for _, sub := range slices.Sorted(maps.Keys(obj)) {
		switch strings.ToLower(sub) {
		case "value", "type", "primary", "$ref":
			continue
		}
		vals := scimScalars(obj[sub])
		a.add(key+"."+sub, vals...)
		if typ != "" {
			a.add(key+"."+typ+"."+sub, vals...)
		}
	}
}

// scimField returns m[name], else the value of a key equal to name ignoring case, else nil.
func scimField(m map[string]any, name string) any {
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

func scimMulti(v any) []map[string]any {
	list, _ := v.([]any)
	out := make([]map[string]any, 0, len(list))
	for _, item := range list {
		if m, ok := item.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// scimScalar renders a string, boolean or number; "" for anything else.
func scimScalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	}
	return ""
}

// scimScalars renders a scalar or the scalars of a (nested) list.
func scimScalars(v any) []string {
	list, ok := v.([]any)
	if !ok {
		return []string{scimScalar(v)}
	}
	var out []string
	for _, e := range list {
		out = append(out, scimScalars(e)...)
	}
	return out
}

// scimBool accepts JSON booleans and the strings "true"/"false" in any case (Entra ID sends
// "True"/"False").
func scimBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(x))
		return b, err == nil
	}
	return false, false
}
