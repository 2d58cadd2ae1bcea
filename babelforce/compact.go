package babelforce

// A list of every agent or every login user is the largest thing a reconcile holds while it
// reads babelforce: at 100,000 people, hundreds of bytes an item. So each page of a list is
// compacted as it is taken: a value that repeats from item to item (the agent source, group
// references, tags, SCIM schemas, roles and types) is kept once per list, and with Lean what
// a reconcile never reads (timestamps, SCIM meta) is not kept at all. Nothing else changes.

// ListOption changes how a list is read.
type ListOption func(*listOptions)

type listOptions struct {
	lean bool
}

// Lean leaves out of the items listed what a reconcile never reads: the timestamps of agents
// and of their group references (dateCreated, lastUpdated) and the meta of SCIM users.
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

// compacter is an item of a list that compacts itself (see above).
type compacter interface {
	compact(s strs, o listOptions)
}

// compactPage compacts the items of a page that can.
func compactPage[T any](items []T, s strs, o listOptions) {
	for i := range items {
		if c, ok := any(&items[i]).(compacter); ok {
			c.compact(s, o)
		}
	}
}

func (a *Agent) compact(s strs, o listOptions) {
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
	}
}

func (u *SCIMUser) compact(s strs, o listOptions) {
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
	case u.Meta != nil:
		u.Meta.ResourceType, u.Meta.Version = s.of(u.Meta.ResourceType), s.of(u.Meta.Version)
	}
}
