package muc

import (
	"context"
	"errors"

	"mellium.im/xmpp/jid"

	"vestnik/roster"
	"vestnik/xmppcore"
)

// A user's bookmarks are their chats: the list is derived from membership,
// never stored. XEP-0402 clients read the PEP node urn:xmpp:bookmarks:1 on
// their own bare JID; XEP-0048 clients read storage:bookmarks from private
// XML storage. Both show every chat with autojoin. Publishing a bookmark
// for a room joins the chat (when the rules allow); retracting one leaves
// it, and so does publishing it with autojoin='false' — what Dino and
// Gajim do when the user leaves a room ("don't rejoin"). Leaving the room
// with presence unavailable, as every client does on disconnect, is not
// leaving the chat.

// bookmarkError is a stanza error condition for the IQ adapters.
type bookmarkError struct {
	Type, Condition, Text string
}

func (e *bookmarkError) Error() string { return "muc: bookmarks: " + e.Condition }

func bmErr(typ, cond, text string) error {
	return &bookmarkError{Type: typ, Condition: cond, Text: text}
}

// conferenceItem is a XEP-0402 item for a chat.
func (s *Service) conferenceItem(c *Chat, nick string) *xmppcore.Element {
	conf := add(el(NSBookmarks, "conference", "name", c.Title, "autojoin", "true"), text(NSBookmarks, "nick", nick))
	return add(el(NSPubSub, "item", "id", s.RoomJID(c)), conf)
}

// bookmarkQueue holds bookmark pushes deferred by deferBookmarks.
type bookmarkQueue struct {
	pushes []func()
}

type bookmarkQueueKey struct{}

// deferBookmarks returns a context under which pushBookmark and the
// other change notices (later) are queued instead of sent, and flush,
// which sends the queued ones in order.
func deferBookmarks(ctx context.Context) (context.Context, func()) {
	q := &bookmarkQueue{}
	return context.WithValue(ctx, bookmarkQueueKey{}, q), func() {
		for _, f := range q.pushes {
			f()
		}
		q.pushes = nil
	}
}

// pushBookmark tells the user's online sessions that a bookmark appeared
// (or changed) or went away, as a PEP notification.
func (s *Service) pushBookmark(ctx context.Context, userID int64, c *Chat, present bool) {
	if s.router == nil {
		return
	}
	u, err := s.users.UserByID(ctx, userID)
	if err != nil {
		return
	}
	items := el(NSPubSubEvent, "items", "node", NSBookmarks)
	if present {
		it := s.conferenceItem(c, u.Name)
		it.Name.Space = NSPubSubEvent
		add(items, it)
	} else {
		add(items, el(NSPubSubEvent, "retract", "id", s.RoomJID(c)))
	}
	msg := add(el(nsClient, "message", "from", s.userJID(u), "type", "headline", "id", "bm-"+randomID()),
		add(el(NSPubSubEvent, "event"), items))
	later(ctx, func() { s.router.SendToUser(userID, msg) })
}

// sessionUser maps an IQ's session to its user.
func (s *Service) sessionUser(ctx context.Context, j jid.JID) (*roster.User, error) {
	u, err := s.userOf(ctx, j)
	if err != nil {
		return nil, bmErr("auth", "forbidden", "")
	}
	return u, nil
}

