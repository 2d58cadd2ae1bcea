package scimserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"

	"github.com/babelforce/bridge/directory/store"
)

// resourceHandler connects the library to the store for one resource type.
type resourceHandler struct {
	s          *server
	kind       store.Kind
	idx        *schemaIndex
	coreSchema schema.Schema
	extSchemas []schema.Schema
}

var _ scim.ResourceHandler = (*resourceHandler)(nil)

// toStore turns validated attributes into a store resource.
func (h *resourceHandler) toStore(attrs scim.ResourceAttributes) store.Resource {
	r := store.Resource{Kind: h.kind, Attributes: map[string]any{}}
	for k, v := range attrs {
		switch k {
		case "externalId":
			r.ExternalID, _ = v.(string)
		case "id", "meta", "schemas", "password", "groups":
		default:
			r.Attributes[k] = v
		}
	}
	if h.kind == store.KindGroup {
		r.Attributes["members"] = normalizeMembers(r.Attributes["members"])
	}
	h.idx.singlePrimary(r.Attributes)
	return r
}

// toSCIM turns a stored resource into the library's form, applying attributes and
// excludedAttributes from the query.
func (h *resourceHandler) toSCIM(r *http.Request, res store.Resource) scim.Resource {
	attrs := make(scim.ResourceAttributes, len(res.Attributes))
	for k, v := range res.Attributes {
		attrs[k] = v
	}
	if h.kind == store.KindGroup {
		if list, ok := attrs["members"].([]any); ok {
			for _, m := range list {
				if mm, ok := m.(map[string]any); ok {
					if t, _ := mm["type"].(string); t != "" {
						mm["$ref"] = h.ref(r, t, fmt.Sprint(mm["value"]))
					}
				}
			}
		}
	}
	if r != nil {
		attrs = project(attrs, h.idx, r.URL.Query().Get("attributes"), r.URL.Query().Get("excludedAttributes"))
	}
	created, modified := res.Created, res.LastModified
	out := scim.Resource{
		ID:         res.ID,
		Attributes: attrs,
		Meta: scim.Meta{
			Created:      &created,
			LastModified: &modified,
			Version:      res.ETag(),
		},
	}
	if res.ExternalID != "" {
		out.ExternalID = optional.NewString(res.ExternalID)
	}
	return out
}

func (h *resourceHandler) ref(r *http.Request, kind, id string) string {
	endpoint := "Users"
	if kind == string(store.KindGroup) {
		endpoint = "Groups"
	}
	base := strings.TrimRight(h.s.opts.BaseURL, "/")
	if r != nil && baseFrom(r.Context()) != "" {
		base = baseFrom(r.Context())
	}
	return absolute(base, endpoint+"/"+id)
}

