package mam

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"
)

// Offline delivery (XEP-0160) is a query over the archive: the personal
// messages to a user above the user's delivery mark.
//
// Delivery sequences: Append gives every personal message its
// recipient's next sequence number (messages.to_seq, counter
// deliveries.top_seq) in the transaction that stores it. The mark is the
// last contiguous sequence the user's clients confirmed (Mark.Seq) with
// the archive id of that message (Mark.ID, deliveries.last_id): for one
// recipient ids follow sequences, so everything not yet confirmed is
// above Mark.ID.

// MaxUndelivered bounds one Undelivered call.
const MaxUndelivered = 1000

// Mark is a user's delivery mark: every personal message to the user up
// to sequence Seq (archive id ID) was confirmed by one of the user's
// clients.
type Mark struct {
	Seq int64
	ID  int64
}

// Undelivered returns personal messages to userID with an id above the
// user's delivery mark, oldest first, at most limit (MaxUndelivered when
// limit <= 0 or larger). Retracted messages are left out.
func (s *Store) Undelivered(ctx context.Context, userID int64, limit int) ([]Message, error) {
	if limit <= 0 || limit > MaxUndelivered {
		limit = MaxUndelivered
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	var rows []msgRow
	err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT `+msgColumns+` FROM messages m
		WHERE m.to_id = ? AND m.kind = 'chat' AND NOT m.deleted
		  AND m.id > COALESCE((SELECT d.last_id FROM deliveries d WHERE d.user_id = ?), 0)
		ORDER BY m.id LIMIT ?`), userID, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("mam: undelivered for %d: %w", userID, err)
	}
	return messages(rows), nil
}

// UndeliveredAfter returns the personal messages to userID with an id
// above afterID, oldest first (so in sequence order), at most limit;
// retracted ones are included (Deleted set): they still take a sequence,
// which the caller confirms without delivering.
func (s *Store) UndeliveredAfter(ctx context.Context, userID, afterID int64, limit int) ([]Message, error) {
	if limit <= 0 || limit > MaxUndelivered {
		limit = MaxUndelivered
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	var rows []msgRow
	err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT `+msgColumns+` FROM messages m
		WHERE m.to_id = ? AND m.kind = 'chat' AND m.id > ?
		ORDER BY m.id LIMIT ?`), userID, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("mam: undelivered for %d: %w", userID, err)
	}
	return messages(rows), nil
}

// markSQL raises a mark (never lowers it): by sequence, the archive id
// following its sequence.
const markSQL = `INSERT INTO deliveries (user_id, last_id, mark_seq) VALUES (?, ?, ?)
	ON CONFLICT (user_id) DO UPDATE SET
		last_id = CASE WHEN excluded.mark_seq > deliveries.mark_seq THEN excluded.last_id ELSE deliveries.last_id END,
		mark_seq = CASE WHEN excluded.mark_seq > deliveries.mark_seq THEN excluded.mark_seq ELSE deliveries.mark_seq END`

// MarkDelivered records that userID has every personal message up to
// archive id upToID (a client that says what it has, such as the
// bridge's hello with last_id): the mark moves to the newest personal
// message to the user at or below upToID. The mark never goes down.
func (s *Store) MarkDelivered(ctx context.Context, userID, upToID int64) error {
	_, err := s.MarkUpTo(ctx, userID, upToID)
	return err
}

// MarkUpTo is MarkDelivered returning the resulting mark.
func (s *Store) MarkUpTo(ctx context.Context, userID, upToID int64) (Mark, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	var m Mark
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		var top []struct {
			Seq sql.NullInt64 `db:"to_seq"`
			ID  int64         `db:"id"`
		}
		if err := tx.SelectContext(ctx, &top, tx.Rebind(`SELECT to_seq, id FROM messages
			WHERE to_id = ? AND kind = 'chat' AND id <= ? ORDER BY id DESC LIMIT 1`), userID, upToID); err != nil {
			return err
		}
		if len(top) == 1 && top[0].Seq.Valid {
			if _, err := tx.ExecContext(ctx, tx.Rebind(markSQL), userID, top[0].ID, top[0].Seq.Int64); err != nil {
				return err
			}
		}
		var err error
		m, err = markTx(ctx, tx, userID)
		return err
	})
	if err != nil {
		return Mark{}, fmt.Errorf("mam: mark delivered for %d: %w", userID, err)
	}
	return m, nil
}

