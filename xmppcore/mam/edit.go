package mam

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// The rule for changing a message, in one place for every door (XMPP
// XEP-0308/0424, the bridge, REST): only its author, only a personal or
// chat message, not once it is retracted (ErrRetracted), and only within
// Options.EditWindow of sending it (ErrTooLate). An unknown id, or one
// the editor may not read, is ErrNotFound.

// Edit replaces the body of message id (the last body wins). The
// full-text index follows.
func (s *Store) Edit(ctx context.Context, editorID, id int64, body string) (*Message, error) {
	if len(body) > MaxBody {
		return nil, fmt.Errorf("%w: body longer than %d bytes", ErrInvalid, MaxBody)
	}
	if strings.TrimSpace(body) == "" {
		return nil, fmt.Errorf("%w: empty body (retract the message instead)", ErrInvalid)
	}
	return s.change(ctx, editorID, id, func(m *Message) error {
		m.Body = body
		return nil
	})
}

// EditWith is Edit where f computes the new body and payload from the
// stored message, inside the edit's transaction (a rich message's text,
// attachment and keyboard change together). An error from f refuses the
// edit and is returned.
func (s *Store) EditWith(ctx context.Context, editorID, id int64, f func(m *Message) error) (*Message, error) {
	return s.change(ctx, editorID, id, func(m *Message) error {
		if err := f(m); err != nil {
			return err
		}
		if len(m.Body) > MaxBody || len(m.Payload) > MaxPayload {
			return fmt.Errorf("%w: body longer than %d bytes", ErrInvalid, MaxBody)
		}
		if strings.TrimSpace(m.Body) == "" {
			return fmt.Errorf("%w: empty body (retract the message instead)", ErrInvalid)
		}
		return nil
	})
}

// Retract deletes message id for everyone: the row stays (its id keeps
// paging and delivery marks stable) as a tombstone, with body and payload
// emptied, the deleted flag set and its reactions removed.
func (s *Store) Retract(ctx context.Context, editorID, id int64) (*Message, error) {
	return s.change(ctx, editorID, id, func(m *Message) error {
		m.Body, m.Payload, m.Deleted = "", "", true
		return nil
	})
}

// mayChange applies the rule to m for editor at now.
func (s *Store) mayChange(m *Message, editorID int64, now time.Time) error {
	if editorID == 0 || m.FromID != editorID || (m.Kind != KindChat && m.Kind != KindGroupchat) {
		return ErrForbidden
	}
	if m.Deleted {
		return ErrRetracted
	}
	if w := s.opts.EditWindow; w > 0 && now.Sub(m.CreatedAt) > w {
		return ErrTooLate
	}
	return nil
}

// EditWindow is how long after sending a message its author may change
// it (0: no limit).
func (s *Store) EditWindow() time.Duration { return max(s.opts.EditWindow, 0) }

