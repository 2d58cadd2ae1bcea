package scimserver

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	scimfilter "github.com/elimity-com/scim/filter"
	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"
)

// attrInfo describes one attribute of a schema.
type attrInfo struct {
	name    string // canonical name
	attr    schema.CoreAttribute
	multi   bool
	complex bool
	subs    map[string]string // lower-cased → canonical sub-attribute names
}

// schemaIndex finds attributes case-insensitively in a core schema and its extensions.
type schemaIndex struct {
	coreID string
	core   map[string]attrInfo
	exts   map[string]extIndex // lower-cased URN → extension
}

type extIndex struct {
	id    string
	attrs map[string]attrInfo
}

func indexAttributes(attrs schema.Attributes) map[string]attrInfo {
	out := make(map[string]attrInfo, len(attrs))
	for _, a := range attrs {
		info := attrInfo{name: a.Name(), attr: a, multi: a.MultiValued(), complex: a.HasSubAttributes()}
		if a.HasSubAttributes() {
			info.subs = map[string]string{}
			for _, sub := range a.SubAttributes() {
				info.subs[strings.ToLower(sub.Name())] = sub.Name()
			}
		}
		out[strings.ToLower(a.Name())] = info
	}
	return out
}

func newSchemaIndex(core schema.Schema, exts ...schema.Schema) *schemaIndex {
	idx := &schemaIndex{coreID: core.ID, core: indexAttributes(core.Attributes), exts: map[string]extIndex{}}
	idx.core["externalid"] = attrInfo{name: "externalId"}
	for _, e := range exts {
		idx.exts[strings.ToLower(e.ID)] = extIndex{id: e.ID, attrs: indexAttributes(e.Attributes)}
	}
	return idx
}

// lookup resolves an attribute path to the map that holds it within doc (the resource or an
// extension object, created when create is true) and the attribute's description.
func (x *schemaIndex) lookup(doc map[string]any, p filter.AttributePath, create bool) (map[string]any, attrInfo, error) {
	uri := p.URI()
	attrs := x.core
	container := doc
	if uri != "" && !strings.EqualFold(uri, x.coreID) {
		ext, ok := x.exts[strings.ToLower(uri)]
		if !ok {
			return nil, attrInfo{}, scimError(scimerrors.ScimErrorInvalidPath, fmt.Sprintf("unknown schema %q", uri))
		}
		attrs = ext.attrs
		c, ok := doc[ext.id].(map[string]any)
		if !ok {
			c = map[string]any{}
			if create {
				doc[ext.id] = c
			}
		}
		container = c
	}
	info, ok := attrs[strings.ToLower(p.AttributeName)]
	if !ok {
		return nil, attrInfo{}, scimError(scimerrors.ScimErrorInvalidPath, fmt.Sprintf("unknown attribute %q", p.String()))
	}
	return container, info, nil
}

func scimError(base scimerrors.ScimError, detail string) error {
	base.Detail = detail
	return base
}

// applyPatch applies validated PATCH operations to doc (a resource's attributes with
// "externalId" included) in order. It changes doc only (the operations' values are copied),
// and leaves at most one primary value per multi-valued attribute: the one written last.
func (x *schemaIndex) applyPatch(doc map[string]any, ops []scim.PatchOperation) error {
	for i := 0; i < len(ops); i++ {
		if n := x.removeRun(doc, ops[i:]); n > 1 {
			// Okta removes group members one operation each: a run of removals from one
			// attribute is one pass over its values instead of one pass per operation.
			x.removeAll(doc, ops[i:i+n])
			i += n - 1
			continue
		}
		if n := x.addRun(doc, ops[i:]); n > 1 {
			// the same for a run of additions to one attribute (none making a value primary):
			// adding their values in one call indexes the list once
			var all []any
			for _, op := range ops[i : i+n] {
				all = append(all, deepCopy(op.Value).([]any)...)
			}
			if err := x.applyPath(doc, scim.PatchOperationAdd, *ops[i].Path, all); err != nil {
				return fmt.Errorf("operations %d to %d (add): %w", i+1, i+n, err)
			}
			i += n - 1
			continue
		}
		op := ops[i]
		if err := x.applyOp(doc, op.Op, op.Path, deepCopy(op.Value)); err != nil {
			return fmt.Errorf("operation %d (%s): %w", i+1, op.Op, err)
		}
	}
	// drop extension objects left empty
	for _, e := range x.exts {
		if m, ok := doc[e.id].(map[string]any); ok && len(m) == 0 {
			delete(doc, e.id)
		}
	}
	x.singlePrimary(doc)
	return nil
}

