package directory

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unique"

	"github.com/go-ldap/ldap/v3"

	"github.com/babelforce/bridge/internal/httpx"
)

// LDAPSource reads users and groups from an LDAP directory: OpenLDAP, Active Directory or anything
// speaking LDAPv3 with the paged-results control. Every Read opens a connection (trying the
// URLs in order), binds, reads users and groups with paged searches, completes ranged
// attributes (AD's member;range=…), and closes. A read is complete or an error wrapping
// ErrIncomplete.
type LDAPSource struct {
	cfg    LDAPConfig
	logger *slog.Logger
	roots  *x509.CertPool
	now    func() time.Time
	poll   time.Duration // how often a DirSync stream asks for changes
	total  atomic.Int64  // users found by the last full Read

	userAttrs, groupAttrs []string
	// keep: the raw attributes users keep (KeepAttributes); nil keeps every one read.
	keep keptAttrs

	// afterPage, when set (tests), runs after each page of a search; kind is "users",
	// "groups" or "range". Calls are one at a time (pageDone), though a Read runs two
	// searches at once.
	afterPage func(kind string, page int)
	pageMu    sync.Mutex
	// pollOnly (tests) makes a DirSync stream ignore the server's change notifications.
	pollOnly bool
}

var _ Reader = (*LDAPSource)(nil)

// NewLDAP checks cfg (after applying its defaults to a copy) and returns a source. It does not
// connect: use Check for that.
func NewLDAP(cfg LDAPConfig, logger *slog.Logger, opts ...Option) (*LDAPSource, error) {
	cfg.URLs = slices.Clone(cfg.URLs)
	cfg.ExtraAttributes = slices.Clone(cfg.ExtraAttributes)
	cfg.Attributes.Phone = slices.Clone(cfg.Attributes.Phone)
	cfg.Attributes.DisabledValues = slices.Clone(cfg.Attributes.DisabledValues)
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ldap config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &LDAPSource{cfg: cfg, logger: logger, now: time.Now, poll: 2 * time.Second, keep: applyOptions(opts).keep}
	if cfg.CAFile != "" {
		roots, err := httpx.CertPool(cfg.CAFile, false)
		if err != nil {
			return nil, fmt.Errorf("ldap config: %w", err)
		}
		l.roots = roots
	}
	a := cfg.Attributes
	var extra []string // extra_attributes serve only User.Attributes: none that is not kept
	for _, e := range cfg.ExtraAttributes {
		if l.keep.keeps(e) {
			extra = append(extra, e)
		}
	}
	l.userAttrs = attrList(append(append([]string{a.ID, a.UserName, a.DisplayName, a.GivenName, a.FamilyName,
		a.Email, a.Disabled}, a.DisplayNameFallback...), append(slices.Clone(a.Phone), extra...)...)...)
	if a.Member == "-" {
		l.userAttrs = attrList(append(l.userAttrs, a.MemberOf)...)
	}
	member := a.Member
	if cfg.RangeSize > 0 && member != "-" {
		member = fmt.Sprintf("%s;range=0-%d", member, cfg.RangeSize-1)
	}
	l.groupAttrs = attrList(a.ID, a.GroupName, member)
	return l, nil
}

// attrList drops empty and "-" names and duplicates (case-insensitively).
func attrList(names ...string) []string {
	var out []string
	for _, n := range names {
		if n == "" || n == "-" || containsFold(out, n) {
			continue
		}
		out = append(out, n)
	}
	return out
}

// Check connects to the first reachable server and binds: for readiness probes.
func (l *LDAPSource) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.DialTimeout+l.cfg.SearchTimeout)
	defer cancel()
	conn, _, err := l.connect(ctx)
	if err != nil {
		return err
	}
	return conn.Close()
}

// rootDSE is what the server says about itself.
type rootDSE struct {
	defaultNC string
	raw       []string        // naming contexts as the server spells them
	contexts  map[string]bool // normalised naming contexts
	controls  map[string]bool // OIDs of the supported controls
}

// Read returns the whole directory, or an error (wrapping ErrIncomplete when the server
// returned only part of it).
func (l *LDAPSource) Read(ctx context.Context) (*Snapshot, error) {
	started := l.now()
	r, userBase, groupBase, done, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	serverURL := r.url
	// The groups are read on a second connection to the same server while the users are read
	// on the first: each search is mostly go-ldap decoding BER, so on two cores the two take
	// about as long as the longer. A user is mapped as its page arrives and its raw entry
	// dropped; a group entry waits (its values copied out of go-ldap's packets) until every
	// user is in, since its member DNs are resolved to the users' ids. Should the second
	// connection fail, the groups are read after the users on the first.
	b := l.newBuild()
	b.users.hint = int(l.total.Load()) // bridge serve: room for as many users as last time
	groups := r.readAside("groups", groupBase, l.cfg.GroupFilter, l.groupAttrs)
	if err := r.readEach("users", userBase, l.cfg.UserFilter, l.userAttrs, b.addUser); err != nil {
		groups.stop()
		return nil, err
	}
	entries, err := groups.wait(r)
	switch {
	case errors.Is(err, errNoSecondConn):
		l.logger.Debug("ldap groups read after the users", "url", serverURL, "error", err.Error())
		err = r.readEach("groups", groupBase, l.cfg.GroupFilter, l.groupAttrs, b.addGroup)
	case err == nil:
		for i, e := range entries {
			b.addGroup(e)
			entries[i] = nil
		}
	}
	if err != nil {
		return nil, err
	}
	snap, err := b.finish()
	if err != nil {
		return nil, fmt.Errorf("ldap %s: %w", serverURL, err)
	}
	snap.Source = serverURL
	snap.ReadAt = started
	snap.Resolve()
	l.total.Store(int64(len(snap.Users)))
	l.logger.Debug("ldap read", "url", serverURL, "users", len(snap.Users), "groups", len(snap.Groups),
		"user_pages", r.pages["users"], "group_pages", r.pages["groups"], "ranged_reads", r.pages["range"],
		"duration", l.now().Sub(started).String())
	return snap, nil
}

