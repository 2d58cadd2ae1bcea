package babelforce

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
	strings map[string][]string
	groups  map[string][]GroupRef
	values  map[string][]SCIMValue
	yes, no *bool
	buf     []byte
}

func newMemo() *memo {
	yes, no := true, false
	return &memo{s: strs{}, strings: map[string][]string{}, groups: map[string][]GroupRef{},
		values: map[string][]SCIMValue{}, yes: &yes, no: &no}
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

// key starts a lookup key in m.buf.
func (m *memo) key(parts ...string) {
	for _, p := range parts {
		m.buf = append(m.buf, p...)
		m.buf = append(m.buf, 0)
	}
}

// stringSlice is the list's one copy of vs (already compacted); it has no room to grow, so
// an append copies it.
func (m *memo) stringSlice(vs []string) []string {
	if len(vs) == 0 {
		return vs
	}
	m.buf = m.buf[:0]
	m.key(vs...)
	if w, ok := m.strings[string(m.buf)]; ok {
		return w
	}
	vs = vs[:len(vs):len(vs)]
	m.strings[string(m.buf)] = vs
	return vs
}

func (m *memo) groupSlice(gs []GroupRef) []GroupRef {
	if len(gs) == 0 {
		return gs
	}
	m.buf = m.buf[:0]
	for _, g := range gs {
		m.key(g.ID, g.Name, g.DateCreated)
	}
	if w, ok := m.groups[string(m.buf)]; ok {
		return w
	}
	gs = gs[:len(gs):len(gs)]
	m.groups[string(m.buf)] = gs
	return gs
}

func (m *memo) valueSlice(vs []SCIMValue) []SCIMValue {
	if len(vs) == 0 {
		return vs
	}
	m.buf = m.buf[:0]
	for _, v := range vs {
		p := "\x00"
		if v.Primary {
			p = "\x01"
		}
		m.key(v.Value, v.Type, v.Display, p)
	}
	if w, ok := m.values[string(m.buf)]; ok {
		return w
	}
	vs = vs[:len(vs):len(vs)]
	m.values[string(m.buf)] = vs
	return vs
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
		a.Tags, a.Groups, a.Enabled = m.stringSlice(a.Tags), m.groupSlice(a.Groups), m.flag(a.Enabled)
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
		u.Schemas, u.Roles, u.Active = m.stringSlice(u.Schemas), m.valueSlice(u.Roles), m.flag(u.Active)
	case u.Meta != nil:
		u.Meta.ResourceType, u.Meta.Version = s.of(u.Meta.ResourceType), s.of(u.Meta.Version)
	}
}
