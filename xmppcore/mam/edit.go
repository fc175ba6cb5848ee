package mam

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Edit replaces the body of message id. Only its author may edit it, and
// only personal and chat messages that are not retracted (ErrForbidden);
// an unknown id is ErrNotFound. The full-text index follows.
func (s *Store) Edit(ctx context.Context, editorID, id int64, body string) (*Message, error) {
	if len(body) > MaxBody {
		return nil, fmt.Errorf("%w: body longer than %d bytes", ErrInvalid, MaxBody)
	}
	return s.change(ctx, editorID, id, func(m *Message) {
		m.Body = body
	})
}

// Retract deletes message id for everyone: the row stays (its id keeps
// paging and delivery marks stable) with body and payload emptied and the
// deleted flag set. Only the author may retract.
func (s *Store) Retract(ctx context.Context, editorID, id int64) (*Message, error) {
	return s.change(ctx, editorID, id, func(m *Message) {
		m.Body, m.Payload, m.Deleted = "", "", true
	})
}

func (s *Store) change(ctx context.Context, editorID, id int64, f func(m *Message)) (*Message, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	var out *Message
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		var r msgRow
		err := tx.GetContext(ctx, &r, tx.Rebind(`SELECT `+msgColumns+` FROM messages m WHERE m.id = ?`), id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		m := r.message()
		if editorID == 0 || m.FromID != editorID || m.Deleted || (m.Kind != KindChat && m.Kind != KindGroupchat) {
			return ErrForbidden
		}
		f(&m)
		now := time.Now().UTC()
		m.EditedAt = &now
		terms := docTerms(&m)
		if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE messages SET body = ?, payload = ?, deleted = ?, edited_at = ? WHERE id = ?`),
			m.Body, m.Payload, m.Deleted, now.UnixMicro(), id); err != nil {
			return err
		}
		if err := s.reindex(ctx, tx, id, terms); err != nil {
			return err
		}
		out = &m
		return nil
	})
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrForbidden) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("mam: change %d: %w", id, err)
	}
	return out, nil
}

// reindex replaces the full-text terms of message id ("" = not indexed).
func (s *Store) reindex(ctx context.Context, tx *sqlx.Tx, id int64, terms string) error {
	if s.pg {
		_, err := tx.ExecContext(ctx, `UPDATE messages SET fts = CAST($1 AS tsvector) WHERE id = $2`,
			sql.NullString{String: terms, Valid: terms != ""}, id)
		return err
	}
	if pending, err := ftsPending(ctx, tx, id); err != nil || pending {
		return err // a pending message is indexed later, as it then reads
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM messages_fts WHERE rowid = ?`, id); err != nil {
		return err
	}
	if terms == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO messages_fts (rowid, terms) VALUES (?, ?)`, id, terms)
	return err
}
