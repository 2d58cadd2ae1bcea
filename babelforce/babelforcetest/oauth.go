package babelforcetest

import (
	"crypto/subtle"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// token is POST /oauth/token (RFC 6749): password and refresh_token grants.
func (s *Server) token(w http.ResponseWriter, r *http.Request, _ params) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: "send the token request form-encoded (application/x-www-form-urlencoded)"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: "malformed form body: " + err.Error()})
		return
	}
	f := r.PostForm
	switch gt := f.Get("grant_type"); gt {
	case "password":
		if f.Get("client_id") != "manager" {
			writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_client", Description: "unknown client_id " + strconv.Quote(f.Get("client_id")) + " (use manager)"})
			return
		}
		userOK := strings.EqualFold(f.Get("username"), s.Username)
		passOK := subtle.ConstantTimeCompare([]byte(f.Get("password")), []byte(s.Password)) == 1
		if !userOK || !passOK {
			writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_grant", Description: "Bad credentials"})
			return
		}
	case "refresh_token":
		rt := f.Get("refresh_token")
		s.mu.Lock()
		ok := rt != "" && s.refreshes[rt]
		if ok {
			delete(s.refreshes, rt) // rotated on every use
		}
		s.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_grant", Description: "invalid, reused or revoked refresh token"})
			return
		}
	case "":
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: "grant_type is required"})
		return
	default:
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "unsupported_grant_type", Description: "grant_type " + strconv.Quote(gt) + " is not supported by the simulator (use password or refresh_token)"})
		return
	}
	s.mu.Lock()
	access, refresh := s.issueLocked()
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken:  access,
		TokenType:    "bearer",
		ExpiresIn:    int64(s.ttl.Seconds()),
		RefreshToken: refresh,
		Scope:        "*",
	})
}

func itoa(i int) string { return strconv.Itoa(i) }
