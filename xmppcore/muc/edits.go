package muc

import (
	"context"
	"strconv"

	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
)

// Edits, retractions and reactions in chats: occupants ask with XEP-0308,
// XEP-0424 and XEP-0444 in a groupchat message; the core applies the one
// rule (xmppcore/edits.go, mam) and the service announces the result to
// the room's occupants and followers on every node.

// Changes is what the service needs from the core to change archived
// messages (xmppcore.Server).
type Changes interface {
	Apply(ctx context.Context, c *xmppcore.ClientChange, r xmppcore.ChangeRequest) error
	// MarkRead records a read mark (xmppcore/read.go); when it moved,
	// the core calls ReadMoved (read.go).
	MarkRead(ctx context.Context, r xmppcore.ReadRequest) (mam.ReadMark, bool, error)
}

// clientChange handles a groupchat message that changes an archived chat
// message. It reports whether e was one.
func (s *Service) clientChange(ctx context.Context, c *Chat, userID int64, e *xmppcore.Element) bool {
	ch, ok := xmppcore.ParseChange(e)
	if !ok {
		return false
	}
	if s.changes == nil {
		s.reply(ctx, e, "cancel", "service-unavailable", "")
		return true
	}
	clientID := attr(e, "id")
	if oid := child(e, NSStanzaID, "origin-id"); oid != nil && attr(oid, "id") != "" {
		clientID = attr(oid, "id")
	}
	err := s.changes.Apply(ctx, ch, xmppcore.ChangeRequest{User: userID, Ref: mam.Ref{Client: ch.Ref, ChatID: c.ID}, ClientID: clientID})
	if err != nil {
		se := xmppcore.ChangeError(err)
		if se.Condition == "internal-server-error" {
			s.log.Error("chat message change", "chat", c.ID, "err", err)
		}
		s.reply(ctx, e, se.Type, se.Condition, se.Text)
	}
	return true
}

// MessageChanged implements xmppcore.ChatChanges: the notice goes to every
// occupant and follower of the chat, from the author's occupant JID.
func (s *Service) MessageChanged(ctx context.Context, ch *xmppcore.MessageChange) {
	m := ch.Message
	c, err := s.store.Get(ctx, m.ChatID)
	if err != nil {
		s.log.Warn("message change for an unknown chat", "chat", m.ChatID, "err", err)
		return
	}
	// XEP-0308 names the original by its id attribute; XEP-0424 and
	// XEP-0444 by the room's stanza-id.
	ref := strconv.FormatInt(m.ID, 10)
	nick := s.nickOf(ctx, c.ID, ch.Actor)
	if ch.Op != xmppcore.ChangeReact {
		if m.FromResource != "" {
			nick = m.FromResource
		}
		if ch.Op == xmppcore.ChangeEdit {
			ref = messageStanzaID(m)
		}
	}
	id := ch.ClientID
	if id == "" {
		id = "c" + randomID()
	}
	msg := el(nsClient, "message", "from", s.RoomJID(c)+"/"+nick, "type", "groupchat", "id", id)
	msg.Children = append(msg.Children, ch.Elements(ref)...)
	if ch.ClientID != "" {
		msg.Children = append(msg.Children, el(NSStanzaID, "origin-id", "id", ch.ClientID))
	}
	msg.Children = append(msg.Children, el(NSVestnik, "chat", "id", strconv.FormatInt(c.ID, 10), "from-user", strconv.FormatInt(ch.Actor, 10)))
	s.fanout(ctx, c, msg)
}

// reactionRestrictions is the XEP-0444 disco#info form telling clients
// how many reactions one user keeps on a message.
func reactionRestrictions() *xmppcore.Element {
	return dataForm("result", xmppcore.NSReactions+":restrictions",
		field("text-single", "max_reactions_per_user", "", strconv.Itoa(mam.MaxReactions)))
}
