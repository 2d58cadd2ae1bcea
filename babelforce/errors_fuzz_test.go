package babelforce

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/babelforce/bridge/internal/httpx"
)

// FuzzParseAPIError: any error answer (status, body) gives an *APIError that keeps the status,
// method and path, never panics, and says something: a message or code of bounded size, an
// Error() text naming the request, and errors.Is consistent with the status.
func FuzzParseAPIError(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{404, `{"success":false,"message":"Agent not found","code":"not_found"}`},
		{409, `{"success":false,"message":{"message":"E-mail already taken"},"code":409}`},
		{400, `{"error":"invalid_grant","error_description":"Bad credentials"}`},
		{401, `{"success":false,"error":"invalid_token","message":"Token expired"}`},
		{401, `{"error":"invalid_token"}`},
		{400, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidValue","detail":"bad"}`},
		{500, `<html><body>Internal Server Error</body></html>`},
		{502, ``},
		{503, `null`},
		{429, `[]`},
		{400, `{"message":["a","b"],"error":{"x":1},"detail":12345678901234567890123}`},
		{400, `{"code":null,"message":null,"error":null}`},
		{400, `{"message":"` + strings.Repeat("x", 5000) + `"}`},
		{400, "\xff\xfe\xfd"},
		{400, `{"message":"` + "\xff" + `"}`},
		{0, `{}`},
		{-1, `{"error":""}`},
		{999, `{"error_description":"x"}`},
		{403, strings.Repeat("[", 10000)},
		{502, "<html>" + strings.Repeat("ä", 300) + "</html>"},
		{400, `{"message":{"text":"` + strings.Repeat("é", 300) + `"}}`},
	} {
		f.Add(s.status, "GET", "/api/v2/agents/42", []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, method, path string, body []byte) {
		e := parseAPIError(method, path, status, body)
		if e == nil {
			t.Fatal("nil *APIError")
		}
		if e.Status != status || e.Method != method || e.Path != path {
			t.Fatalf("request lost: %+v", e)
		}
		if len(e.Message) > 4*len(body)+16 && len(e.Message) > 1024 {
			t.Fatalf("message of %d bytes from a body of %d", len(e.Message), len(body))
		}
		msg := e.Error()
		if !strings.HasPrefix(msg, "babelforce: "+method+" "+path+": ") {
			t.Fatalf("Error() %q does not name the request", msg)
		}
		if errors.Is(e, ErrNotFound) != (status == http.StatusNotFound) ||
			errors.Is(e, ErrConflict) != (status == http.StatusConflict) ||
			errors.Is(e, ErrUnauthorized) != (status == http.StatusUnauthorized || status == http.StatusForbidden) {
			t.Fatalf("errors.Is does not follow status %d", status)
		}
		if IsTransient(e) != transientStatus(status) {
			t.Fatalf("IsTransient(%d) = %v", status, IsTransient(e))
		}
		if utf8.Valid(body) && !utf8.ValidString(e.Message) {
			t.Fatalf("message %q is not UTF-8 though the body was", e.Message)
		}
	})
}

// FuzzRetryAfter: a Retry-After header of any text gives a wait that is never negative, zero
// when unreadable, at most httpx.MaxRetryAfter (so that adding it to the time already spent
// cannot overflow), and the number of seconds asked for when that is a plain number in range.
func FuzzRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{
		"", "0", "1", "120", " 5 ", "1.5", "-1", "-0", "+3", "1e3", "1e19", "9223372036", "9223372037",
		"1e300", "Inf", "+Inf", "-Inf", "NaN", "0x10", "0x1p-2", "1_000", "5s", "abc",
		"Wed, 25 Nov 2026 12:00:30 GMT", "Wed, 25 Nov 2026 11:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT",
		"Monday, 02-Jan-06 15:04:05 MST", "Mon Jan  2 15:04:05 2006", "Thu, 01 Jan 1970 00:00:00 GMT",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{}
		h.Set("Retry-After", v)
		wait, ok := httpx.RetryAfter(h, now)
		if wait < 0 {
			t.Fatalf("Retry-After %q gives a negative wait %s", v, wait)
		}
		if !ok && wait != 0 {
			t.Fatalf("Retry-After %q unreadable but wait %s", v, wait)
		}
		if wait > httpx.MaxRetryAfter {
			t.Fatalf("Retry-After %q gives %s, beyond the cap %s", v, wait, httpx.MaxRetryAfter)
		}
		if elapsed := 48 * time.Hour; elapsed+wait < elapsed {
			t.Fatalf("Retry-After %q: %s overflows when added to the time spent", v, wait)
		}
	})
}