// StoreMarks raises the marks of many users (user id → mark) in one
// transaction: the periodic write of every online user's mark is one
// commit, not one per user. Rows are taken in user id order (Append's
// order), so a mark write and an append never wait on each other in a
// cycle.
func (s *Store) StoreMarks(ctx context.Context, marks map[int64]Mark) error {
	if len(marks) == 0 {
		return nil
	}
	users := make([]int64, 0, len(marks))
	for u := range marks {
		users = append(users, u)
	}
	slices.Sort(users)
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		st, err := tx.PreparexContext(ctx, tx.Rebind(markSQL))
		if err != nil {
			return err
		}
		defer st.Close()
		for _, u := range users {
			if _, err := st.ExecContext(ctx, u, marks[u].ID, marks[u].Seq); err != nil {
				return fmt.Errorf("user %d: %w", u, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mam: mark delivered: %w", err)
	}
	return nil
}

// DeliveryMark returns the archive id of the user's delivery mark (0
// when none).
func (s *Store) DeliveryMark(ctx context.Context, userID int64) (int64, error) {
	m, err := s.Mark(ctx, userID)
	return m.ID, err
}

// SeqOf returns the delivery sequence of personal message id to userID
// (0 when id is no personal message to that user).
func (s *Store) SeqOf(ctx context.Context, userID, id int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	var seq []sql.NullInt64
	if err := s.db.SelectContext(ctx, &seq, s.db.Rebind(`SELECT to_seq FROM messages
		WHERE id = ? AND to_id = ? AND kind = 'chat'`), id, userID); err != nil {
		return 0, fmt.Errorf("mam: sequence of %d: %w", id, err)
	}
	if len(seq) == 0 {
		return 0, nil
	}
	return seq[0].Int64, nil
}

// Mark returns the user's delivery mark (zero when none).
func (s *Store) Mark(ctx context.Context, userID int64) (Mark, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	m, err := markTx(ctx, s.db, userID)
	if err != nil {
		return Mark{}, fmt.Errorf("mam: delivery mark for %d: %w", userID, err)
	}
	return m, nil
}

func markTx(ctx context.Context, q sqlx.ExtContext, userID int64) (Mark, error) {
	var m struct {
		Seq int64 `db:"mark_seq"`
		ID  int64 `db:"last_id"`
	}
	err := sqlx.GetContext(ctx, q, &m, q.Rebind(`SELECT mark_seq, last_id FROM deliveries WHERE user_id = ?`), userID)
	if errors.Is(err, sql.ErrNoRows) {
		return Mark{}, nil
	}
	if err != nil {
		return Mark{}, err
	}
	return Mark{Seq: m.Seq, ID: m.ID}, nil
}

// AfterCopy makes the counters of an archive copied from SQLite
// (`vestnik db copy`) safe on PostgreSQL. SQLite numbers in memory and
// may store a delivery mark for a message routed before a commit that
// never came (a crash): its id and sequence are above every stored one.
// Here ids come from the table's sequence and delivery sequences from the
// counters, so both are raised past the marks; a new message would
// otherwise take an id or sequence a mark already passed, and offline
// delivery would skip it.
func AfterCopy(ctx context.Context, db *sqlx.DB) error {
	if db.DriverName() != "postgres" {
		return nil
	}
	if _, err := db.ExecContext(ctx, `UPDATE deliveries SET top_seq = mark_seq WHERE mark_seq > top_seq`); err != nil {
		return fmt.Errorf("mam: after copy: counters: %w", err)
	}
	if _, err := db.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('messages', 'id'), GREATEST(
		(SELECT COALESCE(MAX(id), 0) FROM messages), (SELECT COALESCE(MAX(last_id), 0) FROM deliveries), 1))`); err != nil {
		return fmt.Errorf("mam: after copy: ids: %w", err)
	}
	return nil
}