func (x *schemaIndex) applyOp(doc map[string]any, op string, path *filter.Path, value any) error {
	if path == nil {
		if op == scim.PatchOperationRemove {
			return scimerrors.ScimErrorNoTarget
		}
		values, ok := value.(map[string]any)
		if !ok {
			return scimError(scimerrors.ScimErrorInvalidValue, "a value without path must be an object")
		}
		for key, v := range values {
			if ext, ok := x.exts[strings.ToLower(key)]; ok {
				inner, ok := v.(map[string]any)
				if !ok {
					return scimError(scimerrors.ScimErrorInvalidValue, fmt.Sprintf("%s must be an object", key))
				}
				for k2, v2 := range inner {
					p, err := filter.ParsePath([]byte(ext.id + ":" + k2))
					if err != nil {
						return scimError(scimerrors.ScimErrorInvalidPath, fmt.Sprintf("invalid attribute %q", k2))
					}
					if err := x.applyPath(doc, op, p, v2); err != nil {
						return err
					}
				}
				continue
			}
			p, err := filter.ParsePath([]byte(key))
			if err != nil {
				return scimError(scimerrors.ScimErrorInvalidPath, fmt.Sprintf("invalid attribute %q", key))
			}
			if err := x.applyPath(doc, op, p, v); err != nil {
				return err
			}
		}
		return nil
	}
	return x.applyPath(doc, op, *path, value)
}

