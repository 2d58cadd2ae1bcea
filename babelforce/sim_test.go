package babelforce_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/babelforce/babelforcetest"
)

// These tests run the client against the in-memory babelforce simulator, covering every
// method of the client.

func TestSimAgents(t *testing.T) {
	sim := babelforcetest.New(t, babelforcetest.Options{})
	c := sim.Client(t)
	ctx := context.Background()

	created, err := c.CreateAgent(ctx, &babelforce.Agent{Name: "Ann Lee", Email: "ann@example.com", Number: "+4930123",
		Tags: []string{"german", "sales"}, SourceID: "uid=ann", AgentSource: "bridge"})
	if err != nil {
		t.Fatal(err)
	}
	if len(created.ID) != 32 || created.Name != "Ann Lee" || !created.IsEnabled() {
		t.Fatalf("created %+v", created)
	}
	other := sim.PutAgent(babelforce.Agent{Name: "Bob", Email: "bob@example.com", SourceID: "uid=bob", AgentSource: "other"})

	// Hyphenated, upper-case id: the simulator (like babelforce) only matches 32-hex, so
	// this proves NormalizeID is applied on the way in.
	hyph := strings.ToUpper(created.ID[:8] + "-" + created.ID[8:12] + "-" + created.ID[12:16] + "-" + created.ID[16:20] + "-" + created.ID[20:])
	got, err := c.GetAgent(ctx, hyph)
	if err != nil || got.ID != created.ID || got.Email != "ann@example.com" {
		t.Fatalf("GetAgent(%s) = %+v, %v", hyph, got, err)
	}

	all, err := c.ListAgents(ctx, babelforce.AgentFilter{})
	if err != nil || len(all) != 2 {
		t.Fatalf("ListAgents = %d, %v", len(all), err)
	}
	mine, err := c.ListAgents(ctx, babelforce.AgentFilter{Source: "bridge"})
	if err != nil || len(mine) != 1 || mine[0].ID != created.ID {
		t.Fatalf("ListAgents(source) = %+v, %v", mine, err)
	}
	bySource, err := c.ListAgents(ctx, babelforce.AgentFilter{SourceID: "uid=bob"})
	if err != nil || len(bySource) != 1 || bySource[0].ID != other.ID {
		t.Fatalf("ListAgents(sourceId) = %+v, %v", bySource, err)
	}
	byQ, err := c.ListAgents(ctx, babelforce.AgentFilter{Q: "ann"})
	if err != nil || len(byQ) != 1 {
		t.Fatalf("ListAgents(q) = %+v, %v", byQ, err)
	}

	// Partial update: only number and tags change.
	num, tags := "+4930999", []string{"english"}
	upd, err := c.UpdateAgent(ctx, created.ID, babelforce.AgentUpdate{Number: &num, Tags: &tags})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Number != num || !slices.Equal(upd.Tags, tags) || upd.Name != "Ann Lee" || upd.Email != "ann@example.com" || upd.SourceID != "uid=ann" {
		t.Errorf("after update %+v", upd)
	}
	empty := []string{}
	upd, err = c.UpdateAgent(ctx, created.ID, babelforce.AgentUpdate{Tags: &empty})
	if err != nil || len(upd.Tags) != 0 || upd.Number != num {
		t.Errorf("clearing tags: %+v, %v", upd, err)
	}

	if err := c.DisableAgent(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if a, _ := sim.Agent(created.ID); a.IsEnabled() {
		t.Error("DisableAgent left the agent enabled")
	}
	if err := c.EnableAgent(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if a, _ := sim.Agent(created.ID); !a.IsEnabled() {
		t.Error("EnableAgent left the agent disabled")
	}
	disabled, err := c.ListAgents(ctx, babelforce.AgentFilter{Enabled: new(false)})
	if err != nil || len(disabled) != 0 {
		t.Errorf("ListAgents(enabled=false) = %d, %v", len(disabled), err)
	}

	res, err := c.BulkDisableAgents(ctx, []string{created.ID, other.ID, "ffffffffffffffffffffffffffffffff"})
	if err != nil || len(res) != 3 {
		t.Fatalf("BulkDisableAgents = %+v, %v", res, err)
	}
	if !res[0].Success || !res[1].Success || res[2].Success || res[2].Error == "" {
		t.Errorf("bulk results %+v", res)
	}
	if res[0].Item == nil || res[0].Item.IsEnabled() {
		t.Errorf("bulk item %+v", res[0].Item)
	}
	res, err = c.BulkEnableAgents(ctx, []string{other.ID})
	if err != nil || len(res) != 1 || !res[0].Success {
		t.Fatalf("BulkEnableAgents = %+v, %v", res, err)
	}
	if a, _ := sim.Agent(other.ID); !a.IsEnabled() {
		t.Error("bulk enable had no effect")
	}

	if _, err := c.CreateAgent(ctx, &babelforce.Agent{Name: "Dup", Email: "ANN@example.com"}); !errors.Is(err, babelforce.ErrConflict) {
		t.Errorf("duplicate e-mail: want ErrConflict, got %v", err)
	}

	if err := c.DeleteAgent(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetAgent(ctx, created.ID); !errors.Is(err, babelforce.ErrNotFound) {
		t.Errorf("after delete: want ErrNotFound, got %v", err)
	}
	if err := c.DeleteAgent(ctx, created.ID); !errors.Is(err, babelforce.ErrNotFound) {
		t.Errorf("second delete: want ErrNotFound, got %v", err)
	}
	if len(sim.Agents()) != 1 {
		t.Errorf("simulator holds %d agents", len(sim.Agents()))
	}
}

func TestSimAgentGroupsAndTags(t *testing.T) {
	sim := babelforcetest.New(t, babelforcetest.Options{})
	c := sim.Client(t)
	ctx := context.Background()
	ann := sim.PutAgent(babelforce.Agent{Name: "Ann", Tags: []string{"sales", "german"}})
	bob := sim.PutAgent(babelforce.Agent{Name: "Bob", Tags: []string{"support"}})

	g, err := c.CreateAgentGroup(ctx, &babelforce.AgentGroup{Name: "Berlin", Tags: []string{"de"}})
	if err != nil || len(g.ID) != 32 || g.Name != "Berlin" {
		t.Fatalf("CreateAgentGroup = %+v, %v", g, err)
	}
	if _, err := c.CreateAgentGroup(ctx, &babelforce.AgentGroup{Name: "berlin"}); !errors.Is(err, babelforce.ErrConflict) {
		t.Errorf("duplicate group: %v", err)
	}
	got, err := c.GetAgentGroup(ctx, g.ID)
	if err != nil || got.Name != "Berlin" || !slices.Equal(got.Tags, []string{"de"}) {
		t.Fatalf("GetAgentGroup = %+v, %v", got, err)
	}
	upd, err := c.UpdateAgentGroup(ctx, g.ID, &babelforce.AgentGroup{Name: "Berlin Sales", Tags: []string{"de", "sales"}})
	if err != nil || upd.Name != "Berlin Sales" || len(upd.Tags) != 2 {
		t.Fatalf("UpdateAgentGroup = %+v, %v", upd, err)
	}
	cleared, err := c.UpdateAgentGroup(ctx, g.ID, &babelforce.AgentGroup{Name: "Berlin Sales"})
	if err != nil || len(cleared.Tags) != 0 || len(sim.AgentGroups()[0].Tags) != 0 {
		t.Fatalf("clearing group tags: %+v, %v", cleared, err)
	}
	groups, err := c.ListAgentGroups(ctx)
	if err != nil || len(groups) != 1 || groups[0].ID != g.ID {
		t.Fatalf("ListAgentGroups = %+v, %v", groups, err)
	}

	for _, a := range []babelforce.Agent{ann, bob} {
		if err := c.AddAgentToGroup(ctx, g.ID, a.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AddAgentToGroup(ctx, g.ID, ann.ID); err != nil {
		t.Errorf("adding a member twice: %v", err)
	}
	members, err := c.ListAgentGroupMembers(ctx, g.ID)
	if err != nil || len(members) != 2 {
		t.Fatalf("ListAgentGroupMembers = %+v, %v", members, err)
	}
	a, _ := c.GetAgent(ctx, ann.ID)
	if len(a.Groups) != 1 || a.Groups[0].ID != g.ID {
		t.Errorf("agent groups %+v", a.Groups)
	}
	if err := c.RemoveAgentFromGroup(ctx, g.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveAgentFromGroup(ctx, g.ID, bob.ID); !errors.Is(err, babelforce.ErrNotFound) {
		t.Errorf("removing a non-member: %v", err)
	}
	if m := sim.AgentGroupMembers(g.ID); len(m) != 1 || m[0] != ann.ID {
		t.Errorf("members %v", m)
	}

	tags, err := c.ListAgentTags(ctx)
	if err != nil || !slices.Equal(tags, []string{"german", "sales", "support"}) {
		t.Errorf("ListAgentTags = %v, %v", tags, err)
	}

	if err := c.DeleteAgentGroup(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetAgentGroup(ctx, g.ID); !errors.Is(err, babelforce.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if len(sim.AgentGroups()) != 0 {
		t.Errorf("groups left %+v", sim.AgentGroups())
	}
}

func TestSimUsers(t *testing.T) {
	sim := babelforcetest.New(t, babelforcetest.Options{})
	c := sim.Client(t)
	ctx := context.Background()
	sim.PutAgent(babelforce.Agent{Name: "Ann", Email: "ann@example.com", SourceID: "uid=ann"})

	u, err := c.CreateUser(ctx, &babelforce.User{Email: "Ann@Example.com", Roles: []string{"agent"}, Activated: new(true)})
	if err != nil || len(u.ID) != 32 || u.Email != "ann@example.com" {
		t.Fatalf("CreateUser = %+v, %v", u, err)
	}
	if u.Agent == nil || len(u.Agent.UUID) != 32 {
		t.Errorf("agent link %+v", u.Agent)
	}
	if _, err := c.CreateUser(ctx, &babelforce.User{Email: "x@example.com", Roles: []string{"wizard"}}); err == nil {
		t.Error("unknown role accepted")
	}
	got, err := c.GetUser(ctx, u.ID)
	if err != nil || got.Email != "ann@example.com" {
		t.Fatalf("GetUser = %+v, %v", got, err)
	}
	got, err = c.GetUserByEmail(ctx, "ann@example.com")
	if err != nil || got.ID != u.ID {
		t.Fatalf("GetUserByEmail = %+v, %v", got, err)
	}
	if _, err := c.GetUserByEmail(ctx, "nobody@example.com"); !errors.Is(err, babelforce.ErrNotFound) {
		t.Errorf("unknown e-mail: %v", err)
	}
	sim.PutUser(babelforce.User{Email: "bob@example.com", Roles: []string{"manager"}})
	all, err := c.ListUsers(ctx, "")
	if err != nil || len(all) != 2 {
		t.Fatalf("ListUsers = %+v, %v", all, err)
	}
	one, err := c.ListUsers(ctx, "bob@example.com")
	if err != nil || len(one) != 1 || one[0].Email != "bob@example.com" {
		t.Fatalf("ListUsers(email) = %+v, %v", one, err)
	}

	if err := c.AddUserRoles(ctx, []string{"ann@example.com"}, []string{"supervisor", "reporter"}); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveUserRoles(ctx, []string{"ann@example.com"}, []string{"agent"}); err != nil {
		t.Fatal(err)
	}
	got, _ = c.GetUser(ctx, u.ID)
	slices.Sort(got.Roles)
	if !slices.Equal(got.Roles, []string{"reporter", "supervisor"}) {
		t.Errorf("roles %v", got.Roles)
	}
	if err := c.DisableUsers(ctx, []string{"ann@example.com"}); err != nil {
		t.Fatal(err)
	}
	if got, _ = c.GetUser(ctx, u.ID); got.Enabled == nil || *got.Enabled {
		t.Errorf("after disable %+v", got)
	}
	if err := c.EnableUsers(ctx, []string{"ann@example.com"}); err != nil {
		t.Fatal(err)
	}
	if got, _ = c.GetUser(ctx, u.ID); got.Enabled == nil || !*got.Enabled {
		t.Errorf("after enable %+v", got)
	}
	if err := c.DeleteUsers(ctx, []string{"ann@example.com", "bob@example.com"}); err != nil {
		t.Fatal(err)
	}
	if len(sim.Users()) != 0 {
		t.Errorf("users left %+v", sim.Users())
	}
	// Empty lists make no request.
	sim.ResetCalls()
	if err := c.EnableUsers(ctx, nil); err != nil || sim.TotalCalls() != 0 {
		t.Errorf("empty EnableUsers: %v, %d calls", err, sim.TotalCalls())
	}
}

func TestSimSCIM(t *testing.T) {
	sim := babelforcetest.New(t, babelforcetest.Options{})
	c := sim.Client(t)
	ctx := context.Background()

	cfg, err := c.PutSCIMConfiguration(ctx, &babelforce.SCIMConfiguration{DefaultRoles: []string{"agent"}, Customizer: "microsoft",
		Features: babelforce.SCIMFeatures{SCIM: true, Roles: true, PhoneNumberSync: true}})
	if err != nil || cfg.Customizer != "microsoft" || !cfg.Features.SCIM {
		t.Fatalf("PutSCIMConfiguration = %+v, %v", cfg, err)
	}
	cfg, err = c.GetSCIMConfiguration(ctx)
	if err != nil || !slices.Equal(cfg.DefaultRoles, []string{"agent"}) || !cfg.Features.PhoneNumberSync {
		t.Fatalf("GetSCIMConfiguration = %+v, %v", cfg, err)
	}

	u, err := c.SCIMCreateUser(ctx, &babelforce.SCIMUser{UserName: "Carla@Example.com", ExternalID: "uid=carla",
		Name: &babelforce.SCIMName{GivenName: "Carla", FamilyName: "Diaz"}, Roles: []babelforce.SCIMValue{{Value: "agent"}}})
	if err != nil || u.ID == "" || u.UserName != "carla@example.com" {
		t.Fatalf("SCIMCreateUser = %+v, %v", u, err)
	}
	if _, err := c.SCIMCreateUser(ctx, &babelforce.SCIMUser{UserName: "carla@example.com"}); !errors.Is(err, babelforce.ErrConflict) {
		t.Errorf("duplicate: %v", err)
	} else {
		var ae *babelforce.APIError
		if !errors.As(err, &ae) || ae.Code != "uniqueness" {
			t.Errorf("SCIM error not parsed: %+v", ae)
		}
	}
	got, err := c.SCIMGetUser(ctx, u.ID)
	if err != nil || got.ExternalID != "uid=carla" {
		t.Fatalf("SCIMGetUser = %+v, %v", got, err)
	}
	for i := range 4 {
		sim.PutSCIMUser(babelforce.SCIMUser{UserName: fmt.Sprintf("u%d@example.com", i)})
	}
	list, err := c.SCIMListUsers(ctx, "")
	if err != nil || len(list) != 5 {
		t.Fatalf("SCIMListUsers = %d, %v", len(list), err)
	}
	list, err = c.SCIMListUsers(ctx, `userName eq "carla@example.com"`)
	if err != nil || len(list) != 1 || list[0].ID != u.ID {
		t.Fatalf("SCIMListUsers(filter) = %+v, %v", list, err)
	}

	repl := *got
	repl.DisplayName = "Carla D."
	repl.PhoneNumbers = []babelforce.SCIMValue{{Value: "+4930555", Type: "work"}}
	r, err := c.SCIMReplaceUser(ctx, u.ID, &repl)
	if err != nil || r.DisplayName != "Carla D." {
		t.Fatalf("SCIMReplaceUser = %+v, %v", r, err)
	}
	p, err := c.SCIMPatchUser(ctx, u.ID, []babelforce.SCIMPatchOp{{Op: "replace", Path: "active", Value: false}})
	if err != nil || p.IsActive() {
		t.Fatalf("SCIMPatchUser = %+v, %v", p, err)
	}
	if err := c.SCIMDeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SCIMGetUser(ctx, u.ID); !errors.Is(err, babelforce.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if len(sim.SCIMUsers()) != 4 {
		t.Errorf("SCIM users left %d", len(sim.SCIMUsers()))
	}
}

func TestSimSCIMPagingWithSmallPages(t *testing.T) {
	sim := babelforcetest.New(t, babelforcetest.Options{})
	cfg := sim.ClientConfig()
	cfg.PageSize = 7
	c, err := babelforce.New(cfg, babelforce.WithSleep(babelforcetest.FastSleep))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		sim.PutSCIMUser(babelforce.SCIMUser{UserName: fmt.Sprintf("u%02d@example.com", i)})
	}
	list, err := c.SCIMListUsers(context.Background(), "")
	if err != nil || len(list) != 30 || list[29].UserName != "u29@example.com" {
		t.Fatalf("got %d, %v", len(list), err)
	}
	if n := sim.Calls()["GET /auth/scim/v2/Users"]; n != 5 {
		t.Errorf("SCIM list calls %d, want 5 (30 users / 7)", n)
	}
}

func TestSimSSO(t *testing.T) {
	sim := babelforcetest.New(t, babelforcetest.Options{})
	c := sim.Client(t)
	ctx := context.Background()
	in := &babelforce.SSOConfig{Enabled: true, Issuer: "https://accounts.google.com",
		AuthorizationEndpoint: "https://accounts.google.com/o/oauth2/v2/auth", TokenEndpoint: "https://oauth2.googleapis.com/token",
		ClientID: "bf-client", ClientSecret: "top-secret", Scopes: []string{"openid", "email"}, Claims: map[string]string{"email": "email"}}
	out, err := c.PutSSOConfig(ctx, in)
	if err != nil || out.ClientSecret == "top-secret" || out.ClientID != "bf-client" || len(out.RedirectURIs) == 0 {
		t.Fatalf("PutSSOConfig = %+v, %v", out, err)
	}
	if sim.SSOConfig().ClientSecret != "top-secret" {
		t.Errorf("secret not stored")
	}
	got, err := c.GetSSOConfig(ctx)
	if err != nil || !got.Enabled || got.Issuer != in.Issuer || got.ClientSecret != babelforcetest.SecretMask {
		t.Fatalf("GetSSOConfig = %+v, %v", got, err)
	}
	if _, err := c.PutSSOConfig(ctx, &babelforce.SSOConfig{Enabled: true}); err == nil {
		t.Error("incomplete enabled SSO config accepted")
	}
}

func TestSimExternalIDs(t *testing.T) {
	sim := babelforcetest.New(t, babelforcetest.Options{})
	c := sim.Client(t)
	ctx := context.Background()
	a := sim.PutAgent(babelforce.Agent{Name: "Ann"})
	if err := c.SetExternalID(ctx, a.ID, "zendesk", "zd-123"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetExternalID(ctx, a.ID, "freshdesk", "fd-9"); err != nil {
		t.Fatal(err)
	}
	ids, err := c.ListExternalIDs(ctx, a.ID)
	want := []babelforce.ExternalID{{IntegrationID: "freshdesk", ExternalID: "fd-9"}, {IntegrationID: "zendesk", ExternalID: "zd-123"}}
	if err != nil || !slices.Equal(ids, want) {
		t.Fatalf("ListExternalIDs = %+v, %v", ids, err)
	}
	if err := c.DeleteExternalID(ctx, a.ID, "zendesk"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteExternalID(ctx, a.ID, "zendesk"); !errors.Is(err, babelforce.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if got := sim.ExternalIDs(a.ID); !slices.Equal(got, want[:1]) {
		t.Errorf("simulator holds %+v", got)
	}
}

func TestSimPaging1000Agents(t *testing.T) {
	sim := babelforcetest.New(t, babelforcetest.Options{})
	for i := range 1000 {
		sim.PutAgent(babelforce.Agent{Name: fmt.Sprintf("agent %04d", i), SourceID: fmt.Sprintf("s%d", i)})
	}
	c := sim.Client(t)
	sim.ResetCalls()
	agents, err := c.ListAgents(context.Background(), babelforce.AgentFilter{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != 1000 || agents[0].Name != "agent 0000" || agents[999].Name != "agent 0999" {
		t.Fatalf("got %d agents", len(agents))
	}
	seen := map[string]bool{}
	for _, a := range agents {
		seen[a.ID] = true
	}
	if len(seen) != 1000 {
		t.Errorf("%d distinct ids", len(seen))
	}
	if n := sim.Calls()["GET /api/v2/agents"]; n != 10 {
		t.Errorf("list calls %d, want 10", n)
	}
	if n := sim.Calls()["POST /oauth/token"]; n != 1 {
		t.Errorf("token calls %d, want 1", n)
	}
}

func TestSim429WithRetryAfterThenSuccess(t *testing.T) {
	sim := babelforcetest.New(t, babelforcetest.Options{Seed: 1})
	sim.PutAgent(babelforce.Agent{Name: "Ann"})
	var slept []time.Duration
	// The injected sleep records the waits and lifts the faults after the second 429, so the
	// third attempt succeeds (only the calling goroutine sleeps: no lock needed).
	c := sim.Client(t, babelforce.WithSleep(func(ctx context.Context, d time.Duration) error {
		slept = append(slept, d)
		if len(slept) == 2 {
			if err := sim.SetFaults(babelforcetest.Faults{}); err != nil {
				return err
			}
		}
		return babelforcetest.FastSleep(ctx, d)
	}))
	// Authenticate first so the faults hit the API call.
	if _, err := c.ListAgentTags(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetFaults(babelforcetest.Faults{Rate429: 1, RetryAfter: 3 * time.Second, Paths: []string{"/api/v2/agents"}}); err != nil {
		t.Fatal(err)
	}
	sim.ResetCalls()
	agents, err := c.ListAgents(context.Background(), babelforce.AgentFilter{})
	if err != nil || len(agents) != 1 {
		t.Fatalf("ListAgents = %d, %v", len(agents), err)
	}
	if len(slept) != 2 || slept[0] != 3*time.Second || slept[1] != 3*time.Second {
		t.Errorf("sleeps %v, want [3s 3s] (Retry-After honoured)", slept)
	}
	if n := sim.Calls()["GET /api/v2/agents"]; n != 3 {
		t.Errorf("simulator saw %d list calls, want 3", n)
	}
	var stat429 int
	for _, s := range c.Stats() {
		if s.Endpoint == "GET /api/v2/agents" && s.Status == 429 {
			stat429 = s.Count
		}
	}
	if stat429 != 2 {
		t.Errorf("client counted %d 429s, want 2", stat429)
	}
}

func TestSimFailNextAndStorm(t *testing.T) {
	sim := babelforcetest.New(t, babelforcetest.Options{})
	c := sim.Client(t)
	ctx := context.Background()
	if _, err := c.ListAgentTags(ctx); err != nil {
		t.Fatal(err)
	}
	// A create that gets a 429 was not processed: it is retried and creates exactly one agent.
	sim.FailNext(1, 429, time.Second)
	if _, err := c.CreateAgent(ctx, &babelforce.Agent{Name: "Ann"}); err != nil {
		t.Fatal(err)
	}
	if n := len(sim.Agents()); n != 1 {
		t.Errorf("%d agents after a retried create", n)
	}
	// A 503 storm longer than max_attempts: a clear, transient error.
	sim.FailNext(5, 503, 0)
	_, err := c.ListAgentGroups(ctx)
	if err == nil || !strings.Contains(err.Error(), "giving up after 5 attempts") || !IsTransientForTest(err) {
		t.Fatalf("got %v", err)
	}
}

// IsTransientForTest keeps the external test package honest about the exported API.
func IsTransientForTest(err error) bool { return babelforce.IsTransient(err) }

func TestSimTokenExpiryReauth(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	sim := babelforcetest.New(t, babelforcetest.Options{Now: clock, TokenTTL: time.Hour})
	cfg := sim.ClientConfig()
	c, err := babelforce.New(cfg, babelforce.WithClock(clock), babelforce.WithSleep(babelforcetest.FastSleep))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, step := range []time.Duration{0, 30 * time.Minute, 29 * time.Minute, 2 * time.Minute} {
		advance(step)
		if _, err := c.ListAgents(ctx, babelforce.AgentFilter{}); err != nil {
			t.Fatalf("after +%s: %v", step, err)
		}
	}
	if n := sim.Calls()["POST /oauth/token"]; n != 2 {
		t.Errorf("token calls %d, want 2 (renewed before the 1h expiry)", n)
	}
	// The client's clock lags the server's: the server already rejects the token; the 401
	// makes the client re-authenticate once and succeed.
	c2, err := babelforce.New(cfg, babelforce.WithSleep(babelforcetest.FastSleep)) // real clock
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.ListAgentTags(ctx); err != nil {
		t.Fatal(err)
	}
	sim.ResetCalls()
	advance(2 * time.Hour)
	if _, err := c2.ListAgentTags(ctx); err != nil {
		t.Fatalf("after server-side expiry: %v", err)
	}
	if calls := sim.Calls(); calls["POST /oauth/token"] != 1 || calls["GET /api/v2/tags/agent"] != 2 {
		t.Errorf("calls %v, want one re-auth and one retry", calls)
	}
}

func TestSimWrongPassword(t *testing.T) {
	sim := babelforcetest.New(t, babelforcetest.Options{})
	cfg := sim.ClientConfig()
	cfg.Password = "wrong-password"
	c, err := babelforce.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListAgents(context.Background(), babelforce.AgentFilter{})
	if err == nil || !errors.Is(err, babelforce.ErrUnauthorized) ||
		!strings.Contains(err.Error(), `babelforce rejected the credentials for user "admin@example.com": invalid_grant`) ||
		strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("got %v", err)
	}
}

func TestSimStatsMatchSimulatorTemplates(t *testing.T) {
	sim := babelforcetest.New(t, babelforcetest.Options{})
	c := sim.Client(t)
	ctx := context.Background()
	a := sim.PutAgent(babelforce.Agent{Name: "Ann"})
	_, _ = c.GetAgent(ctx, a.ID)
	_ = c.EnableAgent(ctx, a.ID)
	_ = c.SetExternalID(ctx, a.ID, "zendesk", "1")
	_, _ = c.SCIMListUsers(ctx, "")
	mine := map[string]int{}
	for _, s := range c.Stats() {
		mine[s.Endpoint] += s.Count
	}
	for ep, n := range sim.Calls() {
		if mine[ep] != n {
			t.Errorf("endpoint %q: client counted %d, simulator %d", ep, mine[ep], n)
		}
	}
}

func TestSimChaosReadsSucceed(t *testing.T) {
	sim := babelforcetest.New(t, babelforcetest.Options{Seed: 42})
	for i := range 300 {
		sim.PutAgent(babelforce.Agent{Name: fmt.Sprintf("agent %03d", i)})
	}
	cfg := sim.ClientConfig()
	cfg.MaxAttempts = 12
	c, err := babelforce.New(cfg, babelforce.WithSleep(babelforcetest.FastSleep))
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.SetFaults(babelforcetest.Faults{Rate429: 0.3, DropRate: 0.1, RetryAfter: time.Second}); err != nil {
		t.Fatal(err)
	}
	agents, err := c.ListAgents(context.Background(), babelforce.AgentFilter{PageSize: 50})
	if err != nil || len(agents) != 300 {
		t.Fatalf("ListAgents under faults: %d, %v", len(agents), err)
	}
	var retries int
	for _, s := range c.Stats() {
		retries += s.Retries
	}
	if retries == 0 {
		t.Error("no retries counted under a 30% 429 rate")
	}
}

// BenchmarkSimListAgents1000 reads 1,000 agents (10 pages) from the simulator.
func BenchmarkSimListAgents1000(b *testing.B) {
	sim := babelforcetest.New(b, babelforcetest.Options{})
	for i := range 1000 {
		sim.PutAgent(babelforce.Agent{Name: fmt.Sprintf("agent %04d", i), Tags: []string{"sales"}})
	}
	c := sim.Client(b)
	ctx := context.Background()
	for b.Loop() {
		agents, err := c.ListAgents(ctx, babelforce.AgentFilter{})
		if err != nil || len(agents) != 1000 {
			b.Fatalf("%d, %v", len(agents), err)
		}
	}
}
