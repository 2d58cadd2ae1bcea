package store

import (
	"context"
	"fmt"
	"maps"

	"github.com/babelforce/bridge/directory"
)

// EnterpriseUserSchema is the URN of the SCIM enterprise user extension (RFC 7643 section 4.3).
const EnterpriseUserSchema = directory.EnterpriseUserSchema

// Source is the Snapshot.Source of what the store reads.
const Source = "scim-store"

var _ directory.Reader = (*Store)(nil)

// Read returns everything IdPs pushed as a directory snapshot, read in one transaction:
// users (ID = SCIM id, attributes flattened, see FlattenUser), every group (ID = SCIM id,
// Name = displayName) with its direct members, resolved with Snapshot.Resolve.
func (s *Store) Read(ctx context.Context) (*directory.Snapshot, error) {
	tx, err := s.beginRead(ctx)
	if err != nil {
		return nil, fmt.Errorf("read store: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	users, err := s.query(ctx, tx, KindUser, nil, -1, 0, "")
	if err != nil {
		return nil, fmt.Errorf("read store: users: %w", err)
	}
	groups, err := s.query(ctx, tx, KindGroup, nil, -1, 0, "")
	if err != nil {
		return nil, fmt.Errorf("read store: groups: %w", err)
	}
	snap := &directory.Snapshot{
		Users:  make([]directory.User, 0, len(users)),
		Groups: make([]directory.Group, 0, len(groups)),
		ReadAt: s.now().UTC(),
		Source: Source,
	}
	idx := make(map[string]int, len(groups))
	for _, g := range groups {
		idx[g.ID] = len(snap.Groups)
		snap.Groups = append(snap.Groups, directory.Group{
			ID:         g.ID,
			Name:       stringAttr(g.Attributes, "displayName"),
			ExternalID: g.ExternalID,
		})
	}
	rows, err := tx.QueryContext(ctx, `SELECT group_id, member_id, member_type FROM scim_group_members ORDER BY group_id, member_id`)
	if err != nil {
		return nil, fmt.Errorf("read store: memberships: %w", err)
	}
	for rows.Next() {
		var gid, mid, mtype string
		if err := rows.Scan(&gid, &mid, &mtype); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read store: memberships: %w", err)
		}
		i, ok := idx[gid]
		if !ok {
			continue
		}
		if Kind(mtype) == KindGroup {
			snap.Groups[i].MemberGroups = append(snap.Groups[i].MemberGroups, mid)
		} else {
			snap.Groups[i].MemberUsers = append(snap.Groups[i].MemberUsers, mid)
		}
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("read store: memberships: %w", err)
	}
	for _, u := range users {
		snap.Users = append(snap.Users, ToDirectoryUser(u))
	}
	snap.Resolve()
	return snap, nil
}

// ToDirectoryUser converts a stored SCIM user to a directory.User with directory.SCIMUser, the
// conversion the upstream SCIM source uses too. A stored user always has an id; an "active"
// that is not a boolean (the inbound endpoint's schema check rejects it) counts as true.
func ToDirectoryUser(r Resource) directory.User {
	u, _ := directory.SCIMUser(document(r))
	return u
}

// FlattenUser turns a SCIM user into the attribute map of directory.User: lower-cased SCIM
// paths such as "title", "name.givenname", "emails.work", "enterprise.department" (see
// directory.FlattenSCIMUser, which the upstream SCIM source uses too).
func FlattenUser(r Resource) map[string][]string {
	return directory.FlattenSCIMUser(document(r))
}

// document is r as a SCIM resource: its attributes with id and externalId.
func document(r Resource) map[string]any {
	doc := make(map[string]any, len(r.Attributes)+2)
	maps.Copy(doc, r.Attributes)
	delete(doc, "externalId")
	if r.ExternalID != "" {
		doc["externalId"] = r.ExternalID
	}
	doc["id"] = r.ID
	return doc
}
