package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/directory/store"
	"github.com/babelforce/bridge/mapping"
	"github.com/babelforce/bridge/provisioning"
)

// app is everything one command needs, built from the configuration.
type app struct {
	cfg     *Config
	logger  *slog.Logger
	client  *babelforce.Client
	source  provisioning.Source
	store   *store.Store // set when the inbound SCIM endpoint or scim_push is configured
	rules   *mapping.Rules
	rec     *provisioning.Reconciler
	sso     *provisioning.SSOTask
	metrics *metrics
	closers []func() error
}

type appOptions struct {
	metrics *metrics
	audit   func(provisioning.AuditRecord)
	// progress, when set, sees how many changes of a run are done.
	progress func(done, total int)
	// reported: the command prints a report of the run (plan, sync, provision, explain, oidc):
	// what the reconciler and its side tasks would log at warn or error is in it, so they
	// log only when log.level asks for info or debug: each failure is printed once.
	reported bool
	// noBabelforce: the command never calls babelforce. The app then has no client and no
	// reconciler, and its SSO task can check the IdP but not read or write babelforce.
	noBabelforce bool
	// everyAttribute: the command shows the directory as read (directory dump), so the
	// source keeps every raw attribute; otherwise it keeps only those the mapping reads.
	everyAttribute bool
	// wrapSource, when set, replaces the source built from the configuration.
	wrapSource func(provisioning.Source, *store.Store) provisioning.Source
}

// newLogger builds the logger of the configuration, writing to w.
func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(c.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.Format, "text") {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// newApp wires the packages together from cfg.
func newApp(ctx context.Context, cfg *Config, logger *slog.Logger, o appOptions) (*app, error) {
	a := &app{cfg: cfg, logger: logger, metrics: o.metrics}
	for _, d := range cfg.deprecations() {
		logger.Warn(d)
	}
	runLogger := logger // the reconciler's and its side tasks'
	if lvl := strings.ToLower(cfg.Log.Level); o.reported && lvl != "debug" && lvl != "info" {
		runLogger = slog.New(slog.DiscardHandler)
	}
	var ssoTarget provisioning.SSOTarget = noBabelforce{}
	if !o.noBabelforce {
		clientOpts := []babelforce.Option{babelforce.WithLogger(logger.With("component", "babelforce"))}
		if o.metrics != nil {
			clientOpts = append(clientOpts, babelforce.WithCallObserver(o.metrics.observeCall))
		}
		client, err := babelforce.New(cfg.Babelforce, clientOpts...)
		if err != nil {
			return nil, fmt.Errorf("babelforce client: %w", err)
		}
		a.client = client
		ssoTarget = client
	}

	// The store holds what IdPs push; it is opened whenever the inbound SCIM endpoint is on,
	// even when the directory is another source, so that every command (serve and the one-shot
	// ones alike) shares its reconciler state (grace periods, managed tags) and its run lock
	// rather than working from a stale state file or running beside a replica's reconcile.
	// sync.live queues what the directory's change stream reports in the store and keeps the
	// stream's cookie there, so it opens the store too.
	if cfg.Directory.Type == directory.TypeSCIMPush || cfg.InboundSCIM.Enabled || cfg.Sync.Live {
		path := cfg.Store.Path
		if path == "" {
			path = defaultStorePath
		}
		st, err := store.Open(ctx, path, logger.With("component", "store"))
		if err != nil {
			// store.Open's errors name the store already, its password redacted.
			return nil, err
		}
		logger.Debug("store open", "backend", st.Backend(), "path", store.Redact(path))
		a.store = st
		a.closers = append(a.closers, st.Close)
	}
	rules, err := mapping.Compile(cfg.Mapping)
	if err != nil {
		a.close()
		return nil, fmt.Errorf("mapping: %w", err)
	}
	a.rules = rules

	if cfg.Directory.Type == directory.TypeSCIMPush {
		a.source = a.store
	} else {
		// The source keeps of each user's raw attributes only those the mapping reads
		// (names, e-mails, phones… are read all the same): at 100,000 people the raw
		// attributes were the largest part of a read's memory.
		var opts []directory.Option
		if names, all := rules.Attributes(); !all && !o.everyAttribute {
			opts = append(opts, directory.KeepAttributes(names...))
		}
		src, err := directory.Open(cfg.Directory, logger.With("component", "directory"), opts...)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("directory: %w", err)
		}
		a.source = src
	}

	if o.wrapSource != nil {
		a.source = o.wrapSource(a.source, a.store)
	}

	var tasks []provisioning.SideTask
	if cfg.SSO.Enabled {
		t, err := provisioning.NewSSOTask(cfg.SSO, ssoTarget, provisioning.WithSSOLogger(runLogger.With("component", "sso")))
		if err != nil {
			a.close()
			return nil, fmt.Errorf("sso: %w", err)
		}
		a.sso = t
		tasks = append(tasks, t)
	}
	if o.noBabelforce {
		return a, nil // no reconciler: nothing to reconcile with
	}
	if cfg.SCIMConfig.Manage {
		t, err := provisioning.NewSCIMConfigTask(cfg.SCIMConfig, a.client, provisioning.WithSCIMConfigLogger(runLogger.With("component", "scim_configuration")))
		if err != nil {
			a.close()
			return nil, fmt.Errorf("scim_configuration: %w", err)
		}
		tasks = append(tasks, t)
	}
	opts := []provisioning.Option{
		provisioning.WithLogger(runLogger.With("component", "provisioning")),
		provisioning.WithSideTasks(tasks...),
	}
	if o.audit != nil {
		opts = append(opts, provisioning.WithAudit(o.audit))
	}
	if o.metrics != nil {
		opts = append(opts, provisioning.WithReportHook(o.metrics.observeRun))
	}
	if o.progress != nil {
		opts = append(opts, provisioning.WithProgress(o.progress))
	}
	if a.store != nil {
		// Replicas sharing a PostgreSQL store reconcile one at a time (always free on SQLite),
		// and share the reconciler's state in it; sync.state_file is then only imported while
		// the store has no state yet.
		opts = append(opts, provisioning.WithRunLock(a.store.RunLock), provisioning.WithStateBackend(a.store))
	}
	a.rec = provisioning.NewReconciler(a.source, a.client, rules, cfg.Sync, opts...)
	return a, nil
}

