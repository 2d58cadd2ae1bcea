package store

import (
	"context"
	"database/sql"
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