// applyPath applies one operation to one attribute path.
func (x *schemaIndex) applyPath(doc map[string]any, op string, p filter.Path, value any) error {
	create := op != scim.PatchOperationRemove
	container, info, err := x.lookup(doc, p.AttributePath, create)
	if err != nil {
		return err
	}
	name := info.name
	sub := p.SubAttributeName()
	if sub == "" {
		sub = p.AttributePath.SubAttributeName()
	}
	if sub != "" {
		canon, ok := info.subs[strings.ToLower(sub)]
		if !ok {
			return scimError(scimerrors.ScimErrorInvalidPath, fmt.Sprintf("%s has no sub-attribute %q", name, sub))
		}
		sub = canon
	}

	if !info.multi {
		if sub == "" {
			switch op {
			case scim.PatchOperationRemove:
				delete(container, name)
			default:
				old, isMap := container[name].(map[string]any)
				nv, valIsMap := value.(map[string]any)
				if info.complex && isMap && valIsMap {
					for k, v := range nv {
						old[k] = v
					}
				} else {
					container[name] = value
				}
			}
			return nil
		}
		m, ok := container[name].(map[string]any)
		if !ok {
			if op == scim.PatchOperationRemove {
				return nil
			}
			m = map[string]any{}
			container[name] = m
		}
		if op == scim.PatchOperationRemove {
			delete(m, sub)
			if len(m) == 0 {
				delete(container, name)
			}
		} else {
			m[sub] = value
		}
		return nil
	}

	list, _ := container[name].([]any)
	// A write that makes values primary leaves only the last of them primary (RFC 7643 §2.4).
	writesPrimary := op != scim.PatchOperationRemove &&
		((sub == "primary" && value == true) || (sub == "" && valueSetsPrimary(value)))
	onePrimary := func(l []any, written []int) {
		if writesPrimary {
			if w := lastPrimary(l, written); w >= 0 {
				keepOnePrimary(l, w)
			}
		}
	}
	setList := func(l []any) {
		if len(l) == 0 {
			delete(container, name)
		} else {
			container[name] = l
		}
	}

	if p.ValueExpression == nil {
		if sub == "" {
			switch op {
			case scim.PatchOperationRemove:
				if value == nil {
					delete(container, name)
					return nil
				}
				setList(removeValues(list, asList(value)))
			case scim.PatchOperationReplace:
				l := asList(value)
				onePrimary(l, allIndexes(l))
				setList(l)
			default:
				l, at := addValues(list, asList(value))
				onePrimary(l, at)
				setList(l)
			}
			return nil
		}
		// "emails.value": every element
		if len(list) == 0 && op != scim.PatchOperationRemove {
			list = []any{map[string]any{}}
		}
		for _, e := range list {
			if m, ok := e.(map[string]any); ok {
				if op == scim.PatchOperationRemove {
					delete(m, sub)
				} else {
					m[sub] = value
				}
			}
		}
		onePrimary(list, allIndexes(list))
		setList(list)
		return nil
	}

	var matches []int
	if want, caseExact, ok := valueEq(p.ValueExpression, info); ok {
		// members[value eq "id"], Okta's way to remove a member: compared directly, not
		// through the library's validator (which costs microseconds per element)
		for i, e := range list {
			if k, ok := valueKey(e); ok && (k == want || !caseExact && strings.EqualFold(k, want)) {
				matches = append(matches, i)
			}
		}
	} else {
		validator := scimfilter.NewFilterValidator(p.ValueExpression, schema.Schema{
			Attributes: scimfilter.MultiValuedFilterAttributes(info.attr),
		})
		for i, e := range list {
			m, ok := e.(map[string]any)
			if ok && passes(validator, m) {
				matches = append(matches, i)
			}
		}
	}
	if op == scim.PatchOperationRemove {
		if sub == "" {
			kept := list[:0:0]
			next := 0 // matches are ascending
			for i, e := range list {
				if next < len(matches) && matches[next] == i {
					next++
					continue
				}
				kept = append(kept, e)
			}
			setList(kept)
			return nil
		}
		for _, i := range matches {
			delete(list[i].(map[string]any), sub)
		}
		setList(list)
		return nil
	}
	if len(matches) == 0 {
		// Entra: replace emails[type eq "work"].value on a user without a work e-mail adds one.
		seed, ok := eqValues(p.ValueExpression, info)
		if !ok {
			return scimError(scimerrors.ScimErrorNoTarget, fmt.Sprintf("no value of %s matches %s", name, p.ValueExpression))
		}
		list = append(list, seed)
		matches = []int{len(list) - 1}
	}
	for _, i := range matches {
		m := list[i].(map[string]any)
		if sub != "" {
			m[sub] = value
			continue
		}
		nv, ok := value.(map[string]any)
		if !ok {
			if l, isList := value.([]any); isList && len(l) == 1 {
				nv, ok = l[0].(map[string]any)
			}
		}
		if !ok {
			return scimError(scimerrors.ScimErrorInvalidValue, fmt.Sprintf("value for %s must be an object", p.String()))
		}
		for k, v := range nv {
			m[k] = v
		}
	}
	onePrimary(list, matches)
	setList(list)
	return nil
}

// removeKey is what a PATCH operation removes from a multi-valued complex attribute by value
// alone: `remove members[value eq "id"]` or `remove members` with a list of {"value": ...};
// ok is false for any other operation.
func (x *schemaIndex) removeKey(doc map[string]any, op scim.PatchOperation) (attr string, keys []string, fold, ok bool) {
	p := op.Path
	if op.Op != scim.PatchOperationRemove || p == nil || p.SubAttributeName() != "" || p.AttributePath.SubAttributeName() != "" {
		return "", nil, false, false
	}
	_, info, err := x.lookup(doc, p.AttributePath, false)
	if err != nil || !info.multi || !info.complex {
		return "", nil, false, false
	}
	attr = strings.ToLower(p.AttributePath.URI() + ":" + info.name)
	if p.ValueExpression != nil {
		want, caseExact, ok := valueEq(p.ValueExpression, info)
		if !ok || op.Value != nil {
			return "", nil, false, false
		}
		return attr, []string{want}, !caseExact, true
	}
	list, isList := op.Value.([]any)
	if !isList || len(list) == 0 {
		return "", nil, false, false
	}
	for _, v := range list {
		k, ok := valueKey(v)
		if !ok {
			return "", nil, false, false
		}
		keys = append(keys, k)
	}
	return attr, keys, false, true
}

