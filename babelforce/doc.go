// Package babelforce is the client of babelforce's APIs that bridge writes to: the Manager API
// (agents, agent groups, agent tags = skills, login users and roles), the SCIM API under
// /auth/scim/v2, the SSO (OpenID Connect) configuration and Agent Sync external ids. It never
// decides what to change; package provisioning does.
//
// Configuration (YAML; every key also has an environment variable without prefix, e.g.
// BASE_URL, to which the CLI adds BRIDGE_BABELFORCE_):
//
//	base_url: https://services.babelforce.com   # https; http only for localhost/loopback
//	username: bridge@example.com                # a user with the manager role
//	password_file: /run/secrets/babelforce      # or PASSWORD in the environment
//	# token_file: /run/secrets/babelforce-token # static bearer token instead of username/password
//	# scim_token_file: /run/secrets/scim-token  # SCIM API token; default: the token above
//	client_id: manager                          # OAuth client id of the password grant
//	timeout: 30s                                # per HTTP request
//	rate_limit: 10                              # requests per second, 0 = unlimited
//	burst: 10
//	max_concurrency: 8                          # requests in flight
//	max_attempts: 5                             # tries per call, first included
//	max_retry_time: 2m                          # time one call may spend retrying
//	ca_file: /etc/ssl/private-ca.pem            # extra CAs to trust
//	insecure_skip_verify: false                 # never in production
//	page_size: 100                              # "max" of list requests
//
// Passwords and tokens never come from YAML (yaml:"-"): set PASSWORD / TOKEN / SCIM_TOKEN or
// the *_file keys; Config.LoadSecrets (called by New) reads the files.
//
// Authentication: the OAuth 2.0 password grant (POST /oauth/token, client_id "manager"); the
// token is cached, renewed 60 s (or 10% of its lifetime, if shorter) before it expires
// (3600 s when the answer has no expires_in), shared by concurrent callers, and renewed once
// when an API call answers 401. A static Token skips the token endpoint.
//
// Every list method walks all pages (page/max; SCIM startIndex/count). Ids are normalised to
// babelforce's 32-character lower-case hex without hyphens (NormalizeID), both in request
// paths and in returned items; SCIM ids are opaque and passed through.
//
// Retries: 429, 502, 503, 504 and network errors are retried with exponential backoff and
// full jitter, honouring Retry-After (seconds or HTTP date), bounded by MaxAttempts and
// MaxRetryTime; after the bound the error names the call, the attempts and the last status and
// wraps the last error (IsTransient still reports true). A 500 is permanent: it is neither
// retried nor transient, because babelforce answers 500 for requests it cannot process, and a
// create answered 500 may have been half-applied; the reconciler's next run retries it after
// re-reading the state. Creates (POST of a new agent, group, user, SCIM user) are retried
// only when the server certainly did not process them: after 429 or 503, or a connection
// failure before the request was written; after 502, 504 or a connection lost once the
// request was sent they fail at once (IsTransient is true, the next run re-reads and
// retries). A DELETE retried after an ambiguous failure that then answers 404 counts as done.
//
// Errors are *APIError (errors.Is with ErrNotFound, ErrConflict, ErrUnauthorized); Stats
// counts requests by endpoint template and status, and WithCallObserver reports each one.
package babelforce
