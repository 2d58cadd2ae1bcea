package scimserver

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	scimerrors "github.com/elimity-com/scim/errors"
	scimfilter "github.com/elimity-com/scim/filter"
	"github.com/elimity-com/scim/schema"
	datetime "github.com/q-uint/xsd-datetime"
	"github.com/scim2/filter-parser/v2"

	"github.com/babelforce/bridge/directory/store"
)

// The library validates a filter against the core schema and each extension separately, so
// `urn:...:enterprise:2.0:User:department eq "x" and active eq true` is refused, and it cannot
// evaluate `emails.value co "x"` on multi-valued attributes. The wrapper therefore takes the
// filter out of list requests and the handler parses, checks and evaluates it here.

type filterKey struct{}

func withFilter(ctx context.Context, raw string) context.Context {
	return context.WithValue(ctx, filterKey{}, raw)
}

func filterFrom(ctx context.Context) string {
	s, _ := ctx.Value(filterKey{}).(string)
	return s
}

// compiledFilter is a parsed, checked filter.
type compiledFilter struct {
	expr      filter.Expression
	validator scimfilter.Validator
}

// compileFilter parses raw and checks every attribute it names against the schemas.
func (h *resourceHandler) compileFilter(raw string) (*compiledFilter, error) {
	expr, err := filter.ParseFilter([]byte(raw))
	if err != nil {
		return nil, scimError(scimerrors.ScimErrorInvalidFilter, fmt.Sprintf("cannot parse filter %q: %v", raw, err))
	}
	expr, err = h.checkExpr(expr)
	if err != nil {
		return nil, scimError(scimerrors.ScimErrorInvalidFilter, fmt.Sprintf("filter %q: %v", raw, err))
	}
	s := h.coreSchema
	attrs := make([]schema.CoreAttribute, 0, len(s.Attributes)+3)
	attrs = append(attrs, s.Attributes...)
	s.Attributes = append(attrs, schema.CommonAttributes()...)
	return &compiledFilter{expr: expr, validator: scimfilter.NewFilterValidator(expr, s, h.extSchemas...)}, nil
}

// checkExpr verifies attribute names and rewrites `multi.sub op v` to `multi[sub op v]`.
func (h *resourceHandler) checkExpr(e filter.Expression) (filter.Expression, error) {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		info, err := h.filterAttr(e.AttributePath)
		if err != nil {
			return nil, err
		}
		sub := e.AttributePath.SubAttributeName()
		if sub == "" && info.complex && e.Operator != filter.PR {
			// The library cannot compare a complex value (it panics); RFC 7644 section
			// 3.4.2.2 makes a filter the server cannot evaluate an invalidFilter.
			return nil, fmt.Errorf("%s is a complex attribute: compare one of its sub-attributes (%s.%s) or test it with pr",
				info.name, info.name, someSub(info))
		}
		if sub != "" {
			if _, ok := info.subs[strings.ToLower(sub)]; !ok {
				return nil, fmt.Errorf("%s has no sub-attribute %q", info.name, sub)
			}
		}
		if err := checkCompare(e, info, sub); err != nil {
			return nil, err
		}
		if sub != "" {
			if info.multi {
				return &filter.ValuePath{
					AttributePath: filter.AttributePath{URIPrefix: e.AttributePath.URIPrefix, AttributeName: e.AttributePath.AttributeName},
					ValueFilter: &filter.AttributeExpression{
						AttributePath: filter.AttributePath{AttributeName: sub},
						Operator:      e.Operator,
						CompareValue:  e.CompareValue,
					},
				}, nil
			}
		}
		return e, nil
	case *filter.ValuePath:
		info, err := h.filterAttr(e.AttributePath)
		if err != nil {
			return nil, err
		}
		if !info.multi {
			return nil, fmt.Errorf("%s is not multi-valued", info.name)
		}
		if err := checkSubExpr(e.ValueFilter, info); err != nil {
			return nil, err
		}
		return e, nil
	case *filter.LogicalExpression:
		l, err := h.checkExpr(e.Left)
		if err != nil {
			return nil, err
		}
		r, err := h.checkExpr(e.Right)
		if err != nil {
			return nil, err
		}
		return &filter.LogicalExpression{Left: l, Right: r, Operator: e.Operator}, nil
	case *filter.NotExpression:
		inner, err := h.checkExpr(e.Expression)
		if err != nil {
			return nil, err
		}
		return &filter.NotExpression{Expression: inner}, nil
	}
	return nil, fmt.Errorf("unsupported expression %v", e)
}

// someSub names one sub-attribute of a complex attribute for error messages: "value" when it
// has one, else the first in alphabetical order.
func someSub(info attrInfo) string {
	if _, ok := info.subs["value"]; ok {
		return "value"
	}
	names := slices.Sorted(maps.Values(info.subs))
	if len(names) == 0 {
		return "value"
	}
	return names[0]
}

