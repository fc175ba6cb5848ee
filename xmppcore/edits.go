package xmppcore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/rich"
)

// Edits, retractions and reactions: one operation each for every door.
// XMPP clients ask with XEP-0308 <replace/>, XEP-0424 <retract/> and
// XEP-0444 <reactions/> in a message (this file for personal messages,
// the MUC service for chats), the bridge and REST call the operations
// directly. The archive (mam) holds the rule — the author only, within
// the edit window; reactions by whoever may read the message — and
// stores the result; the core then tells every party's live sessions.
// The change stanza itself is never archived as a new message.

// Namespaces of message changes.
const (
	NSCorrect      = "urn:xmpp:message-correct:0" // XEP-0308
	NSRetract      = "urn:xmpp:message-retract:1" // XEP-0424
	NSRetractOld   = "urn:xmpp:message-retract:0" // XEP-0424 before 0.4, inside a XEP-0422 <apply-to/>
	NSFasten       = "urn:xmpp:fasten:0"          // XEP-0422
	NSReactions    = "urn:xmpp:reactions:0"       // XEP-0444
	NSFallback     = "urn:xmpp:fallback:0"        // XEP-0428
	NSMessageState = mam.NSMessageState           // Vestnik: <edited/>, <retracted/>, <reactions/> with the archive id
)

// RetractFallback is the body of a retraction notice, for clients that do
// not know XEP-0424.
const RetractFallback = "(the author deleted a message; your client cannot remove it)"

// ChangeOp is what a change does.
type ChangeOp int

// Changes.
const (
	ChangeEdit ChangeOp = iota + 1
	ChangeRetract
	ChangeReact
)

// MessageChange is a change to an archived message that clients are told
// about.
type MessageChange struct {
	Op      ChangeOp
	Message *mam.Message // after the change
	Actor   int64
	// Reactions is the actor's set now, Summary everyone's (ChangeReact).
	Reactions []string
	Summary   []mam.Reaction
	// ClientID is the id of the client's stanza that asked for the
	// change, reused on the notice so the client recognizes its echo
	// ("" when the change came from another door).
	ClientID string
}

// Elements returns the children of the notice about c, naming the changed
// message by ref (the id clients know it by in its conversation: the
// client's id in 1:1 chats and for XEP-0308 in rooms, the room's
// stanza-id for XEP-0424 and XEP-0444 in rooms). The Vestnik element
// carries the archive id (and the reaction summary) for the bridge.
func (c *MessageChange) Elements(ref string) []*Element {
	id := strconv.FormatInt(c.Message.ID, 10)
	var out []*Element
	switch c.Op {
	case ChangeEdit:
		body := NewElement(NSClient, "body")
		body.Text = c.Message.Body
		out = append(out, body, NewElement(NSCorrect, "replace", "id", ref), NewElement(NSMessageState, "edited", "id", id))
		if c := RichOf(c.Message.Payload); c != nil {
			el := NewElement(NSRich, "rich")
			el.Text = c.Encode()
			out = append(out, el)
		}
	case ChangeRetract:
		body := NewElement(NSClient, "body")
		body.Text = RetractFallback
		out = append(out, body, NewElement(NSRetract, "retract", "id", ref),
			NewElement(NSFallback, "fallback", "for", NSRetract), NewElement(NSHints, "store"),
			NewElement(NSMessageState, "retracted", "id", id))
	case ChangeReact:
		rs := NewElement(NSReactions, "reactions", "id", ref)
		for _, r := range c.Reactions {
			rs.AddText(NSReactions, "reaction", r)
		}
		out = append(out, rs, NewElement(NSHints, "store"), ReactionSummary(c.Message.ID, c.Summary))
	}
	return out
}

// ReactionSummary is the Vestnik element listing everyone's reactions on
// a message: <reactions xmlns='urn:vestnik:message:0' id='42'><reaction
// emoji='👍' users='3 7'/></reactions>.
func ReactionSummary(id int64, sum []mam.Reaction) *Element {
	el := NewElement(NSMessageState, "reactions", "id", strconv.FormatInt(id, 10))
	for _, r := range sum {
		users := make([]string, len(r.Users))
		for i, u := range r.Users {
			users[i] = strconv.FormatInt(u, 10)
		}
		el.AddChild(NewElement(NSMessageState, "reaction", "emoji", r.Emoji, "users", strings.Join(users, " ")))
	}
	return el
}

// ChatChanges tells a chat's occupants and followers, on every node,
// about a changed chat message (muc.Service implements it).
type ChatChanges interface {
	MessageChanged(ctx context.Context, c *MessageChange)
}

// SetChatChanges installs the chat service that announces changes to
// chat messages.
func (s *Server) SetChatChanges(cc ChatChanges) {
	s.extMu.Lock()
	defer s.extMu.Unlock()
	s.chatChanges = cc
}

// ChangeRequest is who asks to change which message, and through what.
type ChangeRequest struct {
	User int64
	Ref  mam.Ref
	// Via is the session that asked: it is not sent a carbon of the
	// notice (nil from REST).
	Via *Session
	// ClientID: see MessageChange.
	ClientID string
}

