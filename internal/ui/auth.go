package ui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/babelforce/bridge/oidc"
)

const (
	sessionCookie = "bridge_session"
	loginCookie   = "bridge_login"
	// loginTTL bounds a sign-in in progress (from the sign-in page to the IdP's callback).
	loginTTL = 10 * time.Minute
	// maxPending bounds the sign-ins in progress kept in memory.
	maxPending = 10000
)

// principal is who makes a request.
type principal struct {
	Name  string
	Admin bool
	// Token: the request carried the admin token (no session, no CSRF: a browser never
	// sends an Authorization header on its own).
	Token   bool
	session *session
}

// CSRF is the token every form of the session must carry ("" for token requests).
func (p *principal) CSRF() string {
	if p == nil || p.session == nil {
		return ""
	}
	return p.session.csrf
}

// Role names what the principal may do.
func (p *principal) Role() string {
	if p.Admin {
		return "admin"
	}
	return "viewer"
}

type session struct {
	id      string
	name    string
	admin   bool
	csrf    string
	expires time.Time
}

// pendingLogin is a sign-in with the IdP in progress.
type pendingLogin struct {
	state, nonce, verifier string
	expires                time.Time
}

// sessions keeps the sessions and sign-ins in progress of this process.
type sessions struct {
	now     func() time.Time
	ttl     time.Duration
	mu      sync.Mutex
	m       map[string]*session
	pending map[string]*pendingLogin
}

func newSessions(now func() time.Time, ttl time.Duration) *sessions {
	return &sessions{now: now, ttl: ttl, m: map[string]*session{}, pending: map[string]*pendingLogin{}}
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) create(name string, admin bool) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for id, x := range s.m {
		if now.After(x.expires) {
			delete(s.m, id)
		}
	}
	ses := &session{id: randomString(), name: name, admin: admin, csrf: randomString(), expires: now.Add(s.ttl)}
	s.m[ses.id] = ses
	return ses
}

func (s *sessions) get(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ses := s.m[id]
	if ses == nil {
		return nil
	}
	if s.now().After(ses.expires) {
		delete(s.m, id)
		return nil
	}
	return ses
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// begin records a sign-in in progress under a new id (the login cookie's value).
func (s *sessions) begin(p *pendingLogin) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for id, x := range s.pending {
		if now.After(x.expires) {
			delete(s.pending, id)
		}
	}
	if len(s.pending) >= maxPending {
		return "", errors.New("too many sign-ins in progress; try again in a few minutes")
	}
	id := randomString()
	p.expires = now.Add(loginTTL)
	s.pending[id] = p
	return id, nil
}

// finish takes the sign-in in progress id (once).
func (s *sessions) finish(id string) *pendingLogin {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[id]
	delete(s.pending, id)
	if p == nil || s.now().After(p.expires) {
		return nil
	}
	return p
}

// who identifies a request: the admin token as bearer, else the session cookie.
func (u *UI) who(r *http.Request) *principal {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") && u.check != nil && u.check(strings.TrimSpace(tok)) {
			return &principal{Name: "admin token", Admin: true, Token: true}
		}
		return nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	ses := u.sessions.get(c.Value)
	if ses == nil {
		return nil
	}
	return &principal{Name: ses.name, Admin: ses.admin, session: ses}
}

type ctxKey struct{}

func principalOf(r *http.Request) *principal {
	p, _ := r.Context().Value(ctxKey{}).(*principal)
	return p
}

// authed lets signed-in people through (admins only when admin is set); a POST from a
// session must carry the session's CSRF token. Everyone else gets the sign-in page.
func (u *UI) authed(admin bool, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := u.who(r)
		if p == nil {
			if r.Header.Get("Authorization") != "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="bridge admin", error="invalid_token"`)
			}
			u.renderLogin(w, r, http.StatusUnauthorized, "Sign in to see bridge's status.")
			return
		}
		if admin && !p.Admin {
			u.render(w, r, http.StatusForbidden, "error", p, pageData{Title: "Admins only",
				Message: "Only admins may do this; you are signed in as a viewer."})
			return
		}
		if r.Method == http.MethodPost && !p.Token {
			if err := r.ParseForm(); err != nil {
				u.render(w, r, http.StatusBadRequest, "error", p, pageData{Title: "Bad request", Message: err.Error()})
				return
			}
			if !sameToken(r.PostForm.Get("csrf"), p.session.csrf) {
				u.log.Warn("ui: action refused: missing or wrong CSRF token", "path", r.URL.Path, "user", p.Name)
				u.render(w, r, http.StatusForbidden, "error", p, pageData{Title: "Refused",
					Message: "This form is stale or did not come from bridge (CSRF token missing or wrong). Go back, reload the page and try again."})
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
	})
}

