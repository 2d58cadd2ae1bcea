package httpx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/babelforce/bridge/internal/testenv"
)

func TestCertPoolAndTransport(t *testing.T) {
	dir := t.TempDir()
	ca, err := testenv.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CertPool(filepath.Join(dir, "missing.pem"), true); err == nil || !strings.HasPrefix(err.Error(), "ca_file: ") {
		t.Errorf("missing file: %v", err)
	}
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CertPool(junk, false); err == nil || !strings.Contains(err.Error(), "ca_file: no PEM certificate found in "+junk) {
		t.Errorf("junk file: %v", err)
	}
	if _, err := Transport(junk, false); err == nil {
		t.Error("Transport accepted a file without certificates")
	}
	only, err := CertPool(ca.CAFile, false)
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 counting the certificates of a pool without the system roots is all we need
	if n := len(only.Subjects()); n != 1 {
		t.Errorf("pool without the system roots holds %d certificates, want 1", n)
	}

	tr, err := Transport("", false)
	if err != nil || tr.TLSClientConfig != nil && (tr.TLSClientConfig.InsecureSkipVerify || tr.TLSClientConfig.RootCAs != nil) {
		t.Errorf("no ca_file, not insecure: err %v, or not the default TLS settings", err)
	}
	tr, err = Transport("", true)
	if err != nil || tr.TLSClientConfig == nil || !tr.TLSClientConfig.InsecureSkipVerify || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 {
		t.Errorf("insecure: TLS config %+v, err %v", tr.TLSClientConfig, err)
	}

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }))
	cert, err := tls.LoadX509KeyPair(ca.CertFile, ca.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	get := func(tr *http.Transport) error {
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	plain, _ := Transport("", false)
	if err := get(plain); err == nil || !IsTLSError(err) {
		t.Errorf("unknown CA: err %v, want a TLS error", err)
	}
	withCA, err := Transport(ca.CAFile, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := get(withCA); err != nil {
		t.Errorf("with ca_file: %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{" 1.5 ", 1500 * time.Millisecond, true},
		{"-3", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	} {
		h := http.Header{}
		if c.v != "" {
			h.Set("Retry-After", c.v)
		}
		if got, ok := RetryAfter(h, now); got != c.want || ok != c.ok {
			t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", c.v, got, ok, c.want, c.ok)
		}
	}
}

func TestIsTLSError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("get: %w", x509.UnknownAuthorityError{}), true},
		{fmt.Errorf("get: %w", x509.HostnameError{Host: "x"}), true},
		{fmt.Errorf("get: %w", tls.AlertError(42)), true},
		{fmt.Errorf("get: %w", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), true},
		{errors.New("connection refused"), false},
		{context.Canceled, false},
	} {
		if got := IsTLSError(c.err); got != c.want {
			t.Errorf("IsTLSError(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if err := Sleep(ctx, 0); err != nil {
		t.Errorf("Sleep(0) = %v", err)
	}
	if err := Sleep(ctx, time.Nanosecond); err != nil {
		t.Errorf("Sleep(1ns) = %v", err)
	}
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep after cancel = %v, want context.Canceled", err)
	}
	if err := Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep(0) after cancel = %v, want context.Canceled", err)
	}
}
