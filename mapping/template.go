package mapping

import (
	"fmt"
	"strconv"
	"strings"
	"text/template"

	"github.com/babelforce/bridge/directory"
)

// userView is what templates see as ".".
type userView struct {
	ID          string
	UserName    string
	ExternalID  string
	DN          string
	DisplayName string
	GivenName   string
	FamilyName  string
	Email       string
	Phone       string
	Active      bool
	u           *directory.User
}

// Attr returns the first value of an attribute (see attrValues), or "".
func (v userView) Attr(name string) string {
	if vals := attrValues(v.u, name); len(vals) > 0 {
		return vals[0]
	}
	return ""
}

// Attrs returns every value of an attribute.
func (v userView) Attrs(name string) []string { return attrValues(v.u, name) }

func newView(u *directory.User) userView {
	return userView{
		ID: u.ID, UserName: u.UserName, ExternalID: u.ExternalID, DN: u.DN,
		DisplayName: u.DisplayName, GivenName: u.GivenName, FamilyName: u.FamilyName,
		Email: u.PrimaryEmail(), Phone: u.PrimaryPhone(), Active: u.Active, u: u,
	}
}

// attrValues returns the values of a raw attribute (name case-insensitive); when the user has
// no such attribute, the model field of that name (userName, displayName, givenName,
// familyName, email, phone, id, dn, externalId, active).
func attrValues(u *directory.User, name string) []string {
	if u == nil {
		return nil
	}
	if v, ok := u.Attributes[name]; ok {
		return v
	}
	lower := strings.ToLower(name)
	if v, ok := u.Attributes[lower]; ok {
		return v
	}
	for k, v := range u.Attributes {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	one := func(s string) []string {
		if s == "" {
			return nil
		}
		return []string{s}
	}
	switch lower {
	case "username":
		return one(u.UserName)
	case "displayname":
		return one(u.DisplayName)
	case "givenname":
		return one(u.GivenName)
	case "familyname":
		return one(u.FamilyName)
	case "email":
		return one(u.PrimaryEmail())
	case "phone":
		return one(u.PrimaryPhone())
	case "id":
		return one(u.ID)
	case "dn":
		return one(u.DN)
	case "externalid":
		return one(u.ExternalID)
	case "active":
		return []string{strconv.FormatBool(u.Active)}
	}
	return nil
}

// baseFuncs are the template functions; attr and attrs are rebound per executor.
func baseFuncs(cur **directory.User) template.FuncMap {
	return template.FuncMap{
		"attr": func(name string) string {
			if v := attrValues(*cur, name); len(v) > 0 {
				return v[0]
			}
			return ""
		},
		"attrs":      func(name string) []string { return attrValues(*cur, name) },
		"lower":      strings.ToLower,
		"upper":      strings.ToUpper,
		"trim":       strings.TrimSpace,
		"replace":    func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		"trimPrefix": func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"default": func(def string, v string) string {
			if strings.TrimSpace(v) == "" {
				return def
			}
			return v
		},
		"join": func(sep string, l []string) string { return strings.Join(l, sep) },
	}
}

// compileTemplate parses a field template and runs it once on an empty user, so that an
// unknown field or function is a config error rather than a per-user failure. Empty text
// means "use the default" and returns nil.
func compileTemplate(key, text string) (*fieldTemplate, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	var cur *directory.User
	t, err := template.New(key).Option("missingkey=zero").Funcs(baseFuncs(&cur)).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid template %q: %s", key, text, templateError(key, err))
	}
	var b strings.Builder
	empty := &directory.User{}
	cur = empty
	if err := t.Execute(&b, newView(empty)); err != nil {
		return nil, fmt.Errorf("%s: invalid template %q: %s", key, text, templateError(key, err))
	}
	return &fieldTemplate{key: key, text: text, desc: key + " " + quote(text), t: t}, nil
}

// templateError strips text/template's "template: NAME:1:2: " prefixes.
func templateError(key string, err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "template: ")
	msg = strings.TrimPrefix(msg, key+":")
	// "1: function "x" not defined" or "1:2: executing "k" at <.Foo>: can't evaluate ..."
	i := 0
	for i < len(msg) && (msg[i] >= '0' && msg[i] <= '9' || msg[i] == ':') {
		i++
	}
	msg = strings.TrimSpace(msg[i:])
	if strings.HasPrefix(msg, "executing ") {
		if j := strings.Index(msg, ">: "); j >= 0 {
			at := ""
			if k := strings.Index(msg, "at <"); k >= 0 && k < j {
				at = msg[k+3:j+1] + ": "
			}
			msg = at + msg[j+3:]
		}
	}
	// text/template prints the value it cannot range over: for the user view that is a
	// struct dump with a pointer address, which says nothing to an admin.
	if k := strings.Index(msg, "range can't iterate over "); k >= 0 {
		msg = msg[:k] + `range needs a list, e.g. {{range attrs "mail"}}`
	}
	return msg
}

// executor runs the templates of one Rules for one goroutine: attr and attrs are bound to the
// user being mapped.
type executor struct {
	cur   *directory.User
	clone map[*fieldTemplate]*template.Template
	buf   strings.Builder
	// hasAttrRules, memo and problems serve the attribute rules: results by (rule, value)
	// and the problems they found.
	hasAttrRules bool
	gidx         []int // indexes of the current user's groups
	memo         map[memoKey]hit
	problems     map[string]struct{}
}

func (r *Rules) newExecutor() *executor {
	x := &executor{clone: map[*fieldTemplate]*template.Template{}, memo: map[memoKey]hit{}, problems: map[string]struct{}{}}
	for _, rules := range [][]*rule{r.skills, r.agentGroups, r.roles} {
		for _, ru := range rules {
			if ru.attr != "" {
				x.hasAttrRules = true
			}
		}
	}
	funcs := baseFuncs(&x.cur)
	add := func(ft *fieldTemplate) {
		if ft == nil {
			return
		}
		c, err := ft.t.Clone()
		if err != nil {
			// text/template's Clone does not fail; keep the shared template if it ever does
			// (attr then sees the user of whichever executor ran last).
			x.clone[ft] = ft.t
			return
		}
		x.clone[ft] = c.Funcs(funcs)
	}
	add(r.name)
	add(r.email)
	add(r.number)
	for _, e := range r.externalIDs {
		add(e.tmpl)
	}
	return x
}

// run executes ft for u and returns the trimmed result.
func (x *executor) run(ft *fieldTemplate, u *directory.User, view *userView) (string, error) {
	x.cur = u
	x.buf.Reset()
	if err := x.clone[ft].Execute(&x.buf, view); err != nil {
		return "", fmt.Errorf("template %s failed: %s", ft.key, templateError(ft.key, err))
	}
	return strings.TrimSpace(x.buf.String()), nil
}
