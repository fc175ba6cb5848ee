package xmppcore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"vestnik/xmppcore/mam"
)

// Read state: one operation for every door. A Jabber client says how far
// it has read with a XEP-0333 <displayed/> marker (in a personal
// conversation here, in a chat through the MUC service), the bridge and
// REST call MarkRead. The archive (mam.Store.MarkRead) holds the rule —
// a message the user may read in that conversation, never backwards —
// and the core then tells, when the mark moved:
//   - personal: the colleague's sessions a displayed marker from the user
//     (a Jabber client shows its message read, the browser a read
//     receipt), and the user's other sessions the same marker as a
//     XEP-0280 sent carbon (other devices clear their unread count);
//   - chat: every occupant and follower of the chat, through the chat
//     service, the marker from the user's occupant JID (XEP-0333 in MUC;
//     the user's own devices and "seen by" in the browsers).
//
// Each marker also carries <read xmlns='urn:vestnik:message:0' id='…'
// user='…'/> with the archive id, so the bridge needs no lookup.

// NSChatMarkers is XEP-0333 chat markers.
const NSChatMarkers = "urn:xmpp:chat-markers:0"

// ReadRequest is who read how far in which conversation, through what.
type ReadRequest struct {
	User int64
	// With (a colleague) or Chat names the conversation.
	With, Chat int64
	// UpTo is the archive id of the last message read; or Client, the id
	// a client named it by in a XEP-0333 marker.
	UpTo   int64
	Client string
	// Via is the session that asked: it is not sent a carbon (nil from
	// REST).
	Via *Session
}

// ChatReads announces a chat member's moved read mark to the chat's
// occupants and followers on every node (muc.Service implements it).
type ChatReads interface {
	ReadMoved(ctx context.Context, mark mam.ReadMark)
}

// MarkRead raises the user's read mark (mam.Store.MarkRead) and, when it
// moved, tells the parties as described above. It returns the stored
// mark and whether it moved. Errors are mam's: ErrInvalid, ErrNotFound (no
// such message in that conversation for the user).
func (s *Server) MarkRead(ctx context.Context, r ReadRequest) (mam.ReadMark, bool, error) {
	if s.msgs == nil {
		return mam.ReadMark{}, false, ErrChangesUnavailable
	}
	mark, m, moved, err := s.msgs.MarkRead(ctx, r.User, mam.Ref{ID: r.UpTo, Client: r.Client, With: r.With, ChatID: r.Chat})
	if err != nil || !moved {
		return mark, moved, err
	}
	if r.Chat != 0 {
		s.extMu.RLock()
		cr, _ := s.chatChanges.(ChatReads)
		s.extMu.RUnlock()
		if cr != nil {
			cr.ReadMoved(ctx, mark)
		}
		return mark, true, nil
	}
	if err := s.tellRead(ctx, mark, m, r.Via); err != nil {
		s.log.Warn("read mark notice", "user", r.User, "err", err)
	}
	return mark, true, nil
}

// ReadElement is the Vestnik element naming a moved read mark by archive id.
func ReadElement(mark mam.ReadMark) *Element {
	return NewElement(NSMessageState, "read", "id", strconv.FormatInt(mark.UpTo, 10), "user", strconv.FormatInt(mark.UserID, 10))
}

// tellRead sends the displayed marker of a moved personal read mark to
// the colleague and, as sent carbons, to the user's other sessions.
func (s *Server) tellRead(ctx context.Context, mark mam.ReadMark, m *mam.Message, via *Session) error {
	me, err1 := s.users.byID(ctx, mark.UserID)
	peer, err2 := s.users.byID(ctx, mark.With)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("xmppcore: read mark: %w", err)
	}
	ref := m.OriginID
	if ref == "" {
		ref = strconv.FormatInt(m.ID, 10)
	}
	from := s.bareJID(me.Login)
	if via != nil {
		from += "/" + via.resource
	}
	el := NewElement(NSClient, "message", "type", "chat", "id", randomID(9), "from", from, "to", s.bareJID(peer.Login))
	el.AddChild(NewElement(NSChatMarkers, "displayed", "id", ref))
	el.AddChild(ReadElement(mark))
	el.AddChild(NewElement(NSHints, "no-store"))
	// Only a colleague's message is marked to them, and not across a block.
	if m.FromID == peer.ID && !s.isBlocked(ctx, peer.ID, s.bareJID(me.Login)) && !s.isBlocked(ctx, me.ID, s.bareJID(peer.Login)) {
		s.routePersonal(ctx, me.ID, me.Login, via, peer, "", "chat", el, 0, 0)
		return nil
	}
	bare := s.bareJID(me.Login)
	for _, t := range s.router.sessions(me.ID) {
		if t != via && t.carbons.Load() && t.available.Load() {
			t.deliver(carbon("sent", bare, t.jidStr, el))
		}
	}
	if s.cl != nil {
		s.remoteCarbon(me.ID, "sent", bare, el)
	}
	return nil
}

// readFromClient records the read mark a Jabber client's XEP-0333
// <displayed/> marker to a colleague names; the marker itself is then
// routed as before, carrying the archive id when the mark moved. A
// marker naming no message of the conversation changes nothing.
func (s *Server) readFromClient(ctx context.Context, sess *Session, to *Account, el *Element) {
	typ := el.AttrValue("type")
	if typ != "chat" && typ != "normal" && typ != "" || el.Child(NSClient, "body") != nil || s.msgs == nil {
		return
	}
	d := el.Child(NSChatMarkers, "displayed")
	if d == nil || d.AttrValue("id") == "" {
		return
	}
	el.RemoveChildren(NSMessageState, "read") // only the server sets it
	mark, _, moved, err := s.msgs.MarkRead(ctx, sess.userID, mam.Ref{Client: d.AttrValue("id"), With: to.ID})
	if err != nil {
		if !errors.Is(err, mam.ErrNotFound) && !errors.Is(err, mam.ErrInvalid) {
			sess.logger().Warn("read mark", "err", err)
		}
		return
	}
	if moved {
		el.AddChild(ReadElement(mark))
	}
}
