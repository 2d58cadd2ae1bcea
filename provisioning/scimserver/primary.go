package scimserver

import "strings"

// RFC 7643 §2.4: "primary" may be true for at most one value of a multi-valued attribute
// (emails, phoneNumbers, addresses, ims, photos, ...). When a write makes a second value
// primary, the value written last stays primary and the others get primary=false: Okta and
// Entra ID send the new primary e-mail without unsetting the old one.

// isPrimary reports whether a value of a multi-valued attribute says primary=true. Entra's
// string booleans ("True") never get here: normalizeResource and normalizePatch turn them
// into booleans before the library validates the request.
func isPrimary(e any) bool {
	m, ok := e.(map[string]any)
	return ok && m["primary"] == true
}

// keepOnePrimary makes list[winner] the only primary value of list: every other value that
// says primary gets primary=false. With winner < 0, the last value that says primary wins.
func keepOnePrimary(list []any, winner int) {
	if winner < 0 {
		for i := len(list) - 1; i >= 0; i-- {
			if isPrimary(list[i]) {
				winner = i
				break
			}
		}
		if winner < 0 {
			return
		}
	}
	for i, e := range list {
		if !isPrimary(e) {
			continue
		}
		m := e.(map[string]any)
		m["primary"] = i == winner
	}
}

// lastPrimary returns the last of the indexes in list whose value says primary, or -1.
func lastPrimary(list []any, indexes []int) int {
	winner := -1
	for _, i := range indexes {
		if i >= 0 && i < len(list) && isPrimary(list[i]) && i > winner {
			winner = i
		}
	}
	return winner
}

// valueSetsPrimary reports whether a PATCH value (one object or a list of them) says
// primary=true somewhere.
func valueSetsPrimary(v any) bool {
	for _, e := range asList(v) {
		if isPrimary(e) {
			return true
		}
	}
	return false
}

// singlePrimary leaves at most one primary value in every multi-valued attribute of doc
// (core and extensions) that has a primary sub-attribute: the last one that says primary.
func (x *schemaIndex) singlePrimary(doc map[string]any) {
	fix := func(container map[string]any, attrs map[string]attrInfo) {
		for k, v := range container {
			info, ok := attrs[strings.ToLower(k)]
			if !ok || !info.multi || info.subs["primary"] == "" {
				continue
			}
			if list, ok := v.([]any); ok {
				keepOnePrimary(list, -1)
			}
		}
	}
	fix(doc, x.core)
	for _, e := range x.exts {
		if c, ok := doc[e.id].(map[string]any); ok {
			fix(c, e.attrs)
		}
	}
}

// deepCopy copies the maps and slices of a decoded JSON value, so that applying a PATCH
// value to a document never changes the request's operations (Store.Update may run the
// PATCH again on a fresh copy of the resource).
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}
