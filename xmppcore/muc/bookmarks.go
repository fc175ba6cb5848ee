package muc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"mellium.im/xmpp/jid"

	"vestnik/roster"
	"vestnik/xmppcore"
)

// A user's bookmarks follow their chats, and what their clients publish
// is kept as published (xmpp_bookmarks): the list is every chat the user
// is a member of (with the <conference/> they published — name, nick,
// password, <extensions/> — or the server's, autojoin), the chats they
// left by publishing autojoin='false' (listed as published), and rooms on
// other servers (kept, with no effect). XEP-0402 clients read the PEP node
// urn:xmpp:bookmarks:1 on their own bare JID; XEP-0048 clients read
// storage:bookmarks from private XML storage or from PEP (XEP-0223, what
// Converse.js does). Publishing a bookmark for a room joins the chat
// (when the rules allow); retracting one leaves it, and so does
// publishing it with autojoin='false' — what Dino and Gajim do when the
// user leaves a room ("don't rejoin"). Leaving the room with presence
// unavailable, as every client does on disconnect, is not leaving the
// chat.

// bookmarkError is a stanza error condition for the IQ adapters.
type bookmarkError struct {
	Type, Condition, Text string
}

func (e *bookmarkError) Error() string { return "muc: bookmarks: " + e.Condition }

func bmErr(typ, cond, text string) error {
	return &bookmarkError{Type: typ, Condition: cond, Text: text}
}

func (s *Service) defaultConference(c *Chat, nick string) *xmppcore.Element {
	return add(el(NSBookmarks, "conference", "name", c.Title, "autojoin", "true"), text(NSBookmarks, "nick", nick))
}

func (s *Service) bookmarkItem(room string, conf *xmppcore.Element) *xmppcore.Element {
	return add(el(NSPubSub, "item", "id", room), conf)
}

// bookmark is one of a user's bookmarks: a room address and its
// XEP-0402 <conference/>.
type bookmark struct {
	room string
	conf *xmppcore.Element
}

