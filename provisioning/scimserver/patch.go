package scimserver

import (
	"fmt"
	"reflect"
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
	for i, op := range ops {
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
				add := asList(value)
				l := addValues(list, add)
				onePrimary(l, indexesOf(l, add))
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

	validator := scimfilter.NewFilterValidator(p.ValueExpression, schema.Schema{
		Attributes: scimfilter.MultiValuedFilterAttributes(info.attr),
	})
	var matches []int
	for i, e := range list {
		m, ok := e.(map[string]any)
		if ok && passes(validator, m) {
			matches = append(matches, i)
		}
	}
	if op == scim.PatchOperationRemove {
		if sub == "" {
			kept := list[:0:0]
			for i, e := range list {
				if !containsInt(matches, i) {
					kept = append(kept, e)
				}
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

// allIndexes returns 0, 1, ..., len(l)-1.
func allIndexes(l []any) []int {
	out := make([]int, len(l))
	for i := range out {
		out[i] = i
	}
	return out
}

// indexesOf returns where addValues put each value of add in list.
func indexesOf(list, add []any) []int {
	out := make([]int, 0, len(add))
	for _, v := range add {
		for i, e := range list {
			if sameValue(e, v) {
				out = append(out, i)
				break
			}
		}
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
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		av, ah := am["value"]
		bv, bh := bm["value"]
		if ah && bh {
			return fmt.Sprint(av) == fmt.Sprint(bv)
		}
	}
	return reflect.DeepEqual(a, b)
}

func addValues(list, add []any) []any {
	for _, v := range add {
		found := false
		for i, e := range list {
			if sameValue(e, v) {
				if em, ok := e.(map[string]any); ok {
					if vm, ok := v.(map[string]any); ok {
						for k, x := range vm {
							em[k] = x
						}
						list[i] = em
					}
				}
				found = true
				break
			}
		}
		if !found {
			list = append(list, v)
		}
	}
	return list
}

func removeValues(list, remove []any) []any {
	out := list[:0:0]
	for _, e := range list {
		drop := false
		for _, r := range remove {
			if sameValue(e, r) {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, e)
		}
	}
	return out
}

func containsInt(l []int, i int) bool {
	for _, e := range l {
		if e == i {
			return true
		}
	}
	return false
}
