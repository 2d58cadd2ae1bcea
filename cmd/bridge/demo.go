package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	bridge "github.com/babelforce/bridge"
	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/directory/store"
	"github.com/babelforce/bridge/provisioning"
)

// runDemo shows bridge end to end with nothing but Go: an in-memory babelforce, the demo
// directory (an LDIF export), a plan, its application, the idempotent second run, and then the
// service with its inbound SCIM endpoint so that a pushed user can be watched becoming an agent.
func runDemo(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet("demo", env, nil, false)
	once := fs.Bool("once", false, "exit after the second run instead of serving")
	listen := fs.String("listen", "127.0.0.1:8080", "address of the demo service (inbound SCIM, admin API)")
	if _, err := parseFlags(env, fs, args); err != nil {
		return fail(env, err)
	}
	if err := demo(ctx, env, *once, *listen); err != nil {
		return exitFor(env, err)
	}
	return exitOK
}

func demo(ctx context.Context, env *cliEnv, once bool, listen string) error {
	out := env.stdout
	sim := babelforcetest.Start(babelforcetest.Options{})
	defer sim.Close()

	dir, err := os.MkdirTemp("", "bridge-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ldifPath, cfgRaw, err := extractDemo(dir)
	if err != nil {
		return err
	}
	scimToken := randomToken()
	adminToken := randomToken()
	vars := map[string]string{
		"BRIDGE_BABELFORCE_BASE_URL": sim.URL,
		"BRIDGE_BABELFORCE_USERNAME": sim.Username,
		"BRIDGE_BABELFORCE_PASSWORD": sim.Password,
		"BRIDGE_LDIF_PATH":           ldifPath,
		"BRIDGE_INBOUND_SCIM_TOKENS": scimToken,
		"BRIDGE_SERVER_ADMIN_TOKEN":  adminToken,
		"BRIDGE_SERVER_LISTEN":       listen,
		"BRIDGE_SYNC_STATE_FILE":     filepath.Join(dir, "state.json"),
		"BRIDGE_STORE_PATH":          filepath.Join(dir, "store.db"),
		"BRIDGE_LOG_AUDIT":           filepath.Join(dir, "audit.jsonl"),
	}
	lookup := func(k string) (string, bool) {
		if v, ok := vars[k]; ok {
			return v, true
		}
		return env.lookupEnv(k)
	}
	cfg, err := parseConfig(ctx, cfgRaw, "testdata/demo/config.yaml", lookup, true)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log, env.stderr)

	fmt.Fprintf(out, "== bridge demo\n")
	fmt.Fprintf(out, "babelforce simulator: %s (user %s)\n", sim.URL, sim.Username)
	fmt.Fprintf(out, "directory: the demo LDIF export (%s), mapped with testdata/demo/config.yaml\n\n", filepath.Base(ldifPath))

	// The demo reads the LDIF export and, once serving, also what is pushed to its SCIM
	// endpoint, so a pushed user becomes an agent at once.
	// Audit records go to their own file, not between the steps of the tour.
	audit, closeAudit, err := openAudit(cfg.Log, env.stderr)
	if err != nil {
		return err
	}
	defer closeAudit()
	svc, err := newService(ctx, cfg, logger, appOptions{
		audit:    audit,
		progress: progressBar(out, time.Now),
		wrapSource: func(src provisioning.Source, st *store.Store) provisioning.Source {
			return &mergedSource{readers: []directory.Reader{src, st}}
		},
	})
	if err != nil {
		return err
	}
	defer svc.app.close()

	fmt.Fprintln(out, "== 1. the plan: what bridge would change in babelforce")
	plan, err := svc.app.rec.Plan(ctx, provisioning.Scope{})
	if err != nil {
		return err
	}
	// twelve people: the tour shows everyone, the one out of scope too
	all := provisioning.TextOptions{ShowOutOfScope: true}
	if err := plan.WriteTextWith(out, all); err != nil {
		return err
	}

	fmt.Fprintln(out, "\n== 2. applying it")
	sim.ResetCalls()
	rep, err := svc.app.rec.Run(ctx, provisioning.RunOptions{Trigger: provisioning.TriggerCLI})
	if rep != nil {
		_ = rep.WriteTextWith(out, all)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "(%d write calls to babelforce; each has an audit record in %s)\n", sim.WriteCalls(), cfg.Log.Audit)

	fmt.Fprintln(out, "\n== 3. what babelforce holds now")
	printSimulator(out, sim)

	fmt.Fprintln(out, "\n== 4. the second run changes nothing")
	sim.ResetCalls()
	rep, err = svc.app.rec.Run(ctx, provisioning.RunOptions{Trigger: provisioning.TriggerCLI})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s\n%d changes, %d write calls to babelforce\n", rep.Plan.Summary(), len(rep.Plan.Changes), sim.WriteCalls())
	if once {
		return nil
	}

	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (choose another with --listen): %w", cfg.Server.Listen, err)
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, `
== 5. bridge is serving. Open its status pages in the browser:

  %[1]s/ui/   (sign in with the admin token %[5]s)

  push a user the way Okta or Entra ID would:

  curl -s -X POST %[1]s/scim/v2/Users \
    -H "Authorization: Bearer %[2]s" -H "Content-Type: application/scim+json" \
    -d '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"zoe@example.com",
         "name":{"givenName":"Zoe","familyName":"Newman"},"emails":[{"value":"zoe@example.com","primary":true}],
         "phoneNumbers":[{"value":"030 5550199","type":"work"}],"active":true}'

  then see her agent in babelforce:
  curl -s -H "Authorization: Bearer %[3]s" "%[4]s/api/v2/agents?q=zoe"

  admin API (token %[5]s):
  curl -s -X POST -H "Authorization: Bearer %[5]s" "%[1]s/api/v1/sync?dry_run=true"
  curl -s -H "Authorization: Bearer %[5]s" %[1]s/api/v1/status
  curl -s -H "Authorization: Bearer %[5]s" %[1]s/metrics

Ctrl-C stops the demo.
`, base, scimToken, sim.SCIMToken, sim.URL, adminToken)
	return svc.serve(ctx, ln, true)
}