// userBookmarks lists the user's bookmarks: every chat they are a member
// of, with the <conference/> they published for it (autojoin set true
// again if they published it false and were added back since) or the
// server's; the rooms of this service they published with
// autojoin='false' (they left the chat, the bookmark stays as
// published); and rooms elsewhere, as published. A published bookmark of
// a chat the user was removed from is not listed.
func (s *Service) userBookmarks(ctx context.Context, u *roster.User) ([]bookmark, error) {
	chats, err := s.store.ChatsOf(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	stored, err := s.store.ClientBookmarks(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	out := make([]bookmark, 0, len(chats)+len(stored))
	for i := range chats {
		room := s.RoomJID(&chats[i])
		conf := parseConference(stored[room])
		delete(stored, room)
		if conf == nil {
			conf = s.defaultConference(&chats[i], u.Name)
		} else if noAutojoin(conf) {
			setAttr(conf, "autojoin", "true")
		}
		out = append(out, bookmark{room, conf})
	}
	rooms := make([]string, 0, len(stored))
	for room := range stored {
		rooms = append(rooms, room)
	}
	sort.Strings(rooms)
	for _, room := range rooms {
		conf := parseConference(stored[room])
		if conf == nil {
			continue
		}
		if s.isLocalRoom(room) && !noAutojoin(conf) {
			continue // removed from the chat since
		}
		out = append(out, bookmark{room, conf})
	}
	return out, nil
}

// isLocalRoom reports whether a bookmark's room address is at this service.
func (s *Service) isLocalRoom(room string) bool {
	j, err := jid.Parse(room)
	return err == nil && j.Domainpart() == s.host
}

// parseConference reads a stored <conference/>; nil if none or unreadable.
func parseConference(raw string) *xmppcore.Element {
	if raw == "" {
		return nil
	}
	els, err := xmppcore.ParseFragment(raw)
	if err != nil || len(els) != 1 || els[0].Name.Space != NSBookmarks || els[0].Name.Local != "conference" {
		return nil
	}
	return els[0]
}

// chatBookmark is the <conference/> for one chat of the user as it is
// listed (nil: not listed, a retraction).
func (s *Service) chatBookmark(ctx context.Context, u *roster.User, c *Chat, member bool) *xmppcore.Element {
	conf := parseConference(s.store.ClientBookmark(ctx, u.ID, s.RoomJID(c)))
	switch {
	case member && conf == nil:
		return s.defaultConference(c, u.Name)
	case member:
		if noAutojoin(conf) {
			// Added back since the user left: the bookmark autojoins
			// again, and a later removal by others then drops it.
			setAttr(conf, "autojoin", "true")
			if err := s.store.SaveClientBookmark(ctx, u.ID, s.RoomJID(c), conf.String()); err != nil {
				s.log.Warn("bookmark autojoin", "user", u.ID, "err", err)
			}
		}
		return conf
	case conf != nil && noAutojoin(conf):
		return conf
	}
	return nil
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
	s.pushConference(ctx, u, s.RoomJID(c), s.chatBookmark(ctx, u, c, present))
}

// pushConference sends the user's sessions a bookmark's new
// <conference/> (nil: its retraction) as a PEP notification.
func (s *Service) pushConference(ctx context.Context, u *roster.User, room string, conf *xmppcore.Element) {
	if s.router == nil {
		return
	}
	items := el(NSPubSubEvent, "items", "node", NSBookmarks)
	if conf != nil {
		it := s.bookmarkItem(room, conf)
		it.Name.Space = NSPubSubEvent
		add(items, it)
	} else {
		add(items, el(NSPubSubEvent, "retract", "id", room))
	}
	msg := add(el(nsClient, "message", "from", s.userJID(u), "type", "headline", "id", "bm-"+randomID()),
		add(el(NSPubSubEvent, "event"), items))
	later(ctx, func() { s.router.SendToUser(u.ID, msg) })
}

// sessionUser maps an IQ's session to its user.
func (s *Service) sessionUser(ctx context.Context, j jid.JID) (*roster.User, error) {
	u, err := s.userOf(ctx, j)
	if err != nil {
		return nil, bmErr("auth", "forbidden", "")
	}
	return u, nil
}

// PubSub serves the bookmarks PEP nodes on the user's own bare JID:
// urn:xmpp:bookmarks:1 (XEP-0402) and storage:bookmarks (XEP-0048 in PEP,
// XEP-0223: one item 'current' holding the whole list, as Converse.js
// reads it). Other nodes answer item-not-found (get) or
// feature-not-implemented.
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
	typ := attr(iq, "type")
	switch attr(op, "node") {
	case NSBookmarks:
	case NSStorage:
		return s.pepStorage(ctx, u, typ, op)
	default:
		if typ == "get" {
			return nil, bmErr("cancel", "item-not-found", "")
		}
		return nil, bmErr("cancel", "feature-not-implemented", "only the bookmarks nodes are served")
	}
	switch {
	case typ == "get" && op.Name.Local == "items":
		bms, err := s.userBookmarks(ctx, u)
		if err != nil {
			return nil, err
		}
		items := el(NSPubSub, "items", "node", NSBookmarks)
		want := ""
		if it := child(op, NSPubSub, "item"); it != nil {
			want = attr(it, "id")
		}
		for _, b := range bms {
			if want == "" || want == b.room {
				add(items, s.bookmarkItem(b.room, b.conf))
			}
		}
		return add(el(NSPubSub, "pubsub"), items), nil
	case typ == "set" && op.Name.Local == "publish":
		it := child(op, NSPubSub, "item")
		if it == nil {
			return nil, bmErr("modify", "bad-request", "")
		}
		conf := child(it, NSBookmarks, "conference")
		if conf == nil {
			return nil, bmErr("modify", "bad-request", "the item must hold a <conference xmlns='urn:xmpp:bookmarks:1'/>")
		}
		room, err := s.publishBookmark(ctx, u, attr(it, "id"), conf)
		if err != nil {
			return nil, err
		}
		return add(el(NSPubSub, "pubsub"), add(el(NSPubSub, "publish", "node", NSBookmarks), el(NSPubSub, "item", "id", room))), nil
	case typ == "set" && op.Name.Local == "retract":
		it := child(op, NSPubSub, "item")
		if it == nil {
			return nil, bmErr("modify", "bad-request", "")
		}
		return nil, s.retractBookmark(ctx, u, attr(it, "id"))
	}
	return nil, bmErr("cancel", "feature-not-implemented", "")
}

// MaxBookmark bounds a published <conference/>, serialized, in bytes.
const MaxBookmark = 8 << 10

// MaxBookmarks bounds the bookmarks a user keeps of rooms that are not
// their chats (rooms elsewhere, chats left with autojoin='false').
const MaxBookmarks = 1000

// publishBookmark keeps the client's <conference/> for a room as it was
// published and applies the membership rule to a room of this service:
// autojoin='false' leaves the chat, otherwise the user joins it (when
// the rules allow). It returns the room address, normalized.
func (s *Service) publishBookmark(ctx context.Context, u *roster.User, id string, conf *xmppcore.Element) (string, error) {
	j, err := jid.Parse(id)
	if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
		return "", bmErr("modify", "bad-request", "item id must be a room address")
	}
	room := j.String()
	conf = conf.Copy()
	raw := conf.String()
	if len(raw) > MaxBookmark {
		return "", bmErr("modify", "not-acceptable", "bookmark too large")
	}
	prev := s.store.ClientBookmark(ctx, u.ID, room)
	if prev == "" {
		n, err := s.store.CountClientBookmarks(ctx, u.ID)
		if err != nil {
			return "", err
		}
		if n >= MaxBookmarks {
			return "", bmErr("wait", "resource-constraint", "too many bookmarks")
		}
	}
	if j.Domainpart() != s.host {
		if err := s.store.SaveClientBookmark(ctx, u.ID, room, raw); err != nil {
			return "", err
		}
		s.pushConference(ctx, u, room, conf)
		return room, nil
	}
	c, err := s.bookmarkChat(ctx, room)
	if err != nil {
		return "", err
	}
	if err := s.store.SaveClientBookmark(ctx, u.ID, room, raw); err != nil {
		return "", err
	}
	undo := func() {
		if prev == "" {
			s.store.DeleteClientBookmark(ctx, u.ID, room)
		} else {
			s.store.SaveClientBookmark(ctx, u.ID, room, prev)
		}
	}
	switch {
	case noAutojoin(conf) && c.IsMember(u.ID):
		if err := s.RemoveMember(ctx, u.ID, c.ID, u.ID); err != nil {
			undo()
			return "", err
		}
	case !noAutojoin(conf) && !c.IsMember(u.ID):
		// The bookmark's <password/> opens a password-protected chat.
		if _, err := s.Join(ctx, u.ID, c.ID, childText(conf, NSBookmarks, "password")); err != nil {
			undo()
			if errors.Is(err, ErrPasswordRequired) {
				return "", bmErr("auth", "not-authorized", "this chat needs its password")
			}
			if errors.Is(err, ErrForbidden) || errors.Is(err, ErrNotFound) {
				return "", bmErr("auth", "forbidden", "this chat is for members only")
			}
			return "", err
		}
	default:
		// No membership change: the user's other sessions learn of the
		// new <conference/> here (a change pushes it itself).
		s.pushConference(ctx, u, room, s.chatBookmark(ctx, u, c, c.IsMember(u.ID)))
	}
	return room, nil
}

