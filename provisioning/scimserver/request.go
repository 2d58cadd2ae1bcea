package scimserver

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// What the wrapper refuses before the library sees a request: a body of another media type,
// more work than a request may cost, and text that would reach babelforce as an agent's name
// or e-mail with control characters or bidirectional overrides in it.

// MaxPatchOperations caps the operations of one PATCH request and MaxValues the values of one
// multi-valued attribute in a request body (in one PATCH operation's value, or in a POST or
// PUT). Okta and Entra ID send a few operations per PATCH and batch group members in one
// operation; a request over either cap is a 400 (scimType tooMany) before any work is done.
const (
	MaxPatchOperations = 1000
	MaxValues          = 10000
)

// MaxTextLength caps the length in characters of the attributes checkText checks.
const MaxTextLength = 1024

// checkContentType accepts application/scim+json, application/json and a missing
// Content-Type (some clients send none); anything else is answered 415 by the caller.
func checkContentType(r *http.Request) (string, bool) {
	ct := r.Header.Get("Content-Type")
	if strings.TrimSpace(ct) == "" {
		return "", true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Sprintf("Content-Type %q cannot be parsed: send application/scim+json", ct), false
	}
	if mt != "application/scim+json" && mt != "application/json" {
		return fmt.Sprintf("Content-Type %s is not supported: send application/scim+json", mt), false
	}
	return "", true
}

// checkSize enforces MaxPatchOperations and MaxValues on a parsed body; "" when it is within.
func checkSize(body any, patch bool) string {
	m, _ := body.(map[string]any)
	if !patch {
		return checkValues(m, "")
	}
	ops := patchOps(m)
	if len(ops) > MaxPatchOperations {
		return fmt.Sprintf("a PATCH may have at most %d operations, this one has %d: send several requests", MaxPatchOperations, len(ops))
	}
	for i, op := range ops {
		for k, v := range op {
			if !strings.EqualFold(k, "value") {
				continue
			}
			if l, isList := v.([]any); isList && len(l) > MaxValues {
				return fmt.Sprintf("operation %d: at most %d values per attribute in one request, got %d: send several requests", i+1, MaxValues, len(l))
			}
			if vm, isMap := v.(map[string]any); isMap {
				if d := checkValues(vm, fmt.Sprintf("operation %d: ", i+1)); d != "" {
					return d
				}
			}
		}
	}
	return ""
}

// checkValues reports an attribute of m (or of an extension object in m) with more than
// MaxValues values.
func checkValues(m map[string]any, prefix string) string {
	for k, v := range m {
		switch v := v.(type) {
		case []any:
			if len(v) > MaxValues {
				return fmt.Sprintf("%s%s: at most %d values per attribute in one request, got %d: send several requests", prefix, k, MaxValues, len(v))
			}
		case map[string]any:
			if d := checkValues(v, prefix+k+"."); d != "" {
				return d
			}
		}
	}
	return ""
}

// patchOps returns the operations of a PATCH body (the key in any letter case); entries that
// are not objects are left to the library to refuse.
func patchOps(m map[string]any) []map[string]any {
	for k, v := range m {
		if !strings.EqualFold(k, "Operations") {
			continue
		}
		list, _ := v.([]any)
		out := make([]map[string]any, 0, len(list))
		for _, o := range list {
			if om, ok := o.(map[string]any); ok {
				out = append(out, om)
			}
		}
		return out
	}
	return nil
}

// textAttributes are the attributes (lower-cased) whose strings checkText checks: what
// becomes an agent's or agent group's name and e-mail in babelforce.
var textAttributes = map[string]bool{"username": true, "displayname": true, "nickname": true, "name": true, "emails": true}

// checkText refuses control characters (C0, DEL and C1, including NUL, CR and LF),
// bidirectional overrides and isolates, and text longer than MaxTextLength in userName,
// displayName, nickName, name and emails, in a resource body or in PATCH values; "" when the
// body is clean.
func checkText(body any, patch bool) string {
	m, _ := body.(map[string]any)
	if !patch {
		return checkTextAttrs(m)
	}
	for i, op := range patchOps(m) {
		var path string
		var value any
		for k, v := range op {
			switch strings.ToLower(k) {
			case "path":
				path, _ = v.(string)
			case "value":
				value = v
			}
		}
		if strings.TrimSpace(path) == "" {
			if vm, ok := value.(map[string]any); ok {
				if d := checkTextAttrs(vm); d != "" {
					return fmt.Sprintf("operation %d: %s", i+1, d)
				}
			}
			continue
		}
		if attr := pathAttribute(path); textAttributes[attr] {
			if d := checkStrings(path, value); d != "" {
				return fmt.Sprintf("operation %d: %s", i+1, d)
			}
		}
	}
	return ""
}

// checkTextAttrs checks the text attributes of a resource (or a PATCH value object).
func checkTextAttrs(m map[string]any) string {
	for k, v := range m {
		if textAttributes[strings.ToLower(pathAttribute(k))] {
			if d := checkStrings(k, v); d != "" {
				return d
			}
		}
	}
	return ""
}

// pathAttribute is the lower-cased attribute a PATCH path or body key names:
// "urn:...:User:name.givenName" → "name", `emails[type eq "work"].value` → "emails".
func pathAttribute(p string) string {
	p, _, _ = strings.Cut(p, "[")
	if i := strings.LastIndexByte(p, ':'); i >= 0 {
		p = p[i+1:]
	}
	p, _, _ = strings.Cut(p, ".")
	return strings.ToLower(strings.TrimSpace(p))
}

// checkStrings checks every string in v (nested objects and lists too).
func checkStrings(where string, v any) string {
	switch v := v.(type) {
	case string:
		if n := utf8.RuneCountInString(v); n > MaxTextLength {
			return fmt.Sprintf("%s: a value of %d characters is longer than %d", where, n, MaxTextLength)
		}
		for _, r := range v {
			if badRune(r) {
				return fmt.Sprintf("%s: a value contains the control character U+%04X: remove it", where, r)
			}
		}
	case map[string]any:
		for k, e := range v {
			if d := checkStrings(where+"."+k, e); d != "" {
				return d
			}
		}
	case []any:
		for _, e := range v {
			if d := checkStrings(where, e); d != "" {
				return d
			}
		}
	}
	return ""
}

// badRune reports C0 and C1 control characters, DEL, and the bidirectional embeddings,
// overrides and isolates (U+202A..U+202E, U+2066..U+2069) that make text display in another
// order than it is stored.
func badRune(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}
