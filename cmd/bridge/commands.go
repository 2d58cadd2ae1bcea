package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/provisioning"
)

// spec describes the command line of a subcommand that works on a configuration.
type spec struct {
	name   string
	output bool   // takes --output text|json
	arg    string // the one positional argument it requires ("" for none), for the error
	flags  func(fs *flag.FlagSet)
	// noBabelforce: the command never calls babelforce, so it needs no babelforce credentials
	// (and gets no client nor reconciler).
	noBabelforce bool
	// everyAttribute: the command shows every raw attribute read (see appOptions).
	everyAttribute bool
}

// invocation is a parsed command line with the app built from its configuration.
type invocation struct {
	*app
	config string
	output string
	arg    string
}

// open parses args for s, loads the configuration and builds the app. Call close when done.
func open(ctx context.Context, env *cliEnv, s spec, args []string) (*invocation, error) {
	var cf commonFlags
	fs := newFlagSet(s.name, env, &cf, s.output)
	if s.flags != nil {
		s.flags(fs)
	}
	pos, err := parseFlags(env, fs, args)
	if err != nil {
		return nil, err
	}
	inv := &invocation{config: cf.config, output: cf.output}
	switch {
	case s.arg == "" && len(pos) > 0:
		return nil, usageError{fmt.Sprintf("%s takes no arguments, got %q", s.name, pos)}
	case s.arg != "" && len(pos) != 1:
		return nil, usageError{fmt.Sprintf("%s takes exactly one %s", s.name, s.arg)}
	case s.arg != "":
		inv.arg = pos[0]
	}
	if s.output {
		if err := checkOutput(cf.output); err != nil {
			return nil, err
		}
	}
	a, err := setup(ctx, env, cf, appOptions{progress: progressBar(env.stdout, time.Now), noBabelforce: s.noBabelforce, everyAttribute: s.everyAttribute, reported: true})
	if err != nil {
		return nil, err
	}
	inv.app = a
	return inv, nil
}

// write prints v as JSON (its WriteJSON when it has one) or with its text form, as --output says.
func (inv *invocation) write(w io.Writer, v any, text func(io.Writer) error) error {
	if inv.output == "json" {
		if j, ok := v.(interface{ WriteJSON(io.Writer) error }); ok {
			return j.WriteJSON(w) // its own JSON form: a plan adds its summary
		}
		return writeJSON(w, v)
	}
	return text(w)
}

// writeJSON writes v as indented JSON (--output json, the service's answers).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

const userArg = "USER (directory id, user name or e-mail)"

// showOutOfScopeFlag adds --show-out-of-scope.
func showOutOfScopeFlag(fs *flag.FlagSet, o *provisioning.TextOptions) {
	fs.BoolVar(&o.ShowOutOfScope, "show-out-of-scope", false, "list every person out of scope (default: one line counting them)")
}

func runPlan(ctx context.Context, env *cliEnv, args []string) int {
	var to provisioning.TextOptions
	inv, err := open(ctx, env, spec{name: "plan", output: true, flags: func(fs *flag.FlagSet) { showOutOfScopeFlag(fs, &to) }}, args)
	if err != nil {
		return fail(env, err)
	}
	defer inv.close()
	plan, err := inv.rec.Plan(ctx, provisioning.Scope{})
	if err != nil {
		return exitFor(env, err)
	}
	if err := inv.write(env.stdout, plan, func(w io.Writer) error { return plan.WriteTextWith(w, to) }); err != nil {
		return fail(env, err)
	}
	switch {
	case len(plan.Errors) > 0:
		return exitRead // the plan names them (a failed SSO check): a run would fail the same way
	case len(plan.Refused) > 0:
		return exitRefused
	}
	return exitOK
}

func runSync(ctx context.Context, env *cliEnv, args []string) int {
	var dryRun, force bool
	var to provisioning.TextOptions
	inv, err := open(ctx, env, spec{name: "sync", output: true, flags: func(fs *flag.FlagSet) {
		showOutOfScopeFlag(fs, &to)
		fs.BoolVar(&dryRun, "dry-run", false, "plan and report, write nothing")
		fs.BoolVar(&force, "force", false, "apply destructive changes a guard would refuse (never after a failed read)")
	}}, args)
	if err != nil {
		return fail(env, err)
	}
	defer inv.close()
	rep, err := inv.rec.Run(ctx, provisioning.RunOptions{Trigger: provisioning.TriggerCLI, DryRun: dryRun, Force: force})
	return inv.writeReport(env, rep, err, to)
}

