package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/babelforce/bridge/directory"
)

// EnterpriseUserSchema is the URN of the SCIM enterprise user extension (RFC 7643 section 4.3).
const EnterpriseUserSchema = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// Source is the Snapshot.Source of what the store reads.
const Source = "scim-store"

var _ directory.Reader = (*Store)(nil)

// Read returns everything IdPs pushed as a directory snapshot, read in one transaction:
// users (ID = SCIM id, attributes flattened, see FlattenUser), every group (ID = SCIM id,
// Name = displayName) with its direct members, resolved with Snapshot.Resolve.
func (s *Store) Read(ctx context.Context) (*directory.Snapshot, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read store: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	users, err := s.query(ctx, tx, KindUser, nil, -1, 0)
	if err != nil {
		return nil, fmt.Errorf("read store: users: %w", err)
	}
	groups, err := s.query(ctx, tx, KindGroup, nil, -1, 0)
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

// ToDirectoryUser converts a stored SCIM user to a directory.User.
func ToDirectoryUser(r Resource) directory.User {
	a := r.Attributes
	u := directory.User{
		ID:          r.ID,
		UserName:    stringAttr(a, "userName"),
		ExternalID:  r.ExternalID,
		DisplayName: stringAttr(a, "displayName"),
		Active:      true,
		Attributes:  FlattenUser(r),
	}
	if b, ok := a["active"].(bool); ok {
		u.Active = b
	}
	if name, ok := a["name"].(map[string]any); ok {
		u.GivenName = stringAttr(name, "givenName")
		u.FamilyName = stringAttr(name, "familyName")
	}
	for _, e := range complexList(a["emails"]) {
		if v := stringAttr(e, "value"); v != "" {
			u.Emails = append(u.Emails, directory.Email{Value: v, Type: stringAttr(e, "type"), Primary: boolAttr(e, "primary")})
		}
	}
	for _, p := range complexList(a["phoneNumbers"]) {
		if v := stringAttr(p, "value"); v != "" {
			u.Phones = append(u.Phones, directory.Phone{Value: v, Type: stringAttr(p, "type"), Primary: boolAttr(p, "primary")})
		}
	}
	if u.DisplayName == "" {
		u.DisplayName = strings.TrimSpace(u.GivenName + " " + u.FamilyName)
	}
	return u
}

// FlattenUser turns a SCIM user into the lower-cased attribute map of directory.User, with the
// keys the upstream SCIM source uses:
//
//   - simple attributes by name: "username", "displayname", "title", "usertype", "active"
//     ("true"/"false"), "externalid", "locale", "preferredlanguage", ...
//   - sub-attributes of complex ones: "name.givenname", "name.familyname", "name.formatted"
//   - multi-valued ones: "emails" (every value), "emails.work" (values of that type), and for
//     entries with more sub-attributes "addresses.work.locality", "addresses.locality"
//   - extension attributes under their full URN path and, for the enterprise extension, the
//     alias "enterprise.<name>": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department"
//     and "enterprise.department"; the manager as "...:manager" / "enterprise.manager" (its id)
//     and "...:manager.displayname".
func FlattenUser(r Resource) map[string][]string {
	out := map[string][]string{}
	add := func(key string, vals ...string) {
		key = strings.ToLower(key)
		for _, v := range vals {
			if v != "" && !slices.Contains(out[key], v) {
				out[key] = append(out[key], v)
			}
		}
	}
	if r.ExternalID != "" {
		add("externalid", r.ExternalID)
	}
	var flatten func(prefixes []string, name string, v any)
	flatten = func(prefixes []string, name string, v any) {
		keys := make([]string, len(prefixes))
		for i, p := range prefixes {
			keys[i] = p + name
		}
		switch v := v.(type) {
		case map[string]any:
			for k, sub := range v {
				if _, nested := sub.(map[string]any); nested {
					continue
				}
				for _, key := range keys {
					add(key+"."+k, scalars(sub)...)
				}
			}
			// A complex single value (manager) is also known by its "value".
			if val := stringAttr(v, "value"); val != "" {
				for _, key := range keys {
					add(key, val)
				}
			}
		case []any:
			for _, e := range v {
				m, ok := e.(map[string]any)
				if !ok {
					for _, key := range keys {
						add(key, scalars(e)...)
					}
					continue
				}
				typ := strings.ToLower(stringAttr(m, "type"))
				val := stringAttr(m, "value")
				if val == "" {
					val = stringAttr(m, "formatted")
				}
				for _, key := range keys {
					add(key, val)
					if typ != "" {
						add(key+"."+typ, val)
					}
					if boolAttr(m, "primary") {
						add(key+".primary", val)
					}
				}
				for k, sub := range m {
					switch strings.ToLower(k) {
					case "value", "type", "primary", "display", "$ref":
						continue
					}
					for _, key := range keys {
						add(key+"."+k, scalars(sub)...)
						if typ != "" {
							add(key+"."+typ+"."+k, scalars(sub)...)
						}
					}
				}
			}
		default:
			for _, key := range keys {
				add(key, scalars(v)...)
			}
		}
	}
	for name, v := range r.Attributes {
		switch name {
		case "groups", "password", "schemas", "meta", "id":
			continue
		}
		if strings.HasPrefix(strings.ToLower(name), "urn:") {
			ext, ok := v.(map[string]any)
			if !ok {
				continue
			}
			prefixes := []string{name + ":"}
			if strings.EqualFold(name, EnterpriseUserSchema) {
				prefixes = append(prefixes, "enterprise.")
			}
			for k, sub := range ext {
				flatten(prefixes, k, sub)
			}
			continue
		}
		flatten([]string{""}, name, v)
	}
	return out
}

func scalars(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case bool:
		return []string{strconv.FormatBool(v)}
	case json.Number:
		return []string{v.String()}
	case float64:
		return []string{strconv.FormatFloat(v, 'f', -1, 64)}
	case int64:
		return []string{strconv.FormatInt(v, 10)}
	case int:
		return []string{strconv.Itoa(v)}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, scalars(e)...)
		}
		return out
	}
	return nil
}

func complexList(v any) []map[string]any {
	list, _ := v.([]any)
	out := make([]map[string]any, 0, len(list))
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func boolAttr(m map[string]any, name string) bool {
	for k, v := range m {
		if strings.EqualFold(k, name) {
			switch v := v.(type) {
			case bool:
				return v
			case string:
				b, _ := strconv.ParseBool(v)
				return b
			}
		}
	}
	return false
}
