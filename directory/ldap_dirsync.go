package directory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// inChain is Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: memberOf through nested groups.
const inChain = "1.2.840.113556.1.4.1941"

// dirSync polls Active Directory's DirSync control every poll interval, and at once when
// the server notifies a change (AD's change notification control, where offered: see
// notifications). It asks for incremental values, so a group's change names the members added (member;range=1-1) and
// removed (member;range=0-0); a nested group's users come from a memberOf in-chain search. A
// user entry that changed, was disabled or deleted affects that user. A group created,
// renamed or deleted affects its users through nesting; a server that sends whole member
// lists instead of increments makes the change ask for a full reconcile. DirSync searches the
// whole naming context: entries outside the bases are ignored.
func (s *ldapStream) dirSync(ctx context.Context, sc streamCookie, resumed bool, changed func(ChangeSet)) error {
	l := s.l
	a := l.cfg.Attributes
	nc, err := s.dse.base()
	if err != nil {
		return fmt.Errorf("ldap %s: dirsync: %w", s.url, err)
	}
	attrs := attrList(append(slices.Clone(l.userAttrs), "objectGUID", "objectClass", "isDeleted", a.Member, a.GroupName, "cn", "name")...)
	filter := "(|" + l.cfg.UserFilter + l.cfg.GroupFilter + "(isDeleted=TRUE))"
	flags := ldap.DirSyncIncrementalValues
	// poll drains the changes since sc.Users (several pages when the server has more).
	poll := func(handle func(*ldap.Entry) error) error {
		for {
			req := ldap.NewSearchRequest(nc, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0,
				int(l.cfg.SearchTimeout/time.Second), false, filter, attrs, nil)
			res, err := s.conn.DirSync(req, flags, 0, sc.Users)
			if flags&ldap.DirSyncObjectSecurity == 0 && ldap.IsErrorAnyOf(err, ldap.LDAPResultInsufficientAccessRights, ldap.LDAPResultUnwillingToPerform) {
				// Without "Replicating Directory Changes" on the naming context the bind
				// user may still follow what it can read (deleted objects then wait for the
				// periodic run).
				l.logger.Warn("ldap dirsync: the bind user may not replicate directory changes; following only what it may read (grant it Replicating Directory Changes to see deletions)", "url", s.url)
				flags |= ldap.DirSyncObjectSecurity
				continue
			}
			if err != nil {
				return fmt.Errorf("ldap %s: dirsync: %w", s.url, err)
			}
			for _, e := range res.Entries {
				if err := handle(e); err != nil {
					return err
				}
			}
			ctl, _ := ldap.FindControl(res.Controls, ldap.ControlTypeDirSync).(*ldap.ControlDirSync)
			if ctl == nil {
				return fmt.Errorf("ldap %s: dirsync: %w: the answer has no DirSync control", s.url, ErrIncomplete)
			}
			if len(ctl.Cookie) > 0 {
				sc.Users = slices.Clone(ctl.Cookie)
			}
			if ctl.Flags == 0 { // no more changes waiting
				return nil
			}
		}
	}
	// notifications first: a change after they are registered wakes a poll that sees it;
	// they end with this stream
	nctx, stopNotifications := context.WithCancel(ctx)
	defer stopNotifications()
	wake := s.notifications(nctx, nc)
	if !resumed {
		// The first poll returns every entry: they are all reconciled by the full run asked
		// for here; only the cookie is kept.
		if err := poll(func(*ldap.Entry) error { return nil }); err != nil {
			return err
		}
		l.logger.Info("ldap dirsync stream live", "url", s.url, "resumed", false, "poll", l.poll.String())
		changed(ChangeSet{Full: true, Ready: true, Cookie: sc.encode(), At: l.now()})
	}
	ready := !resumed
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		if ready {
			t.Reset(l.poll)
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			case <-wake:
			}
		}
		batch := idSet{}
		full := false
		err := poll(func(e *ldap.Entry) error {
			ids, f, err := s.dirSyncEntry(ctx, e)
			batch.add(ids...)
			full = full || f || len(batch) > maxNamedUsers
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		cs := ChangeSet{Full: full, Cookie: sc.encode(), Ready: !ready, At: l.now()}
		if !full {
			cs.Users = batch.sorted()
		}
		if !ready {
			l.logger.Info("ldap dirsync stream live", "url", s.url, "resumed", true, "poll", l.poll.String(), "full_reconcile", full)
		}
		if !ready || !cs.Empty() {
			changed(cs)
		}
		ready = true
	}
}

