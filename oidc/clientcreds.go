package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// CheckClientCredentials checks a client id and secret against the provider's token endpoint
// with the client_credentials grant, when the provider advertises that grant in
// grant_types_supported. The secret is never part of the Finding.
//
//   - token issued: OK;
//   - invalid_client: an error finding (the id or the secret is wrong);
//   - grant not advertised, unauthorized_client, unsupported_grant_type, invalid_scope: a
//     warning (the client may not use this grant, so the secret could not be confirmed);
//   - anything else (unreachable, HTTP 5xx): an error finding.
func CheckClientCredentials(ctx context.Context, p *Provider, clientID, secret string) Finding {
	const expected = "the IdP accepts the client id and secret"
	if p == nil {
		return Finding{Check: CheckClientCredentialsGrant, Severity: SeverityError, Expected: expected, Message: "no provider: run discovery first"}
	}
	if !slices.Contains(p.GrantTypesSupported, "client_credentials") {
		return Finding{Check: CheckClientCredentialsGrant, Severity: SeverityWarning, Expected: expected,
			Found:   strings.Join(p.GrantTypesSupported, ", "),
			Message: "the IdP does not advertise the client_credentials grant; the client secret was not checked"}
	}
	if err := CheckURL(p.TokenEndpoint, p.allowInsecure); err != nil {
		return Finding{Check: CheckClientCredentialsGrant, Severity: SeverityError, Expected: expected, Message: "token_endpoint " + err.Error()}
	}

	form := url.Values{"grant_type": {"client_credentials"}}
	// RFC 6749 section 2.3.1: client_secret_basic unless the IdP only takes client_secret_post.
	usePost := len(p.TokenEndpointAuthMethodsSupported) > 0 &&
		!slices.Contains(p.TokenEndpointAuthMethodsSupported, "client_secret_basic") &&
		slices.Contains(p.TokenEndpointAuthMethodsSupported, "client_secret_post")
	if usePost {
		form.Set("client_id", clientID)
		form.Set("client_secret", secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Finding{Check: CheckClientCredentialsGrant, Severity: SeverityError, Expected: expected, Message: fmt.Sprintf("token request to %s: %v", p.TokenEndpoint, err)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if !usePost {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	client := p.client
	if client == nil {
		client = &http.Client{Timeout: defaultHTTPTimeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		return Finding{Check: CheckClientCredentialsGrant, Severity: SeverityError, Expected: expected, Message: fmt.Sprintf("token endpoint %s is unreachable: %v", p.TokenEndpoint, err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	var tok struct {
		AccessToken      string `json:"access_token"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &tok)

	switch {
	case resp.StatusCode == http.StatusOK && tok.AccessToken != "":
		return Finding{Check: CheckClientCredentialsGrant, OK: true, Found: "token issued",
			Message: fmt.Sprintf("the IdP issued a token to client %q with its secret", clientID)}
	case tok.Error == "invalid_client" || (resp.StatusCode == http.StatusUnauthorized && tok.Error == ""):
		return Finding{Check: CheckClientCredentialsGrant, Severity: SeverityError, Expected: expected, Found: "invalid_client",
			Message: fmt.Sprintf("the IdP rejected client %q (invalid_client): check client_id and the client secret", clientID)}
	case tok.Error == "unauthorized_client" || tok.Error == "unsupported_grant_type" || tok.Error == "invalid_scope":
		return Finding{Check: CheckClientCredentialsGrant, Severity: SeverityWarning, Expected: expected, Found: tok.Error,
			Message: fmt.Sprintf("the IdP answered %s: client %q may not use the client_credentials grant, so its secret could not be confirmed", tok.Error, clientID)}
	default:
		found := fmt.Sprintf("HTTP %d", resp.StatusCode)
		if tok.Error != "" {
			found += " " + tok.Error
		}
		return Finding{Check: CheckClientCredentialsGrant, Severity: SeverityError, Expected: expected, Found: found,
			Message: fmt.Sprintf("token endpoint %s answered %s to the client_credentials grant", p.TokenEndpoint, found)}
	}
}
