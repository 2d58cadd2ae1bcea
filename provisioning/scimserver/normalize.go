package scimserver

import (
	"strings"
)

// Entra ID sends some booleans as strings ("active": "False", also as PATCH values) and the
// enterprise manager as a bare id; the library's validation rejects both. These functions
// rewrite such values before validation. Nothing else is changed.

// boolAttributes are the boolean attributes of the User and Group schemas (lower-cased).
var boolAttributes = map[string]bool{"active": true, "primary": true}

// normalizeResource fixes a resource body (POST, PUT) or a PATCH value object, in place.
func normalizeResource(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			name := lastSegment(k)
			if boolAttributes[name] {
				if b, ok := stringBool(e); ok {
					v[k] = b
					continue
				}
			}
			if name == "manager" {
				if id, ok := e.(string); ok {
					v[k] = map[string]any{"value": id}
					continue
				}
			}
			v[k] = normalizeResource(e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = normalizeResource(e)
		}
		return v
	}
	return v
}

// normalizePatch fixes a PATCH request body in place: op names lower-cased, string booleans
// and bare manager ids in values.
func normalizePatch(body any) any {
	m, ok := body.(map[string]any)
	if !ok {
		return body
	}
	for k, ops := range m {
		if !strings.EqualFold(k, "Operations") {
			continue
		}
		list, ok := ops.([]any)
		if !ok {
			continue
		}
		for _, o := range list {
			if op, ok := o.(map[string]any); ok {
				normalizeOp(op)
			}
		}
	}
	return m
}

// normalizeOp fixes one PATCH operation in place (see normalizePatch).
func normalizeOp(op map[string]any) {
	var path string
	valueKey := ""
	for k, v := range op {
		switch strings.ToLower(k) {
		case "op":
			if s, isStr := v.(string); isStr {
				op[k] = strings.ToLower(strings.TrimSpace(s))
			}
		case "path":
			path, _ = v.(string)
		case "value":
			valueKey = k
		}
	}
	if valueKey == "" {
		return
	}
	value := op[valueKey]
	name := lastSegment(path)
	switch {
	case path != "" && boolAttributes[name]:
		if b, ok := patchBool(value); ok {
			op[valueKey] = b
			return
		}
	case path != "" && name == "manager":
		if id, ok := value.(string); ok {
			op[valueKey] = map[string]any{"value": id}
			return
		}
	}
	op[valueKey] = normalizeResource(value)
}

// patchBool reads the value of a PATCH of a boolean attribute: a string boolean, or (Entra)
// [{"value": "False"}] or [{"value": false}] for a single-valued boolean.
func patchBool(value any) (bool, bool) {
	if b, ok := stringBool(value); ok {
		return b, true
	}
	l, ok := value.([]any)
	if !ok || len(l) != 1 {
		return false, false
	}
	vm, ok := l[0].(map[string]any)
	if !ok {
		return false, false
	}
	if b, ok := stringBool(vm["value"]); ok {
		return b, true
	}
	b, ok := vm["value"].(bool)
	return b, ok
}

// lastSegment returns the lower-cased attribute named last in a path:
// `emails[type eq "work"].primary` → "primary", "urn:...:User:manager" → "manager".
func lastSegment(path string) string {
	// drop value filters
	for {
		i := strings.IndexByte(path, '[')
		if i < 0 {
			break
		}
		j := strings.IndexByte(path[i:], ']')
		if j < 0 {
			path = path[:i]
			break
		}
		path = path[:i] + path[i+j+1:]
	}
	if i := strings.LastIndexAny(path, ".:"); i >= 0 {
		path = path[i+1:]
	}
	return strings.ToLower(strings.TrimSpace(path))
}

func stringBool(v any) (bool, bool) {
	s, ok := v.(string)
	if !ok {
		return false, false
	}
	switch {
	case strings.EqualFold(strings.TrimSpace(s), "true"):
		return true, true
	case strings.EqualFold(strings.TrimSpace(s), "false"):
		return false, true
	}
	return false, false
}
