package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
)

// Namespaces the bridge speaks with the core.
const (
	nsChatStates  = "http://jabber.org/protocol/chatstates" // XEP-0085
	nsReceipts    = "urn:xmpp:receipts"                     // XEP-0184
	nsMarkers     = "urn:xmpp:chat-markers:0"               // XEP-0333
	nsCorrect     = "urn:xmpp:message-correct:0"            // XEP-0308
	nsRetract     = "urn:xmpp:message-retract:1"            // XEP-0424
	nsCarbonsX    = "urn:xmpp:carbons:2"
	nsForwardX    = "urn:xmpp:forward:0"
	nsPubSubEvent = "http://jabber.org/protocol/pubsub#event"
)

// ChatService is what the bridge needs from the group chat service
// (muc.Service): posting (stored, then fanned out; it answers the stored
// id, or 0 for a command answered to the session), following the user's
// chats, so that the session receives their messages and change events
// like an occupant without joining each room, and the chat lifecycle,
// each operation under the service's own rules (actor = the user).
type ChatService interface {
	PostMessageOrigin(ctx context.Context, chatID, fromUserID int64, body, originID string, system bool) (int64, error)
	PostFromSession(ctx context.Context, chatID, fromUserID int64, full, body, originID string, replyTo int64) (int64, error)
	Follow(ctx context.Context, userID int64, full string) error
	Unfollow(userID int64, full string)

	Get(ctx context.Context, viewer, chatID int64) (*muc.Chat, error)
	FindChats(ctx context.Context, viewer int64, title string, limit int) ([]muc.Chat, error)
	Create(ctx context.Context, actor int64, nc muc.NewChat) (*muc.Chat, error)
	Update(ctx context.Context, actor, chatID int64, u muc.Update) (*muc.Chat, error)
	AddMembers(ctx context.Context, actor, chatID int64, users []int64, hideHistory *bool, skipMessage bool) ([]int64, error)
	RemoveMember(ctx context.Context, actor, chatID, userID int64) error
}

// xmppCore is Core over the XMPP server.
type xmppCore struct {
	srv   *xmppcore.Server
	users *roster.Store
	chats *muc.Store
	post  ChatService
	arch  *mam.Store
	log   *slog.Logger

	mu    sync.Mutex // guards rooms
	rooms map[string]int64
}

// XMPP makes the bridge's Core over the XMPP server. post may be nil (no
// group chats).
func XMPP(srv *xmppcore.Server, users *roster.Store, chats *muc.Store, post ChatService, arch *mam.Store, log *slog.Logger) Core {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &xmppCore{srv: srv, users: users, chats: chats, post: post, arch: arch, log: log,
		rooms: map[string]int64{}}
}

// loginOf and idOf look users up through the server's one user cache,
// which change events keep current (a login rename addresses the new JID).
func (x *xmppCore) loginOf(ctx context.Context, id int64) (string, error) {
	u, err := x.srv.UserByID(ctx, id)
	if errors.Is(err, xmppcore.ErrNotFound) {
		return "", bad("not_found", "no such user")
	}
	if err != nil {
		return "", err
	}
	return u.Login, nil
}

func (x *xmppCore) idOf(ctx context.Context, login string) (int64, error) {
	u, err := x.srv.UserByLogin(ctx, login)
	if err != nil {
		return 0, err
	}
	return u.ID, nil
}

func (x *xmppCore) chatOfRoom(ctx context.Context, room string) int64 {
	x.mu.Lock()
	id, ok := x.rooms[room]
	x.mu.Unlock()
	if ok {
		return id
	}
	c, err := x.chats.ByRoom(ctx, room)
	if err != nil {
		return 0
	}
	x.mu.Lock()
	x.rooms[room] = c.ID
	x.mu.Unlock()
	return c.ID
}

func (x *xmppCore) Online(userID int64) bool { return x.srv.Online(userID) }

func (x *xmppCore) ConfirmDelivered(ctx context.Context, userID, upToID int64) error {
	return x.srv.ConfirmDelivered(ctx, userID, upToID)
}