// ErrChangesUnavailable is returned by a server made without the archive
// store (NewServerWith).
var ErrChangesUnavailable = errors.New("xmppcore: message changes need the archive store")

// EditMessage replaces the body of a message (mam.Store.Edit: its author,
// within the edit window) and tells everyone who has it.
// A rich message keeps its attachment and keyboard; body becomes its text.
func (s *Server) EditMessage(ctx context.Context, r ChangeRequest, body string) (*mam.Message, error) {
	return s.editRich(ctx, r, func(old *rich.Content) *rich.Content {
		old.Text = body
		return old
	}, true)
}

// RetractMessage deletes a message for everyone, leaving a tombstone
// (mam.Store.Retract: its author, within the edit window), and tells
// everyone who has it.
func (s *Server) RetractMessage(ctx context.Context, r ChangeRequest) (*mam.Message, error) {
	m, err := s.resolveChange(ctx, r)
	if err != nil {
		return nil, err
	}
	if m, err = s.msgs.Retract(ctx, r.User, m.ID); err != nil {
		return nil, err
	}
	s.tellChange(ctx, &MessageChange{Op: ChangeRetract, Message: m, Actor: r.User, ClientID: r.ClientID}, r.Via)
	return m, nil
}

// SetReactions replaces the user's reactions on a message (XEP-0444: the
// whole set; empty removes them) and tells everyone who has it.
func (s *Server) SetReactions(ctx context.Context, r ChangeRequest, set []string) (*mam.Message, []mam.Reaction, error) {
	return s.react(ctx, r, func(id int64) (*mam.Message, []mam.Reaction, error) { return s.msgs.React(ctx, r.User, id, set) })
}

// AddReaction adds one reaction of the user to a message (nothing
// changes when it is there already).
func (s *Server) AddReaction(ctx context.Context, r ChangeRequest, reaction string) (*mam.Message, []mam.Reaction, error) {
	return s.react(ctx, r, func(id int64) (*mam.Message, []mam.Reaction, error) {
		return s.msgs.AddReaction(ctx, r.User, id, reaction)
	})
}

// RemoveReaction takes one reaction of the user off a message.
func (s *Server) RemoveReaction(ctx context.Context, r ChangeRequest, reaction string) (*mam.Message, []mam.Reaction, error) {
	return s.react(ctx, r, func(id int64) (*mam.Message, []mam.Reaction, error) {
		return s.msgs.RemoveReaction(ctx, r.User, id, reaction)
	})
}

func (s *Server) react(ctx context.Context, r ChangeRequest, f func(id int64) (*mam.Message, []mam.Reaction, error)) (*mam.Message, []mam.Reaction, error) {
	m, err := s.resolveChange(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	m, sum, err := f(m.ID)
	if err != nil {
		return nil, nil, err
	}
	var mine []string
	for _, x := range sum {
		for _, u := range x.Users {
			if u == r.User {
				mine = append(mine, x.Emoji)
			}
		}
	}
	s.tellChange(ctx, &MessageChange{Op: ChangeReact, Message: m, Actor: r.User, Reactions: mine, Summary: sum, ClientID: r.ClientID}, r.Via)
	return m, sum, nil
}

func (s *Server) resolveChange(ctx context.Context, r ChangeRequest) (*mam.Message, error) {
	if s.msgs == nil {
		return nil, ErrChangesUnavailable
	}
	m, err := s.msgs.Resolve(ctx, r.User, r.Ref)
	if err != nil || m.ChatID != 0 {
		return m, err
	}
	// Between two people who blocked one another (XEP-0191) nothing
	// changes, as nothing new would be delivered.
	peerID := m.ToID
	if r.User == m.ToID {
		peerID = m.FromID
	}
	if peerID != r.User {
		me, err1 := s.users.byID(ctx, r.User)
		peer, err2 := s.users.byID(ctx, peerID)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("xmppcore: message change: %w", err)
		}
		if s.isBlocked(ctx, peer.ID, s.bareJID(me.Login)) || s.isBlocked(ctx, me.ID, s.bareJID(peer.Login)) {
			return nil, ErrBlocked
		}
	}
	return m, nil
}

// ErrBlocked refuses a change to a message between two users when one
// blocked the other. It is a mam.ErrForbidden.
var ErrBlocked = fmt.Errorf("%w: blocked", mam.ErrForbidden)