// addKey names the attribute an operation adds values to when it is a plain addition to a
// multi-valued complex attribute (a path without filter or sub-attribute, a list of values,
// none of them primary); ok is false for any other operation.
func (x *schemaIndex) addKey(doc map[string]any, op scim.PatchOperation) (string, bool) {
	p := op.Path
	if op.Op != scim.PatchOperationAdd || p == nil || p.ValueExpression != nil || p.SubAttributeName() != "" ||
		p.AttributePath.SubAttributeName() != "" {
		return "", false
	}
	if l, ok := op.Value.([]any); !ok || len(l) == 0 || valueSetsPrimary(l) {
		return "", false
	}
	_, info, err := x.lookup(doc, p.AttributePath, false)
	if err != nil || !info.multi || !info.complex {
		return "", false
	}
	return strings.ToLower(p.AttributePath.URI() + ":" + info.name), true
}

// addRun is how many operations from the first add values to one attribute (see addKey).
func (x *schemaIndex) addRun(doc map[string]any, ops []scim.PatchOperation) int {
	attr, ok := x.addKey(doc, ops[0])
	if !ok {
		return 0
	}
	n := 1
	for n < len(ops) {
		if a, ok := x.addKey(doc, ops[n]); !ok || a != attr {
			break
		}
		n++
	}
	return n
}

// removeRun is how many operations from the first on remove values by value from one
// attribute (see removeKey) with the same letter-case rule.
func (x *schemaIndex) removeRun(doc map[string]any, ops []scim.PatchOperation) int {
	attr, _, fold, ok := x.removeKey(doc, ops[0])
	if !ok {
		return 0
	}
	n := 1
	for n < len(ops) {
		a, _, f, ok := x.removeKey(doc, ops[n])
		if !ok || a != attr || f != fold {
			break
		}
		n++
	}
	return n
}

// removeAll applies a run of removals found by removeRun in one pass: the same result as
// applying them one by one (none of them can fail).
func (x *schemaIndex) removeAll(doc map[string]any, ops []scim.PatchOperation) {
	drop := map[string]bool{}
	fold := false
	for _, op := range ops {
		_, keys, f, _ := x.removeKey(doc, op)
		fold = f
		for _, k := range keys {
			if fold {
				k = strings.ToLower(k)
			}
			drop[k] = true
		}
	}
	container, info, _ := x.lookup(doc, ops[0].Path.AttributePath, false)
	list, _ := container[info.name].([]any)
	kept := list[:0:0]
	for _, e := range list {
		if k, ok := valueKey(e); ok {
			if fold {
				k = strings.ToLower(k)
			}
			if drop[k] {
				continue
			}
		}
		kept = append(kept, e)
	}
	if len(kept) == 0 {
		delete(container, info.name)
	} else {
		container[info.name] = kept
	}
}

// allIndexes returns 0, 1, ..., len(l)-1.
func allIndexes(l []any) []int {
	out := make([]int, len(l))
	for i := range out {
		out[i] = i
	}
	return out
}

func passes(v scimfilter.Validator, m map[string]any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return v.PassesFilter(m) == nil
}

// eqValues builds a new element from a filter made of eq comparisons joined by and.
func eqValues(e filter.Expression, info attrInfo) (map[string]any, bool) {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		if e.Operator != filter.EQ {
			return nil, false
		}
		name := e.AttributePath.AttributeName
		if canon, ok := info.subs[strings.ToLower(name)]; ok {
			name = canon
		}
		return map[string]any{name: e.CompareValue}, true
	case *filter.LogicalExpression:
		if e.Operator != filter.AND {
			return nil, false
		}
		l, ok := eqValues(e.Left, info)
		if !ok {
			return nil, false
		}
		r, ok := eqValues(e.Right, info)
		if !ok {
			return nil, false
		}
		for k, v := range r {
			l[k] = v
		}
		return l, true
	}
	return nil, false
}

func asList(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	}
	return []any{v}
}