// xmppLink is one attached session. Stanzas the router delivers go into
// in (bounded; Deliver never blocks) and are translated into frames by
// the link's own goroutine, which may read the archive.
type xmppLink struct {
	x      *xmppCore
	sess   *xmppcore.Session
	userID int64
	ev     Events
	in     chan *xmppcore.Element
	quit   chan struct{}
	once   sync.Once

	mu      sync.Mutex
	origins map[string]int64 // origin-id / stanza id → archive id, for receipts

	show, status string // the presence it started with (set by Attach)
}

func (x *xmppCore) Attach(ctx context.Context, userID int64, resource string, ev Events) (Link, error) {
	l := &xmppLink{x: x, userID: userID, ev: ev, in: make(chan *xmppcore.Element, SendQueue), quit: make(chan struct{}), origins: map[string]int64{}}
	sess, err := x.srv.Attach(ctx, userID, resource, linkSink{l})
	if err != nil {
		return nil, fmt.Errorf("bridge: attach: %w", err)
	}
	l.sess = sess
	go l.translate()
	// Like a client after binding: carbons (other tabs and Jabber clients
	// of the same user see what this one sends), the roster (so roster
	// pushes come), initial presence (offline messages flush), then the
	// user's chats (followed, not joined as a MUC occupant).
	l.handle(ctx, iq("set", xmppcore.NewElement(nsCarbonsX, "enable")))
	l.handle(ctx, iq("get", xmppcore.NewElement(xmppcore.NSRoster, "query")))
	// The presence the user chose last (do-not-disturb survives reloads).
	l.show, l.status, err = x.srv.RememberedPresence(ctx, userID)
	if err != nil {
		x.log.Warn("bridge: remembered presence", "err", err)
		l.show, l.status = "online", ""
	}
	l.handle(ctx, presenceStanza(l.show, l.status))
	if x.post != nil {
		if err := x.post.Follow(ctx, userID, sess.JID().String()); err != nil {
			l.Close()
			return nil, fmt.Errorf("bridge: follow chats: %w", err)
		}
	}
	return l, nil
}

var iqSeq struct {
	sync.Mutex
	n int64
}

func iq(typ string, payload *xmppcore.Element) *xmppcore.Element {
	iqSeq.Lock()
	iqSeq.n++
	n := iqSeq.n
	iqSeq.Unlock()
	el := xmppcore.NewElement(xmppcore.NSClient, "iq", "type", typ, "id", "b"+strconv.FormatInt(n, 36))
	el.AddChild(payload)
	return el
}

func (l *xmppLink) handle(ctx context.Context, el *xmppcore.Element) {
	if err := l.sess.Handle(ctx, el); err != nil {
		l.x.log.Debug("bridge stanza", "err", err)
	}
}

// linkSink is the link as the router sees it (xmppcore.Sink).
type linkSink struct{ l *xmppLink }

func (s linkSink) Deliver(el *xmppcore.Element) bool { return s.l.deliver(el) }

// Close: the core ended the session.
func (s linkSink) Close(reason string) {
	s.l.stop()
	s.l.ev.Close(reason)
}

func (l *xmppLink) deliver(el *xmppcore.Element) bool {
	select {
	case l.in <- el:
		return true
	case <-l.quit:
		return false
	default:
		return false
	}
}

func (l *xmppLink) stop() { l.once.Do(func() { close(l.quit) }) }

func (l *xmppLink) translate() {
	for {
		select {
		case el := <-l.in:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			for _, f := range l.frames(ctx, el) {
				if !l.ev.Event(f) {
					cancel()
					return
				}
			}
			cancel()
		case <-l.quit:
			return
		}
	}
}

func (l *xmppLink) bareDomain() string { return l.x.srv.Domain() }

// peer returns the employee id of a JID of this domain, or 0.
func (l *xmppLink) peer(ctx context.Context, s string) int64 {
	j, err := jid.Parse(s)
	if err != nil || j.Domainpart() != l.bareDomain() || j.Localpart() == "" {
		return 0
	}
	id, err := l.x.idOf(ctx, j.Localpart())
	if err != nil {
		return 0
	}
	return id
}

