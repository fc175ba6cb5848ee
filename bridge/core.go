package bridge

import (
	"context"
	"errors"

	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/rich"
)

// Target names a conversation: a colleague (User) or a chat (Chat).
type Target struct {
	User int64 `json:"user,omitempty"`
	Chat int64 `json:"chat,omitempty"`
}

func (t Target) valid() bool { return (t.User > 0) != (t.Chat > 0) }

// Message is a stored message as the web client sees it.
type Message struct {
	ID       int64  `json:"id"`
	Kind     string `json:"kind"` // chat, groupchat, system
	From     int64  `json:"from"`
	To       int64  `json:"to,omitempty"`
	Chat     int64  `json:"chat,omitempty"`
	Body     string `json:"body"`
	Time     int64  `json:"time"` // unix milliseconds
	OriginID string `json:"origin_id,omitempty"`
	Edited   bool   `json:"edited,omitempty"`
	Deleted  bool   `json:"deleted,omitempty"`
	Files    []File `json:"files,omitempty"`
	// Reactions on the message, in history and resume (omitted when none).
	Reactions []Reaction `json:"reactions,omitempty"`
	// ReplyTo is the id of the message this one answers (XEP-0461).
	ReplyTo int64 `json:"reply_to,omitempty"`
	// Rich is a rich message's text as sent (BB-codes), attachment and
	// keyboard; Body is then their plain-text fallback.
	Rich *rich.Content `json:"rich,omitempty"`
	// Event is what a system message the server wrote is about, for the
	// client to render in the reader's language (body: English).
	Event *muc.Notice `json:"event,omitempty"`
}

// Reaction is one reaction on a message and the users who gave it.
type Reaction struct {
	Emoji string  `json:"emoji"`
	Users []int64 `json:"users"`
}

// Hit is a search result.
type Hit struct {
	Message Message `json:"message"`
	Snippet string  `json:"snippet"` // HTML-escaped with <mark>…</mark>
}

// Presence is what a colleague shows: online, away, dnd or offline.
type Presence struct {
	User     int64  `json:"user"`
	Show     string `json:"show"`
	Status   string `json:"status,omitempty"`
	LastSeen int64  `json:"last_seen,omitempty"` // unix ms, when offline
}

// Events receives what the router delivers to a bridge session, already
// translated into frames. Event must not block; false means the
// connection is too slow and is being closed.
type Events interface {
	Event(f Frame) bool
	Close(reason string)
}

// Core is the part of the XMPP core the bridge needs. Its implementation
// over xmppcore (xmpp.go) turns these calls into stanzas handled by the
// session exactly as if a Jabber client had sent them.
type Core interface {
	Attach(ctx context.Context, userID int64, resource string, ev Events) (Link, error)
	// Online reports whether the user has any available session (any door).
	Online(userID int64) bool
	// Watch has the core report every change of a user's presence (any
	// door, any node) to presence and typing in chats (any node) to typing.
	// Neither may block.
	Watch(presence func(Presence), typing func(chatID, userID int64, state string, members []int64))
	// ChatTyping tells the members, on every node, that userID is typing in
	// chatID (state composing or paused).
	ChatTyping(chatID, userID int64, state string, members []int64)
	// ConfirmDelivered records that the user's browser has every message
	// up to archive id upToID (hello's last_id): the delivery mark moves
	// there, so the offline flush at attach does not give them again.
	ConfirmDelivered(ctx context.Context, userID, upToID int64) error
}

// Link is one attached bridge session in the router.
type Link interface {
	// Send stores and routes a message, answering message replyTo when
	// not 0; the answer carries the stored id.
	Send(ctx context.Context, to Target, body, originID string, replyTo int64) (*Message, error)
	Edit(ctx context.Context, id int64, body string) (*Message, error)
	Retract(ctx context.Context, id int64) (*Message, error)
	// React replaces the user's reactions on a message (the whole set,
	// XEP-0444) and returns everyone's.
	React(ctx context.Context, id int64, set []string) ([]Reaction, error)
	// Press presses a command button of a message's keyboard (the core's
	// xmppcore.Server.PressButton: a keyboard-pressed event).
	Press(ctx context.Context, id int64, button int) error
	Typing(ctx context.Context, to Target, state string) error
	// MarkRead raises the user's read mark of a conversation to message
	// upTo through the core (xmppcore.Server.MarkRead), which tells the
	// colleague or the chat and the user's other devices.
	MarkRead(ctx context.Context, with Target, upTo int64) error
	// SetPresence sends the session's presence; remember also keeps it
	// for the user's next sessions (what the user chose, not an automatic
	// away).
	SetPresence(ctx context.Context, show, status string, remember bool) error
	// Own is the presence the session started with: the one the user
	// chose last (online when never).
	Own() (show, status string)
	Presences(ctx context.Context) ([]Presence, error)
	PresenceOf(ctx context.Context, userID int64) (Presence, error)
	// Chats is the chat service, whose operations the chat commands call
	// as the user (nil: no group chats); RoomJID a chat's room address.
	Chats() ChatService
	RoomJID(room string) string
	Close()
}

// Archive is the history the bridge reads, under the archive's access rules.
type Archive interface {
	History(ctx context.Context, viewer int64, with Target, beforeID int64, limit int) (msgs []Message, complete bool, err error)
	// Since returns what viewer may read with id > afterID, oldest first.
	Since(ctx context.Context, viewer int64, afterID int64, limit int) ([]Message, error)
	Search(ctx context.Context, viewer int64, text string, limit int) ([]Hit, error)
	// Read state (mam/read.go): the conversation list with unread counts,
	// a read mark, how far a chat's members have read and who has seen a
	// chat message, the widget's unread count.
	Conversations(ctx context.Context, viewer int64, chatIDs []int64) ([]Conversation, error)
	ReadMark(ctx context.Context, user int64, with Target) (int64, error)
	MarkRead(ctx context.Context, user int64, with Target, upTo int64) error
	ChatReadMarks(ctx context.Context, viewer, chatID int64) (map[int64]int64, error)
	SeenBy(ctx context.Context, viewer, chatID, id int64) ([]int64, error)
	UnreadPersonal(ctx context.Context, viewer int64) (int, error)
	// Head is the newest message id of the server (0 when none).
	Head(ctx context.Context) (int64, error)
}

// Errors a Core or Archive returns that reach the browser with their own code.
var (
	ErrForbidden = errors.New("bridge: forbidden")
	ErrNotFound  = errors.New("bridge: not found")
)