func (s *Store) change(ctx context.Context, editorID, id int64, f func(m *Message) error) (*Message, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	if err := s.Settle(ctx); err != nil {
		return nil, err
	}
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
		now := time.Now().UTC()
		if m.FromID != editorID {
			// Someone else's message: not found when they cannot
			// even read it, forbidden otherwise.
			cond, args := readable(editorID)
			var n int
			if err := tx.GetContext(ctx, &n, tx.Rebind(`SELECT COUNT(*) FROM messages m WHERE m.id = ? AND `+cond),
				append([]any{id}, args...)...); err != nil {
				return err
			}
			if n == 0 {
				return ErrNotFound
			}
		}
		if err := s.mayChange(&m, editorID, now); err != nil {
			return err
		}
		if err := f(&m); err != nil {
			return err
		}
		m.EditedAt = &now
		terms := docTerms(&m)
		if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE messages SET body = ?, payload = ?, deleted = ?, edited_at = ? WHERE id = ?`),
			m.Body, m.Payload, m.Deleted, now.UnixMicro(), id); err != nil {
			return err
		}
		if err := s.reindex(ctx, tx, id, terms); err != nil {
			return err
		}
		if m.Deleted {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM reactions WHERE message_id = ?`), id); err != nil {
				return err
			}
		}
		kind := ChangeUpdated
		if m.Deleted {
			kind = ChangeDeleted
		}
		if err := s.tell(ctx, tx, Change{Kind: kind, Message: &m, UserID: editorID}); err != nil {
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

// Ref names a message the way a door knows it: by its archive id (the
// bridge, REST, XEP-0359 stanza-id), or by the id its client gave it in
// a conversation (XEP-0308, XEP-0424 and XEP-0444 name messages by the
// id attribute or origin-id of the original in 1:1 chats, by the room's
// stanza-id in group chats; both are tried).
type Ref struct {
	ID int64
	// Client is the id a client used; With (the other party of a
	// personal conversation) or ChatID says where to look.
	Client       string
	With, ChatID int64
	// Author, when set, restricts a Client lookup to that author's
	// messages (corrections and retractions name one's own).
	Author int64
}

// ClientIDWindow is how many of a conversation's latest messages a
// client's id is looked for among (Resolve): clients correct, retract,
// react to and answer recent messages; an older one is still named by
// its archive id (the bridge, REST, the room stanza-id of XEP-0424 and
// XEP-0444).
const ClientIDWindow = 5000

// Resolve returns the message ref names, if viewer may read it; a
// message outside the conversation the ref names is ErrNotFound.
func (s *Store) Resolve(ctx context.Context, viewer int64, ref Ref) (*Message, error) {
	if ref.ID != 0 {
		m, err := s.GetFor(ctx, viewer, ref.ID)
		if err != nil {
			return nil, err
		}
		if !ref.inConversation(viewer, m) {
			return nil, ErrNotFound
		}
		return m, nil
	}
	if ref.Client == "" || len(ref.Client) > maxOriginID || (ref.With == 0) == (ref.ChatID == 0) {
		return nil, ErrNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	if err := s.Settle(ctx); err != nil {
		return nil, err
	}
	// The conversation's latest ClientIDWindow messages, by the index of
	// its scope (pair or chat): no index on origin_id, which would cost
	// every append a write to a page of random keys.
	var scope string
	var sargs []any
	if ref.ChatID != 0 {
		scope, sargs = `SELECT id FROM messages WHERE chat_id = ? ORDER BY id DESC LIMIT ?`, []any{ref.ChatID, ClientIDWindow}
	} else {
		scope, sargs = `SELECT id FROM messages WHERE pair_lo = ? AND pair_hi = ? ORDER BY id DESC LIMIT ?`,
			[]any{min(viewer, ref.With), max(viewer, ref.With), ClientIDWindow}
	}
	cond, args := readable(viewer)
	w := []string{`m.id IN (` + scope + `)`, `m.origin_id = ?`, cond}
	wargs := append(append(sargs, ref.Client), args...)
	if ref.Author != 0 {
		w = append(w, `m.from_id = ?`)
		wargs = append(wargs, ref.Author)
	}
	var r msgRow
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT `+msgColumns+` FROM messages m WHERE `+
		strings.Join(w, " AND ")+` ORDER BY m.id DESC LIMIT 1`), wargs...)
	if err == nil {
		m := r.message()
		return &m, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("mam: resolve %q: %w", ref.Client, err)
	}
	// Not a client id: an archive id (a room's stanza-id), also in the
	// form the MUC service gives messages without a client id ("m42").
	id, perr := strconv.ParseInt(strings.TrimPrefix(ref.Client, "m"), 10, 64)
	if perr != nil || id <= 0 {
		return nil, ErrNotFound
	}
	m, err := s.GetFor(ctx, viewer, id)
	if err != nil {
		return nil, err
	}
	if !ref.inConversation(viewer, m) || (ref.Author != 0 && m.FromID != ref.Author) {
		return nil, ErrNotFound
	}
	return m, nil
}

// inConversation reports whether m belongs where ref says (anywhere when
// it names no conversation).
func (ref Ref) inConversation(viewer int64, m *Message) bool {
	switch {
	case ref.ChatID != 0:
		return m.ChatID == ref.ChatID
	case ref.With != 0:
		return m.ChatID == 0 && (m.FromID == viewer && m.ToID == ref.With || m.FromID == ref.With && m.ToID == viewer)
	}
	return true
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

// ReplyTarget is the message a reply by author names (XEP-0461): one
// author may read, in the conversation ref names, not retracted. One
// cannot answer what one cannot see (ErrNotFound).
func (s *Store) ReplyTarget(ctx context.Context, author int64, ref Ref) (*Message, error) {
	m, err := s.Resolve(ctx, author, ref)
	if err != nil {
		return nil, err
	}
	if m.Deleted {
		return nil, ErrRetracted
	}
	if m.Kind == KindHeadline {
		return nil, ErrNotFound
	}
	return m, nil
}
