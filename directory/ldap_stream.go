package directory

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// maxNamedUsers is the most people one change is resolved to; a change affecting more (a big
// group renamed, a nested group with thousands of members moved) asks for a full reconcile,
// which is cheaper than looking each of them up.
const maxNamedUsers = 2000

// streamCookie is what LDAPSource.Follow hands out as the cookie: the server's cookies, tagged with
// the kind of stream so that one is never replayed into the other.
type streamCookie struct {
	Kind   string `json:"kind"`
	Users  []byte `json:"users,omitempty"`
	Groups []byte `json:"groups,omitempty"`
}

func (c streamCookie) encode() []byte {
	b, _ := json.Marshal(c)
	return b
}

// decodeStreamCookie returns the server cookies of kind in raw, or an empty cookie when raw
// is nil, of another kind or unreadable (then the stream starts afresh).
func decodeStreamCookie(raw []byte, kind string) (streamCookie, bool) {
	var c streamCookie
	if len(raw) == 0 || json.Unmarshal(raw, &c) != nil || c.Kind != kind {
		return streamCookie{Kind: kind}, false
	}
	return c, true
}

// Stream kinds.
const (
	streamSyncrepl = "syncrepl"
	streamDirSync  = "dirsync"
)

var _ Stream = (*LDAPSource)(nil)

// StreamName is "ldap:" and a digest of what the stream follows (bases, filters, the
// attributes read), so that a cookie kept for another search is never used.
func (l *LDAPSource) StreamName() string {
	h := sha256.New()
	for _, s := range []string{l.cfg.UserBaseDN, l.cfg.UserFilter, l.cfg.GroupBaseDN, l.cfg.GroupFilter,
		strings.Join(l.userAttrs, ","), strings.Join(l.groupAttrs, ",")} {
		h.Write([]byte(strings.ToLower(s)))
		h.Write([]byte{0})
	}
	return "ldap:" + hex.EncodeToString(h.Sum(nil))[:12]
}

// Follow follows the directory's changes: with RFC 4533 content synchronisation
// (refreshAndPersist) on a server that offers it (OpenLDAP with the syncprov overlay), else
// with DirSync (Active Directory, Samba AD), polled when the server notifies a change (AD's
// change notification control) and every poll interval. It returns
// ErrNoChangeStream when the server offers neither.
func (l *LDAPSource) Follow(ctx context.Context, cookie []byte, changed func(ChangeSet)) error {
	s, err := l.openStream(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	switch {
	case s.dse.controls[ldap.ControlTypeSyncRequest]:
		sc, ok := decodeStreamCookie(cookie, streamSyncrepl)
		err := s.syncrepl(ctx, sc, ok, changed)
		if ok && ldap.IsErrorWithCode(err, ldap.LDAPResultSyncRefreshRequired) {
			l.logger.Warn("ldap syncrepl: the server no longer knows the kept position; starting afresh with a full reconcile", "url", s.url)
			return s.syncrepl(ctx, streamCookie{Kind: streamSyncrepl}, false, changed)
		}
		return err
	case s.dse.controls[ldap.ControlTypeDirSync]:
		sc, ok := decodeStreamCookie(cookie, streamDirSync)
		return s.dirSync(ctx, sc, ok, changed)
	}
	return fmt.Errorf("ldap %s: %w: it supports neither syncrepl (OpenLDAP's syncprov overlay) nor DirSync (Active Directory)", s.url, ErrNoChangeStream)
}

// SetPollInterval sets how often a DirSync stream asks for changes (default 2 s).
func (l *LDAPSource) SetPollInterval(d time.Duration) {
	if d > 0 {
		l.poll = d
	}
}

// ldapStream is one connection following the directory.
type ldapStream struct {
	l    *LDAPSource
	conn *ldap.Conn
	url  string
	dse  rootDSE
	stop func() bool

	userBase, groupBase string

	// idByDN caches the ids of users looked up by DN (normalised).
	idByDN map[string]string
	// idByUUID maps a user's entryUUID to its id, learned from the stream, for deletes
	// (which carry only the entryUUID).
	idByUUID map[string]string
}

// openStream connects, binds and resolves the base DNs. The connection has no request
// timeout (a persistent search waits for as long as nothing changes); lookups set their own
// time limit.
func (l *LDAPSource) openStream(ctx context.Context) (*ldapStream, error) {
	dctx, cancel := context.WithTimeout(ctx, l.cfg.DialTimeout+l.cfg.SearchTimeout)
	conn, serverURL, err := l.connect(dctx)
	cancel()
	if err != nil {
		return nil, err
	}
	s := &ldapStream{l: l, conn: conn, url: serverURL, idByDN: map[string]string{}, idByUUID: map[string]string{}}
	s.stop = context.AfterFunc(ctx, func() { _ = conn.Close() })
	r := &ldapRead{l: l, conn: conn, url: serverURL, parent: ctx, ctx: ctx}
	s.dse = r.readRootDSE()
	s.userBase, s.groupBase = l.cfg.UserBaseDN, l.cfg.GroupBaseDN
	if s.userBase == "" || s.groupBase == "" {
		def, err := s.dse.base()
		if err != nil {
			s.close()
			return nil, fmt.Errorf("ldap %s: %w: set user_base_dn and group_base_dn", serverURL, err)
		}
		s.userBase, s.groupBase = cmp.Or(s.userBase, def), cmp.Or(s.groupBase, def)
	}
	return s, nil
}

func (s *ldapStream) close() {
	s.stop()
	_ = s.conn.Close()
}

// reader returns an ldapRead on the stream's connection, for paged searches under ctx.
func (s *ldapStream) reader(ctx context.Context) *ldapRead {
	return &ldapRead{l: s.l, conn: s.conn, url: s.url, parent: ctx, ctx: ctx}
}

// userIDsOf resolves user DNs to ids: from the cache, else with a base search that also
// checks the entry is a user bridge reads (user_filter). DNs that are no (longer) such user
// are left out.
func (s *ldapStream) userIDsOf(dns []string) ([]string, error) {
	var out []string
	for _, dn := range dns {
		k, ok := NormalizeDN(dn)
		if !ok {
			continue
		}
		if id, ok := s.idByDN[k]; ok {
			out = append(out, id)
			continue
		}
		res, err := s.conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1,
			int(s.l.cfg.SearchTimeout/time.Second), false, s.l.cfg.UserFilter, []string{s.l.cfg.Attributes.ID}, nil))
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ldap %s: look up member %s: %w", s.url, dn, err)
		}
		if len(res.Entries) != 1 {
			continue
		}
		e, err := newEntry(res.Entries[0])
		if err != nil {
			return nil, err
		}
		id, err := s.l.id(e)
		if err != nil || id == "" {
			continue
		}
		s.idByDN[k] = id
		out = append(out, id)
	}
	return out, nil
}

// modified is the newest modifyTimestamp / whenChanged of an entry, zero when absent.
func modified(e *ldap.Entry, newest time.Time) time.Time {
	for _, a := range []string{"modifyTimestamp", "whenChanged"} {
		v := e.GetAttributeValue(a)
		if v == "" {
			continue
		}
		if len(v) < 14 {
			continue
		}
		// generalized time in UTC: OpenLDAP "20261205122304Z", AD "20261205122304.0Z"
		if t, err := time.Parse("20060102150405", v[:14]); err == nil && t.After(newest) {
			newest = t
		}
	}
	return newest
}

// errStreamEnded is returned when the server ends a persistent search on its own.
var errStreamEnded = errors.New("the server ended the change stream")
