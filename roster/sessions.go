package roster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jmoiron/sqlx"
)

// endSessions ends, in tx, what keeps users signed in without a password
// check: their web sessions (cookies) and unused login links. Streams and
// bridge connections are closed by the running servers on the event the
// caller writes (password, deactivated, logout). A later reactivation
// restores the account, never these.
func endSessions(ctx context.Context, tx sqlx.ExtContext, ids []int64) error {
	return batch(len(ids), 1, func(lo, hi int) error {
		in := "?" + strings.Repeat(", ?", hi-lo-1)
		args := make([]any, 0, hi-lo)
		for _, id := range ids[lo:hi] {
			args = append(args, id)
		}
		for _, table := range []string{"web_sessions", "login_tokens"} {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM `+table+` WHERE user_id IN (`+in+`)`), args...); err != nil {
				return fmt.Errorf("end sessions: %w", err)
			}
		}
		return nil
	})
}

// Logout ends every session of the user, on every node: web sessions and
// unused login links at once, XMPP streams and web client connections when
// the servers see the "logout" event (within EventPollInterval).
func (s *Store) Logout(ctx context.Context, login string) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		var id int64
		err := tx.GetContext(ctx, &id, tx.Rebind(`SELECT id FROM users WHERE login = ?`), normLogin(login))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := endSessions(ctx, tx, []int64{id}); err != nil {
			return err
		}
		return insertEvents(ctx, tx, []Event{{Kind: EventLogout, UserID: id}})
	})
	if errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("roster: log out %q: %w", login, err)
	}
	return nil
}

// sortedIDs returns the keys of set, sorted.
func sortedIDs(set map[int64]bool) []int64 {
	ids := make([]int64, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}
