package mam

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Read state, in one place: per user and conversation (a colleague or a
// chat) the archive id of the last message the user has read (table
// read_marks: peer_id for a personal conversation, chat_id for a chat,
// the other one 0). A mark only moves forward. Every door sets it
// through MarkRead (XEP-0333 <displayed/> from a Jabber client, the
// bridge's read frame, REST); unread counts and "seen by" are read from
// it here, under the archive's access rule.

// ReadMark is how far a user has read one conversation.
type ReadMark struct {
	UserID int64
	With   int64 // the colleague of a personal conversation
	ChatID int64 // or the chat
	UpTo   int64 // archive id of the last message read
}

// MarkRead raises viewer's read mark of the conversation ref names (With
// or ChatID) to the message ref names (its archive id, or a client's id
// as Resolve finds it). The message must be one viewer may read in that
// conversation (ErrNotFound otherwise); a ref naming no conversation or
// both is ErrInvalid. The mark never moves backwards: moved reports
// whether it rose, and the returned mark is the stored one.
func (s *Store) MarkRead(ctx context.Context, viewer int64, ref Ref) (mark ReadMark, msg *Message, moved bool, err error) {
	if viewer == 0 || (ref.With == 0) == (ref.ChatID == 0) {
		return ReadMark{}, nil, false, fmt.Errorf("%w: a read mark names one colleague or one chat", ErrInvalid)
	}
	if ref.ID == 0 && ref.Client == "" {
		return ReadMark{}, nil, false, fmt.Errorf("%w: a read mark names a message", ErrInvalid)
	}
	m, err := s.Resolve(ctx, viewer, ref)
	if err != nil {
		return ReadMark{}, nil, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	mark = ReadMark{UserID: viewer, With: ref.With, ChatID: ref.ChatID, UpTo: m.ID}
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO read_marks (user_id, peer_id, chat_id, last_id) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, peer_id, chat_id) DO UPDATE SET last_id = excluded.last_id WHERE excluded.last_id > read_marks.last_id`),
		viewer, ref.With, ref.ChatID, m.ID)
	if err != nil {
		return ReadMark{}, nil, false, fmt.Errorf("mam: read mark of %d: %w", viewer, err)
	}
	if n, err := res.RowsAffected(); err == nil && n > 0 {
		return mark, m, true, nil
	}
	if mark.UpTo, err = s.readMark(ctx, viewer, ref.With, ref.ChatID); err != nil {
		return ReadMark{}, nil, false, err
	}
	return mark, m, false, nil
}

// ReadMarkOf is how far user has read their conversation with a
// colleague (with) or a chat; 0 when not at all.
func (s *Store) ReadMarkOf(ctx context.Context, user, with, chatID int64) (int64, error) {
	if err := s.Settle(ctx); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	return s.readMark(ctx, user, with, chatID)
}

func (s *Store) readMark(ctx context.Context, user, with, chatID int64) (int64, error) {
	var n int64
	err := s.db.GetContext(ctx, &n, s.db.Rebind(`SELECT last_id FROM read_marks WHERE user_id = ? AND peer_id = ? AND chat_id = ?`), user, with, chatID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mam: read mark of %d: %w", user, err)
	}
	return n, nil
}

// ChatReadMarks returns the read marks of a chat's current members other
// than viewer (user id → last message read), for viewer, who must be a
// current member (ErrNotFound otherwise).
func (s *Store) ChatReadMarks(ctx context.Context, viewer, chatID int64) (map[int64]int64, error) {
	if err := s.Settle(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	var member int
	if err := s.db.GetContext(ctx, &member, s.db.Rebind(`SELECT COUNT(*) FROM chat_periods WHERE chat_id = ? AND user_id = ? AND to_id IS NULL`), chatID, viewer); err != nil {
		return nil, fmt.Errorf("mam: chat %d membership of %d: %w", chatID, viewer, err)
	}
	if member == 0 {
		return nil, ErrNotFound
	}
	var rows []struct {
		User int64 `db:"user_id"`
		Last int64 `db:"last_id"`
	}
	err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT r.user_id, r.last_id FROM read_marks r
		JOIN chat_periods p ON p.chat_id = r.chat_id AND p.user_id = r.user_id AND p.to_id IS NULL
		WHERE r.chat_id = ? AND r.peer_id = 0 AND r.user_id <> ?`), chatID, viewer)
	if err != nil {
		return nil, fmt.Errorf("mam: read marks of chat %d: %w", chatID, err)
	}
	out := make(map[int64]int64, len(rows))
	for _, r := range rows {
		out[r.User] = r.Last
	}
	return out, nil
}

