package xmppcore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"vestnik/xmppcore/mam"
)

// Replies (XEP-0461): a message may answer another one of its
// conversation, named by the id clients know it by (1:1: its id or
// origin-id; rooms: the room's stanza-id). The rule, for every door: one
// answers only a message one may read, in the same conversation, not
// retracted (mam.Store.ReplyTarget). The archive keeps the reply's
// archive id (messages.reply_to) and the stanza's children as they came
// (the <reply/>, and a XEP-0428 fallback quote when the client put one in
// the body); the server adds <reply-to xmlns='urn:vestnik:message:0'
// id='<archive id>'/>, so the bridge and offline and MAM copies carry it.

// NSReply is the namespace of XEP-0461 replies.
const NSReply = "urn:xmpp:reply:0"

// ErrBadReply refuses a reply to a message the author cannot see (or
// that does not exist, or was retracted).
var ErrBadReply = errors.New("xmppcore: no such message to reply to")

// ReplyOf returns the id a XEP-0461 <reply/> of el names.
func ReplyOf(el *Element) (string, bool) {
	r := el.Child(NSReply, "reply")
	if r == nil || r.AttrValue("id") == "" {
		return "", false
	}
	return r.AttrValue("id"), true
}

// ReplyMarker is the server's note of the archive id a message answers.
func ReplyMarker(id int64) *Element {
	return NewElement(NSMessageState, "reply-to", "id", strconv.FormatInt(id, 10))
}

// ReplyTarget resolves the message a reply by author names in its
// conversation (ref: Client and With or ChatID), under the one rule.
func (s *Server) ReplyTarget(ctx context.Context, author int64, ref mam.Ref) (*mam.Message, error) {
	if s.msgs == nil {
		return nil, ErrChangesUnavailable
	}
	m, err := s.msgs.ReplyTarget(ctx, author, ref)
	if errors.Is(err, mam.ErrNotFound) || errors.Is(err, mam.ErrForbidden) {
		return nil, fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	return m, err
}

// markReply resolves the <reply/> of a personal message about to be
// archived and notes the target on el (a marker a client put there is
// dropped first). It returns the target's archive id, 0 for no reply.
func (s *Server) markReply(ctx context.Context, fromID, toID int64, el *Element) (int64, error) {
	el.RemoveChildren(NSMessageState, "reply-to")
	ref, ok := ReplyOf(el)
	if !ok {
		return 0, nil
	}
	m, err := s.ReplyTarget(ctx, fromID, mam.Ref{Client: ref, With: toID})
	if err != nil {
		return 0, err
	}
	el.AddChild(ReplyMarker(m.ID))
	return m.ID, nil
}

// ReplyTo returns the archive id the server noted on a delivered message
// (0: not a reply).
func ReplyTo(el *Element) int64 {
	if r := el.Child(NSMessageState, "reply-to"); r != nil {
		if n, err := strconv.ParseInt(r.AttrValue("id"), 10, 64); err == nil {
			return n
		}
	}
	return 0
}

// StripReplyFallback removes from body the quote a client put there for
// clients without XEP-0461, as its XEP-0428 <fallback for='urn:xmpp:reply:0'>
// says (offsets in code points); without one body is returned as is.
func StripReplyFallback(body string, children []*Element) string {
	for _, f := range children {
		if f.Name.Space != NSFallback || f.Name.Local != "fallback" || f.AttrValue("for") != NSReply {
			continue
		}
		for _, b := range f.Children {
			if b.Name.Local != "body" {
				continue
			}
			start, err1 := strconv.Atoi(b.AttrValue("start"))
			end, err2 := strconv.Atoi(b.AttrValue("end"))
			n := utf8.RuneCountInString(body)
			if err1 != nil || err2 != nil || start < 0 || end < start || end > n {
				return body
			}
			runes := []rune(body)
			return string(runes[:start]) + string(runes[end:])
		}
	}
	return body
}

// ReplyElement is the XEP-0461 <reply/> by author to the personal message
// ref names (by archive id, from the bridge or REST), naming it the way
// clients know it.
func (s *Server) ReplyElement(ctx context.Context, author int64, ref mam.Ref) (*Element, error) {
	m, err := s.ReplyTarget(ctx, author, ref)
	if err != nil {
		return nil, err
	}
	to, err := s.users.byID(ctx, m.FromID)
	if err != nil {
		return nil, fmt.Errorf("xmppcore: reply: author %d: %w", m.FromID, err)
	}
	id := m.OriginID
	if id == "" {
		id = strconv.FormatInt(m.ID, 10)
	}
	return NewElement(NSReply, "reply", "to", s.bareJID(to.Login), "id", id), nil
}