func runProvision(ctx context.Context, env *cliEnv, args []string) int {
	inv, err := open(ctx, env, spec{name: "provision", output: true, arg: userArg}, args)
	if err != nil {
		return fail(env, err)
	}
	defer inv.close()
	rep, err := inv.rec.ProvisionUsers(ctx, provisioning.TriggerCLI, inv.arg)
	return inv.writeReport(env, rep, err, provisioning.TextOptions{})
}

// writeReport prints a run's report and returns the exit code it deserves. Each failure is
// printed once: a run that stopped before it had a plan (a failed read, an unknown user) is its
// error on stderr; otherwise the report on stdout lists what failed, and stderr gets only the
// reason for the exit code.
func (inv *invocation) writeReport(env *cliEnv, rep *provisioning.Report, runErr error, to provisioning.TextOptions) int {
	if runErr != nil && (rep == nil || rep.Plan == nil) {
		if rep != nil && inv.output == "json" {
			_ = inv.write(env.stdout, rep, rep.WriteText)
		}
		return exitFor(env, runErr)
	}
	if rep != nil {
		if err := inv.write(env.stdout, rep, func(w io.Writer) error { return rep.WriteTextWith(w, to) }); err != nil {
			return fail(env, err)
		}
	}
	switch {
	case runErr != nil && errors.Is(runErr, provisioning.ErrGuardRefused):
		return exitFor(env, runErr) // the refusal's reason: why the exit code is 2
	case rep != nil && len(rep.ApplyFailures) > 0:
		fmt.Fprintf(env.stderr, "bridge: %d failed writes (listed in the report)\n", len(rep.ApplyFailures))
		return exitError
	case rep != nil && len(rep.ReadErrors) > 0:
		fmt.Fprintf(env.stderr, "bridge: %d could not be read (listed in the report); nothing was written on their account\n", len(rep.ReadErrors))
		return exitRead
	case runErr != nil || (rep != nil && len(rep.Errors) > 0):
		fmt.Fprintf(env.stderr, "bridge: the run had errors: %d (listed in the report)\n", len(rep.Errors))
		return exitError
	case rep != nil && len(rep.Refused) > 0:
		return exitRefused
	}
	return exitOK
}

func runExplain(ctx context.Context, env *cliEnv, args []string) int {
	inv, err := open(ctx, env, spec{name: "explain", output: true, arg: userArg}, args)
	if err != nil {
		return fail(env, err)
	}
	defer inv.close()
	ex, err := inv.rec.Explain(ctx, inv.arg)
	if err != nil {
		return fail(env, err)
	}
	if err := inv.write(env.stdout, ex, ex.WriteText); err != nil {
		return fail(env, err)
	}
	return exitOK
}

// groupUsage handles the command line of a command with sub-commands (directory, oidc, config):
// help prints its usage (exit 0), a missing or unknown sub-command is a usage error. ok says
// whether args[0] is one of subs.
func groupUsage(env *cliEnv, name string, args []string, subs ...string) (code int, ok bool) {
	c, _ := lookupCommand(name)
	if wantsHelp(args) {
		commandUsage(env.stdout, c, nil)
		return exitOK, false
	}
	if len(args) == 0 || !slices.Contains(subs, args[0]) {
		return fail(env, usageError{fmt.Sprintf("usage: bridge %s %s", c.name, c.synopsis)}), false
	}
	return 0, true
}

func runDirectory(ctx context.Context, env *cliEnv, args []string) int {
	if code, ok := groupUsage(env, "directory", args, "dump"); !ok {
		return code
	}
	inv, err := open(ctx, env, spec{name: "directory dump", output: true, noBabelforce: true, everyAttribute: true}, args[1:])
	if err != nil {
		return fail(env, err)
	}
	defer inv.close()
	snap, err := inv.source.Read(ctx)
	if err != nil {
		return fail(env, fmt.Errorf("read directory: %w", err))
	}
	if err := directory.WriteDump(env.stdout, snap, inv.output); err != nil {
		return fail(env, err)
	}
	return exitOK
}

