package babelforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

const (
	tokenPath = "/oauth/token"
	// defaultTokenLifetime applies when the token answer has no expires_in.
	defaultTokenLifetime = 3600 * time.Second
	// maxRenewMargin is how long before expiry a token is renewed at most; shorter lifetimes
	// renew at 10% before expiry.
	maxRenewMargin = 60 * time.Second
)

// tokenSource holds the bearer token: the static Config.Token, or one from the OAuth password
// grant, cached and renewed before it expires. Concurrent callers share one fetch.
type tokenSource struct {
	c    *Client
	lock chan struct{} // a mutex that respects ctx
	// guarded by lock:
	token   string
	renewAt time.Time
	// rejected remembers rejected credentials until rejectedUntil, so that concurrent and
	// following callers do not repeat failed logins (which may lock the account).
	rejected      error
	rejectedUntil time.Time
}

// rejectedBackoff is how long rejected credentials are not tried again.
const rejectedBackoff = time.Minute

// tokenAnswer is the token endpoint's answer.
type tokenAnswer struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
}

// canRenew reports whether a 401 on a request with this auth can be cured by a new token.
func (ts *tokenSource) canRenew(a authKind) bool {
	if ts.c.cfg.Token != "" {
		return false
	}
	switch a {
	case authManager:
		return true
	case authSCIM:
		return ts.c.cfg.SCIMToken == ""
	}
	return false
}

// get returns a valid token, fetching one when there is none or it is about to expire.
func (ts *tokenSource) get(ctx context.Context) (string, error) {
	if ts.c.cfg.Token != "" {
		return ts.c.cfg.Token, nil
	}
	select {
	case ts.lock <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("babelforce: waiting for the access token: %w", ctx.Err())
	}
	defer func() { <-ts.lock }()
	now := ts.c.now()
	if ts.token != "" && now.Before(ts.renewAt) {
		return ts.token, nil
	}
	if ts.rejected != nil && now.Before(ts.rejectedUntil) {
		return "", ts.rejected
	}
	tok, lifetime, err := ts.fetch(ctx)
	if err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			ts.rejected, ts.rejectedUntil = err, ts.c.now().Add(rejectedBackoff)
		}
		return "", err
	}
	ts.rejected = nil
	margin := min(maxRenewMargin, lifetime/10)
	ts.token, ts.renewAt = tok, ts.c.now().Add(lifetime-margin)
	return tok, nil
}

// invalidate forgets tok if it is still the cached token, so the next get fetches a new one.
func (ts *tokenSource) invalidate(tok string) {
	if tok == "" {
		return
	}
	ts.lock <- struct{}{}
	if ts.token == tok {
		ts.token = ""
	}
	<-ts.lock
}

// fetch runs the OAuth password grant.
func (ts *tokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	cfg := ts.c.cfg
	form := url.Values{
		"grant_type": {"password"},
		"username":   {cfg.Username},
		"password":   {cfg.Password},
		"client_id":  {cfg.ClientID},
	}
	r := &request{method: http.MethodPost, tmpl: tokenPath, path: tokenPath, auth: authNone,
		body: []byte(form.Encode()), ctype: "application/x-www-form-urlencoded", idempotent: true}
	resp, err := ts.c.execute(ctx, r)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden) {
			return "", 0, &authError{user: cfg.Username, api: ae}
		}
		return "", 0, fmt.Errorf("babelforce: get access token for user %q: %w", cfg.Username, err)
	}
	var ta tokenAnswer
	if err := json.Unmarshal(resp.body, &ta); err != nil {
		return "", 0, fmt.Errorf("babelforce: get access token for user %q: decode answer: %w", cfg.Username, err)
	}
	if ta.AccessToken == "" {
		return "", 0, fmt.Errorf("babelforce: get access token for user %q: the answer has no access_token", cfg.Username)
	}
	lifetime := defaultTokenLifetime
	if s := rawText(ta.ExpiresIn); s != "" {
		var secs float64
		if _, err := fmt.Sscan(s, &secs); err == nil && secs > 0 {
			lifetime = time.Duration(secs * float64(time.Second))
		}
	}
	ts.c.log.DebugContext(ctx, "babelforce access token fetched", "username", cfg.Username, "lifetime", lifetime)
	return ta.AccessToken, lifetime, nil
}
