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
//	rate_limit: 0                               # requests per second; default 0 = no fixed limit
//	burst: 0                                    # default ceil(rate_limit)
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
// Retries follow what is safe to repeat. Every call that may be repeated (every GET, the
// token request, PUTs, PATCHes of "replace" operations, enable/disable, DELETE and the POSTs
// that set a state) is retried on 429, any 5xx and network errors (a refused or dropped
// connection, an answer cut off), with exponential backoff and full jitter, honouring
// Retry-After (seconds or HTTP date), bounded by MaxAttempts and MaxRetryTime per call; after
// the bound the error names the call, the attempts and the last status and wraps the last
// error (IsTransient reports true). A paged read retries the failed page, not the whole read.
// A create (POST of a new agent, group, user, SCIM user) is sent again at once only when the
// server certainly did not process it: after 429 or 503, or a connection that failed before
// the request was written. When it may have been applied (another 5xx, a connection lost or
// an answer cut off after the request was sent), the client waits a backoff and looks the
// object up (an agent by sourceId and agentSource, a group by name, a user by e-mail, a SCIM
// user by externalId, else userName) and sends the create again only when it is not there,
// so no retry makes a duplicate; a create without such a key (an agent without sourceId) is
// not repeated. A DELETE retried after an ambiguous failure that then answers 404 counts as
// done.
//
// Rate: rate_limit (default 0: no fixed limit) caps the requests per second. On top of it,
// one adaptive limiter shared by every call slows the whole client down when 429s pile up
// (8 of the last 20 answers): every call waits for the server's Retry-After, and then the
// client sends at half the rate it was sending at (at least 1 per second); each 2 s with at
// most three 429s among the last 20 answers raises the rate by half, until it is back at
// rate_limit or, without one, at twice the rate at which babelforce pushed back, and the
// limiter steps aside. A single 429 only makes its own call wait and retry.
//
// Errors are *APIError (errors.Is with ErrNotFound, ErrConflict, ErrUnauthorized); Stats
// counts requests by endpoint template and status, and WithCallObserver reports each one.
package babelforce