// storeError maps store errors to SCIM errors; unknown ones are logged and hidden.
func (h *resourceHandler) storeError(r *http.Request, id string, err error) error {
	var se scimerrors.ScimError
	switch {
	case errors.As(err, &se):
		return se
	case errors.Is(err, store.ErrNotFound):
		return scimerrors.ScimErrorResourceNotFound(id)
	case errors.Is(err, store.ErrConflict):
		return scimError(scimerrors.ScimErrorUniqueness, err.Error())
	case errors.Is(err, store.ErrInvalidMember), errors.Is(err, store.ErrInvalid):
		return scimError(scimerrors.ScimErrorInvalidValue, err.Error())
	case errors.Is(err, errPrecondition):
		return scimerrors.ScimError{Status: http.StatusPreconditionFailed,
			Detail: "If-Match does not match the current version (meta.version) of the resource"}
	}
	h.s.log.Error("scim request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	return scimerrors.ScimError{Status: http.StatusInternalServerError, Detail: "internal error"}
}

var errPrecondition = errors.New("precondition failed")

// checkIfMatch enforces an If-Match header against the stored version.
func checkIfMatch(r *http.Request, res *store.Resource) error {
	im := strings.TrimSpace(r.Header.Get("If-Match"))
	if im == "" || im == "*" {
		return nil
	}
	want := strings.TrimPrefix(res.ETag(), "W/")
	for _, tag := range strings.Split(im, ",") {
		if strings.TrimPrefix(strings.TrimSpace(tag), "W/") == want {
			return nil
		}
	}
	return errPrecondition
}

// Create implements scim.ResourceHandler.
func (h *resourceHandler) Create(r *http.Request, attrs scim.ResourceAttributes) (scim.Resource, error) {
	res, err := h.s.st.Create(r.Context(), h.toStore(attrs))
	if err != nil {
		return scim.Resource{}, h.storeError(r, "", err)
	}
	h.s.log.Info("scim create", "kind", h.kind, "id", res.ID, "external_id", res.ExternalID)
	if h.kind == store.KindUser {
		h.s.notifyChange(r.Context(), "scim:create_user", []string{res.ID})
	} else {
		h.notifyGroup(r.Context(), "scim:create_group", nil, &res)
	}
	return h.toSCIM(r, res), nil
}

// Get implements scim.ResourceHandler.
func (h *resourceHandler) Get(r *http.Request, id string) (scim.Resource, error) {
	res, err := h.s.st.Get(r.Context(), h.kind, id)
	if err != nil {
		return scim.Resource{}, h.storeError(r, id, err)
	}
	return h.toSCIM(r, res), nil
}

// GetAll implements scim.ResourceHandler.
func (h *resourceHandler) GetAll(r *http.Request, params scim.ListRequestParams) (scim.Page, error) {
	q := store.Query{StartIndex: params.StartIndex, Count: params.Count}
	if raw := strings.TrimSpace(filterFrom(r.Context())); raw != "" {
		cf, err := h.compileFilter(raw)
		if err != nil {
			return scim.Page{}, err
		}
		conds, complete := pushdown(cf.expr, h.kind)
		q.Eq = conds
		if !complete {
			q.Match = func(res store.Resource) bool { return passes(cf.validator, h.matchDoc(res)) }
		}
	}
	page, err := h.s.st.List(r.Context(), h.kind, q)
	if err != nil {
		return scim.Page{}, h.storeError(r, "", err)
	}
	out := scim.Page{TotalResults: page.Total, Resources: make([]scim.Resource, 0, len(page.Resources))}
	for _, res := range page.Resources {
		out.Resources = append(out.Resources, h.toSCIM(r, res))
	}
	return out, nil
}

// Replace implements scim.ResourceHandler (PUT).
func (h *resourceHandler) Replace(r *http.Request, id string, attrs scim.ResourceAttributes) (scim.Resource, error) {
	next := h.toStore(attrs)
	before, after, err := h.s.st.Update(r.Context(), h.kind, id, func(res *store.Resource) error {
		if err := checkIfMatch(r, res); err != nil {
			return err
		}
		res.Attributes = next.Attributes
		// Okta's PUT does not repeat externalId: keep the IdP's id unless a new one is given.
		if next.ExternalID != "" {
			res.ExternalID = next.ExternalID
		}
		return nil
	})
	if err != nil {
		return scim.Resource{}, h.storeError(r, id, err)
	}
	h.s.log.Info("scim replace", "kind", h.kind, "id", id, "version", after.Version)
	if h.kind == store.KindUser {
		h.s.notifyChange(r.Context(), "scim:replace_user", []string{id})
	} else {
		h.notifyGroup(r.Context(), "scim:replace_group", &before, &after)
	}
	return h.toSCIM(r, after), nil
}

// Patch implements scim.ResourceHandler.
func (h *resourceHandler) Patch(r *http.Request, id string, ops []scim.PatchOperation) (scim.Resource, error) {
	before, after, err := h.s.st.Update(r.Context(), h.kind, id, func(res *store.Resource) error {
		if err := checkIfMatch(r, res); err != nil {
			return err
		}
		doc := res.Attributes
		if doc == nil {
			doc = map[string]any{}
		}
		delete(doc, "groups")
		if res.ExternalID != "" {
			doc["externalId"] = res.ExternalID
		}
		if err := h.idx.applyPatch(doc, ops); err != nil {
			return err
		}
		res.ExternalID, _ = doc["externalId"].(string)
		delete(doc, "externalId")
		if h.kind == store.KindGroup {
			doc["members"] = normalizeMembers(doc["members"])
		}
		res.Attributes = doc
		return nil
	})
	if err != nil {
		var se scimerrors.ScimError
		if errors.As(err, &se) {
			if se.Detail == "" {
				se.Detail = err.Error()
			}
			return scim.Resource{}, se
		}
		return scim.Resource{}, h.storeError(r, id, err)
	}
	h.s.log.Info("scim patch", "kind", h.kind, "id", id, "operations", len(ops), "version", after.Version)
	if h.kind == store.KindUser {
		h.s.notifyChange(r.Context(), "scim:patch_user", []string{id})
	} else {
		h.notifyGroup(r.Context(), "scim:patch_group", &before, &after)
	}
	return h.toSCIM(r, after), nil
}

// Delete implements scim.ResourceHandler.
func (h *resourceHandler) Delete(r *http.Request, id string) error {
	// The If-Match check runs in the delete's transaction: no second read, no race with a
	// write in between.
	old, err := h.s.st.DeleteIf(r.Context(), h.kind, id, func(cur store.Resource) error {
		return checkIfMatch(r, &cur)
	})
	if err != nil {
		return h.storeError(r, id, err)
	}
	h.s.log.Info("scim delete", "kind", h.kind, "id", id)
	if h.kind == store.KindUser {
		h.s.notifyChange(r.Context(), "scim:delete_user", []string{id})
	} else {
		h.notifyGroup(r.Context(), "scim:delete_group", &old, nil)
	}
	return nil
}

// notifyGroup tells OnChange about the users a group change affects: the users behind added
// or removed members, or every user in the group when it was created, renamed or deleted.
func (h *resourceHandler) notifyGroup(ctx context.Context, trigger string, before, after *store.Resource) {
	if h.s.opts.OnChange == nil {
		return
	}
	var changed []string
	switch {
	case before == nil && after != nil:
		changed = memberIDs(after)
	case before != nil && after == nil:
		changed = memberIDs(before)
	default:
		b, a := memberIDs(before), memberIDs(after)
		if !strings.EqualFold(fmt.Sprint(before.Attributes["displayName"]), fmt.Sprint(after.Attributes["displayName"])) ||
			before.ExternalID != after.ExternalID {
			changed = append(b, a...)
		} else {
			// sets, not slices.Contains: a group of 10,000 members made this 10^8 compares
			inB, inA := make(map[string]bool, len(b)), make(map[string]bool, len(a))
			for _, id := range b {
				inB[id] = true
			}
			for _, id := range a {
				inA[id] = true
				if !inB[id] {
					changed = append(changed, id)
				}
			}
			for _, id := range b {
				if !inA[id] {
					changed = append(changed, id)
				}
			}
		}
	}
	if len(changed) == 0 {
		return
	}
	users, err := h.s.st.ExpandUsers(ctx, changed)
	if err != nil {
		h.s.log.Warn("cannot find the users a group change affects; the periodic run will catch up",
			"trigger", trigger, "error", err)
		return
	}
	h.s.notifyChange(ctx, trigger, users)
}

func memberIDs(r *store.Resource) []string {
	var out []string
	for _, m := range r.Members() {
		out = append(out, m.ID)
	}
	return out
}

// normalizeMembers keeps the value and display of each member (type is decided by the store).
func normalizeMembers(v any) []any {
	list, _ := v.([]any)
	out := make([]any, 0, len(list))
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		id, _ := m["value"].(string)
		if id == "" {
			continue
		}
		n := map[string]any{"value": id}
		if d, _ := m["display"].(string); d != "" {
			n["display"] = d
		}
		out = append(out, n)
	}
	return out
}

