package babelforce

import "github.com/babelforce/bridge/internal/intern"

// A list of every agent or every login user is the largest thing a reconcile holds while it
// reads babelforce: at 100,000 people, hundreds of bytes an item. So each page of a list is
// compacted as it is taken: a value that repeats from item to item (the agent source, group
// references, tags, SCIM schemas, roles and types) is kept once per list, and with Lean what
// a reconcile never reads is not kept at all and the items share what they repeat whole.

// ListOption changes how a list is read.
type ListOption func(*listOptions)

type listOptions struct {
	lean bool
}

// Lean leaves out of the items listed what a reconcile never reads or sets whole from the
// directory: the timestamps of agents and of their group references (dateCreated,
// lastUpdated), the meta and e-mails of SCIM users and a SCIM name that holds nothing but the
// formatted name (a name with a given or family name is kept). Items with the same tags,
// groups, schemas, roles or enabled/active flag share one slice or pointer: a Lean list is
// read-only (an append copies; writing into an element would change every item sharing it).
// At 100,000 people this is about 30 MB less than a full list.
func Lean() ListOption { return func(o *listOptions) { o.lean = true } }

func newListOptions(opts []ListOption) listOptions {
	var o listOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// strs holds one copy of each value a list repeats.
type strs map[string]string

func (s strs) of(v string) string {
	if v == "" {
		return ""
	}
	if w, ok := s[v]; ok {
		return w
	}
	s[v] = v
	return v
}

// memo is what a list's pages share as they are compacted: one copy of each repeated value
// and, with Lean, of each repeated slice (an agent's tags and groups, a login user's schemas
// and roles) and flag (enabled, active).
type memo struct {
	s       strs
	strings intern.Slices[string]
	groups  intern.Slices[GroupRef]
	values  intern.Slices[SCIMValue]
	yes, no *bool
}

func newMemo() *memo {
	yes, no := true, false
	return &memo{s: strs{}, yes: &yes, no: &no}
}

// flag is the list's one pointer to *b (nil stays nil).
func (m *memo) flag(b *bool) *bool {
	switch {
	case b == nil:
		return nil
	case *b:
		return m.yes
	default:
		return m.no
	}
}

func groupKey(b []byte, g GroupRef) []byte {
	return intern.String(intern.String(intern.String(b, g.ID), g.Name), g.DateCreated)
}

func valueKey(b []byte, v SCIMValue) []byte {
	b = intern.String(intern.String(intern.String(b, v.Value), v.Type), v.Display)
	if v.Primary {
		return append(b, 1)
	}
	return append(b, 0)
}

// compacter is an item of a list that compacts itself (see above).
type compacter interface {
	compact(m *memo, o listOptions)
}

// compactPage compacts the items of a page that can.
func compactPage[T any](items []T, m *memo, o listOptions) {
	for i := range items {
		if c, ok := any(&items[i]).(compacter); ok {
			c.compact(m, o)
		}
	}
}

func (a *Agent) compact(m *memo, o listOptions) {
	s := m.s
	normalizeAgent(a)
	a.AgentSource = s.of(a.AgentSource)
	for i := range a.Tags {
		a.Tags[i] = s.of(a.Tags[i])
	}
	for i := range a.Groups {
		g := &a.Groups[i]
		g.ID, g.Name = s.of(g.ID), s.of(g.Name)
		if o.lean {
			g.DateCreated = ""
		} else {
			g.DateCreated = s.of(g.DateCreated)
		}
	}
	if o.lean {
		a.DateCreated, a.LastUpdated = "", ""
		a.Tags, a.Groups, a.Enabled = m.strings.Of(a.Tags, intern.String), m.groups.Of(a.Groups, groupKey), m.flag(a.Enabled)
	}
}

func (u *SCIMUser) compact(m *memo, o listOptions) {
	s := m.s
	for i := range u.Schemas {
		u.Schemas[i] = s.of(u.Schemas[i])
	}
	for _, vs := range [][]SCIMValue{u.Emails, u.PhoneNumbers, u.Roles} {
		for i := range vs {
			vs[i].Type = s.of(vs[i].Type)
		}
	}
	for i := range u.Roles {
		u.Roles[i].Value, u.Roles[i].Display = s.of(u.Roles[i].Value), s.of(u.Roles[i].Display)
	}
	switch {
	case o.lean:
		u.Meta = nil
		u.Emails = nil
		if u.Name != nil && u.Name.GivenName == "" && u.Name.FamilyName == "" {
			u.Name = nil
		}
		u.Schemas, u.Roles, u.Active = m.strings.Of(u.Schemas, intern.String), m.values.Of(u.Roles, valueKey), m.flag(u.Active)
	case u.Meta != nil:
		u.Meta.ResourceType, u.Meta.Version = s.of(u.Meta.ResourceType), s.of(u.Meta.Version)
	}
}
