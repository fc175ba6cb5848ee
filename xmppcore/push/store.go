package push

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Registration is one XEP-0357 registration of an account: where its
// client's app server wants the notifications (JID and node), with the
// publish-options form the client gave ("" for none).
type Registration struct {
	UserID  int64  `db:"user_id"`
	JID     string `db:"jid"`
	Node    string `db:"node"`
	Options string `db:"options"`
}

// Store keeps registrations in push_registrations (migration 0300).
type Store struct{ db *sqlx.DB }

// NewStore returns the store over db.
func NewStore(db *sqlx.DB) *Store { return &Store{db: db} }

// Enable records r, replacing the options of the same JID and node. It
// refuses with ErrTooMany when the account has MaxRegistrations others.
func (st *Store) Enable(ctx context.Context, r Registration) error {
	tx, err := st.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("push: enable: %w", err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.GetContext(ctx, &n, tx.Rebind(`SELECT COUNT(*) FROM push_registrations WHERE user_id = ? AND NOT (jid = ? AND node = ?)`),
		r.UserID, r.JID, r.Node); err != nil {
		return fmt.Errorf("push: enable: %w", err)
	}
	if n >= MaxRegistrations {
		return ErrTooMany
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO push_registrations (user_id, jid, node, options, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id, jid, node) DO UPDATE SET options = excluded.options`),
		r.UserID, r.JID, r.Node, r.Options, time.Now().UnixMicro()); err != nil {
		return fmt.Errorf("push: enable: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("push: enable: %w", err)
	}
	return nil
}

// Disable removes the account's registrations at jid: the one of node, or
// every one when node is "". It returns how many went.
func (st *Store) Disable(ctx context.Context, userID int64, jid, node string) (int64, error) {
	q, args := `DELETE FROM push_registrations WHERE user_id = ? AND jid = ?`, []any{userID, jid}
	if node != "" {
		q += ` AND node = ?`
		args = append(args, node)
	}
	res, err := st.db.ExecContext(ctx, st.db.Rebind(q), args...)
	if err != nil {
		return 0, fmt.Errorf("push: disable: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// List returns the account's registrations, oldest first.
func (st *Store) List(ctx context.Context, userID int64) ([]Registration, error) {
	var out []Registration
	if err := st.db.SelectContext(ctx, &out, st.db.Rebind(`SELECT user_id, jid, node, options FROM push_registrations
		WHERE user_id = ? ORDER BY created_at, jid, node`), userID); err != nil {
		return nil, fmt.Errorf("push: list %d: %w", userID, err)
	}
	return out, nil
}
