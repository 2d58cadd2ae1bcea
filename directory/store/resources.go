package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/babelforce/bridge/directory"
)

// Resource is one stored SCIM resource.
type Resource struct {
	Kind       Kind
	ID         string
	ExternalID string
	// Attributes holds the SCIM attributes with their canonical names ("userName", "name",
	// "emails", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", ...), without
	// id, externalId, meta and schemas. For a group, "members" is a []any of
	// map[string]any{"value": id, "type": "User"|"Group", "display": ...}; for a user read
	// back, "groups" lists the groups the user is a direct member of (read-only, never stored).
	Attributes   map[string]any
	Version      int64
	Created      time.Time
	LastModified time.Time
}

// ETag is the weak entity tag of this version of the resource, also used as meta.version.
func (r *Resource) ETag() string { return fmt.Sprintf(`W/"%d"`, r.Version) }

// Clone returns a deep copy.
func (r Resource) Clone() Resource {
	r.Attributes = cloneMap(r.Attributes)
	return r
}

// Member is one direct member of a group.
type Member struct {
	ID      string
	Kind    Kind
	Display string
}

// Members returns the members of a group resource as found in Attributes["members"].
func (r *Resource) Members() []Member {
	return membersOf(r.Attributes)
}

// Cond is an equality condition pushed into SQL. Attr is one of "id", "externalId" and, for
// users, "userName" (case-insensitive), for groups, "displayName" (case-insensitive).
type Cond struct {
	Attr  string
	Value string
}

// Query selects resources for List.
type Query struct {
	// Eq conditions are ANDed and evaluated by the database.
	Eq []Cond
	// Match, when set, is evaluated in memory on every resource the Eq conditions select.
	Match func(Resource) bool
	// StartIndex is 1-based; values below 1 mean 1.
	StartIndex int
	// Count is the page size: negative means every match, 0 means none (only Total).
	Count int
}

// Page is one page of a List.
type Page struct {
	// Total is the number of resources matching the query (all pages).
	Total     int
	Resources []Resource
}

func newUUID() string { return uuid.NewString() }

func table(kind Kind) (string, error) {
	switch kind {
	case KindUser:
		return "scim_users", nil
	case KindGroup:
		return "scim_groups", nil
	}
	return "", fmt.Errorf("%w: unknown resource kind %q", ErrInvalid, kind)
}

// Create stores a new resource and returns it as stored, with a new id, version 1 and
// timestamps. For users, userName is required and must be unused (ErrConflict).
func (s *Store) Create(ctx context.Context, r Resource) (Resource, error) {
	if _, err := table(r.Kind); err != nil {
		return Resource{}, err
	}
	r = r.Clone()
	if r.Attributes == nil {
		r.Attributes = map[string]any{}
	}
	r.ID = s.newID()
	now := s.now().UTC()
	r.Created, r.LastModified, r.Version = now, now, 1
	var created Resource
	err := s.retry(ctx, "create", func() error {
		var err error
		created, err = s.create(ctx, &r)
		return err
	})
	if err != nil {
		return Resource{}, err
	}
	return created, nil
}

