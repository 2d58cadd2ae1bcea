package oidc

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Severities of a Finding.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Names of the checks Discover and CheckClientCredentials run.
const (
	CheckIssuerURL              = "issuer_url"
	CheckDiscovery              = "discovery"
	CheckIssuer                 = "issuer"
	CheckAuthorizationURL       = "authorization_endpoint"
	CheckTokenURL               = "token_endpoint"
	CheckJWKS                   = "jwks"
	CheckScopes                 = "scopes_supported"
	CheckClaims                 = "claims_supported"
	CheckClientCredentialsGrant = "client_credentials"
)

// Finding is the outcome of one check.
type Finding struct {
	Check string `json:"check"`
	OK    bool   `json:"ok"`
	// Severity is "error" or "warning"; it matters only when OK is false. A warning never makes
	// the report fail.
	Severity string `json:"severity,omitempty"`
	Expected string `json:"expected,omitempty"`
	Found    string `json:"found,omitempty"`
	Message  string `json:"message"`
}

// Failed reports whether the finding fails the report (not OK and severity error).
func (f Finding) Failed() bool { return !f.OK && f.Severity != SeverityWarning }

// Report lists the findings about one issuer, in the order the checks ran.
type Report struct {
	Issuer   string    `json:"issuer"`
	Findings []Finding `json:"findings"`
}

// OK reports whether no finding failed (warnings allowed).
func (r *Report) OK() bool {
	if r == nil {
		return false
	}
	for _, f := range r.Findings {
		if f.Failed() {
			return false
		}
	}
	return true
}

// Failures returns the findings that fail the report.
func (r *Report) Failures() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Failed() {
			out = append(out, f)
		}
	}
	return out
}

// Warnings returns the findings that are warnings.
func (r *Report) Warnings() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if !f.OK && f.Severity == SeverityWarning {
			out = append(out, f)
		}
	}
	return out
}

// Err returns nil when the report is OK, else a *ValidationError listing every failure.
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	return &ValidationError{Report: r}
}

func (r *Report) add(f Finding) {
	if f.OK {
		f.Severity = ""
	} else if f.Severity == "" {
		f.Severity = SeverityError
	}
	r.Findings = append(r.Findings, f)
}

func (r *Report) pass(check, found, msg string) {
	r.add(Finding{Check: check, OK: true, Found: found, Message: msg})
}

func (r *Report) fail(check, expected, found, msg string) {
	r.add(Finding{Check: check, Severity: SeverityError, Expected: expected, Found: found, Message: msg})
}

func (r *Report) warn(check, expected, found, msg string) {
	r.add(Finding{Check: check, Severity: SeverityWarning, Expected: expected, Found: found, Message: msg})
}

// WriteText writes the report for a person: one line per finding, then a verdict.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "OpenID Connect issuer %s\n", r.Issuer)
	for _, f := range r.Findings {
		mark := "ok  "
		switch {
		case f.Failed():
			mark = "FAIL"
		case !f.OK:
			mark = "warn"
		}
		fmt.Fprintf(&b, "  [%s] %-22s %s", mark, f.Check, f.Message)
		if !f.OK && (f.Expected != "" || f.Found != "") {
			fmt.Fprintf(&b, " (expected %s, found %s)", orNone(f.Expected), orNone(f.Found))
		}
		b.WriteByte('\n')
	}
	if r.OK() {
		fmt.Fprintf(&b, "result: OK (%d warnings)\n", len(r.Warnings()))
	} else {
		fmt.Fprintf(&b, "result: FAILED (%d errors, %d warnings)\n", len(r.Failures()), len(r.Warnings()))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// ValidationError is returned when an issuer fails at least one check. errors.Is(err,
// ErrValidation) holds.
type ValidationError struct {
	Report *Report
}

// ErrValidation is the sentinel every *ValidationError matches.
var ErrValidation = errors.New("oidc issuer failed validation")

func (e *ValidationError) Error() string {
	var parts []string
	for _, f := range e.Report.Failures() {
		parts = append(parts, f.Check+": "+f.Message)
	}
	return fmt.Sprintf("oidc issuer %q failed validation: %s", e.Report.Issuer, strings.Join(parts, "; "))
}

// Is makes errors.Is(err, ErrValidation) true.
func (e *ValidationError) Is(target error) bool { return target == ErrValidation }
