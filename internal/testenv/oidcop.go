package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// OIDCProvider is a real OpenID Connect provider (the zitadel/oidc example OP) running in
// process on a 127.0.0.1 listener with a plain http issuer (so clients need their
// allow-insecure-http-on-loopback switch).
//
// What works (v3.52.0):
//   - discovery, JWKS (one RS256 key), the code flow for the web client ClientID/ClientSecret
//     (IDToken does it: the ID token's aud is ClientID);
//   - the client_credentials grant for the service client ServiceClientID/ServiceSecret
//     ("sid1"/"verysecret"). The example OP hands that client opaque access tokens; this helper
//     wraps the example storage so they are JWTs instead (ServiceToken: aud and sub are "sid1"),
//     which is what an IdP pushing SCIM with a bearer token typically sends.
//   - the web client may not use client_credentials: the example storage answers it with
//     invalid_client (it only knows service users for that grant).
type OIDCProvider struct {
	Issuer string
	// The web client babelforce would use for SSO (code flow).
	ClientID, ClientSecret, RedirectURI string
	// The service client allowed the client_credentials grant.
	ServiceClientID, ServiceSecret string
	// The example user for the code flow, and the e-mail claim the provider gives them.
	Username, Password, Email string

	mu     sync.Mutex
	counts map[string]int // requests served, by path
}

// StartOIDCProvider starts the example OP; it stops when the test ends. The web client
// accepts RedirectURI and, besides, redirectURIs (e.g. a bridge's /ui/callback).
func StartOIDCProvider(t testing.TB, redirectURIs ...string) *OIDCProvider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("oidc provider: listen: %v", err)
	}
	issuer := "http://" + ln.Addr().String()
	p := &OIDCProvider{
		Issuer:          issuer,
		ClientID:        "babelforce-web",
		ClientSecret:    "web-secret-" + fmt.Sprint(time.Now().UnixNano()),
		RedirectURI:     issuer + "/test/callback",
		ServiceClientID: "sid1",
		ServiceSecret:   "verysecret",
		Username:        "test-user@127.0.0.1",
		Password:        "verysecure",
		Email:           "test-user@zitadel.ch",
		counts:          map[string]int{},
	}
	// NewStorageWithClients with our own map instead of storage.RegisterClients, which writes a
	// package-global map (racy when several tests start providers).
	clients := map[string]*storage.Client{
		p.ClientID: storage.WebClient(p.ClientID, p.ClientSecret, append([]string{p.RedirectURI}, redirectURIs...)...),
	}
	st := jwtServiceStorage{storage.NewStorageWithClients(storage.NewUserStore(issuer), clients)}
	// A nil logger keeps SetupServer from replacing the process-wide slog default.
	router := exampleop.SetupServer(issuer, st, nil, false)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.mu.Lock()
			p.counts[r.URL.Path]++
			p.mu.Unlock()
			router.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

// Requests returns how many requests the provider served for path.
func (p *OIDCProvider) Requests(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[path]
}

// TotalRequests returns how many requests the provider served.
func (p *OIDCProvider) TotalRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.counts {
		n += c
	}
	return n
}

// jwtServiceStorage makes client_credentials access tokens JWTs.
type jwtServiceStorage struct {
	*storage.Storage
}

func (s jwtServiceStorage) ClientCredentials(ctx context.Context, clientID, clientSecret string) (op.Client, error) {
	c, err := s.Storage.ClientCredentials(ctx, clientID, clientSecret)
	if err != nil {
		return nil, err
	}
	return jwtClient{c}, nil
}

type jwtClient struct{ op.Client }