// frames translates one delivered stanza into zero or more events.
func (l *xmppLink) frames(ctx context.Context, el *xmppcore.Element) []Frame {
	switch el.Name.Local {
	case "message":
		return l.messageFrames(ctx, el)
	case "presence":
		return l.presenceFrames(ctx, el)
	case "iq":
		if el.AttrValue("type") == "set" && el.Child(xmppcore.NSRoster, "query") != nil {
			// A roster push: answer it like a client and tell the browser.
			res := xmppcore.NewElement(xmppcore.NSClient, "iq", "type", "result", "id", el.AttrValue("id"))
			l.handle(ctx, res)
			return []Frame{{"type": "contacts_changed"}}
		}
	}
	return nil
}

func (l *xmppLink) stanzaID(el *xmppcore.Element) int64 {
	for _, c := range el.Children {
		if c.Name.Space == xmppcore.NSStanzaID && c.Name.Local == "stanza-id" {
			if id, err := strconv.ParseInt(c.AttrValue("id"), 10, 64); err == nil {
				return id
			}
		}
	}
	return 0
}

func (l *xmppLink) messageFrames(ctx context.Context, el *xmppcore.Element) []Frame {
	// Carbons: a copy of what another resource of ours sent or received.
	for _, kind := range []string{"sent", "received"} {
		if c := el.Child(nsCarbonsX, kind); c != nil {
			if fw := c.Child(nsForwardX, "forwarded"); fw != nil {
				if inner := fw.Child(xmppcore.NSClient, "message"); inner != nil {
					return l.messageFrames(ctx, inner)
				}
			}
			return nil
		}
	}
	typ := el.AttrValue("type")
	from := el.AttrValue("from")
	if typ == "error" {
		return nil
	}
	if ev, ok := muc.ParseChatEvent(el); ok {
		return []Frame{l.chatChanged(ev)}
	}
	if f := l.commandAnswer(el); f != nil {
		return []Frame{f}
	}
	if typ == "headline" {
		if el.Child(nsPubSubEvent, "event") != nil {
			// PEP notifications (bookmark pushes and the like) are for
			// Jabber clients; chat changes reach the browser as
			// chat_changed events.
			return nil
		}
		return l.headline(ctx, el)
	}
	chat := int64(0)
	if j, err := jid.Parse(from); err == nil && strings.HasPrefix(j.Domainpart(), "conference.") {
		chat = l.x.chatOfRoom(ctx, j.Localpart())
	}
	peer := l.peer(ctx, from)
	var out []Frame
	// Edits, retractions and reactions (XEP-0308, XEP-0424, XEP-0444):
	// the core's notice names the archive id (xmppcore/edits.go).
	if st := el.Child(xmppcore.NSMessageState, "edited"); st != nil {
		return l.refetch(ctx, st.AttrValue("id"), "edited")
	}
	if st := el.Child(xmppcore.NSMessageState, "retracted"); st != nil {
		return l.refetch(ctx, st.AttrValue("id"), "deleted")
	}
	if st := el.Child(xmppcore.NSMessageState, "reactions"); st != nil {
		return reactionsFrames(st, chat)
	}
	if rd := el.Child(xmppcore.NSMessageState, "read"); rd != nil {
		return l.readFrames(ctx, el, rd, chat) // read.go
	}
	if el.Child(nsCorrect, "replace") != nil || el.Child(nsRetract, "retract") != nil {
		return nil // not from the core: nothing was stored
	}
	if el.Child(xmppcore.NSClient, "body") != nil {
		id := l.stanzaID(el)
		if id > 0 {
			msg, err := l.personal(ctx, el, id, chat)
			if err == nil {
				out = append(out, Frame{"type": "message", "message": msg})
				// Delivered to a browser: answer a receipt request.
				if rq := el.Child(nsReceipts, "request"); rq != nil && peer > 0 && msg.From != l.userID {
					rc := xmppcore.NewElement(xmppcore.NSClient, "message", "to", from, "type", "chat")
					rc.AddChild(xmppcore.NewElement(nsReceipts, "received", "id", el.AttrValue("id")))
					l.handle(ctx, rc)
				}
			}
		}
	}
	// Chat states.
	for _, st := range []string{"composing", "paused", "active", "inactive", "gone"} {
		if el.Child(nsChatStates, st) != nil && peer > 0 && chat == 0 {
			state := "paused"
			if st == "composing" {
				state = "composing"
			}
			out = append(out, Frame{"type": "typing", "user": peer, "state": state})
		}
	}
	// Receipts and markers about our messages.
	if r := el.Child(nsReceipts, "received"); r != nil && peer > 0 {
		if id := l.archiveID(ctx, peer, r.AttrValue("id")); id > 0 {
			out = append(out, Frame{"type": "receipt", "user": peer, "message_id": id, "state": "delivered"})
		}
	}
	if r := el.Child(nsMarkers, "displayed"); r != nil && peer > 0 {
		if id := l.archiveID(ctx, peer, r.AttrValue("id")); id > 0 {
			out = append(out, Frame{"type": "receipt", "user": peer, "message_id": id, "state": "read"})
		}
	}
	return out
}

