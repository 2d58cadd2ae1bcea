package provisioning

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// What the side tasks that keep one babelforce setting equal to config (SSOTask,
// SCIMConfigTask) share.

// fieldDiff collects the fields of a setting that differ.
type fieldDiff []FieldChange

// add records field when before and after differ.
func (d *fieldDiff) add(field, before, after string) {
	if before != after {
		*d = append(*d, FieldChange{Field: field, Before: before, After: after})
	}
}

// addSet records field when before and after differ as sets (order and repeats aside),
// showing each joined with sep.
func (d *fieldDiff) addSet(field string, before, after []string, sep string) {
	if !sameElements(before, after) {
		*d = append(*d, FieldChange{Field: field, Before: strings.Join(before, sep), After: strings.Join(after, sep)})
	}
}

// sameElements reports whether a and b hold the same strings, whatever their order and repeats.
func sameElements(a, b []string) bool {
	as, bs := slices.Clone(a), slices.Clone(b)
	slices.Sort(as)
	slices.Sort(bs)
	return slices.Equal(slices.Compact(as), slices.Compact(bs))
}

// plannedOrReplan returns the desired setting the last Plan stored in *planned (guarded by
// mu), planning again when there is none; nil when nothing differs any more.
func plannedOrReplan[T any](ctx context.Context, mu *sync.Mutex, planned **T, plan func(context.Context) ([]Change, error)) (*T, error) {
	mu.Lock()
	want := *planned
	mu.Unlock()
	if want != nil {
		return want, nil
	}
	if _, err := plan(ctx); err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	return *planned, nil
}
