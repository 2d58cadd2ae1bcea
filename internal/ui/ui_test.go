package ui

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelforce/bridge/provisioning"
)

// fakeBackend is a hand-written backend: a plan with or without changes a guard holds back,
// runs numbered and remembered like the reconciler's.
type fakeBackend struct {
	mu      sync.Mutex
	plan    *provisioning.Plan
	reports []*provisioning.Report
	runs    []bool // force of each Run
}

func (f *fakeBackend) Status(context.Context) Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := Status{Version: "test", Store: "sqlite", Health: []Health{{Name: "babelforce", OK: true}},
		Facts: []Fact{{Name: "Inbound queue", Value: "3 pending"}}}
	for i := len(f.reports) - 1; i >= 0; i-- {
		st.Runs = append(st.Runs, *f.reports[i])
	}
	return st
}

func (f *fakeBackend) Report(id uint64) (*provisioning.Report, bool, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.reports {
		if r.ID == id {
			return r, true, true
		}
	}
	return nil, false, false
}

func (f *fakeBackend) Plan(context.Context) (*provisioning.Plan, error) { return f.plan, nil }

func (f *fakeBackend) Explain(_ context.Context, q string) (*provisioning.Explanation, error) {
	if q != "ann@example.com" {
		return nil, provisioning.ErrUnknownUser
	}
	return &provisioning.Explanation{Query: q, Changes: []provisioning.Change{{Kind: provisioning.CreateAgent, Subject: q}}}, nil
}

func (f *fakeBackend) Run(_ context.Context, force bool) (*provisioning.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs = append(f.runs, force)
	rep := &provisioning.Report{ID: uint64(len(f.reports) + 1), Trigger: provisioning.TriggerManual, Forced: force,
		Counts: map[string]int{"create_agent/applied": 2, "applied": 2}, Summary: &provisioning.Summary{Create: 2}}
	f.reports = append(f.reports, rep)
	return rep, nil
}

func (f *fakeBackend) Provision(ctx context.Context, q string) (*provisioning.Report, error) {
	return f.Run(ctx, false)
}

func (f *fakeBackend) forces() []bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bool(nil), f.runs...)
}

const adminToken = "the-admin-token-0123456789"

