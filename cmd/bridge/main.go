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
	"flag"
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
	exitRead    = 3 // the run could not read what it needed (nothing was written on its account)
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name string
	// synopsis is what follows "bridge NAME" in its usage line.
	synopsis string
	summary  string
	run      func(ctx context.Context, env *cliEnv, args []string) int
}

// cliEnv is what a subcommand may touch: its streams and the environment.
type cliEnv struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	lookupEnv      func(string) (string, bool)
}

func commands() []command {
	return []command{
		{"demo", "[--once] [--listen ADDR]", "start the babelforce simulator, sync the demo directory into it, and serve (start here)", runDemo},
		{"plan", "--config FILE [--output text|json] [--show-out-of-scope]", "show what a sync would change", runPlan},
		{"sync", "--config FILE [--dry-run] [--force] [--output text|json] [--show-out-of-scope]", "apply the plan", runSync},
		{"provision", "--config FILE [--output text|json] USER", "provision one user now", runProvision},
		{"explain", "--config FILE [--output text|json] USER", "explain why a user is or is not synced, and what the next run changes", runExplain},
		{"serve", "--config FILE", "run the service: inbound SCIM, scheduled sync, admin API, health, metrics", runServe},
		{"directory", "dump --config FILE [--output text|json]", "what bridge reads from the directory (needs no babelforce credentials)", runDirectory},
		{"sso", "check --config FILE | apply --config FILE [--dry-run] [--output text|json]", "check the IdP of the sso section (check) and push babelforce's single sign-on configuration (apply)", runSSO},
		{"config", "validate --config FILE [--print]", "check a configuration file and list every problem; --print shows the effective one", runConfig},
		{"simulate", "[--listen ADDR] [--username U --password P] [--fault-rate R]", "run the in-memory babelforce simulator", runSimulate},
		{"version", "", "print the version", runVersion},
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
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		if len(args) > 1 { // bridge help COMMAND
			if c, ok := lookupCommand(args[1]); ok {
				commandUsage(env.stdout, c, nil)
				return exitOK
			}
			fmt.Fprintf(env.stderr, "bridge: unknown command %q (bridge help lists them)\n", args[1])
			return exitRefused
		}
		usage(env.stdout)
		return exitOK
	}
	if now, ok := renamedCommands[args[0]]; ok {
		fmt.Fprintf(env.stderr, "bridge: the command %q is deprecated, use \"bridge %s\" (same subcommands and flags)\n", args[0], now)
		args = append([]string{now}, args[1:]...)
	}
	if c, ok := lookupCommand(args[0]); ok {
		return c.run(ctx, env, args[1:])
	}
	fmt.Fprintf(env.stderr, "bridge: unknown command %q\n\n", args[0])
	usage(env.stderr)
	return exitRefused
}

// renamedCommands maps an old command name that still works to its new name. "bridge oidc"
// became "bridge sso": it acts on the sso section (babelforce's single sign-on), while the
// oidc package and the ui.oidc and inbound_scim.oidc sections are OpenID Connect in general.
var renamedCommands = map[string]string{"oidc": "sso"}

func lookupCommand(name string) (command, bool) {
	if now, ok := renamedCommands[name]; ok {
		name = now
	}
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: bridge COMMAND [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "bridge COMMAND --help (or bridge help COMMAND) shows a command's flags.")
	fmt.Fprintln(w, "Exit codes: 0 done or nothing to do, 1 errors, 2 refused by a guard or bad usage,")
	fmt.Fprintln(w, "3 could not read (nothing was written on its account).")
}

// commandUsage prints one command's usage line, what it does and, when fs is given, its flags.
func commandUsage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: bridge %s %s\n\n%s\n", c.name, c.synopsis, c.summary)
	if fs == nil {
		return
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

// wantsHelp says whether args ask for help before any subcommand word (bridge sso --help).
func wantsHelp(args []string) bool {
	return len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help")
}

func runVersion(_ context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseFlags(env, fs, args); err != nil {
		return fail(env, err)
	}
	fmt.Fprintf(env.stdout, "bridge %s\n", version)
	return exitOK
}

// fail prints err and returns the exit code it deserves. A request for help is no failure: the
// usage has been printed.
func fail(env *cliEnv, err error) int {
	if errors.Is(err, errHelp) {
		return exitOK
	}
	fmt.Fprintf(env.stderr, "bridge: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitRefused
	}
	return exitError
}

// errHelp is returned by parseFlags after printing a command's usage for --help.
var errHelp = errors.New("help requested")

// usageError marks a wrong command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