func checkSubExpr(e filter.Expression, info attrInfo) error {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		name := e.AttributePath.AttributeName
		if info.complex {
			if _, ok := info.subs[strings.ToLower(name)]; !ok {
				return fmt.Errorf("%s has no sub-attribute %q", info.name, name)
			}
		} else if !strings.EqualFold(name, "value") {
			return fmt.Errorf("%s has no sub-attribute %q", info.name, name)
		}
		if !info.complex {
			name = ""
		}
		return checkCompare(e, info, name)
	case *filter.LogicalExpression:
		if err := checkSubExpr(e.Left, info); err != nil {
			return err
		}
		return checkSubExpr(e.Right, info)
	case *filter.NotExpression:
		return checkSubExpr(e.Expression, info)
	}
	return fmt.Errorf("unsupported expression %v inside %s[...]", e, info.name)
}

// checkCompare refuses a comparison the library's validator cannot evaluate: it answers
// "no match" for a compare value of the wrong type or an operator its type does not have,
// which `not (...)` turns into "every resource". Strings "true"/"false" compared to a boolean
// become booleans (Entra sends string booleans). sub is the sub-attribute compared ("" for
// the attribute itself).
func checkCompare(e *filter.AttributeExpression, info attrInfo, sub string) error {
	if e.Operator == filter.PR {
		return nil
	}
	typ, name := compareType(info, sub)
	ordering := e.Operator == filter.GT || e.Operator == filter.GE || e.Operator == filter.LT || e.Operator == filter.LE
	wrong := func(want string) error {
		return fmt.Errorf("%s is a %s attribute: compare it with %s, not %v", name, typ, want, e.CompareValue)
	}
	switch typ {
	case "string", "reference", "binary":
		if _, ok := e.CompareValue.(string); !ok {
			return wrong("a quoted string")
		}
		if typ == "binary" && ordering {
			return fmt.Errorf("%s is a binary attribute: %s does not apply to it", name, e.Operator)
		}
	case "dateTime":
		v, ok := e.CompareValue.(string)
		if !ok {
			return wrong(`a quoted date and time ("2026-01-02T15:04:05Z")`)
		}
		if _, err := datetime.Parse(v); err != nil {
			return wrong(`a quoted date and time ("2026-01-02T15:04:05Z")`)
		}
	case "boolean":
		if ordering {
			return fmt.Errorf("%s is a boolean attribute: %s does not apply to it", name, e.Operator)
		}
		switch v := e.CompareValue.(type) {
		case bool:
		case string:
			if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
				return wrong("true or false")
			}
			e.CompareValue = strings.EqualFold(v, "true")
		default:
			return wrong("true or false")
		}
	case "integer":
		if _, ok := e.CompareValue.(int); !ok {
			return wrong("a whole number")
		}
	case "decimal":
		switch v := e.CompareValue.(type) {
		case float64:
		case int:
			e.CompareValue = float64(v)
		default:
			return wrong("a number")
		}
	default:
		return fmt.Errorf("%s cannot be compared", name)
	}
	return nil
}

// compareType is the SCIM type and the display name of the (sub-)attribute a comparison
// names.
func compareType(info attrInfo, sub string) (typ, name string) {
	if info.attr.Name() == "" { // a common attribute (id, meta): every one is a string but meta's times
		if sub == "" {
			return "string", info.name
		}
		canon := info.subs[strings.ToLower(sub)]
		if canon == "created" || canon == "lastModified" {
			return "dateTime", info.name + "." + canon
		}
		return "string", info.name + "." + canon
	}
	if sub == "" {
		return info.attr.AttributeType(), info.name
	}
	a, ok := info.attr.SubAttributes().ContainsAttribute(sub)
	if !ok {
		return "", info.name + "." + sub
	}
	return a.AttributeType(), info.name + "." + a.Name()
}

// commonFilterAttrs are the common attributes (RFC 7643 section 3.1) filters may name.
var commonFilterAttrs = map[string]attrInfo{
	"id":   {name: "id"},
	"meta": {name: "meta", complex: true, subs: map[string]string{"created": "created", "lastmodified": "lastModified", "version": "version", "resourcetype": "resourceType", "location": "location"}},
}

func (h *resourceHandler) filterAttr(p filter.AttributePath) (attrInfo, error) {
	if p.URI() == "" || strings.EqualFold(p.URI(), h.idx.coreID) {
		if info, ok := commonFilterAttrs[strings.ToLower(p.AttributeName)]; ok {
			return info, nil
		}
	}
	_, info, err := h.idx.lookup(map[string]any{}, p, false)
	if err != nil {
		return attrInfo{}, fmt.Errorf("unknown attribute %q", p.String())
	}
	return info, nil
}

// matchDoc is the form of a stored resource the filter validator evaluates: the attributes,
// id, externalId, meta, and extension attributes also under their full URN path.
func (h *resourceHandler) matchDoc(res store.Resource) map[string]any {
	doc := make(map[string]any, len(res.Attributes)+4)
	for k, a := range res.Attributes {
		doc[k] = a
		if _, isExt := h.idx.exts[strings.ToLower(k)]; isExt {
			if m, ok := a.(map[string]any); ok {
				for sk, sv := range m {
					doc[k+":"+sk] = sv
				}
			}
		}
	}
	doc["id"] = res.ID
	if res.ExternalID != "" {
		doc["externalId"] = res.ExternalID
	}
	doc["meta"] = map[string]any{
		"created":      res.Created.UTC().Format("2006-01-02T15:04:05Z"),
		"lastModified": res.LastModified.UTC().Format("2006-01-02T15:04:05Z"),
		"version":      res.ETag(),
		"resourceType": string(h.kind),
	}
	return doc
}
