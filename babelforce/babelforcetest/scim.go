package babelforcetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/babelforce/bridge/babelforce"
)

const scimContentType = "application/scim+json"

type scimError struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	SCIMType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

func writeSCIMError(w http.ResponseWriter, status int, scimType, detail string) {
	writeTyped(w, scimContentType, status, scimError{
		Schemas: []string{babelforce.SCIMErrorSchema}, Status: strconv.Itoa(status), SCIMType: scimType, Detail: detail,
	})
}

// scimTypeFor maps the simulator's internal error codes to RFC 7644 scimType values.
func scimTypeFor(code string) string {
	switch code {
	case "conflict":
		return "uniqueness"
	case "validation_error":
		return "invalidValue"
	case "bad_request":
		return "invalidSyntax"
	case "invalidFilter", "invalidPath", "invalidValue", "invalidSyntax", "mutability", "noTarget", "uniqueness", "tooMany":
		return code
	}
	return ""
}

type scimErr struct {
	status   int
	scimType string
	detail   string
}

func scimBad(scimType, format string, args ...any) *scimErr {
	return &scimErr{status: http.StatusBadRequest, scimType: scimType, detail: fmt.Sprintf(format, args...)}
}

func (e *scimErr) write(w http.ResponseWriter) { writeSCIMError(w, e.status, e.scimType, e.detail) }

// ---- rendering ----

func (s *Server) scimUserLocked(u *userRec, base string) babelforce.SCIMUser {
	active := u.enabled
	out := babelforce.SCIMUser{
		Schemas:      []string{babelforce.SCIMUserSchema},
		ID:           u.id,
		ExternalID:   u.externalID,
		UserName:     u.email,
		DisplayName:  u.displayName,
		PhoneNumbers: slices.Clone(u.phones),
		Active:       &active,
		Meta: &babelforce.SCIMMeta{
			ResourceType: "User",
			Created:      u.created,
			LastModified: u.updated,
			Location:     base + "/auth/scim/v2/Users/" + u.id,
			Version:      fmt.Sprintf(`W/"%d"`, u.version),
		},
	}
	if u.name != nil {
		n := *u.name
		out.Name = &n
	}
	if len(u.emails) > 0 {
		out.Emails = slices.Clone(u.emails)
	} else {
		out.Emails = []babelforce.SCIMValue{{Value: u.email, Type: "work", Primary: true}}
	}
	for _, r := range u.roles {
		out.Roles = append(out.Roles, babelforce.SCIMValue{Value: r})
	}
	return out
}

// ---- input ----

// parseValues reads a SCIM multi-valued attribute leniently: an array of objects (primary as
// a boolean or a "true"/"false" string), a single object, or strings.
func parseValues(attr string, v any) ([]babelforce.SCIMValue, *scimErr) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	var out []babelforce.SCIMValue
	for i, item := range list {
		switch it := item.(type) {
		case string:
			out = append(out, babelforce.SCIMValue{Value: it})
		case map[string]any:
			var sv babelforce.SCIMValue
			for k, x := range it {
				switch strings.ToLower(k) {
				case "value":
					s, ok := x.(string)
					if !ok {
						return nil, scimBad("invalidValue", "%s[%d].value must be a string", attr, i)
					}
					sv.Value = s
				case "type":
					sv.Type, _ = x.(string)
				case "display":
					sv.Display, _ = x.(string)
				case "primary":
					b, err := boolish(x)
					if err != nil {
						return nil, scimBad("invalidValue", "%s[%d].primary: %v", attr, i, err)
					}
					sv.Primary = b
				}
			}
			out = append(out, sv)
		default:
			return nil, scimBad("invalidValue", "%s[%d] must be an object with a value", attr, i)
		}
	}
	return out, nil
}

func boolish(v any) (bool, error) {
	switch b := v.(type) {
	case bool:
		return b, nil
	case string:
		switch strings.ToLower(b) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("want true or false, got %v", v)
}

func stringish(attr string, v any) (string, *scimErr) {
	if v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", scimBad("invalidValue", "%s must be a string", attr)
	}
	return s, nil
}