// create is one attempt of Create's transaction (write does not change r): it writes r and
// reads it back as stored, in the same transaction (as update does).
func (s *Store) create(ctx context.Context, r *Resource) (Resource, error) {
	tx, err := s.begin(ctx, nil)
	if err != nil {
		return Resource{}, fmt.Errorf("create %s: %w", strings.ToLower(string(r.Kind)), err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := s.write(ctx, tx, nil, r); err != nil {
		return Resource{}, err
	}
	created, err := s.get(ctx, tx, r.Kind, r.ID, false)
	if err != nil {
		return Resource{}, err
	}
	if err := s.queueWrite(ctx, tx, r.Kind, r.ID, nil, &created); err != nil {
		return Resource{}, err
	}
	if err := tx.Commit(); err != nil {
		return Resource{}, fmt.Errorf("create %s: commit: %w", strings.ToLower(string(r.Kind)), err)
	}
	s.queued()
	return created, nil
}

// Get returns the resource, or ErrNotFound.
func (s *Store) Get(ctx context.Context, kind Kind, id string) (Resource, error) {
	tx, err := s.beginRead(ctx)
	if err != nil {
		return Resource{}, fmt.Errorf("get %s %s: %w", kind, id, err)
	}
	defer func() { _ = tx.Rollback() }()
	return s.get(ctx, tx, kind, id, false)
}

// get reads one resource with its members or groups. forUpdate also locks its row against
// other writers until the transaction ends (PostgreSQL; SQLite has one writer at a time
// anyway), for a read-modify-write transaction.
func (s *Store) get(ctx context.Context, tx *txn, kind Kind, id string, forUpdate bool) (Resource, error) {
	lock := ""
	if forUpdate {
		lock = s.d.forUpdate
	}
	rs, err := s.query(ctx, tx, kind, []Cond{{Attr: "id", Value: id}}, -1, 0, lock)
	if err != nil {
		return Resource{}, fmt.Errorf("get %s %s: %w", strings.ToLower(string(kind)), id, err)
	}
	if len(rs) == 0 {
		return Resource{}, fmt.Errorf("%s %s: %w", strings.ToLower(string(kind)), id, ErrNotFound)
	}
	if err := s.decorate(ctx, tx, rs); err != nil {
		return Resource{}, fmt.Errorf("get %s %s: %w", strings.ToLower(string(kind)), id, err)
	}
	return rs[0], nil
}

// Update loads the resource, lets fn change it (Attributes and ExternalID; other fields are
// ignored) and saves the result with the next version, all in one transaction. An error from
// fn is returned unchanged and nothing is written. It returns the resource before and after.
//
// When the database aborts the transaction because of a concurrent one (a PostgreSQL deadlock
// or serialization failure, SQLite busy), Update runs it again from the start, up to three
// times in all: fn may then be called more than once. Each call gets a fresh deep copy of the
// resource as stored at that moment, so fn must only change that copy and keep no other
// effect of a call (no appending to outer slices, no changing maps it was given by the
// caller and handed on to the copy); then a retry is the same as a first run.
func (s *Store) Update(ctx context.Context, kind Kind, id string, fn func(*Resource) error) (before, after Resource, err error) {
	if _, err := table(kind); err != nil {
		return Resource{}, Resource{}, err
	}
	err = s.retry(ctx, "update", func() error {
		var err error
		before, after, err = s.update(ctx, kind, id, fn)
		return err
	})
	if err != nil {
		return Resource{}, Resource{}, err
	}
	return before, after, nil
}

// update is one attempt of Update's transaction.
func (s *Store) update(ctx context.Context, kind Kind, id string, fn func(*Resource) error) (before, after Resource, err error) {
	tx, err := s.begin(ctx, nil)
	if err != nil {
		return Resource{}, Resource{}, fmt.Errorf("update %s %s: %w", strings.ToLower(string(kind)), id, err)
	}
	defer func() { _ = tx.Rollback() }()
	before, err = s.get(ctx, tx, kind, id, true)
	if err != nil {
		return Resource{}, Resource{}, err
	}
	after = before.Clone()
	if err := fn(&after); err != nil {
		return Resource{}, Resource{}, err
	}
	if after.Attributes == nil {
		after.Attributes = map[string]any{}
	}
	after.Kind, after.ID, after.Created = before.Kind, before.ID, before.Created
	after.Version = before.Version + 1
	after.LastModified = s.now().UTC()
	if !after.LastModified.After(before.LastModified) {
		after.LastModified = before.LastModified.Add(time.Microsecond)
	}
	if err := s.write(ctx, tx, &before, &after); err != nil {
		return Resource{}, Resource{}, err
	}
	after, err = s.get(ctx, tx, kind, id, false)
	if err != nil {
		return Resource{}, Resource{}, err
	}
	if err := s.queueWrite(ctx, tx, kind, id, &before, &after); err != nil {
		return Resource{}, Resource{}, err
	}
	if err := tx.Commit(); err != nil {
		return Resource{}, Resource{}, fmt.Errorf("update %s %s: commit: %w", strings.ToLower(string(kind)), id, err)
	}
	s.queued()
	return before, after, nil
}

// Delete removes the resource and every membership row naming it, and returns it as it was.
func (s *Store) Delete(ctx context.Context, kind Kind, id string) (Resource, error) {
	return s.DeleteIf(ctx, kind, id, nil)
}

// DeleteIf is Delete with a precondition: check (when not nil) sees the resource as stored,
// in the same transaction and with its row locked, and an error from it is returned
// unchanged with nothing deleted (an If-Match check against the version, say). Like Update's
// fn, check may run again when the transaction is retried.
func (s *Store) DeleteIf(ctx context.Context, kind Kind, id string, check func(Resource) error) (Resource, error) {
	tbl, err := table(kind)
	if err != nil {
		return Resource{}, err
	}
	var old Resource
	err = s.retry(ctx, "delete", func() error {
		var err error
		old, err = s.delete(ctx, tbl, kind, id, check)
		return err
	})
	if err != nil {
		return Resource{}, err
	}
	return old, nil
}

// delete is one attempt of DeleteIf's transaction.
func (s *Store) delete(ctx context.Context, tbl string, kind Kind, id string, check func(Resource) error) (Resource, error) {
	what := strings.ToLower(string(kind)) + " " + id
	tx, err := s.begin(ctx, nil)
	if err != nil {
		return Resource{}, fmt.Errorf("delete %s: %w", what, err)
	}
	defer func() { _ = tx.Rollback() }()
	old, err := s.get(ctx, tx, kind, id, true)
	if err != nil {
		return Resource{}, err
	}
	if check != nil {
		if err := check(old); err != nil {
			return Resource{}, err
		}
	}
	// the users behind a deleted group's members are found before its membership rows go
	if err := s.queueWrite(ctx, tx, kind, id, &old, nil); err != nil {
		return Resource{}, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+tbl+` WHERE id = ?`, id); err != nil {
		return Resource{}, fmt.Errorf("delete %s: %w", what, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM scim_group_members WHERE member_id = ? OR group_id = ?`, id, id); err != nil {
		return Resource{}, fmt.Errorf("delete %s: memberships: %w", what, err)
	}
	if kind == KindUser {
		if _, err := tx.ExecContext(ctx, `DELETE FROM scim_user_emails WHERE user_id = ?`, id); err != nil {
			return Resource{}, fmt.Errorf("delete %s: e-mails: %w", what, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Resource{}, fmt.Errorf("delete %s: commit: %w", what, err)
	}
	s.queued()
	return old, nil
}

// List returns one page of the resources of a kind matching q, oldest first.
func (s *Store) List(ctx context.Context, kind Kind, q Query) (Page, error) {
	if _, err := table(kind); err != nil {
		return Page{}, err
	}
	what := "list " + strings.ToLower(string(kind)) + "s"
	start := max(q.StartIndex, 1)
	tx, err := s.beginRead(ctx)
	if err != nil {
		return Page{}, fmt.Errorf("%s: %w", what, err)
	}
	defer func() { _ = tx.Rollback() }()
	var page Page
	if q.Match == nil {
		total, err := s.count(ctx, tx, kind, q.Eq)
		if err != nil {
			return Page{}, fmt.Errorf("%s: %w", what, err)
		}
		page.Total = total
		if q.Count != 0 && start <= total {
			rs, err := s.query(ctx, tx, kind, q.Eq, q.Count, start-1, "")
			if err != nil {
				return Page{}, fmt.Errorf("%s: %w", what, err)
			}
			page.Resources = rs
		}
	} else {
		all, err := s.query(ctx, tx, kind, q.Eq, -1, 0, "")
		if err != nil {
			return Page{}, fmt.Errorf("%s: %w", what, err)
		}
		// Members and groups take part in filters ("members[value eq ...]").
		if err := s.decorate(ctx, tx, all); err != nil {
			return Page{}, fmt.Errorf("%s: %w", what, err)
		}
		matched := all[:0]
		for _, r := range all {
			if q.Match(r) {
				matched = append(matched, r)
			}
		}
		page.Total = len(matched)
		if start <= len(matched) && q.Count != 0 {
			end := len(matched)
			if q.Count > 0 {
				end = min(end, start-1+q.Count)
			}
			page.Resources = slices.Clone(matched[start-1 : end])
		}
		if page.Resources == nil {
			page.Resources = []Resource{}
		}
		return page, nil
	}
	if page.Resources == nil {
		page.Resources = []Resource{}
	}
	if err := s.decorate(ctx, tx, page.Resources); err != nil {
		return Page{}, fmt.Errorf("%s: %w", what, err)
	}
	return page, nil
}

// ExpandUsers returns the ids of the users that ids name: a user id stands for itself (even
// when the user no longer exists), a group id for every user in it, through nested groups.
// The result is sorted and without duplicates. It queries once to tell groups from users and
// once per level of nesting (per 500 ids), not once per id or group.
func (s *Store) ExpandUsers(ctx context.Context, ids []string) ([]string, error) {
	tx, err := s.beginRead(ctx)
	if err != nil {
		return nil, fmt.Errorf("expand users: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	return s.expandUsers(ctx, tx, ids)
}

// expandUsers is ExpandUsers inside tx.
func (s *Store) expandUsers(ctx context.Context, tx *txn, ids []string) ([]string, error) {
	isGroup := map[string]bool{}
	err := queryIn(ctx, tx, `SELECT id FROM scim_groups WHERE id IN `, ids, func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		isGroup[id] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("expand users: %w", err)
	}
	users := map[string]bool{}
	seenGroups := map[string]bool{}
	var level []string
	for _, id := range ids {
		switch {
		case !isGroup[id]:
			users[id] = true
		case !seenGroups[id]:
			seenGroups[id] = true
			level = append(level, id)
		}
	}
	for len(level) > 0 {
		var next []string
		err := queryIn(ctx, tx, `SELECT member_id, member_type FROM scim_group_members WHERE group_id IN `, level, func(rows *sql.Rows) error {
			var mid, mtype string
			if err := rows.Scan(&mid, &mtype); err != nil {
				return err
			}
			switch {
			case Kind(mtype) != KindGroup:
				users[mid] = true
			case !seenGroups[mid]:
				seenGroups[mid] = true
				next = append(next, mid)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("expand users: group members: %w", err)
		}
		level = next
	}
	return slices.Sorted(maps.Keys(users)), nil
}

// queryIn runs prefix followed by "(?, ?, ...)" for ids, 500 at a time, and calls row for
// every row of the results.
func queryIn(ctx context.Context, tx *txn, prefix string, ids []string, row func(*sql.Rows) error) error {
	return queryInLock(ctx, tx, prefix, ids, "", row)
}

// queryInLock is queryIn with lock (the dialect's forShare or forUpdate, or "") after the list.
func queryInLock(ctx context.Context, tx *txn, prefix string, ids []string, lock string, row func(*sql.Rows) error) error {
	const chunk = 500
	for lo := 0; lo < len(ids); lo += chunk {
		part := ids[lo:min(lo+chunk, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		rows, err := tx.QueryContext(ctx, prefix+`(`+strings.TrimSuffix(strings.Repeat("?,", len(part)), ",")+`)`+lock, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := row(rows); err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// sqlColumn maps a Cond attribute to its column and the value to compare with.
func sqlColumn(kind Kind, c Cond) (string, string, error) {
	switch {
	case c.Attr == "id":
		return "id", c.Value, nil
	case strings.EqualFold(c.Attr, "externalId"):
		return "external_id", c.Value, nil
	case kind == KindUser && strings.EqualFold(c.Attr, "userName"):
		return "user_name_key", foldKey(c.Value), nil
	case kind == KindGroup && strings.EqualFold(c.Attr, "displayName"):
		return "display_name_key", foldKey(c.Value), nil
	}
	return "", "", fmt.Errorf("%w: condition on %q is not supported for %s", ErrInvalid, c.Attr, kind)
}

func where(kind Kind, conds []Cond) (string, []any, error) {
	if len(conds) == 0 {
		return "", nil, nil
	}
	parts := make([]string, 0, len(conds))
	args := make([]any, 0, len(conds))
	for _, c := range conds {
		col, v, err := sqlColumn(kind, c)
		if err != nil {
			return "", nil, err
		}
		parts = append(parts, col+" = ?")
		args = append(args, v)
	}
	return " WHERE " + strings.Join(parts, " AND "), args, nil
}

func (s *Store) count(ctx context.Context, tx *txn, kind Kind, conds []Cond) (int, error) {
	tbl, err := table(kind)
	if err != nil {
		return 0, err
	}
	w, args, err := where(kind, conds)
	if err != nil {
		return 0, err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+tbl+w, args...).Scan(&n); err != nil {
		return 0, err
	}
	return n, nil
}

// query reads the resources of a kind matching conds, oldest first, without members or
// groups (see decorate). lock is appended to the statement ("" or the dialect's forUpdate).
func (s *Store) query(ctx context.Context, tx *txn, kind Kind, conds []Cond, limit, offset int, lock string) ([]Resource, error) {
	tbl, err := table(kind)
	if err != nil {
		return nil, err
	}
	w, args, err := where(kind, conds)
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + resourceColumns + ` FROM ` + tbl + w + ` ORDER BY created, id`
	if limit >= 0 {
		q += ` LIMIT ? OFFSET ?`
		args = append(args, limit, offset)
	} else if offset > 0 {
		q += ` ` + s.d.limitAll + ` OFFSET ?`
		args = append(args, offset)
	}
	rows, err := tx.QueryContext(ctx, q+lock, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Resource
	for rows.Next() {
		r, err := scanResource(rows, kind)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// resourceColumns are the columns scanResource reads, in its order.
const resourceColumns = `id, external_id, data, version, created, last_modified`

// scanResource reads one row of resourceColumns.
func scanResource(rows *sql.Rows, kind Kind) (Resource, error) {
	var (
		r                 Resource
		ext               sql.NullString
		data              string
		created, modified string
	)
	if err := rows.Scan(&r.ID, &ext, &data, &r.Version, &created, &modified); err != nil {
		return Resource{}, err
	}
	r.Kind = kind
	r.ExternalID = ext.String
	r.Created, r.LastModified = parseTime(created), parseTime(modified)
	var err error
	if r.Attributes, err = decodeAttributes(data); err != nil {
		return Resource{}, fmt.Errorf("%s %s: stored document: %w", strings.ToLower(string(kind)), r.ID, err)
	}
	return r, nil
}

// decorate fills "members" of groups and "groups" of users from the membership rows.
func (s *Store) decorate(ctx context.Context, tx *txn, rs []Resource) error {
	if len(rs) == 0 {
		return nil
	}
	const chunk = 500
	for lo := 0; lo < len(rs); lo += chunk {
		part := rs[lo:min(lo+chunk, len(rs))]
		ids := make([]any, len(part))
		idx := make(map[string]int, len(part))
		for i, r := range part {
			ids[i] = r.ID
			idx[r.ID] = i
		}
		in := strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")
		if part[0].Kind == KindGroup {
			rows, err := tx.QueryContext(ctx, `SELECT group_id, member_id, member_type, display FROM scim_group_members
				WHERE group_id IN (`+in+`) ORDER BY group_id, member_id`, ids...)
			if err != nil {
				return fmt.Errorf("load members: %w", err)
			}
			lists := map[string][]any{}
			for rows.Next() {
				var gid, mid, mtype string
				var display sql.NullString
				if err := rows.Scan(&gid, &mid, &mtype, &display); err != nil {
					rows.Close()
					return fmt.Errorf("load members: %w", err)
				}
				m := map[string]any{"value": mid, "type": mtype}
				if display.String != "" {
					m["display"] = display.String
				}
				lists[gid] = append(lists[gid], m)
			}
			if err := rows.Close(); err != nil {
				return fmt.Errorf("load members: %w", err)
			}
			for i := range part {
				delete(part[i].Attributes, "members")
				if l := lists[part[i].ID]; len(l) > 0 {
					part[i].Attributes["members"] = l
				}
			}
			continue
		}
		rows, err := tx.QueryContext(ctx, `SELECT m.member_id, g.id, g.display_name FROM scim_group_members m
			JOIN scim_groups g ON g.id = m.group_id
			WHERE m.member_id IN (`+in+`) ORDER BY m.member_id, g.id`, ids...)
		if err != nil {
			return fmt.Errorf("load user groups: %w", err)
		}
		lists := map[string][]any{}
		for rows.Next() {
			var uid, gid, name string
			if err := rows.Scan(&uid, &gid, &name); err != nil {
				rows.Close()
				return fmt.Errorf("load user groups: %w", err)
			}
			lists[uid] = append(lists[uid], map[string]any{"value": gid, "display": name, "type": "direct"})
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("load user groups: %w", err)
		}
		for i := range part {
			delete(part[i].Attributes, "groups")
			if l := lists[part[i].ID]; len(l) > 0 {
				part[i].Attributes["groups"] = l
			}
		}
	}
	return nil
}

// write inserts (old == nil) or updates r, including group membership rows.
func (s *Store) write(ctx context.Context, tx *txn, old, r *Resource) error {
	what := strings.ToLower(string(r.Kind)) + " " + r.ID
	attrs := cloneMap(r.Attributes)
	delete(attrs, "id")
	delete(attrs, "externalId")
	delete(attrs, "meta")
	delete(attrs, "schemas")
	switch r.Kind {
	case KindUser:
		delete(attrs, "groups")   // read-only, derived from memberships
		delete(attrs, "password") // never kept
		userName := strings.TrimSpace(stringAttr(attrs, "userName"))
		if userName == "" {
			return fmt.Errorf("%w: userName is required", ErrInvalid)
		}
		var other string
		err := tx.QueryRowContext(ctx, `SELECT id FROM scim_users WHERE user_name_key = ? AND id <> ?`,
			foldKey(userName), r.ID).Scan(&other)
		switch {
		case err == nil:
			return fmt.Errorf("userName %q: %w by user %s (userName is compared case-insensitively)", userName, ErrConflict, other)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%s: check userName: %w", what, err)
		}
		active := 0 // an INTEGER column on both backends
		if b, ok := directory.SCIMActive(attrs["active"]); ok && b {
			active = 1 // an active that is not a boolean is not active (it fails closed)
		}
		data, err := encodeAttributes(attrs)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if old == nil {
			_, err = tx.ExecContext(ctx, `INSERT INTO scim_users
				(id, user_name, user_name_key, external_id, active, data, created, last_modified, display_name, version)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				r.ID, userName, foldKey(userName), nullString(r.ExternalID), active, data,
				formatTime(r.Created), formatTime(r.LastModified), nullString(stringAttr(attrs, "displayName")), r.Version)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE scim_users SET user_name = ?, user_name_key = ?, external_id = ?,
				active = ?, data = ?, last_modified = ?, display_name = ?, version = ? WHERE id = ?`,
				userName, foldKey(userName), nullString(r.ExternalID), active, data,
				formatTime(r.LastModified), nullString(stringAttr(attrs, "displayName")), r.Version, r.ID)
		}
		if s.d.uniqueViolation(err, "scim_users", "user_name_key") {
			// Another transaction (another replica, on PostgreSQL) stored it after our check.
			return fmt.Errorf("userName %q: %w (userName is compared case-insensitively)", userName, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("%s: save: %w", what, err)
		}
		if err := writeEmails(ctx, tx, r.ID, attrs, old != nil); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	case KindGroup:
		name := strings.TrimSpace(stringAttr(attrs, "displayName"))
		if name == "" {
			return fmt.Errorf("%w: displayName is required", ErrInvalid)
		}
		var previous []Member
		if old != nil {
			previous = old.Members()
		}
		members, err := s.resolveMembers(ctx, tx, r.ID, membersOf(attrs), previous)
		if err != nil {
			return err
		}
		delete(attrs, "members")
		data, err := encodeAttributes(attrs)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if old == nil {
			_, err = tx.ExecContext(ctx, `INSERT INTO scim_groups
				(id, display_name, display_name_key, external_id, data, created, last_modified, version)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				r.ID, name, foldKey(name), nullString(r.ExternalID), data,
				formatTime(r.Created), formatTime(r.LastModified), r.Version)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE scim_groups SET display_name = ?, display_name_key = ?, external_id = ?,
				data = ?, last_modified = ?, version = ? WHERE id = ?`,
				name, foldKey(name), nullString(r.ExternalID), data, formatTime(r.LastModified), r.Version, r.ID)
		}
		if err != nil {
			return fmt.Errorf("%s: save: %w", what, err)
		}
		return s.writeMembers(ctx, tx, r.ID, previous, members)
	}
	return fmt.Errorf("%w: unknown resource kind %q", ErrInvalid, r.Kind)
}

// emailKeys are the keys of scim_user_emails for a user's attributes: its e-mail values as
// directory.User has them, trimmed, lower-cased, without duplicates.
func emailKeys(id string, attrs map[string]any) []string {
	var keys []string
	for _, e := range ToDirectoryUser(Resource{Kind: KindUser, ID: id, Attributes: attrs}).Emails {
		if k := strings.ToLower(strings.TrimSpace(e.Value)); k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// writeEmails stores the user's e-mail keys in scim_user_emails (replacing what was there
// when replace is set).
func writeEmails(ctx context.Context, tx *txn, id string, attrs map[string]any, replace bool) error {
	if replace {
		if _, err := tx.ExecContext(ctx, `DELETE FROM scim_user_emails WHERE user_id = ?`, id); err != nil {
			return fmt.Errorf("save e-mails: %w", err)
		}
	}
	for _, k := range emailKeys(id, attrs) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO scim_user_emails (email_key, user_id) VALUES (?, ?)`, k, id); err != nil {
			return fmt.Errorf("save e-mail: %w", err)
		}
	}
	return nil
}

