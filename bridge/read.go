package bridge

import (
	"context"
	"fmt"
	"strconv"

	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
)

// Read state and notifications as the browser sees them: translations of
// the core's operations (xmppcore/read.go, mam/read.go,
// xmppcore.NotificationStore); the bridge keeps no rule or SQL of its own.

// Conversation is one line of the recent conversations list.
type Conversation struct {
	Key      string   `json:"key"` // "u<id>" or "c<id>"
	Last     *Message `json:"last,omitempty"`
	Unread   int      `json:"unread"`
	Read     int64    `json:"read,omitempty"`      // the viewer's read mark
	PeerRead int64    `json:"peer_read,omitempty"` // how far the colleague has read (personal)
}

// Notification is a portal notification (REST POST /notifications).
type Notification struct {
	ID   int64  `json:"id"`
	Text string `json:"text"`
	Link string `json:"link,omitempty"`
	Time int64  `json:"time"` // unix ms
	Read bool   `json:"read"`
}

func fromCoreNotification(n *xmppcore.Notification) Notification {
	return Notification{ID: n.ID, Text: n.Text, Link: n.Link, Time: n.CreatedAt.UnixMilli(), Read: n.ReadAt != nil}
}

// Conversations lists the viewer's conversations with their last message,
// unread count and read marks; chats of chatIDs with no message the
// viewer may read yet are listed without one.
func (a mamArchive) Conversations(ctx context.Context, viewer int64, chatIDs []int64) ([]Conversation, error) {
	cs, err := a.s.Conversations(ctx, viewer, 0)
	if err != nil {
		return nil, err
	}
	out := make([]Conversation, 0, len(cs)+len(chatIDs))
	listed := map[int64]bool{}
	for i := range cs {
		c := &cs[i]
		last := FromMAM(&c.Last)
		conv := Conversation{Last: &last, Unread: c.Unread, Read: c.Read, PeerRead: c.PeerRead}
		if c.ChatID != 0 {
			conv.Key = fmt.Sprintf("c%d", c.ChatID)
			listed[c.ChatID] = true
		} else {
			conv.Key = fmt.Sprintf("u%d", c.With)
		}
		out = append(out, conv)
	}
	for _, id := range chatIDs {
		if !listed[id] {
			out = append(out, Conversation{Key: fmt.Sprintf("c%d", id)})
		}
	}
	return out, nil
}

// ReadMark is how far user has read the conversation with.
func (a mamArchive) ReadMark(ctx context.Context, user int64, with Target) (int64, error) {
	return a.s.ReadMarkOf(ctx, user, with.User, with.Chat)
}

// MarkRead records a read mark without telling anyone (a bridge without
// the XMPP core has no sessions to tell); Link.MarkRead is the core's
// operation.
func (a mamArchive) MarkRead(ctx context.Context, user int64, with Target, upTo int64) error {
	_, _, _, err := a.s.MarkRead(ctx, user, mam.Ref{ID: upTo, With: with.User, ChatID: with.Chat})
	return mamErr(err)
}

// ChatReadMarks are how far the chat's other members have read it.
func (a mamArchive) ChatReadMarks(ctx context.Context, viewer, chatID int64) (map[int64]int64, error) {
	m, err := a.s.ChatReadMarks(ctx, viewer, chatID)
	return m, mamErr(err)
}

// SeenBy lists who has read chat message id.
func (a mamArchive) SeenBy(ctx context.Context, viewer, chatID, id int64) ([]int64, error) {
	u, err := a.s.SeenBy(ctx, viewer, chatID, id)
	return u, mamErr(err)
}

// UnreadPersonal is the viewer's count of unread personal messages.
func (a mamArchive) UnreadPersonal(ctx context.Context, viewer int64) (int, error) {
	return a.s.UnreadPersonal(ctx, viewer)
}

// Head is the newest message id of the server.
func (a mamArchive) Head(ctx context.Context) (int64, error) { return a.s.Head(ctx) }

// notifications is a page of the user's notifications (newest first,
// before beforeID) and their unread count.
func (b *Bridge) notifications(ctx context.Context, userID, beforeID int64, limit int, unreadOnly bool) ([]Notification, int, error) {
	ns, err := b.notes.List(ctx, userID, beforeID, limit, unreadOnly)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Notification, len(ns))
	for i := range ns {
		out[i] = fromCoreNotification(&ns[i])
	}
	unread, err := b.notes.Unread(ctx, userID)
	if err != nil {
		return nil, 0, err
	}
	return out, unread, nil
}

func (b *Bridge) widgetState(ctx context.Context, u *roster.User, na NotificationActions) (map[string]any, error) {
	ns, unreadNotes, err := b.notifications(ctx, u.ID, 0, 5, true)
	if err != nil {
		return nil, err
	}
	notes, err := withExtras(ctx, na, u.ID, ns)
	if err != nil {
		return nil, err
	}
	unread := 0
	if b.archive != nil {
		if unread, err = b.archive.UnreadPersonal(ctx, u.ID); err != nil {
			return nil, err
		}
	}
	return map[string]any{
		"user":                 map[string]any{"id": u.ID, "name": u.Name},
		"unread_messages":      unread,
		"unread_notifications": unreadNotes,
		"notifications":        notes,
	}, nil
}

// readFrames translates the core's notice of a moved read mark
// (xmppcore.ReadElement on a XEP-0333 marker): in a chat, "seen" for every
// member's browser (and "read" when it is the user's own mark); in a
// personal conversation, "read" for the user's own mark (a carbon from
// another device or door) or a read receipt when the colleague read.
func (l *xmppLink) readFrames(ctx context.Context, el, rd *xmppcore.Element, chat int64) []Frame {
	upTo, err1 := strconv.ParseInt(rd.AttrValue("id"), 10, 64)
	user, err2 := strconv.ParseInt(rd.AttrValue("user"), 10, 64)
	if err1 != nil || err2 != nil {
		return nil
	}
	if chat > 0 {
		out := []Frame{{"type": "seen", "chat": chat, "user": user, "up_to": upTo}}
		if user == l.userID {
			out = append(out, Frame{"type": "read", "with": Target{Chat: chat}, "up_to": upTo})
		}
		return out
	}
	if user == l.userID {
		if to := l.peer(ctx, el.AttrValue("to")); to > 0 {
			return []Frame{{"type": "read", "with": Target{User: to}, "up_to": upTo}}
		}
		return nil
	}
	return []Frame{{"type": "receipt", "user": user, "message_id": upTo, "state": "read"}}
}