// ignoredAttrs are RFC 7643 User attributes babelforce has no place for; setting them is
// accepted and has no effect.
var ignoredAttrs = map[string]bool{
	"nickname": true, "profileurl": true, "title": true, "usertype": true, "preferredlanguage": true,
	"locale": true, "timezone": true, "addresses": true, "ims": true, "photos": true,
	"x509certificates": true, "entitlements": true, "groups": true, "password": true,
	"schemas": true, "meta": true, "id": true,
}

// setAttr applies one attribute (path without value filter) to u. Callers hold s.mu.
func (s *Server) setAttr(u *userRec, attr string, v any, rolesOn bool) *scimErr {
	attr = strings.TrimPrefix(attr, babelforce.SCIMUserSchema+":")
	if strings.HasPrefix(attr, "urn:") {
		return nil // extension attributes (enterprise user) are accepted and ignored
	}
	switch strings.ToLower(attr) {
	case "username":
		str, err := stringish("userName", v)
		if err != nil {
			return err
		}
		str = strings.ToLower(strings.TrimSpace(str))
		if str == "" {
			return scimBad("invalidValue", "userName must not be empty")
		}
		u.email = str
	case "externalid":
		return setString(&u.externalID, "externalId", v)
	case "displayname":
		return setString(&u.displayName, "displayName", v)
	case "active":
		if v == nil {
			u.enabled = true
			return nil
		}
		b, err := boolish(v)
		if err != nil {
			return scimBad("invalidValue", "active: %v", err)
		}
		u.enabled = b
	case "name":
		if v == nil {
			u.name = nil
			return nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return scimBad("invalidValue", "name must be an object")
		}
		u.name = &babelforce.SCIMName{}
		for k, x := range m {
			if err := s.setAttr(u, "name."+k, x, rolesOn); err != nil {
				return err
			}
		}
	case "name.givenname", "name.familyname", "name.formatted":
		if u.name == nil {
			u.name = &babelforce.SCIMName{}
		}
		dst := map[string]*string{"name.givenname": &u.name.GivenName, "name.familyname": &u.name.FamilyName, "name.formatted": &u.name.Formatted}
		return setString(dst[strings.ToLower(attr)], attr, v)
	case "name.middlename", "name.honorificprefix", "name.honorificsuffix":
	case "emails":
		vals, err := parseValues("emails", v)
		if err != nil {
			return err
		}
		u.emails = vals
	case "phonenumbers":
		vals, err := parseValues("phoneNumbers", v)
		if err != nil {
			return err
		}
		u.phones = vals
	case "roles":
		if !rolesOn {
			return nil
		}
		vals, err := parseValues("roles", v)
		if err != nil {
			return err
		}
		roles, verr := roleValues(vals)
		if verr != nil {
			return verr
		}
		u.roles = roles
	default:
		if ignoredAttrs[strings.ToLower(attr)] {
			return nil
		}
		return scimBad("invalidPath", "attribute %q is not supported", attr)
	}
	return nil
}

// setString stores v, which must be a string or null (""), in *dst.
func setString(dst *string, attr string, v any) *scimErr {
	str, err := stringish(attr, v)
	if err != nil {
		return err
	}
	*dst = str
	return nil
}

func roleValues(vals []babelforce.SCIMValue) ([]string, *scimErr) {
	var roles []string
	for _, v := range vals {
		roles = addUnique(roles, v.Value)
	}
	if err := validRoles(roles); err != nil {
		return nil, scimBad("invalidValue", "roles: %v", err)
	}
	return roles, nil
}

// checkUniqueLocked answers 409 when another user holds u's userName.
func (s *Server) checkUniqueLocked(u *userRec) *scimErr {
	if o := s.userByEmailLocked(u.email); o != nil && o.id != u.id {
		return &scimErr{status: http.StatusConflict, scimType: "uniqueness", detail: fmt.Sprintf("userName %q is already taken (id %s)", u.email, o.id)}
	}
	return nil
}

