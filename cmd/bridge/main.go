// Command bridge keeps babelforce in step with a company's directory: it reads users and groups
// from LDAP, Active Directory, an upstream SCIM service or what an IdP pushes to its own SCIM
// endpoint, maps them to babelforce agents, skills, agent groups, login users and single
// sign-on, and applies the difference through one plan/apply path.
//
// Run `bridge help` for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes shared by every subcommand.
const (
	exitOK      = 0
	exitError   = 1
	exitRefused = 2 // a guard refused the plan, or the command line was wrong
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) int
}

// cliEnv is what a subcommand may touch: its streams and the environment.
type cliEnv struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	lookupEnv      func(string) (string, bool)
}

func commands() []command {
	return []command{
		{"demo", "start the babelforce simulator, sync the demo directory into it, and serve (start here)", runDemo},
		{"plan", "show what a sync would change (--config FILE [--output json])", runPlan},
		{"sync", "apply the plan (--config FILE [--dry-run] [--force])", runSync},
		{"provision", "provision one user now (--config FILE USER)", runProvision},
		{"explain", "explain why a user is or is not synced, and what the next run changes (--config FILE USER)", runExplain},
		{"serve", "run the service: inbound SCIM, scheduled sync, admin API, health, metrics (--config FILE)", runServe},
		{"directory", "directory dump --config FILE [--output json|text]: what bridge reads from the directory", runDirectory},
		{"oidc", "oidc check|apply --config FILE [--dry-run]: validate and push the single sign-on configuration", runOIDC},
		{"config", "config validate --config FILE [--print]: check a configuration file and list every problem", runConfig},
		{"simulate", "run the in-memory babelforce simulator (--listen ADDR [--username U --password P] [--fault-rate R])", runSimulate},
		{"version", "print the version", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &cliEnv{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, lookupEnv: os.LookupEnv}
	code := run(ctx, env, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		usage(env.stderr)
		return exitRefused
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	fmt.Fprintf(env.stderr, "bridge: unknown command %q\n\n", args[0])
	usage(env.stderr)
	return exitRefused
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: bridge COMMAND [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Exit codes: 0 done or nothing to do, 1 errors, 2 refused by a guard or bad usage.")
}

func runVersion(_ context.Context, env *cliEnv, _ []string) int {
	fmt.Fprintf(env.stdout, "bridge %s\n", version)
	return exitOK
}

// fail prints err and returns the exit code it deserves.
func fail(env *cliEnv, err error) int {
	fmt.Fprintf(env.stderr, "bridge: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitRefused
	}
	return exitError
}

// usageError marks a wrong command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