// readEach runs one paged search and hands each entry to add: as its page arrives, or, with a
// ranged attribute still to read (AD's member;range=…), once that is read whole.
func (r *ldapRead) readEach(kind, base, filter string, attrs []string, add func(*entry)) error {
	var ranged []*entry
	err := r.searchEach(kind, base, filter, attrs, func(e *entry) {
		if len(e.ranged) > 0 {
			ranged = append(ranged, e)
			return
		}
		add(e)
	})
	if err != nil {
		return err
	}
	if err := r.completeRanges(ranged); err != nil {
		return err
	}
	for _, e := range ranged {
		add(e)
	}
	return nil
}

// errNoSecondConn is a readAside that could not connect: the read goes on, one search
// after the other, on the first connection.
var errNoSecondConn = errors.New("no second connection")

// aside is a search that runs on a second connection to the server of r while r reads
// something else.
type aside struct {
	cancel  context.CancelFunc
	done    chan struct{}
	r       *ldapRead // the second connection's read (its page counts); nil until connected
	entries []*entry
	err     error
}

// readAside starts the search (readEach) on a second connection to r's server, bound as r
// is, under r's deadline; its entries are kept (see detach) for wait.
func (r *ldapRead) readAside(kind, base, filter string, attrs []string) *aside {
	ctx, cancel := context.WithCancel(r.ctx)
	a := &aside{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		conn, err := r.l.dial(ctx, r.url)
		if err == nil {
			if err = r.l.bind(conn, r.url); err != nil {
				conn.Close()
			}
		}
		if err != nil {
			a.err = fmt.Errorf("%w: %w", errNoSecondConn, err)
			return
		}
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		defer func() {
			stop()
			conn.Close()
		}()
		conn.SetTimeout(r.l.cfg.SearchTimeout)
		a.r = &ldapRead{l: r.l, conn: conn, url: r.url, parent: r.parent, ctx: ctx, dse: r.dse}
		a.err = a.r.readEach(kind, base, filter, attrs, func(e *entry) {
			e.detach()
			a.entries = append(a.entries, e)
		})
	}()
	return a
}

// wait returns the entries of the search once it is done (adding its page counts to r's),
// or its error: errNoSecondConn when it could not connect.
func (a *aside) wait(r *ldapRead) ([]*entry, error) {
	<-a.done
	a.cancel()
	if a.r != nil {
		for k, v := range a.r.pages {
			r.pages[k] += v
		}
		r.refs += a.r.refs
	}
	return a.entries, a.err
}

// stop ends the search (its connection is closed) and waits for it.
func (a *aside) stop() {
	a.cancel()
	<-a.done
}

// detach copies e's values out of go-ldap's packet buffers (each value of a packet holds a
// buffer of 512 bytes or more) into one block of their size, for an entry kept after its page.
func (e *entry) detach() {
	n := 0
	for _, vs := range e.attrs {
		for _, v := range vs {
			n += len(v)
		}
	}
	block := make([]byte, 0, n)
	for k, vs := range e.attrs {
		out := make([][]byte, len(vs))
		for i, v := range vs {
			start := len(block)
			block = append(block, v...)
			out[i] = block[start:len(block):len(block)]
		}
		e.attrs[k] = out
	}
}