func (s *Server) decodeSCIM(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	var body map[string]any
	if !s.decodeJSON(w, r, &body) {
		return nil, false
	}
	if body == nil {
		writeSCIMError(w, http.StatusBadRequest, "invalidSyntax", "request body must be a JSON object")
		return nil, false
	}
	return body, true
}

func hasSchema(body map[string]any, schema string) bool {
	list, _ := body["schemas"].([]any)
	for _, x := range list {
		if s, _ := x.(string); strings.EqualFold(s, schema) {
			return true
		}
	}
	return false
}

// fillUser applies a full SCIM resource (POST, PUT) to u.
func (s *Server) fillUser(u *userRec, body map[string]any) *scimErr {
	if !hasSchema(body, babelforce.SCIMUserSchema) {
		return scimBad("invalidSyntax", "schemas must include %s", babelforce.SCIMUserSchema)
	}
	if un, _ := body["userName"].(string); strings.TrimSpace(un) == "" {
		return scimBad("invalidValue", "userName is required (the user's e-mail)")
	}
	rolesOn := s.scimConfig.Features.Roles
	for k, v := range body {
		if err := s.setAttr(u, k, v, rolesOn); err != nil {
			return err
		}
	}
	if !validEmail(u.email) {
		return scimBad("invalidValue", "userName %q must be an e-mail address", u.email)
	}
	return nil
}

// scimFindLocked returns the user with the id, or answers a SCIM 404 and returns nil.
func (s *Server) scimFindLocked(w http.ResponseWriter, id string) *userRec {
	u := s.users[id]
	if u == nil {
		writeSCIMError(w, http.StatusNotFound, "", fmt.Sprintf("user %q not found", id))
	}
	return u
}

func (s *Server) scimEnabled(w http.ResponseWriter) bool {
	s.mu.Lock()
	on := s.scimConfig.Features.SCIM
	s.mu.Unlock()
	if !on {
		writeSCIMError(w, http.StatusForbidden, "", "SCIM is disabled in this account's SCIM configuration (features.scim)")
	}
	return on
}

// ---- handlers ----

var filterRE = regexp.MustCompile(`^\s*([A-Za-z][A-Za-z0-9._:-]*)\s+(?i:eq)\s+"((?:[^"\\]|\\.)*)"\s*$`)

