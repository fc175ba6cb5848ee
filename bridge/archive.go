package bridge

import (
	"context"
	"errors"
	"sort"
	"strings"

	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
)

// mamArchive reads history through the archive store, whose access rule
// decides what a viewer may see.
type mamArchive struct {
	s     *mam.Store
	chats *muc.Store
}

// NewArchive adapts the archive store to Archive; chats lists the chats
// whose messages a resume replays.
func NewArchive(s *mam.Store, chats *muc.Store) Archive { return mamArchive{s, chats} }

// FromMAM converts an archived message to the client's shape.
func FromMAM(m *mam.Message) Message {
	out := Message{ID: m.ID, Kind: m.Kind, From: m.FromID, To: m.ToID, Chat: m.ChatID, Body: m.Body,
		Time: m.CreatedAt.UnixMilli(), OriginID: m.OriginID, Edited: m.EditedAt != nil, Deleted: m.Deleted}
	if out.Deleted {
		out.Body = ""
	} else {
		out.Files = filesOfPayload(m.Payload)
		out.Rich = xmppcore.RichOf(m.Payload)
	}
	if m.Kind == mam.KindSystem && strings.Contains(m.Payload, muc.NSNotice) {
		if kids, err := xmppcore.ParseFragment(m.Payload); err == nil {
			if n, ok := muc.ParseNotice(kids); ok {
				out.Event = &n
			}
		}
	}
	if m.ReplyTo != 0 && !m.Deleted {
		out.ReplyTo = m.ReplyTo
		if kids, err := xmppcore.ParseFragment(m.Payload); err == nil {
			out.Body = xmppcore.StripReplyFallback(out.Body, kids)
		}
	}
	return out
}

// fromMAMReactions converts reactions to the client's shape.
func fromMAMReactions(rs []mam.Reaction) []Reaction {
	out := make([]Reaction, len(rs))
	for i, r := range rs {
		out[i] = Reaction{Emoji: r.Emoji, Users: r.Users}
	}
	return out
}

// withReactions adds their reactions to msgs (one query).
func (a mamArchive) withReactions(ctx context.Context, msgs []Message) error {
	ids := make([]int64, len(msgs))
	for i := range msgs {
		ids[i] = msgs[i].ID
	}
	rs, err := a.s.Reactions(ctx, ids)
	if err != nil {
		return err
	}
	for i := range msgs {
		if r := rs[msgs[i].ID]; len(r) > 0 {
			msgs[i].Reactions = fromMAMReactions(r)
		}
	}
	return nil
}

func mamErr(err error) error {
	switch {
	case errors.Is(err, mam.ErrTooLate):
		return bad("too_late", "the time to change this message is over")
	case errors.Is(err, mam.ErrRetracted):
		return bad("retracted", "the message was deleted")
	case errors.Is(err, mam.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, mam.ErrForbidden):
		return ErrForbidden
	case errors.Is(err, mam.ErrInvalid):
		return bad("invalid", strings.TrimPrefix(err.Error(), mam.ErrInvalid.Error()+": "))
	}
	return err
}

func shown(kind string) bool { return kind == "chat" || kind == "groupchat" || kind == "system" }

func (a mamArchive) History(ctx context.Context, viewer int64, with Target, beforeID int64, limit int) ([]Message, bool, error) {
	p, err := a.s.Query(ctx, mam.Query{Viewer: viewer, With: with.User, ChatID: with.Chat, BeforeID: beforeID, Limit: limit, Reverse: true})
	if err != nil {
		return nil, false, mamErr(err)
	}
	out := make([]Message, 0, len(p.Messages))
	for i := range p.Messages {
		if shown(p.Messages[i].Kind) {
			out = append(out, FromMAM(&p.Messages[i]))
		}
	}
	if err := a.withReactions(ctx, out); err != nil {
		return nil, false, err
	}
	return out, p.Complete, nil
}

// Since merges the personal archive and each of the viewer's chats after
// afterID and keeps the oldest limit messages.
func (a mamArchive) Since(ctx context.Context, viewer int64, afterID int64, limit int) ([]Message, error) {
	qs := []mam.Query{{Viewer: viewer, AfterID: afterID, Limit: limit}}
	chats, err := a.chats.ChatsOf(ctx, viewer)
	if err != nil {
		return nil, err
	}
	for _, c := range chats {
		qs = append(qs, mam.Query{Viewer: viewer, ChatID: c.ID, AfterID: afterID, Limit: limit})
	}
	var out []Message
	for _, q := range qs {
		p, err := a.s.Query(ctx, q)
		if err != nil {
			return nil, mamErr(err)
		}
		for i := range p.Messages {
			if shown(p.Messages[i].Kind) {
				out = append(out, FromMAM(&p.Messages[i]))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > limit {
		out = out[:limit]
	}
	if err := a.withReactions(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (a mamArchive) Search(ctx context.Context, viewer int64, text string, limit int) ([]Hit, error) {
	hits, err := a.s.Search(ctx, viewer, text, mam.SearchOptions{Limit: limit})
	if err != nil {
		return nil, mamErr(err)
	}
	out := make([]Hit, 0, len(hits))
	for i := range hits {
		if shown(hits[i].Kind) && !hits[i].Deleted {
			out = append(out, Hit{Message: FromMAM(&hits[i].Message), Snippet: hits[i].Snippet})
		}
	}
	return out, nil
}
