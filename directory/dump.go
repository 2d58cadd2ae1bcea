package directory

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Dump formats accepted by WriteDump.
const (
	DumpJSON = "json"
	DumpText = "text"
)

// WriteDump writes a snapshot for people checking what bridge reads (`bridge directory dump`).
//
// Format "text" is a table for admins tuning filters: a summary, then one line per user
// (sorted by user name) with active flag, primary e-mail and phone, direct groups and the
// groups reached through nesting, then one line per group (sorted by name) with its direct
// and transitive member counts.
//
// Format "json" is stable and deterministic (same snapshot, same bytes): keys in the order
// below, users sorted by id, groups by name then id, lists sorted, attributes by name. Absent
// values are omitted, except active and the counts. Shape:
//
//	{
//	  "source": "ldap://dc1.example.com",
//	  "read_at": "2026-01-02T03:04:05Z",            // RFC 3339, UTC
//	  "counts": {"users": 20, "active_users": 19, "groups": 14},
//	  "users": [{
//	    "id": "…", "user_name": "ann", "display_name": "Ann Archer",
//	    "given_name": "Ann", "family_name": "Archer",
//	    "external_id": "…", "dn": "uid=ann,ou=people,dc=example,dc=com",
//	    "active": true,
//	    "emails": [{"value": "ann@example.com", "type": "work", "primary": true}],
//	    "phones": [{"value": "+49 30 1234567", "type": "work"}],
//	    "groups": [{"id": "…", "name": "support-tier1"}],        // direct, sorted by name
//	    "all_groups": [{"id": "…", "name": "support"}, …],       // direct + through nesting
//	    "attributes": {"title": ["Agent"], …}                    // as read, for templates
//	  }],
//	  "groups": [{
//	    "id": "…", "name": "support", "dn": "…", "external_id": "…",
//	    "member_users": 0,       // direct user members
//	    "member_groups": 2,      // direct group members
//	    "all_users": 5,          // users in the group directly or through nesting
//	    "member_group_names": ["support-tier1", "support-tier2"]
//	  }]
//	}
func WriteDump(w io.Writer, s *Snapshot, format string) error {
	if s == nil {
		return fmt.Errorf("dump: no snapshot")
	}
	d := buildDump(s)
	switch strings.ToLower(format) {
	case DumpJSON, "":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(d); err != nil {
			return fmt.Errorf("dump: %w", err)
		}
		return nil
	case DumpText:
		return writeDumpText(w, d)
	default:
		return fmt.Errorf("dump: format %q is not %q or %q", format, DumpJSON, DumpText)
	}
}

type dumpDoc struct {
	Source string      `json:"source"`
	ReadAt string      `json:"read_at"`
	Counts dumpCounts  `json:"counts"`
	Users  []dumpUser  `json:"users"`
	Groups []dumpGroup `json:"groups"`
}

type dumpCounts struct {
	Users       int `json:"users"`
	ActiveUsers int `json:"active_users"`
	Groups      int `json:"groups"`
}

type dumpRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type dumpUser struct {
	ID          string              `json:"id"`
	UserName    string              `json:"user_name"`
	DisplayName string              `json:"display_name,omitempty"`
	GivenName   string              `json:"given_name,omitempty"`
	FamilyName  string              `json:"family_name,omitempty"`
	ExternalID  string              `json:"external_id,omitempty"`
	DN          string              `json:"dn,omitempty"`
	Active      bool                `json:"active"`
	Emails      []Email             `json:"emails,omitempty"`
	Phones      []Phone             `json:"phones,omitempty"`
	Groups      []dumpRef           `json:"groups,omitempty"`
	AllGroups   []dumpRef           `json:"all_groups,omitempty"`
	Attributes  map[string][]string `json:"attributes,omitempty"`
}

type dumpGroup struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	DN               string   `json:"dn,omitempty"`
	ExternalID       string   `json:"external_id,omitempty"`
	MemberUsers      int      `json:"member_users"`
	MemberGroups     int      `json:"member_groups"`
	AllUsers         int      `json:"all_users"`
	MemberGroupNames []string `json:"member_group_names,omitempty"`
}

