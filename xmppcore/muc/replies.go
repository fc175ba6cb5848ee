package muc

import (
	"context"
	"errors"
	"strconv"

	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
)

// Replies in chats (XEP-0461): the rule is the archive's
// (mam.Store.ReplyTarget: a message of this chat the author may read,
// not retracted); the stored message keeps the <reply/> and the server's
// <reply-to/> marker with the target's archive id (xmppcore/replies.go).

// markReply resolves the <reply/> of an occupant's groupchat message with
// a body and notes the target on e (dropping a marker the client put
// there). ok is false when the reply was refused (and answered).
func (s *Service) markReply(ctx context.Context, c *Chat, userID int64, body string, e *xmppcore.Element) (replyTo int64, ok bool) {
	e.RemoveChildren(xmppcore.NSMessageState, "reply-to")
	ref, isReply := xmppcore.ReplyOf(e)
	if !isReply || body == "" {
		return 0, true
	}
	m, err := s.archive.ReplyTarget(ctx, userID, mam.Ref{Client: ref, ChatID: c.ID})
	if err != nil {
		if !errors.Is(err, mam.ErrNotFound) && !errors.Is(err, mam.ErrForbidden) {
			s.log.Error("reply target", "chat", c.ID, "err", err)
		}
		s.reply(ctx, e, "modify", "not-acceptable", "no such message to reply to")
		return 0, false
	}
	e.AddChild(xmppcore.ReplyMarker(m.ID))
	return m.ID, true
}

// replyPayload is what a reply from the bridge or REST carries: the
// XEP-0461 <reply/> naming the target as occupants know it (the room's
// stanza-id, from its author's occupant JID) and the server's marker.
func (s *Service) replyPayload(ctx context.Context, c *Chat, author, replyTo int64) (string, error) {
	m, err := s.archive.ReplyTarget(ctx, author, mam.Ref{ID: replyTo, ChatID: c.ID})
	if errors.Is(err, mam.ErrNotFound) || errors.Is(err, mam.ErrForbidden) {
		return "", invalid("reply_to", "unknown_reply", "no such message in this chat to reply to")
	}
	if err != nil {
		return "", err
	}
	to := s.RoomJID(c)
	if m.Kind != mam.KindSystem {
		nick := m.FromResource
		if nick == "" {
			nick = s.nickOf(ctx, c.ID, m.FromID)
		}
		to += "/" + nick
	}
	b := el(xmppcore.NSReply, "reply", "to", to, "id", strconv.FormatInt(m.ID, 10)).AppendXML(nil, nsClient)
	b = xmppcore.ReplyMarker(m.ID).AppendXML(b, nsClient)
	return string(b), nil
}