// resolveMembers checks that every new member exists, sets its kind and drops duplicates.
// Members the group already had (previous) keep their kind without a query: a member's
// deletion removes its membership rows, so they exist. The new ones are looked up in batches
// (queryIn): a one-member change of a large group costs a few queries, not one per member.
func (s *Store) resolveMembers(ctx context.Context, tx *txn, groupID string, in, previous []Member) ([]Member, error) {
	known := make(map[string]Kind, len(previous))
	for _, m := range previous {
		known[m.ID] = m.Kind
	}
	seen := map[string]bool{}
	out := make([]Member, 0, len(in))
	var unknown []string
	for _, m := range in {
		if m.ID == "" || seen[m.ID] {
			continue
		}
		seen[m.ID] = true
		if m.ID == groupID {
			return nil, fmt.Errorf("%w: a group cannot be a member of itself", ErrInvalid)
		}
		if _, ok := known[m.ID]; !ok {
			unknown = append(unknown, m.ID)
		}
		out = append(out, m)
	}
	if len(unknown) > 0 {
		// on PostgreSQL FOR SHARE keeps them from being deleted until the transaction ends
		// (a member must not vanish under a group being saved)
		for _, tbl := range []struct {
			name string
			kind Kind
		}{{"scim_users", KindUser}, {"scim_groups", KindGroup}} {
			err := queryInLock(ctx, tx, `SELECT id FROM `+tbl.name+` WHERE id IN `, unknown, s.d.forShare, func(rows *sql.Rows) error {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				known[id] = tbl.kind
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("check members: %w", err)
			}
		}
	}
	for i, m := range out {
		kind, ok := known[m.ID]
		if !ok {
			return nil, fmt.Errorf("member %q: %w", m.ID, ErrInvalidMember)
		}
		out[i].Kind = kind
	}
	return out, nil
}

// writeMembers applies the difference between the previous and the new member lists.
func (s *Store) writeMembers(ctx context.Context, tx *txn, groupID string, previous, next []Member) error {
	prev := make(map[string]Member, len(previous))
	for _, m := range previous {
		prev[m.ID] = m
	}
	keep := make(map[string]bool, len(next))
	for _, m := range next {
		keep[m.ID] = true
		p, had := prev[m.ID]
		switch {
		case !had:
			if _, err := tx.ExecContext(ctx, `INSERT INTO scim_group_members (group_id, member_id, member_type, display)
				VALUES (?, ?, ?, ?)`, groupID, m.ID, string(m.Kind), nullString(m.Display)); err != nil {
				return fmt.Errorf("add member %s: %w", m.ID, err)
			}
		case p.Display != m.Display || p.Kind != m.Kind:
			if _, err := tx.ExecContext(ctx, `UPDATE scim_group_members SET member_type = ?, display = ?
				WHERE group_id = ? AND member_id = ?`, string(m.Kind), nullString(m.Display), groupID, m.ID); err != nil {
				return fmt.Errorf("update member %s: %w", m.ID, err)
			}
		}
	}
	for id := range prev {
		if !keep[id] {
			if _, err := tx.ExecContext(ctx, `DELETE FROM scim_group_members WHERE group_id = ? AND member_id = ?`,
				groupID, id); err != nil {
				return fmt.Errorf("remove member %s: %w", id, err)
			}
		}
	}
	return nil
}

func membersOf(attrs map[string]any) []Member {
	list, _ := attrs["members"].([]any)
	out := make([]Member, 0, len(list))
	for _, v := range list {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		id, _ := m["value"].(string)
		if id == "" {
			continue
		}
		mt, _ := m["type"].(string)
		display, _ := m["display"].(string)
		out = append(out, Member{ID: id, Kind: Kind(mt), Display: display})
	}
	return out
}

func stringAttr(attrs map[string]any, name string) string {
	if v, ok := attrs[name].(string); ok {
		return v
	}
	for k, v := range attrs {
		if strings.EqualFold(k, name) {
			if s, ok := v.(string); ok {
				return s
			}
		}
	}
	return ""
}

func encodeAttributes(attrs map[string]any) (string, error) {
	b, err := json.Marshal(attrs)
	if err != nil {
		return "", fmt.Errorf("encode attributes: %w", err)
	}
	return string(b), nil
}

func decodeAttributes(data string) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader([]byte(data)))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneMap(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneValue(e)
		}
		return out
	}
	return v
}
