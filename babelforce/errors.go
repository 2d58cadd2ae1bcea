package babelforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/babelforce/bridge/internal/httpx"
)

// Sentinel errors; errors.Is matches them against an *APIError by its status.
var (
	// ErrNotFound matches a 404 answer.
	ErrNotFound = errors.New("babelforce: not found")
	// ErrConflict matches a 409 answer.
	ErrConflict = errors.New("babelforce: conflict")
	// ErrUnauthorized matches a 401 or 403 answer and rejected credentials.
	ErrUnauthorized = errors.New("babelforce: unauthorized")
)

// APIError is an error answer of a babelforce API.
type APIError struct {
	// Status is the HTTP status code (200 when the server answered success:false).
	Status int
	// Code is babelforce's error code, the OAuth "error" or the SCIM "scimType", when given.
	Code string
	// Message is the first of "message", "error", "detail" (or "error_description").
	Message string
	// Method and Path identify the request (Path without the query).
	Method string
	Path   string
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "babelforce: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNotFound|ErrConflict|ErrUnauthorized) work on an *APIError.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	}
	return false
}

// transientStatus reports whether a status means "try again later": 429 and every 5xx.
//
// A 500 is transient too: babelforce (like any service behind a load balancer) answers 500
// for passing trouble as often as for a request it cannot process, and repeating a request
// that is safe to repeat costs one call. Whether a request is safe to repeat is decided by
// the request (see request.idempotent), not by the status: a create answered 500 may have
// been applied and is looked up before it is sent again.
func transientStatus(status int) bool {
	return status == http.StatusTooManyRequests || (status >= 500 && status <= 599)
}

// notProcessedStatus reports whether an error status says the server did not act on the
// request at all (429 Too Many Requests, 503 Service Unavailable): then even a create is
// sent again.
func notProcessedStatus(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// IsTransient reports whether err is worth retrying later: an *APIError with status 429 or
// any 5xx (also after the client's own retries gave up), or a network error (connection
// reset or refused, unexpected EOF, timeout). Context cancellation is not transient.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return transientStatus(ae.Status)
	}
	if httpx.IsTLSError(err) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE)
}

// errorBody is the union of babelforce's, OAuth's and SCIM's error bodies.
type errorBody struct {
	Code             json.RawMessage `json:"code"`
	Message          json.RawMessage `json:"message"`
	Error            json.RawMessage `json:"error"`
	ErrorDescription string          `json:"error_description"`
	Detail           json.RawMessage `json:"detail"`
	SCIMType         string          `json:"scimType"`
}

// parseAPIError builds an *APIError from an error answer. Unknown bodies keep a short excerpt
// of the text as the message.
func parseAPIError(method, path string, status int, body []byte) *APIError {
	e := &APIError{Status: status, Method: method, Path: path}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		e.Message = excerpt(body)
		return e
	}
	e.Code = rawText(eb.Code)
	errText := rawText(eb.Error)
	switch {
	case eb.ErrorDescription != "" || (errText != "" && e.Code == "" && rawText(eb.Message) == "" && isOAuthCode(errText)):
		// OAuth (RFC 6749): {"error": "invalid_grant", "error_description": "..."}.
		if e.Code == "" {
			e.Code = errText
		}
		e.Message = eb.ErrorDescription
		if e.Message == "" && e.Code != errText {
			e.Message = errText
		}
	default:
		for _, m := range []json.RawMessage{eb.Message, eb.Error, eb.Detail} {
			if t := rawText(m); t != "" {
				e.Message = t
				break
			}
		}
	}
	if e.Code == "" && errText != "" && errText != e.Message && isOAuthCode(errText) {
		// {"success": false, "error": "invalid_token", "message": "..."}
		e.Code = errText
	}
	if e.Code == "" && eb.SCIMType != "" {
		e.Code = eb.SCIMType
	}
	return e
}

// isOAuthCode reports whether s looks like an RFC 6749 error code (snake_case word).
func isOAuthCode(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '_' {
			return false
		}
	}
	return true
}

// rawText renders a JSON value that should be a string or number as text; objects and arrays
// are rendered compactly.
func rawText(m json.RawMessage) string {
	if len(m) == 0 || string(m) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(m, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(m, &n) == nil {
		return n.String()
	}
	var obj struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(m, &obj) == nil && obj.Message != "" {
		return obj.Message
	}
	return excerpt(m)
}

// excerpt shortens a body for an error message.
func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(s[cut]) { // never split a UTF-8 sequence
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// authError reports credentials the token endpoint rejected; it matches ErrUnauthorized and
// unwraps to the token endpoint's *APIError. It never contains the password.
type authError struct {
	user string
	api  *APIError
}

func (e *authError) Error() string {
	msg := e.api.Code
	if e.api.Message != "" {
		if msg != "" {
			msg += ": "
		}
		msg += e.api.Message
	}
	if msg == "" {
		msg = strconv.Itoa(e.api.Status) + " " + http.StatusText(e.api.Status)
	}
	return fmt.Sprintf("babelforce rejected the credentials for user %q: %s", e.user, msg)
}

func (e *authError) Unwrap() []error { return []error{ErrUnauthorized, e.api} }