// personal reads a delivered personal message from the stanza itself (no
// database read on the hot path); a chat message, or one whose parties
// are not both employees, is read from the archive by its stanza-id.
func (l *xmppLink) personal(ctx context.Context, el *xmppcore.Element, id, chat int64) (Message, error) {
	if chat == 0 {
		from, to := l.peer(ctx, el.AttrValue("from")), l.peer(ctx, el.AttrValue("to"))
		if from > 0 && to > 0 {
			m := Message{ID: id, Kind: "chat", From: from, To: to, Body: el.ChildText(xmppcore.NSClient, "body"), Time: time.Now().UnixMilli(),
				Files: filesOf(el.Children), Rich: xmppcore.RichOfElements(el.Children)}
			if m.ReplyTo = xmppcore.ReplyTo(el); m.ReplyTo != 0 {
				m.Body = xmppcore.StripReplyFallback(m.Body, el.Children)
			}
			if o := el.Child(xmppcore.NSStanzaID, "origin-id"); o != nil {
				m.OriginID = o.AttrValue("id")
			}
			if d := el.Child(xmppcore.NSDelay, "delay"); d != nil {
				if t, err := time.Parse(time.RFC3339Nano, d.AttrValue("stamp")); err == nil {
					m.Time = t.UnixMilli()
				}
			}
			return m, nil
		}
	}
	m, err := l.x.arch.Get(ctx, id)
	if err != nil {
		l.x.log.Warn("bridge: archived message", "id", id, "err", err)
		return Message{}, err
	}
	return FromMAM(m), nil
}

// reactionsFrames turns the core's reaction summary into a frame.
func reactionsFrames(st *xmppcore.Element, chat int64) []Frame {
	id, err := strconv.ParseInt(st.AttrValue("id"), 10, 64)
	if err != nil {
		return nil
	}
	rs := []Reaction{}
	for _, r := range st.Children {
		if r.Name.Local != "reaction" {
			continue
		}
		x := Reaction{Emoji: r.AttrValue("emoji"), Users: []int64{}}
		for _, u := range strings.Fields(r.AttrValue("users")) {
			if n, err := strconv.ParseInt(u, 10, 64); err == nil {
				x.Users = append(x.Users, n)
			}
		}
		rs = append(rs, x)
	}
	f := Frame{"type": "reactions", "message_id": id, "reactions": rs}
	if chat > 0 {
		f["chat"] = chat
	}
	return []Frame{f}
}

func (l *xmppLink) refetch(ctx context.Context, ref, typ string) []Frame {
	id, err := strconv.ParseInt(ref, 10, 64)
	if err != nil {
		return nil
	}
	m, err := l.x.arch.Get(ctx, id)
	if err != nil {
		return nil
	}
	return []Frame{{"type": typ, "message": FromMAM(m)}}
}