func runConfig(ctx context.Context, env *cliEnv, args []string) int {
	if code, ok := groupUsage(env, "config", args, "validate"); !ok {
		return code
	}
	var cf commonFlags
	fs := newFlagSet("config validate", env, &cf, false)
	print := fs.Bool("print", false, "print the effective configuration (file + environment + defaults; secrets left out)")
	if _, err := parseFlags(env, fs, args[1:]); err != nil {
		return fail(env, err)
	}
	cfg, err := loadConfig(ctx, cf.config, env.lookupEnv, false)
	if err != nil {
		return fail(env, err)
	}
	if err := cfg.Babelforce.ValidateCredentials(); err != nil {
		// not a problem of the file: the commands that call babelforce need them where they run
		fmt.Fprintf(env.stderr, "note: no babelforce credentials in this environment (%s); plan, sync, provision, explain and serve need them\n",
			strings.Join(flatten(err), "; "))
	}
	for _, d := range cfg.deprecations() {
		fmt.Fprintf(env.stderr, "warning: %s\n", d)
	}
	summary := fmt.Sprintf("%s: OK (directory %s, babelforce %s, sso %s, inbound scim %s)", cf.config,
		cfg.Directory.Type, cfg.Babelforce.BaseURL, onOff(cfg.SSO.Enabled), onOff(cfg.InboundSCIM.Enabled))
	if !*print {
		fmt.Fprintln(env.stdout, summary)
		return exitOK
	}
	// The effective configuration as YAML that config validate reads back: the verdict and
	// what is left unset on purpose are comments. Secrets are yaml:"-" in every section, so
	// they never appear here.
	fmt.Fprintf(env.stdout, "# %s\n# every value as bridge runs it: file, environment and defaults; secrets left out.\n", summary)
	fmt.Fprintln(env.stdout, "# log.level and log.format, when empty: serve logs info as JSON, the other commands warn as text.")
	enc := yaml.NewEncoder(env.stdout)
	enc.SetIndent(2)
	if err := enc.Encode(cfg.effective()); err != nil {
		return fail(env, err)
	}
	if err := enc.Close(); err != nil {
		return fail(env, err)
	}
	return exitOK
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func runSSO(ctx context.Context, env *cliEnv, args []string) int {
	if code, ok := groupUsage(env, "sso", args, "check", "apply"); !ok {
		return code
	}
	sub := args[0]
	var dryRun bool
	inv, err := open(ctx, env, spec{name: "sso " + sub, noBabelforce: sub == "check", output: sub == "apply", flags: func(fs *flag.FlagSet) {
		if sub == "apply" {
			fs.BoolVar(&dryRun, "dry-run", false, "show the change, write nothing")
		}
	}}, args[1:])
	if err != nil {
		return fail(env, err)
	}
	defer inv.close()
	if inv.sso == nil {
		return fail(env, fmt.Errorf("sso.enabled is false in %s: nothing to check or apply", inv.config))
	}
	if sub == "check" {
		rep, err := inv.sso.Check(ctx)
		if rep != nil {
			_ = rep.WriteText(env.stdout)
		}
		switch {
		case rep != nil && !rep.OK():
			return exitError // the report names the failed checks: once is enough
		case err != nil:
			return fail(env, err)
		}
		return exitOK
	}
	// a run of the reconciler limited to the SSO task: run lock, state (the secret's
	// fingerprint), audit records, report, metrics, like every other run
	rep, err := inv.rec.Run(ctx, provisioning.RunOptions{Trigger: provisioning.TriggerCLI, DryRun: dryRun, Tasks: []string{inv.sso.Name()}})
	if code := inv.writeReport(env, rep, err, provisioning.TextOptions{}); code != exitOK || inv.output == "json" {
		return code
	}
	if uris, err := inv.sso.RedirectURIs(ctx); err == nil && len(uris) > 0 {
		fmt.Fprintln(env.stdout, "Register these redirect URIs at your IdP:")
		for _, app := range slices.Sorted(maps.Keys(uris)) {
			fmt.Fprintf(env.stdout, "  %-8s %s\n", app, uris[app])
		}
	}
	return exitOK
}