func buildDump(s *Snapshot) dumpDoc {
	groupName := make(map[string]string, len(s.Groups))
	for _, g := range s.Groups {
		groupName[g.ID] = g.Name
	}
	refs := func(ids []string) []dumpRef {
		out := make([]dumpRef, 0, len(ids))
		for _, id := range ids {
			out = append(out, dumpRef{ID: id, Name: groupName[id]})
		}
		slices.SortFunc(out, func(a, b dumpRef) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
		if len(out) == 0 {
			return nil
		}
		return out
	}
	d := dumpDoc{Source: s.Source, Users: []dumpUser{}, Groups: []dumpGroup{}}
	if !s.ReadAt.IsZero() {
		d.ReadAt = s.ReadAt.UTC().Format(time.RFC3339)
	}
	allUsers := map[string]int{}
	for _, u := range s.Users {
		d.Counts.Users++
		if u.Active {
			d.Counts.ActiveUsers++
		}
		for _, g := range s.Memberships[u.ID] {
			allUsers[g]++
		}
		du := dumpUser{
			ID: u.ID, UserName: u.UserName, DisplayName: u.DisplayName, GivenName: u.GivenName,
			FamilyName: u.FamilyName, ExternalID: u.ExternalID, DN: u.DN, Active: u.Active,
			Emails: u.Emails, Phones: u.Phones,
			Groups: refs(u.Groups), AllGroups: refs(s.Memberships[u.ID]),
		}
		if len(u.Attributes) > 0 {
			du.Attributes = u.Attributes // encoding/json sorts map keys
		}
		d.Users = append(d.Users, du)
	}
	slices.SortStableFunc(d.Users, func(a, b dumpUser) int { return cmp.Compare(a.ID, b.ID) })
	for _, g := range s.Groups {
		var sub []string
		for _, id := range g.MemberGroups {
			if n, ok := groupName[id]; ok {
				sub = append(sub, n)
			} else {
				sub = append(sub, id)
			}
		}
		slices.Sort(sub)
		d.Groups = append(d.Groups, dumpGroup{
			ID: g.ID, Name: g.Name, DN: g.DN, ExternalID: g.ExternalID,
			MemberUsers: len(g.MemberUsers), MemberGroups: len(g.MemberGroups),
			AllUsers: allUsers[g.ID], MemberGroupNames: sub,
		})
	}
	d.Counts.Groups = len(d.Groups)
	slices.SortStableFunc(d.Groups, func(a, b dumpGroup) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return d
}

func writeDumpText(w io.Writer, d dumpDoc) error {
	readAt := d.ReadAt
	if readAt == "" {
		readAt = "-"
	}
	fmt.Fprintf(w, "Source:  %s\nRead at: %s\nUsers:   %d (%d active, %d inactive)\nGroups:  %d\n\n",
		d.Source, readAt, d.Counts.Users, d.Counts.ActiveUsers, d.Counts.Users-d.Counts.ActiveUsers, d.Counts.Groups)
	users := slices.Clone(d.Users)
	slices.SortStableFunc(users, func(a, b dumpUser) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.UserName), strings.ToLower(b.UserName)), cmp.Compare(a.ID, b.ID))
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tNAME\tACTIVE\tEMAIL\tPHONE\tGROUPS\tVIA NESTING")
	for _, u := range users {
		direct := map[string]bool{}
		var dn, via []string
		for _, g := range u.Groups {
			direct[g.ID] = true
			dn = append(dn, cmp.Or(g.Name, g.ID))
		}
		for _, g := range u.AllGroups {
			if !direct[g.ID] {
				via = append(via, cmp.Or(g.Name, g.ID))
			}
		}
		pu := User{Emails: u.Emails, Phones: u.Phones}
		active := "yes"
		if !u.Active {
			active = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dumpCell(u.UserName), dumpCell(u.DisplayName), active,
			dumpCell(pu.PrimaryEmail()), dumpCell(pu.PrimaryPhone()), dumpCell(strings.Join(dn, ",")), dumpCell(strings.Join(via, ",")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tUSERS\tGROUPS\tALL USERS\tMEMBER GROUPS")
	for _, g := range d.Groups {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", dumpCell(g.Name), g.MemberUsers, g.MemberGroups, g.AllUsers, dumpCell(strings.Join(g.MemberGroupNames, ",")))
	}
	return tw.Flush()
}

// dumpCell makes a value safe for one tab-separated cell and shows "-" for empty.
func dumpCell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}
