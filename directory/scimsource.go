package directory

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/babelforce/bridge/internal/httpx"
)

// Defaults of the upstream SCIM source.
const (
	DefaultSCIMPageSize = 100
	DefaultSCIMTimeout  = 30 * time.Second
	maxSCIMPageSize     = 10000
	scimMaxAttempts     = 4
	scimMaxRestarts     = 2
	scimMaxRetryAfter   = 30 * time.Second
	scimErrorBodyLimit  = 512
	scimMaxResponseSize = 256 << 20
)

// SCIMSourceConfig configures the upstream SCIM source: bridge pulls /Users and /Groups from a
// SCIM 2.0 service provider (an IdP or HR system) with a bearer token. In YAML it is the
// `directory.scim` section; every key can also be set from the environment with the prefix
// BRIDGE_SCIM_SOURCE_ (BRIDGE_SCIM_SOURCE_BASE_URL, BRIDGE_SCIM_SOURCE_TOKEN, ...).
//
//	directory:
//	  type: scim
//	  scim:
//	    base_url: https://idp.example.com/scim/v2
//	    token_file: /run/secrets/scim-token   # or BRIDGE_SCIM_SOURCE_TOKEN
//	    page_size: 100                        # count per request; servers may return fewer
//	    user_filter: 'active eq true'         # optional SCIM filter for /Users
//	    group_filter: 'displayName sw "cc-"'  # optional SCIM filter for /Groups
//	    timeout: 30s                          # per HTTP request
//	    ca_file: /etc/ssl/idp-ca.pem          # optional extra CA
//	    insecure_skip_verify: false
type SCIMSourceConfig struct {
	BaseURL string `yaml:"base_url" env:"BASE_URL, overwrite"`
	// Token is the bearer token. Never in the YAML file: set it from the environment or use
	// TokenFile.
	Token              string        `yaml:"-" env:"TOKEN, overwrite"`
	TokenFile          string        `yaml:"token_file" env:"TOKEN_FILE, overwrite"`
	PageSize           int           `yaml:"page_size" env:"PAGE_SIZE, overwrite"`
	UserFilter         string        `yaml:"user_filter" env:"USER_FILTER, overwrite"`
	GroupFilter        string        `yaml:"group_filter" env:"GROUP_FILTER, overwrite"`
	Timeout            time.Duration `yaml:"timeout" env:"TIMEOUT, overwrite"`
	CAFile             string        `yaml:"ca_file" env:"CA_FILE, overwrite"`
	InsecureSkipVerify bool          `yaml:"insecure_skip_verify" env:"INSECURE_SKIP_VERIFY, overwrite"`

	// tokenFromFile records that LoadSecrets filled Token from TokenFile, so that Validate
	// does not take the loaded token for a second one set in the environment.
	tokenFromFile bool
}

// SetDefaults fills page_size and timeout when unset.
func (c *SCIMSourceConfig) SetDefaults() {
	if c.PageSize == 0 {
		c.PageSize = DefaultSCIMPageSize
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultSCIMTimeout
	}
}

// Validate reports every problem of the configuration at once; it changes nothing and reads
// no file.
func (c *SCIMSourceConfig) Validate() error {
	var errs []error
	if c.BaseURL == "" {
		errs = append(errs, errors.New("base_url: required (the SCIM base URL, e.g. https://idp.example.com/scim/v2)"))
	} else if u, err := url.Parse(c.BaseURL); err != nil {
		errs = append(errs, fmt.Errorf("base_url: %w", err))
	} else if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("base_url: %q is not an http(s) URL with a host", c.BaseURL))
	} else if u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("base_url: %q must not have a query or fragment", c.BaseURL))
	}
	switch {
	case c.Token == "" && c.TokenFile == "":
		errs = append(errs, errors.New("token: required: set BRIDGE_SCIM_SOURCE_TOKEN or token_file"))
	case c.Token != "" && c.TokenFile != "" && !c.tokenFromFile:
		errs = append(errs, errors.New("token_file: set either the token (BRIDGE_SCIM_SOURCE_TOKEN) or token_file, not both"))
	}
	if c.PageSize < 0 || c.PageSize > maxSCIMPageSize {
		errs = append(errs, fmt.Errorf("page_size: %d is out of range 1..%d (0 means the default %d)", c.PageSize, maxSCIMPageSize, DefaultSCIMPageSize))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: %s must not be negative", c.Timeout))
	}
	if c.InsecureSkipVerify && c.CAFile != "" {
		errs = append(errs, errors.New("insecure_skip_verify: makes ca_file pointless; set only one"))
	}
	return errors.Join(errs...)
}

