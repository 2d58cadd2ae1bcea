package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// SambaOptions configures StartSamba. There is nothing to choose yet: every test of a binary
// shares one domain controller for the domain EXAMPLE.TEST.
type SambaOptions struct{}

// Samba is a running Samba Active Directory domain controller on 127.0.0.1 (ports 389 and 636).
// Simple binds over plain LDAP are refused, as on a hardened AD: use LDAPSURL with CAFile.
type Samba struct {
	URL          string // ldap://127.0.0.1:389 (simple binds refused without TLS)
	LDAPSURL     string // ldaps://127.0.0.1:636, certificate for 127.0.0.1 signed by CAFile
	CAFile       string
	BindDN       string // CN=Administrator,CN=Users,DC=example,DC=test
	BindPassword string
	BaseDN       string // DC=example,DC=test
	Realm        string // EXAMPLE.TEST
	Dir          string // the provisioned target dir

	proc *proc
	log  *lockedBuffer
}

const (
	sambaLockFile  = "/tmp/bridge-samba.lock"
	sambaDirPrefix = "bridge-samba-"
	sambaPassword  = "Bridge-Test-Passw0rd!"
)

var (
	sambaMu   sync.Mutex
	sambaInst *Samba
	sambaErr  error
	sambaLock *os.File
	ouSeq     atomic.Int64
)

// StartSamba returns the domain controller shared by every test of this test binary,
// provisioning and starting it on first use (about 4 s). Only one Samba can listen on
// 127.0.0.1:389/636 per machine, so test binaries serialise on a flock of
// /tmp/bridge-samba.lock held until the binary exits: a second package that starts Samba
// waits for the first to finish. Samba runs in interactive mode reading our end of a pipe, so
// it terminates when the test binary exits, however it exits.
//
// Tests share the directory: put each test's entries under its own OU (NewOU).
// Needs root (Samba's DC does) and the samba, samba-ad-dc, samba-dsdb-modules, winbind,
// samba-ad-provision and ldap-utils packages.
func StartSamba(t testing.TB, _ SambaOptions) *Samba {
	t.Helper()
	Need(t, "samba", "samba-tool", "ldapmodify")
	if os.Geteuid() != 0 {
		msg := "Samba AD DC tests need root (samba refuses to run as another user)"
		if InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	sambaMu.Lock()
	defer sambaMu.Unlock()
	if sambaInst == nil && sambaErr == nil {
		sambaInst, sambaErr = startSamba()
	}
	if sambaErr != nil {
		t.Fatalf("samba: %v", sambaErr)
	}
	select {
	case <-sambaInst.proc.exited:
		t.Fatalf("samba: the shared domain controller has exited:\n%s", tail(sambaInst.log.Bytes(), 4000))
	default:
	}
	return sambaInst
}

func startSamba() (*Samba, error) {
	if sambaLock == nil {
		f, err := os.OpenFile(sambaLockFile, os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			return nil, fmt.Errorf("lock file: %w", err)
		}
		// Blocks while another test binary uses Samba; released when this binary exits.
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", sambaLockFile, err)
		}
		sambaLock = f
	}
	// We hold the lock: directories of earlier runs are garbage.
	if old, _ := filepath.Glob(filepath.Join(os.TempDir(), sambaDirPrefix+"*")); len(old) > 0 {
		for _, d := range old {
			_ = os.RemoveAll(d)
		}
	}
	// A previous holder's Samba may take a moment to release the ports.
	if err := waitFor(15*time.Second, nil, func() error {
		for _, p := range []string{"389", "636"} {
			l, err := net.Listen("tcp", "127.0.0.1:"+p)
			if err != nil {
				return fmt.Errorf("port %s busy (another Samba or slapd on 389/636?): %w", p, err)
			}
			l.Close()
		}
		return nil
	}); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", sambaDirPrefix)
	if err != nil {
		return nil, err
	}
	s := &Samba{
		URL:          "ldap://127.0.0.1:389",
		LDAPSURL:     "ldaps://127.0.0.1:636",
		BindDN:       "CN=Administrator,CN=Users,DC=example,DC=test",
		BindPassword: sambaPassword,
		BaseDN:       "DC=example,DC=test",
		Realm:        "EXAMPLE.TEST",
		Dir:          dir,
	}
	target := filepath.Join(dir, "T")
	tool, _ := LookPath("samba-tool")
	prov := exec.Command(tool, "domain", "provision",
		"--targetdir="+target, "--realm=EXAMPLE.TEST", "--domain=EXAMPLE", "--server-role=dc",
		"--dns-backend=NONE", "--adminpass="+sambaPassword, "--use-rfc2307", "--host-name=dc1",
		"--option=interfaces=lo", "--option=bind interfaces only=yes")
	if out, err := prov.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("samba-tool domain provision: %w\n%s", err, tail(out, 4000))
	}
	tlsDir := filepath.Join(dir, "tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return nil, err
	}
	ca, err := NewCA(tlsDir, "dc1", "dc1.example.test")
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	s.CAFile = ca.CAFile
	conf := filepath.Join(target, "etc", "smb.conf")
	if err := editSMBConf(conf, map[string]string{
		"server services": "ldap",
		"log file":        filepath.Join(target, "log.%m"),
		"tls enabled":     "yes",
		"tls keyfile":     ca.KeyFile,
		"tls certfile":    ca.CertFile,
		"tls cafile":      ca.CAFile,
	}); err != nil {
		return nil, err
	}
	bin, _ := LookPath("samba")
	cmd := exec.Command(bin, "-s", conf, "-i")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.log = &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// samba -i terminates on EOF on stdin: our end closes when this process exits.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if s.proc, err = startProc(cmd, stdin, true); err != nil {
		return nil, fmt.Errorf("start samba: %w", err)
	}
	err = waitFor(30*time.Second, s.proc.exited, func() error {
		c, err := s.Dial()
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Bind(s.BindDN, s.BindPassword)
	})
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("%w\n%s", err, tail(s.log.Bytes(), 4000))
	}
	return s, nil
}

