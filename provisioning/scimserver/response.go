package scimserver

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The library writes meta.location and the Location header relative to the SCIM base unless
// it was given a base URL, and itemsPerPage as the requested count. finishResponse corrects
// both on the way out: locations absolute (RFC 7643 section 3.1), itemsPerPage the number of
// resources returned (RFC 7644 section 3.4.2).

type baseKey struct{}

func withBase(ctx context.Context, base string) context.Context {
	return context.WithValue(ctx, baseKey{}, base)
}

// baseFrom is the absolute SCIM base URL of the request ("" outside a request).
func baseFrom(ctx context.Context) string {
	s, _ := ctx.Value(baseKey{}).(string)
	return s
}

// baseURL is Options.BaseURL, or else the base the client used: scheme (TLS, or
// X-Forwarded-Proto from a proxy), Host, and the path the handler is mounted under (what
// http.StripPrefix took off).
func (s *server) baseURL(r *http.Request) string {
	if s.opts.BaseURL != "" {
		return strings.TrimRight(s.opts.BaseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if p := strings.ToLower(r.Header.Get("X-Forwarded-Proto")); p == "https" || p == "http" {
		scheme = p
	}
	prefix := ""
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && strings.HasSuffix(u.Path, r.URL.Path) {
		prefix = strings.TrimSuffix(u.Path, r.URL.Path)
	}
	return scheme + "://" + r.Host + strings.TrimRight(prefix, "/")
}

// absolute makes a location relative to the SCIM base ("Users/id") absolute.
func absolute(base, loc string) string {
	if loc == "" || strings.Contains(loc, "://") {
		return loc
	}
	return base + "/" + strings.TrimPrefix(loc, "/")
}

// finishResponse writes the library's buffered answer to w with absolute locations and the
// true itemsPerPage.
func finishResponse(w http.ResponseWriter, base string, buf *bufferWriter) {
	for k, v := range buf.header {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	if loc := buf.header.Get("Location"); loc != "" {
		w.Header().Set("Location", absolute(base, loc))
	}
	body := buf.body.Bytes()
	var doc map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if len(bytes.TrimSpace(body)) > 0 && d.Decode(&doc) == nil {
		fixLocation(doc, base)
		if list, ok := doc["Resources"].([]any); ok {
			for _, e := range list {
				if m, ok := e.(map[string]any); ok {
					fixLocation(m, base)
				}
			}
			if _, ok := doc["itemsPerPage"]; ok {
				doc["itemsPerPage"] = json.Number(strconv.Itoa(len(list)))
			}
		}
		if raw, err := json.Marshal(doc); err == nil {
			body = append(raw, '\n')
		}
	}
	w.WriteHeader(buf.status)
	_, _ = w.Write(body)
}

func fixLocation(doc map[string]any, base string) {
	if meta, ok := doc["meta"].(map[string]any); ok {
		if loc, ok := meta["location"].(string); ok {
			meta["location"] = absolute(base, loc)
		}
	}
}
