package bridge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"vestnik/roster"
	"vestnik/xmppcore/mam"
)

// messageRow is a row of the archive's messages table, read here only for
// the conversation list (last message, unread counts).
type messageRow struct {
	ID        int64          `db:"id"`
	CreatedAt int64          `db:"created_at"`
	Kind      string         `db:"kind"`
	FromID    sql.NullInt64  `db:"from_id"`
	ToID      sql.NullInt64  `db:"to_id"`
	ChatID    sql.NullInt64  `db:"chat_id"`
	OriginID  string         `db:"origin_id"`
	Body      string         `db:"body"`
	EditedAt  sql.NullInt64  `db:"edited_at"`
	Deleted   bool           `db:"deleted"`
	Payload   sql.NullString `db:"payload"`
}

const messageCols = `m.id, m.created_at, m.kind, m.from_id, m.to_id, m.chat_id, m.origin_id, m.body, m.edited_at, m.deleted`

func (r messageRow) message() Message {
	m := Message{ID: r.ID, Kind: r.Kind, From: r.FromID.Int64, To: r.ToID.Int64, Chat: r.ChatID.Int64,
		Body: r.Body, Time: r.CreatedAt / 1000, OriginID: r.OriginID, Edited: r.EditedAt.Valid, Deleted: r.Deleted}
	if m.Deleted {
		m.Body = ""
	}
	return m
}

// Conversation is one line of the recent conversations list.
type Conversation struct {
	Key      string   `json:"key"` // "u<id>" or "c<id>"
	Last     *Message `json:"last,omitempty"`
	Unread   int      `json:"unread"`
	Read     int64    `json:"read,omitempty"`      // the viewer's read mark
	PeerRead int64    `json:"peer_read,omitempty"` // how far the colleague has read (personal)
}