// PubSub serves the bookmarks PEP node on the user's own bare JID. Other
// nodes answer item-not-found (get) or feature-not-implemented.
func (s *Service) PubSub(ctx context.Context, user jid.JID, iq *xmppcore.Element) (*xmppcore.Element, error) {
	if to := attr(iq, "to"); to != "" {
		tj, err := jid.Parse(to)
		if err != nil || !tj.Bare().Equal(user.Bare()) {
			return nil, bmErr("cancel", "service-unavailable", "")
		}
	}
	u, err := s.sessionUser(ctx, user)
	if err != nil {
		return nil, err
	}
	ps := child(iq, NSPubSub, "pubsub")
	if ps == nil || len(ps.Children) == 0 {
		return nil, bmErr("modify", "bad-request", "")
	}
	op := ps.Children[0]
	if attr(op, "node") != NSBookmarks {
		if attr(iq, "type") == "get" {
			return nil, bmErr("cancel", "item-not-found", "")
		}
		return nil, bmErr("cancel", "feature-not-implemented", "only the bookmarks node is served")
	}
	switch {
	case attr(iq, "type") == "get" && op.Name.Local == "items":
		chats, err := s.store.ChatsOf(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		items := el(NSPubSub, "items", "node", NSBookmarks)
		want := ""
		if it := child(op, NSPubSub, "item"); it != nil {
			want = attr(it, "id")
		}
		for i := range chats {
			if want == "" || want == s.RoomJID(&chats[i]) {
				add(items, s.conferenceItem(&chats[i], u.Name))
			}
		}
		return add(el(NSPubSub, "pubsub"), items), nil
	case attr(iq, "type") == "set" && op.Name.Local == "publish":
		it := child(op, NSPubSub, "item")
		if it == nil {
			return nil, bmErr("modify", "bad-request", "")
		}
		c, err := s.bookmarkChat(ctx, attr(it, "id"))
		if err != nil {
			return nil, err
		}
		if noAutojoin(child(it, NSBookmarks, "conference")) {
			if c.IsMember(u.ID) {
				if err := s.RemoveMember(ctx, u.ID, c.ID, u.ID); err != nil {
					return nil, err
				}
			}
		} else if !c.IsMember(u.ID) {
			if _, err := s.AddMembers(ctx, u.ID, c.ID, []int64{u.ID}, nil, false); err != nil {
				if errors.Is(err, ErrForbidden) || errors.Is(err, ErrNotFound) {
					return nil, bmErr("auth", "forbidden", "this chat is for members only")
				}
				return nil, err
			}
		}
		return add(el(NSPubSub, "pubsub"), add(el(NSPubSub, "publish", "node", NSBookmarks), el(NSPubSub, "item", "id", s.RoomJID(c)))), nil
	case attr(iq, "type") == "set" && op.Name.Local == "retract":
		it := child(op, NSPubSub, "item")
		if it == nil {
			return nil, bmErr("modify", "bad-request", "")
		}
		c, err := s.bookmarkChat(ctx, attr(it, "id"))
		if err != nil {
			return nil, err
		}
		if c.IsMember(u.ID) {
			if err := s.RemoveMember(ctx, u.ID, c.ID, u.ID); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	return nil, bmErr("cancel", "feature-not-implemented", "")
}

// noAutojoin reports whether a bookmark's conference element says
// autojoin false explicitly (an absent attribute keeps the membership).
func noAutojoin(conf *xmppcore.Element) bool {
	if conf == nil {
		return false
	}
	v := attr(conf, "autojoin")
	return v == "false" || v == "0"
}

// bookmarkChat resolves a bookmark item id (a room JID) to its chat.
func (s *Service) bookmarkChat(ctx context.Context, id string) (*Chat, error) {
	j, err := jid.Parse(id)
	if err != nil {
		return nil, bmErr("modify", "bad-request", "item id must be a room address")
	}
	c, err := s.ChatByJID(ctx, j.Bare())
	if errors.Is(err, ErrNotFound) {
		return nil, bmErr("cancel", "item-not-found", "no such chat")
	}
	return c, err
}

// Private serves jabber:iq:private for storage:bookmarks (XEP-0048): get
// lists the user's chats; a set is the user's new list of chats: a chat
// missing from it, or in it with autojoin='false', is left (as a XEP-0402
// retract leaves it), a room of this service that is new in it is joined
// when the rules allow (an open chat; a closed one the user may not join
// is skipped). Conferences elsewhere and URL bookmarks are not kept, nor
// are other private namespaces.
func (s *Service) Private(ctx context.Context, user jid.JID, iq *xmppcore.Element) (*xmppcore.Element, error) {
	u, err := s.sessionUser(ctx, user)
	if err != nil {
		return nil, err
	}
	q := child(iq, NSPrivate, "query")
	if q == nil || len(q.Children) != 1 {
		return nil, bmErr("modify", "bad-request", "")
	}
	if q.Children[0].Name.Space != NSStorage || q.Children[0].Name.Local != "storage" {
		return nil, bmErr("cancel", "service-unavailable", "only bookmarks are kept in private storage")
	}
	if attr(iq, "type") == "set" {
		return nil, s.saveStorage(ctx, u, q.Children[0])
	}
	chats, err := s.store.ChatsOf(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	st := el(NSStorage, "storage")
	for i := range chats {
		add(st, add(el(NSStorage, "conference", "jid", s.RoomJID(&chats[i]), "name", chats[i].Title, "autojoin", "true"),
			text(NSStorage, "nick", u.Name)))
	}
	return add(el(NSPrivate, "query"), st), nil
}

// BookmarksIQ is the PEP handler for the node urn:xmpp:bookmarks:1, for a
// pubsub service that serves the other PEP nodes and delegates this one.
func (s *Service) BookmarksIQ() xmppcore.IQHandler { return s.iqHandler(s.PubSub) }

// saveStorage applies a XEP-0048 storage set: membership follows the list.
func (s *Service) saveStorage(ctx context.Context, u *roster.User, st *xmppcore.Element) error {
	want := make(map[int64]*Chat)
	for _, conf := range st.Children {
		if conf.Name.Local != "conference" {
			continue
		}
		j, err := jid.Parse(attr(conf, "jid"))
		if err != nil {
			continue
		}
		c, err := s.ChatByJID(ctx, j.Bare())
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if !noAutojoin(conf) {
			want[c.ID] = c
		}
	}
	chats, err := s.store.ChatsOf(ctx, u.ID)
	if err != nil {
		return err
	}
	for i := range chats {
		c := &chats[i]
		if want[c.ID] != nil {
			delete(want, c.ID)
			continue
		}
		if err := s.RemoveMember(ctx, u.ID, c.ID, u.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	for _, c := range want {
		_, err := s.AddMembers(ctx, u.ID, c.ID, []int64{u.ID}, nil, false)
		if err != nil && !errors.Is(err, ErrForbidden) && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}