// pushdown extracts the equality conditions the store can evaluate in SQL from a filter.
// complete says the conditions are the whole filter.
func pushdown(e filter.Expression, kind store.Kind) ([]store.Cond, bool) {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		if c, ok := sqlCond(e, kind); ok {
			return []store.Cond{c}, true
		}
		return nil, false
	case *filter.LogicalExpression:
		if e.Operator != filter.AND {
			return nil, false
		}
		l, lok := pushdown(e.Left, kind)
		r, rok := pushdown(e.Right, kind)
		return append(l, r...), lok && rok
	}
	return nil, false
}

func sqlCond(e *filter.AttributeExpression, kind store.Kind) (store.Cond, bool) {
	if e.Operator != filter.EQ || e.AttributePath.SubAttribute != nil {
		return store.Cond{}, false
	}
	if uri := e.AttributePath.URI(); uri != "" && !strings.HasPrefix(strings.ToLower(uri), "urn:ietf:params:scim:schemas:core:2.0:") {
		return store.Cond{}, false
	}
	v, ok := e.CompareValue.(string)
	if !ok {
		return store.Cond{}, false
	}
	name := strings.ToLower(e.AttributePath.AttributeName)
	switch {
	case name == "id":
		return store.Cond{Attr: "id", Value: v}, true
	case name == "externalid":
		return store.Cond{Attr: "externalId", Value: v}, true
	case name == "username" && kind == store.KindUser:
		return store.Cond{Attr: "userName", Value: v}, true
	case name == "displayname" && kind == store.KindGroup:
		return store.Cond{Attr: "displayName", Value: v}, true
	}
	return store.Cond{}, false
}