// open connects and binds (see connect) under search_timeout, reads the root DSE and resolves
// the user and group base DNs (the default naming context where not configured). done closes
// the connection; a cancelled or expired ctx closes it earlier, which ends any search in
// flight.
func (l *LDAPSource) open(parent context.Context) (r *ldapRead, userBase, groupBase string, done func(), err error) {
	ctx, cancel := context.WithTimeout(parent, l.cfg.SearchTimeout)
	conn, serverURL, err := l.connect(ctx)
	if err != nil {
		cancel()
		return nil, "", "", nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	done = func() {
		stop()
		conn.Close()
		cancel()
	}
	r = &ldapRead{l: l, conn: conn, url: serverURL, parent: parent, ctx: ctx}
	r.dse = r.readRootDSE()
	userBase, groupBase = l.cfg.UserBaseDN, l.cfg.GroupBaseDN
	if userBase == "" || groupBase == "" {
		def, err := r.dse.base()
		if err != nil {
			done()
			return nil, "", "", nil, fmt.Errorf("ldap %s: %w: set user_base_dn and group_base_dn", serverURL, err)
		}
		userBase, groupBase = cmp.Or(userBase, def), cmp.Or(groupBase, def)
	}
	return r, userBase, groupBase, done, nil
}

// connect dials the URLs in order and binds on the first that answers.
func (l *LDAPSource) connect(ctx context.Context) (*ldap.Conn, string, error) {
	var tried []string
	for _, raw := range l.cfg.URLs {
		if err := ctx.Err(); err != nil {
			return nil, "", fmt.Errorf("ldap connect: %w", err)
		}
		conn, err := l.dial(ctx, raw)
		if err != nil {
			l.logger.Warn("ldap server unusable, trying the next", "url", raw, "error", err.Error())
			tried = append(tried, fmt.Sprintf("%s: %v", raw, err))
			continue
		}
		if err := l.bind(conn, raw); err != nil {
			conn.Close()
			if ldap.IsErrorAnyOf(err, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable, ldap.ErrorNetwork, ldap.LDAPResultTimeout) {
				l.logger.Warn("ldap server unusable, trying the next", "url", raw, "error", err.Error())
				tried = append(tried, fmt.Sprintf("%s: %v", raw, err))
				continue
			}
			return nil, "", err
		}
		conn.SetTimeout(l.cfg.SearchTimeout)
		return conn, raw, nil
	}
	return nil, "", fmt.Errorf("ldap: could not connect to any server (tried %d): %s", len(tried), strings.Join(tried, "; "))
}

func (l *LDAPSource) dial(ctx context.Context, raw string) (*ldap.Conn, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	timeout := l.cfg.DialTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	tc := &tls.Config{
		RootCAs:            l.roots,
		ServerName:         u.Hostname(),
		InsecureSkipVerify: l.cfg.InsecureSkipVerify, //nolint:gosec // only when configured by name
		MinVersion:         tls.VersionTLS12,
	}
	if l.cfg.TLSServerName != "" {
		tc.ServerName = l.cfg.TLSServerName
	}
	conn, err := ldap.DialURL(raw, ldap.DialWithDialer(&net.Dialer{Timeout: timeout}), ldap.DialWithTLSConfig(tc))
	if err != nil {
		return nil, tlsHint(err)
	}
	// Until bound, a silent server counts as unreachable after dial_timeout.
	conn.SetTimeout(timeout)
	if l.cfg.StartTLS && u.Scheme == "ldap" {
		if err := conn.StartTLS(tc); err != nil {
			conn.Close()
			return nil, fmt.Errorf("start_tls: %w", tlsHint(err))
		}
	}
	return conn, nil
}

// tlsHint adds what to do to certificate errors.
func tlsHint(err error) error {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &hostname):
		return fmt.Errorf("%w (the certificate does not name this host: fix the URL or set tls_server_name)", err)
	case errors.As(err, &unknown), errors.As(err, &verify),
		strings.Contains(err.Error(), "x509:"): // StartTLS flattens the TLS error into text
		return fmt.Errorf("%w (set ca_file to the CA that signed the server's certificate)", err)
	}
	return err
}

func (l *LDAPSource) bind(conn *ldap.Conn, serverURL string) error {
	if l.cfg.BindDN == "" {
		return nil // anonymous
	}
	err := conn.Bind(l.cfg.BindDN, l.cfg.BindPassword)
	switch {
	case err == nil:
		return nil
	case ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials):
		return fmt.Errorf("ldap bind as %s failed: invalid credentials (49): check bind_dn and the bind password", l.cfg.BindDN)
	case ldap.IsErrorWithCode(err, ldap.LDAPResultConfidentialityRequired), ldap.IsErrorWithCode(err, ldap.LDAPResultStrongAuthRequired):
		return fmt.Errorf("ldap bind as %s at %s failed: the server requires an encrypted connection: use ldaps:// or start_tls: %w", l.cfg.BindDN, serverURL, err)
	default:
		return fmt.Errorf("ldap bind as %s at %s failed: %w", l.cfg.BindDN, serverURL, err)
	}
}

// ldapRead is the state of one Read.
type ldapRead struct {
	l      *LDAPSource
	conn   *ldap.Conn
	url    string
	parent context.Context
	ctx    context.Context
	dse    rootDSE
	pages  map[string]int
	refs   int
}

// entry is an LDAP entry with attribute names lower-cased and options other than ranges
// kept; ranged attributes are tracked until complete. The LDAP source reads them from the
// server, the LDIF source from a file (ldifEntry); ldapBuild turns both into users and groups.
type entry struct {
	dn     string
	attrs  map[string][][]byte // lower-cased attribute name (";range=" removed)
	ranged map[string]int      // attribute → next index still to read
	line   int                 // the line of its record in an LDIF file; 0 from a server
}

// errorf is a problem with e: an *LDIFError naming the line of its record when e comes from
// a file.
func (e *entry) errorf(format string, args ...any) error {
	if e.line > 0 {
		return &LDIFError{Line: e.line, Msg: fmt.Sprintf(format, args...)}
	}
	return fmt.Errorf(format, args...)
}

func (e *entry) first(name string) []byte {
	if v := e.attrs[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	return nil
}

func (e *entry) str(name string) string { return string(e.first(name)) }

func (e *entry) strs(name string) []string {
	vals := e.attrs[strings.ToLower(name)]
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		out = append(out, string(v))
	}
	return out
}