// noBabelforce is the SSO task's target in commands that never call babelforce (oidc check):
// reaching it is a bug, said plainly rather than a nil dereference.
type noBabelforce struct{}

var errNoBabelforce = errors.New("this command does not talk to babelforce")

func (noBabelforce) GetSSOConfig(context.Context) (*babelforce.SSOConfig, error) {
	return nil, errNoBabelforce
}

func (noBabelforce) PutSSOConfig(context.Context, *babelforce.SSOConfig) (*babelforce.SSOConfig, error) {
	return nil, errNoBabelforce
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.logger.Warn("close", "err", err)
		}
	}
	a.closers = nil
}

// commonFlags are the flags every configured command takes.
type commonFlags struct {
	config string
	output string
}

// newFlagSet makes the flag set of the command called name ("plan", "directory dump"). The
// flag package prints nothing itself: parseFlags prints the usage on --help (to stdout, exit 0)
// and a wrong flag is reported once, by fail. A command that reads no configuration (demo,
// simulate) passes a nil cf: it takes no --config it would silently ignore.
func newFlagSet(name string, env *cliEnv, cf *commonFlags, withOutput bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if cf == nil {
		return fs
	}
	fs.StringVar(&cf.config, "config", env.getenv("BRIDGE_CONFIG"), "configuration file (or $BRIDGE_CONFIG)")
	if withOutput {
		fs.StringVar(&cf.output, "output", "text", "output format: text or json")
	}
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// (bridge provision --config f ann and bridge provision ann --config f both work). On -h or
// --help it prints the command's usage to stdout and returns errHelp.
func parseFlags(env *cliEnv, fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			name, _, _ := strings.Cut(fs.Name(), " ")
			c, _ := lookupCommand(name)
			if errors.Is(err, flag.ErrHelp) {
				commandUsage(env.stdout, c, fs)
				return nil, errHelp
			}
			return nil, usageError{fmt.Sprintf("%v (usage: bridge %s %s)", err, c.name, c.synopsis)}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return usageError{fmt.Sprintf("--output must be text or json, got %q", o)}
	}
	return nil
}

// setup loads the configuration and builds the app for a one-shot command. Logs go to
// stderr in text form unless the configuration says otherwise; a command that may write to
// babelforce writes its audit records to log.audit (else stderr, as JSON).
func setup(ctx context.Context, env *cliEnv, cf commonFlags, o appOptions) (*app, error) {
	cfg, err := loadConfig(ctx, cf.config, env.lookupEnv, !o.noBabelforce)
	if err != nil {
		return nil, err
	}
	if cfg.Log.Format == "" {
		cfg.Log.Format = "text"
	}
	if cfg.Log.Level == "" {
		cfg.Log.Level = "warn"
	}
	var closeAudit func() error
	if !o.noBabelforce && o.audit == nil {
		if o.audit, closeAudit, err = openAudit(cfg.Log, env.stderr); err != nil {
			return nil, err
		}
	}
	a, err := newApp(ctx, cfg, newLogger(cfg.Log, env.stderr), o)
	if err != nil {
		if closeAudit != nil {
			_ = closeAudit()
		}
		return nil, err
	}
	if closeAudit != nil {
		a.closers = append(a.closers, closeAudit)
	}
	return a, nil
}

// progressBar draws the progress of long runs (at least 50 changes) on w, one line redrawn in
// place at most every 100 ms and erased when the run is done, so that the report follows on a
// clean screen. It draws only when w is a terminal: piped or redirected output gets no bar.
func progressBar(w io.Writer, now func() time.Time) func(done, total int) {
	if !isTerminal(w) {
		return nil
	}
	return drawProgress(w, now)
}

// drawProgress is progressBar without the terminal check.
func drawProgress(w io.Writer, now func() time.Time) func(done, total int) {
	const width = 30
	var mu sync.Mutex
	var last time.Time
	return func(done, total int) {
		if total < 50 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if done >= total {
			fmt.Fprint(w, "\r\033[K") // erase the bar: the report says the rest
			return
		}
		t := now()
		if t.Sub(last) < 100*time.Millisecond {
			return
		}
		last = t
		n := done * width / total
		fmt.Fprintf(w, "\r[%s%s] %d/%d changes (%d%%)", strings.Repeat("=", n), strings.Repeat(" ", width-n), done, total, done*100/total)
	}
}

// isTerminal reports whether w is a character device (a terminal), not a file or a pipe.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// exitFor maps a run's error to an exit code: 2 a guard refused, 3 a read failed, else 1.
func exitFor(env *cliEnv, err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, provisioning.ErrGuardRefused) {
		fmt.Fprintf(env.stderr, "bridge: %v\n", err)
		return exitRefused
	}
	if errors.Is(err, provisioning.ErrRead) {
		fmt.Fprintf(env.stderr, "bridge: %v\n", err)
		return exitRead
	}
	return fail(env, err)
}
