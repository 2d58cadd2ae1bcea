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
			op, ok := o.(map[string]any)
			if !ok {
				continue
			}
			var path string
			valueKey := ""
			for ok, ov := range op {
				switch strings.ToLower(ok) {
				case "op":
					if s, isStr := ov.(string); isStr {
						op[ok] = strings.ToLower(strings.TrimSpace(s))
					}
				case "path":
					path, _ = ov.(string)
				case "value":
					valueKey = ok
				}
			}
			if valueKey == "" {
				continue
			}
			value := op[valueKey]
			name := lastSegment(path)
			switch {
			case path != "" && boolAttributes[name]:
				if b, ok := stringBool(value); ok {
					op[valueKey] = b
					continue
				}
				// Entra: [{"value": "False"}] for a single-valued boolean.
				if l, ok := value.([]any); ok && len(l) == 1 {
					if vm, ok := l[0].(map[string]any); ok {
						if b, ok := stringBool(vm["value"]); ok {
							op[valueKey] = b
							continue
						}
						if b, ok := vm["value"].(bool); ok {
							op[valueKey] = b
							continue
						}
					}
				}
			case path != "" && name == "manager":
				if id, ok := value.(string); ok {
					op[valueKey] = map[string]any{"value": id}
					continue
				}
			}
			op[valueKey] = normalizeResource(value)
		}
	}
	return m
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