func (jwtClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

// DiscoveryDocument fetches the provider's discovery document as a map (to build broken
// variants for StartDiscoveryServer).
func (p *OIDCProvider) DiscoveryDocument(t testing.TB) map[string]any {
	t.Helper()
	resp, err := http.Get(p.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatalf("fetch discovery document: %v", err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("decode discovery document: %v", err)
	}
	return doc
}

// ServiceToken returns a JWT access token from the client_credentials grant of the service
// client (iss Issuer, aud and sub ServiceClientID, about 5 minutes valid).
func (p *OIDCProvider) ServiceToken(t testing.TB) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}
	req, _ := http.NewRequest(http.MethodPost, p.Issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(p.ServiceClientID, p.ServiceSecret)
	tok, err := tokenResponse(req)
	if err != nil {
		t.Fatalf("client_credentials token: %v", err)
	}
	if strings.Count(tok.AccessToken, ".") != 2 {
		t.Fatalf("client_credentials access token is not a JWT: %q", tok.AccessToken)
	}
	return tok.AccessToken
}

// IDToken runs the authorization code flow for the web client with the example user and
// returns the ID token (aud ClientID).
func (p *OIDCProvider) IDToken(t testing.TB) string {
	t.Helper()
	tok, err := p.codeFlow()
	if err != nil {
		t.Fatalf("code flow: %v", err)
	}
	return tok
}

func (p *OIDCProvider) codeFlow() (string, error) {
	noRedirect := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	q := url.Values{
		"client_id": {p.ClientID}, "redirect_uri": {p.RedirectURI}, "response_type": {"code"},
		"scope": {"openid email profile"}, "state": {"st"}, "nonce": {"n"},
	}
	resp, err := noRedirect.Get(p.Issuer + "/auth?" + q.Encode())
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("authorize: status %d, no redirect: %w", resp.StatusCode, err)
	}
	authReqID := loc.Query().Get("authRequestID")
	if authReqID == "" {
		return "", fmt.Errorf("authorize redirected to %s without authRequestID", loc)
	}
	form := url.Values{"id": {authReqID}, "username": {p.Username}, "password": {p.Password}}
	resp, err = noRedirect.PostForm(p.Issuer+"/login/username", form)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	loc, err = resp.Location()
	if err != nil {
		return "", fmt.Errorf("login: status %d, no redirect: %w", resp.StatusCode, err)
	}
	// The login redirects to the OP's callback, which redirects to the client with the code.
	for i := 0; i < 5 && loc.Query().Get("code") == ""; i++ {
		resp, err = noRedirect.Get(loc.String())
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		next, err := resp.Location()
		if err != nil {
			return "", fmt.Errorf("callback %s: status %d, no redirect: %w", loc, resp.StatusCode, err)
		}
		loc = next
	}
	code := loc.Query().Get("code")
	if code == "" {
		return "", fmt.Errorf("no code in %s", loc)
	}
	tform := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {p.RedirectURI}}
	req, _ := http.NewRequest(http.MethodPost, p.Issuer+"/oauth/token", strings.NewReader(tform.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(p.ClientID, p.ClientSecret)
	tok, err := tokenResponse(req)
	if err != nil {
		return "", err
	}
	if tok.IDToken == "" {
		return "", errors.New("token response has no id_token")
	}
	return tok.IDToken, nil
}

type tokenResp struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
	Error       string `json:"error"`
}

func tokenResponse(req *http.Request) (*tokenResp, error) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var tok tokenResp
	if err := json.Unmarshal(body, &tok); err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("token endpoint: HTTP %d: %s", resp.StatusCode, body)
	}
	return &tok, nil
}

// DiscoveryServer serves a discovery document the test controls, for the broken cases a real
// provider never produces. Its URL is the issuer to configure.
type DiscoveryServer struct {
	URL string
}

// StartDiscoveryServer serves doc(issuer) at /.well-known/openid-configuration, where issuer
// is the server's own URL (http://127.0.0.1:port). Other paths answer 404. A typical doc is
// (*OIDCProvider).DiscoveryDocument with a few fields changed: its other endpoints and JWKS
// still point at the real provider.
func StartDiscoveryServer(t testing.TB, doc func(issuer string) map[string]any) *DiscoveryServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("discovery server: listen: %v", err)
	}
	d := &DiscoveryServer{URL: "http://" + ln.Addr().String()}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/.well-known/openid-configuration" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(doc(d.URL))
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return d
}

// ClosedURL returns an http URL on 127.0.0.1 where nothing listens (a port that was just
// released), for "unreachable" cases.
func ClosedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}