// parseRange splits "member;range=0-1499" into ("member", 0, 1499, false) and
// "member;range=1500-*" into ("member", 1500, -1, true).
func parseRange(desc string) (name string, lo, hi int, last, ok bool) {
	if !strings.Contains(desc, ";") {
		return desc, 0, 0, false, false
	}
	parts := strings.Split(desc, ";")
	var kept []string
	found := false
	for _, p := range parts {
		if r, isRange := strings.CutPrefix(strings.ToLower(p), "range="); isRange {
			a, b, okCut := strings.Cut(r, "-")
			if !okCut {
				return "", 0, 0, false, false
			}
			var err error
			if lo, err = strconv.Atoi(a); err != nil {
				return "", 0, 0, false, false
			}
			if b == "*" {
				last, hi = true, -1
			} else if hi, err = strconv.Atoi(b); err != nil {
				return "", 0, 0, false, false
			}
			found = true
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, ";"), lo, hi, last, found
}

// internName returns the one shared copy of an attribute name: each entry (and each user's
// Attributes) would otherwise hold its own copies of the same few names.
func internName(name string) string { return unique.Make(name).Value() }

// newEntry takes e's values over (not copied: go-ldap's entry is not used after).
func newEntry(e *ldap.Entry) (*entry, error) {
	out := &entry{dn: e.DN, attrs: make(map[string][][]byte, len(e.Attributes))}
	add := func(key string, vals [][]byte) {
		if have, ok := out.attrs[key]; ok {
			out.attrs[key] = append(have, vals...)
		} else {
			out.attrs[key] = vals
		}
	}
	for _, a := range e.Attributes {
		name, lo, hi, last, isRange := parseRange(a.Name)
		key := internName(strings.ToLower(name))
		if !isRange {
			add(key, a.ByteValues)
			continue
		}
		if lo != 0 {
			return nil, fmt.Errorf("%w: %s of %s starts at value %d, not 0", ErrIncomplete, a.Name, e.DN, lo)
		}
		add(key, a.ByteValues)
		if !last {
			if out.ranged == nil {
				out.ranged = map[string]int{}
			}
			out.ranged[key] = hi + 1
		}
	}
	return out, nil
}

func (r *ldapRead) readRootDSE() rootDSE {
	d := rootDSE{contexts: map[string]bool{}, controls: map[string]bool{}}
	res, err := r.conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"namingContexts", "defaultNamingContext", "supportedControl"}, nil))
	if err != nil || len(res.Entries) != 1 {
		r.l.logger.Debug("ldap root DSE not readable", "url", r.url, "error", fmt.Sprint(err))
		return d
	}
	d.defaultNC = res.Entries[0].GetAttributeValue("defaultNamingContext")
	d.raw = res.Entries[0].GetAttributeValues("namingContexts")
	for _, oid := range res.Entries[0].GetAttributeValues("supportedControl") {
		d.controls[oid] = true
	}
	for _, nc := range d.raw {
		if k, ok := NormalizeDN(nc); ok {
			d.contexts[k] = true
		}
	}
	return d
}

// base is the DN to search when no base DN is configured.
func (d rootDSE) base() (string, error) {
	if d.defaultNC != "" {
		return d.defaultNC, nil
	}
	if len(d.raw) == 1 {
		return d.raw[0], nil
	}
	return "", fmt.Errorf("no base DN configured and the server names no defaultNamingContext (naming contexts: %q)", d.raw)
}

// search runs one paged search and returns every entry, or an error.
func (r *ldapRead) search(kind, base, filter string, attrs []string) ([]*entry, error) {
	var out []*entry
	if err := r.searchEach(kind, base, filter, attrs, func(e *entry) { out = append(out, e) }); err != nil {
		return nil, err
	}
	return out, nil
}

// searchEach runs one paged search and hands every entry to each as its page arrives; it
// returns an error when the search was not read whole (each has then seen only part of it).
func (r *ldapRead) searchEach(kind, base, filter string, attrs []string, each func(*entry)) error {
	cfg := &r.l.cfg
	timeLimit := int(cfg.SearchTimeout / time.Second)
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, timeLimit, false,
		filter, attrs, nil)
	var paging *ldap.ControlPaging
	if cfg.PageSize > 0 {
		paging = ldap.NewControlPaging(uint32(cfg.PageSize))
		req.Controls = append(req.Controls, paging)
	}
	if r.pages == nil {
		r.pages = map[string]int{}
	}
	got := 0
	cookieSeen := false
	for page := 1; ; page++ {
		if err := r.ctx.Err(); err != nil {
			return r.fail(kind, base, got, err)
		}
		ctrls, err := r.searchPage(kind, base, req, &got, each)
		if err != nil {
			return err
		}
		r.pages[kind]++
		r.l.pageDone(kind, page)
		if paging == nil {
			return nil
		}
		ctrl, _ := ldap.FindControl(ctrls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if ctrl == nil {
			if cookieSeen {
				return fmt.Errorf("ldap %s: read %s under %s: %w: the server dropped the paging control after page %d",
					r.url, kind, base, ErrIncomplete, page)
			}
			// The server ignored the (non-critical) control and answered in one go, successfully.
			return nil
		}
		if len(ctrl.Cookie) == 0 {
			return nil
		}
		cookieSeen = true
		paging.SetCookie(ctrl.Cookie)
	}
}

// searchPage runs one request (one page of a paged search) and hands each entry to each as
// it arrives, so that only the entry being mapped (and up to 8 decoded ahead) is held, never a whole page: a page of big
// groups is hundreds of thousands of member values, several hundred bytes each as go-ldap's
// BER packets. got counts the entries handed over. It returns the controls of the final
// result (the paging cookie).
func (r *ldapRead) searchPage(kind, base string, req *ldap.SearchRequest, got *int, each func(*entry)) ([]ldap.Control, error) {
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel() // stops the search's goroutine when a bad entry ends the page early
	res := r.conn.SearchAsync(ctx, req, 8)
	var ctrls []ldap.Control
	for res.Next() {
		switch {
		case res.Entry() != nil:
			ne, err := newEntry(res.Entry())
			if err != nil {
				return nil, fmt.Errorf("ldap %s: read %s: %w", r.url, kind, err)
			}
			each(ne)
			*got++
		case res.Referral() != "":
			if err := r.reference(kind, base, res.Referral()); err != nil {
				return nil, err
			}
		default:
			ctrls = res.Controls() // the final result's
		}
	}
	if err := res.Err(); err != nil {
		return nil, r.fail(kind, base, *got, err)
	}
	// A cancelled or expired read ends the results without an error: the page is not whole.
	if err := r.ctx.Err(); err != nil {
		return nil, r.fail(kind, base, *got, err)
	}
	return ctrls, nil
}

