package directory

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSCIM is a small upstream SCIM server for unit tests: it pages through fixed resources,
// capping each page at maxPage whatever count asks for, and lets a test bend the answers.
type fakeSCIM struct {
	t       *testing.T
	token   string
	users   []map[string]any
	groups  []map[string]any
	maxPage int
	// lie, when set, can change the list response of request n (1-based, per endpoint).
	lie func(endpoint string, n int, resp map[string]any) map[string]any
	// status, when set, can replace request n (over all endpoints) by an error status.
	status func(n int) (int, http.Header, string)

	mu       sync.Mutex
	requests []string // "Users startIndex=1 count=100"
	queries  []string // raw queries
	perEP    map[string]int
	total    int
}

func (f *fakeSCIM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.total++
	n := f.total
	if f.perEP == nil {
		f.perEP = map[string]int{}
	}
	ep := strings.TrimPrefix(r.URL.Path, "/scim/v2/")
	f.perEP[ep]++
	epN := f.perEP[ep]
	q := r.URL.Query()
	f.requests = append(f.requests, fmt.Sprintf("%s startIndex=%s count=%s", ep, q.Get("startIndex"), q.Get("count")))
	f.queries = append(f.queries, r.URL.RawQuery)
	f.mu.Unlock()

	if r.Header.Get("Authorization") != "Bearer "+f.token {
		w.Header().Set("Content-Type", "application/scim+json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401","detail":"Invalid or missing bearer token"}`)
		return
	}
	if f.status != nil {
		if code, h, body := f.status(n); code != 0 {
			for k, v := range h {
				w.Header()[k] = v
			}
			w.WriteHeader(code)
			fmt.Fprint(w, body)
			return
		}
	}
	var all []map[string]any
	switch ep {
	case "Users":
		all = f.users
	case "Groups":
		all = f.groups
	default:
		http.NotFound(w, r)
		return
	}
	start, _ := strconv.Atoi(q.Get("startIndex"))
	count, _ := strconv.Atoi(q.Get("count"))
	if start < 1 {
		start = 1
	}
	if f.maxPage > 0 && count > f.maxPage {
		count = f.maxPage
	}
	page := []map[string]any{}
	for i := start - 1; i < len(all) && len(page) < count; i++ {
		page = append(page, all[i])
	}
	resp := map[string]any{
		"schemas":      []string{"urn:ietf:params:scim:api:messages:2.0:ListResponse"},
		"totalResults": len(all),
		"startIndex":   start,
		"itemsPerPage": len(page),
		"Resources":    page,
	}
	if f.lie != nil {
		resp = f.lie(ep, epN, resp)
	}
	w.Header().Set("Content-Type", "application/scim+json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (f *fakeSCIM) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func makeUsers(n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{"id": fmt.Sprintf("u%03d", i), "userName": fmt.Sprintf("user%03d", i), "active": true}
	}
	return out
}

// newFakeSource starts f and returns a source for it with instant retries; slept records the
// back-off delays asked for.
func newFakeSource(t *testing.T, f *fakeSCIM, cfg SCIMSourceConfig) (*SCIMSource, *[]time.Duration) {
	t.Helper()
	f.t = t
	if f.token == "" {
		f.token = "good-token"
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL + "/scim/v2"
	if cfg.Token == "" && cfg.TokenFile == "" {
		cfg.Token = f.token
	}
	s, err := NewSCIMSource(cfg, nil, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	var slept []time.Duration
	s.sleep = func(ctx context.Context, d time.Duration) error {
		slept = append(slept, d)
		return ctx.Err()
	}
	return s, &slept
}

func TestSCIMSourceShortPages(t *testing.T) {
	f := &fakeSCIM{users: makeUsers(23), maxPage: 7}
	s, _ := newFakeSource(t, f, SCIMSourceConfig{PageSize: 10})
	snap, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 23 {
		t.Fatalf("read %d users, want 23", len(snap.Users))
	}
	want := []string{
		"Users startIndex=1 count=10", "Users startIndex=8 count=10", "Users startIndex=15 count=10",
		"Users startIndex=22 count=10", "Groups startIndex=1 count=10",
	}
	if got := f.log(); !slices.Equal(got, want) {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if snap.Source != s.base.String() || snap.ReadAt.IsZero() {
		t.Errorf("source %q, read at %v", snap.Source, snap.ReadAt)
	}
}

func TestSCIMSourceEmptyPageBeforeTotal(t *testing.T) {
	// The server claims 10 users but has 7: the page at startIndex 8 is empty.
	f := &fakeSCIM{users: makeUsers(7), lie: func(ep string, _ int, resp map[string]any) map[string]any {
		if ep == "Users" {
			resp["totalResults"] = 10
		}
		return resp
	}}
	s, _ := newFakeSource(t, f, SCIMSourceConfig{PageSize: 5})
	_, err := s.Read(context.Background())
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("err = %v, want ErrIncomplete", err)
	}
	if !strings.Contains(err.Error(), "empty page after 7 of 10") {
		t.Errorf("error does not say what happened: %v", err)
	}
}

func TestSCIMSourceTotalChangesOnceThenRereads(t *testing.T) {
	// The second page reports one more user (someone was added during the read): the list
	// is read again from the start, and that second pass is consistent.
	f := &fakeSCIM{users: makeUsers(12), lie: func(ep string, n int, resp map[string]any) map[string]any {
		if ep == "Users" && n == 2 {
			resp["totalResults"] = 13
		}
		return resp
	}}
	s, _ := newFakeSource(t, f, SCIMSourceConfig{PageSize: 5})
	snap, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 12 {
		t.Errorf("read %d users, want 12", len(snap.Users))
	}
	var users int
	for _, r := range f.log() {
		if strings.HasPrefix(r, "Users") {
			users++
		}
	}
	if users != 2+3 {
		t.Errorf("%d /Users requests, want 5 (2 before the restart, 3 after): %q", users, f.log())
	}
}

func TestSCIMSourceTotalKeepsChanging(t *testing.T) {
	f := &fakeSCIM{users: makeUsers(12), lie: func(ep string, n int, resp map[string]any) map[string]any {
		if ep == "Users" {
			resp["totalResults"] = 12 + n // different on every page
		}
		return resp
	}}
	s, _ := newFakeSource(t, f, SCIMSourceConfig{PageSize: 5})
	_, err := s.Read(context.Background())
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "totalResults changed") {
		t.Fatalf("err = %v, want ErrIncomplete about totalResults", err)
	}
	if got := len(f.log()); got != 2*(1+scimMaxRestarts) {
		t.Errorf("%d requests, want %d (two pages per attempt)", got, 2*(1+scimMaxRestarts))
	}
}

func TestSCIMSourceTotalSmallerThanServed(t *testing.T) {
	// The server under-reports: it says 3 but the first page holds 5. Everything received is
	// kept and the list ends (there is no way to know about more).
	f := &fakeSCIM{users: makeUsers(5), lie: func(ep string, _ int, resp map[string]any) map[string]any {
		if ep == "Users" {
			resp["totalResults"] = 3
		}
		return resp
	}}
	s, _ := newFakeSource(t, f, SCIMSourceConfig{PageSize: 10})
	snap, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 5 {
		t.Errorf("read %d users, want the 5 served", len(snap.Users))
	}
}

func TestSCIMSourceIgnoredStartIndex(t *testing.T) {
	// Like express 5 under scimmy: every request returns the first page.
	f := &fakeSCIM{users: makeUsers(12), lie: func(ep string, _ int, resp map[string]any) map[string]any {
		if ep == "Users" {
			resp["startIndex"] = 1
			resp["Resources"] = makeUsers(5)
		}
		return resp
	}}
	s, _ := newFakeSource(t, f, SCIMSourceConfig{PageSize: 5})
	_, err := s.Read(context.Background())
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "ignores startIndex") {
		t.Fatalf("err = %v, want ErrIncomplete about paging", err)
	}
	// Without startIndex in the answer the repeated ids give it away.
	f.lie = func(ep string, _ int, resp map[string]any) map[string]any {
		if ep == "Users" {
			delete(resp, "startIndex")
			resp["Resources"] = makeUsers(5)
		}
		return resp
	}
	_, err = s.Read(context.Background())
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "returned twice") {
		t.Fatalf("err = %v, want ErrIncomplete about a repeated id", err)
	}
}

func TestSCIMSourceWrongStartIndexEcho(t *testing.T) {
	// A server that pages correctly but always echoes startIndex 1 is read completely.
	f := &fakeSCIM{users: makeUsers(12), lie: func(_ string, _ int, resp map[string]any) map[string]any {
		resp["startIndex"] = 1
		return resp
	}}
	s, _ := newFakeSource(t, f, SCIMSourceConfig{PageSize: 5})
	snap, err := s.Read(context.Background())
	if err != nil || len(snap.Users) != 12 {
		t.Fatalf("err = %v", err)
	}
}

func TestSCIMSourceEmptyDirectory(t *testing.T) {
	f := &fakeSCIM{}
	s, _ := newFakeSource(t, f, SCIMSourceConfig{})
	snap, err := s.Read(context.Background())
	if err != nil || len(snap.Users) != 0 || len(snap.Groups) != 0 {
		t.Fatalf("snap %+v, err %v", snap, err)
	}
}

func TestSCIMSourceNoTotalResults(t *testing.T) {
	f := &fakeSCIM{users: makeUsers(12), lie: func(_ string, _ int, resp map[string]any) map[string]any {
		delete(resp, "totalResults")
		return resp
	}}
	s, _ := newFakeSource(t, f, SCIMSourceConfig{PageSize: 5})
	snap, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 12 {
		t.Errorf("read %d users, want 12 (until the short page)", len(snap.Users))
	}
}

func TestSCIMSourceUnauthorized(t *testing.T) {
	f := &fakeSCIM{users: makeUsers(1)}
	s, _ := newFakeSource(t, f, SCIMSourceConfig{Token: "wrong"})
	_, err := s.Read(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "BRIDGE_SCIM_SOURCE_TOKEN") ||
		!strings.Contains(err.Error(), "Invalid or missing bearer token") {
		t.Fatalf("err = %v, want a 401 that names the token setting and the server's detail", err)
	}
	if n := len(f.log()); n != 1 {
		t.Errorf("%d requests, want 1 (no retry on 401)", n)
	}
}

func TestSCIMSourceRetries(t *testing.T) {
	f := &fakeSCIM{users: makeUsers(3)}
	f.status = func(n int) (int, http.Header, string) {
		switch n {
		case 1:
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"2"}}, ""
		case 2:
			return http.StatusServiceUnavailable, nil, "<html>down</html>"
		}
		return 0, nil, ""
	}
	s, slept := newFakeSource(t, f, SCIMSourceConfig{})
	snap, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 3 {
		t.Errorf("read %d users", len(snap.Users))
	}
	if len(*slept) != 2 || (*slept)[0] < 2*time.Second {
		t.Errorf("back-off delays %v, want 2 with the first honouring Retry-After: 2", *slept)
	}

	// A server that keeps failing: bounded attempts, a clear error.
	f.status = func(int) (int, http.Header, string) { return http.StatusBadGateway, nil, "bad gateway" }
	*slept = nil
	before := len(f.log())
	_, err = s.Read(context.Background())
	if err == nil || !strings.Contains(err.Error(), "HTTP 502") || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.log()) - before; n != scimMaxAttempts {
		t.Errorf("%d requests, want %d", n, scimMaxAttempts)
	}
	for i := 1; i < len(*slept); i++ {
		if (*slept)[i] < (*slept)[i-1] {
			t.Errorf("back-off does not grow: %v", *slept)
		}
	}
}

func TestSCIMSourceHTTPErrors(t *testing.T) {
	for _, tc := range []struct {
		code int
		body string
		want []string
	}{
		{403, `{"detail":"scope missing"}`, []string{"403", "read access", "scope missing"}},
		{404, ``, []string{"404", "base_url", "/scim/v2"}},
		{400, `{"detail":"bad filter","scimType":"invalidFilter"}`, []string{"HTTP 400", "bad filter (invalidFilter)"}},
	} {
		f := &fakeSCIM{users: makeUsers(1)}
		f.status = func(int) (int, http.Header, string) { return tc.code, nil, tc.body }
		s, _ := newFakeSource(t, f, SCIMSourceConfig{})
		_, err := s.Read(context.Background())
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("HTTP %d: err = %v, want it to contain %q", tc.code, err, w)
			}
		}
		if n := len(f.log()); n != 1 {
			t.Errorf("HTTP %d: %d requests, want 1", tc.code, n)
		}
	}
}

func TestSCIMSourceMalformedJSON(t *testing.T) {
	f := &fakeSCIM{}
	f.status = func(int) (int, http.Header, string) { return 200, nil, `{"totalResults": 1, "Resources": [` }
	s, _ := newFakeSource(t, f, SCIMSourceConfig{})
	_, err := s.Read(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not a SCIM ListResponse") {
		t.Fatalf("err = %v", err)
	}
	f.status = func(int) (int, http.Header, string) {
		return 200, nil, `{"totalResults": 1, "Resources": [{"userName": "no-id"}]}`
	}
	_, err = s.Read(context.Background())
	if err == nil || !strings.Contains(err.Error(), `"no-id" has no id`) {
		t.Fatalf("err = %v", err)
	}
	f.status = func(int) (int, http.Header, string) {
		return 200, nil, `{"totalResults": 1, "Resources": [{"id": "1", "active": "maybe"}]}`
	}
	// an active nobody can read is that one person's problem, not the read's: not active, and
	// the mapping skips them (User.Invalid)
	snap, err := s.Read(context.Background())
	if err != nil || len(snap.Users) != 1 || snap.Users[0].Active || !strings.Contains(snap.Users[0].Invalid, "not a boolean") {
		t.Fatalf("bad active: %v, %+v", err, snap)
	}
}

func TestSCIMSourceFiltersAreEncoded(t *testing.T) {
	f := &fakeSCIM{users: makeUsers(2)}
	s, _ := newFakeSource(t, f, SCIMSourceConfig{UserFilter: `active eq true and emails[type eq "work"].value ew "@example.com"`, GroupFilter: `displayName sw "cc-&x"`})
	if _, err := s.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	users, err := parseQuery(f.queries[0])
	if err != nil {
		t.Fatal(err)
	}
	if users["filter"] != `active eq true and emails[type eq "work"].value ew "@example.com"` {
		t.Errorf("users filter arrived as %q", users["filter"])
	}
	if strings.Contains(f.queries[0], "+") || strings.Contains(f.queries[0], " ") {
		t.Errorf("query not %%20-encoded: %s", f.queries[0])
	}
	groups, _ := parseQuery(f.queries[1])
	if groups["filter"] != `displayName sw "cc-&x"` {
		t.Errorf("groups filter arrived as %q", groups["filter"])
	}
}

func parseQuery(raw string) (map[string]string, error) {
	req, err := http.NewRequest("GET", "http://x/?"+raw, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range req.URL.Query() {
		out[k] = v[0]
	}
	return out, nil
}

func TestSCIMSourceMapping(t *testing.T) {
	f := &fakeSCIM{
		users: []map[string]any{{
			"schemas":      []string{"urn:ietf:params:scim:schemas:core:2.0:User", EnterpriseUserSchema},
			"id":           "u1",
			"externalId":   "E-1",
			"userName":     "ann@example.com",
			"name":         map[string]any{"givenName": "Ann", "familyName": "Archer", "formatted": "Ann Archer"},
			"active":       "False", // Entra ID style
			"title":        "Agent",
			"emails":       []any{map[string]any{"value": "ann.private@example.org", "type": "home"}, map[string]any{"value": "ann@example.com", "type": "work", "primary": "True"}},
			"phoneNumbers": []any{map[string]any{"value": "+49 30 1234567", "type": "work"}, map[string]any{"value": "0171 555", "type": "mobile"}},
			"groups": []any{
				map[string]any{"value": "g1", "display": "team", "type": "direct"},
				map[string]any{"value": "g-parent", "type": "indirect"},
			},
			"addresses": []any{map[string]any{"locality": "Berlin", "country": "DE", "type": "work"}},
			"meta":      map[string]any{"resourceType": "User"},
			EnterpriseUserSchema: map[string]any{
				"department":     "Support",
				"employeeNumber": 42,
				"manager":        map[string]any{"value": "u2", "displayName": "Bob", "$ref": "../Users/u2"},
			},
		}, {"id": "u2", "userName": "bob"}},
		groups: []map[string]any{
			{"id": "g1", "displayName": "team", "members": []any{
				map[string]any{"value": "u2", "type": "User"},
				map[string]any{"value": "g2", "$ref": "https://idp/scim/v2/Groups/g2"},
				map[string]any{"value": "g3"}, // untyped: found among the groups
				map[string]any{"value": "ghost", "type": "User"},
			}},
			{"id": "g2", "displayName": "sub", "members": []any{map[string]any{"value": "u1", "$ref": "https://idp/scim/v2/Users/u1"}}},
			{"id": "g3", "displayName": "other"},
		},
	}
	s, _ := newFakeSource(t, f, SCIMSourceConfig{})
	snap, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u := snap.User("u1")
	if u == nil {
		t.Fatal("u1 missing")
	}
	if u.Active || u.UserName != "ann@example.com" || u.ExternalID != "E-1" || u.DisplayName != "Ann Archer" ||
		u.GivenName != "Ann" || u.FamilyName != "Archer" {
		t.Errorf("core fields: %+v", u)
	}
	if u.PrimaryEmail() != "ann@example.com" || len(u.Emails) != 2 || u.PrimaryPhone() != "+49 30 1234567" || u.Phones[1].Type != "mobile" {
		t.Errorf("emails/phones: %+v %+v", u.Emails, u.Phones)
	}
	if !slices.Equal(u.Groups, []string{"g1", "g2"}) {
		t.Errorf("direct groups %v, want g1 (from the user, indirect ignored) and g2 (from the group)", u.Groups)
	}
	if got := snap.Memberships["u1"]; !slices.Equal(got, []string{"g1", "g2"}) {
		t.Errorf("transitive %v", got)
	}
	for key, want := range map[string]string{
		"title":                                       "Agent",
		"name.givenName":                              "Ann",
		"emails":                                      "ann.private@example.org",
		"emails.work":                                 "ann@example.com",
		"phoneNumbers.mobile":                         "0171 555",
		"addresses.locality":                          "Berlin",
		"groups.display":                              "team",
		"active":                                      "False",
		EnterpriseUserSchema + ":department":          "Support",
		EnterpriseUserSchema + ":employeeNumber":      "42",
		EnterpriseUserSchema + ":manager":             "u2",
		EnterpriseUserSchema + ":manager.value":       "u2",
		EnterpriseUserSchema + ":manager.displayName": "Bob",
		"enterprise.department":                       "Support",
		"enterprise.employeeNumber":                   "42",
		"enterprise.manager":                          "u2",
		"enterprise.manager.displayName":              "Bob",
		"ENTERPRISE.DEPARTMENT":                       "Support", // Attr ignores case
	} {
		if got := u.Attr(key); got != want {
			t.Errorf("Attr(%q) = %q, want %q", key, got, want)
		}
	}
	for _, k := range []string{"meta.resourceType", "schemas", EnterpriseUserSchema + ":manager.$ref"} {
		if _, ok := u.Attributes[k]; ok {
			t.Errorf("attribute %q should not be flattened", k)
		}
		if _, ok := u.Attributes[strings.ToLower(k)]; ok {
			t.Errorf("attribute %q should not be flattened", strings.ToLower(k))
		}
	}
	g1 := snap.Group("g1")
	if g1 == nil || !slices.Equal(g1.MemberUsers, []string{"u2", "ghost"}) || !slices.Equal(g1.MemberGroups, []string{"g2", "g3"}) {
		t.Errorf("g1 = %+v", g1)
	}
	if g2 := snap.Group("g2"); g2 == nil || !slices.Equal(g2.MemberUsers, []string{"u1"}) {
		t.Errorf("g2 = %+v ($ref /Users/ means a user)", g2)
	}
}

func TestSCIMSourceContextCancelled(t *testing.T) {
	f := &fakeSCIM{users: makeUsers(3)}
	f.status = func(int) (int, http.Header, string) { return 503, nil, "" }
	s, _ := newFakeSource(t, f, SCIMSourceConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	s.sleep = func(ctx context.Context, d time.Duration) error {
		cancel()
		return ctx.Err()
	}
	_, err := s.Read(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestSCIMSourceConfigValidate(t *testing.T) {
	err := (&SCIMSourceConfig{BaseURL: "ftp://x", PageSize: -1, Timeout: -time.Second, CAFile: "a.pem", InsecureSkipVerify: true}).Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"base_url:", "token:", "page_size:", "timeout:", "insecure_skip_verify:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	if err := (&SCIMSourceConfig{BaseURL: "https://idp/scim/v2", Token: "t", TokenFile: "f"}).Validate(); err == nil || !strings.Contains(err.Error(), "token_file:") {
		t.Errorf("token and token_file: %v", err)
	}
	if err := (&SCIMSourceConfig{BaseURL: "https://idp/scim/v2?x=1", Token: "t"}).Validate(); err == nil {
		t.Error("query in base_url accepted")
	}
	ok := SCIMSourceConfig{BaseURL: "https://idp.example.com/scim/v2", Token: "t"}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestSCIMSourceTokenFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token")
	if err := os.WriteFile(p, []byte("good-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := SCIMSourceConfig{TokenFile: p}
	if err := cfg.LoadSecrets(); err != nil || cfg.Token != "good-token" {
		t.Fatalf("LoadSecrets: %v, token %q", err, cfg.Token)
	}
	// NewSCIMSource loads it too, and the token works.
	f := &fakeSCIM{users: makeUsers(1)}
	s, _ := newFakeSource(t, f, SCIMSourceConfig{TokenFile: p})
	if _, err := s.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	cfg = SCIMSourceConfig{TokenFile: empty}
	if err := cfg.LoadSecrets(); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty token file: %v", err)
	}
	if _, err := NewSCIMSource(SCIMSourceConfig{BaseURL: "https://x/scim/v2", TokenFile: filepath.Join(dir, "missing")}, nil, nil); err == nil {
		t.Error("missing token file accepted")
	}
	if _, err := NewSCIMSource(SCIMSourceConfig{BaseURL: "https://x/scim/v2", Token: "t", CAFile: p}, nil, nil); err == nil || !strings.Contains(err.Error(), "no PEM") {
		t.Errorf("bad ca_file: %v", err)
	}
}

func TestSCIMSourceTLS(t *testing.T) {
	f := &fakeSCIM{users: makeUsers(2), token: "good-token"}
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	base := srv.URL + "/scim/v2"

	// An unknown certificate authority fails at once, saying so (no retries).
	s, err := NewSCIMSource(SCIMSourceConfig{BaseURL: base, Token: "good-token"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.sleep = func(context.Context, time.Duration) error { t.Error("retried a certificate error"); return nil }
	if _, err := s.Read(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a certificate error", err)
	}

	// ca_file makes it work.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pemCert(srv.Certificate().Raw), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = NewSCIMSource(SCIMSourceConfig{BaseURL: base, Token: "good-token", CAFile: caFile}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if snap, err := s.Read(context.Background()); err != nil || len(snap.Users) != 2 {
		t.Fatalf("with ca_file: %v", err)
	}
	// insecure_skip_verify too.
	s, err = NewSCIMSource(SCIMSourceConfig{BaseURL: base, Token: "good-token", InsecureSkipVerify: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(context.Background()); err != nil {
		t.Fatalf("insecure_skip_verify: %v", err)
	}
}

func TestSCIMSourceConnectionRefusedIsRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL + "/scim/v2"
	srv.Close() // nothing listens there any more
	s, err := NewSCIMSource(SCIMSourceConfig{BaseURL: base, Token: "t"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	attempts := 1
	s.sleep = func(context.Context, time.Duration) error { attempts++; return nil }
	_, err = s.Read(context.Background())
	if err == nil || attempts != scimMaxAttempts || !strings.Contains(err.Error(), "gave up after") {
		t.Fatalf("err = %v after %d attempts", err, attempts)
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