// tellChange sends the notice about c: for a personal message to the
// other party's sessions (and the actor's other sessions as carbons), for
// a chat message through the chat service to its occupants and followers.
func (s *Server) tellChange(ctx context.Context, c *MessageChange, via *Session) {
	m := c.Message
	if m.ChatID != 0 {
		s.extMu.RLock()
		cc := s.chatChanges
		s.extMu.RUnlock()
		if cc != nil {
			cc.MessageChanged(ctx, c)
		}
		return
	}
	peerID := m.ToID
	if c.Actor == m.ToID {
		peerID = m.FromID
	}
	actor, err := s.users.byID(ctx, c.Actor)
	if err != nil {
		s.log.Warn("message change: actor", "user", c.Actor, "err", err)
		return
	}
	peer, err := s.users.byID(ctx, peerID)
	if err != nil {
		s.log.Warn("message change: peer", "user", peerID, "err", err)
		return
	}
	// The notice comes from where the original came from (clients check
	// that a correction has the sender of the original).
	from := s.bareJID(actor.Login)
	res := ""
	switch {
	case c.Op != ChangeReact && m.FromResource != "":
		res = m.FromResource
	case via != nil:
		res = via.resource
	}
	if res != "" {
		from += "/" + res
	}
	id := c.ClientID
	if id == "" {
		id = randomID(9)
	}
	ref := m.OriginID
	if ref == "" {
		ref = strconv.FormatInt(m.ID, 10)
	}
	el := NewElement(NSClient, "message", "type", "chat", "id", id, "from", from, "to", s.bareJID(peer.Login))
	el.Children = append(el.Children, c.Elements(ref)...)
	if c.ClientID != "" {
		el.AddChild(NewElement(NSStanzaID, "origin-id", "id", c.ClientID))
	}
	s.routePersonal(ctx, actor.ID, actor.Login, via, peer, "", "chat", el, 0, 0)
}

// ClientChange is a change a client asked for in a message stanza.
type ClientChange struct {
	Op        ChangeOp
	Ref       string   // the id of the message, as the client named it
	Body      string   // ChangeEdit: the new body
	Reactions []string // ChangeReact: the whole set
}

// ParseChange finds a XEP-0308 correction, a XEP-0424 retraction (also
// the older form inside a XEP-0422 <apply-to/>) or XEP-0444 reactions in
// a message.
func ParseChange(el *Element) (*ClientChange, bool) {
	if r := el.Child(NSCorrect, "replace"); r != nil {
		return &ClientChange{Op: ChangeEdit, Ref: r.AttrValue("id"), Body: el.ChildText(NSClient, "body")}, true
	}
	if r := el.Child(NSRetract, "retract"); r != nil {
		return &ClientChange{Op: ChangeRetract, Ref: r.AttrValue("id")}, true
	}
	if a := el.Child(NSFasten, "apply-to"); a != nil && a.Child(NSRetractOld, "retract") != nil {
		return &ClientChange{Op: ChangeRetract, Ref: a.AttrValue("id")}, true
	}
	if r := el.Child(NSReactions, "reactions"); r != nil {
		c := &ClientChange{Op: ChangeReact, Ref: r.AttrValue("id"), Reactions: []string{}}
		for _, x := range r.Children {
			if x.Name.Space == NSReactions && x.Name.Local == "reaction" {
				c.Reactions = append(c.Reactions, x.Text)
			}
		}
		return c, true
	}
	return nil, false
}

// Apply carries out a change a client asked for, as user, on the message
// ref names.
func (s *Server) Apply(ctx context.Context, c *ClientChange, r ChangeRequest) error {
	if c.Op != ChangeReact {
		r.Ref.Author = r.User
	}
	var err error
	switch c.Op {
	case ChangeEdit:
		_, err = s.EditMessage(ctx, r, c.Body)
	case ChangeRetract:
		_, err = s.RetractMessage(ctx, r)
	case ChangeReact:
		_, _, err = s.SetReactions(ctx, r, c.Reactions)
	}
	return err
}

// ChangeError is the stanza error answering a refused change.
func ChangeError(err error) *StanzaError {
	switch {
	case errors.Is(err, mam.ErrNotFound):
		return &StanzaError{Type: ErrTypeCancel, Condition: "item-not-found", Text: "no such message"}
	case errors.Is(err, mam.ErrTooLate):
		return ErrNotAllowed("the time to change this message is over")
	case errors.Is(err, mam.ErrRetracted):
		return ErrNotAllowed("the message was retracted")
	case errors.Is(err, ErrBlocked):
		return ErrNotAcceptable("blocked")
	case errors.Is(err, mam.ErrForbidden):
		return ErrForbidden("only its author may change a message")
	case errors.Is(err, mam.ErrInvalid):
		return ErrNotAcceptable(strings.TrimPrefix(err.Error(), mam.ErrInvalid.Error()+": "))
	}
	return ErrInternal()
}

// changeFromClient handles a personal message that changes an archived
// one (correction, retraction, reactions): applied to the archive and
// told to both parties, never archived as a message of its own. It
// reports whether el was such a message.
func (s *Server) changeFromClient(ctx context.Context, sess *Session, to *Account, el *Element) (bool, error) {
	typ := el.AttrValue("type")
	if typ != "chat" && typ != "normal" && typ != "" {
		return false, nil
	}
	c, ok := ParseChange(el)
	if !ok {
		return false, nil
	}
	err := s.Apply(ctx, c, ChangeRequest{User: sess.userID, Ref: mam.Ref{Client: c.Ref, With: to.ID}, Via: sess, ClientID: originID(el)})
	if err != nil {
		e := ChangeError(err)
		if e.Condition == "internal-server-error" {
			sess.logger().Error("message change", "err", err)
		}
		sess.replyError(el, e)
		return true, e
	}
	return true, nil
}