// project applies the attributes / excludedAttributes query parameters (comma-separated
// attribute paths such as "userName", "name.givenName", "members" or an extension attribute
// with its URN). id, schemas and meta are always returned (the library adds them).
func project(attrs scim.ResourceAttributes, idx *schemaIndex, include, exclude string) scim.ResourceAttributes {
	inc, exc := splitList(include), splitList(exclude)
	if len(inc) == 0 && len(exc) == 0 {
		return attrs
	}
	type target struct {
		container string // "" = core, else extension id
		name, sub string
	}
	resolve := func(p string) (target, bool) {
		lp := strings.ToLower(p)
		for lid, ext := range idx.exts {
			if lp == lid {
				return target{container: ext.id}, true
			}
			if strings.HasPrefix(lp, lid+":") {
				rest := p[len(lid)+1:]
				name, sub, _ := strings.Cut(rest, ".")
				if info, ok := ext.attrs[strings.ToLower(name)]; ok {
					return target{container: ext.id, name: info.name, sub: canonicalSub(info, sub)}, true
				}
				return target{}, false
			}
		}
		if strings.HasPrefix(lp, strings.ToLower(idx.coreID)+":") {
			p = p[len(idx.coreID)+1:]
		}
		name, sub, _ := strings.Cut(p, ".")
		if info, ok := idx.core[strings.ToLower(name)]; ok {
			return target{name: info.name, sub: canonicalSub(info, sub)}, true
		}
		return target{}, false
	}
	if len(inc) > 0 {
		out := scim.ResourceAttributes{}
		for _, p := range inc {
			t, ok := resolve(p)
			if !ok {
				continue
			}
			src := map[string]any(attrs)
			dst := map[string]any(out)
			if t.container != "" {
				ext, ok := attrs[t.container].(map[string]any)
				if !ok {
					continue
				}
				if t.name == "" {
					out[t.container] = ext
					continue
				}
				d, _ := out[t.container].(map[string]any)
				if d == nil {
					d = map[string]any{}
					out[t.container] = d
				}
				src, dst = ext, d
			}
			v, ok := src[t.name]
			if !ok {
				continue
			}
			if t.sub == "" {
				dst[t.name] = v
				continue
			}
			dst[t.name] = mergeSub(dst[t.name], v, t.sub)
		}
		return out
	}
	out := make(scim.ResourceAttributes, len(attrs))
	for k, v := range attrs {
		out[k] = v
	}
	for _, p := range exc {
		t, ok := resolve(p)
		if !ok {
			continue
		}
		container := map[string]any(out)
		if t.container != "" {
			ext, ok := out[t.container].(map[string]any)
			if !ok {
				continue
			}
			if t.name == "" {
				delete(out, t.container)
				continue
			}
			copied := make(map[string]any, len(ext))
			for k, v := range ext {
				copied[k] = v
			}
			out[t.container] = copied
			container = copied
		}
		if t.sub == "" {
			delete(container, t.name)
			continue
		}
		container[t.name] = withoutSub(container[t.name], t.sub)
	}
	return out
}

func canonicalSub(info attrInfo, sub string) string {
	if sub == "" {
		return ""
	}
	if c, ok := info.subs[strings.ToLower(sub)]; ok {
		return c
	}
	return sub
}

// mergeSub copies sub-attribute sub of v (a complex value or a list of them) into dst.
func mergeSub(dst, v any, sub string) any {
	switch v := v.(type) {
	case map[string]any:
		d, _ := dst.(map[string]any)
		if d == nil {
			d = map[string]any{}
		}
		if x, ok := v[sub]; ok {
			d[sub] = x
		}
		return d
	case []any:
		d, _ := dst.([]any)
		if len(d) != len(v) {
			d = make([]any, len(v))
			for i := range d {
				d[i] = map[string]any{}
			}
		}
		for i, e := range v {
			if m, ok := e.(map[string]any); ok {
				if x, ok := m[sub]; ok {
					d[i].(map[string]any)[sub] = x
				}
			}
		}
		return d
	}
	return dst
}

func withoutSub(v any, sub string) any {
	switch v := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(v))
		for k, x := range v {
			if k != sub {
				c[k] = x
			}
		}
		return c
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = withoutSub(e, sub)
		}
		return out
	}
	return v
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