func sameToken(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// secure says whether cookies must be Secure: always, unless bridge is reached in plain http
// on a loopback address.
func (u *UI) secure(r *http.Request) bool {
	if u.cfg.PublicURL != "" {
		return !strings.HasPrefix(u.cfg.PublicURL, "http://")
	}
	return r.TLS != nil || !oidc.IsLoopbackHost(hostOnly(r.Host))
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// baseURL is where the browser reaches bridge.
func (u *UI) baseURL(r *http.Request) string {
	if u.cfg.PublicURL != "" {
		return strings.TrimSuffix(u.cfg.PublicURL, "/")
	}
	scheme := "https"
	if r.TLS == nil && oidc.IsLoopbackHost(hostOnly(r.Host)) {
		scheme = "http"
	}
	return scheme + "://" + r.Host
}

func (u *UI) setSession(w http.ResponseWriter, r *http.Request, ses *session) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: ses.id, Path: "/ui/", HttpOnly: true,
		Secure: u.secure(r), SameSite: http.SameSiteStrictMode, Expires: ses.expires})
}

// loginID returns the login cookie's value, setting a new one when there is none. The cookie
// is Lax, not Strict: it must come back with the IdP's redirect to the callback.
func (u *UI) loginID(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(loginCookie); err == nil && c.Value != "" {
		return c.Value
	}
	id := randomString()
	u.setLoginCookie(w, r, id)
	return id
}

func (u *UI) setLoginCookie(w http.ResponseWriter, r *http.Request, v string) {
	c := &http.Cookie{Name: loginCookie, Value: v, Path: "/ui/", HttpOnly: true, Secure: u.secure(r),
		SameSite: http.SameSiteLaxMode, MaxAge: int(loginTTL.Seconds())}
	if v == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

func (u *UI) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	if p := u.who(r); p != nil && !p.Token {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	u.renderLogin(w, r, http.StatusOK, "")
}

// renderLogin renders the sign-in page. Its token form carries the login cookie's value
// (double submit: a form posted from another site has no cookie to match).
func (u *UI) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	d := pageData{Title: "Sign in", Message: msg, LoginCSRF: u.loginID(w, r), TokenLogin: u.check != nil}
	if u.idp != nil {
		d.IdP = u.idp.cfg.Issuer
	}
	u.render(w, r, status, "login", nil, d)
}

