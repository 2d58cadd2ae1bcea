package main

// The status pages (/ui/) in a real browser: Debian's chromium driven by chromedp, signing in
// with the real OpenID Connect provider (the zitadel/oidc example OP) and acting on a real
// service against the babelforce simulator.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/babelforce/bridge/directory/store"
	"github.com/babelforce/bridge/internal/testenv"
)

// uiBrowser starts a headless chromium (a fresh profile in the test's temp dir) and returns
// its context; it stops when the test ends. Without chromium the test fails in CI and is
// skipped elsewhere.
func uiBrowser(t *testing.T) context.Context {
	t.Helper()
	testenv.Need(t, "chromium")
	path, err := testenv.LookPath("chromium")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// the first action starts the browser: under bctx, which lives until the cleanup
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// uiDo runs the steps, each waiting for what it needs (never a fixed time), all within 30s;
// on failure the test fails with the page's address and text.
func uiDo(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(dctx, chromedp.Location())
		text, _ := chromedp.Run(dctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %v\nthe browser is at %s:\n%s", what, err, loc, text)
	}
}

// uiShot writes a full-page PNG screenshot of the current page to the test's screenshot
// directory (and to $BRIDGE_UI_SCREENSHOTS when set, to refresh the README's).
func uiShot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	for _, d := range []string{dir, os.Getenv("BRIDGE_UI_SCREENSHOTS")} {
		if d == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(d, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func uiText(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// TestUIInBrowser: sign in with the IdP, see the last run, explain a person, read a run,
// force a run the guard refused through its confirmation; without a session or token the
// sign-in page; an action without the CSRF token refused; the admin token as bearer.
func TestUIInBrowser(t *testing.T) {
	ctx := uiBrowser(t)
	shots := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	op := testenv.StartOIDCProvider(t, base+"/ui/callback")
	s := serveStart(t, serveOptions{ln: ln, env: map[string]string{
		"BRIDGE_UI_OIDC_ISSUER":              op.Issuer,
		"BRIDGE_UI_OIDC_CLIENT_ID":           op.ClientID,
		"BRIDGE_UI_OIDC_CLIENT_SECRET":       op.ClientSecret,
		"BRIDGE_UI_OIDC_ALLOW_INSECURE_HTTP": "true",
		"BRIDGE_UI_OIDC_ADMINS_CLAIM":        "email",
		"BRIDGE_UI_OIDC_ADMINS_VALUES":       op.Email,
	}})
	s.moreSecrets = append(s.moreSecrets, op.ClientSecret)
	unqueued := s.unqueuedStore() // the syncs below apply what is written here
	ids := serveSeedUsers(t, unqueued, 0, 30, map[string][]int{"team-sales": nil})
	status, body := s.admin(http.MethodPost, "/api/v1/sync")
	if status != http.StatusOK {
		t.Fatalf("first sync: %d %v", status, body)
	}
	applied := fmt.Sprintf("Changes: applied %d, failed 0", serveCount(serveReport(t, body), "applied"))

	// Without a session or a token: the sign-in page, with a 401.
	status, _, raw := serveDo(t, http.MethodGet, base+"/ui/", "", nil)
	if status != http.StatusUnauthorized || !strings.Contains(string(raw), "Sign in to bridge") {
		t.Fatalf("GET /ui/ without session: %d\n%s", status, raw)
	}
	if strings.Contains(string(raw), op.ClientSecret) || strings.Contains(string(raw), s.adminToken) {
		t.Fatal("the sign-in page shows a secret")
	}

	// The admin token as bearer (curl): HTML naming the last run's counts.
	status, hdr, raw := serveDo(t, http.MethodGet, base+"/ui/", s.adminToken, nil)
	if status != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /ui/ with the admin token: %d %s\n%s", status, hdr.Get("Content-Type"), raw)
	}
	for _, want := range []string{"Agents: 30 to create, 0 to update, 0 to disable, 0 to delete", applied, "create agent"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("overview (bearer) lacks %q:\n%s", want, raw)
		}
	}

	// Sign in with the IdP in the browser.
	uiDo(t, ctx, "sign-in page",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#oidc-login")),
	)
	uiShot(t, ctx, shots, "ui-signin")
	uiDo(t, ctx, "sign in with the IdP",
		chromedp.Click(chromedp.CSS("#oidc-login")),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), op.Username),
		chromedp.SendKeys(chromedp.CSS("#password"), op.Password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(`//h1[normalize-space()="Overview"]`),
	)
	if who := uiText(t, ctx, ".who"); !strings.Contains(who, op.Email) || !strings.Contains(strings.ToLower(who), "admin") {
		t.Fatalf("signed in as %q, want %s as admin", who, op.Email)
	}
	if last := uiText(t, ctx, ".overview .card"); !strings.Contains(last, "30 to create") || !strings.Contains(last, applied) {
		t.Fatalf("overview's last run: %q", last)
	}
	// The service card names the change queue; upstreams include the sign-in IdP (checked in
	// the background: reload until its first check is in).
	idpUp := `<strong>idp_ui</strong> <span class="muted">up</span>`
	waitUntil(t, 30*time.Second, "the sign-in IdP checked", func() bool {
		_, _, raw := serveDo(t, http.MethodGet, base+"/ui/", s.adminToken, nil)
		return strings.Contains(string(raw), idpUp)
	})
	uiDo(t, ctx, "overview again", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(`//h1[normalize-space()="Overview"]`))
	if facts := uiText(t, ctx, "dl.facts"); !strings.Contains(facts, "Change queue") || !strings.Contains(facts, "empty") ||
		!strings.Contains(facts, "Run lock") || !strings.Contains(facts, "this replica (sqlite: a single replica)") {
		t.Errorf("overview's service facts lack the change queue or the run lock: %q", facts)
	}
	if health := uiText(t, ctx, "ul.health"); !strings.Contains(health, "idp_ui up") || !strings.Contains(health, "babelforce up") {
		t.Errorf("overview's upstreams: %q, want babelforce and idp_ui up", health)
	}
	uiShot(t, ctx, shots, "ui-overview")

	// The session cookie: HttpOnly, SameSite=Strict; not Secure on loopback.
	res, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/ui/"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	var session *network.Cookie
	for _, c := range res.Cookies {
		if c.Name == "bridge_session" {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict || session.Secure {
		t.Fatalf("session cookie: %+v", session)
	}

	// Explain a person through the search box.
	uiDo(t, ctx, "explain",
		chromedp.Click(`//a[normalize-space()="Explain"]`),
		chromedp.WaitVisible(chromedp.CSS(`input[name=q]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=q]`), "user007@example.com"),
		chromedp.Submit(chromedp.CSS(`input[name=q]`)),
		chromedp.WaitVisible(chromedp.CSS(`pre.text`)),
	)
	ex := uiText(t, ctx, "pre.text")
	for _, want := range []string{"Directory and mapping:", "babelforce now:", "user007@example.com", "owned by bridge", "Next run:", "no changes"} {
		if !strings.Contains(ex, want) {
			t.Errorf("explanation lacks %q:\n%s", want, ex)
		}
	}
	uiShot(t, ctx, shots, "ui-explain")

	// The pending plan, on demand.
	uiDo(t, ctx, "plan",
		chromedp.Navigate(base+"/ui/plan"),
		chromedp.Click(`//button[normalize-space()="Compute a dry run now"]`),
		chromedp.WaitVisible(chromedp.CSS(`pre.text`)),
	)
	if p := uiText(t, ctx, "pre.text"); !strings.Contains(p, "No changes: babelforce matches the directory.") {
		t.Errorf("plan: %s", p)
	}
	uiShot(t, ctx, shots, "ui-plan")

	// 15 of 30 people leave: more than the guard lets one run disable.
	for _, id := range ids[:15] {
		if _, err := unqueued.Delete(context.Background(), store.KindUser, id); err != nil {
			t.Fatal(err)
		}
	}
	if status, body := s.admin(http.MethodPost, "/api/v1/sync"); status != http.StatusConflict {
		t.Fatalf("sync with 15 leavers: %d, want 409 (refused) %v", status, body)
	}
	if n := serveCountEnabled(s); n != 30 {
		t.Fatalf("%d agents enabled after the refused run, want 30", n)
	}

	// An action without the CSRF token is refused (the browser's own session cookie).
	form := url.Values{"fingerprint": {"x"}}
	req, _ := http.NewRequest(http.MethodPost, base+"/ui/actions/force", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
	resp, err := serveHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("force without CSRF token: %d, want 403", resp.StatusCode)
	}
	if n := serveCountEnabled(s); n != 30 {
		t.Fatalf("%d agents enabled after the action without CSRF token, want 30", n)
	}

	// The overview shows the refusal; its confirmation page shows the held-back changes
	// first; confirming forces the run.
	uiDo(t, ctx, "overview with a refused run",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(`//a[contains(., "Review the held-back changes")]`),
	)
	uiShot(t, ctx, shots, "ui-overview-refused")
	uiDo(t, ctx, "force confirmation",
		chromedp.Click(`//a[contains(., "Review the held-back changes")]`),
		chromedp.WaitVisible(chromedp.CSS(`#confirm`)),
	)
	held := uiText(t, ctx, "ul.held")
	if n := strings.Count(held, "- disable agent user0"); n != 15 {
		t.Fatalf("the confirmation shows %d disables, want 15:\n%s", n, held)
	}
	uiShot(t, ctx, shots, "ui-force-confirm")
	uiDo(t, ctx, "force",
		chromedp.Click(chromedp.CSS(`#confirm`)),
		chromedp.WaitVisible(chromedp.CSS(`table.changes`)),
	)
	if n := serveCountEnabled(s); n != 15 {
		t.Fatalf("%d agents enabled after the forced run, want 15", n)
	}
	head := uiText(t, ctx, ".pagehead")
	if !strings.Contains(head, "forced") {
		t.Errorf("the forced run's page does not say forced: %q", head)
	}
	uiShot(t, ctx, shots, "ui-run")

	// The run page filters by kind and person.
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	runURL, _ := url.Parse(loc)
	if !regexp.MustCompile(`^/ui/runs/\d+$`).MatchString(runURL.Path) {
		t.Fatalf("after the force the browser is at %s, want a run's page", loc)
	}
	uiDo(t, ctx, "filter the run",
		chromedp.Navigate(base+runURL.Path+"?kind=disable_agent&person=user003"),
		chromedp.WaitVisible(chromedp.CSS(`table.changes`)),
	)
	rows := uiText(t, ctx, "table.changes tbody")
	if strings.Count(rows, "disable agent") != 1 || !strings.Contains(rows, "user003@example.com") {
		t.Fatalf("filtered changes:\n%s", rows)
	}
	uiShot(t, ctx, shots, "ui-run-filtered")
	t.Logf("screenshots in %s", shots)
}

// serveCountEnabled counts the simulator's enabled agents.
func serveCountEnabled(s *serveInstance) int {
	n := 0
	for _, a := range s.sim.Agents() {
		if a.IsEnabled() {
			n++
		}
	}
	return n
}
