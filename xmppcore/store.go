package xmppcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// queryTimeout bounds one query of the XMPP server's own tables.
const queryTimeout = 10 * time.Second

// store keeps the XMPP server's own state: last activity and blocklists
// (migration 0020).
type store struct{ db *sqlx.DB }

func (st *store) setLastSeen(ctx context.Context, userID int64, at time.Time, status string) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	_, err := st.db.ExecContext(ctx, st.db.Rebind(`INSERT INTO xmpp_last_seen (user_id, seen_at, status) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET seen_at = excluded.seen_at, status = excluded.status`), userID, at.UnixMicro(), status)
	if err != nil {
		return fmt.Errorf("xmppcore: store last seen of %d: %w", userID, err)
	}
	return nil
}

// lastSeen returns when the user was last online, ErrNotFound if never.
func (st *store) lastSeen(ctx context.Context, userID int64) (time.Time, string, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var row struct {
		SeenAt int64  `db:"seen_at"`
		Status string `db:"status"`
	}
	err := st.db.GetContext(ctx, &row, st.db.Rebind(`SELECT seen_at, status FROM xmpp_last_seen WHERE user_id = ?`), userID)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, "", ErrNotFound
	} else if err != nil {
		return time.Time{}, "", fmt.Errorf("xmppcore: last seen of %d: %w", userID, err)
	}
	return time.UnixMicro(row.SeenAt), row.Status, nil
}

// LastSeen returns when the user was last online (their last session
// ended), ErrNotFound if never: for the web client's "last seen".
func (s *Server) LastSeen(ctx context.Context, userID int64) (time.Time, error) {
	t, _, err := s.store.lastSeen(ctx, userID)
	return t, err
}

func (st *store) blocklist(ctx context.Context, userID int64) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var out []string
	err := st.db.SelectContext(ctx, &out, st.db.Rebind(`SELECT jid FROM xmpp_blocklist WHERE user_id = ? ORDER BY jid`), userID)
	if err != nil {
		return nil, fmt.Errorf("xmppcore: blocklist of %d: %w", userID, err)
	}
	return out, nil
}

// block adds jids to the blocklist in one transaction.
func (st *store) block(ctx context.Context, userID int64, jids []string) error {
	return st.withTx(ctx, func(tx *sqlx.Tx) error {
		for _, j := range jids {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO xmpp_blocklist (user_id, jid) VALUES (?, ?) ON CONFLICT DO NOTHING`), userID, j); err != nil {
				return err
			}
		}
		return nil
	})
}

// unblock removes jids (all of them when jids is empty).
func (st *store) unblock(ctx context.Context, userID int64, jids []string) error {
	return st.withTx(ctx, func(tx *sqlx.Tx) error {
		if len(jids) == 0 {
			_, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM xmpp_blocklist WHERE user_id = ?`), userID)
			return err
		}
		for _, j := range jids {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM xmpp_blocklist WHERE user_id = ? AND jid = ?`), userID, j); err != nil {
				return err
			}
		}
		return nil
	})
}

func (st *store) withTx(ctx context.Context, f func(tx *sqlx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	tx, err := st.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("xmppcore: begin: %w", err)
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return fmt.Errorf("xmppcore: blocklist: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("xmppcore: commit: %w", err)
	}
	return nil
}