// retractBookmark forgets the user's bookmark of a room; for a chat of
// this service it also leaves the chat.
func (s *Service) retractBookmark(ctx context.Context, u *roster.User, id string) error {
	j, err := jid.Parse(id)
	if err != nil || j.Localpart() == "" {
		return bmErr("modify", "bad-request", "item id must be a room address")
	}
	room := j.Bare().String()
	if err := s.store.DeleteClientBookmark(ctx, u.ID, room); err != nil {
		return err
	}
	if j.Domainpart() != s.host {
		s.pushConference(ctx, u, room, nil)
		return nil
	}
	c, err := s.bookmarkChat(ctx, room)
	if err != nil {
		return err
	}
	if c.IsMember(u.ID) {
		return s.RemoveMember(ctx, u.ID, c.ID, u.ID)
	}
	s.pushConference(ctx, u, room, nil)
	return nil
}

// noAutojoin reports whether a bookmark's conference element says
// autojoin false (XEP-0402: absent means false, but an absent attribute
// keeps the membership; only an explicit false leaves).
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
// lists the user's bookmarks; a set is the user's new list (see
// saveStorage). Other private namespaces are not kept.
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
	st, err := s.storage(ctx, u)
	if err != nil {
		return nil, err
	}
	return add(el(NSPrivate, "query"), st), nil
}

