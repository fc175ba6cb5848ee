package xmppcore

import (
	"context"
	"errors"

	"mellium.im/xmpp/jid"
)

// NSConference is XEP-0249 direct MUC invitations.
const NSConference = "jabber:x:conference"

// DirectInviter makes the invitee of a XEP-0249 invitation a member of
// the chat (package xmppcore/muc); it refuses when from may not invite.
type DirectInviter interface {
	DirectInvite(ctx context.Context, from, invitee, room jid.JID) error
}

// SetDirectInviter installs the chat service that acts on direct
// invitations in personal messages. Call before serving.
func (s *Server) SetDirectInviter(d DirectInviter) {
	s.extMu.Lock()
	s.inviter = d
	s.extMu.Unlock()
}

// directInvite acts on a XEP-0249 invitation in a personal message from
// sess to invitee before the message is delivered (it is delivered
// either way: the invitee's client shows it).
func (s *Server) directInvite(ctx context.Context, sess *Session, invitee jid.JID, el *Element) {
	x := el.Child(NSConference, "x")
	if x == nil || el.AttrValue("type") == "error" {
		return
	}
	s.extMu.RLock()
	d := s.inviter
	s.extMu.RUnlock()
	if d == nil {
		return
	}
	room, err := jid.Parse(x.AttrValue("jid"))
	if err != nil || room.Localpart() == "" || s.component(room.Domainpart()) == nil {
		return
	}
	if err := d.DirectInvite(ctx, sess.jid, invitee.Bare(), room.Bare()); err != nil && !errors.Is(err, context.Canceled) {
		sess.logger().Debug("direct invitation not applied", "room", room.String(), "err", err)
	}
}