// reference handles a search continuation reference: one to another naming context of the
// same server (AD's Configuration and DNS partitions below the domain root) holds no users and
// is skipped; any other means entries live elsewhere, which bridge does not chase.
func (r *ldapRead) reference(kind, base, ref string) error {
	if u, err := url.Parse(ref); err == nil {
		if dn, err := url.PathUnescape(strings.TrimPrefix(u.Path, "/")); err == nil {
			if k, ok := NormalizeDN(dn); ok && r.dse.contexts[k] {
				r.refs++
				r.l.logger.Debug("ldap skipped a reference to another naming context", "kind", kind, "reference", ref)
				return nil
			}
		}
	}
	return fmt.Errorf("ldap %s: read %s under %s: %w: the server returned a referral to %s, which bridge does not follow: point urls at a server holding all of %s, or narrow the base DN",
		r.url, kind, base, ErrIncomplete, ref, base)
}

// fail turns a search error into an error that says what happened and what to do.
func (r *ldapRead) fail(kind, base string, got int, err error) error {
	prefix := fmt.Sprintf("ldap %s: read %s under %s (after %d entries)", r.url, kind, base, got)
	if r.ctx.Err() != nil {
		if r.parent.Err() == nil {
			return fmt.Errorf("%s: %w: search_timeout (%s) reached", prefix, ErrIncomplete, r.l.cfg.SearchTimeout)
		}
		return fmt.Errorf("%s: %w: %w", prefix, ErrIncomplete, r.parent.Err())
	}
	var le *ldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case ldap.LDAPResultSizeLimitExceeded:
			hint := "the server caps searches: keep paging on (page_size > 0)"
			if r.l.cfg.PageSize > 0 {
				hint = "the server caps even paged searches: raise its size limit for the bind user"
			}
			return fmt.Errorf("%s: %w: size limit exceeded (4): %s", prefix, ErrIncomplete, hint)
		case ldap.LDAPResultTimeLimitExceeded:
			return fmt.Errorf("%s: %w: time limit exceeded (3): raise search_timeout or the server's time limit", prefix, ErrIncomplete)
		case ldap.LDAPResultAdminLimitExceeded:
			return fmt.Errorf("%s: %w: administrative limit exceeded (11): lower page_size or narrow the filter", prefix, ErrIncomplete)
		case ldap.LDAPResultReferral:
			return fmt.Errorf("%s: %w: referral (10) not followed: point urls at a server holding %s: %w", prefix, ErrIncomplete, base, err)
		case ldap.LDAPResultNoSuchObject:
			return fmt.Errorf("%s: the base DN does not exist (32): check user_base_dn / group_base_dn: %w", prefix, err)
		case ldap.LDAPResultInsufficientAccessRights:
			return fmt.Errorf("%s: insufficient access (50): the bind user may not search here: %w", prefix, err)
		case ldap.LDAPResultFilterError:
			return fmt.Errorf("%s: the server rejected the filter: check user_filter / group_filter: %w", prefix, err)
		case ldap.LDAPResultUnavailableCriticalExtension:
			return fmt.Errorf("%s: the server does not support paged results: set page_size: -1: %w", prefix, err)
		}
		if le.ResultCode >= ldap.ErrorNetwork || le.ResultCode == ldap.LDAPResultBusy || le.ResultCode == ldap.LDAPResultUnavailable ||
			le.ResultCode == ldap.LDAPResultOther || le.ResultCode == ldap.LDAPResultUnwillingToPerform {
			return fmt.Errorf("%s: %w: %w", prefix, ErrIncomplete, err)
		}
		return fmt.Errorf("%s: %w", prefix, err)
	}
	// Anything else (connection closed, malformed packet) cut the read short.
	return fmt.Errorf("%s: %w: %w", prefix, ErrIncomplete, err)
}

// completeRanges reads the rest of every ranged attribute (AD returns at most MaxValRange
// values, 1,500 by default, of member per read).
func (r *ldapRead) completeRanges(entries []*entry) error {
	for _, e := range entries {
		for len(e.ranged) > 0 {
			for attr, next := range e.ranged {
				if err := r.readRange(e, attr, next); err != nil {
					return err
				}
				delete(e.ranged, attr)
			}
		}
	}
	return nil
}

func (r *ldapRead) readRange(e *entry, attr string, next int) error {
	for {
		if err := r.ctx.Err(); err != nil {
			return r.fail("range", e.dn, next, err)
		}
		desc := fmt.Sprintf("%s;range=%d-*", attr, next)
		if n := r.l.cfg.RangeSize; n > 0 {
			desc = fmt.Sprintf("%s;range=%d-%d", attr, next, next+n-1)
		}
		req := ldap.NewSearchRequest(e.dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0,
			int(r.l.cfg.SearchTimeout/time.Second), false, "(objectClass=*)", []string{desc}, nil)
		res, err := r.conn.Search(req)
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return fmt.Errorf("ldap %s: ranged read of %s of %s: %w: the entry disappeared during the read; the next read will retry",
				r.url, attr, e.dn, ErrIncomplete)
		}
		if err != nil {
			return r.fail("ranged "+attr, e.dn, next, err)
		}
		r.pages["range"]++
		r.l.pageDone("range", r.pages["range"])
		if len(res.Entries) != 1 {
			return fmt.Errorf("ldap %s: ranged read of %s of %s: %w: got %d entries", r.url, attr, e.dn, ErrIncomplete, len(res.Entries))
		}
		found := false
		for _, a := range res.Entries[0].Attributes {
			name, lo, hi, last, isRange := parseRange(a.Name)
			if !strings.EqualFold(name, attr) || !isRange {
				continue
			}
			if lo != next {
				return fmt.Errorf("ldap %s: ranged read of %s of %s: %w: asked from value %d, got %s", r.url, attr, e.dn, ErrIncomplete, next, a.Name)
			}
			found = true
			if len(a.ByteValues) == 0 {
				// The previous range said more values follow; an empty rest means the list
				// shrank while we read it, so values may have shifted past us.
				return fmt.Errorf("ldap %s: ranged read of %s of %s: %w: the attribute changed during the read (no values from %d on); the next read will retry",
					r.url, attr, e.dn, ErrIncomplete, next)
			}
			e.attrs[attr] = append(e.attrs[attr], a.ByteValues...)
			if last {
				return nil
			}
			if hi < lo {
				return fmt.Errorf("ldap %s: ranged read of %s of %s: %w: bad range %s", r.url, attr, e.dn, ErrIncomplete, a.Name)
			}
			next = hi + 1
		}
		if !found {
			return fmt.Errorf("ldap %s: ranged read of %s of %s: %w: the server stopped after %d values without the final range",
				r.url, attr, e.dn, ErrIncomplete, next)
		}
	}
}

