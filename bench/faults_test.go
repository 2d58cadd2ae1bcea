//go:build scale

package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce/babelforcetest"
)

var (
	faultRates = flag.String("fault-rates", "0.05,0.2", "comma-separated fault rates (0-1) of the simulator, one convergence measurement each")
	faultSeed  = flag.Int64("fault-seed", 1, "seed of the simulator's fault injection")
	maxRuns    = flag.Int("max-runs", 10, "bridge sync runs per rate before giving up")
)

const faultsConfigYAML = `babelforce:
  base_url: %[1]q
  username: %[2]q
  timeout: 30s
directory:
  type: ldif
  ldif:
    path: %[3]q
mapping:
  agent_source: "bridge:faults"
  scope:
    include_groups: [everyone]
  phone:
    default_region: DE
  skills:
    - {match: "^skill-(.+)$", tag: "$1", lowercase: true}
  agent_groups:
    - {match: "^team-(.+)$", agent_group: "$1"}
  default_roles: [agent]
sync:
  state_file: %[4]q
  concurrency: 8
log:
  level: error
  format: text
`

// TestFaultConvergence measures convergence under faults from the CLI: for each rate of
// -fault-rates, a fresh simulator with babelforcetest.Mix(rate, 1s) faults drawn from
// -fault-seed, a generated LDIF of -n people, and `bridge sync` (the binary BRIDGE_BIN) run
// again and again until a fault-free plan is empty (faults are switched off for the plan
// only, which writes nothing). It prints, per rate: each run's exit code, time and writes;
// runs to converge; duplicate agents and login users; wrongly disabled agents and
// deactivated login users (everyone generated is active and in scope). The counts come from
// the simulator's state in this process, not through its (faulty) API.
func TestFaultConvergence(t *testing.T) {
	bin := os.Getenv("BRIDGE_BIN")
	if bin == "" {
		t.Fatal("BRIDGE_BIN must name a bridge binary (bench/faults.sh builds one)")
	}
	n := *people
	dir := t.TempDir()
	ldif := filepath.Join(dir, "directory.ldif")
	if err := seedLDIF(ldif, n); err != nil {
		t.Fatal(err)
	}
	var summary []string
	for _, field := range strings.Split(*faultRates, ",") {
		rate, err := strconv.ParseFloat(strings.TrimSpace(field), 64)
		if err != nil || rate < 0 || rate > 1 {
			t.Fatalf("-fault-rates: %q is not a rate between 0 and 1", field)
		}
		summary = append(summary, convergeUnderFaults(t, bin, dir, ldif, n, rate))
	}
	fmt.Printf("\n%d people, fault seed %d, Mix(rate, Retry-After 1s)\n%s\n", n, *faultSeed, strings.Join(summary, "\n"))
}

// convergeUnderFaults runs the measurement for one rate and returns its summary line.
func convergeUnderFaults(t *testing.T, bin, dir, ldif string, n int, rate float64) string {
	t.Helper()
	faults := babelforcetest.Mix(rate, time.Second)
	sim := babelforcetest.New(t, babelforcetest.Options{Seed: *faultSeed, Faults: faults})
	tag := strconv.FormatFloat(rate, 'f', -1, 64)
	state := filepath.Join(dir, "state-"+tag+".json")
	cfg := filepath.Join(dir, "bridge-"+tag+".yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, faultsConfigYAML, sim.URL, sim.Username, ldif, state), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "BRIDGE_BABELFORCE_PASSWORD="+sim.Password)
	bridge := func(args ...string) (int, []byte, []byte) {
		var out, errb bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &errb
		err := cmd.Run()
		code := 0
		if err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("bridge %v: %v", args, err)
			}
			code = ee.ExitCode()
		}
		return code, out.Bytes(), errb.Bytes()
	}
	// pending is the number of changes a fault-free plan finds.
	pending := func() int {
		if err := sim.SetFaults(babelforcetest.Faults{}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := sim.SetFaults(faults); err != nil {
				t.Fatal(err)
			}
		}()
		code, out, errb := bridge("plan", "--config", cfg, "--output", "json")
		if code != 0 {
			t.Fatalf("fault-free plan: exit %d: %s", code, tail(string(errb)))
		}
		var plan struct {
			Summary *struct {
				Total int `json:"total"`
			} `json:"summary"`
		}
		if err := json.Unmarshal(out, &plan); err != nil || plan.Summary == nil {
			t.Fatalf("fault-free plan: %v\n%s", err, tail(string(out)))
		}
		return plan.Summary.Total
	}
	if before := pending(); before < n {
		t.Fatalf("fault-free plan before the first sync: %d changes, want at least %d (one per person)", before, n)
	}
	runs, left := 0, -1
	var lines []string
	for runs < *maxRuns {
		runs++
		sim.ResetCalls()
		start := time.Now()
		code, _, errb := bridge("sync", "--config", cfg)
		took := time.Since(start)
		left = pending()
		line := fmt.Sprintf("  rate %s run %d: exit %d in %s, %d writes, %d changes left (fault-free plan)",
			tag, runs, code, took.Round(time.Second), sim.WriteCalls(), left)
		if code != 0 {
			line += ": " + strings.Join(strings.Fields(firstLine(string(errb))), " ")
		}
		fmt.Println(line)
		lines = append(lines, line)
		if left == 0 {
			break
		}
	}
	dupAgents, disabled, agents := 0, 0, 0
	bySource := map[string]int{}
	for _, a := range sim.Agents() {
		agents++
		bySource[a.SourceID]++
		if !a.IsEnabled() {
			disabled++
		}
	}
	for _, c := range bySource {
		if c > 1 {
			dupAgents += c - 1
		}
	}
	dupLogins, inactive, logins := 0, 0, 0
	byName := map[string]int{}
	for _, u := range sim.SCIMUsers() {
		logins++
		byName[strings.ToLower(u.UserName)]++
		if !u.IsActive() {
			inactive++
		}
	}
	for _, c := range byName {
		if c > 1 {
			dupLogins += c - 1
		}
	}
	converged := "converged"
	if left != 0 {
		converged = fmt.Sprintf("NOT converged (%d changes left)", left)
	}
	sum := fmt.Sprintf("rate %s: %s after %d runs; %d agents (%d duplicates, %d disabled), %d login users (%d duplicates, %d inactive); want %d each, 0 duplicates, 0 disabled",
		tag, converged, runs, agents, dupAgents, disabled, logins, dupLogins, inactive, n)
	if left != 0 || dupAgents != 0 || disabled != 0 || dupLogins != 0 || inactive != 0 || agents != n || logins != n {
		t.Errorf("%s", sum)
	}
	return sum
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
