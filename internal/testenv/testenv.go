// Package testenv starts the real servers bridge's tests run against (OpenLDAP slapd, a Samba
// Active Directory domain controller, PostgreSQL, the scimmy SCIM service and an OIDC
// provider) on loopback, and holds the small helpers they share:
// "this test needs binary X" (fatal in CI, skipped elsewhere), free ports and a throwaway
// certificate authority for TLS.
//
// Everything here is for tests only. Servers are stopped by t.Cleanup (slapd, scimmy, the OIDC
// provider) or when the test binary exits (Samba and PostgreSQL, shared by every test of one
// binary; see StartSamba and StartPostgres).
package testenv

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// aptPackages names the Debian package that provides each binary the helpers run.
var aptPackages = map[string]string{
	"slapd":      "slapd",
	"slapadd":    "slapd",
	"ldapadd":    "ldap-utils",
	"ldapsearch": "ldap-utils",
	"ldapmodify": "ldap-utils",
	"samba":      "samba samba-ad-dc samba-dsdb-modules samba-vfs-modules winbind samba-ad-provision",
	"samba-tool": "samba samba-ad-dc samba-dsdb-modules samba-vfs-modules winbind samba-ad-provision",
	"node":       "nodejs",
	"npm":        "npm",
	"chromium":   "chromium",
}

// InCI reports whether the tests run in CI, where a missing test dependency is a failure
// instead of a skip: CI=true or CI=1 (any value strconv.ParseBool reads as true) means CI;
// CI=false, CI=0 or no CI means not. Any other non-empty value counts as CI (a missing server
// then fails rather than passes by skipping).
func InCI() bool { return inCI(os.Getenv("CI")) }

func inCI(v string) bool {
	v = strings.TrimSpace(v)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	return err != nil || b
}

// Need makes sure every named binary is on PATH (or, for sbin tools, in /usr/sbin or /sbin).
// When one is missing the test fails in CI, naming the Debian package to install, and is
// skipped elsewhere.
func Need(t testing.TB, binaries ...string) {
	t.Helper()
	var missing []string
	pkgs := map[string]bool{}
	for _, b := range binaries {
		if _, err := LookPath(b); err != nil {
			missing = append(missing, b)
			if p, ok := aptPackages[b]; ok {
				pkgs[p] = true
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	var install []string
	for p := range pkgs {
		install = append(install, p)
	}
	msg := fmt.Sprintf("test needs %s, not found on PATH", strings.Join(missing, ", "))
	if len(install) > 0 {
		msg += fmt.Sprintf(" (apt-get install -y %s)", strings.Join(install, " "))
	}
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// LookPath finds a binary on PATH or in /usr/sbin and /sbin (which a non-root PATH often lacks).
func LookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found", name)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return port
}

// freePort is FreePort without a testing.TB (the shared servers outlive any one test).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// CA is a throwaway certificate authority and one server certificate it signed, valid for
// 127.0.0.1, ::1 and localhost, written as PEM files.
type CA struct {
	CAFile   string // the CA certificate, to verify the server with
	CertFile string // the server certificate
	KeyFile  string // the server's private key (mode 0600)
}

// NewCA writes a fresh CA and server certificate into dir.
func NewCA(dir string, extraNames ...string) (*CA, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bridge test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     append([]string{"localhost"}, extraNames...),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	ca := &CA{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "cert.pem"),
		KeyFile:  filepath.Join(dir, "key.pem"),
	}
	if err := os.WriteFile(ca.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(ca.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(ca.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	return ca, nil
}

// waitFor polls ready until it returns nil or the deadline passes (external server start-up
// only). exited, when it receives, means the server died and there is no point in waiting.
func waitFor(deadline time.Duration, exited <-chan struct{}, ready func() error) error {
	end := time.Now().Add(deadline)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = ready(); last == nil {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("not ready after %s: %w", deadline, last)
		}
		select {
		case <-exited:
			return fmt.Errorf("server exited while starting: %w", last)
		case <-tick.C:
		}
	}
}

// proc is a server process this package started: exited is closed once it has exited.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	stdin  io.Closer // closed first when stopping (servers that end on EOF); may be nil
	group  bool      // signals go to the process group (the server forks)
}

// startProc starts cmd and watches for its exit. stdin, when not nil, is cmd's stdin pipe,
// closed by stop; group sends stop's signals to cmd's process group (Setpgid must be set).
func startProc(cmd *exec.Cmd, stdin io.Closer, group bool) (*proc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, exited: make(chan struct{}), stdin: stdin, group: group}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// stop closes stdin, sends sig and waits for the exit, with SIGKILL after grace. Safe to call
// more than once, on nil and on a process that has exited.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) {
	if p == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	if p.stdin != nil {
		_ = p.stdin.Close()
	}
	p.signal(sig)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.signal(syscall.SIGKILL)
		<-p.exited
	}
}

func (p *proc) signal(sig syscall.Signal) {
	if p.group {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
		return
	}
	_ = p.cmd.Process.Signal(sig)
}

// tail returns the last n bytes of a log for error messages.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// tlsConfigFor returns a client TLS configuration that trusts only the CA in caPEM.
func tlsConfigFor(caPEM []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in CA file")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers and readers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Bytes returns a copy of what was written so far.
func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.buf.Bytes())
}