// pageDone calls afterPage (tests), one call at a time.
func (l *LDAPSource) pageDone(kind string, page int) {
	if l.afterPage != nil {
		l.pageMu.Lock()
		defer l.pageMu.Unlock()
		l.afterPage(kind, page)
	}
}

// isBindDN says whether dn is the bind DN: bridge's own service account, never a person, so
// that a user filter matching it (the openldap preset's inetOrgPerson) does not make it a user.
func (l *LDAPSource) isBindDN(dn string) bool {
	bind, ok := NormalizeDN(l.cfg.BindDN)
	if !ok {
		return false
	}
	k, ok := NormalizeDN(dn)
	return ok && k == bind
}

// ldapBuild turns entries into users and groups as they are read, resolving member DNs to
// ids on the way; finish resolves what could only be resolved once every group was read.
type ldapBuild struct {
	l    *LDAPSource
	snap *Snapshot // its Users are in users until finish
	// users holds the users read, in chunks (see userList).
	users userList
	// userByRawDN finds a member DN spelt as the server spells the user's own DN without
	// parsing it; userByDN (normalised DNs) catches other spellings.
	userByRawDN, userByDN, groupByDN map[string]string
	// userByName (lower-cased user names) serves only member values that are no DN
	// (memberUid): it is built at the first such value (see userNamed), not for every read.
	userByName        map[string]string
	idOwner           map[string]idClaim
	noID, userEntries int
	// idOf renders an entry's id (LDAPSource.id); the LDIF source adds its DN fallback.
	idOf func(*entry) (string, error)
	errs []error
	// pending are member values that are DNs of no user read: a group's, known only at the end.
	pending []pendingMember
	// memberOf holds, per user (index in snap.Users), the normalised DNs of its memberOf
	// values when groups do not list their members (attributes.member "-").
	memberOf               [][]string
	outside, nestedIgnored int
	// bindKey is the normalised bind DN: that entry is bridge's own account, never a user.
	bindKey string
}

// idClaim is the entry that holds an id: its DN and, from a file, its line.
type idClaim struct {
	dn   string
	line int
}

type pendingMember struct {
	group    int // index in snap.Groups
	key, raw string
}

func (l *LDAPSource) newBuild() *ldapBuild {
	bindKey, _ := NormalizeDN(l.cfg.BindDN)
	return &ldapBuild{l: l, snap: &Snapshot{}, userByRawDN: map[string]string{}, userByDN: map[string]string{},
		groupByDN: map[string]string{}, idOwner: map[string]idClaim{}, bindKey: bindKey,
		idOf: l.id}
}

// claim returns e's id, or false when e is skipped: without an id (logged) or with an
// unreadable or shared one (in errs). The caller records the id's owner (idOwner) once it
// kept the entry: a user's with the user's own copies of the id and the DN, so that the
// entry's are not kept alive for the whole read.
func (b *ldapBuild) claim(kind string, e *entry) (string, bool) {
	id, err := b.idOf(e)
	switch {
	case err != nil:
		b.errs = append(b.errs, err)
		return "", false
	case id == "":
		b.noID++
		b.l.logger.Warn("ldap "+kind+" has no id attribute, skipped", "dn", e.dn, "attribute", b.l.cfg.Attributes.ID)
		return "", false
	}
	if other, dup := b.idOwner[id]; dup {
		if other.line > 0 {
			b.errs = append(b.errs, e.errorf("%s has the same id %q as %s at line %d: attributes.id must be unique", e.dn, id, other.dn, other.line))
		} else {
			b.errs = append(b.errs, e.errorf("%s and %s share the id %q: attributes.id must be unique", other.dn, e.dn, id))
		}
		return "", false
	}
	return id, true
}

func (b *ldapBuild) addUser(e *entry) {
	b.userEntries++
	key, isDN := NormalizeDN(e.dn) // once: for the bind DN and for userByDN
	if isDN && b.bindKey != "" && key == b.bindKey {
		return // bridge's own account (see isBindDN)
	}
	id, ok := b.claim("user", e)
	if !ok {
		return
	}
	a := b.l.cfg.Attributes
	u := b.l.user(e, id)
	u.compact()
	// From here on the user's own copies (one allocation, see compact) of the id and the DN
	// are used as keys and values, so that the entry's and claim's strings can be collected.
	id = u.ID
	b.idOwner[id] = idClaim{dn: u.DN, line: e.line}
	b.userByRawDN[u.DN] = id
	if isDN {
		b.userByDN[key] = id
	}
	if u.UserName != "" && b.userByName != nil {
		b.userByName[strings.ToLower(u.UserName)] = id
	}
	if a.Member == "-" && a.MemberOf != "" && a.MemberOf != "-" {
		var keys []string
		for _, v := range e.attrs[strings.ToLower(a.MemberOf)] {
			k, _ := NormalizeDN(string(v))
			keys = append(keys, k)
		}
		b.memberOf = append(b.memberOf, keys)
	}
	b.users.add(u)
}

