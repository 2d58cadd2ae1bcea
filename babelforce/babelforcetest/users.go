package babelforcetest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/babelforce/bridge/babelforce"
)

// userRec is a login user: the Manager API (/api/v2/users) and SCIM (/auth/scim/v2/Users)
// both read and write this one store.
type userRec struct {
	id, email, externalID, displayName string
	name                               *babelforce.SCIMName
	roles                              []string
	enabled, activated                 bool
	emails, phones                     []babelforce.SCIMValue
	created, updated                   string
	version                            int
	passwordResets                     int
	seq                                int64
}

// managedUser is babelforce's ManagedUser.
type managedUser struct {
	ID              string                `json:"id"`
	Email           string                `json:"email"`
	Enabled         bool                  `json:"enabled"`
	Activated       bool                  `json:"activated"`
	PasswordExpired bool                  `json:"passwordExpired"`
	AccountExpired  bool                  `json:"accountExpired"`
	AccountLocked   bool                  `json:"accountLocked"`
	Roles           []string              `json:"roles"`
	Agent           *babelforce.UserAgent `json:"agent,omitempty"`
}

func (s *Server) managedUserLocked(u *userRec) managedUser {
	out := managedUser{ID: u.id, Email: u.email, Enabled: u.enabled, Activated: u.activated, Roles: nonNil(slices.Clone(u.roles))}
	if a := s.agentByEmailLocked(u.email); a != nil {
		out.Agent = &babelforce.UserAgent{UUID: a.id, Type: a.agentSource, SourceID: a.sourceID}
	}
	return out
}

func (s *Server) touchLocked(u *userRec) {
	u.updated = s.stamp()
	u.version++
}

func validRoles(roles []string) error {
	for _, r := range roles {
		if !slices.Contains(babelforce.Roles, r) {
			return fmt.Errorf("unknown role %q (babelforce knows %s)", r, strings.Join(babelforce.Roles, ", "))
		}
	}
	return nil
}

func addUnique(list []string, vals ...string) []string {
	for _, v := range vals {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// ---- Manager API users ----

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, _ params) {
	page, size, ok := s.pageParams(w, r)
	if !ok {
		return
	}
	emails := splitMulti(r.URL.Query()["email"])
	s.mu.Lock()
	hits := []*userRec(s.userOrder)
	if len(emails) > 0 {
		var l seqList[*userRec]
		for _, e := range emails {
			for _, u := range s.usersByEmail[strings.ToLower(e)] {
				l = l.insert(u)
			}
		}
		hits = l
	}
	// Render only the page.
	from, to, p := paginate(r, len(hits), page, size)
	items := make([]managedUser, 0, to-from)
	for _, u := range hits[from:to] {
		items = append(items, s.managedUserLocked(u))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "pagination": p})
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, _ params) {
	var body struct {
		Email     string    `json:"email"`
		Roles     *[]string `json:"roles"`
		Password  string    `json:"password"`
		Activated *bool     `json:"activated"`
	}
	if !s.decodeJSON(w, r, &body) {
		return
	}
	email := strings.ToLower(strings.TrimSpace(body.Email))
	switch {
	case email == "":
		s.writeError(w, r, http.StatusBadRequest, "validation_error", "email is required")
		return
	case !validEmail(email):
		s.writeError(w, r, http.StatusBadRequest, "validation_error", fmt.Sprintf("email %q is not a valid e-mail address", body.Email))
		return
	case body.Roles == nil:
		s.writeError(w, r, http.StatusBadRequest, "validation_error", "roles is required (an array of babelforce roles)")
		return
	}
	if err := validRoles(*body.Roles); err != nil {
		s.writeError(w, r, http.StatusBadRequest, "validation_error", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.userByEmailLocked(email); o != nil {
		s.fail(w, r, conflict("a user with email %q already exists (id %s)", email, o.id))
		return
	}
	act := body.Activated != nil && *body.Activated
	now := s.stamp()
	u := &userRec{id: newID(), email: email, roles: addUnique(nil, *body.Roles...), enabled: act, activated: act, created: now, updated: now, version: 1}
	s.addUserLocked(u)
	writeItem(w, http.StatusCreated, s.managedUserLocked(u))
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, p params) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[p["id"]]
	if !ok {
		s.fail(w, r, notFound("user %q not found", p["id"]))
		return
	}
	writeItem(w, http.StatusOK, s.managedUserLocked(u))
}

func (s *Server) getUserByEmail(w http.ResponseWriter, r *http.Request, p params) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userByEmailLocked(p["email"])
	if u == nil {
		s.fail(w, r, notFound("user with email %q not found", p["email"]))
		return
	}
	writeItem(w, http.StatusOK, s.managedUserLocked(u))
}

// usersAction is POST /api/v2/users/{enable|disable|delete|reset-password} {"emails": [...]}.
func (s *Server) usersAction(action string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ params) {
		var body struct {
			Emails []string `json:"emails"`
		}
		if !s.decodeJSON(w, r, &body) {
			return
		}
		if len(body.Emails) == 0 {
			s.writeError(w, r, http.StatusBadRequest, "validation_error", "emails is required (a non-empty array of e-mail addresses)")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		found := s.eachUserByEmailLocked(body.Emails, func(u *userRec) {
			switch action {
			case "enable":
				u.enabled = true
				s.touchLocked(u)
			case "disable":
				u.enabled = false
				s.touchLocked(u)
			case "delete":
				s.deleteUserLocked(u.id)
			case "reset-password":
				u.passwordResets++
			}
		})
		message(w, fmt.Sprintf("%s: %s", action, found))
	}
}

// eachUserByEmailLocked runs fn on the user of each e-mail address and describes the outcome:
// "N user(s)", followed by "; not found: a, b" for addresses without a user.
func (s *Server) eachUserByEmailLocked(emails []string, fn func(*userRec)) string {
	var done int
	var unknown []string
	for _, e := range emails {
		u := s.userByEmailLocked(e)
		if u == nil {
			unknown = append(unknown, e)
			continue
		}
		done++
		fn(u)
	}
	out := fmt.Sprintf("%d user(s)", done)
	if len(unknown) > 0 {
		out += "; not found: " + strings.Join(unknown, ", ")
	}
	return out
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request, _ params) {
	writeJSON(w, http.StatusOK, map[string]any{"items": babelforce.Roles})
}

// userRoles is POST /api/v2/users/roles (add) and /api/v2/users/roles/remove.
func (s *Server) userRoles(add bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ params) {
		var body struct {
			Emails []string `json:"emails"`
			Roles  []string `json:"roles"`
		}
		if !s.decodeJSON(w, r, &body) {
			return
		}
		if len(body.Emails) == 0 || len(body.Roles) == 0 {
			s.writeError(w, r, http.StatusBadRequest, "validation_error", "emails and roles are required (non-empty arrays)")
			return
		}
		if err := validRoles(body.Roles); err != nil {
			s.writeError(w, r, http.StatusBadRequest, "validation_error", err.Error())
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		found := s.eachUserByEmailLocked(body.Emails, func(u *userRec) {
			if add {
				u.roles = addUnique(u.roles, body.Roles...)
			} else {
				u.roles = slices.DeleteFunc(u.roles, func(r string) bool { return slices.Contains(body.Roles, r) })
			}
			s.touchLocked(u)
		})
		verb := "added to"
		if !add {
			verb = "removed from"
		}
		message(w, fmt.Sprintf("roles %s %s", verb, found))
	}
}
