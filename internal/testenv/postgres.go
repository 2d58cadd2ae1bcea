package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// Postgres is one throwaway database on the PostgreSQL cluster shared by the tests of this
// test binary.
type Postgres struct {
	// URL is postgres://bridge:PASSWORD@127.0.0.1:PORT/t_RANDOM?sslmode=disable, a database
	// of its own for the calling test (dropped when the test ends).
	URL string
	// Database is the database name in URL.
	Database string
}

// pgCluster is the running cluster: a postgres process owned by this test binary.
type pgCluster struct {
	dir      string // temp dir: data/, sock/, pwfile
	port     int
	password string
	proc     *proc
	log      *lockedBuffer
	// what start needs to start the server again (PostgresCluster.Start)
	bin, data, sock string
	cred            *syscall.Credential
}

const (
	pgDirPrefix = "bridge-pg-"
	pgUser      = "bridge"
)

var (
	pgMu   sync.Mutex
	pgInst *pgCluster
	pgErr  error
)

// StartPostgres returns a fresh, empty database for t on the PostgreSQL cluster shared by
// every test of this test binary; the first call runs initdb and starts the server on a free
// port of 127.0.0.1 (about 1-2 s), later calls only CREATE DATABASE. The database is dropped
// when t ends; the cluster runs until the binary exits (the server gets SIGQUIT when this
// process dies, however it dies).
//
// Authentication is scram-sha-256 with a random password, which is in URL (so that code
// which must not log it is tested with one). As root the server runs as the postgres user
// (initdb and postgres refuse root). Needs the Debian postgresql package (initdb and
// postgres from /usr/lib/postgresql/*/bin); without it the test fails in CI and is skipped
// elsewhere.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := needPostgres(t)
	pgMu.Lock()
	if pgInst == nil && pgErr == nil {
		pgInst, pgErr = startPostgres(bin)
	}
	c, cerr := pgInst, pgErr
	pgMu.Unlock()
	if cerr != nil {
		t.Fatalf("postgres: %v", cerr)
	}
	select {
	case <-c.proc.exited:
		t.Fatalf("postgres: the shared server has exited:\n%s", tail(c.log.Bytes(), 4000))
	default:
	}
	return c.database(t)
}

// database creates a database of its own for t on c, dropped when t ends.
func (c *pgCluster) database(t testing.TB) *Postgres {
	t.Helper()
	name := "t_" + randomHex(6)
	admin, err := sql.Open("pgx", c.url("postgres"))
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("postgres: create database %s: %v\n%s", name, err, tail(c.log.Bytes(), 2000))
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", c.url("postgres"))
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE: a test that leaked a connection must not keep its database alive.
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("postgres: drop database %s: %v", name, err)
		}
	})
	return &Postgres{URL: c.url(name), Database: name}
}

// PostgresCluster is a PostgreSQL cluster of its own for one test, which the test may stop
// and start again (a database restart in the middle of something), unlike the cluster that
// StartPostgres shares between the tests of a binary.
type PostgresCluster struct {
	// Postgres is the test's database on this cluster (as StartPostgres's).
	Postgres
	c *pgCluster
}

// StartPostgresCluster runs initdb and starts a cluster for t alone (about 1-2 s), with one
// database for t on it; the cluster is stopped and its files removed when t ends. Same
// requirements and authentication as StartPostgres.
func StartPostgresCluster(t testing.TB) *PostgresCluster {
	t.Helper()
	bin := needPostgres(t)
	c, err := startPostgres(bin)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	t.Cleanup(func() {
		c.stop()
		_ = os.RemoveAll(c.dir)
	})
	return &PostgresCluster{Postgres: *c.database(t), c: c}
}

// Stop shuts the server down as an operator's restart does (fast shutdown: every session is
// ended, committed data stays) and waits until it has exited.
func (p *PostgresCluster) Stop() { p.c.stop() }

