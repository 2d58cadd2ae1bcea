package babelforcetest

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/babelforce/babelforcetest/spectest"
)

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestSpecMatchesRoutes checks that the trimmed spec loads and validates, and that it holds
// exactly the simulator's API routes (every route in the spec, every spec operation served).
func TestSpecMatchesRoutes(t *testing.T) {
	doc := spectest.LoadT(t)
	sim := NewServer(Options{})
	served := map[string]bool{}
	for _, rt := range sim.routes {
		if strings.HasPrefix(rt.template, "/_simulator/") {
			continue
		}
		tmpl := rt.template
		switch {
		case tmpl == "/api/v2/tags/agent":
			continue // served as a literal of /api/v2/tags/{category}
		case strings.HasPrefix(tmpl, "/api/v2/agents/bulk/"):
			tmpl = "/api/v2/agents/bulk/{bulkAction}"
		case strings.HasPrefix(tmpl, "/auth/scim/v2/Groups") && (rt.method != http.MethodGet || tmpl != "/auth/scim/v2/Groups"):
			continue // answered 501; only GET /Groups is documented
		}
		key := rt.method + " " + tmpl
		served[key] = true
		item := doc.Paths.Find(tmpl)
		if item == nil || item.GetOperation(rt.method) == nil {
			t.Errorf("simulator serves %s, the trimmed spec does not document it", key)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !served[method+" "+path] {
				t.Errorf("spec documents %s %s, the simulator does not serve it", method, path)
			}
		}
	}
}