func (b *ldapBuild) addGroup(e *entry) {
	id, ok := b.claim("group", e)
	if !ok {
		return
	}
	b.idOwner[id] = idClaim{dn: e.dn, line: e.line}
	a := b.l.cfg.Attributes
	if k, ok := NormalizeDN(e.dn); ok {
		b.groupByDN[k] = id
	}
	g := Group{ID: id, Name: b.l.groupName(e), DN: e.dn}
	if a.Member != "-" {
		// a member value is the DN of a user or a group read, else a user name (memberUid)
		for _, raw := range e.attrs[strings.ToLower(a.Member)] {
			v := stripUID(string(raw))
			if uid, ok := b.userByRawDN[v]; ok {
				g.MemberUsers = append(g.MemberUsers, uid)
				continue
			}
			if k, ok := NormalizeDN(v); ok {
				if uid, ok := b.userByDN[k]; ok {
					g.MemberUsers = append(g.MemberUsers, uid)
				} else {
					b.pending = append(b.pending, pendingMember{group: len(b.snap.Groups), key: k, raw: v})
				}
				continue
			}
			if uid := b.userNamed(v); uid != "" {
				g.MemberUsers = append(g.MemberUsers, uid)
			} else {
				b.outside++
			}
		}
	}
	b.snap.Groups = append(b.snap.Groups, g)
}

// userNamed returns the id of the user read so far whose user name is name (any case), or
// "". The first call builds userByName from the users read; addUser adds later ones.
func (b *ldapBuild) userNamed(name string) string {
	if b.userByName == nil {
		b.userByName = make(map[string]string, b.users.n)
		b.users.each(func(u *User) {
			if u.UserName != "" {
				b.userByName[strings.ToLower(u.UserName)] = u.ID
			}
		})
	}
	return b.userByName[strings.ToLower(name)]
}

// finish resolves the member DNs that name groups and returns the snapshot (not yet
// resolved: see Snapshot.Resolve).
func (b *ldapBuild) finish() (*Snapshot, error) {
	snap := b.snap
	if err := errors.Join(b.errs...); err != nil {
		return nil, err
	}
	if b.noID > 0 && b.users.n == 0 && b.userEntries > 0 {
		return nil, fmt.Errorf("no user has the id attribute %q: check attributes.id and the bind user's read rights", b.l.cfg.Attributes.ID)
	}
	for _, p := range b.pending {
		g := &snap.Groups[p.group]
		gid, isGroup := b.groupByDN[p.key]
		switch {
		case isGroup && gid == g.ID: // a group listing itself (groupOfNames needs a member)
		case isGroup && b.l.cfg.nested():
			g.MemberGroups = append(g.MemberGroups, gid)
		case isGroup:
			b.nestedIgnored++
		default:
			if uid := b.userNamed(p.raw); uid != "" {
				g.MemberUsers = append(g.MemberUsers, uid)
			} else {
				b.outside++
			}
		}
	}
	// the users' indexes are done with (about 17 MB at 100,000 people): let them go before
	// the users are copied into one array, the moment the read holds the most
	b.userByRawDN, b.userByDN, b.userByName, b.idOwner = nil, nil, nil, nil
	snap.Users = b.users.all() // after the pending members: userNamed reads b.users
	for i, keys := range b.memberOf {
		u := &snap.Users[i]
		for _, k := range keys {
			if gid, ok := b.groupByDN[k]; ok {
				u.Groups = append(u.Groups, gid)
			} else {
				b.outside++
			}
		}
	}
	for i := range snap.Groups {
		g := &snap.Groups[i]
		slices.Sort(g.MemberUsers)
		g.MemberUsers = slices.Compact(g.MemberUsers)
		slices.Sort(g.MemberGroups)
		g.MemberGroups = slices.Compact(g.MemberGroups)
	}
	if b.outside > 0 || b.nestedIgnored > 0 {
		b.l.logger.Debug("ldap members ignored", "outside_bases_or_filters", b.outside, "nested_groups_off", b.nestedIgnored)
	}
	return snap, nil
}

// groupName is the group_name attribute of a group entry, else its cn.
func (l *LDAPSource) groupName(e *entry) string {
	return cmp.Or(e.str(l.cfg.Attributes.GroupName), e.str("cn"))
}

// id renders the id attribute of an entry per attributes.id_format; "" when absent.
func (l *LDAPSource) id(e *entry) (string, error) {
	raw := e.first(l.cfg.Attributes.ID)
	if raw == nil {
		return "", nil
	}
	switch strings.ToLower(l.cfg.Attributes.IDFormat) {
	case "guid":
		if len(raw) != 16 {
			if b, err := ParseGUID(string(raw)); err == nil { // already in text form (an LDIF file)
				raw = b
			}
		}
		s, err := FormatGUID(raw)
		if err != nil {
			return "", e.errorf("%s: %s: %v (set attributes.id_format: string or hex)", e.dn, l.cfg.Attributes.ID, err)
		}
		return s, nil
	case "hex":
		return fmt.Sprintf("%x", raw), nil
	default:
		return strings.TrimSpace(string(raw)), nil
	}
}