// LoadSecrets reads the token from token_file when the token is not set directly. Surrounding
// white space (a trailing newline) is removed.
func (c *SCIMSourceConfig) LoadSecrets() error {
	if c.Token != "" || c.TokenFile == "" {
		return nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return fmt.Errorf("token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return fmt.Errorf("token_file: %s is empty", c.TokenFile)
	}
	c.Token, c.tokenFromFile = tok, true
	return nil
}

// SCIMSource reads users and groups from an upstream SCIM 2.0 service provider.
//
// Users become User values through SCIMUser (the same conversion the store of pushed users
// uses): id → ID, userName, externalId, displayName, name, emails, phoneNumbers, active
// (missing means true; the strings "True"/"False" that some IdPs send are accepted), groups
// with type "direct" or no type → Groups, and every attribute flattened into User.Attributes
// (see FlattenSCIMUser), e.g. "title", "emails.work", "enterprise.department".
//
// Groups: id, displayName → Name, externalId; members with type "User"/"Group" (else the
// $ref path /Users/ or /Groups/, else whichever id is known) → MemberUsers/MemberGroups.
type SCIMSource struct {
	cfg     SCIMSourceConfig
	base    *url.URL
	logger  *slog.Logger
	client  *http.Client
	backoff time.Duration // first retry delay; doubled per attempt
	sleep   func(ctx context.Context, d time.Duration) error
	now     func() time.Time
	poll    time.Duration // how often Follow asks for changes
	keep    keptAttrs     // the attributes users keep (KeepAttributes); nil: all
}

// NewSCIMSource returns a source for cfg (validated here; call cfg.LoadSecrets first when the
// token comes from a file). httpClient may be nil: then one is built from timeout, ca_file and
// insecure_skip_verify. A given client is used as is (its TLS settings win), with timeout
// applied per request.
func NewSCIMSource(cfg SCIMSourceConfig, logger *slog.Logger, httpClient *http.Client, opts ...Option) (*SCIMSource, error) {
	if cfg.TokenFile != "" && cfg.Token == "" {
		if err := cfg.LoadSecrets(); err != nil {
			return nil, fmt.Errorf("scim source: %w", err)
		}
		cfg.TokenFile = "" // loaded; keeps Validate's either/or check quiet
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("scim source config: %w", err)
	}
	cfg.SetDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("scim source: base_url: %w", err)
	}
	if httpClient == nil {
		tr, err := httpx.Transport(cfg.CAFile, cfg.InsecureSkipVerify)
		if err != nil {
			return nil, fmt.Errorf("scim source: %w", err)
		}
		httpClient = &http.Client{Transport: tr}
	}
	return &SCIMSource{
		cfg:     cfg,
		base:    base,
		logger:  logger,
		client:  httpClient,
		backoff: 250 * time.Millisecond,
		sleep:   httpx.Sleep,
		now:     time.Now,
		poll:    2 * time.Second,
		keep:    applyOptions(opts).keep,
	}, nil
}