func (s *Server) scimList(w http.ResponseWriter, r *http.Request, _ params) {
	if !s.scimEnabled(w) {
		return
	}
	q := r.URL.Query()
	start, count := 1, s.opts.MaxPageSize
	if v := q.Get("startIndex"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeSCIMError(w, http.StatusBadRequest, "invalidValue", fmt.Sprintf("startIndex %q must be an integer", v))
			return
		}
		start = max(n, 1)
	}
	if v := q.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeSCIMError(w, http.StatusBadRequest, "invalidValue", fmt.Sprintf("count %q must be an integer", v))
			return
		}
		count = min(max(n, 0), s.opts.MaxPageSize)
	}
	var attr, want string
	if f := q.Get("filter"); f != "" {
		m := filterRE.FindStringSubmatch(f)
		if m == nil {
			writeSCIMError(w, http.StatusBadRequest, "invalidFilter", fmt.Sprintf("filter %q is not supported: the simulator understands attribute eq \"value\"", f))
			return
		}
		attr = strings.ToLower(strings.TrimPrefix(m[1], babelforce.SCIMUserSchema+":"))
		unq, err := strconv.Unquote(`"` + m[2] + `"`)
		if err != nil {
			writeSCIMError(w, http.StatusBadRequest, "invalidFilter", fmt.Sprintf("filter value in %q: %v", f, err))
			return
		}
		want = unq
		switch attr {
		case "username", "externalid", "id", "emails.value", "emails", "displayname":
		default:
			writeSCIMError(w, http.StatusBadRequest, "invalidFilter", fmt.Sprintf("filtering on %q is not supported (use userName, externalId, id, emails.value or displayName)", m[1]))
			return
		}
	}
	base := s.baseURL(r)
	s.mu.Lock()
	// Render only the page. userName, externalId and id are looked up in an index; with no filter the page is
	// cut from the creation order.
	candidates := s.userOrder
	switch attr {
	case "username":
		candidates = s.usersByEmail[strings.ToLower(want)]
	case "externalid":
		candidates = s.usersByExt[want]
	case "id":
		candidates = nil
		if u := s.users[want]; u != nil {
			candidates = seqList[*userRec]{u}
		}
	}
	matched := []*userRec(candidates)
	if attr == "displayname" || attr == "emails.value" || attr == "emails" {
		matched = nil
	} else {
		candidates = nil
	}
	for _, u := range candidates {
		match := true
		switch attr {
		case "displayname":
			match = u.displayName == want
		case "emails.value", "emails":
			su := s.scimUserLocked(u, base)
			match = slices.ContainsFunc(su.Emails, func(e babelforce.SCIMValue) bool { return strings.EqualFold(e.Value, want) })
		}
		if match {
			matched = append(matched, u)
		}
	}
	from := min(start-1, len(matched))
	to := min(from+count, len(matched))
	page := make([]babelforce.SCIMUser, 0, to-from)
	for _, u := range matched[from:to] {
		page = append(page, s.scimUserLocked(u, base))
	}
	total := len(matched)
	s.mu.Unlock()
	writeTyped(w, scimContentType, http.StatusOK, map[string]any{
		"schemas":      []string{babelforce.SCIMListSchema},
		"totalResults": total,
		"startIndex":   start,
		"itemsPerPage": len(page),
		"Resources":    page,
	})
}