// sameValue reports whether two elements of a multi-valued attribute denote the same value:
// equal "value" sub-attributes for complex elements, equality otherwise.
func sameValue(a, b any) bool {
	ka, aok := valueKey(a)
	kb, bok := valueKey(b)
	if aok && bok {
		return ka == kb
	}
	return reflect.DeepEqual(a, b)
}

// valueKey is the "value" sub-attribute of a complex element as text (how sameValue compares
// them); false for elements without one.
func valueKey(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", false
	}
	x, ok := m["value"]
	if !ok {
		return "", false
	}
	if s, ok := x.(string); ok {
		return s, true
	}
	return fmt.Sprint(x), true
}

// indexMin is the number of values from which addValues and removeValues index the list by
// value instead of scanning it once per value: a PATCH's cost stays linear in the list and
// the values (8,000 single-value operations took 56 s before, issue 10).
const indexMin = 8

// keyIndex maps the value key of each complex element of list to its first position.
func keyIndex(list []any) map[string]int {
	idx := make(map[string]int, len(list))
	for i, e := range list {
		if k, ok := valueKey(e); ok {
			if _, seen := idx[k]; !seen {
				idx[k] = i
			}
		}
	}
	return idx
}

// findValue returns the position of the first element of list that is the same value as v.
func findValue(list []any, v any, idx map[string]int) int {
	if k, ok := valueKey(v); ok && idx != nil {
		if i, found := idx[k]; found {
			return i
		}
		// elements without a value key are compared whole: only an unkeyed v can match them
		return -1
	}
	for i, e := range list {
		if sameValue(e, v) {
			return i
		}
	}
	return -1
}

// addValues adds each value of add to list unless list has it already (then the new
// sub-attributes are merged into the element), and returns the list and where each value is.
func addValues(list, add []any) ([]any, []int) {
	var idx map[string]int
	if len(add) >= indexMin {
		idx = keyIndex(list)
	}
	at := make([]int, 0, len(add))
	for _, v := range add {
		i := findValue(list, v, idx)
		if i < 0 {
			list = append(list, v)
			i = len(list) - 1
			if k, ok := valueKey(v); ok && idx != nil {
				idx[k] = i
			}
		} else if em, ok := list[i].(map[string]any); ok {
			if vm, ok := v.(map[string]any); ok {
				for k, x := range vm {
					em[k] = x
				}
			}
		}
		at = append(at, i)
	}
	return list, at
}

func removeValues(list, remove []any) []any {
	var keys map[string]bool
	var unkeyed []any
	if len(remove) >= indexMin {
		keys = map[string]bool{}
		for _, r := range remove {
			if k, ok := valueKey(r); ok {
				keys[k] = true
			} else {
				unkeyed = append(unkeyed, r)
			}
		}
	}
	out := list[:0:0]
	for _, e := range list {
		drop := false
		if keys != nil {
			if k, ok := valueKey(e); ok {
				drop = keys[k]
			} else {
				drop = slices.ContainsFunc(unkeyed, func(r any) bool { return reflect.DeepEqual(e, r) })
			}
		} else {
			drop = slices.ContainsFunc(remove, func(r any) bool { return sameValue(e, r) })
		}
		if !drop {
			out = append(out, e)
		}
	}
	return out
}

// valueEq recognises the value filter `value eq "text"` on a complex attribute whose value
// sub-attribute is a string, and returns the text and whether the comparison is case-exact.
func valueEq(e filter.Expression, info attrInfo) (string, bool, bool) {
	ae, ok := e.(*filter.AttributeExpression)
	if !ok || ae.Operator != filter.EQ || ae.AttributePath.SubAttributeName() != "" ||
		!strings.EqualFold(ae.AttributePath.AttributeName, "value") || ae.AttributePath.URI() != "" || !info.complex {
		return "", false, false
	}
	want, ok := ae.CompareValue.(string)
	if !ok {
		return "", false, false
	}
	sub, ok := info.attr.SubAttributes().ContainsAttribute("value")
	if !ok || (sub.AttributeType() != "string" && sub.AttributeType() != "reference") {
		return "", false, false
	}
	return want, sub.CaseExact(), true
}
