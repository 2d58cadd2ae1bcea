package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"

	"github.com/babelforce/bridge/directory"
)

// EnterpriseUserSchema is the URN of the SCIM enterprise user extension (RFC 7643 section 4.3).
const EnterpriseUserSchema = directory.EnterpriseUserSchema

// Source is the Snapshot.Source of what the store reads.
const Source = "scim-store"

var _ directory.Reader = (*Store)(nil)

// Read returns everything IdPs pushed as a directory snapshot, read in one transaction:
// users (ID = SCIM id, attributes flattened, see directory.FlattenSCIMUser), every group (ID = SCIM id,
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
// that is not a boolean (the inbound endpoint's schema check rejects it; an older version or
// a hand-edited database may have stored one) is not active and sets User.Invalid: the
// mapping skips that person and leaves their agent alone.
func ToDirectoryUser(r Resource) directory.User {
	u, _ := directory.SCIMUser(document(r))
	return u
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

// ReadUsers reads the users with these ids that exist and every group they belong to,
// directly or through nested groups, in one transaction: a snapshot of just those people
// (groups list only members in it), resolved; total is the number of users in the whole
// store. Its cost follows the number of ids and the depth of nesting, not the size of the
// store. It makes the Store a provisioning.ScopedSource.
func (s *Store) ReadUsers(ctx context.Context, ids []string) (*directory.Snapshot, int, error) {
	tx, err := s.beginRead(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("read store: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM scim_users`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("read store: count users: %w", err)
	}
	var users []Resource
	err = queryIn(ctx, tx, `SELECT `+resourceColumns+` FROM scim_users WHERE id IN `, ids, func(rows *sql.Rows) error {
		r, err := scanResource(rows, KindUser)
		users = append(users, r)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read store: users: %w", err)
	}
	snap := &directory.Snapshot{Users: make([]directory.User, 0, len(users)), ReadAt: s.now().UTC(), Source: Source}
	level := make([]string, 0, len(users))
	// people who share an e-mail with them: the mapping rejects both of a pair (or notes the
	// conflict of a leaver), as a whole read would
	others, err := s.sharingEmail(ctx, tx, users)
	if err != nil {
		return nil, 0, fmt.Errorf("read store: users with the same e-mail: %w", err)
	}
	users = append(users, others...)
	for _, u := range users {
		snap.Users = append(snap.Users, ToDirectoryUser(u))
		level = append(level, u.ID)
	}
	// memberships upwards, one query per level of nesting
	type edge struct{ group, member, kind string }
	var edges []edge
	seen := map[string]bool{}
	var groupIDs []string
	for len(level) > 0 {
		var next []string
		err := queryIn(ctx, tx, `SELECT group_id, member_id, member_type FROM scim_group_members WHERE member_id IN `, level, func(rows *sql.Rows) error {
			var e edge
			if err := rows.Scan(&e.group, &e.member, &e.kind); err != nil {
				return err
			}
			edges = append(edges, e)
			if !seen[e.group] {
				seen[e.group] = true
				groupIDs = append(groupIDs, e.group)
				next = append(next, e.group)
			}
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("read store: memberships: %w", err)
		}
		level = next
	}
	idx := map[string]int{}
	err = queryIn(ctx, tx, `SELECT `+resourceColumns+` FROM scim_groups WHERE id IN `, groupIDs, func(rows *sql.Rows) error {
		g, err := scanResource(rows, KindGroup)
		if err != nil {
			return err
		}
		idx[g.ID] = len(snap.Groups)
		snap.Groups = append(snap.Groups, directory.Group{ID: g.ID, Name: stringAttr(g.Attributes, "displayName"), ExternalID: g.ExternalID})
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read store: groups: %w", err)
	}
	for _, e := range edges {
		i, ok := idx[e.group]
		if !ok {
			continue
		}
		if Kind(e.kind) == KindGroup {
			snap.Groups[i].MemberGroups = append(snap.Groups[i].MemberGroups, e.member)
		} else {
			snap.Groups[i].MemberUsers = append(snap.Groups[i].MemberUsers, e.member)
		}
	}
	for i := range snap.Groups {
		slices.Sort(snap.Groups[i].MemberUsers)
		slices.Sort(snap.Groups[i].MemberGroups)
	}
	snap.Resolve()
	return snap, total, nil
}

// sharingEmail returns the users other than these that hold one of their e-mail addresses
// (compared case-insensitively, through the index of scim_user_emails).
func (s *Store) sharingEmail(ctx context.Context, tx *txn, users []Resource) ([]Resource, error) {
	have := map[string]bool{}
	var keys []string
	for _, u := range users {
		have[u.ID] = true
		for _, k := range emailKeys(u.ID, u.Attributes) {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	var others []string
	err := queryIn(ctx, tx, `SELECT user_id FROM scim_user_emails WHERE email_key IN `, keys, func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		if !have[id] {
			have[id] = true
			others = append(others, id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []Resource
	err = queryIn(ctx, tx, `SELECT `+resourceColumns+` FROM scim_users WHERE id IN `, others, func(rows *sql.Rows) error {
		r, err := scanResource(rows, KindUser)
		out = append(out, r)
		return err
	})
	return out, err
}