// phoneTypes are the SCIM phone types of the telephone attributes of inetOrgPerson and AD
// (with AD's other… lists); another attribute's phones are typed by its lower-cased name.
var phoneTypes = map[string]string{
	"telephonenumber":               "work",
	"othertelephone":                "work",
	"mobile":                        "mobile",
	"othermobile":                   "mobile",
	"mobiletelephonenumber":         "mobile",
	"homephone":                     "home",
	"otherhomephone":                "home",
	"facsimiletelephonenumber":      "fax",
	"otherfacsimiletelephonenumber": "fax",
	"pager":                         "pager",
	"otherpager":                    "pager",
	"ipphone":                       "other",
	"otheripphone":                  "other",
}

// secretAttrs are never copied into User.Attributes (an LDIF export holds every attribute;
// a search returns them only when extra_attributes names them).
var secretAttrs = map[string]bool{
	"userpassword": true, "unicodepwd": true, "authpassword": true, "sambantpassword": true,
	"sambalmpassword": true, "ntpwdhistory": true, "lmpwdhistory": true, "dbcspwd": true,
	"supplementalcredentials": true, "pwdhistory": true, "krbprincipalkey": true,
}

// user turns a user entry into a User, for the LDAP and the LDIF source alike: names
// trimmed; the display name from attributes.display_name, else display_name_fallback; e-mails
// of attributes.email and phones of attributes.phone (in that order, typed by phoneTypes), the
// first of each primary; every attribute read (but passwords) in Attributes, the id attribute
// rendered as the id; with KeepAttributes only those it names.
func (l *LDAPSource) user(e *entry, id string) User {
	a := l.cfg.Attributes
	first := func(attr string) string { return strings.TrimSpace(e.str(attr)) }
	u := User{
		ID:         id,
		DN:         e.dn,
		UserName:   first(a.UserName),
		GivenName:  first(a.GivenName),
		FamilyName: first(a.FamilyName),
		Active:     l.active(e),
	}
	u.DisplayName, u.DisplayNameFrom = a.displayName(e.str)
	if a.Email != "-" {
		for _, v := range e.strs(a.Email) {
			if v = strings.TrimSpace(v); v != "" {
				u.Emails = append(u.Emails, Email{Value: v, Type: "work", Primary: len(u.Emails) == 0})
			}
		}
	}
	for _, attr := range a.Phone {
		if attr == "-" {
			continue
		}
		typ := phoneTypes[strings.ToLower(attr)]
		if typ == "" {
			typ = strings.ToLower(attr)
		}
		for _, v := range e.strs(attr) {
			if v = strings.TrimSpace(v); v != "" {
				u.Phones = append(u.Phones, Phone{Value: v, Type: typ, Primary: len(u.Phones) == 0})
			}
		}
	}
	if l.keep == nil {
		u.Attributes = make(map[string][]string, len(e.attrs))
	}
	for name, vals := range e.attrs {
		if secretAttrs[name] || !l.keep.keeps(name) {
			continue
		}
		if u.Attributes == nil { // KeepAttributes: a map only for a user with a kept attribute
			u.Attributes = make(map[string][]string, min(len(e.attrs), len(l.keep)))
		}
		out := make([]string, 0, len(vals))
		for _, v := range vals {
			out = append(out, attrString(name, v))
		}
		u.Attributes[name] = out
	}
	if _, ok := e.attrs[strings.ToLower(a.ID)]; ok && id != "" && l.keep.keeps(a.ID) {
		u.Attributes[strings.ToLower(a.ID)] = []string{id}
	}
	return u
}

// stripUID removes the optional "#'0101'B" unique identifier of a uniqueMember value.
func stripUID(v string) string {
	if i := strings.LastIndex(v, "#'"); i > 0 && strings.HasSuffix(v, "'B") {
		return v[:i]
	}
	return v
}

// attrString renders a raw value: GUIDs and SIDs in their usual text form, other binary
// values in base64.
func attrString(name string, v []byte) string {
	switch name {
	case "objectguid", "ms-ds-consistencyguid":
		if s, err := FormatGUID(v); err == nil {
			return s
		}
	case "objectsid":
		if s, err := formatSID(v); err == nil {
			return s
		}
	}
	if utf8.Valid(v) {
		return string(v)
	}
	return base64.StdEncoding.EncodeToString(v)
}

// active applies attributes.disabled.
func (l *LDAPSource) active(e *entry) bool {
	a := l.cfg.Attributes
	if a.Disabled == "" || a.Disabled == "-" {
		return true
	}
	disabled, err := a.disabledBy(e.strs(a.Disabled))
	if err != nil {
		l.logger.Warn("ldap disabled flag is not a number, user treated as active", "dn", e.dn, "attribute", a.Disabled, "error", err)
	}
	return !disabled
}

// disabledBy applies attributes.disabled to the values of that attribute (none: not
// disabled): a mask on a number (disabled_mask), a list of values (disabled_values, any case),
// or else presence. A value that is not a number under a mask is an error, and the user is
// not disabled. The LDAP and LDIF sources share it.
func (a LDAPAttributes) disabledBy(vals []string) (bool, error) {
	if len(vals) == 0 {
		return false, nil
	}
	switch {
	case a.DisabledMask != 0:
		n, err := strconv.ParseInt(strings.TrimSpace(vals[0]), 10, 64)
		if err != nil {
			return false, fmt.Errorf("%q: %w", vals[0], err)
		}
		return uint64(n)&a.DisabledMask != 0, nil
	case len(a.DisabledValues) > 0:
		for _, v := range vals {
			if containsFold(a.DisabledValues, strings.TrimSpace(v)) {
				return true, nil
			}
		}
		return false, nil
	default:
		return true, nil // present means disabled
	}
}
