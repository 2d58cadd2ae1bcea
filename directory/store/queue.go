package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// SourceSCIMPush is the queue source of what IdPs push to the inbound SCIM endpoint (see
// QueueWrites).
const SourceSCIMPush = "scim_push"

// QueueEntry is one person waiting in the change queue.
type QueueEntry struct {
	// Subject is the directory id of the person whose data changed.
	Subject string
	// Source says who enqueued it last ("scim_push", "ldap_syncrepl", ...).
	Source string
	// Gen counts the enqueues of Subject; Done and Retry act only on the generation they
	// were given, so that a change queued again while a run applies the previous one is not
	// lost.
	Gen int64
	// Attempts counts the failed runs of this generation.
	Attempts int
	// Enqueued is when the oldest change still waiting for Subject was queued.
	Enqueued time.Time
	// NotBefore is the earliest next attempt.
	NotBefore time.Time
	// LastError is the error of the last failed attempt.
	LastError string
}

// QueueStats describes the change queue.
type QueueStats struct {
	// Depth is the number of people waiting.
	Depth int `json:"depth"`
	// Oldest is when the oldest waiting change was queued (zero when the queue is empty).
	Oldest time.Time `json:"oldest,omitzero"`
	// Failing is the number of entries whose last attempt failed.
	Failing int `json:"failing"`
	// LastError is the error of the most recent failed attempt still queued.
	LastError string `json:"lastError,omitempty"`
}

// OldestAge is how long the oldest waiting change has waited at now (0 when empty).
func (q QueueStats) OldestAge(now time.Time) time.Duration {
	if q.Depth == 0 || q.Oldest.IsZero() {
		return 0
	}
	return max(now.Sub(q.Oldest), 0)
}

// QueueWrites makes every later write of Create, Update and DeleteIf also put the people it
// affects into the change queue, in the same transaction, under source (SourceSCIMPush for
// the inbound SCIM endpoint): a user write queues that user, a group write the users behind
// the members it adds or removes, through nested groups (every member's users when the
// group is created, deleted, renamed or gets another externalId; see ChangedMembers).
// notify, when not nil, is called after each commit that queued someone (to wake a worker).
// Call it once, before the store is used by several goroutines.
func (s *Store) QueueWrites(source string, notify func()) {
	s.queueSource, s.queueNotify = source, notify
}

