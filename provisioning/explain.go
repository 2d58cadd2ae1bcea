package provisioning

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/mapping"
)

// Explanation says, for one person, how the mapping treats them, what babelforce holds for
// them now and what the next run would change.
type Explanation struct {
	Query string `json:"query"`
	// Mapping is mapping.Explain's answer (Found false for a user gone from the directory).
	Mapping mapping.Explanation `json:"mapping"`
	// Agent is the person's agent in babelforce, if any; Owned says whether it is bridge's.
	Agent *babelforce.Agent `json:"agent,omitempty"`
	Owned bool              `json:"owned"`
	// Groups are the names of the agent groups the agent is in.
	Groups []string `json:"groups,omitempty"`
	// LoginUser is the person's login user (babelforce SCIM), if any.
	LoginUser   *babelforce.SCIMUser `json:"loginUser,omitempty"`
	ExternalIDs map[string]string    `json:"externalIds,omitempty"`
	// Changes are what the next run would change for the person, Skipped what it would leave
	// alone and why, Held what a guard would hold back.
	Changes []Change  `json:"changes"`
	Skipped []Skipped `json:"skipped,omitempty"`
	Held    []Change  `json:"held,omitempty"`
}

// Explain answers `bridge explain USER`: query is a directory id, userName or e-mail (or the
// sourceId or e-mail of an agent of a person gone from the directory). It writes nothing.
func (r *Reconciler) Explain(ctx context.Context, query string) (*Explanation, error) {
	snap, err := r.read(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := r.resolveUsers(ctx, snap, []string{query})
	if err != nil {
		return nil, err
	}
	id := ids[0]
	st, err := r.state.loadContext(ctx)
	if err != nil {
		return nil, err
	}
	p, desired, act, err := r.planActual(ctx, snap, Scope{Users: []string{id}}, false, st)
	if err != nil {
		return nil, err
	}
	e := &Explanation{Query: query, Mapping: mapping.ExplainDesired(snap, r.rules, desired, id), Changes: p.Changes, Skipped: p.Skipped, Held: p.Held}
	if e.Changes == nil {
		e.Changes = []Change{}
	}
	k := key(id)
	for i := range act.owned {
		if key(act.owned[i].SourceID) == k {
			e.Agent, e.Owned = &act.owned[i], true
			break
		}
	}
	email := ""
	for _, d := range desired.Agents {
		if key(d.SourceID) == k {
			email = lowerEmail(d.Email)
		}
	}
	if e.Agent == nil && email != "" {
		if m := act.unowned[email]; len(m) > 0 {
			e.Agent = &m[0]
		} else if as, err := r.actual.ListAgents(ctx, babelforce.AgentFilter{Q: email}); err == nil {
			for i := range as {
				if strings.EqualFold(as[i].Email, email) {
					e.Agent = &as[i]
					break
				}
			}
		}
	}
	if e.Agent != nil {
		if email == "" {
			email = lowerEmail(e.Agent.Email)
		}
		for _, g := range e.Agent.Groups {
			name := act.groupName[babelforce.NormalizeID(g.ID)]
			e.Groups = append(e.Groups, cmp.Or(name, g.Name, g.ID))
		}
		slices.Sort(e.Groups)
		ext, ok := act.extIDs[e.Agent.ID]
		if !ok {
			if list, err := r.actual.ListExternalIDs(ctx, e.Agent.ID); err == nil {
				ext = map[string]string{}
				for _, x := range list {
					ext[x.IntegrationID] = x.ExternalID
				}
			} else if !errors.Is(err, babelforce.ErrNotFound) {
				return nil, fmt.Errorf("list external ids of agent %s: %w", e.Agent.ID, err)
			}
		}
		if len(ext) > 0 {
			e.ExternalIDs = ext
		}
	}
	if u := act.scimByExt[k]; u != nil {
		e.LoginUser = u
	} else if u := act.scimByName[email]; u != nil {
		e.LoginUser = u
	} else if email != "" && r.rules.LoginUsers() && !act.scimRead {
		us, err := r.actual.SCIMListUsers(ctx, scimEq("userName", email))
		if err != nil {
			return nil, fmt.Errorf("look up login user %s: %w", email, err)
		}
		if len(us) > 0 {
			e.LoginUser = &us[0]
		}
	}
	return e, nil
}

// WriteText writes the explanation for a person.
func (e *Explanation) WriteText(w io.Writer) error {
	var b strings.Builder
	b.WriteString("Directory and mapping:\n")
	if err := e.Mapping.WriteText(&indent{w: &b}); err != nil {
		return err
	}
	b.WriteString("\nbabelforce now:\n")
	if a := e.Agent; a != nil {
		owner := "owned by bridge"
		if !e.Owned {
			owner = fmt.Sprintf("NOT owned by bridge (agentSource %q, sourceId %q)", a.AgentSource, a.SourceID)
		}
		fmt.Fprintf(&b, "  agent %s: %s <%s>, number %q, enabled %t, %s\n", a.ID, a.Name, a.Email, a.Number, a.IsEnabled(), owner)
		fmt.Fprintf(&b, "    tags: %s\n", orNone(slices.Sorted(slices.Values(a.Tags))))
		fmt.Fprintf(&b, "    agent groups: %s\n", orNone(e.Groups))
		if len(e.ExternalIDs) > 0 {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(e.ExternalIDs)) {
				parts = append(parts, k+"="+e.ExternalIDs[k])
			}
			fmt.Fprintf(&b, "    external ids: %s\n", strings.Join(parts, ", "))
		}
	} else {
		b.WriteString("  no agent\n")
	}
	if u := e.LoginUser; u != nil {
		managed := "managed by bridge"
		if e.Agent == nil || key(u.ExternalID) != key(e.Agent.SourceID) || !e.Owned {
			managed = "not managed by bridge"
		}
		fmt.Fprintf(&b, "  login user %s: roles %s, active %t, %s\n", u.UserName, orNone(scimRoles(u.Roles)), u.IsActive(), managed)
	} else {
		b.WriteString("  no login user\n")
	}
	b.WriteString("\nNext run:\n")
	if len(e.Changes) == 0 && len(e.Held) == 0 {
		b.WriteString("  no changes\n")
	}
	for _, c := range e.Changes {
		fmt.Fprintf(&b, "  %s\n", ChangeLine(c))
	}
	for _, c := range e.Held {
		fmt.Fprintf(&b, "  # held back by guard: %s\n", ChangeLine(c))
	}
	for _, s := range e.Skipped {
		fmt.Fprintf(&b, "  ! skipped %s: %s\n", s.Subject, s.Reason)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "(none)"
	}
	return strings.Join(xs, ", ")
}

// indent prefixes every line written through it with two spaces.
type indent struct {
	w   io.Writer
	mid bool
}

func (in *indent) Write(p []byte) (int, error) {
	var b strings.Builder
	for _, c := range string(p) {
		if !in.mid && c != '\n' {
			b.WriteString("  ")
		}
		b.WriteRune(c)
		in.mid = c != '\n'
	}
	_, err := io.WriteString(in.w, b.String())
	return len(p), err
}
