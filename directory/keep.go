package directory

import "strings"

// Option changes what a source keeps of what it reads (Open, NewLDAP, NewLDIF,
// NewSCIMSource).
type Option func(*sourceOptions)

type sourceOptions struct {
	keep keptAttrs
}

func applyOptions(opts []Option) sourceOptions {
	var o sourceOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// KeepAttributes makes a source keep in User.Attributes only the raw attributes named
// (compared ignoring case), and ask an LDAP server for none of its extra_attributes but
// these: bridge's plan and sync pass what the mapping reads (mapping.Rules.Attributes), so
// that a large directory is not held twice, once as the fields of User and once as raw
// attributes nobody reads. The fields of User (names, e-mails, phones, active, groups) are
// read as without it. Without this option a source keeps every attribute it reads, as
// `bridge directory dump` shows them.
func KeepAttributes(names ...string) Option {
	return func(o *sourceOptions) {
		o.keep = keptAttrs{}
		for _, n := range names {
			if n = strings.ToLower(strings.TrimSpace(n)); n != "" {
				o.keep[n] = true
			}
		}
	}
}

// keptAttrs is the set of raw attribute names (lower-cased) a source keeps; nil keeps all.
type keptAttrs map[string]bool

func (k keptAttrs) keeps(name string) bool {
	return k == nil || k[strings.ToLower(name)]
}

// filter drops from attrs what k does not keep (nil when nothing is left), in place.
func (k keptAttrs) filter(attrs map[string][]string) map[string][]string {
	if k == nil {
		return attrs
	}
	for name := range attrs {
		if !k.keeps(name) {
			delete(attrs, name)
		}
	}
	if len(attrs) == 0 {
		return nil
	}
	return attrs
}
