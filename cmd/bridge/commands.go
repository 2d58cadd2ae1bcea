package main

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/provisioning"
)

func runPlan(ctx context.Context, env *cliEnv, args []string) int {
	var cf commonFlags
	fs := newFlagSet("plan", env, &cf, true)
	if _, err := parseFlags(fs, args); err != nil {
		return fail(env, err)
	}
	if err := checkOutput(cf.output); err != nil {
		return fail(env, err)
	}
	a, err := setup(ctx, env, cf, appOptions{})
	if err != nil {
		return fail(env, err)
	}
	defer a.close()
	plan, err := a.rec.Plan(ctx, provisioning.Scope{})
	if err != nil {
		return exitFor(env, err)
	}
	if cf.output == "json" {
		err = plan.WriteJSON(env.stdout)
	} else {
		err = plan.WriteText(env.stdout)
	}
	if err != nil {
		return fail(env, err)
	}
	if len(plan.Refused) > 0 {
		return exitRefused
	}
	return exitOK
}

func runSync(ctx context.Context, env *cliEnv, args []string) int {
	var cf commonFlags
	fs := newFlagSet("sync", env, &cf, true)
	dryRun := fs.Bool("dry-run", false, "plan and report, write nothing")
	force := fs.Bool("force", false, "apply destructive changes a guard would refuse (never after a failed read)")
	if _, err := parseFlags(fs, args); err != nil {
		return fail(env, err)
	}
	if err := checkOutput(cf.output); err != nil {
		return fail(env, err)
	}
	a, err := setup(ctx, env, cf, appOptions{})
	if err != nil {
		return fail(env, err)
	}
	defer a.close()
	rep, err := a.rec.Run(ctx, provisioning.RunOptions{Trigger: provisioning.TriggerCLI, DryRun: *dryRun, Force: *force})
	return writeReport(env, cf.output, rep, err)
}

func runProvision(ctx context.Context, env *cliEnv, args []string) int {
	var cf commonFlags
	fs := newFlagSet("provision", env, &cf, true)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return fail(env, err)
	}
	if len(pos) != 1 {
		return fail(env, usageError{"provision takes exactly one USER (directory id, user name or e-mail)"})
	}
	if err := checkOutput(cf.output); err != nil {
		return fail(env, err)
	}
	a, err := setup(ctx, env, cf, appOptions{})
	if err != nil {
		return fail(env, err)
	}
	defer a.close()
	rep, err := a.rec.ProvisionUsers(ctx, provisioning.TriggerCLI, pos[0])
	return writeReport(env, cf.output, rep, err)
}

// writeReport prints a run's report and returns the exit code it deserves.
func writeReport(env *cliEnv, output string, rep *provisioning.Report, runErr error) int {
	if rep != nil {
		var err error
		if output == "json" {
			err = rep.WriteJSON(env.stdout)
		} else {
			err = rep.WriteText(env.stdout)
		}
		if err != nil {
			return fail(env, err)
		}
	}
	if runErr != nil {
		return exitFor(env, runErr)
	}
	if rep != nil && len(rep.Refused) > 0 {
		return exitRefused
	}
	if rep != nil && len(rep.Errors) > 0 {
		return exitError
	}
	return exitOK
}

func runExplain(ctx context.Context, env *cliEnv, args []string) int {
	var cf commonFlags
	fs := newFlagSet("explain", env, &cf, true)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return fail(env, err)
	}
	if len(pos) != 1 {
		return fail(env, usageError{"explain takes exactly one USER (directory id, user name or e-mail)"})
	}
	if err := checkOutput(cf.output); err != nil {
		return fail(env, err)
	}
	a, err := setup(ctx, env, cf, appOptions{})
	if err != nil {
		return fail(env, err)
	}
	defer a.close()
	ex, err := a.rec.Explain(ctx, pos[0])
	if err != nil {
		return fail(env, err)
	}
	if cf.output == "json" {
		err = writeJSON(env.stdout, ex)
	} else {
		err = ex.WriteText(env.stdout)
	}
	if err != nil {
		return fail(env, err)
	}
	return exitOK
}

func runDirectory(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 || args[0] != "dump" {
		return fail(env, usageError{"usage: bridge directory dump --config FILE [--output json|text]"})
	}
	var cf commonFlags
	fs := newFlagSet("directory dump", env, &cf, true)
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return fail(env, err)
	}
	if err := checkOutput(cf.output); err != nil {
		return fail(env, err)
	}
	a, err := setup(ctx, env, cf, appOptions{})
	if err != nil {
		return fail(env, err)
	}
	defer a.close()
	snap, err := a.source.Read(ctx)
	if err != nil {
		return fail(env, fmt.Errorf("read directory: %w", err))
	}
	if err := directory.WriteDump(env.stdout, snap, cf.output); err != nil {
		return fail(env, err)
	}
	return exitOK
}

func runConfig(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 || args[0] != "validate" {
		return fail(env, usageError{"usage: bridge config validate --config FILE"})
	}
	var cf commonFlags
	fs := newFlagSet("config validate", env, &cf, false)
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return fail(env, err)
	}
	cfg, err := loadConfig(ctx, cf.config, env.lookupEnv)
	if err != nil {
		return fail(env, err)
	}
	fmt.Fprintf(env.stdout, "%s: OK (directory %s, babelforce %s, sso %s, inbound scim %s)\n", cf.config,
		cfg.Directory.Type, cfg.Babelforce.BaseURL, onOff(cfg.SSO.Enabled), onOff(cfg.InboundSCIM.Enabled))
	return exitOK
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func runOIDC(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 || (args[0] != "check" && args[0] != "apply") {
		return fail(env, usageError{"usage: bridge oidc check|apply --config FILE [--dry-run]"})
	}
	sub := args[0]
	var cf commonFlags
	fs := newFlagSet("oidc "+sub, env, &cf, false)
	dryRun := fs.Bool("dry-run", false, "show the change, write nothing (apply only)")
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return fail(env, err)
	}
	a, err := setup(ctx, env, cf, appOptions{})
	if err != nil {
		return fail(env, err)
	}
	defer a.close()
	if a.sso == nil {
		return fail(env, fmt.Errorf("sso.enabled is false in %s: nothing to check or apply", cf.config))
	}
	if sub == "check" {
		rep, err := a.sso.Check(ctx)
		if rep != nil {
			_ = rep.WriteText(env.stdout)
		}
		if err != nil || (rep != nil && !rep.OK()) {
			if err != nil {
				fmt.Fprintf(env.stderr, "bridge: %v\n", err)
			}
			return exitError
		}
		return exitOK
	}
	changes, err := a.sso.Plan(ctx)
	if err != nil {
		return fail(env, err)
	}
	plan := &provisioning.Plan{Changes: changes}
	if err := plan.WriteText(env.stdout); err != nil {
		return fail(env, err)
	}
	if !*dryRun {
		for _, c := range changes {
			if err := a.sso.Apply(ctx, c); err != nil {
				return fail(env, fmt.Errorf("apply sso configuration: %w", err))
			}
		}
		if len(changes) > 0 {
			fmt.Fprintln(env.stdout, "applied")
		}
	}
	if uris, err := a.sso.RedirectURIs(ctx); err == nil && len(uris) > 0 {
		fmt.Fprintln(env.stdout, "Register these redirect URIs at your IdP:")
		for _, app := range slices.Sorted(maps.Keys(uris)) {
			fmt.Fprintf(env.stdout, "  %-8s %s\n", app, uris[app])
		}
	}
	return exitOK
}
