package mapping

import (
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
)

// Attributes names the raw attributes (directory.User.Attributes) the rules read, lower-cased
// and sorted: the scope conditions, the attribute rules of skills, agent groups and roles,
// external ids by attribute, phone.region_attribute, and every attribute a template names
// with attr or attrs (or .Attr, .Attrs) and a constant name. all is true when a template
// names an attribute only at run time (e.g. {{attr .UserName}}): then every attribute may
// be read, and names is nil.
//
// A source that keeps only these attributes maps every user exactly as one that keeps all
// of them: bridge's plan and sync use it to hold less of the directory in memory.
func (r *Rules) Attributes() (names []string, all bool) {
	if r.allAttrs {
		return nil, true
	}
	return slices.Clone(r.attrNames), false
}

// collectAttributes fills r.attrNames and r.allAttrs from the compiled rules.
func (r *Rules) collectAttributes() {
	var names []string
	add := func(name string) {
		if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
			names = append(names, name)
		}
	}
	for _, c := range r.conds {
		add(c.attr)
	}
	for _, rules := range [][]*rule{r.skills, r.agentGroups, r.roles} {
		for _, ru := range rules {
			add(ru.attr)
		}
	}
	add(r.regionAttr)
	templates := []*fieldTemplate{r.name, r.email, r.number}
	for _, e := range r.externalIDs {
		add(e.attribute)
		templates = append(templates, e.tmpl)
	}
	for _, ft := range templates {
		if ft == nil {
			continue
		}
		tn, all := templateAttributes(ft.t)
		if all {
			r.allAttrs, r.attrNames = true, nil
			return
		}
		names = append(names, tn...)
	}
	slices.Sort(names)
	r.attrNames = slices.Compact(names)
}

// templateAttributes names the attributes a template (and the templates it defines) reads
// through attr, attrs, .Attr and .Attrs; all is true when one of them is called other than
// with a single constant string (a name only known at run time, or from a pipeline).
func templateAttributes(t *template.Template) (names []string, all bool) {
	var walk func(n parse.Node)
	isAttrFunc := func(n parse.Node) bool {
		switch n := n.(type) {
		case *parse.IdentifierNode:
			return n.Ident == "attr" || n.Ident == "attrs"
		case *parse.FieldNode:
			return isAttrMethod(n.Ident)
		case *parse.VariableNode:
			return len(n.Ident) > 1 && isAttrMethod(n.Ident[1:])
		case *parse.ChainNode:
			return isAttrMethod(n.Field)
		}
		return false
	}
	cmd := func(c *parse.CommandNode, piped bool) {
		for i, a := range c.Args {
			if !isAttrFunc(a) {
				walk(a)
				continue
			}
			// a call reads one constant name only as the command's function, with exactly
			// that name as its argument and nothing piped in
			if s, ok := argString(c.Args, i); ok && !piped {
				names = append(names, strings.ToLower(strings.TrimSpace(s)))
				continue
			}
			all = true
		}
	}
	walk = func(n parse.Node) {
		if all || n == nil {
			return
		}
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for i, c := range n.Cmds {
				cmd(c, i > 0)
			}
		case *parse.CommandNode:
			cmd(n, false)
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			walk(n.Pipe)
		case *parse.ChainNode:
			walk(n.Node)
		}
	}
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			walk(tt.Tree.Root)
		}
	}
	if all {
		return nil, true
	}
	return names, false
}

// isAttrMethod reports whether a field chain ends in the user view's Attr or Attrs method.
func isAttrMethod(idents []string) bool {
	if len(idents) == 0 {
		return false
	}
	last := idents[len(idents)-1]
	return last == "Attr" || last == "Attrs"
}

// argString returns the constant name of the attr call at args[i]: the call is the command
// (i == 0) and its one argument is a string literal.
func argString(args []parse.Node, i int) (string, bool) {
	if i != 0 || len(args) != 2 {
		return "", false
	}
	s, ok := args[1].(*parse.StringNode)
	if !ok {
		return "", false
	}
	return s.Text, true
}
