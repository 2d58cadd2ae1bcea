package babelforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// messageEnvelope is babelforce's {"success": true, "message": "..."}.
type messageEnvelope struct {
	Success *bool  `json:"success"`
	Message string `json:"message"`
}

// UnmarshalJSON is lenient: an answer that is not a message envelope (an item, an array)
// counts as success.
func (m *messageEnvelope) UnmarshalJSON(b []byte) error {
	var probe struct {
		Success *bool           `json:"success"`
		Message json.RawMessage `json:"message"`
	}
	if json.Unmarshal(b, &probe) == nil {
		m.Success, m.Message = probe.Success, rawText(probe.Message)
	}
	return nil
}

func (m *messageEnvelope) failed() (bool, string) {
	return m.Success != nil && !*m.Success, m.Message
}

// itemEnvelope is babelforce's {"item": {...}, "success": true}. It also accepts a bare
// object (the SCIM/SSO configuration answers may come without the envelope).
type itemEnvelope[T any] struct {
	Item    T
	Success *bool
	Message string
}

func (e *itemEnvelope[T]) UnmarshalJSON(b []byte) error {
	var probe struct {
		Item    json.RawMessage `json:"item"`
		Success *bool           `json:"success"`
		Message string          `json:"message"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return err
	}
	e.Success, e.Message = probe.Success, probe.Message
	if len(probe.Item) > 0 && !bytes.Equal(probe.Item, []byte("null")) {
		return json.Unmarshal(probe.Item, &e.Item)
	}
	if probe.Success != nil {
		return nil // a message envelope without an item
	}
	return json.Unmarshal(b, &e.Item)
}

func (e *itemEnvelope[T]) failed() (bool, string) {
	return e.Success != nil && !*e.Success, e.Message
}

// flexInt is an integer that may arrive as a number, a numeric string or null.
type flexInt struct {
	v   int
	set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := rawText(b)
	if s == "" {
		return nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil // tolerate junk: treat as missing
	}
	f.v, f.set = int(n), true
	return nil
}

// pagination is babelforce's list pagination; every field may be missing.
type pagination struct {
	Current    flexInt         `json:"current"`
	Max        flexInt         `json:"max"`
	MaxResults flexInt         `json:"maxResults"`
	Pages      flexInt         `json:"pages"`
	Total      flexInt         `json:"total"`
	Next       json.RawMessage `json:"next"`
}

// listEnvelope is babelforce's {"items": [...], "pagination": {...}}.
type listEnvelope[T any] struct {
	Items      []T         `json:"items"`
	Pagination *pagination `json:"pagination"`
	Success    *bool       `json:"success"`
	Message    string      `json:"message"`
}

func (e *listEnvelope[T]) failed() (bool, string) {
	return e.Success != nil && !*e.Success, e.Message
}

// listAll walks every page of a Manager API list: page is 1-based, max is the page size. It
// stops at the last page ("pages"), when "total" items were read, or at an empty page, and
// fails after c.maxPages pages or when the server answers the same page twice (it ignores
// "page"), so a misbehaving server cannot make it loop for ever. id extracts an item's id
// for that check.
//
// Once the first page says how many there are ("pages", or "total" with a full first page),
// the other pages are asked for concurrently (up to max_concurrency in flight, as any call)
// and then taken in order exactly as one by one: a list of 1,000 pages costs about 1,000
// round trips / max_concurrency, not 1,000 round trips.
func listAll[T any](ctx context.Context, c *Client, tmpl, path string, query url.Values, pageSize int, id func(*T) string, o listOptions) ([]T, error) {
	if pageSize <= 0 {
		pageSize = c.cfg.PageSize
	}
	fetch := func(ctx context.Context, page int) (listEnvelope[T], error) {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("page", strconv.Itoa(page))
		q.Set("max", strconv.Itoa(pageSize))
		var env listEnvelope[T]
		if page > 1 { // page 1 was full: decode into room for a page, not a doubling slice
			env.Items = make([]T, 0, pageSize)
		}
		err := c.call(ctx, http.MethodGet, tmpl, path, q, nil, &env)
		return env, err
	}
	var all []T
	seen := newMemo()
	prevFirst := ""
	// take adds one page, as the page-by-page walk would; done says the list is complete.
	take := func(page int, env listEnvelope[T], err error) (done bool, _ error) {
		if err != nil {
			if page > 1 {
				return true, fmt.Errorf("page %d: %w", page, err)
			}
			return true, err
		}
		if len(env.Items) == 0 {
			return true, nil
		}
		if first := id(&env.Items[0]); first != "" {
			if first == prevFirst {
				return true, fmt.Errorf("babelforce: GET %s: page %d repeats page %d (first id %s); the server ignores paging", path, page, page-1, first)
			}
			prevFirst = first
		}
		compactPage(env.Items, seen, o)
		all = append(all, env.Items...)
		if p := env.Pagination; p != nil {
			if p.Pages.set && p.Pages.v > 0 && page >= p.Pages.v {
				return true, nil
			}
			if p.Total.set && !p.Pages.set && len(all) >= p.Total.v {
				return true, nil
			}
		}
		return false, nil
	}
	for page := 1; ; page++ {
		if page > c.maxPages {
			return nil, fmt.Errorf("babelforce: GET %s: still not at the last page after %d pages of %d items; the server does not stop paging", path, c.maxPages, pageSize)
		}
		env, err := fetch(ctx, page)
		last := lastPage(env.Pagination, len(env.Items), pageSize)
		if done, err := take(page, env, err); done || err != nil {
			return all, err
		}
		if page != 1 || last <= 1 {
			continue
		}
		// the first page told how many follow: ask for them together, a window at a time
		// (only a window of pages is held beside the items taken), and take them in order
		last = min(last, c.maxPages)
		all = slices.Grow(all, min((last-1)*pageSize, maxPresize))
		for from := 2; from <= last; from += window(c) {
			pages := fetchConcurrently(ctx, c.cfg.MaxConcurrency, min(window(c), last-from+1), func(ctx context.Context, i int) (listEnvelope[T], error) {
				return fetch(ctx, from+i)
			})
			for i := range pages {
				if done, err := take(from+i, pages[i].v, pages[i].err); done || err != nil {
					return all, err
				}
				pages[i] = result[listEnvelope[T]]{}
			}
		}
		page = last
	}
}

// maxPresize bounds the room a concurrent walk makes for the items a first page announces
// (a server may announce more than it has).
const maxPresize = 250_000

// window is how many pages a concurrent walk asks for before it takes them: a few per call
// in flight, so that the calls stay busy and only those pages wait beside the list.
func window(c *Client) int { return 4 * max(c.cfg.MaxConcurrency, 1) }

// lastPage is the number of the last page by a first page's pagination: "pages", else
// "total" when the page was full (a server that gives fewer than asked pages by its own
// size); 0 when unknown.
func lastPage(p *pagination, items, pageSize int) int {
	switch {
	case p == nil:
		return 0
	case p.Pages.set && p.Pages.v > 0:
		return p.Pages.v
	case p.Total.set && items == pageSize && pageSize > 0:
		return (p.Total.v + pageSize - 1) / pageSize
	}
	return 0
}

// result is the answer to one of fetchConcurrently's calls.
type result[V any] struct {
	v   V
	err error
}

// errNotAsked marks the calls fetchConcurrently did not make after an earlier one failed.
var errNotAsked = errors.New("not asked: an earlier call failed")

// fetchConcurrently calls f(0..n-1) on up to limit goroutines and returns the answers in
// order. Calls start in index order; after a failure no new call starts (those not made get
// errNotAsked, and all come after the failed one), but calls in flight finish: an earlier
// answer is never cut short by a later one's error.
func fetchConcurrently[V any](ctx context.Context, limit, n int, f func(context.Context, int) (V, error)) []result[V] {
	out := make([]result[V], n)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range max(min(limit, n), 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if failed.Load() {
					out[i].err = errNotAsked
					continue
				}
				out[i].v, out[i].err = f(ctx, i)
				if out[i].err != nil {
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return out
}

// scimListResponse is the SCIM ListResponse (RFC 7644 §3.4.2).
type scimListResponse[T any] struct {
	TotalResults flexInt `json:"totalResults"`
	ItemsPerPage flexInt `json:"itemsPerPage"`
	StartIndex   flexInt `json:"startIndex"`
	Resources    []T     `json:"Resources"`
}

// scimListAll walks a SCIM list with startIndex/count until totalResults, coping with pages
// shorter than asked; it stops at an empty page and fails after c.maxPages pages. When the
// first page is full and names totalResults, the other pages are asked for concurrently (as
// listAll does) and taken in order; should one of them come back short, the rest are
// dropped and the walk goes on page by page from where that one ended.
func scimListAll[T any](ctx context.Context, c *Client, tmpl, path string, query url.Values, o listOptions) ([]T, error) {
	count := c.cfg.PageSize
	fetch := func(ctx context.Context, start int) (scimListResponse[T], error) {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("startIndex", strconv.Itoa(start))
		q.Set("count", strconv.Itoa(count))
		var lr scimListResponse[T]
		if start > 1 && count > 0 { // the first page was full: room for a page
			lr.Resources = make([]T, 0, count)
		}
		err := c.call(ctx, http.MethodGet, tmpl, path, q, nil, &lr)
		return lr, err
	}
	var all []T
	seen := newMemo()
	start := 1
	// take adds one page, as the page-by-page walk would; done says the list is complete.
	take := func(lr scimListResponse[T]) (done bool) {
		compactPage(lr.Resources, seen, o)
		all = append(all, lr.Resources...)
		if len(lr.Resources) == 0 {
			return true
		}
		start += len(lr.Resources)
		if lr.TotalResults.set && start > lr.TotalResults.v {
			return true
		}
		return !lr.TotalResults.set && len(lr.Resources) < count // no total: a short page is the last one
	}
	for page := 1; ; page++ {
		if page > c.maxPages {
			return nil, fmt.Errorf("babelforce: GET %s: still not at the end after %d pages; the server does not stop paging", path, c.maxPages)
		}
		lr, err := fetch(ctx, start)
		if err != nil {
			return nil, err
		}
		if take(lr) {
			return all, nil
		}
		if page != 1 || len(lr.Resources) != count || !lr.TotalResults.set || count <= 0 {
			continue
		}
		// the first page was full and said how many there are: ask for the rest together
		rest := min((lr.TotalResults.v-start+count)/count, c.maxPages-1)
		all = slices.Grow(all, min(rest*count, maxPresize))
	windows:
		for from := 0; from < rest; from += window(c) {
			pages := fetchConcurrently(ctx, c.cfg.MaxConcurrency, min(window(c), rest-from), func(ctx context.Context, i int) (scimListResponse[T], error) {
				return fetch(ctx, 1+(from+i+1)*count)
			})
			for i := range pages {
				if pages[i].err != nil {
					return nil, pages[i].err
				}
				page++
				short := len(pages[i].v.Resources) < count
				if take(pages[i].v) {
					return all, nil
				}
				pages[i] = result[scimListResponse[T]]{}
				if short && from+i < rest-1 {
					break windows // the next page was asked from where this one should have ended
				}
			}
		}
	}
}