// notifications follows Active Directory's change notification control
// (LDAP_SERVER_NOTIFICATION_OID, 1.2.840.113556.1.4.528) on the naming context nc where the
// server offers it, on a second connection (a notification search never ends, so that
// connection has no request timeout). Each change notified wakes the DirSync poll at once
// instead of at the next poll interval: DirSync stays what says who is affected (incremental
// member values, tombstones) and where to resume (its cookie; notifications have none), and
// the poll interval stays the fallback. nil (never ready) when the server offers no
// notifications or they fail; a failure is logged and polling goes on.
func (s *ldapStream) notifications(ctx context.Context, nc string) <-chan struct{} {
	l := s.l
	if l.pollOnly || !s.dse.controls[ldap.ControlTypeMicrosoftNotification] {
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, l.cfg.DialTimeout+l.cfg.SearchTimeout)
	conn, _, err := l.connect(dctx)
	cancel()
	if err != nil {
		l.logger.Warn("ldap change notification: cannot connect; DirSync is polled every sync.live_poll", "url", s.url, "error", err)
		return nil
	}
	conn.SetTimeout(0)
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	// AD and Samba accept only (objectClass=*) or the like; "1.1": the DN is enough
	req := ldap.NewSearchRequest(nc, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"1.1"}, []ldap.Control{ldap.NewControlMicrosoftNotification()})
	res := conn.SearchAsync(ctx, req, 64)
	wake := make(chan struct{}, 1)
	go func() {
		defer stop()
		defer conn.Close()
		for res.Next() {
			select {
			case wake <- struct{}{}:
			default: // a poll is due already
			}
		}
		if err := res.Err(); err != nil && ctx.Err() == nil {
			l.logger.Warn("ldap change notification ended; DirSync is polled every sync.live_poll", "url", s.url, "error", err)
		}
	}()
	l.logger.Info("ldap change notification: DirSync polls as soon as the server notifies a change", "url", s.url)
	return wake
}

// dirSyncEntry returns the users one DirSync entry affects, or full when they cannot be
// named.
func (s *ldapStream) dirSyncEntry(ctx context.Context, e *ldap.Entry) (ids []string, full bool, err error) {
	l := s.l
	a := l.cfg.Attributes
	guid, gerr := FormatGUID(e.GetRawAttributeValue("objectGUID"))
	if strings.EqualFold(e.GetAttributeValue("isDeleted"), "TRUE") {
		if gerr == nil && strings.EqualFold(a.ID, "objectGUID") {
			// a user's or a group's tombstone: a user is reconciled; a group's members
			// are not known any more
			if s.isGroupEntry(e) {
				return nil, true, nil
			}
			return []string{guid}, false, nil
		}
		return nil, true, nil
	}
	var added, removed []string
	incremental, whole := false, false
	for _, attr := range e.Attributes {
		name, lo, hi, _, isRange := parseRange(attr.Name)
		if !strings.EqualFold(name, a.Member) {
			continue
		}
		switch {
		case isRange && lo == 1 && hi == 1:
			added, incremental = append(added, attr.Values...), true
		case isRange && lo == 0 && hi == 0:
			removed, incremental = append(removed, attr.Values...), true
		default:
			whole = true
		}
	}
	if s.isGroupEntry(e) || incremental || whole || s.isGroupDN(e.DN) {
		if !underBase(e.DN, s.groupBase) {
			return nil, false, nil
		}
		renamed := e.GetAttributeValue(a.GroupName) != "" || e.GetAttributeValue("cn") != "" || e.GetAttributeValue("name") != ""
		if whole || renamed {
			// a new group (every value present), a server without incremental values, or a
			// rename: everybody in the group through nesting
			ids, err := s.inGroup(ctx, e.DN)
			return ids, err == nil && len(ids) > maxNamedUsers, err
		}
		for _, dn := range append(added, removed...) {
			more, err := s.memberIDs(ctx, dn)
			if err != nil {
				return nil, false, err
			}
			ids = append(ids, more...)
		}
		return ids, false, nil
	}
	if !underBase(e.DN, s.userBase) {
		return nil, false, nil
	}
	if gerr == nil && strings.EqualFold(a.ID, "objectGUID") {
		return []string{guid}, false, nil
	}
	ids, err = s.userIDsOf([]string{e.DN})
	return ids, false, err
}

// isGroupEntry reports whether a DirSync entry is a group (objectClass is sent only when it
// changed, i.e. on creation).
func (s *ldapStream) isGroupEntry(e *ldap.Entry) bool {
	for _, c := range e.GetAttributeValues("objectClass") {
		if strings.EqualFold(c, "group") {
			return true
		}
	}
	return false
}

// isGroupDN reports whether dn is a group bridge reads (a base search with group_filter).
func (s *ldapStream) isGroupDN(dn string) bool {
	if !underBase(dn, s.groupBase) {
		return false
	}
	res, err := s.conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1,
		int(s.l.cfg.SearchTimeout/time.Second), false, s.l.cfg.GroupFilter, []string{"1.1"}, nil))
	return err == nil && len(res.Entries) == 1
}

// memberIDs returns the user a member DN names, or the users of the group it names (through
// nesting).
func (s *ldapStream) memberIDs(ctx context.Context, dn string) ([]string, error) {
	ids, err := s.userIDsOf([]string{dn})
	if err != nil || len(ids) > 0 {
		return ids, err
	}
	return s.inGroup(ctx, dn)
}

// inGroup returns the ids of the users in group dn, through nested groups (AD's in-chain
// matching rule); none when dn is not a group.
func (s *ldapStream) inGroup(ctx context.Context, dn string) ([]string, error) {
	r := s.reader(ctx)
	f := fmt.Sprintf("(&%s(memberOf:%s:=%s))", s.l.cfg.UserFilter, inChain, ldap.EscapeFilter(dn))
	es, err := r.search("users", s.userBase, f, []string{s.l.cfg.Attributes.ID})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range es {
		if id, err := s.l.id(e); err == nil && id != "" {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
