package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// reconcilerStateName is the bridge_state row of the reconciler's state.
const reconcilerStateName = "reconciler"

// LoadState returns the reconciler's state document as the last SaveState stored it, or nil
// when none was saved yet. With SaveState it makes the Store a provisioning.StateBackend:
// every replica sharing the database sees the same state.
func (s *Store) LoadState(ctx context.Context) ([]byte, error) {
	var data string
	err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT data FROM bridge_state WHERE name = ?`),
		reconcilerStateName).Scan(&data)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("load state from the store: %w", err)
	}
	return []byte(data), nil
}

// SaveState stores data (the reconciler's state, a JSON document) in place of the previous
// one, in one statement (retried like Update's transaction on a conflict with another one).
func (s *Store) SaveState(ctx context.Context, data []byte) error {
	err := s.retry(ctx, "save state", func() error {
		_, err := s.db.ExecContext(ctx, s.d.rebind(`INSERT INTO bridge_state (name, data, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`),
			reconcilerStateName, string(data), formatTime(s.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("save state to the store: %w", err)
	}
	return nil
}

// streamStatePrefix prefixes the bridge_state rows of change stream cookies.
const streamStatePrefix = "stream:"

// LoadStreamCookie returns the cookie SaveStreamCookie last kept for the change stream name
// (a directory's syncrepl or DirSync position), or nil when there is none.
func (s *Store) LoadStreamCookie(ctx context.Context, name string) ([]byte, error) {
	var data string
	err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT data FROM bridge_state WHERE name = ?`),
		streamStatePrefix+name).Scan(&data)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("load the cookie of stream %s from the store: %w", name, err)
	}
	cookie, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, fmt.Errorf("load the cookie of stream %s from the store: %w", name, err)
	}
	return cookie, nil
}

// SaveStreamCookie keeps cookie as the position of the change stream name, shared by every
// replica, so that a restarted bridge resumes there.
func (s *Store) SaveStreamCookie(ctx context.Context, name string, cookie []byte) error {
	err := s.retry(ctx, "save stream cookie", func() error {
		_, err := s.db.ExecContext(ctx, s.d.rebind(`INSERT INTO bridge_state (name, data, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`),
			streamStatePrefix+name, base64.StdEncoding.EncodeToString(cookie), formatTime(s.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("save the cookie of stream %s to the store: %w", name, err)
	}
	return nil
}

// runsStateName is the bridge_state row of the last runs' reports.
const runsStateName = "runs"

// AppendRun adds report (one run's compact report, a JSON document) in front of the last
// runs' reports, keeping the newest keep, so that every replica and one-shot command
// (bridge sync, bridge sso apply) sees the runs of all of them. With LoadRuns it makes the
// Store a provisioning.RunLog.
func (s *Store) AppendRun(ctx context.Context, report []byte, keep int) error {
	if !json.Valid(report) {
		return errors.New("append run: the report is not a JSON document")
	}
	err := s.retry(ctx, "append run", func() error {
		tx, err := s.begin(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		var data string
		err = tx.QueryRowContext(ctx, `SELECT data FROM bridge_state WHERE name = ?`+s.d.forUpdate, runsStateName).Scan(&data)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var runs []json.RawMessage
		if data != "" {
			if err := json.Unmarshal([]byte(data), &runs); err != nil {
				runs = nil // a damaged history is replaced, never a reason to fail a run
			}
		}
		runs = append([]json.RawMessage{report}, runs...)
		if len(runs) > keep {
			runs = runs[:max(keep, 0)]
		}
		b, err := json.Marshal(runs)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO bridge_state (name, data, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
			runsStateName, string(b), formatTime(s.now())); err != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return fmt.Errorf("save the run's report to the store: %w", err)
	}
	return nil
}

// LoadRuns returns the reports AppendRun kept, newest first (none: nil).
func (s *Store) LoadRuns(ctx context.Context) ([][]byte, error) {
	var data string
	err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT data FROM bridge_state WHERE name = ?`), runsStateName).Scan(&data)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("load the last runs from the store: %w", err)
	}
	var runs []json.RawMessage
	if err := json.Unmarshal([]byte(data), &runs); err != nil {
		return nil, fmt.Errorf("load the last runs from the store: %w", err)
	}
	out := make([][]byte, len(runs))
	for i, r := range runs {
		out[i] = r
	}
	return out, nil
}