func newTestUI(t *testing.T, cfg Config, b *fakeBackend) *httptest.Server {
	t.Helper()
	u, err := New(cfg, Options{Backend: b, CheckToken: func(tok string) bool { return tok == adminToken }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(u.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// client is a browser-like client: it keeps cookies and does not follow redirects.
func client(t *testing.T) *http.Client {
	t.Helper()
	jar := newJar()
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, c, req)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, c, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) (int, http.Header, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

var (
	loginCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// signIn signs c in with the admin token through the sign-in form and returns the session's
// CSRF token.
func signIn(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	_, _, page := get(t, c, base+"/ui/login")
	m := loginCSRF.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("sign-in page without form token:\n%s", page)
	}
	status, h, body := post(t, c, base+"/ui/login/token", url.Values{"csrf": {m[1]}, "token": {adminToken}})
	if status != http.StatusSeeOther || h.Get("Location") != "/ui/" {
		t.Fatalf("token sign-in: %d %s\n%s", status, h.Get("Location"), body)
	}
	_, _, page = get(t, c, base+"/ui/")
	m = loginCSRF.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("overview without the session's CSRF token:\n%s", page)
	}
	return m[1]
}

func TestSignInAndAuth(t *testing.T) {
	b := &fakeBackend{}
	_, _ = b.Run(context.Background(), false)
	srv := newTestUI(t, Config{}, b)
	anon := client(t)

	status, _, page := get(t, anon, srv.URL+"/ui/")
	if status != http.StatusUnauthorized || !strings.Contains(page, "Sign in to bridge") {
		t.Fatalf("anonymous: %d\n%s", status, page)
	}
	status, h, _ := get(t, anon, srv.URL+"/ui/", "Authorization", "Bearer wrong")
	if status != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
		t.Fatalf("wrong bearer: %d %v", status, h)
	}
	status, h, page = get(t, anon, srv.URL+"/ui/", "Authorization", "Bearer "+adminToken)
	if status != http.StatusOK || !strings.Contains(page, "2 to create") || !strings.Contains(page, "Inbound queue") {
		t.Fatalf("bearer: %d\n%s", status, page)
	}
	if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("CSP: %q", h.Get("Content-Security-Policy"))
	}

	// the sign-in form: a wrong form token and a wrong admin token are refused
	c := client(t)
	get(t, c, srv.URL+"/ui/login")
	if status, _, _ := post(t, c, srv.URL+"/ui/login/token", url.Values{"csrf": {"forged"}, "token": {adminToken}}); status != http.StatusForbidden {
		t.Fatalf("sign-in with a forged form token: %d", status)
	}
	_, _, page = get(t, c, srv.URL+"/ui/login")
	m := loginCSRF.FindStringSubmatch(page)
	if status, _, _ := post(t, c, srv.URL+"/ui/login/token", url.Values{"csrf": {m[1]}, "token": {"guess"}}); status != http.StatusUnauthorized {
		t.Fatalf("sign-in with a wrong token: %d", status)
	}
	csrf := signIn(t, c, srv.URL)

	// the session cookie: HttpOnly, SameSite=Strict, not Secure on loopback
	var cookie *http.Cookie
	u, _ := url.Parse(srv.URL + "/ui/")
	for _, ck := range c.Jar.(*jar).raw(u) {
		if ck.Name == sessionCookie {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Secure {
		t.Fatalf("session cookie: %+v", cookie)
	}

	// an action without or with a wrong CSRF token is refused and runs nothing
	for _, form := range []url.Values{{}, {"csrf": {"forged"}}} {
		if status, _, _ := post(t, c, srv.URL+"/ui/actions/run", form); status != http.StatusForbidden {
			t.Fatalf("run now with %v: %d, want 403", form, status)
		}
	}
	if n := len(b.forces()); n != 1 {
		t.Fatalf("%d runs, want only the first", n)
	}
	status, h, _ = post(t, c, srv.URL+"/ui/actions/run", url.Values{"csrf": {csrf}})
	if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/ui/runs/2?") {
		t.Fatalf("run now: %d %s", status, h.Get("Location"))
	}
	status, _, page = get(t, c, srv.URL+h.Get("Location"))
	if status != http.StatusOK || !strings.Contains(page, "Run 2") {
		t.Fatalf("run page: %d\n%s", status, page)
	}

	// signed out, the session is gone
	if status, _, _ := post(t, c, srv.URL+"/ui/logout", url.Values{"csrf": {csrf}}); status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", status)
	}
	if status, _, _ := get(t, c, srv.URL+"/ui/"); status != http.StatusUnauthorized {
		t.Fatalf("after sign-out: %d", status)
	}
	if strings.Contains(page, adminToken) {
		t.Fatal("a page shows the admin token")
	}
}

func TestSecureCookieOffLoopback(t *testing.T) {
	u, err := New(Config{}, Options{Backend: &fakeBackend{}, CheckToken: func(tok string) bool { return tok == adminToken }})
	if err != nil {
		t.Fatal(err)
	}
	h := u.Handler()
	req := httptest.NewRequest(http.MethodGet, "http://bridge.example.com/ui/login", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if !c.Secure {
			t.Errorf("cookie %s is not Secure for bridge.example.com", c.Name)
		}
	}
	if len(rec.Result().Cookies()) == 0 {
		t.Fatal("no login cookie")
	}
}

func TestViewerMayNotAct(t *testing.T) {
	b := &fakeBackend{reports: []*provisioning.Report{{ID: 1, Trigger: provisioning.TriggerSchedule,
		Refused: []string{"too many"}, Counts: map[string]int{}, Summary: &provisioning.Summary{Held: 12}}}}
	u, err := New(Config{}, Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(u.Handler())
	defer srv.Close()
	ses := u.sessions.create("viewer@example.com", false)
	c := client(t)
	base, _ := url.Parse(srv.URL)
	c.Jar.SetCookies(base, []*http.Cookie{{Name: sessionCookie, Value: ses.id, Path: "/ui/"}})
	status, _, page := get(t, c, srv.URL+"/ui/")
	if status != http.StatusOK || !strings.Contains(page, "too many") {
		t.Fatalf("viewer's overview: %d\n%s", status, page)
	}
	if strings.Contains(page, "/ui/actions/") {
		t.Fatalf("the viewer's overview offers actions:\n%s", page)
	}
	if status, _, _ := get(t, c, srv.URL+"/ui/actions/run"); status != http.StatusForbidden {
		t.Fatalf("viewer's run confirmation: %d", status)
	}
	if status, _, _ := post(t, c, srv.URL+"/ui/actions/run", url.Values{"csrf": {ses.csrf}}); status != http.StatusForbidden {
		t.Fatalf("viewer's run: %d", status)
	}
	if len(b.forces()) != 0 {
		t.Fatal("a viewer started a run")
	}
}

func TestForceNeedsWhatWasShown(t *testing.T) {
	held := []provisioning.Change{{Kind: provisioning.DisableAgent, Subject: "bob@example.com", Reason: "left directory"}}
	b := &fakeBackend{plan: &provisioning.Plan{Refused: []string{"too many"}, Held: held}}
	srv := newTestUI(t, Config{}, b)
	c := client(t)
	csrf := signIn(t, c, srv.URL)
	_, _, page := get(t, c, srv.URL+"/ui/actions/force")
	if !strings.Contains(html.UnescapeString(page), "- disable agent bob@example.com") || !strings.Contains(page, "too many") {
		t.Fatalf("force confirmation does not show the held change:\n%s", page)
	}
	fp := regexp.MustCompile(`name="fingerprint" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	if fp == nil {
		t.Fatalf("no fingerprint:\n%s", page)
	}
	// what is held back changes before the confirmation arrives: nothing is forced
	b.mu.Lock()
	b.plan = &provisioning.Plan{Refused: []string{"too many"}, Held: append(held, provisioning.Change{Kind: provisioning.DisableAgent, Subject: "cy@example.com"})}
	b.mu.Unlock()
	if status, _, _ := post(t, c, srv.URL+"/ui/actions/force", url.Values{"csrf": {csrf}, "fingerprint": {fp[1]}}); status != http.StatusConflict {
		t.Fatalf("force after the held changes changed: %d", status)
	}
	if len(b.forces()) != 0 {
		t.Fatal("forced although the held changes changed")
	}
	_, _, page = get(t, c, srv.URL+"/ui/actions/force")
	fp = regexp.MustCompile(`name="fingerprint" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	status, h, _ := post(t, c, srv.URL+"/ui/actions/force", url.Values{"csrf": {csrf}, "fingerprint": {fp[1]}})
	if status != http.StatusSeeOther || len(b.forces()) != 1 || !b.forces()[0] {
		t.Fatalf("force: %d %s, runs %v", status, h.Get("Location"), b.forces())
	}
}

func TestExplainPage(t *testing.T) {
	srv := newTestUI(t, Config{}, &fakeBackend{})
	c := client(t)
	signIn(t, c, srv.URL)
	status, _, page := get(t, c, srv.URL+"/ui/explain?q=ann%40example.com")
	if status != http.StatusOK || !strings.Contains(html.UnescapeString(page), "+ create agent ann@example.com") {
		t.Fatalf("explain: %d\n%s", status, page)
	}
	status, _, page = get(t, c, srv.URL+"/ui/explain?q=nobody")
	if status != http.StatusNotFound || !strings.Contains(page, "Nobody found") {
		t.Fatalf("explain nobody: %d\n%s", status, page)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{PublicURL: "http://bridge.example.com", SessionTTL: -1, OIDC: OIDCConfig{Issuer: "http://idp.example.com",
		Viewers: ClaimRule{Values: []string{"x"}}}}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"public_url", "session_ttl", "oidc.issuer", "oidc.client_id", "oidc.admins", "oidc.viewers.claim"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s: %v", want, err)
		}
	}
	ok := Config{OIDC: OIDCConfig{Issuer: "https://idp.example.com", ClientID: "c", Admins: ClaimRule{Claim: "groups", Values: []string{"a"}}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestClaimRule(t *testing.T) {
	r := ClaimRule{Claim: "groups", Values: []string{"bridge-admins"}}
	for _, tc := range []struct {
		claims map[string]any
		want   bool
	}{
		{map[string]any{"groups": []any{"x", "bridge-admins"}}, true},
		{map[string]any{"groups": "bridge-admins"}, true},
		{map[string]any{"groups": []any{"x"}}, false},
		{map[string]any{"groups": []any{1.0}}, false},
		{map[string]any{}, false},
	} {
		if got := r.matches(tc.claims); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.claims, got, tc.want)
		}
	}
}

// jar is a cookie jar for one test server that keeps the cookies' attributes (the standard
// one hides HttpOnly, SameSite and Secure).
type jar struct {
	mu sync.Mutex
	m  map[string]*http.Cookie
}

func newJar() *jar { return &jar{m: map[string]*http.Cookie{}} }

func (j *jar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range cs {
		if c.MaxAge < 0 || c.Value == "" {
			delete(j.m, c.Name)
			continue
		}
		j.m[c.Name] = c
	}
}

func (j *jar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []*http.Cookie
	for _, c := range j.m {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

func (j *jar) raw(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []*http.Cookie
	for _, c := range j.m {
		out = append(out, c)
	}
	return out
}

// TestRunsOfOtherProcesses: a run of another process sharing the store (id 0 in Status: this
// process has no full report of it) is listed without a link, named by its origin; this
// process's runs keep theirs. A run limited to side tasks says so instead of "everyone".
func TestRunsOfOtherProcesses(t *testing.T) {
	b := &fakeBackend{}
	if _, err := b.Run(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	other := &provisioning.Report{ID: 0, Origin: "replica-b pid 4711 #0a1b", Trigger: provisioning.TriggerCLI,
		Tasks: []string{"sso"}, Started: time.Now(), Counts: map[string]int{"update_sso/applied": 1, "applied": 1}}
	b.reports = append(b.reports, other) // the newest: the "Last run" card shows it
	srv := newTestUI(t, Config{}, b)
	c := client(t)
	signIn(t, c, srv.URL)
	status, _, page := get(t, c, srv.URL+"/ui/")
	if status != http.StatusOK {
		t.Fatalf("overview: %d\n%s", status, page)
	}
	if strings.Contains(page, `href="/ui/runs/0"`) {
		t.Errorf("the other process's run links to /ui/runs/0, which finds nothing:\n%s", page)
	}
	if n := strings.Count(page, "replica-b pid 4711 #0a1b"); n != 2 { // the card and the table
		t.Errorf("the other process's run is named by its origin %d times, want 2:\n%s", n, page)
	}
	if !strings.Contains(page, "for the sso settings") {
		t.Errorf("the run limited to sso does not say so:\n%s", page)
	}
	if !strings.Contains(page, `href="/ui/runs/1"`) {
		t.Errorf("this process's run 1 lost its link:\n%s", page)
	}
	if status, _, _ := get(t, c, srv.URL+"/ui/runs/1"); status != http.StatusOK {
		t.Errorf("/ui/runs/1: %d", status)
	}
	const note = "Runs of other processes sharing the store"
	if strings.Count(page, note) != 1 {
		t.Errorf("the note on other processes' runs is not there once:\n%s", page)
	}
	b.mu.Lock()
	b.reports = b.reports[:1] // only this process's run: no note
	b.mu.Unlock()
	if _, _, page := get(t, c, srv.URL+"/ui/"); strings.Contains(page, note) || !strings.Contains(page, `href="/ui/runs/1"`) {
		t.Errorf("overview with this process's runs only:\n%s", page)
	}
}
