package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ScimmyOptions configures StartScimmy.
type ScimmyOptions struct {
	// SeedJSON is the path of a JSON file {"users": [SCIM User…], "groups": [SCIM Group…]}
	// (each with an "id"; group members as {"value", "type": "User"|"Group"}). Empty means an
	// empty directory.
	SeedJSON string
	// Token is the bearer token the server accepts; default "scimmy-test-token".
	Token string
}

// Scimmy is a running upstream SCIM 2.0 service (scimmy + scimmy-routers under Node.js) on
// loopback, serving the User (with the enterprise extension) and Group resources from memory.
type Scimmy struct {
	URL   string // http://127.0.0.1:PORT/scim/v2
	Token string

	proc *proc
	log  *lockedBuffer
}

// scimmyInstall serialises "npm ci" across the tests of one binary.
var scimmyInstall sync.Mutex

// ScimmyDir returns the directory of the scimmy peer (server.mjs, package.json), found from
// this source file's location.
func ScimmyDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "scimmy")
}

// StartScimmy starts the scimmy peer with opts.SeedJSON loaded and stops it when the test ends.
// It needs node and npm; when node_modules is missing it runs "npm ci" in the peer's directory
// first (CI should run "npm ci --prefix internal/testenv/scimmy" up front).
func StartScimmy(t testing.TB, opts ScimmyOptions) *Scimmy {
	t.Helper()
	Need(t, "node", "npm")
	dir := ScimmyDir()
	if err := ensureScimmyModules(dir); err != nil {
		t.Fatalf("scimmy: %v", err)
	}
	if opts.Token == "" {
		opts.Token = "scimmy-test-token"
	}
	seed := opts.SeedJSON
	if seed == "" {
		seed = filepath.Join(t.TempDir(), "empty.json")
		if err := os.WriteFile(seed, []byte(`{"users":[],"groups":[]}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	seed, err := filepath.Abs(seed)
	if err != nil {
		t.Fatal(err)
	}
	node, _ := LookPath("node")
	cmd := exec.Command(node, filepath.Join(dir, "server.mjs"), seed)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SCIMMY_TOKEN="+opts.Token)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s := &Scimmy{Token: opts.Token, log: &lockedBuffer{}}
	cmd.Stderr = s.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// The server exits when its stdin closes, so it cannot outlive the test binary.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if s.proc, err = startProc(cmd, stdin, false); err != nil {
		t.Fatalf("scimmy: start node: %v", err)
	}
	portc := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if p, ok := strings.CutPrefix(line, "PORT "); ok {
				if n, err := strconv.Atoi(strings.TrimSpace(p)); err == nil {
					portc <- n
				}
				continue
			}
			_, _ = s.log.Write([]byte(line + "\n"))
		}
	}()
	t.Cleanup(s.Stop)
	select {
	case port := <-portc:
		s.URL = fmt.Sprintf("http://127.0.0.1:%d/scim/v2", port)
	case <-s.proc.exited:
		t.Fatalf("scimmy: node exited while starting:\n%s", tail(s.log.Bytes(), 4000))
	case <-time.After(30 * time.Second):
		t.Fatalf("scimmy: no port announced after 30s:\n%s", tail(s.log.Bytes(), 4000))
	}
	return s
}

// Stop ends the server (its stdin closed, SIGTERM, then SIGKILL after 5 s) and waits for it.
func (s *Scimmy) Stop() { s.proc.stop(syscall.SIGTERM, 5*time.Second) }

func ensureScimmyModules(dir string) error {
	scimmyInstall.Lock()
	defer scimmyInstall.Unlock()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "scimmy-routers", "package.json")); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	npm, err := LookPath("npm")
	if err != nil {
		return err
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci in %s: %w\n%s", dir, err, tail(out.Bytes(), 4000))
	}
	return nil
}