// SeenBy returns who has read chat message id: the chat's current
// members, other than its author, whose membership window holds it and
// whose read mark is at or past it, by user id. viewer must be able to
// read the message in that chat (ErrNotFound otherwise).
func (s *Store) SeenBy(ctx context.Context, viewer, chatID, id int64) ([]int64, error) {
	if err := s.Settle(ctx); err != nil {
		return nil, err
	}
	if chatID == 0 || id <= 0 {
		return nil, fmt.Errorf("%w: seen by names a chat and a message", ErrInvalid)
	}
	m, err := s.Resolve(ctx, viewer, Ref{ID: id, ChatID: chatID})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	users := []int64{}
	err = s.db.SelectContext(ctx, &users, s.db.Rebind(`SELECT r.user_id FROM read_marks r
		JOIN chat_periods p ON p.chat_id = r.chat_id AND p.user_id = r.user_id AND p.to_id IS NULL AND p.from_id <= ?
		WHERE r.chat_id = ? AND r.peer_id = 0 AND r.last_id >= ? AND r.user_id <> ?
		ORDER BY r.user_id`), m.ID, chatID, m.ID, m.FromID)
	if err != nil {
		return nil, fmt.Errorf("mam: seen by of %d: %w", id, err)
	}
	return users, nil
}

// Conversation is one of a user's conversations with its read state.
type Conversation struct {
	Last     Message // the newest message the user may read
	With     int64   // the colleague of a personal conversation
	ChatID   int64   // or the chat
	Unread   int     // messages from others after the user's read mark
	Read     int64   // the user's read mark
	PeerRead int64   // personal: how far the colleague has read
}

// Conversations is Recent with each conversation's read state: the
// unread count (personal: the colleague's messages after the read mark;
// chats: other members' messages, not system ones, the user may read
// after it; retracted messages do not count), the user's read mark and,
// for a personal conversation, the colleague's.
func (s *Store) Conversations(ctx context.Context, viewer int64, limit int) ([]Conversation, error) {
	recent, err := s.Recent(ctx, viewer, limit)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	out := make([]Conversation, len(recent))
	byPeer := map[int64]*Conversation{}
	byChat := map[int64]*Conversation{}
	for i, m := range recent {
		c := &out[i]
		c.Last = m
		if m.ChatID != 0 {
			c.ChatID = m.ChatID
			byChat[m.ChatID] = c
			continue
		}
		c.With = m.ToID
		if m.ToID == viewer {
			c.With = m.FromID
		}
		byPeer[c.With] = c
	}
	var marks []struct {
		User int64 `db:"user_id"`
		Peer int64 `db:"peer_id"`
		Chat int64 `db:"chat_id"`
		Last int64 `db:"last_id"`
	}
	err = s.db.SelectContext(ctx, &marks, s.db.Rebind(`SELECT user_id, peer_id, chat_id, last_id FROM read_marks WHERE user_id = ?
		UNION ALL SELECT user_id, peer_id, chat_id, last_id FROM read_marks WHERE peer_id = ? AND chat_id = 0`), viewer, viewer)
	if err != nil {
		return nil, fmt.Errorf("mam: read marks of %d: %w", viewer, err)
	}
	for _, mk := range marks {
		switch {
		case mk.User != viewer:
			if c := byPeer[mk.User]; c != nil {
				c.PeerRead = mk.Last
			}
		case mk.Chat != 0:
			if c := byChat[mk.Chat]; c != nil {
				c.Read = mk.Last
			}
		default:
			if c := byPeer[mk.Peer]; c != nil {
				c.Read = mk.Last
			}
		}
	}
	if err := s.countPersonalUnread(ctx, viewer, out); err != nil {
		return nil, err
	}
	var chats []struct {
		Chat int64 `db:"chat_id"`
		N    int   `db:"n"`
	}
	cond, args := readable(viewer)
	// Per chat a range of the chat index after the read mark: only the
	// unread messages are visited, however long the chat's history.
	err = s.db.SelectContext(ctx, &chats, s.db.Rebind(`SELECT p.chat_id, (SELECT COUNT(*) FROM messages m
			WHERE m.chat_id = p.chat_id AND m.id > COALESCE(r.last_id, 0)
			  AND m.kind = 'groupchat' AND m.deleted = FALSE AND (m.from_id IS NULL OR m.from_id <> ?) AND `+cond+`) AS n
		FROM chat_periods p LEFT JOIN read_marks r ON r.user_id = p.user_id AND r.peer_id = 0 AND r.chat_id = p.chat_id
		WHERE p.user_id = ? AND p.to_id IS NULL`),
		append(append([]any{viewer}, args...), viewer)...)
	if err != nil {
		return nil, fmt.Errorf("mam: unread chat messages of %d: %w", viewer, err)
	}
	for _, x := range chats {
		if c := byChat[x.Chat]; c != nil {
			c.Unread = x.N
		}
	}
	return out, nil
}

