// Package httpx holds the plumbing bridge's outbound HTTP clients share (the babelforce API
// client and the upstream SCIM source; the LDAP source uses its CA pool): TLS settings from
// ca_file and insecure_skip_verify, Retry-After parsing, telling certificate failures (never
// cured by a retry) from other errors, and a sleep that ends with its context.
package httpx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// CertPool returns a pool with the PEM certificates of caFile, added to the system's roots
// when withSystem is set (else the pool holds only caFile's). Errors start with "ca_file: ".
func CertPool(caFile string, withSystem bool) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	var pool *x509.CertPool
	if withSystem {
		pool, err = x509.SystemCertPool()
	}
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file: no PEM certificate found in %s", caFile)
	}
	return pool, nil
}

// Transport returns a clone of http.DefaultTransport that trusts caFile's certificates in
// addition to the system's and, when insecure is set, accepts any certificate. With neither
// set, the default TLS settings stay.
func Transport(caFile string, insecure bool) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile == "" && !insecure {
		return tr, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} //nolint:gosec // opt-in via config
	if caFile != "" {
		pool, err := CertPool(caFile, true)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	tr.TLSClientConfig = tc
	return tr, nil
}

// MaxRetryAfter caps what RetryAfter returns, so that a caller may add the wait to the time
// it has already spent without overflowing time.Duration.
const MaxRetryAfter = 365 * 24 * time.Hour

// RetryAfter reads a Retry-After header: delta seconds (fractions accepted) or an HTTP date,
// relative to now (never negative, at most MaxRetryAfter). ok is false when the header is
// absent or unreadable.
func RetryAfter(h http.Header, now time.Time) (wait time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
		// compare before converting: a float beyond int64 converts to a negative Duration
		if secs >= MaxRetryAfter.Seconds() {
			return MaxRetryAfter, true
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), MaxRetryAfter), true
	}
	return 0, false
}

// IsTLSError reports a certificate or TLS protocol failure (unknown authority, wrong host name,
// expired certificate, a TLS alert, https:// against a plain port): retrying cannot cure it.
func IsTLSError(err error) bool {
	var (
		cve *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		rh  tls.RecordHeaderError
		ae  tls.AlertError
	)
	return errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &he) ||
		errors.As(err, &ci) || errors.As(err, &rh) || errors.As(err, &ae)
}

// Sleep waits d or until ctx ends, whichever comes first; it returns ctx.Err() in the latter
// case (also for d <= 0 when ctx has ended already).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