// Read fetches every user and group (all pages) and returns the resolved snapshot. Any
// problem (an HTTP error after retries, a short or inconsistent page, malformed JSON) is an
// error; a read that ended early wraps ErrIncomplete.
func (s *SCIMSource) Read(ctx context.Context) (*Snapshot, error) {
	started := s.now()
	rawUsers, err := s.list(ctx, "Users", s.cfg.UserFilter)
	if err != nil {
		return nil, err
	}
	rawGroups, err := s.list(ctx, "Groups", s.cfg.GroupFilter)
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{ReadAt: started, Source: s.base.String()}
	snap.Users = make([]User, 0, len(rawUsers))
	userIDs := make(map[string]bool, len(rawUsers))
	for i, raw := range rawUsers {
		u, err := scimParseUser(raw)
		if err != nil {
			return nil, fmt.Errorf("scim source: user %d of %d: %w", i+1, len(rawUsers), err)
		}
		userIDs[u.ID] = true
		u.Attributes = s.keep.filter(u.Attributes)
		snap.Users = append(snap.Users, u)
	}
	snap.Groups = make([]Group, 0, len(rawGroups))
	groups := make([]scimGroup, 0, len(rawGroups))
	groupIDs := make(map[string]bool, len(rawGroups))
	for i, raw := range rawGroups {
		var g scimGroup
		if err := json.Unmarshal(raw, &g); err != nil {
			return nil, fmt.Errorf("scim source: group %d of %d: %w", i+1, len(rawGroups), err)
		}
		if g.ID == "" {
			return nil, fmt.Errorf("scim source: group %d of %d (%q) has no id", i+1, len(rawGroups), g.DisplayName)
		}
		groupIDs[g.ID] = true
		groups = append(groups, g)
	}
	for _, g := range groups {
		out := Group{ID: g.ID, Name: g.DisplayName, ExternalID: g.ExternalID}
		for _, m := range g.Members {
			if m.Value == "" {
				continue
			}
			switch scimMemberKind(m, userIDs, groupIDs) {
			case "user":
				out.MemberUsers = append(out.MemberUsers, m.Value)
			case "group":
				out.MemberGroups = append(out.MemberGroups, m.Value)
			default:
				s.logger.Debug("scim group member not among the users or groups read", "group", g.DisplayName, "member", m.Value)
			}
		}
		snap.Groups = append(snap.Groups, out)
	}
	snap.Resolve()
	s.logger.Info("read upstream scim directory", "source", snap.Source, "users", len(snap.Users), "groups", len(snap.Groups), "duration", s.now().Sub(started).String())
	return snap, nil
}

func scimMemberKind(m scimMember, users, groups map[string]bool) string {
	switch strings.ToLower(m.Type) {
	case "user":
		return "user"
	case "group":
		return "group"
	}
	if ref := strings.ToLower(m.Ref); ref != "" {
		switch {
		case strings.Contains(ref, "/users/"):
			return "user"
		case strings.Contains(ref, "/groups/"):
			return "group"
		}
	}
	switch {
	case users[m.Value]:
		return "user"
	case groups[m.Value]:
		return "group"
	}
	return ""
}

type scimListResponse struct {
	TotalResults *int              `json:"totalResults"`
	StartIndex   *int              `json:"startIndex"`
	ItemsPerPage *int              `json:"itemsPerPage"`
	Resources    []json.RawMessage `json:"Resources"`
}

type scimMember struct {
	Value   string `json:"value"`
	Type    string `json:"type"`
	Ref     string `json:"$ref"`
	Display string `json:"display"`
}

type scimGroup struct {
	ID          string       `json:"id"`
	DisplayName string       `json:"displayName"`
	ExternalID  string       `json:"externalId"`
	Members     []scimMember `json:"members"`
}

// list reads every resource of one endpoint. Paging follows RFC 7644 section 3.4.2.4: the next
// startIndex is the previous one plus the number of resources actually received (servers may
// return fewer than count). If totalResults changes between pages (the directory changed under
// us), offsets are no longer trustworthy: the whole list is read again, up to twice, then the
// read fails with ErrIncomplete.
func (s *SCIMSource) list(ctx context.Context, endpoint, filter string) ([]json.RawMessage, error) {
	for restart := 0; ; restart++ {
		out, err := s.listOnce(ctx, endpoint, filter)
		var changed *scimTotalChangedError
		if errors.As(err, &changed) && restart < scimMaxRestarts {
			s.logger.Warn("scim totalResults changed during the read; reading again", "endpoint", endpoint, "was", changed.was, "now", changed.now)
			continue
		}
		return out, err
	}
}

type scimTotalChangedError struct{ was, now int }