// extractDemo writes the embedded demo files to dir and returns the LDIF path and the config.
func extractDemo(dir string) (string, []byte, error) {
	ldif, err := fs.ReadFile(bridge.Demo, "testdata/demo/directory.ldif")
	if err != nil {
		return "", nil, fmt.Errorf("demo directory: %w", err)
	}
	path := filepath.Join(dir, "directory.ldif")
	if err := os.WriteFile(path, ldif, 0o600); err != nil {
		return "", nil, err
	}
	cfg, err := fs.ReadFile(bridge.Demo, "testdata/demo/config.yaml")
	if err != nil {
		return "", nil, fmt.Errorf("demo config: %w", err)
	}
	return path, cfg, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// printSimulator prints the simulator's agents and login users as tables.
func printSimulator(w io.Writer, sim *babelforcetest.Server) {
	groups := map[string]string{}
	for _, g := range sim.AgentGroups() {
		groups[g.ID] = g.Name
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tE-MAIL\tNUMBER\tENABLED\tTAGS (SKILLS)\tGROUPS")
	agents := sim.Agents()
	slices.SortFunc(agents, func(a, b babelforce.Agent) int { return strings.Compare(a.Email, b.Email) })
	for _, a := range agents {
		var gs []string
		for _, g := range a.Groups {
			name := g.Name
			if name == "" {
				name = groups[g.ID]
			}
			gs = append(gs, name)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\n", a.Name, a.Email, a.Number, a.IsEnabled(),
			strings.Join(a.Tags, ","), strings.Join(gs, ","))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LOGIN USER\tACTIVE\tROLES")
	users := sim.SCIMUsers()
	slices.SortFunc(users, func(a, b babelforce.SCIMUser) int { return strings.Compare(a.UserName, b.UserName) })
	for _, u := range users {
		var roles []string
		for _, r := range u.Roles {
			roles = append(roles, r.Value)
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\n", u.UserName, u.IsActive(), strings.Join(roles, ","))
	}
	_ = tw.Flush()
}

// mergedSource reads several directories as one (the demo's LDIF export plus what is pushed
// to its SCIM endpoint). Ids do not collide: entryUUIDs and SCIM ids are both UUIDs.
type mergedSource struct {
	readers []directory.Reader
}

func (m *mergedSource) Read(ctx context.Context) (*directory.Snapshot, error) {
	out := &directory.Snapshot{}
	var names []string
	for _, r := range m.readers {
		s, err := r.Read(ctx)
		if err != nil {
			return nil, err
		}
		out.Users = append(out.Users, s.Users...)
		out.Groups = append(out.Groups, s.Groups...)
		names = append(names, s.Source)
		if s.ReadAt.After(out.ReadAt) {
			out.ReadAt = s.ReadAt
		}
	}
	out.Source = strings.Join(names, "+")
	out.Resolve()
	return out, nil
}