// archiveID maps the id a receipt or marker names to an archive id: our
// own stanza ids (origin ids) are remembered; an archive id is taken as is.
// A receipt may overtake Send's bookkeeping (the peer answers as soon as
// the router delivers, before Send returns), so an unknown origin id is
// looked up among the user's own recent messages to peer in the archive
// (mam.Store.Resolve, as for a client's correction).
func (l *xmppLink) archiveID(ctx context.Context, peer int64, ref string) int64 {
	l.mu.Lock()
	id, ok := l.origins[ref]
	l.mu.Unlock()
	if ok {
		return id
	}
	if n, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return n
	}
	if ref == "" {
		return 0
	}
	m, err := l.x.arch.Resolve(ctx, l.userID, mam.Ref{Client: ref, With: peer, Author: l.userID})
	if err != nil {
		return 0
	}
	return m.ID
}

func (l *xmppLink) headline(ctx context.Context, el *xmppcore.Element) []Frame {
	body := el.ChildText(xmppcore.NSClient, "body")
	// A notification names itself by id (xmppcore/notify.go).
	if mark := el.Child(xmppcore.NSNotify, "notification"); mark != nil {
		if id, err := strconv.ParseInt(mark.AttrValue("id"), 10, 64); err == nil {
			if n, err := l.x.srv.Notification(ctx, l.userID, id); err == nil {
				// With its sender, buttons and chat message, as listed.
				v, err := withExtras(ctx, l.x.srv, l.userID, []Notification{fromCoreNotification(n)})
				if err == nil {
					return []Frame{{"type": "notification", "notification": v[0]}}
				}
				return []Frame{{"type": "notification", "notification": fromCoreNotification(n)}}
			}
		}
	}
	return []Frame{{"type": "notification", "notification": Notification{Text: body, Time: time.Now().UnixMilli()}}}
}

func showOf(el *xmppcore.Element) string {
	if el.AttrValue("type") == "unavailable" {
		return "offline"
	}
	switch el.ChildText(xmppcore.NSClient, "show") {
	case "away", "xa":
		return "away"
	case "dnd":
		return "dnd"
	}
	return "online"
}

func (l *xmppLink) presenceFrames(ctx context.Context, el *xmppcore.Element) []Frame {
	typ := el.AttrValue("type")
	if typ != "" && typ != "unavailable" {
		return nil
	}
	from := el.AttrValue("from")
	if j, err := jid.Parse(from); err == nil && j.Domainpart() != l.bareDomain() {
		return nil // MUC occupants and the like
	}
	peer := l.peer(ctx, from)
	if peer == 0 {
		return nil
	}
	show := showOf(el)
	if show == "offline" && l.x.srv.Online(peer) {
		// Another resource of the peer is still there: ask for its presence.
		login, _ := l.x.loginOf(ctx, peer)
		l.handle(ctx, xmppcore.NewElement(xmppcore.NSClient, "presence", "type", "probe", "to", login+"@"+l.bareDomain()))
		return nil
	}
	p := Presence{User: peer, Show: show, Status: el.ChildText(xmppcore.NSClient, "status")}
	if show == "offline" {
		p.LastSeen = time.Now().UnixMilli()
	}
	return []Frame{{"type": "presence", "user": p.User, "show": p.Show, "status": p.Status, "last_seen": p.LastSeen}}
}

