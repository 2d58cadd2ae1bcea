// Package babelforcetest is a working, in-memory babelforce on net/http/httptest: the
// Manager API subset bridge uses (agents, agent groups, agent tags, login users with roles,
// Agent Sync external ids), the OAuth password grant, SCIM 2.0 under /auth/scim/v2, the SCIM
// configuration and the SSO configuration. It keeps real state, validates input the way
// babelforce does, and adds fault injection and call counting for tests and for the
// standalone `bridge simulate` command.
//
// Wire shapes follow testdata/babelforce/openapi.yaml (trimmed from babelforce's published
// specs); the package tests validate every response against that document.
//
// Typical use:
//
//	sim := babelforcetest.New(t, babelforcetest.Options{})
//	sim.PutAgent(babelforce.Agent{Name: "Ann", Email: "ann@example.com"})
//	c := sim.Client(t) // a *babelforce.Client for sim.URL with fast retries
//
// New and Client take a TB (what *testing.T has), not testing.TB: `bridge simulate` and
// `bridge demo` start a simulator (NewServer, Start), and the bridge binary must not link the
// testing package (.ci/run checks it).
//
// # Behaviour and the simulator's assumptions
//
// Authentication: POST /oauth/token with grant_type=password, client_id=manager and the
// simulator's Username/Password issues a bearer token valid for Options.TokenTTL (default
// 12h) measured with Options.Now; refresh_token grants rotate the refresh token. Wrong
// credentials answer 400 {error:"invalid_grant"}. The long-lived SCIMToken is accepted on
// every endpoint. A missing, unknown or expired token answers 401 {success:false,
// error:"invalid_token", message} (SCIM paths: a SCIM error body).
//
// IDs are 32 lower-case hex characters; a hyphenated id in a path is not found (404), as on
// babelforce. Lists come back in creation order (agents, groups, users); the tag catalogue
// and external ids are sorted. Paging is 1-based (page, max); max defaults to
// Options.DefaultPageSize (10) and is capped at Options.MaxPageSize (100); pagination carries
// current, max, maxResults (both the page size), pages, total and next (a relative URL,
// omitted on the last page). A page past the end is an empty list.
//
// Agents: only name is required (400 otherwise). E-mails are unique case-insensitively
// (409). PUT changes only the fields present in the body; tags replaces the tag list, groups
// (when present) replaces the agent's group memberships, null clears a field. The list
// filters sourceId, source and number match exactly; name and q are case-insensitive
// substring matches (q over name, email, number, sourceId and group names); enabled is
// true/false; tags, groupIds and groups match agents having any of the values (repeated
// parameters or comma-separated). Bulk enable/disable answers one result per id, with
// success:false and error for unknown ids. Deleting an agent drops its group memberships and
// external ids.
//
// Agent groups: names are unique case-insensitively (409). Adding a member twice is a no-op;
// removing a non-member is 404. An agent's groups list its groups in group creation order.
//
// Tags: GET /api/v2/tags/agent answers {items:[{name, category:"agent"}], success:true},
// the sorted union of all agent tags (babelforce's spec only says "objects"); other
// categories answer an empty list.
//
// Login users: one store serves both the Manager API (/api/v2/users) and SCIM
// (/auth/scim/v2/Users): a SCIM user and a Manager user with the same e-mail are the same
// login. E-mails (SCIM userName) are lower-cased and unique (409). Roles are checked against
// babelforce.Roles (400). POST /api/v2/users with activated:true makes the user enabled and
// activated; otherwise both start false (pending activation), as the spec describes. The
// enable/disable/delete/reset-password and roles bulk calls act on the known e-mails and
// name the unknown ones in the message (still 200). A user's agent link
// (agent{uuid,type,sourceId}) is derived: the agent whose e-mail equals the user's. Agents
// and users are otherwise separate stores: creating one never creates the other.
//
// SCIM follows RFC 7643/7644: filters `attr eq "value"` on userName, externalId, id,
// emails.value and displayName (others: 400 invalidFilter); startIndex/count paging; PATCH
// add/replace/remove on active, userName, externalId, displayName, name(.givenName,
// .familyName, .formatted), emails, phoneNumbers, roles (value filters such as
// roles[value eq "agent"] work), and replace without a path; active accepts booleans and the
// strings "true"/"false". Every SCIM failure is a SCIM error body (application/scim+json).
// SCIM active:false disables the login (enabled:false in the Manager API); babelforce's help
// centre says deactivation "removes the user from the account", which the simulator models
// as disabled, keeping the record so it can be re-activated (DELETE removes it).
// When features.roles is off, incoming roles are ignored and new users get defaultRoles;
// when features.scim is off, /Users answers 403. /Groups always answers 501 (with
// features.groups off: "groups are disabled"; on: "not implemented in the simulator").
//
// SSO: GET|PUT /auth/sso/configuration (plain object). clientSecret is write-only: reads
// answer "********" when a secret is stored and omit it otherwise; a PUT without
// clientSecret, or with the mask, keeps the stored secret. redirectUris is read-only and
// filled by the simulator ({base}/auth/sso/callback/manager and .../agent). Enabling SSO
// requires issuer, authorizationEndpoint, tokenEndpoint (absolute http(s) URLs) and clientId
// (400).
//
// Agent Sync: GET /api/v2/agents/{id}/external-ids answers {items:[{integrationId,
// externalId}], pagination}; PUT .../external-ids/{integrationId} {"externalId"} answers
// {item, success}; DELETE answers a message (404 when not set).
//
// # Faults and counting
//
// Faults (Options.Faults, SetFaults, POST /_simulator/faults with a bearer token) apply to
// every path except /_simulator/ (or only to Faults.Paths prefixes): each request draws once
// from a math/rand seeded with Options.Seed and, before it is applied, is dropped
// (connection closed without an answer), answered 429 with Retry-After, or answered
// 500/502/503/504; or, after it was applied, gets its answer cut off after the headers
// (CutRate) or lost (LostRate: 500/502/504 or a closed connection), so that the client cannot
// tell whether its write landed. Mix spreads one rate over all of these. FailNext queues
// deterministic one-shot failures ahead of the random ones. Latency delays every faulted-path
// request.
//
// Calls counts every request that reaches the simulator, faulted or not, keyed
// "METHOD /path/template" (e.g. "GET /api/v2/agents/{id}"; unknown routes under
// "METHOD (unmatched)"). WriteCalls counts non-GET calls under /api/ and /auth/ (so not
// /oauth/token nor /_simulator/). GET /_simulator/stats answers the counts without
// authentication (it reveals no data); POST /_simulator/faults needs a valid bearer token.
package babelforcetest
