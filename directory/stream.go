package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// ErrNoChangeStream is returned by Follow when the server offers no change stream bridge can
// follow (no syncprov on OpenLDAP, no DirSync, a SCIM service without meta.lastModified
// filters): the periodic full reconcile is then the only trigger.
var ErrNoChangeStream = errors.New("the directory offers no change stream")

// ChangeSet is one batch of what a directory's change stream reported, reduced to the people
// it affects.
type ChangeSet struct {
	// Users are the ids of the users whose entry changed or went away, and of those who
	// joined or left a group (directly or through a nested group), sorted.
	Users []string
	// Full says the stream cannot name everyone affected (a first start without a cookie,
	// changes while bridge was away that the server can only report as "everything still
	// present", a group deleted or renamed, more people than are worth naming): reconcile the
	// whole directory.
	Full bool
	// Cookie is the stream's position after these changes: keep it once they are applied and
	// pass it to the next Follow to resume there. nil leaves the kept one as it is.
	Cookie []byte
	// Ready marks the batch that ends the catch-up after (re)connecting: from here on the
	// stream reports changes as they happen.
	Ready bool
	// At is when bridge received the (last) change.
	At time.Time
	// Modified is the newest modification time the server reported for these changes
	// (modifyTimestamp, whenChanged; whole seconds), zero when it said none: At - Modified is
	// the stream's lag.
	Modified time.Time
}

// Empty reports whether the batch names nobody and asks for nothing.
func (c ChangeSet) Empty() bool { return len(c.Users) == 0 && !c.Full }

// Stream is a directory's change feed: OpenLDAP syncrepl (LDAPSource.Follow on a server with
// syncprov), Active Directory DirSync, upstream SCIM polled by meta.lastModified, an LDIF file
// watched for changes.
type Stream interface {
	// StreamName names the stream for logs, metrics and the key its cookie is kept under;
	// it changes when what the stream follows (server kind, bases, filters) changes, so that
	// a cookie is never used with another search.
	StreamName() string
	// Follow reports changes to changed, from the position cookie (nil: from now, with a
	// first batch asking for a full reconcile), until ctx ends (nil) or the stream breaks
	// (an error; the caller reconnects). changed is called from Follow's goroutine, one
	// batch at a time.
	Follow(ctx context.Context, cookie []byte, changed func(ChangeSet)) error
}

// scopedReader is a source that reads some users without reading everyone (the LDAP source;
// provisioning.ScopedSource is the same method): the users with these ids that exist, the
// groups they are in through nesting, resolved, and the number of users in the whole
// directory.
type scopedReader interface {
	ReadUsers(ctx context.Context, ids []string) (*Snapshot, int, error)
}

// idSet collects user ids.
type idSet map[string]bool

func (s idSet) add(ids ...string) {
	for _, id := range ids {
		if id != "" {
			s[id] = true
		}
	}
}

func (s idSet) sorted() []string {
	out := make([]string, 0, len(s))
	for id := range s {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// OpenStream returns the change stream of the configured source: the LDAP source's syncrepl
// or DirSync stream, the LDIF file's watcher, polled every poll interval where the stream
// must be polled. scim_push needs none (what IdPs push is queued as it arrives).
func OpenStream(cfg Config, logger *slog.Logger, poll time.Duration) (Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("directory config: %w", err)
	}
	switch strings.ToLower(cfg.Type) {
	case TypeLDAP:
		l := *cfg.LDAP
		if err := l.LoadSecrets(); err != nil {
			return nil, fmt.Errorf("directory config: ldap.%w", err)
		}
		src, err := NewLDAP(l, logger)
		if err != nil {
			return nil, err
		}
		src.SetPollInterval(poll)
		return src, nil
	case TypeLDIF:
		src, err := NewLDIF(*cfg.LDIF, logger)
		if err != nil {
			return nil, err
		}
		src.SetPollInterval(poll)
		return src, nil
	case TypeSCIM:
		src, err := NewSCIMSource(*cfg.SCIM, logger, nil)
		if err != nil {
			return nil, err
		}
		src.SetPollInterval(poll)
		return src, nil
	}
	return nil, fmt.Errorf("directory type %s has no change stream to follow", cfg.Type)
}
