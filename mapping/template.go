package mapping

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/internal/intern"
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
	if err := checkTemplateCalls(t); err != nil {
		return nil, fmt.Errorf("%s: invalid template %q: %s", key, text, err)
	}
	var b strings.Builder
	empty := &directory.User{}
	cur = empty
	if err := t.Execute(&limitedWriter{w: &b, n: maxTemplateOutput}, newView(empty)); err != nil {
		return nil, fmt.Errorf("%s: invalid template %q: %s", key, text, templateError(key, err))
	}
	return &fieldTemplate{key: key, text: text, desc: key + " " + quote(text), t: t}, nil
}

// maxTemplateCalls bounds how many {{template}} calls one run of a field template may make,
// counted without looking at data (a call inside range counts once).
const maxTemplateCalls = 1000

// maxTemplateOutput bounds what one run of a field template may write (an agent's name,
// e-mail or number, an external id).
const maxTemplateOutput = 64 << 10

// checkTemplateCalls refuses a template that calls a template it does not define, calls
// itself (directly or through others) or expands to more than maxTemplateCalls calls. A
// recursive template passed the run on an empty user whenever its recursion depended on
// data, and then cost each person seconds until text/template's depth limit stopped it.
func checkTemplateCalls(t *template.Template) error {
	calls := map[string][]string{}
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Tree.Root == nil {
			continue
		}
		var names []string
		collectCalls(tt.Tree.Root, &names)
		calls[tt.Name()] = names
	}
	const visiting = -1
	count := map[string]int{} // name → calls one run makes (visiting while on the stack)
	var visit func(name string, path []string) (int, error)
	visit = func(name string, path []string) (int, error) {
		switch n, ok := count[name]; {
		case ok && n == visiting:
			cycle := append(path[slices.Index(path, name):], name)
			return 0, fmt.Errorf("template %q calls itself (%s): recursion is not allowed", name, strings.Join(cycle, " → "))
		case ok:
			return n, nil
		}
		callees, defined := calls[name]
		if !defined {
			return 0, fmt.Errorf("template %q is called but not defined", name)
		}
		count[name] = visiting
		total := 0
		for _, c := range callees {
			n, err := visit(c, append(path, name))
			if err != nil {
				return 0, err
			}
			if total += 1 + n; total > maxTemplateCalls {
				return 0, fmt.Errorf("template %q makes more than %d template calls", name, maxTemplateCalls)
			}
		}
		count[name] = total
		return total, nil
	}
	_, err := visit(t.Name(), nil)
	return err
}

// collectCalls appends the names of the templates that n calls ({{template}} and {{block}}).
func collectCalls(n parse.Node, out *[]string) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			collectCalls(c, out)
		}
	case *parse.TemplateNode:
		*out = append(*out, n.Name)
	case *parse.IfNode:
		collectCalls(n.List, out)
		collectCalls(n.ElseList, out)
	case *parse.RangeNode:
		collectCalls(n.List, out)
		collectCalls(n.ElseList, out)
	case *parse.WithNode:
		collectCalls(n.List, out)
		collectCalls(n.ElseList, out)
	}
}

// limitedWriter fails a template run that writes more than n bytes.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, fmt.Errorf("template writes more than %d bytes", maxTemplateOutput)
	}
	l.n -= len(p)
	return l.w.Write(p)
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
	out   limitedWriter // buf, bounded
	// hasAttrRules, memo and problems serve the attribute rules: results by (rule, value)
	// and the problems they found.
	hasAttrRules bool
	gidx         []int // indexes of the current user's groups
	memo         map[memoKey]hit
	problems     map[string]struct{}
	// shared holds one copy of each list of tags, agent groups or roles the executor's users
	// get: a few hundred distinct lists serve 100,000 agents (about 10 MB less).
	shared intern.Slices[string]
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
	x.out = limitedWriter{w: &x.buf, n: maxTemplateOutput}
	if err := x.clone[ft].Execute(&x.out, view); err != nil {
		return "", fmt.Errorf("template %s failed: %s", ft.key, templateError(ft.key, err))
	}
	return strings.TrimSpace(x.buf.String()), nil
}