func (e *scimTotalChangedError) Error() string {
	return fmt.Sprintf("totalResults changed from %d to %d during the read", e.was, e.now)
}

func (e *scimTotalChangedError) Unwrap() error { return ErrIncomplete }

func (s *SCIMSource) listOnce(ctx context.Context, endpoint, filter string) ([]json.RawMessage, error) {
	var (
		all   []json.RawMessage
		seen  = map[string]bool{}
		total = -1 // unknown until the first page
		start = 1
		pages int
		// warnedStart: the server's startIndex echo differed once already
		warnedStart bool
	)
	for {
		q := url.Values{}
		q.Set("startIndex", strconv.Itoa(start))
		q.Set("count", strconv.Itoa(s.cfg.PageSize))
		if filter != "" {
			q.Set("filter", filter)
		}
		var page scimListResponse
		if err := s.get(ctx, endpoint, q, &page); err != nil {
			return nil, err
		}
		pages++
		got := len(page.Resources)
		where := fmt.Sprintf("scim source: GET /%s startIndex=%d", endpoint, start)
		if page.StartIndex != nil && *page.StartIndex != start && got > 0 && !warnedStart {
			// Only a hint: some servers echo it wrongly but page correctly. A server that
			// really ignores startIndex repeats resources, which fails below.
			warnedStart = true
			s.logger.Warn("scim server echoed another startIndex than asked", "endpoint", endpoint, "asked", start, "echoed", *page.StartIndex)
		}
		if page.TotalResults != nil {
			n := *page.TotalResults
			if n < 0 {
				return nil, fmt.Errorf("%s: negative totalResults %d", where, n)
			}
			if total >= 0 && n != total {
				return nil, fmt.Errorf("%s: %w", where, &scimTotalChangedError{was: total, now: n})
			}
			total = n
		}
		for i, raw := range page.Resources {
			var head struct {
				ID          string `json:"id"`
				UserName    any    `json:"userName"` // any: only for the error below
				DisplayName any    `json:"displayName"`
			}
			if err := json.Unmarshal(raw, &head); err != nil {
				return nil, fmt.Errorf("%s: resource %d: %w", where, i+1, err)
			}
			if head.ID == "" {
				// Checked here, not only when converting: a server that ignores startIndex and
				// repeats id-less resources would otherwise be paged through totalResults times.
				name := ""
				un, _ := head.UserName.(string)
				dn, _ := head.DisplayName.(string)
				if n := cmp.Or(un, dn); n != "" {
					name = " " + strconv.Quote(n)
				}
				return nil, fmt.Errorf("%s: resource %d%s has no id: every SCIM resource needs one", where, i+1, name)
			}
			if seen[head.ID] {
				return nil, fmt.Errorf("%s: resource %q returned twice: the server ignores startIndex or its paging is inconsistent: %w", where, head.ID, ErrIncomplete)
			}
			seen[head.ID] = true
			all = append(all, raw)
		}
		start += got
		switch {
		case total >= 0 && len(all) >= total:
			s.logger.Debug("scim list read", "endpoint", endpoint, "resources", len(all), "pages", pages)
			return all, nil
		case got == 0 && total >= 0:
			return nil, fmt.Errorf("%s: empty page after %d of %d resources: %w", where, len(all), total, ErrIncomplete)
		case got == 0, total < 0 && got < s.cfg.PageSize:
			// No totalResults (a non-conforming server): a short or empty page ends the list.
			s.logger.Warn("scim server sent no totalResults; a short page ended the list", "endpoint", endpoint, "resources", len(all))
			return all, nil
		}
	}
}

