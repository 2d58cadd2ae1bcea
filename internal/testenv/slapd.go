package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// SlapdOptions configures StartSlapd.
type SlapdOptions struct {
	// SeedLDIF is LDIF content or the path of an LDIF file, loaded with slapadd before start.
	// The suffix entry and the bind user (cn=bridge-reader,SUFFIX) are added automatically
	// unless the seed has them.
	SeedLDIF string
	// Suffix of the database; default "dc=example,dc=com".
	Suffix string
	// TLS adds an ldaps:// listener and StartTLS, with a certificate for 127.0.0.1 signed by a
	// throwaway CA (Slapd.CAFile).
	TLS bool
	// SizeLimit is the server's size limit for unpaged searches (size.soft and size.hard; paged
	// searches are unlimited, as AD's MaxPageSize). Default 500; -1 for unlimited.
	SizeLimit int
	// Syncprov adds the syncprov overlay (RFC 4533 content synchronisation: syncrepl
	// refreshOnly and refreshAndPersist) with an entryCSN index, and seeds with slapadd -w so
	// the database starts with a contextCSN.
	Syncprov bool
}

// Slapd is a running OpenLDAP server on loopback.
type Slapd struct {
	URL      string // ldap://127.0.0.1:PORT (StartTLS available when TLS was asked for)
	LDAPSURL string // ldaps://127.0.0.1:PORT2, "" without TLS
	CAFile   string // CA certificate that signed the server certificate, "" without TLS
	// BindDN/BindPassword: an ordinary user that can read everything and is subject to the
	// size limit (the rootdn is not), which is what bridge should bind as.
	BindDN       string
	BindPassword string
	// AdminDN/AdminPassword: the rootdn, for writes in tests.
	AdminDN       string
	AdminPassword string
	Suffix        string
	Dir           string

	mu   sync.Mutex
	proc *proc
	log  *lockedBuffer
	// what Restart needs to start the same server again
	confPath string
	cred     *syscall.Credential
	urls     string
}