func (l *xmppLink) Send(ctx context.Context, to Target, body, originID string, replyTo int64) (*Message, error) {
	if originID == "" {
		originID = "b" + randomResource()
	}
	var id int64
	if to.Chat > 0 {
		if l.x.post == nil {
			return nil, bad("unavailable", "group chats are not available on this server")
		}
		n, err := l.x.post.PostFromSession(ctx, to.Chat, l.userID, l.sess.JID().String(), body, originID, replyTo)
		if err != nil {
			return nil, chatErr(err)
		}
		if n == 0 {
			// A command (/getChatId): the room answered this session
			// (a command_answer event); nothing was stored.
			return nil, nil
		}
		id = n
	} else {
		login, err := l.x.loginOf(ctx, to.User)
		if err != nil {
			return nil, err
		}
		el := xmppcore.NewElement(xmppcore.NSClient, "message", "type", "chat", "to", login+"@"+l.bareDomain(), "id", originID)
		el.AddText(xmppcore.NSClient, "body", body)
		el.AddChild(xmppcore.NewElement(xmppcore.NSStanzaID, "origin-id", "id", originID))
		el.AddChild(xmppcore.NewElement(nsReceipts, "request"))
		el.AddChild(xmppcore.NewElement(nsMarkers, "markable"))
		el.AddChild(xmppcore.NewElement(nsChatStates, "active"))
		if replyTo != 0 {
			// A XEP-0461 reply, as a Jabber client sends it.
			r, err := l.x.srv.ReplyElement(ctx, l.userID, mam.Ref{ID: replyTo, With: to.User})
			if errors.Is(err, xmppcore.ErrBadReply) {
				return nil, bad("bad_reply", "no such message in this conversation to reply to")
			}
			if err != nil {
				return nil, err
			}
			el.AddChild(r)
		}
		n, err := l.sess.HandleMessage(ctx, el)
		if err != nil {
			var se *xmppcore.StanzaError
			if errors.As(err, &se) {
				return nil, bad("refused", "the server refused the message")
			}
			return nil, err
		}
		if n == 0 {
			return nil, bad("not_stored", "the message was not stored")
		}
		id = n
	}
	l.mu.Lock()
	if len(l.origins) > 4096 {
		l.origins = map[string]int64{}
	}
	l.origins[originID] = id
	l.mu.Unlock()
	// The message as stored (the archive assigned id and time; the time
	// differs from created_at by the commit's few milliseconds at most).
	msg := Message{ID: id, Kind: "chat", From: l.userID, To: to.User, Body: body, Time: time.Now().UnixMilli(), OriginID: originID, ReplyTo: replyTo}
	if to.Chat > 0 {
		msg.Kind, msg.To, msg.Chat = "groupchat", 0, to.Chat
	}
	return &msg, nil
}

func chatErr(err error) error {
	var ie *muc.InvalidError
	switch {
	case errors.As(err, &ie):
		return bad("invalid", ie.Message)
	case errors.Is(err, muc.ErrNotFound):
		return bad("not_found", "no such chat")
	case errors.Is(err, muc.ErrForbidden):
		return bad("forbidden", "you may not post to this chat")
	}
	return err
}

// Edit, Retract and React are the core's operations (xmppcore/edits.go),
// the same as for a Jabber client: the rule is the archive's, and the
// core tells every party's sessions (this one gets the answer instead).
func (l *xmppLink) Edit(ctx context.Context, id int64, body string) (*Message, error) {
	m, err := l.x.srv.EditMessage(ctx, xmppcore.ChangeRequest{User: l.userID, Ref: mam.Ref{ID: id}, Via: l.sess}, body)
	if err != nil {
		return nil, mamErr(err)
	}
	msg := FromMAM(m)
	return &msg, nil
}

func (l *xmppLink) Retract(ctx context.Context, id int64) (*Message, error) {
	m, err := l.x.srv.RetractMessage(ctx, xmppcore.ChangeRequest{User: l.userID, Ref: mam.Ref{ID: id}, Via: l.sess})
	if err != nil {
		return nil, mamErr(err)
	}
	msg := FromMAM(m)
	return &msg, nil
}

func (l *xmppLink) React(ctx context.Context, id int64, set []string) ([]Reaction, error) {
	_, sum, err := l.x.srv.SetReactions(ctx, xmppcore.ChangeRequest{User: l.userID, Ref: mam.Ref{ID: id}, Via: l.sess}, set)
	if err != nil {
		return nil, mamErr(err)
	}
	return fromMAMReactions(sum), nil
}

func (l *xmppLink) Press(ctx context.Context, id int64, button int) error {
	if _, err := l.x.srv.PressButton(ctx, l.userID, id, button); err != nil {
		if errors.Is(err, xmppcore.ErrNoButton) || errors.Is(err, xmppcore.ErrDisabled) {
			return bad("bad_button", "this message has no such button to press")
		}
		return mamErr(err)
	}
	return nil
}