// countPersonalUnread sets the unread count of the personal
// conversations in cs (their read marks set): per conversation a range
// of the pair index after the mark, so that only unread messages are
// visited however long the history; a statement per 100 conversations.
func (s *Store) countPersonalUnread(ctx context.Context, viewer int64, cs []Conversation) error {
	var todo []*Conversation
	for i := range cs {
		if cs[i].ChatID == 0 {
			todo = append(todo, &cs[i])
		}
	}
	for len(todo) > 0 {
		batch := todo[:min(len(todo), 100)]
		todo = todo[len(batch):]
		parts := make([]string, len(batch))
		args := make([]any, 0, 5*len(batch))
		for i, c := range batch {
			parts[i] = `SELECT ? AS peer, (SELECT COUNT(*) FROM messages m WHERE m.pair_lo = ? AND m.pair_hi = ? AND m.id > ?
				AND m.from_id = ? AND m.chat_id IS NULL AND m.kind = 'chat' AND m.deleted = FALSE) AS n`
			args = append(args, c.With, min(viewer, c.With), max(viewer, c.With), c.Read, c.With)
		}
		var rows []struct {
			Peer int64 `db:"peer"`
			N    int   `db:"n"`
		}
		if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(strings.Join(parts, " UNION ALL ")), args...); err != nil {
			return fmt.Errorf("mam: unread messages of %d: %w", viewer, err)
		}
		for _, r := range rows {
			for _, c := range batch {
				if c.With == r.Peer {
					c.Unread = r.N
				}
			}
		}
	}
	return nil
}

// UnreadPersonal is how many personal messages the user has not read, in
// all conversations (the portal widget's badge).
func (s *Store) UnreadPersonal(ctx context.Context, viewer int64) (int, error) {
	if err := s.Settle(ctx); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	counts, err := s.unreadPersonal(ctx, viewer)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range counts {
		n += c
	}
	return n, nil
}

// unreadPersonal counts the personal messages to viewer after their read
// mark of each conversation, by sender.
func (s *Store) unreadPersonal(ctx context.Context, viewer int64) (map[int64]int, error) {
	var rows []struct {
		Peer int64 `db:"peer"`
		N    int   `db:"n"`
	}
	err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT m.from_id AS peer, COUNT(*) AS n FROM messages m
		LEFT JOIN read_marks r ON r.user_id = m.to_id AND r.peer_id = m.from_id AND r.chat_id = 0
		WHERE m.to_id = ? AND m.chat_id IS NULL AND m.kind = 'chat' AND m.deleted = FALSE AND m.id > COALESCE(r.last_id, 0)
		GROUP BY m.from_id`), viewer)
	if err != nil {
		return nil, fmt.Errorf("mam: unread messages of %d: %w", viewer, err)
	}
	out := make(map[int64]int, len(rows))
	for _, r := range rows {
		out[r.Peer] = r.N
	}
	return out, nil
}

// Head is the newest archive id of the server, 0 when the archive is
// empty: a client that starts from nothing resumes from here next time.
func (s *Store) Head(ctx context.Context) (int64, error) {
	if err := s.Settle(ctx); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	var head int64
	if err := s.db.GetContext(ctx, &head, `SELECT COALESCE(MAX(id), 0) FROM messages`); err != nil {
		return 0, fmt.Errorf("mam: head: %w", err)
	}
	return head, nil
}