func (s *Server) scimCreate(w http.ResponseWriter, r *http.Request, _ params) {
	if !s.scimEnabled(w) {
		return
	}
	body, ok := s.decodeSCIM(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.stamp()
	u := &userRec{id: newID(), enabled: true, activated: true, created: now, updated: now, version: 1}
	if err := s.fillUser(u, body); err != nil {
		err.write(w)
		return
	}
	if _, given := body["roles"]; !given || !s.scimConfig.Features.Roles {
		u.roles = slices.Clone(s.scimConfig.DefaultRoles)
	}
	if err := s.checkUniqueLocked(u); err != nil {
		err.write(w)
		return
	}
	s.addUserLocked(u)
	w.Header().Set("Location", s.baseURL(r)+"/auth/scim/v2/Users/"+u.id)
	writeTyped(w, scimContentType, http.StatusCreated, s.scimUserLocked(u, s.baseURL(r)))
}

func (s *Server) scimGet(w http.ResponseWriter, r *http.Request, p params) {
	if !s.scimEnabled(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.scimFindLocked(w, p["id"])
	if u == nil {
		return
	}
	writeTyped(w, scimContentType, http.StatusOK, s.scimUserLocked(u, s.baseURL(r)))
}

func (s *Server) scimReplace(w http.ResponseWriter, r *http.Request, p params) {
	if !s.scimEnabled(w) {
		return
	}
	body, ok := s.decodeSCIM(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.scimFindLocked(w, p["id"])
	if u == nil {
		return
	}
	// PUT replaces: attributes not given are cleared (roles kept when the body has none).
	next := &userRec{id: u.id, enabled: true, activated: u.activated, created: u.created, version: u.version,
		roles: slices.Clone(u.roles), passwordResets: u.passwordResets}
	if err := s.fillUser(next, body); err != nil {
		err.write(w)
		return
	}
	if err := s.checkUniqueLocked(next); err != nil {
		err.write(w)
		return
	}
	s.replaceUserLocked(u, *next)
	s.touchLocked(u)
	writeTyped(w, scimContentType, http.StatusOK, s.scimUserLocked(u, s.baseURL(r)))
}

var valuePathRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9]*)\[\s*([A-Za-z][A-Za-z0-9]*)\s+(?i:eq)\s+("(?:[^"\\]|\\.)*"|true|false)\s*\](?:\.([A-Za-z][A-Za-z0-9]*))?$`)

func (s *Server) scimPatch(w http.ResponseWriter, r *http.Request, p params) {
	if !s.scimEnabled(w) {
		return
	}
	body, ok := s.decodeSCIM(w, r)
	if !ok {
		return
	}
	if !hasSchema(body, babelforce.SCIMPatchOpSchema) {
		writeSCIMError(w, http.StatusBadRequest, "invalidSyntax", "schemas must include "+babelforce.SCIMPatchOpSchema)
		return
	}
	ops, _ := body["Operations"].([]any)
	if len(ops) == 0 {
		writeSCIMError(w, http.StatusBadRequest, "invalidSyntax", "Operations must be a non-empty array")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.scimFindLocked(w, p["id"])
	if u == nil {
		return
	}
	next := *u
	next.roles = slices.Clone(u.roles)
	next.phones = slices.Clone(u.phones)
	next.emails = slices.Clone(u.emails)
	if u.name != nil {
		n := *u.name
		next.name = &n
	}
	for i, raw := range ops {
		op, ok := raw.(map[string]any)
		if !ok {
			writeSCIMError(w, http.StatusBadRequest, "invalidSyntax", fmt.Sprintf("Operations[%d] must be an object", i))
			return
		}
		if err := s.applyPatchOp(&next, op); err != nil {
			err.detail = fmt.Sprintf("Operations[%d]: %s", i, err.detail)
			err.write(w)
			return
		}
	}
	if !validEmail(next.email) {
		writeSCIMError(w, http.StatusBadRequest, "invalidValue", fmt.Sprintf("userName %q must be an e-mail address", next.email))
		return
	}
	if err := s.checkUniqueLocked(&next); err != nil {
		err.write(w)
		return
	}
	s.replaceUserLocked(u, next)
	s.touchLocked(u)
	writeTyped(w, scimContentType, http.StatusOK, s.scimUserLocked(u, s.baseURL(r)))
}

func (s *Server) applyPatchOp(u *userRec, op map[string]any) *scimErr {
	kind, _ := op["op"].(string)
	kind = strings.ToLower(kind)
	path, _ := op["path"].(string)
	path = strings.TrimPrefix(strings.TrimSpace(path), babelforce.SCIMUserSchema+":")
	value := op["value"]
	rolesOn := s.scimConfig.Features.Roles
	switch kind {
	case "add", "replace":
	case "remove":
		if path == "" {
			return scimBad("noTarget", "remove needs a path")
		}
	default:
		return scimBad("invalidSyntax", "op %q must be add, replace or remove", op["op"])
	}

	if path == "" {
		m, ok := value.(map[string]any)
		if !ok {
			return scimBad("invalidValue", "%s without a path needs an object value", kind)
		}
		for k, v := range m {
			if err := s.patchAttr(u, kind, k, v, rolesOn); err != nil {
				return err
			}
		}
		return nil
	}
	if m := valuePathRE.FindStringSubmatch(path); m != nil {
		return s.patchFiltered(u, kind, m[1], m[2], m[3], m[4], value, rolesOn)
	}
	return s.patchAttr(u, kind, path, value, rolesOn)
}

// patchAttr applies add/replace/remove of a plain attribute path.
func (s *Server) patchAttr(u *userRec, kind, attr string, v any, rolesOn bool) *scimErr {
	lower := strings.ToLower(strings.TrimPrefix(attr, babelforce.SCIMUserSchema+":"))
	multi := lower == "roles" || lower == "phonenumbers" || lower == "emails"
	switch {
	case kind == "remove" && multi && v != nil:
		// remove with a value: drop the listed values (Azure AD style).
		vals, err := parseValues(attr, v)
		if err != nil {
			return err
		}
		drop := func(list []babelforce.SCIMValue) []babelforce.SCIMValue {
			return slices.DeleteFunc(list, func(x babelforce.SCIMValue) bool {
				return slices.ContainsFunc(vals, func(y babelforce.SCIMValue) bool { return y.Value == x.Value })
			})
		}
		switch lower {
		case "roles":
			if rolesOn {
				u.roles = slices.DeleteFunc(u.roles, func(r string) bool {
					return slices.ContainsFunc(vals, func(y babelforce.SCIMValue) bool { return y.Value == r })
				})
			}
		case "phonenumbers":
			u.phones = drop(u.phones)
		case "emails":
			u.emails = drop(u.emails)
		}
		return nil
	case kind == "remove":
		if lower == "username" {
			return &scimErr{status: http.StatusBadRequest, scimType: "mutability", detail: "userName is required and cannot be removed"}
		}
		return s.setAttr(u, attr, nil, rolesOn)
	case kind == "add" && multi:
		vals, err := parseValues(attr, v)
		if err != nil {
			return err
		}
		switch lower {
		case "roles":
			if !rolesOn {
				return nil
			}
			roles, verr := roleValues(vals)
			if verr != nil {
				return verr
			}
			u.roles = addUnique(u.roles, roles...)
		case "phonenumbers":
			u.phones = mergeValues(u.phones, vals)
		case "emails":
			u.emails = mergeValues(u.emails, vals)
		}
		return nil
	case (kind == "add" || kind == "replace") && lower == "name" && v != nil:
		// RFC 7644 §3.5.2.3: sub-attributes not in value are left unchanged.
		m, ok := v.(map[string]any)
		if !ok {
			return scimBad("invalidValue", "name must be an object")
		}
		for k, x := range m {
			if err := s.setAttr(u, "name."+k, x, rolesOn); err != nil {
				return err
			}
		}
		return nil
	}
	return s.setAttr(u, attr, v, rolesOn)
}

// mergeValues adds vals, replacing an entry of the same type (or same value when untyped).
func mergeValues(list, vals []babelforce.SCIMValue) []babelforce.SCIMValue {
	for _, v := range vals {
		i := slices.IndexFunc(list, func(x babelforce.SCIMValue) bool {
			if v.Type != "" {
				return strings.EqualFold(x.Type, v.Type)
			}
			return x.Value == v.Value
		})
		if i >= 0 {
			list[i] = v
		} else {
			list = append(list, v)
		}
	}
	return list
}

// patchFiltered handles attr[sub eq "x"](.subAttr) paths on roles, emails and phoneNumbers.
func (s *Server) patchFiltered(u *userRec, kind, attr, fattr, fval, sub string, v any, rolesOn bool) *scimErr {
	want := strings.Trim(fval, `"`)
	match := func(x babelforce.SCIMValue) bool {
		switch strings.ToLower(fattr) {
		case "value":
			return x.Value == want
		case "type":
			return strings.EqualFold(x.Type, want)
		case "primary":
			return strconv.FormatBool(x.Primary) == want
		}
		return false
	}
	switch strings.ToLower(fattr) {
	case "value", "type", "primary":
	default:
		return scimBad("invalidFilter", "value filter on %q is not supported (use value, type or primary)", fattr)
	}
	var list *[]babelforce.SCIMValue
	var roleVals []babelforce.SCIMValue
	switch strings.ToLower(attr) {
	case "phonenumbers":
		list = &u.phones
	case "emails":
		list = &u.emails
	case "roles":
		if !rolesOn {
			return nil
		}
		for _, r := range u.roles {
			roleVals = append(roleVals, babelforce.SCIMValue{Value: r})
		}
		list = &roleVals
		defer func() {
			u.roles = nil
			for _, r := range roleVals {
				u.roles = addUnique(u.roles, r.Value)
			}
		}()
	default:
		return scimBad("invalidPath", "value filters are supported on roles, emails and phoneNumbers, not %q", attr)
	}
	if kind == "remove" {
		if sub == "" {
			*list = slices.DeleteFunc(*list, match)
		} else {
			for i := range *list {
				if match((*list)[i]) && strings.EqualFold(sub, "value") {
					(*list)[i].Value = ""
				}
			}
			*list = slices.DeleteFunc(*list, func(x babelforce.SCIMValue) bool { return x.Value == "" })
		}
		return nil
	}
	// add/replace
	idx := slices.IndexFunc(*list, match)
	if sub == "" {
		vals, err := parseValues(attr, v)
		if err != nil {
			return err
		}
		if len(vals) != 1 {
			return scimBad("invalidValue", "%s needs exactly one value", attr)
		}
		if idx >= 0 {
			(*list)[idx] = vals[0]
		} else {
			*list = append(*list, vals[0])
		}
	} else {
		str, err := stringish(attr+"."+sub, v)
		if err != nil {
			return err
		}
		if idx < 0 {
			nv := babelforce.SCIMValue{}
			if strings.EqualFold(fattr, "type") {
				nv.Type = want
			}
			*list = append(*list, nv)
			idx = len(*list) - 1
		}
		switch strings.ToLower(sub) {
		case "value":
			(*list)[idx].Value = str
		case "display":
			(*list)[idx].Display = str
		case "type":
			(*list)[idx].Type = str
		default:
			return scimBad("invalidPath", "sub-attribute %q is not supported", sub)
		}
	}
	if strings.EqualFold(attr, "roles") {
		for _, rv := range roleVals {
			if err := validRoles([]string{rv.Value}); err != nil {
				return scimBad("invalidValue", "roles: %v", err)
			}
		}
	}
	return nil
}

func (s *Server) scimDelete(w http.ResponseWriter, r *http.Request, p params) {
	if !s.scimEnabled(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scimFindLocked(w, p["id"]) == nil {
		return
	}
	s.deleteUserLocked(p["id"])
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) scimServiceProviderConfig(w http.ResponseWriter, r *http.Request, _ params) {
	writeTyped(w, scimContentType, http.StatusOK, map[string]any{
		"schemas":          []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"documentationUri": "https://help.babelforce.com",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": s.opts.MaxPageSize},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": false},
		"authenticationSchemes": []map[string]any{{
			"type": "oauthbearertoken", "name": "OAuth Bearer Token",
			"description": "Authentication with a long-lived bearer token",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": s.baseURL(r) + "/auth/scim/v2/ServiceProviderConfig"},
	})
}

func (s *Server) scimGroups(w http.ResponseWriter, r *http.Request, _ params) {
	s.mu.Lock()
	on := s.scimConfig.Features.Groups
	s.mu.Unlock()
	if on {
		writeSCIMError(w, http.StatusNotImplemented, "", "SCIM groups are not implemented in the simulator")
		return
	}
	writeSCIMError(w, http.StatusNotImplemented, "", "SCIM groups are disabled for this account (features.groups is off)")
}

// ---- SCIM configuration ----

func (s *Server) getSCIMConfig(w http.ResponseWriter, r *http.Request, _ params) {
	writeJSON(w, http.StatusOK, s.SCIMConfiguration())
}

func (s *Server) putSCIMConfig(w http.ResponseWriter, r *http.Request, _ params) {
	var raw map[string]json.RawMessage
	if !s.decodeJSON(w, r, &raw) {
		return
	}
	var c babelforce.SCIMConfiguration
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &c); err != nil {
		s.writeError(w, r, http.StatusBadRequest, "validation_error", "configuration: "+err.Error())
		return
	}
	if _, ok := raw["features"]; !ok {
		s.writeError(w, r, http.StatusBadRequest, "validation_error", "features is required")
		return
	}
	if err := validRoles(c.DefaultRoles); err != nil {
		s.writeError(w, r, http.StatusBadRequest, "validation_error", "defaultRoles: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.SetSCIMConfiguration(c))
}