func (l *xmppLink) Typing(ctx context.Context, to Target, state string) error {
	if to.Chat > 0 {
		return nil // chats: Bridge.chatTyping tells the members' browsers
	}
	login, err := l.x.loginOf(ctx, to.User)
	if err != nil {
		return err
	}
	el := xmppcore.NewElement(xmppcore.NSClient, "message", "type", "chat", "to", login+"@"+l.bareDomain())
	el.AddChild(xmppcore.NewElement(nsChatStates, state))
	el.AddChild(xmppcore.NewElement(xmppcore.NSHints, "no-store"))
	l.handle(ctx, el)
	return nil
}

// MarkRead is the core's read operation (xmppcore/read.go), as this
// session: the colleague or the chat and the user's other sessions are
// told by the core.
func (l *xmppLink) MarkRead(ctx context.Context, to Target, upTo int64) error {
	_, _, err := l.x.srv.MarkRead(ctx, xmppcore.ReadRequest{User: l.userID, With: to.User, Chat: to.Chat, UpTo: upTo, Via: l.sess})
	return mamErr(err)
}

func (l *xmppLink) SetPresence(ctx context.Context, show, status string, remember bool) error {
	if remember {
		if err := l.x.srv.RememberPresence(ctx, l.userID, show, status); err != nil {
			return err
		}
	}
	l.handle(ctx, presenceStanza(show, status))
	return nil
}

func (l *xmppLink) Own() (show, status string) { return l.show, l.status }

// presenceStanza is an available presence with the bridge's show.
func presenceStanza(show, status string) *xmppcore.Element {
	el := xmppcore.NewElement(xmppcore.NSClient, "presence")
	if show != "online" {
		el.AddText(xmppcore.NSClient, "show", show)
	}
	if status != "" {
		el.AddText(xmppcore.NSClient, "status", status)
	}
	return el
}

// Presences is everyone's presence: online users are probed (their show
// and status arrive as presence events), offline ones carry last seen.
func (l *xmppLink) Presences(ctx context.Context) ([]Presence, error) {
	users, err := l.x.users.Users(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Presence, 0, len(users))
	for _, u := range users {
		if l.x.srv.Online(u.ID) {
			out = append(out, Presence{User: u.ID, Show: "online"})
			if u.ID != l.userID {
				l.handle(ctx, xmppcore.NewElement(xmppcore.NSClient, "presence", "type", "probe", "to", u.Login+"@"+l.bareDomain()))
			}
			continue
		}
		p := Presence{User: u.ID, Show: "offline"}
		if t, err := l.x.srv.LastSeen(ctx, u.ID); err == nil && !t.IsZero() {
			p.LastSeen = t.UnixMilli()
		}
		out = append(out, p)
	}
	return out, nil
}

// PresenceOf is one colleague's presence; an online one is also probed so
// that their show and status follow as an event.
func (l *xmppLink) PresenceOf(ctx context.Context, userID int64) (Presence, error) {
	if l.x.srv.Online(userID) {
		if userID != l.userID {
			login, err := l.x.loginOf(ctx, userID)
			if err != nil {
				return Presence{}, err
			}
			l.handle(ctx, xmppcore.NewElement(xmppcore.NSClient, "presence", "type", "probe", "to", login+"@"+l.bareDomain()))
		}
		return Presence{User: userID, Show: "online"}, nil
	}
	p := Presence{User: userID, Show: "offline"}
	if t, err := l.x.srv.LastSeen(ctx, userID); err == nil && !t.IsZero() {
		p.LastSeen = t.UnixMilli()
	}
	return p, nil
}

func (l *xmppLink) Close() {
	// The session ends first: stanzas the stopped link refuses after that
	// are not taken for a slow consumer (the close reason stays normal).
	l.sess.Close()
	l.stop()
	if l.x.post != nil {
		l.x.post.Unfollow(l.userID, l.sess.JID().String())
	}
}