// conversations lists the user's personal conversations and chats with
// their last message and unread count.
func (b *Bridge) conversations(ctx context.Context, userID int64, chatIDs []int64) ([]Conversation, error) {
	var rows []messageRow
	err := b.db.SelectContext(ctx, &rows, b.db.Rebind(`SELECT `+messageCols+` FROM messages m JOIN (
		SELECT MAX(id) AS id FROM messages WHERE kind = 'chat' AND from_id = ? GROUP BY to_id
		UNION SELECT MAX(id) AS id FROM messages WHERE kind = 'chat' AND to_id = ? GROUP BY from_id
	) x ON m.id = x.id`), userID, userID)
	if err != nil {
		return nil, fmt.Errorf("bridge: conversations: %w", err)
	}
	byPeer := map[int64]*Conversation{}
	var out []*Conversation
	for _, r := range rows {
		m := r.message()
		peer := m.To
		if m.From != userID {
			peer = m.From
		}
		c := byPeer[peer]
		if c == nil {
			c = &Conversation{Key: fmt.Sprintf("u%d", peer)}
			byPeer[peer] = c
			out = append(out, c)
		}
		if c.Last == nil || c.Last.ID < m.ID {
			mm := m
			c.Last = &mm
		}
	}
	// Unread personal messages per sender, after the user's read mark.
	var unread []struct {
		Peer int64 `db:"peer"`
		N    int   `db:"n"`
	}
	err = b.db.SelectContext(ctx, &unread, b.db.Rebind(`SELECT m.from_id AS peer, COUNT(*) AS n FROM messages m
		LEFT JOIN read_marks r ON r.user_id = m.to_id AND r.peer_id = m.from_id AND r.chat_id = 0
		WHERE m.to_id = ? AND m.kind = 'chat' AND m.deleted = FALSE AND m.id > COALESCE(r.last_id, 0)
		GROUP BY m.from_id`), userID)
	if err != nil {
		return nil, fmt.Errorf("bridge: unread: %w", err)
	}
	for _, u := range unread {
		if c := byPeer[u.Peer]; c != nil {
			c.Unread = u.N
		}
	}
	// Read marks both ways for personal conversations.
	var marks []struct {
		User int64 `db:"user_id"`
		Peer int64 `db:"peer_id"`
		Last int64 `db:"last_id"`
	}
	err = b.db.SelectContext(ctx, &marks, b.db.Rebind(`SELECT user_id, peer_id, last_id FROM read_marks WHERE chat_id = 0 AND (user_id = ? OR peer_id = ?)`), userID, userID)
	if err != nil {
		return nil, fmt.Errorf("bridge: read marks: %w", err)
	}
	for _, mk := range marks {
		if mk.User == userID {
			if c := byPeer[mk.Peer]; c != nil {
				c.Read = mk.Last
			}
		} else if c := byPeer[mk.User]; c != nil {
			c.PeerRead = mk.Last
		}
	}
	for _, chatID := range chatIDs {
		c, err := b.chatConversation(ctx, userID, chatID)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	res := make([]Conversation, len(out))
	for i, c := range out {
		res[i] = *c
	}
	return res, nil
}

func (b *Bridge) chatConversation(ctx context.Context, userID, chatID int64) (*Conversation, error) {
	c := &Conversation{Key: fmt.Sprintf("c%d", chatID)}
	// What the user may read of the chat: the archive's access rule.
	readable, rargs := mam.Readable(userID)
	var r messageRow
	err := b.db.GetContext(ctx, &r, b.db.Rebind(`SELECT `+messageCols+` FROM messages m WHERE m.chat_id = ? AND `+readable+` ORDER BY m.id DESC LIMIT 1`),
		append([]any{chatID}, rargs...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bridge: chat %d last message: %w", chatID, err)
	}
	m := r.message()
	c.Last = &m
	err = b.db.GetContext(ctx, &c.Read, b.db.Rebind(`SELECT COALESCE(MAX(last_id), 0) FROM read_marks WHERE user_id = ? AND chat_id = ?`), userID, chatID)
	if err != nil {
		return nil, fmt.Errorf("bridge: chat %d read mark: %w", chatID, err)
	}
	err = b.db.GetContext(ctx, &c.Unread, b.db.Rebind(`SELECT COUNT(*) FROM messages m WHERE m.chat_id = ? AND m.id > ? AND m.kind = 'groupchat' AND m.deleted = FALSE AND (m.from_id IS NULL OR m.from_id <> ?) AND `+readable),
		append([]any{chatID, c.Read, userID}, rargs...)...)
	if err != nil {
		return nil, fmt.Errorf("bridge: chat %d unread: %w", chatID, err)
	}
	return c, nil
}

// setReadMark raises the user's read mark of a conversation (never lowers it).
func (b *Bridge) setReadMark(ctx context.Context, userID int64, to Target, upTo int64) error {
	_, err := b.db.ExecContext(ctx, b.db.Rebind(`INSERT INTO read_marks (user_id, peer_id, chat_id, last_id) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, peer_id, chat_id) DO UPDATE SET last_id = CASE WHEN excluded.last_id > read_marks.last_id THEN excluded.last_id ELSE read_marks.last_id END`),
		userID, to.User, to.Chat, upTo)
	if err != nil {
		return fmt.Errorf("bridge: read mark: %w", err)
	}
	return nil
}

// peerRead is how far peer has read their conversation with userID.
func (b *Bridge) peerRead(ctx context.Context, userID, peer int64) (int64, error) {
	var n int64
	err := b.db.GetContext(ctx, &n, b.db.Rebind(`SELECT COALESCE(MAX(last_id), 0) FROM read_marks WHERE user_id = ? AND peer_id = ? AND chat_id = 0`), peer, userID)
	if err != nil {
		return 0, fmt.Errorf("bridge: peer read mark: %w", err)
	}
	return n, nil
}

// Notification is a portal notification (REST POST /notifications).
type Notification struct {
	ID   int64  `json:"id"`
	Text string `json:"text"`
	Link string `json:"link,omitempty"`
	Time int64  `json:"time"` // unix ms
	Read bool   `json:"read"`
}

type notificationRow struct {
	ID        int64         `db:"id"`
	Text      string        `db:"text"`
	Link      string        `db:"link"`
	CreatedAt int64         `db:"created_at"`
	ReadAt    sql.NullInt64 `db:"read_at"`
}

func (r notificationRow) notification() Notification {
	return Notification{ID: r.ID, Text: r.Text, Link: r.Link, Time: r.CreatedAt / 1000, Read: r.ReadAt.Valid}
}

func (b *Bridge) notifications(ctx context.Context, userID, beforeID int64, limit int, unreadOnly bool) ([]Notification, int, error) {
	q := `SELECT id, text, link, created_at, read_at FROM notifications WHERE user_id = ?`
	args := []any{userID}
	if beforeID > 0 {
		q += ` AND id < ?`
		args = append(args, beforeID)
	}
	if unreadOnly {
		q += ` AND read_at IS NULL`
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	var rows []notificationRow
	if err := b.db.SelectContext(ctx, &rows, b.db.Rebind(q), args...); err != nil {
		return nil, 0, fmt.Errorf("bridge: notifications: %w", err)
	}
	out := make([]Notification, len(rows))
	for i, r := range rows {
		out[i] = r.notification()
	}
	var unread int
	if err := b.db.GetContext(ctx, &unread, b.db.Rebind(`SELECT COUNT(*) FROM notifications WHERE user_id = ? AND read_at IS NULL`), userID); err != nil {
		return nil, 0, fmt.Errorf("bridge: unread notifications: %w", err)
	}
	return out, unread, nil
}

func (b *Bridge) markNotifications(ctx context.Context, userID int64, ids []int64) error {
	now := nowMicro()
	if ids == nil {
		_, err := b.db.ExecContext(ctx, b.db.Rebind(`UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL`), now, userID)
		if err != nil {
			return fmt.Errorf("bridge: mark notifications: %w", err)
		}
		return nil
	}
	for _, id := range ids {
		_, err := b.db.ExecContext(ctx, b.db.Rebind(`UPDATE notifications SET read_at = ? WHERE user_id = ? AND id = ? AND read_at IS NULL`), now, userID, id)
		if err != nil {
			return fmt.Errorf("bridge: mark notification %d: %w", id, err)
		}
	}
	return nil
}

func (b *Bridge) widgetState(ctx context.Context, u *roster.User) (map[string]any, error) {
	notes, unreadNotes, err := b.notifications(ctx, u.ID, 0, 5, true)
	if err != nil {
		return nil, err
	}
	var unread int
	err = b.db.GetContext(ctx, &unread, b.db.Rebind(`SELECT COUNT(*) FROM messages m
		LEFT JOIN read_marks r ON r.user_id = m.to_id AND r.peer_id = m.from_id AND r.chat_id = 0
		WHERE m.to_id = ? AND m.kind = 'chat' AND m.deleted = FALSE AND m.id > COALESCE(r.last_id, 0)`), u.ID)
	if err != nil {
		return nil, fmt.Errorf("bridge: widget unread: %w", err)
	}
	return map[string]any{
		"user":                 map[string]any{"id": u.ID, "name": u.Name},
		"unread_messages":      unread,
		"unread_notifications": unreadNotes,
		"notifications":        notes,
	}, nil
}