// editSMBConf sets keys in the [global] section, replacing any existing setting.
func editSMBConf(path string, set map[string]string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		key, _, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok {
			if _, replace := set[strings.ToLower(strings.TrimSpace(key))]; replace {
				continue
			}
		}
		out = append(out, line)
		if strings.TrimSpace(line) == "[global]" {
			for k, v := range set {
				out = append(out, fmt.Sprintf("\t%s = %s", k, v))
			}
		}
	}
	return os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644)
}

func (s *Samba) stop() { s.proc.stop(syscall.SIGTERM, 10*time.Second) }

// Dial connects to LDAPSURL, verifying the certificate with CAFile (not bound).
func (s *Samba) Dial() (*ldap.Conn, error) {
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, err
	}
	tc, err := tlsConfigFor(pem)
	if err != nil {
		return nil, err
	}
	return ldap.DialURL(s.LDAPSURL, ldap.DialWithTLSConfig(tc), ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
}

// Add applies LDIF with ldapmodify -a over LDAPS as Administrator: plain entries are added,
// records with a changetype (modify, delete) are applied as such.
func (s *Samba) Add(t testing.TB, ldif string) {
	t.Helper()
	if err := s.apply(ldif); err != nil {
		t.Fatalf("samba: %v", err)
	}
}

func (s *Samba) apply(ldif string) error {
	f, err := os.CreateTemp(s.Dir, "add-*.ldif")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(ldif); err != nil {
		f.Close()
		return err
	}
	f.Close()
	bin, _ := LookPath("ldapmodify")
	cmd := exec.Command(bin, "-a", "-x", "-H", s.LDAPSURL, "-D", s.BindDN, "-w", s.BindPassword, "-f", f.Name())
	cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+s.CAFile, "LDAPTLS_REQCERT=demand")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ldapmodify -a: %w\n%s", err, tail(out, 4000))
	}
	return nil
}

// NewOU creates a fresh organizational unit under BaseDN for one test's entries and returns
// its DN, e.g. "OU=ranged-3,DC=example,DC=test".
func (s *Samba) NewOU(t testing.TB, name string) string {
	t.Helper()
	dn := fmt.Sprintf("OU=%s-%d,%s", name, ouSeq.Add(1), s.BaseDN)
	s.Add(t, fmt.Sprintf("dn: %s\nobjectClass: organizationalUnit\n\n", dn))
	return dn
}

var guidLine = regexp.MustCompile(`(?m)^objectGUID: ([0-9a-fA-F-]{36})\s*$`)

// ObjectGUID returns the objectGUID of the user or group with the given sAMAccountName as
// samba-tool prints it (read from the database, not over LDAP): the canonical string form.
func (s *Samba) ObjectGUID(t testing.TB, samAccountName string) string {
	t.Helper()
	tool, _ := LookPath("samba-tool")
	sam := filepath.Join(s.Dir, "T", "private", "sam.ldb")
	var errs []string
	for _, kind := range []string{"user", "group"} {
		out, err := exec.Command(tool, kind, "show", samAccountName, "-H", sam, "--attributes=objectGUID").CombinedOutput()
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s show: %v: %s", kind, err, tail(out, 500)))
			continue
		}
		if m := guidLine.FindSubmatch(out); m != nil {
			return strings.ToLower(string(m[1]))
		}
		errs = append(errs, fmt.Sprintf("%s show: no objectGUID in %q", kind, tail(out, 500)))
	}
	t.Fatalf("samba: objectGUID of %s: %s", samAccountName, strings.Join(errs, "; "))
	return ""
}