// get performs one GET with retries on 429, 5xx and transport errors, and decodes the body.
func (s *SCIMSource) get(ctx context.Context, endpoint string, q url.Values, into any) error {
	u := *s.base
	u.Path = strings.TrimRight(u.Path, "/") + "/" + endpoint
	u.RawQuery = q.Encode()
	// %20 for spaces reads better in server logs and is what SCIM examples use.
	u.RawQuery = strings.ReplaceAll(u.RawQuery, "+", "%20")
	what := "GET /" + endpoint
	delay := s.backoff
	var lastErr error
	for attempt := 1; attempt <= scimMaxAttempts; attempt++ {
		if attempt > 1 {
			if err := s.sleep(ctx, delay); err != nil {
				return fmt.Errorf("scim source: %s: %w (after %v)", what, err, lastErr)
			}
			delay *= 2
		}
		retry, wait, err := s.try(ctx, u.String(), what, into)
		if err == nil {
			return nil
		}
		lastErr = err
		if !retry || ctx.Err() != nil {
			return err
		}
		if wait > delay {
			delay = wait
		}
		// a little jitter so that several bridges do not retry in step
		delay += time.Duration(rand.Int64N(int64(delay/10) + 1))
		s.logger.Warn("scim request failed; retrying", "request", what, "attempt", attempt, "error", err.Error())
	}
	return fmt.Errorf("%w (gave up after %d attempts)", lastErr, scimMaxAttempts)
}

func (s *SCIMSource) try(ctx context.Context, rawURL, what string, into any) (retry bool, wait time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return false, 0, fmt.Errorf("scim source: %s: %w", what, err)
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
	req.Header.Set("Accept", "application/scim+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return scimTransient(err), 0, fmt.Errorf("scim source: %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		detail := scimErrorDetail(body)
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			return false, 0, fmt.Errorf("scim source: %s: 401 unauthorized: the server rejected the bearer token; check BRIDGE_SCIM_SOURCE_TOKEN or token_file%s", what, detail)
		case resp.StatusCode == http.StatusForbidden:
			return false, 0, fmt.Errorf("scim source: %s: 403 forbidden: the token is valid but may not read %s; grant it read access%s", what, what[4:], detail)
		case resp.StatusCode == http.StatusNotFound:
			return false, 0, fmt.Errorf("scim source: %s: 404 not found: is base_url %q the SCIM base (usually ending in /scim/v2)?%s", what, s.base.String(), detail)
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			return true, s.retryAfter(resp.Header), fmt.Errorf("scim source: %s: HTTP %d%s", what, resp.StatusCode, detail)
		default:
			return false, 0, fmt.Errorf("scim source: %s: HTTP %d%s", what, resp.StatusCode, detail)
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, scimMaxResponseSize))
	if err != nil {
		return true, 0, fmt.Errorf("scim source: %s: reading the response: %w", what, err)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return false, 0, fmt.Errorf("scim source: %s: the response is not a SCIM ListResponse (%s): %w", what, scimSnippet(body), err)
	}
	return false, 0, nil
}

// scimTransient tells network trouble worth another attempt (refused or reset connections,
// timeouts, cut-off responses) from errors that will not go away by retrying (certificates).
func scimTransient(err error) bool {
	if httpx.IsTLSError(err) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// scimErrorDetail renders a SCIM error body (RFC 7644 section 3.12) or a snippet of any other.
func scimErrorDetail(body []byte) string {
	if len(body) == 0 {
		return ""
	}
	var e struct {
		Detail   string `json:"detail"`
		ScimType string `json:"scimType"`
	}
	if json.Unmarshal(body, &e) == nil && e.Detail != "" {
		if e.ScimType != "" {
			return fmt.Sprintf(": %s (%s)", e.Detail, e.ScimType)
		}
		return ": " + e.Detail
	}
	return ": " + scimSnippet(body)
}

func scimSnippet(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > scimErrorBodyLimit {
		s = s[:scimErrorBodyLimit] + "…"
	}
	return strconv.Quote(s)
}

// retryAfter is how long the server asks to wait (Retry-After), at most scimMaxRetryAfter.
func (s *SCIMSource) retryAfter(h http.Header) time.Duration {
	d, _ := httpx.RetryAfter(h, s.now())
	return min(d, scimMaxRetryAfter)
}

// scimParseUser turns one SCIM User resource into a User (see SCIMUser).
func scimParseUser(raw json.RawMessage) (User, error) {
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return User{}, err
	}
	u, err := SCIMUser(m)
	if err != nil {
		return User{}, err
	}
	return u, nil
}