// StartSlapd starts slapd on free loopback ports with opts.SeedLDIF loaded and stops it when the
// test ends. It needs the slapd package (slapd, slapadd); as root it runs slapd as the openldap
// user, as the Debian package does.
func StartSlapd(t testing.TB, opts SlapdOptions) *Slapd {
	t.Helper()
	Need(t, "slapd", "slapadd")
	if opts.Suffix == "" {
		opts.Suffix = "dc=example,dc=com"
	}
	if opts.SizeLimit == 0 {
		opts.SizeLimit = 500
	}
	dir := t.TempDir()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("openldap")
		if err != nil {
			t.Fatalf("slapd: running as root needs the openldap user (from the slapd package): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		// slapd runs as openldap: it must reach its files under the test's temp dir.
		for d := dir; strings.HasPrefix(d, filepath.Clean(os.TempDir())+"/"); d = filepath.Dir(d) {
			_ = os.Chmod(d, 0o755)
		}
	}
	s := &Slapd{
		Suffix:        opts.Suffix,
		Dir:           dir,
		BindDN:        "cn=bridge-reader," + opts.Suffix,
		BindPassword:  "reader-secret",
		AdminDN:       "cn=admin," + opts.Suffix,
		AdminPassword: "admin-secret",
	}
	for _, d := range []string{"db", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var tlsConf string
	if opts.TLS {
		ca, err := NewCA(dir)
		if err != nil {
			t.Fatalf("slapd: certificates: %v", err)
		}
		s.CAFile = ca.CAFile
		tlsConf = fmt.Sprintf("TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\n", ca.CAFile, ca.CertFile, ca.KeyFile)
	}
	limit := "unlimited"
	if opts.SizeLimit > 0 {
		limit = strconv.Itoa(opts.SizeLimit)
	}
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/dyngroup.schema
pidfile %[1]s/run/slapd.pid
argsfile %[1]s/run/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload dynlist
%[2]s
sizelimit size.soft=%[3]s size.hard=%[3]s size.prtotal=unlimited
database mdb
maxsize 268435456
suffix "%[4]s"
rootdn "%[5]s"
rootpw %[6]s
directory %[1]s/db
index objectClass eq
index uid,mail,cn eq,sub
index member eq
index entryUUID eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
overlay dynlist
dynlist-attrset groupOfURLs memberURL member+memberOf@groupOfNames*
`, dir, tlsConf, limit, opts.Suffix, s.AdminDN, s.AdminPassword)
	if opts.Syncprov {
		conf = strings.Replace(conf, "moduleload dynlist\n", "moduleload dynlist\nmoduleload syncprov\n", 1)
		conf = strings.Replace(conf, "index entryUUID eq\n", "index entryUUID,entryCSN eq\n", 1)
		conf += "overlay syncprov\nsyncprov-checkpoint 100 1\nsyncprov-sessionlog 10000\n"
	}
	confPath := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	seed, err := seedContent(opts.SeedLDIF)
	if err != nil {
		t.Fatalf("slapd: seed: %v", err)
	}
	seed = s.baseEntries(seed) + seed
	seedPath := filepath.Join(dir, "seed.ldif")
	if err := os.WriteFile(seedPath, []byte(seed), 0o644); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		for _, p := range []string{dir, filepath.Join(dir, "db"), filepath.Join(dir, "run"), confPath, seedPath} {
			_ = os.Chown(p, int(cred.Uid), int(cred.Gid))
		}
		if s.CAFile != "" {
			for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
				_ = os.Chown(filepath.Join(dir, f), int(cred.Uid), int(cred.Gid))
			}
		}
	}
	slapadd, _ := LookPath("slapadd")
	addArgs := []string{"-q", "-f", confPath, "-l", seedPath}
	if opts.Syncprov {
		addArgs = append(addArgs, "-w")
	}
	add := exec.Command(slapadd, addArgs...)
	add.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("slapd: slapadd: %v\n%s", err, tail(out, 4000))
	}
	s.confPath, s.cred = confPath, cred
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if lastErr = s.start(opts.TLS, t); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("slapd: %v", lastErr)
	}
	t.Cleanup(s.Stop)
	return s
}

func (s *Slapd) start(withTLS bool, t testing.TB) error {
	port := FreePort(t)
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", port)
	s.urls = s.URL + "/"
	if withTLS {
		port2 := FreePort(t)
		s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", port2)
		s.urls += " " + s.LDAPSURL + "/"
	}
	return s.run()
}

// Restart stops slapd (SIGTERM) and starts it again on the same ports with the same
// database: open connections drop; what was written stays.
func (s *Slapd) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = s.run(); err == nil {
			return
		}
	}
	t.Fatalf("slapd restart: %v", err)
}

// run starts slapd with s.confPath on s.urls and waits until it answers.
func (s *Slapd) run() error {
	bin, _ := LookPath("slapd")
	// -d 0 keeps slapd in the foreground, so it is our child and dies with Kill.
	cmd := exec.Command(bin, "-d", "0", "-f", s.confPath, "-h", s.urls)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL}
	log := &lockedBuffer{}
	cmd.Stdout = log
	cmd.Stderr = log
	p, err := startProc(cmd, nil, false)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	s.mu.Lock()
	s.proc, s.log = p, log
	s.mu.Unlock()
	err = waitFor(10*time.Second, p.exited, func() error {
		c, err := ldap.DialURL(s.URL)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"namingContexts"}, nil))
		return err
	})
	if err != nil {
		s.Kill()
		return fmt.Errorf("%w\n%s", err, tail(log.Bytes(), 4000))
	}
	return nil
}

// Stop terminates slapd and waits for it. Safe to call more than once.
func (s *Slapd) Stop() { s.signal(syscall.SIGTERM) }

// Kill kills slapd at once (SIGKILL): open connections drop mid-operation.
func (s *Slapd) Kill() { s.signal(syscall.SIGKILL) }

// signal sends sig and waits for slapd to exit (SIGKILL after 10 s).
func (s *Slapd) signal(sig syscall.Signal) {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	p.stop(sig, 10*time.Second)
}

// baseEntries returns the suffix entry and the bind user unless seed already has them.
func (s *Slapd) baseEntries(seed string) string {
	var b strings.Builder
	has := func(dn string) bool {
		return strings.Contains(strings.ToLower(seed), "dn: "+strings.ToLower(dn)+"\n")
	}
	if !has(s.Suffix) {
		rdn := strings.SplitN(s.Suffix, ",", 2)[0]
		attr, val, _ := strings.Cut(rdn, "=")
		switch strings.ToLower(attr) {
		case "dc":
			fmt.Fprintf(&b, "dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: %s\no: %s\n\n", s.Suffix, val, val)
		case "o":
			fmt.Fprintf(&b, "dn: %s\nobjectClass: organization\no: %s\n\n", s.Suffix, val)
		case "ou":
			fmt.Fprintf(&b, "dn: %s\nobjectClass: organizationalUnit\nou: %s\n\n", s.Suffix, val)
		}
	}
	if !has(s.BindDN) {
		fmt.Fprintf(&b, "dn: %s\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\ncn: bridge-reader\nuserPassword: %s\n\n", s.BindDN, s.BindPassword)
	}
	return b.String()
}

// seedContent returns LDIF content: s itself when it looks like LDIF, else the file it names.
func seedContent(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if strings.Contains(s, "\n") || strings.HasPrefix(strings.ToLower(s), "dn:") {
		return ensureTrailingBlank(s), nil
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return "", fmt.Errorf("read seed LDIF: %w", err)
	}
	return ensureTrailingBlank(string(b)), nil
}

func ensureTrailingBlank(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return s + "\n\n"
}
