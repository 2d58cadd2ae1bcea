package directory

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fuzzMaxRequests bounds the requests one Read may make to the fuzz server: far more than an
// honest paging of its few resources needs, so exceeding it means an endless paging loop.
const fuzzMaxRequests = 500

// FuzzSCIMSourceRead serves fuzzed /Users and /Groups answers to the upstream SCIM source.
// Each of users and groups is either a JSON array of resources, which the server pages
// honestly (startIndex and count) under the fuzzed totalResults (negative: left out), or,
// when it is not an array, the raw body of every answer (a broken server). status picks an
// error status for some requests. Read never panics, never loops without end, and returns
// either an error or a snapshot whose users and groups have unique, non-empty ids and whose
// memberships name only groups it holds.
func FuzzSCIMSourceRead(f *testing.F) {
	user := func(id, name string) string {
		return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"` + id + `","userName":"` + name +
			`","active":true,"emails":[{"value":"` + name + `@example.com","primary":true}],"groups":[{"value":"g1","type":"direct"}]}`
	}
	users := "[" + user("u1", "ann") + "," + user("u2", "bob") + "," + user("u3", "cy") + "]"
	groups := `[{"id":"g1","displayName":"team","members":[{"value":"u1","type":"User"},{"value":"g2","$ref":"https://x/Groups/g2"},{"value":"nobody"}]},` +
		`{"id":"g2","displayName":"nested","members":[{"value":"u2"},{"value":"g1","type":"Group"}]}]`
	f.Add(users, groups, 3, 2, byte(0))
	f.Add(users, groups, -1, -1, byte(0))
	f.Add(users, groups, 5, 2, byte(0))
	f.Add(users, groups, 1, 0, byte(0))
	f.Add(users, groups, 3, 2, byte(3)) // some 500s, then success
	f.Add(users, groups, 3, 2, byte(0x85))
	f.Add(`[{"id":"u1","userName":"a"},{"id":"u1","userName":"b"}]`, `[]`, 2, 0, byte(0))
	f.Add(`[{"Id":"u2","id":"u1","userName":"a"},{"id":"u2","userName":"b"}]`, `[]`, 2, 0, byte(0))
	f.Add(`[{"userName":"no id"}]`, `[]`, 1, 0, byte(0))
	f.Add(`[null]`, `[]`, 1000000, 0, byte(0))
	f.Add(`[{"userName":"no id"}]`, `[]`, 1000000000, 0, byte(0))
	f.Add(`[{"id":"u1","active":"False"},{"id":"u2","active":"maybe"}]`, `[]`, 2, 0, byte(0))
	f.Add(`[{"id":"u1","emails":"x","phoneNumbers":{"value":1},"name":[1],"groups":[{"value":5}]}]`, `[]`, 1, 0, byte(0))
	f.Add(`[{"id":"u1"}]`, `[{"id":"","displayName":"x"}]`, 1, 1, byte(0))
	f.Add(`[{"id":"u1"}]`, `[{"id":"g1","members":"u1"}]`, 1, 1, byte(0))
	f.Add(`[{"id":"u1"}]`, `[{"id":"g1","members":[{"value":"g1","type":"Group"}]}]`, 1, 1, byte(0))
	f.Add(`[{"id":"x"}]`, `[{"id":"x","members":[{"value":"x"}]}]`, 1, 1, byte(0))
	f.Add(`{"totalResults":1,"Resources":[{"id":"u1"}]}`, `{"totalResults":0,"Resources":[]}`, 0, 0, byte(0))
	f.Add(`{"totalResults":5,"Resources":[{"id":"u1"}]}`, `{}`, 0, 0, byte(0))
	f.Add(`{"totalResults":-5}`, `{}`, 0, 0, byte(0))
	f.Add(`{"totalResults":1000000,"Resources":[{"userName":"no id"}]}`, `{}`, 0, 0, byte(0))
	f.Add(`{"totalResults":1000000,"Resources":[null]}`, `{}`, 0, 0, byte(0))
	f.Add(`{"totalResults":3,"Resources":[{"id":"u1","groups":[{"value":"gX"}]}]}`, `{"totalResults":1,"Resources":[{"id":"g1"}]}`, 0, 0, byte(0))
	f.Add(`[{"id":"u1","groups":[{"value":"gX"},{"value":"g1","type":"indirect"}]}]`, `[{"id":"g1"}]`, 1, 1, byte(0))
	f.Add(`{"totalResults":1e99}`, `{}`, 0, 0, byte(0))
	f.Add(`{"totalResults":"3","Resources":{}}`, `null`, 0, 0, byte(0))
	f.Add(`not json`, `[]`, 0, 0, byte(0))
	f.Add("\xff\xfe", `[]`, 0, 0, byte(0))
	f.Add(`[`+strings.Repeat(`[`, 5000)+`]`, `[]`, 0, 0, byte(0))
	f.Add(`[{"id":"\u0000"},{"id":"\ud800"}]`, `[]`, 2, 0, byte(0))
	f.Fuzz(func(t *testing.T, users, groups string, usersTotal, groupsTotal int, status byte) {
		var requests atomic.Int64
		mux := http.NewServeMux()
		serve := func(body string, total int) http.HandlerFunc {
			var list []json.RawMessage
			paged := json.Unmarshal([]byte(body), &list) == nil && strings.HasPrefix(strings.TrimSpace(body), "[")
			return func(w http.ResponseWriter, r *http.Request) {
				n := requests.Add(1)
				if n > fuzzMaxRequests {
					w.WriteHeader(http.StatusTeapot) // stop the loop; the test fails below
					return
				}
				// status: bit 7 answers 401 to every request; bits 0-1 give every request
				// whose number is a multiple of 2..4 a 500 (retried by the source)
				if status&0x80 != 0 {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				if m := int64(status&3) + 1; m > 1 && n%m == 0 {
					w.Header().Set("Retry-After", "1e19")
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				w.Header().Set("Content-Type", "application/scim+json")
				if !paged {
					_, _ = w.Write([]byte(body))
					return
				}
				start, _ := strconv.Atoi(r.URL.Query().Get("startIndex"))
				count, _ := strconv.Atoi(r.URL.Query().Get("count"))
				from := min(max(start-1, 0), len(list))
				to := min(from+max(count, 0), len(list))
				resp := map[string]any{
					"schemas":      []string{"urn:ietf:params:scim:api:messages:2.0:ListResponse"},
					"startIndex":   start,
					"itemsPerPage": to - from,
					"Resources":    list[from:to],
				}
				if total >= 0 {
					resp["totalResults"] = total
				}
				_ = json.NewEncoder(w).Encode(resp)
			}
		}
		mux.Handle("/scim/v2/Users", serve(users, usersTotal))
		mux.Handle("/scim/v2/Groups", serve(groups, groupsTotal))
		srv := httptest.NewServer(mux)
		defer srv.Close()
		src, err := NewSCIMSource(SCIMSourceConfig{BaseURL: srv.URL + "/scim/v2", Token: "t", PageSize: 2, Timeout: 10 * time.Second}, nil, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		src.sleep = func(ctx context.Context, d time.Duration) error {
			if d < 0 {
				return fmt.Errorf("asked to sleep a negative %s", d)
			}
			return ctx.Err()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		snap, err := src.Read(ctx)
		if n := requests.Load(); n > fuzzMaxRequests {
			t.Fatalf("Read made more than %d requests (an endless paging loop); error %v", fuzzMaxRequests, err)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			if strings.Contains(err.Error(), "negative") && strings.Contains(err.Error(), "sleep") {
				t.Fatal(err)
			}
			return
		}
		userIDs := map[string]bool{}
		for _, u := range snap.Users {
			if u.ID == "" {
				t.Fatalf("user %q without an id", u.UserName)
			}
			if userIDs[u.ID] {
				t.Fatalf("user id %q twice", u.ID)
			}
			userIDs[u.ID] = true
		}
		groupIDs := map[string]bool{}
		for _, g := range snap.Groups {
			if g.ID == "" || groupIDs[g.ID] {
				t.Fatalf("group %q: empty or repeated id %q", g.Name, g.ID)
			}
			groupIDs[g.ID] = true
		}
		for uid, gids := range snap.Memberships {
			if !userIDs[uid] {
				t.Fatalf("memberships of unknown user %q", uid)
			}
			if !slices.IsSorted(gids) {
				t.Fatalf("memberships of %q not sorted: %q", uid, gids)
			}
			for _, g := range gids {
				if !groupIDs[g] {
					t.Fatalf("user %q is a member of unknown group %q", uid, g)
				}
			}
		}
	})
}

// FuzzSCIMUser converts arbitrary JSON objects with SCIMUser (the conversion the upstream
// SCIM source and the store of pushed users share): never a panic; an error exactly when the
// id is missing; an active that is not a boolean never active and named in Invalid; the attributes flattened with lower-case names and
// no repeated values, never a password; the same result twice.
func FuzzSCIMUser(f *testing.F) {
	for _, s := range []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		  "id":"u1","userName":"Ann","externalId":"e1","displayName":"Ann A","active":"False","password":"secret",
		  "name":{"givenName":"Ann","familyName":"A","formatted":"Ann A"},
		  "emails":[{"value":"ann@x","type":"work","primary":true},{"value":"ann@x","type":"home"},{"formatted":"f@x"}],
		  "phoneNumbers":[{"value":"+49 30 1","type":"work","primary":"True"}],
		  "groups":[{"value":"g1","display":"G","type":"direct"},{"value":"g2","type":"indirect"},{"value":"g3"}],
		  "addresses":[{"type":"work","locality":"Berlin"}],
		  "meta":{"version":"W/\"1\""},
		  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales","manager":{"value":"m1","displayName":"M","$ref":"../Users/m1"}}}`,
		`{"ID":"u2","USERNAME":"b","Active":true,"EMAILS":[{"VALUE":"B@X"}]}`,
		`{"id":"","userName":"x"}`,
		`{"userName":"no id"}`,
		`{"id":5}`,
		`{"id":"u","active":"maybe"}`,
		`{"id":"u","active":1}`,
		`{"id":"u","active":null}`,
		`{"id":"u","emails":"x","phoneNumbers":{"value":1},"name":[1],"groups":[{"value":5},null,"g"]}`,
		`{"id":"u","emails":[{"value":["a","b"],"primary":{"x":1}}]}`,
		`{"id":"u","x":{"y":{"z":{"w":[[[1]]]}}},"n":1e400,"m":-0,"b":false}`,
		`{"id":"u","urn:x:y":{"a":{"b":"c"}},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":"flat"}`,
		`{"id":"u","userName":"` + "\xff\xfe" + `","displayName":"\u0000"}`,
		`{"id":"u","id ":"v","Id":"w"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil || m == nil {
			return
		}
		u, err := SCIMUser(m)
		again, err2 := SCIMUser(m)
		if (err == nil) != (err2 == nil) || fmt.Sprint(u) != fmt.Sprint(again) {
			t.Fatalf("SCIMUser differs between two calls: %v / %v\n%+v\n%+v", err, err2, u, again)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
		} else if u.ID == "" {
			t.Fatalf("no error but no id: %+v", u)
		}
		if u.Invalid != "" && u.Active {
			t.Fatalf("active although it cannot be read (%s): %+v", u.Invalid, u)
		}
		for k, vals := range u.Attributes {
			if k != strings.ToLower(k) {
				t.Fatalf("attribute name %q not lower-case", k)
			}
			if k == "password" || strings.HasSuffix(k, ".password") {
				t.Fatalf("password copied into attribute %q", k)
			}
			seen := map[string]bool{}
			for _, v := range vals {
				if seen[v] {
					t.Fatalf("attribute %q repeats %q: %q", k, v, vals)
				}
				seen[v] = true
			}
		}
	})
}