// Enqueue puts the people with these directory ids into the change queue under source, in
// one transaction. An id already waiting is not queued twice: it keeps its place (its oldest
// enqueue time), gets the new source, a new generation and is due at once.
func (s *Store) Enqueue(ctx context.Context, source string, ids ...string) error {
	if strings.TrimSpace(source) == "" {
		return fmt.Errorf("enqueue: source is empty")
	}
	if len(ids) == 0 {
		return nil
	}
	err := s.retry(ctx, "enqueue", func() error {
		tx, err := s.begin(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		if err := s.enqueue(ctx, tx, source, ids); err != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return fmt.Errorf("enqueue %d changes from %s: %w", len(ids), source, err)
	}
	if s.queueNotify != nil {
		s.queueNotify()
	}
	return nil
}

// enqueue writes the queue entries of ids inside tx.
func (s *Store) enqueue(ctx context.Context, tx *txn, source string, ids []string) error {
	now := s.now().UnixMilli()
	seen := make(map[string]bool, len(ids))
	sorted := slices.Clone(ids)
	slices.Sort(sorted) // the same lock order in every transaction: no deadlocks between them
	for _, id := range sorted {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		if _, err := tx.ExecContext(ctx, `INSERT INTO bridge_queue (subject, source, gen, attempts, enqueued_at, not_before, last_error)
			VALUES (?, ?, 1, 0, ?, ?, NULL)
			ON CONFLICT (subject) DO UPDATE SET source = excluded.source, gen = bridge_queue.gen + 1,
				attempts = 0, not_before = excluded.not_before`,
			id, source, now, now); err != nil {
			return fmt.Errorf("queue %s: %w", id, err)
		}
	}
	return nil
}

// queueWrite queues the people a write affects when QueueWrites is on (inside the write's
// transaction): the user itself, or the users behind a group's changed members.
func (s *Store) queueWrite(ctx context.Context, tx *txn, kind Kind, id string, before, after *Resource) error {
	if s.queueSource == "" {
		return nil
	}
	ids := []string{id}
	if kind == KindGroup {
		changed := ChangedMembers(before, after)
		if len(changed) == 0 {
			return nil
		}
		var err error
		if ids, err = s.expandUsers(ctx, tx, changed); err != nil {
			return fmt.Errorf("queue the users of group %s: %w", id, err)
		}
	}
	return s.enqueue(ctx, tx, s.queueSource, ids)
}

// queued tells QueueWrites' notify about a committed write that queued someone.
func (s *Store) queued() {
	if s.queueSource != "" && s.queueNotify != nil {
		s.queueNotify()
	}
}

// ChangedMembers returns the ids of the members (users and groups) a group write affects:
// every member when the group is created (before nil), deleted (after nil), renamed or given
// another externalId, else the members added and removed.
func ChangedMembers(before, after *Resource) []string {
	ids := func(r *Resource) []string {
		var out []string
		for _, m := range r.Members() {
			out = append(out, m.ID)
		}
		return out
	}
	switch {
	case before == nil && after == nil:
		return nil
	case before == nil:
		return ids(after)
	case after == nil:
		return ids(before)
	}
	b, a := ids(before), ids(after)
	if !strings.EqualFold(fmt.Sprint(before.Attributes["displayName"]), fmt.Sprint(after.Attributes["displayName"])) ||
		before.ExternalID != after.ExternalID {
		return append(b, a...)
	}
	var changed []string
	for _, id := range a {
		if !slices.Contains(b, id) {
			changed = append(changed, id)
		}
	}
	for _, id := range b {
		if !slices.Contains(a, id) {
			changed = append(changed, id)
		}
	}
	return changed
}

// DueEntries returns up to limit queue entries due at now, oldest first.
func (s *Store) DueEntries(ctx context.Context, now time.Time, limit int) ([]QueueEntry, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT subject, source, gen, attempts, enqueued_at, not_before, last_error
		FROM bridge_queue WHERE not_before <= ? ORDER BY enqueued_at, subject LIMIT ?`), now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("read the change queue: %w", err)
	}
	defer rows.Close()
	var out []QueueEntry
	for rows.Next() {
		var e QueueEntry
		var enq, nb int64
		var lastErr sql.NullString
		if err := rows.Scan(&e.Subject, &e.Source, &e.Gen, &e.Attempts, &enq, &nb, &lastErr); err != nil {
			return nil, fmt.Errorf("read the change queue: %w", err)
		}
		e.Enqueued, e.NotBefore, e.LastError = time.UnixMilli(enq).UTC(), time.UnixMilli(nb).UTC(), lastErr.String
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the change queue: %w", err)
	}
	return out, nil
}

// DoneEntries removes entries whose change was applied; an entry queued again since (another
// generation) stays.
func (s *Store) DoneEntries(ctx context.Context, entries []QueueEntry) error {
	return s.eachEntry(ctx, "done", entries, func(tx *txn, e QueueEntry) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM bridge_queue WHERE subject = ? AND gen = ?`, e.Subject, e.Gen)
		return err
	})
}

// RetryEntries records a failed attempt of entries: each is due again at notBefore, with
// reason as its last error; an entry queued again since keeps its new generation.
func (s *Store) RetryEntries(ctx context.Context, entries []QueueEntry, notBefore time.Time, reason string) error {
	return s.eachEntry(ctx, "retry", entries, func(tx *txn, e QueueEntry) error {
		_, err := tx.ExecContext(ctx, `UPDATE bridge_queue SET attempts = attempts + 1, not_before = ?, last_error = ?
			WHERE subject = ? AND gen = ?`, notBefore.UnixMilli(), nullString(reason), e.Subject, e.Gen)
		return err
	})
}

func (s *Store) eachEntry(ctx context.Context, what string, entries []QueueEntry, f func(*txn, QueueEntry) error) error {
	if len(entries) == 0 {
		return nil
	}
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b QueueEntry) int { return strings.Compare(a.Subject, b.Subject) })
	err := s.retry(ctx, "queue "+what, func() error {
		tx, err := s.begin(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		for _, e := range sorted {
			if err := f(tx, e); err != nil {
				return fmt.Errorf("%s: %w", e.Subject, err)
			}
		}
		return tx.Commit()
	})
	if err != nil {
		return fmt.Errorf("change queue: mark %d entries %s: %w", len(entries), what, err)
	}
	return nil
}

// QueueStats returns the depth of the change queue and the age of its oldest entry.
func (s *Store) QueueStats(ctx context.Context) (QueueStats, error) {
	var st QueueStats
	var oldest sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(enqueued_at), COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0) FROM bridge_queue`).
		Scan(&st.Depth, &oldest, &st.Failing); err != nil {
		return QueueStats{}, fmt.Errorf("read the change queue: %w", err)
	}
	if oldest.Valid {
		st.Oldest = time.UnixMilli(oldest.Int64).UTC()
	}
	if st.Failing > 0 {
		var msg sql.NullString
		err := s.db.QueryRowContext(ctx, `SELECT last_error FROM bridge_queue WHERE attempts > 0 ORDER BY not_before DESC LIMIT 1`).Scan(&msg)
		if err != nil && err != sql.ErrNoRows {
			return QueueStats{}, fmt.Errorf("read the change queue: %w", err)
		}
		st.LastError = msg.String
	}
	return st, nil
}