// pepStorage serves the PEP node storage:bookmarks: items get returns
// the item 'current' with the whole list (item-not-found when there is
// no bookmark), publish is a XEP-0048 set.
func (s *Service) pepStorage(ctx context.Context, u *roster.User, typ string, op *xmppcore.Element) (*xmppcore.Element, error) {
	switch {
	case typ == "get" && op.Name.Local == "items":
		st, err := s.storage(ctx, u)
		if err != nil {
			return nil, err
		}
		if len(st.Children) == 0 {
			// No bookmarks: the node has no item (what Prosody answers,
			// and what Converse.js takes for an empty list).
			return nil, bmErr("cancel", "item-not-found", "")
		}
		items := add(el(NSPubSub, "items", "node", NSStorage), add(el(NSPubSub, "item", "id", "current"), st))
		return add(el(NSPubSub, "pubsub"), items), nil
	case typ == "set" && op.Name.Local == "publish":
		st := child(child(op, NSPubSub, "item"), NSStorage, "storage")
		if st == nil {
			return nil, bmErr("modify", "bad-request", "the item must hold a <storage xmlns='storage:bookmarks'/>")
		}
		if err := s.saveStorage(ctx, u, st); err != nil {
			return nil, err
		}
		return add(el(NSPubSub, "pubsub"), add(el(NSPubSub, "publish", "node", NSStorage), el(NSPubSub, "item", "id", "current"))), nil
	}
	return nil, bmErr("cancel", "feature-not-implemented", "")
}

// storage is the user's bookmarks as a XEP-0048 <storage/>.
func (s *Service) storage(ctx context.Context, u *roster.User) (*xmppcore.Element, error) {
	bms, err := s.userBookmarks(ctx, u)
	if err != nil {
		return nil, err
	}
	st := el(NSStorage, "storage")
	for _, b := range bms {
		c := el(NSStorage, "conference", "jid", b.room, "autojoin", "false")
		if !noAutojoin(b.conf) && attr(b.conf, "autojoin") != "" {
			setAttr(c, "autojoin", "true")
		}
		if n := attr(b.conf, "name"); n != "" {
			setAttr(c, "name", n)
		}
		for _, f := range []string{"nick", "password"} {
			if v := child(b.conf, NSBookmarks, f); v != nil {
				add(c, text(NSStorage, f, v.Text))
			}
		}
		add(st, c)
	}
	return st, nil
}

// BookmarksIQ is the PEP handler for the nodes urn:xmpp:bookmarks:1 and
// storage:bookmarks, for a pubsub service that serves the other PEP
// nodes and delegates these.
func (s *Service) BookmarksIQ() xmppcore.IQHandler { return s.iqHandler(s.PubSub) }