func TestTokenAndAuth(t *testing.T) {
	clock := newClock()
	sim := New(t, Options{Now: clock.Now, TokenTTL: time.Hour})
	a := newAPI(t, sim)

	// wrong password, wrong client, unsupported grant
	res := a.form("/oauth/token", url.Values{"grant_type": {"password"}, "username": {sim.Username}, "password": {"nope"}, "client_id": {"manager"}}).want(http.StatusBadRequest)
	if got := res.obj()["error"]; got != "invalid_grant" {
		t.Errorf("wrong password: error %v, want invalid_grant", got)
	}
	res = a.form("/oauth/token", url.Values{"grant_type": {"password"}, "username": {sim.Username}, "password": {sim.Password}, "client_id": {"other"}}).want(http.StatusBadRequest)
	if got := res.obj()["error"]; got != "invalid_client" {
		t.Errorf("wrong client: error %v, want invalid_client", got)
	}
	a.form("/oauth/token", url.Values{"grant_type": {"authorization_code"}}).want(http.StatusBadRequest)

	// no token, garbage token
	a.get("/api/v2/agents", withToken("")).want(http.StatusUnauthorized)
	res = a.get("/api/v2/agents", withToken("garbage")).want(http.StatusUnauthorized)
	if m := res.obj(); m["error"] == nil || m["message"] == nil {
		t.Errorf("401 body %s lacks error/message", res.Body)
	}
	if res.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}

	// password grant
	res = a.form("/oauth/token", url.Values{"grant_type": {"password"}, "username": {strings.ToUpper(sim.Username)}, "password": {sim.Password}, "client_id": {"manager"}}).want(http.StatusOK)
	var tok tokenResponse
	res.decode(&tok)
	if tok.TokenType != "bearer" || tok.ExpiresIn != 3600 || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token response %+v", tok)
	}
	a.token = tok.AccessToken
	a.get("/api/v2/agents").want(http.StatusOK)

	// expiry with the injected clock
	clock.Advance(59 * time.Minute)
	a.get("/api/v2/agents").want(http.StatusOK)
	clock.Advance(time.Minute)
	a.get("/api/v2/agents").want(http.StatusUnauthorized)

	// refresh rotates: the old refresh token is spent
	res = a.form("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}).want(http.StatusOK)
	var tok2 tokenResponse
	res.decode(&tok2)
	a.token = tok2.AccessToken
	a.get("/api/v2/agents").want(http.StatusOK)
	a.form("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}).want(http.StatusBadRequest)

	// the static SCIM token works everywhere and does not expire
	clock.Advance(1000 * time.Hour)
	a.get("/api/v2/agents", withToken(sim.SCIMToken)).want(http.StatusOK)
	a.get("/auth/scim/v2/Users", withToken(sim.SCIMToken)).want(http.StatusOK)
	res = a.get("/auth/scim/v2/Users", withToken("")).want(http.StatusUnauthorized)
	if m := res.obj(); m["status"] != "401" {
		t.Errorf("SCIM 401 body %s is not a SCIM error", res.Body)
	}
	// form-encoding is required
	a.post("/oauth/token", map[string]string{"grant_type": "password"}, invalidRequest()).want(http.StatusBadRequest)
}

func TestAgentsCRUD(t *testing.T) {
	sim := New(t, Options{})
	a := newAPI(t, sim).login()

	res := a.post("/api/v2/agents", map[string]any{"name": "Ann Example", "email": "Ann@Example.com", "number": "+4930123", "tags": []string{"de", "sales", "de"}, "sourceId": "u-1", "agentSource": "bridge"}).want(http.StatusCreated)
	var created struct {
		Item    babelforce.Agent `json:"item"`
		Success bool             `json:"success"`
	}
	res.decode(&created)
	ag := created.Item
	if !created.Success || !hexID.MatchString(ag.ID) || ag.Name != "Ann Example" || !ag.IsEnabled() || ag.Enabled == nil || !slices.Equal(ag.Tags, []string{"de", "sales"}) {
		t.Fatalf("created %+v", created)
	}

	// duplicate e-mail, case-insensitively
	res = a.post("/api/v2/agents", map[string]any{"name": "Other", "email": "ann@example.COM"}).want(http.StatusConflict)
	if m := res.obj(); m["success"] != false || m["code"] == nil || m["message"] == nil {
		t.Errorf("409 body %s", res.Body)
	}
	// name required; the spec says so too
	a.post("/api/v2/agents", map[string]any{"email": "x@example.com"}, invalidRequest()).want(http.StatusBadRequest)
	a.post("/api/v2/agents", map[string]any{"name": "  "}).want(http.StatusBadRequest)
	a.post("/api/v2/agents", map[string]any{"name": "Bad", "email": "not-an-email"}, invalidRequest()).want(http.StatusBadRequest)
	// malformed JSON
	res = a.post("/api/v2/agents", nil, rawBody(`{"name":`), invalidRequest()).want(http.StatusBadRequest)
	if !strings.Contains(res.obj()["message"].(string), "JSON") {
		t.Errorf("malformed JSON message: %s", res.Body)
	}
	a.post("/api/v2/agents", nil, rawBody(`name=x`), withContentType("text/plain"), invalidRequest()).want(http.StatusUnsupportedMediaType)

	// get; hyphenated id is not found
	a.get("/api/v2/agents/" + ag.ID).want(http.StatusOK)
	hyph := ag.ID[:8] + "-" + ag.ID[8:12] + "-" + ag.ID[12:16] + "-" + ag.ID[16:20] + "-" + ag.ID[20:]
	a.get("/api/v2/agents/" + hyph).want(http.StatusNotFound)
	a.get("/api/v2/agents/" + strings.Repeat("0", 32)).want(http.StatusNotFound)

	// partial PUT changes only what is present
	res = a.put("/api/v2/agents/"+ag.ID, map[string]any{"number": "+4930999"}).want(http.StatusOK)
	var upd struct {
		Item babelforce.Agent `json:"item"`
	}
	res.decode(&upd)
	if upd.Item.Number != "+4930999" || upd.Item.Name != "Ann Example" || upd.Item.Email != "Ann@Example.com" || !slices.Equal(upd.Item.Tags, []string{"de", "sales"}) || upd.Item.SourceID != "u-1" {
		t.Errorf("after partial PUT: %+v", upd.Item)
	}
	res = a.put("/api/v2/agents/"+ag.ID, map[string]any{"tags": []string{"fr"}}).want(http.StatusOK)
	res.decode(&upd)
	if !slices.Equal(upd.Item.Tags, []string{"fr"}) || upd.Item.Number != "+4930999" {
		t.Errorf("tags replace: %+v", upd.Item)
	}
	res = a.put("/api/v2/agents/"+ag.ID, map[string]any{"tags": []string{}}).want(http.StatusOK)
	upd.Item = babelforce.Agent{}
	res.decode(&upd)
	if len(upd.Item.Tags) != 0 {
		t.Errorf("tags cleared: %+v", upd.Item)
	}
	// PUT to an e-mail another agent holds
	b := sim.PutAgent(babelforce.Agent{Name: "Bob", Email: "bob@example.com"})
	a.put("/api/v2/agents/"+ag.ID, map[string]any{"email": "BOB@example.com"}).want(http.StatusConflict)
	a.put("/api/v2/agents/"+hyph, map[string]any{"name": "x"}).want(http.StatusNotFound)

	// enable/disable
	res = a.put("/api/v2/agents/"+ag.ID+"/disable", nil).want(http.StatusOK)
	if m := res.obj(); m["success"] != true {
		t.Errorf("disable: %s", res.Body)
	}
	if got, _ := sim.Agent(ag.ID); got.IsEnabled() {
		t.Error("agent still enabled after disable")
	}
	a.put("/api/v2/agents/"+ag.ID+"/enable", nil).want(http.StatusOK)
	if got, _ := sim.Agent(ag.ID); !got.IsEnabled() {
		t.Error("agent disabled after enable")
	}
	a.put("/api/v2/agents/"+hyph+"/enable", nil).want(http.StatusNotFound)

	// bulk
	res = a.post("/api/v2/agents/bulk/disable", map[string]any{"ids": []string{ag.ID, b.ID, strings.Repeat("a", 32)}}).want(http.StatusOK)
	var bulk struct {
		Bulk []bulkResult `json:"bulk"`
	}
	res.decode(&bulk)
	if len(bulk.Bulk) != 3 || !bulk.Bulk[0].Success || !bulk.Bulk[1].Success || bulk.Bulk[2].Success || bulk.Bulk[2].Error == "" || bulk.Bulk[0].Item == nil || bulk.Bulk[0].Item.IsEnabled() {
		t.Errorf("bulk disable: %s", res.Body)
	}
	res = a.get("/api/v2/agents?enabled=false").want(http.StatusOK)
	if n := len(res.obj()["items"].([]any)); n != 2 {
		t.Errorf("enabled=false lists %d agents, want 2", n)
	}
	a.post("/api/v2/agents/bulk/enable", map[string]any{"ids": []string{ag.ID}}).want(http.StatusOK)
	a.post("/api/v2/agents/bulk/enable", map[string]any{}, invalidRequest()).want(http.StatusBadRequest)

	// delete
	a.del("/api/v2/agents/" + ag.ID).want(http.StatusOK)
	a.get("/api/v2/agents/" + ag.ID).want(http.StatusNotFound)
	a.del("/api/v2/agents/" + ag.ID).want(http.StatusNotFound)
	if n := len(sim.Agents()); n != 1 {
		t.Errorf("%d agents left, want 1", n)
	}

	// unknown route: JSON 404
	res = a.get("/api/v2/nothing-here", unspecified()).want(http.StatusNotFound)
	if m := res.obj(); m["success"] != false {
		t.Errorf("unknown route body %s", res.Body)
	}
}

func TestAgentFilters(t *testing.T) {
	sim := New(t, Options{})
	a := newAPI(t, sim).login()
	f := false
	sim.PutAgent(babelforce.Agent{Name: "Ann", Email: "ann@example.com", Number: "+491", SourceID: "s-ann", AgentSource: "ldap", Tags: []string{"de"}, Groups: []babelforce.GroupRef{{Name: "Support"}}})
	sim.PutAgent(babelforce.Agent{Name: "Bob", Email: "bob@example.com", Number: "+492", SourceID: "s-bob", AgentSource: "scim", Tags: []string{"fr"}, Enabled: &f})
	sim.PutAgent(babelforce.Agent{Name: "Cleo Annex", Email: "cleo@example.org", SourceID: "s-cleo", AgentSource: "ldap", Tags: []string{"de", "fr"}})
	groupID := sim.AgentGroups()[0].ID
	names := func(query string) string {
		t.Helper()
		var l struct {
			Items []babelforce.Agent `json:"items"`
		}
		a.get("/api/v2/agents?" + query).want(http.StatusOK).decode(&l)
		var out []string
		for _, ag := range l.Items {
			out = append(out, ag.Name)
		}
		return strings.Join(out, ",")
	}
	for query, want := range map[string]string{
		"":                         "Ann,Bob,Cleo Annex",
		"sourceId=s-bob":           "Bob",
		"source=ldap":              "Ann,Cleo Annex",
		"q=ann":                    "Ann,Cleo Annex",
		"q=support":                "Ann",
		"q=example.org":            "Cleo Annex",
		"q=%2B492":                 "Bob",
		"q=s-cleo":                 "Cleo Annex",
		"enabled=true":             "Ann,Cleo Annex",
		"enabled=false":            "Bob",
		"name=bo":                  "Bob",
		"number=%2B491":            "Ann",
		"tags=fr":                  "Bob,Cleo Annex",
		"tags=de&tags=fr":          "Ann,Bob,Cleo Annex",
		"groupIds=" + groupID:      "Ann",
		"groups=Support":           "Ann",
		"source=ldap&enabled=true": "Ann,Cleo Annex",
		"sourceId=none":            "",
	} {
		if got := names(query); got != want {
			t.Errorf("?%s: %q, want %q", query, got, want)
		}
	}
	a.get("/api/v2/agents?enabled=maybe", invalidRequest()).want(http.StatusBadRequest)
	a.get("/api/v2/agents?page=0").want(http.StatusBadRequest)
	a.get("/api/v2/agents?max=abc", invalidRequest()).want(http.StatusBadRequest)
}

func TestAgentPaging1000(t *testing.T) {
	sim := New(t, Options{})
	a := newAPI(t, sim).login()
	var want []string
	for i := range 1000 {
		want = append(want, sim.PutAgent(babelforce.Agent{Name: fmt.Sprintf("Agent %04d", i), Email: fmt.Sprintf("a%04d@example.com", i)}).ID)
	}
	var got []string
	for page := 1; page <= 11; page++ {
		var l struct {
			Items      []babelforce.Agent `json:"items"`
			Pagination pagination         `json:"pagination"`
		}
		a.get(fmt.Sprintf("/api/v2/agents?page=%d&max=100", page)).want(http.StatusOK).decode(&l)
		p := l.Pagination
		if p.Current != page || p.Max != 100 || p.MaxResults != 100 || p.Pages != 10 || p.Total != 1000 {
			t.Errorf("page %d: pagination %+v", page, p)
		}
		switch {
		case page <= 10 && len(l.Items) != 100:
			t.Errorf("page %d: %d items, want 100", page, len(l.Items))
		case page == 11 && len(l.Items) != 0:
			t.Errorf("page 11: %d items, want 0", len(l.Items))
		}
		if page < 10 {
			wantNext := fmt.Sprintf("/api/v2/agents?max=100&page=%d", page+1)
			if p.Next != wantNext {
				t.Errorf("page %d: next %q, want %q", page, p.Next, wantNext)
			}
		} else if p.Next != "" {
			t.Errorf("page %d: next %q, want none", page, p.Next)
		}
		for _, ag := range l.Items {
			got = append(got, ag.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("paging returned %d ids, not the %d agents in creation order", len(got), len(want))
	}
	// defaults and the cap
	var l struct {
		Items      []babelforce.Agent `json:"items"`
		Pagination pagination         `json:"pagination"`
	}
	a.get("/api/v2/agents").want(http.StatusOK).decode(&l)
	if len(l.Items) != 10 || l.Pagination.Max != 10 || l.Pagination.Pages != 100 {
		t.Errorf("default page: %d items, %+v", len(l.Items), l.Pagination)
	}
	a.get("/api/v2/agents?max=5000").want(http.StatusOK).decode(&l)
	if len(l.Items) != 100 || l.Pagination.Max != 100 {
		t.Errorf("capped page: %d items, %+v", len(l.Items), l.Pagination)
	}
}

func TestAgentGroups(t *testing.T) {
	sim := New(t, Options{})
	a := newAPI(t, sim).login()
	ann := sim.PutAgent(babelforce.Agent{Name: "Ann", Email: "ann@example.com"})
	bob := sim.PutAgent(babelforce.Agent{Name: "Bob", Email: "bob@example.com"})

	var g struct {
		Item babelforce.AgentGroup `json:"item"`
	}
	a.post("/api/v2/agents/groups", map[string]any{"name": "Support", "tags": []string{"tier1"}}).want(http.StatusCreated).decode(&g)
	if !hexID.MatchString(g.Item.ID) || g.Item.Name != "Support" {
		t.Fatalf("created group %+v", g.Item)
	}
	gid := g.Item.ID
	a.post("/api/v2/agents/groups", map[string]any{"name": "support"}).want(http.StatusConflict)
	a.post("/api/v2/agents/groups", map[string]any{"tags": []string{"x"}}, invalidRequest()).want(http.StatusBadRequest)
	var g2 struct {
		Item babelforce.AgentGroup `json:"item"`
	}
	a.post("/api/v2/agents/groups", map[string]any{"name": "Sales"}).want(http.StatusCreated).decode(&g2)
	a.put("/api/v2/agents/groups/"+g2.Item.ID, map[string]any{"name": "SUPPORT"}).want(http.StatusConflict)
	a.put("/api/v2/agents/groups/"+g2.Item.ID, map[string]any{"tags": []string{"b2b"}}).want(http.StatusOK).decode(&g2)
	if g2.Item.Name != "Sales" || !slices.Equal(g2.Item.Tags, []string{"b2b"}) {
		t.Errorf("partial group PUT: %+v", g2.Item)
	}
	a.get("/api/v2/agents/groups/" + gid).want(http.StatusOK)
	a.get("/api/v2/agents/groups/" + gid[:8] + "-" + gid[8:]).want(http.StatusNotFound)

	var l struct {
		Items      []babelforce.AgentGroup `json:"items"`
		Pagination pagination              `json:"pagination"`
	}
	a.get("/api/v2/agents/groups?max=1").want(http.StatusOK).decode(&l)
	if len(l.Items) != 1 || l.Items[0].ID != gid || l.Pagination.Total != 2 || l.Pagination.Pages != 2 {
		t.Errorf("group list page 1: %+v", l)
	}

	// membership
	res := a.post("/api/v2/agents/groups/"+gid+"/agents", map[string]any{"id": ann.ID}).want(http.StatusOK)
	if m := res.obj(); m["success"] != true || m["agent"] == nil || m["item"] == nil {
		t.Errorf("add member: %s", res.Body)
	}
	a.post("/api/v2/agents/groups/"+gid+"/agents", map[string]any{"id": ann.ID}).want(http.StatusOK) // idempotent
	a.post("/api/v2/agents/groups/"+gid+"/agents", map[string]any{"id": bob.ID}).want(http.StatusOK)
	a.post("/api/v2/agents/groups/"+gid+"/agents", map[string]any{"id": strings.Repeat("b", 32)}).want(http.StatusNotFound)
	a.post("/api/v2/agents/groups/"+strings.Repeat("c", 32)+"/agents", map[string]any{"id": ann.ID}).want(http.StatusNotFound)
	var members struct {
		Items []babelforce.Agent `json:"items"`
	}
	a.get("/api/v2/agents/groups/" + gid + "/agents").want(http.StatusOK).decode(&members)
	if len(members.Items) != 2 || members.Items[0].ID != ann.ID || members.Items[1].ID != bob.ID {
		t.Errorf("members %+v", members.Items)
	}
	var got struct {
		Item babelforce.Agent `json:"item"`
	}
	a.get("/api/v2/agents/" + ann.ID).want(http.StatusOK).decode(&got)
	if len(got.Item.Groups) != 1 || got.Item.Groups[0].ID != gid || got.Item.Groups[0].Name != "Support" {
		t.Errorf("agent groups %+v", got.Item.Groups)
	}
	// PUT groups on the agent replaces memberships (the spec's RestUpdateAgent has groups)
	a.put("/api/v2/agents/"+ann.ID, map[string]any{"groups": []map[string]string{{"id": g2.Item.ID}}}).want(http.StatusOK).decode(&got)
	if len(got.Item.Groups) != 1 || got.Item.Groups[0].ID != g2.Item.ID {
		t.Errorf("agent groups after PUT %+v", got.Item.Groups)
	}
	a.put("/api/v2/agents/"+ann.ID, map[string]any{"groups": []map[string]string{{"id": gid}}}).want(http.StatusOK)

	res = a.del("/api/v2/agents/groups/" + gid + "/agents/" + ann.ID).want(http.StatusOK)
	if m := res.obj(); m["item"] == nil {
		t.Errorf("remove member: %s", res.Body)
	}
	a.del("/api/v2/agents/groups/" + gid + "/agents/" + ann.ID).want(http.StatusNotFound)
	if m := sim.AgentGroupMembers(gid); !slices.Equal(m, []string{bob.ID}) {
		t.Errorf("members after remove %v", m)
	}

	a.del("/api/v2/agents/groups/" + gid).want(http.StatusOK)
	a.get("/api/v2/agents/groups/" + gid).want(http.StatusNotFound)
	got.Item = babelforce.Agent{}
	a.get("/api/v2/agents/" + bob.ID).want(http.StatusOK).decode(&got)
	if len(got.Item.Groups) != 0 {
		t.Errorf("bob still in a deleted group: %+v", got.Item.Groups)
	}
}

func TestTags(t *testing.T) {
	sim := New(t, Options{})
	a := newAPI(t, sim).login()
	sim.PutAgent(babelforce.Agent{Name: "Ann", Tags: []string{"sales", "de"}})
	sim.PutAgent(babelforce.Agent{Name: "Bob", Tags: []string{"de", "fr"}})
	var l struct {
		Items   []map[string]string `json:"items"`
		Success bool                `json:"success"`
	}
	a.get("/api/v2/tags/agent").want(http.StatusOK).decode(&l)
	var names []string
	for _, it := range l.Items {
		names = append(names, it["name"])
	}
	if !slices.Equal(names, []string{"de", "fr", "sales"}) || !l.Success {
		t.Errorf("tags %+v", l)
	}
	a.get("/api/v2/tags/number").want(http.StatusOK).decode(&l)
	if len(l.Items) != 0 {
		t.Errorf("number tags %+v", l.Items)
	}
}
