package muc

import (
	"context"
	"errors"
	"strconv"

	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
)

// Read state in chats: an occupant's XEP-0333 <displayed/> marker (naming
// the room's stanza-id) raises the member's read mark through the core
// (xmppcore/read.go, mam); a mark that moved, from any door, reaches
// every occupant and follower of the chat on every node as the marker
// from the member's occupant JID, with the archive id for the bridge. The
// member's other devices learn their own read state from it, the others
// who has seen what.

// displayed records the read mark of an occupant's displayed marker and
// reports whether the core announced it (ReadMoved) in place of the
// plain relay.
func (s *Service) displayed(ctx context.Context, c *Chat, userID int64, e *xmppcore.Element) bool {
	d := child(e, xmppcore.NSChatMarkers, "displayed")
	if d == nil || attr(d, "id") == "" || s.changes == nil || child(e, "", "body") != nil {
		return false
	}
	_, moved, err := s.changes.MarkRead(ctx, xmppcore.ReadRequest{User: userID, Chat: c.ID, Client: attr(d, "id")})
	if err != nil && !errors.Is(err, mam.ErrNotFound) && !errors.Is(err, mam.ErrInvalid) {
		s.log.Warn("chat read mark", "chat", c.ID, "err", err)
	}
	return moved
}

// ReadMoved implements xmppcore.ChatReads: the member's displayed marker
// goes to every occupant and follower of the chat.
func (s *Service) ReadMoved(ctx context.Context, mark mam.ReadMark) {
	c, err := s.store.Get(ctx, mark.ChatID)
	if err != nil {
		s.log.Warn("read mark in an unknown chat", "chat", mark.ChatID, "err", err)
		return
	}
	nick := s.nickOf(ctx, c.ID, mark.UserID)
	msg := el(nsClient, "message", "from", s.RoomJID(c)+"/"+nick, "type", "groupchat", "id", "r"+randomID())
	msg.Children = append(msg.Children,
		el(xmppcore.NSChatMarkers, "displayed", "id", strconv.FormatInt(mark.UpTo, 10)),
		xmppcore.ReadElement(mark),
		el(xmppcore.NSHints, "no-store"),
		el(NSOccupantID, "occupant-id", "id", s.occupantID(c, mark.UserID)),
		el(NSVestnik, "chat", "id", strconv.FormatInt(c.ID, 10), "from-user", strconv.FormatInt(mark.UserID, 10)))
	s.fanout(ctx, c, msg)
}