// handleTokenLogin signs in with the admin token pasted into the form.
func (u *UI) handleTokenLogin(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		u.renderLogin(w, r, http.StatusBadRequest, "Bad request.")
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameToken(r.PostForm.Get("csrf"), c.Value) {
		u.renderLogin(w, r, http.StatusForbidden, "The sign-in form was stale. Try again.")
		return
	}
	if u.check == nil || !u.check(strings.TrimSpace(r.PostForm.Get("token"))) {
		u.log.Warn("ui: sign-in with a wrong admin token", "remote", r.RemoteAddr)
		u.renderLogin(w, r, http.StatusUnauthorized, "That is not the admin token.")
		return
	}
	ses := u.sessions.create("admin token", true)
	u.log.Info("ui: signed in", "user", ses.name, "role", "admin", "remote", r.RemoteAddr)
	u.setSession(w, r, ses)
	u.setLoginCookie(w, r, "")
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (u *UI) handleLogout(w http.ResponseWriter, r *http.Request) {
	if p := principalOf(r); p.session != nil {
		u.sessions.delete(p.session.id)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/ui/", HttpOnly: true,
		Secure: u.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// idp is the sign-in with an OpenID Connect provider; discovery happens at the first sign-in
// (and again after a failure), so that bridge starts while the IdP is down.
type idp struct {
	cfg OIDCConfig
	mu  sync.Mutex
	p   *gooidc.Provider
}

func newIDP(cfg OIDCConfig) *idp {
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{gooidc.ScopeOpenID, "email", "profile"}
	}
	return &idp{cfg: cfg}
}

func (i *idp) provider(ctx context.Context) (*gooidc.Provider, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.p != nil {
		return i.p, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	p, err := gooidc.NewProvider(ctx, i.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover the IdP %s: %w", i.cfg.Issuer, err)
	}
	i.p = p
	return p, nil
}

func (i *idp) oauth(p *gooidc.Provider, redirect string) *oauth2.Config {
	return &oauth2.Config{ClientID: i.cfg.ClientID, ClientSecret: i.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: redirect, Scopes: i.cfg.Scopes}
}

// handleOIDCStart sends the browser to the IdP (authorization code flow with PKCE S256,
// state and nonce).
func (u *UI) handleOIDCStart(w http.ResponseWriter, r *http.Request) {
	if u.idp == nil {
		u.renderLogin(w, r, http.StatusNotFound, "Sign-in with an IdP is not configured.")
		return
	}
	p, err := u.idp.provider(r.Context())
	if err != nil {
		u.log.Warn("ui: sign-in", "error", err)
		u.renderLogin(w, r, http.StatusBadGateway, "The IdP cannot be reached now; try again later (details in bridge's log).")
		return
	}
	pl := &pendingLogin{state: randomString(), nonce: randomString(), verifier: oauth2.GenerateVerifier()}
	id, err := u.sessions.begin(pl)
	if err != nil {
		u.renderLogin(w, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	u.setLoginCookie(w, r, id)
	to := u.idp.oauth(p, u.baseURL(r)+"/ui/callback").AuthCodeURL(pl.state, gooidc.Nonce(pl.nonce), oauth2.S256ChallengeOption(pl.verifier))
	http.Redirect(w, r, to, http.StatusFound)
}

// handleCallback finishes the sign-in: code for tokens (with the PKCE verifier), the ID
// token verified (issuer, audience, expiry, signature, nonce), the claims of the ID token and
// userinfo decide the role. It answers with a page that moves on to the overview by itself:
// a redirect would be part of the IdP's cross-site navigation, and the browser would hold
// back the SameSite=Strict session cookie on it.
func (u *UI) handleCallback(w http.ResponseWriter, r *http.Request) {
	if u.idp == nil {
		u.renderLogin(w, r, http.StatusNotFound, "Sign-in with an IdP is not configured.")
		return
	}
	q := r.URL.Query()
	c, err := r.Cookie(loginCookie)
	var pl *pendingLogin
	if err == nil {
		pl = u.sessions.finish(c.Value)
	}
	u.setLoginCookie(w, r, "")
	if pl == nil || !sameToken(q.Get("state"), pl.state) {
		u.renderLogin(w, r, http.StatusBadRequest, "This sign-in expired or was not started here. Sign in again.")
		return
	}
	if e := q.Get("error"); e != "" {
		u.log.Warn("ui: the IdP refused the sign-in", "error", e, "description", q.Get("error_description"))
		u.renderLogin(w, r, http.StatusUnauthorized, "The IdP refused the sign-in: "+e+".")
		return
	}
	name, role, err := u.idp.exchange(r.Context(), u.baseURL(r)+"/ui/callback", q.Get("code"), pl)
	if err != nil {
		u.log.Warn("ui: sign-in failed", "error", err)
		u.renderLogin(w, r, http.StatusUnauthorized, "The sign-in with the IdP failed (details in bridge's log).")
		return
	}
	if role == "" {
		u.log.Warn("ui: sign-in refused: neither the admins nor the viewers rule matches", "user", name)
		u.renderLogin(w, r, http.StatusForbidden, "Your account ("+name+") may not use bridge's status pages. Ask an admin to add you to the right group.")
		return
	}
	ses := u.sessions.create(name, role == "admin")
	u.log.Info("ui: signed in", "user", name, "role", role, "remote", r.RemoteAddr)
	u.setSession(w, r, ses)
	u.render(w, r, http.StatusOK, "signedin", nil, pageData{Title: "Signed in", Message: name})
}

// exchange redeems the code and returns who signed in and their role: "admin", "viewer" or
// "" for someone neither rule lets in.
func (i *idp) exchange(ctx context.Context, redirect, code string, pl *pendingLogin) (name, role string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := i.provider(ctx)
	if err != nil {
		return "", "", err
	}
	conf := i.oauth(p, redirect)
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(pl.verifier))
	if err != nil {
		return "", "", fmt.Errorf("redeem the authorization code: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return "", "", errors.New("the token response has no id_token")
	}
	idt, err := p.Verifier(&gooidc.Config{ClientID: i.cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		return "", "", fmt.Errorf("verify the ID token: %w", err)
	}
	if !sameToken(idt.Nonce, pl.nonce) {
		return "", "", errors.New("the ID token's nonce is not this sign-in's")
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return "", "", fmt.Errorf("read the ID token's claims: %w", err)
	}
	if p.UserInfoEndpoint() != "" {
		ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return "", "", fmt.Errorf("userinfo: %w", err)
		}
		if ui.Subject != idt.Subject {
			return "", "", fmt.Errorf("userinfo is about %q, the ID token about %q", ui.Subject, idt.Subject)
		}
		extra := map[string]any{}
		if err := ui.Claims(&extra); err != nil {
			return "", "", fmt.Errorf("read the userinfo claims: %w", err)
		}
		for k, v := range extra {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	name = idt.Subject
	for _, k := range []string{"email", "preferred_username", "name"} {
		if s, ok := claims[k].(string); ok && s != "" {
			name = s
			break
		}
	}
	switch {
	case i.cfg.Admins.matches(claims):
		return name, "admin", nil
	case i.cfg.Viewers.matches(claims):
		return name, "viewer", nil
	}
	return name, "", nil
}
