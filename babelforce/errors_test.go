package babelforce

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestParseAPIError(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		code   string
		msg    string
		is     error
		isNot  error
		trans  bool
	}{
		{"babelforce", 404, `{"code":"notFound","message":"Agent not found","success":false}`, "notFound", "Agent not found", ErrNotFound, ErrConflict, false},
		{"numeric code", 409, `{"code":409,"error":"duplicate email"}`, "409", "duplicate email", ErrConflict, ErrNotFound, false},
		{"detail", 403, `{"detail":"manager role required"}`, "", "manager role required", ErrUnauthorized, nil, false},
		{"scim", 409, `{"schemas":["` + SCIMErrorSchema + `"],"status":"409","scimType":"uniqueness","detail":"userName taken"}`, "uniqueness", "userName taken", ErrConflict, nil, false},
		{"oauth", 401, `{"error":"invalid_token","error_description":"expired"}`, "invalid_token", "expired", ErrUnauthorized, nil, false},
		{"message wins over error", 400, `{"message":"bad name","error":"Bad Request"}`, "", "bad name", nil, ErrNotFound, false},
		{"html", 502, `<html>bad gateway</html>`, "", "<html>bad gateway</html>", nil, ErrNotFound, true},
		{"empty", 429, ``, "", "", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := parseAPIError("GET", "/api/v2/agents/x", tt.status, []byte(tt.body))
			if e.Code != tt.code || e.Message != tt.msg || e.Status != tt.status || e.Method != "GET" || e.Path != "/api/v2/agents/x" {
				t.Errorf("got %+v", e)
			}
			wrapped := fmt.Errorf("context: %w", e)
			if tt.is != nil && !errors.Is(wrapped, tt.is) {
				t.Errorf("not %v", tt.is)
			}
			if tt.isNot != nil && errors.Is(wrapped, tt.isNot) {
				t.Errorf("unexpectedly %v", tt.isNot)
			}
			if IsTransient(wrapped) != tt.trans {
				t.Errorf("IsTransient = %v", !tt.trans)
			}
		})
	}
	e := &APIError{Status: 404, Code: "notFound", Message: "no agent", Method: "GET", Path: "/api/v2/agents/ab"}
	if got, want := e.Error(), "babelforce: GET /api/v2/agents/ab: 404 Not Found: notFound: no agent"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestIsTransient(t *testing.T) {
	for status, want := range map[int]bool{429: true, 502: true, 503: true, 504: true, 500: true, 501: true, 400: false, 404: false, 401: false} {
		if got := IsTransient(&APIError{Status: status}); got != want {
			t.Errorf("IsTransient(%d) = %v", status, got)
		}
	}
	if IsTransient(nil) || IsTransient(errors.New("x")) {
		t.Error("plain errors are not transient")
	}
	_ = http.StatusOK
}
