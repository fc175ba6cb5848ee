package xmppcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// A remembered presence is the show and status a user chose in a client
// that does not keep them itself (the web client): "online", "away" or
// "dnd" and a status text, stored (user_status, migration 0230) so that every new
// session of that door starts with them — do-not-disturb survives
// reconnects and reloads, and Jabber contacts see it like any presence.
// Automatic states (idle "away") are not remembered.

// RememberPresence stores the user's chosen presence: show is "online",
// "away" or "dnd" (anything else is refused), status at most MaxStatusLen
// bytes.
func (s *Server) RememberPresence(ctx context.Context, userID int64, show, status string) error {
	if show != "online" && show != "away" && show != "dnd" {
		return fmt.Errorf("xmppcore: remember presence %q: want online, away or dnd", show)
	}
	if len(status) > MaxStatusLen {
		return fmt.Errorf("xmppcore: remember presence: status longer than %d bytes", MaxStatusLen)
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	_, err := s.store.db.ExecContext(ctx, s.store.db.Rebind(`INSERT INTO user_status (user_id, show, status, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET show = excluded.show, status = excluded.status, updated_at = excluded.updated_at`),
		userID, show, status, time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("xmppcore: remember presence of %d: %w", userID, err)
	}
	return nil
}

// RememberedPresence returns the user's chosen presence; "online" and ""
// when they never chose one.
func (s *Server) RememberedPresence(ctx context.Context, userID int64) (show, status string, err error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var row struct {
		Show   string `db:"show"`
		Status string `db:"status"`
	}
	err = s.store.db.GetContext(ctx, &row, s.store.db.Rebind(`SELECT show, status FROM user_status WHERE user_id = ?`), userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "online", "", nil
	} else if err != nil {
		return "", "", fmt.Errorf("xmppcore: presence of %d: %w", userID, err)
	}
	return row.Show, row.Status, nil
}