// Start starts the stopped server again on the same port and data directory and waits until
// it answers.
func (p *PostgresCluster) Start(t testing.TB) {
	t.Helper()
	if err := p.c.start(p.c.bin, p.c.data, p.c.sock, p.c.cred); err != nil {
		t.Fatalf("postgres: start again: %v", err)
	}
}

func (c *pgCluster) url(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(pgUser, c.password),
		Host:     "127.0.0.1:" + strconv.Itoa(c.port),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// pgBinDir finds the newest /usr/lib/postgresql/*/bin holding initdb and postgres.
func pgBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("test needs PostgreSQL (initdb and postgres in /usr/lib/postgresql/*/bin), not found")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// removeStalePGDirs removes the directories of earlier test binaries whose server is gone.
func removeStalePGDirs() {
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), pgDirPrefix+"*"))
	for _, d := range old {
		b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid"))
		if err == nil {
			if pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0]); err == nil && syscall.Kill(pid, 0) == nil {
				continue // still running (another test binary)
			}
		}
		if st, err := os.Stat(d); err == nil && time.Since(st.ModTime()) > time.Minute {
			_ = os.RemoveAll(d)
		}
	}
}

func startPostgres(bin string) (*pgCluster, error) {
	removeStalePGDirs()
	dir, err := os.MkdirTemp("", pgDirPrefix)
	if err != nil {
		return nil, err
	}
	c := &pgCluster{dir: dir, password: randomHex(12), log: &lockedBuffer{}, bin: bin}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user (from the postgresql package): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		// The server runs as postgres: it must reach its files under the temp dir.
		for d := dir; strings.HasPrefix(d, filepath.Clean(os.TempDir())+"/"); d = filepath.Dir(d) {
			_ = os.Chmod(d, 0o755)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(c.password+"\n"), 0o600); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "sock")
	if err := os.Mkdir(sock, 0o700); err != nil {
		return nil, err
	}
	if cred != nil {
		for _, p := range []string{pwfile, sock} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	data := filepath.Join(dir, "data")
	c.data, c.sock, c.cred = data, sock, cred
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", pgUser, "--pwfile", pwfile,
		"--auth", "scram-sha-256", "--encoding", "UTF8", "--locale", "C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, tail(out, 4000))
	}
	// A port that was free a moment ago may be taken by the time the server binds it: retry.
	for attempt := 0; ; attempt++ {
		if c.port, err = freePort(); err == nil {
			err = c.start(bin, data, sock, cred)
		}
		if err == nil {
			return c, nil
		}
		if attempt == 2 {
			return nil, err
		}
	}
}

func (c *pgCluster) start(bin, data, sock string, cred *syscall.Credential) error {
	c.log = &lockedBuffer{}
	// postgres in the foreground rather than pg_ctl: the server is our child, so it dies with
	// the test binary (Pdeathsig) and a crash is seen at once (exited).
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", sock, "-h", "127.0.0.1",
		"-p", strconv.Itoa(c.port),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=16MB", "-c", "max_connections=200", "-c", "logging_collector=off")
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	cmd.Stdout, cmd.Stderr = c.log, c.log
	p, err := startProc(cmd, nil, true)
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	c.proc = p
	db, err := sql.Open("pgx", c.url("postgres"))
	if err != nil {
		c.stop()
		return err
	}
	defer db.Close()
	err = waitFor(30*time.Second, p.exited, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return db.PingContext(ctx)
	})
	if err != nil {
		c.stop()
		return fmt.Errorf("postgres on port %d: %w\n%s", c.port, err, tail(c.log.Bytes(), 4000))
	}
	return nil
}

// stop asks for a fast shutdown (SIGINT) and waits for it (SIGKILL after 10 s).
func (c *pgCluster) stop() { c.proc.stop(syscall.SIGINT, 10*time.Second) }

// needPostgres returns the directory of the Debian postgresql package's initdb and postgres;
// without it the test fails in CI and is skipped elsewhere, saying what to install.
func needPostgres(t testing.TB) string {
	t.Helper()
	bin, err := pgBinDir()
	if err != nil {
		msg := err.Error() + " (apt-get install -y --no-install-recommends postgresql)"
		if InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}
