package babelforce

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
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
func listAll[T any](ctx context.Context, c *Client, tmpl, path string, query url.Values, pageSize int, id func(*T) string) ([]T, error) {
	if pageSize <= 0 {
		pageSize = c.cfg.PageSize
	}
	var all []T
	prevFirst := ""
	for page := 1; ; page++ {
		if page > c.maxPages {
			return nil, fmt.Errorf("babelforce: GET %s: still not at the last page after %d pages of %d items; the server does not stop paging", path, c.maxPages, pageSize)
		}
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("page", strconv.Itoa(page))
		q.Set("max", strconv.Itoa(pageSize))
		var env listEnvelope[T]
		if err := c.call(ctx, http.MethodGet, tmpl, path, q, nil, &env); err != nil {
			if page > 1 {
				return nil, fmt.Errorf("page %d: %w", page, err)
			}
			return nil, err
		}
		if len(env.Items) == 0 {
			break
		}
		if first := id(&env.Items[0]); first != "" {
			if first == prevFirst {
				return nil, fmt.Errorf("babelforce: GET %s: page %d repeats page %d (first id %s); the server ignores paging", path, page, page-1, first)
			}
			prevFirst = first
		}
		all = append(all, env.Items...)
		if p := env.Pagination; p != nil {
			if p.Pages.set && p.Pages.v > 0 && page >= p.Pages.v {
				break
			}
			if p.Total.set && !p.Pages.set && len(all) >= p.Total.v {
				break
			}
		}
	}
	return all, nil
}

// scimListResponse is the SCIM ListResponse (RFC 7644 §3.4.2).
type scimListResponse[T any] struct {
	TotalResults flexInt `json:"totalResults"`
	ItemsPerPage flexInt `json:"itemsPerPage"`
	StartIndex   flexInt `json:"startIndex"`
	Resources    []T     `json:"Resources"`
}

// scimListAll walks a SCIM list with startIndex/count until totalResults, coping with pages
// shorter than asked; it stops at an empty page and fails after c.maxPages pages.
func scimListAll[T any](ctx context.Context, c *Client, tmpl, path string, query url.Values) ([]T, error) {
	var all []T
	start := 1
	for page := 1; ; page++ {
		if page > c.maxPages {
			return nil, fmt.Errorf("babelforce: GET %s: still not at the end after %d pages; the server does not stop paging", path, c.maxPages)
		}
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("startIndex", strconv.Itoa(start))
		q.Set("count", strconv.Itoa(c.cfg.PageSize))
		var lr scimListResponse[T]
		if err := c.call(ctx, http.MethodGet, tmpl, path, q, nil, &lr); err != nil {
			return nil, err
		}
		all = append(all, lr.Resources...)
		if len(lr.Resources) == 0 {
			break
		}
		start += len(lr.Resources)
		if lr.TotalResults.set && start > lr.TotalResults.v {
			break
		}
		if !lr.TotalResults.set && len(lr.Resources) < c.cfg.PageSize {
			break // no total: a short page is the last one
		}
	}
	return all, nil
}