// saveStorage applies a XEP-0048 set: it is the user's new list. Each
// conference is kept as a XEP-0402 <conference/> (name, autojoin, nick,
// password) and follows the publish rule (autojoin='false' leaves a
// chat, otherwise an open chat is joined; a closed one the user may not
// join is skipped); a bookmark missing from the list is retracted (a
// chat missing from it is left). URL bookmarks are not kept.
func (s *Service) saveStorage(ctx context.Context, u *roster.User, st *xmppcore.Element) error {
	keep := make(map[string]bool)
	for _, c := range st.Children {
		if c.Name.Local != "conference" {
			continue
		}
		j, err := jid.Parse(attr(c, "jid"))
		if err != nil || j.Localpart() == "" {
			continue
		}
		// An absent autojoin keeps (or makes) the membership, as it
		// always did for XEP-0048 clients; only an explicit false leaves.
		conf := el(NSBookmarks, "conference", "autojoin", "true")
		if noAutojoin(c) {
			setAttr(conf, "autojoin", "false")
		}
		if n := attr(c, "name"); n != "" {
			setAttr(conf, "name", n)
		}
		for _, f := range []string{"nick", "password"} {
			if v := child(c, NSStorage, f); v != nil {
				add(conf, text(NSBookmarks, f, v.Text))
			}
		}
		room := j.Bare().String()
		if _, err := s.publishBookmark(ctx, u, room, conf); err != nil {
			var be *bookmarkError
			if !errors.As(err, &be) {
				return err
			}
			continue // a chat the user may not join, or no such chat
		}
		keep[room] = true
	}
	bms, err := s.userBookmarks(ctx, u)
	if err != nil {
		return err
	}
	for _, b := range bms {
		if keep[b.room] {
			continue
		}
		if err := s.retractBookmark(ctx, u, b.room); err != nil {
			var be *bookmarkError
			if !errors.As(err, &be) && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

// ClientBookmarks returns the bookmarks the user published, room →
// serialized <conference/>.
func (s *Store) ClientBookmarks(ctx context.Context, userID int64) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var rows []struct {
		Room       string `db:"room"`
		Conference string `db:"conference"`
	}
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT room, conference FROM xmpp_bookmarks WHERE user_id = ?`), userID); err != nil {
		return nil, fmt.Errorf("muc: bookmarks of %d: %w", userID, err)
	}
	m := make(map[string]string, len(rows))
	for _, r := range rows {
		m[r.Room] = r.Conference
	}
	return m, nil
}

// ClientBookmark returns the <conference/> the user published for room,
// "" if none (or if it cannot be read: the server's own is served then).
func (s *Store) ClientBookmark(ctx context.Context, userID int64, room string) string {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var v string
	if err := s.db.GetContext(ctx, &v, s.db.Rebind(`SELECT conference FROM xmpp_bookmarks WHERE user_id = ? AND room = ?`), userID, room); err != nil {
		return ""
	}
	return v
}

// CountClientBookmarks counts the bookmarks the user published.
func (s *Store) CountClientBookmarks(ctx context.Context, userID int64) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var n int
	if err := s.db.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM xmpp_bookmarks WHERE user_id = ?`), userID); err != nil {
		return 0, fmt.Errorf("muc: count bookmarks of %d: %w", userID, err)
	}
	return n, nil
}

// SaveClientBookmark keeps the <conference/> the user published for room.
func (s *Store) SaveClientBookmark(ctx context.Context, userID int64, room, conf string) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO xmpp_bookmarks (user_id, room, conference, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, room) DO UPDATE SET conference = excluded.conference, updated_at = excluded.updated_at`),
		userID, room, conf, time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("muc: save bookmark of %d: %w", userID, err)
	}
	return nil
}

// DeleteClientBookmark forgets the user's bookmark of room.
func (s *Store) DeleteClientBookmark(ctx context.Context, userID int64, room string) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM xmpp_bookmarks WHERE user_id = ? AND room = ?`), userID, room); err != nil {
		return fmt.Errorf("muc: delete bookmark of %d: %w", userID, err)
	}
	return nil
}
