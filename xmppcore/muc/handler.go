package muc

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
)

// MaxJoinPresences bounds how many occupants' presences a joining session
// gets: the XMPP server's send queue holds 512 stanzas, and history and
// the subject follow. Occupants who join later are announced as usual.
const MaxJoinPresences = 300

// HandleStanza implements xmppcore.Component: every stanza addressed to
// conference.<domain> or a room in it arrives here, from a local session.
func (s *Service) HandleStanza(ctx context.Context, from jid.JID, e *xmppcore.Element) {
	to, err := jid.Parse(attr(e, "to"))
	if err != nil || to.Domainpart() != s.host {
		s.reply(ctx, e, "modify", "jid-malformed", "")
		return
	}
	setAttr(e, "from", from.String())
	u, err := s.userOf(ctx, from)
	if err != nil {
		if e.Name.Local == "presence" && attr(e, "type") == "unavailable" {
			return
		}
		s.reply(ctx, e, "auth", "forbidden", "not a user of this server")
		return
	}
	switch e.Name.Local {
	case "presence":
		s.handlePresence(ctx, u, from, to, e)
	case "message":
		s.handleMessage(ctx, u, from, to, e)
	case "iq":
		s.handleIQ(ctx, u, from, to, e)
	}
}

// reply answers e with an error, unless e is itself an error.
func (s *Service) reply(ctx context.Context, e *xmppcore.Element, typ, condition, msg string) {
	if attr(e, "type") == "error" || attr(e, "type") == "result" {
		return
	}
	s.router.Route(ctx, stanzaError(e, typ, condition, msg))
}

// replyErr maps a service error to a stanza error.
func (s *Service) replyErr(ctx context.Context, e *xmppcore.Element, err error) {
	var ie *InvalidError
	var ue *UnknownUserError
	switch {
	case errors.Is(err, ErrNotFound):
		s.reply(ctx, e, "cancel", "item-not-found", "")
	case errors.Is(err, ErrPasswordRequired):
		s.reply(ctx, e, "auth", "not-authorized", "this chat needs its password")
	case errors.Is(err, ErrMembersOnly):
		s.reply(ctx, e, "auth", "registration-required", "this chat is for members only")
	case errors.Is(err, ErrForbidden):
		s.reply(ctx, e, "auth", "forbidden", strings.TrimPrefix(err.Error(), "muc: forbidden: "))
	case errors.Is(err, ErrConflict):
		s.reply(ctx, e, "cancel", "conflict", "")
	case errors.Is(err, ErrRateLimited):
		s.reply(ctx, e, "wait", "policy-violation", strings.TrimPrefix(err.Error(), ErrRateLimited.Error()+": "))
	case errors.As(err, &ie):
		s.reply(ctx, e, "modify", "not-acceptable", ie.Message)
	case errors.As(err, &ue):
		s.reply(ctx, e, "modify", "item-not-found", "no such user")
	default:
		s.log.Error("muc request failed", "err", err)
		s.reply(ctx, e, "wait", "internal-server-error", "")
	}
}

// userOf maps a local session's JID to its active user.
func (s *Service) userOf(ctx context.Context, j jid.JID) (*roster.User, error) {
	if j.Domainpart() != s.opts.Domain || j.Localpart() == "" {
		return nil, ErrNotFound
	}
	u, err := s.users.UserByLogin(ctx, j.Localpart())
	if err != nil {
		return nil, err
	}
	if !u.Active {
		return nil, ErrForbidden
	}
	return u, nil
}

// userJID is the bare JID of a user.
func (s *Service) userJID(u *roster.User) string { return u.Login + "@" + s.opts.Domain }

// handlePresence: join, presence change, nick change, leave.
func (s *Service) handlePresence(ctx context.Context, u *roster.User, from, to jid.JID, e *xmppcore.Element) {
	typ := attr(e, "type")
	if typ == "error" && to.Localpart() != "" {
		// A client bouncing the room's presence is gone (XEP-0045
		// §7.2.20 status 333): its session leaves.
		if c, err := s.store.ByRoom(ctx, to.Localpart()); err == nil {
			reason := "Kicked"
			if er := child(e, "", "error"); er != nil {
				for _, ch := range er.Children {
					if ch.Name.Space == NSStanzas && ch.Name.Local != "text" {
						reason += ": " + strings.ReplaceAll(ch.Name.Local, "-", " ")
					}
				}
				if t := childText(er, NSStanzas, "text"); t != "" {
					reason += ": " + t
				}
			}
			s.leave(ctx, c, from.String(), add(el(nsClient, "presence", "type", "unavailable"), text(nsClient, "status", reason)), "333")
		}
		return
	}
	if typ == "probe" {
		s.probe(ctx, u, from, to, e)
		return
	}
	if typ == "error" || typ == "subscribe" || typ == "subscribed" || typ == "unsubscribe" || typ == "unsubscribed" {
		return
	}
	if typ == "unavailable" && to.Localpart() != "" && to.Resourcepart() == "" {
		// Leaving by the room's bare JID, as some clients do.
		if c, err := s.store.ByRoom(ctx, to.Localpart()); err == nil {
			s.leave(ctx, c, from.String(), e)
		}
		return
	}
	if to.Localpart() == "" || to.Resourcepart() == "" {
		if typ != "unavailable" {
			s.reply(ctx, e, "modify", "jid-malformed", "join a room as room@"+s.host+"/nick")
		}
		return
	}
	nick := to.Resourcepart()
	// Bookmark pushes caused by this join (a new chat, or joining an open
	// chat as a new member) wait until the join is complete: clients
	// expect the self-presence and the subject first.
	ctx, flush := deferBookmarks(ctx)
	defer flush()
	c, err := s.store.ByRoom(ctx, to.Localpart())
	if errors.Is(err, ErrNotFound) {
		if typ == "unavailable" {
			return
		}
		s.createByJoin(ctx, u, from, to, e)
		return
	}
	if err != nil {
		s.replyErr(ctx, e, err)
		return
	}
	if typ == "unavailable" {
		s.leave(ctx, c, from.String(), e)
		return
	}
	s.join(ctx, c, u, from, nick, e, false)
}

// probe answers a presence probe to room/nick from an occupant with that
// occupant's current presence, or unavailable when nobody has the nick
// (XEP-0045 §7.8 as Prosody does it); who is not in the room may not
// probe (not-acceptable).
func (s *Service) probe(ctx context.Context, u *roster.User, from, to jid.JID, e *xmppcore.Element) {
	c, err := s.store.ByRoom(ctx, to.Localpart())
	if err != nil || to.Resourcepart() == "" {
		s.reply(ctx, e, "cancel", "not-acceptable", "")
		return
	}
	r := s.room(c.ID, false)
	var target *occupant
	joined := false
	if r != nil {
		r.mu.RLock()
		joined = r.occupants[from.String()] != nil
		for _, o := range r.occupants {
			if o.nick == to.Resourcepart() {
				cp := *o
				target = &cp
				break
			}
		}
		r.mu.RUnlock()
		if target == nil {
			target = r.remoteByNick(to.Resourcepart())
		}
	}
	if !joined {
		s.reply(ctx, e, "cancel", "not-acceptable", "join the room before probing its occupants")
		return
	}
	if target == nil {
		if h := c.NickHolder(to.Resourcepart()); h != 0 {
			// A member who reserved the nick and is away.
			s.sendPresence(ctx, c, s.absentPresence(ctx, c, *c.Member(h)), to.String(), from.String())
			return
		}
		p := el(nsClient, "presence", "type", "unavailable")
		add(p, add(el(NSMUCUser, "x"), el(NSMUCUser, "item", "nick", to.Resourcepart(), "role", "none")))
		s.router.Route(ctx, addressed(p, to.String(), from.String()))
		return
	}
	s.sendPresence(ctx, c, s.occupantPresence(c, target, false), to.String(), from.String())
}

// createByJoin makes a new chat when a user joins a room that does not
// exist: a closed chat owned by the joiner, titled after the room name,
// locked until the owner submits the configuration form (XEP-0045
// §10.1). Accepting the default configuration (an instant room) makes it
// an open chat; a form with muc#roomconfig_membersonly on keeps it
// closed (a reserved room).
func (s *Service) createByJoin(ctx context.Context, u *roster.User, from, to jid.JID, e *xmppcore.Element) {
	if !ValidRoom(to.Localpart()) {
		s.reply(ctx, e, "cancel", "not-allowed", "room names are lowercase letters, digits, '-', '_' and '.', and chat<number> is reserved")
		return
	}
	c, err := s.store.Create(ctx, NewChat{Title: to.Localpart(), Type: TypeClosed, OwnerID: u.ID, Room: to.Localpart()})
	if errors.Is(err, ErrConflict) {
		c, err = s.store.ByRoom(ctx, to.Localpart())
		if err == nil {
			s.join(ctx, c, u, from, to.Resourcepart(), e, false)
			return
		}
	}
	if err != nil {
		s.replyErr(ctx, e, err)
		return
	}
	s.memberChanged(ctx, u.ID, c, true)
	s.emit(ctx, c, EventCreated, []int64{u.ID}, u.ID)
	if _, err := s.postCreated(ctx, c, u.ID); err != nil {
		s.log.Warn("muc: created notice", "chat", c.ID, "err", err)
	}
	r := s.room(c.ID, true)
	r.mu.Lock()
	r.locked = true
	r.mu.Unlock()
	s.join(ctx, c, u, from, to.Resourcepart(), e, true)
}

// join seats a session in the room (or updates its presence).
func (s *Service) join(ctx context.Context, c *Chat, u *roster.User, from jid.JID, nick string, e *xmppcore.Element, created bool) {
	full := from.String()
	s.watchOn(c.ID)
	r := s.room(c.ID, true)
	r.mu.RLock()
	cur := r.occupants[full]
	var clash bool
	for _, o := range r.occupants {
		if o.nick == nick && o.userID != u.ID {
			clash = true
		}
	}
	r.mu.RUnlock()
	if clash || r.remoteNickTaken(nick, u.ID) {
		s.reply(ctx, e, "cancel", "conflict", "that nickname is in use")
		s.dropIfEmpty(c.ID, r)
		return
	}
	if h := c.NickHolder(nick); h != 0 && h != u.ID {
		s.reply(ctx, e, "cancel", "conflict", "that nickname is reserved")
		s.dropIfEmpty(c.ID, r)
		return
	}
	if cur != nil {
		// Already joined: a presence update or a nick change.
		if cur.nick != nick {
			old := *cur
			r.mu.Lock()
			cur.nick, cur.presence = nick, e
			r.mu.Unlock()
			p := s.occupantPresence(c, &old, true, "303")
			setAttr(child(child(p, NSMUCUser, "x"), NSMUCUser, "item"), "nick", nick)
			for _, o := range r.snapshot() {
				pp := p
				if o == full {
					pp = s.occupantPresence(c, &old, true, "303", "110")
					setAttr(child(child(pp, NSMUCUser, "x"), NSMUCUser, "item"), "nick", nick)
				}
				s.sendPresence(ctx, c, pp, s.RoomJID(c)+"/"+old.nick, o)
			}
			// The others get the new nick's presence below; the session
			// itself too, with 110 (XEP-0045 §7.6).
			r.mu.RLock()
			now := *cur
			r.mu.RUnlock()
			s.sendPresence(ctx, c, s.occupantPresence(c, &now, false, "110"), s.RoomJID(c)+"/"+nick, full)
		} else {
			r.mu.Lock()
			cur.presence = e
			r.mu.Unlock()
			if child(e, NSMUC, "x") != nil {
				// A join while joined: the client lost track of the
				// room; it gets the whole join again (occupants,
				// itself, history, subject), the others an update.
				s.broadcastPresence(ctx, c, r, cur, full)
				s.sendOccupants(ctx, c, r, full, nick)
				s.sendJoinState(ctx, c, u.ID, cur, e, false)
				return
			}
		}
		s.broadcastPresence(ctx, c, r, cur, full)
		return
	}
	// Reading is not joining (canEnter): a member enters as a member; in
	// an open chat anyone else enters as a reader, affiliation none, and
	// becomes a member by joining explicitly (a bookmark, being added,
	// their first message). The password is asked of who is not a member.
	given := childText(child(e, NSMUC, "x"), NSMUC, "password")
	if !c.IsMember(u.ID) {
		if banned, _ := s.store.IsOutcast(ctx, c.ID, u.ID); banned {
			s.reply(ctx, e, "auth", "forbidden", "you are banned from this chat")
			s.dropIfEmpty(c.ID, r)
			return
		}
	}
	if err := canEnter(c, u.ID, given); err != nil {
		s.replyErr(ctx, e, err)
		s.dropIfEmpty(c.ID, r)
		return
	}
	o := &occupant{full: full, userID: u.ID, nick: nick, presence: e, joined: time.Now().UnixNano(), node: s.node, password: given,
		// In a moderated room who is not a member has no voice.
		visitor: c.Moderated && !c.IsMember(u.ID)}
	s.sendOccupants(ctx, c, r, full, nick)
	s.sendAbsentMembers(ctx, c, r, full, u.ID)
	r.mu.Lock()
	r.occupants[full] = o
	r.mu.Unlock()
	s.watch(c.ID)
	s.broadcastPresence(ctx, c, r, o, full)
	s.sendJoinState(ctx, c, u.ID, o, e, created)
}

// sendOccupants sends the room's occupants' presence to a joining session
// (at most MaxJoinPresences, owner first, so that a big room does not
// overflow its send queue), except its own nick's.
func (s *Service) sendOccupants(ctx context.Context, c *Chat, r *room, full, nick string) {
	others := append(r.list(), r.remoteList()...)
	sort.SliceStable(others, func(i, j int) bool { return others[i].userID == c.OwnerID && others[j].userID != c.OwnerID })
	n := 0
	for _, other := range others {
		if other.full == full || other.nick == nick {
			// Its own nick's other sessions are items of its
			// self-presence (sendJoinState).
			continue
		}
		if n++; n > MaxJoinPresences {
			break
		}
		s.sendPresence(ctx, c, s.occupantPresence(c, &other, false), s.RoomJID(c)+"/"+other.nick, full)
	}
}

// sendAbsentMembers sends a joining session the presence (unavailable,
// role none) of the other members with a reserved nick who are not in the room,
// when the chat shows them (Chat.ShowOffline: presencebroadcast "none").
func (s *Service) sendAbsentMembers(ctx context.Context, c *Chat, r *room, full string, joiner int64) {
	if !c.ShowOffline {
		return
	}
	here := map[int64]bool{joiner: true}
	for _, o := range append(r.list(), r.remoteList()...) {
		here[o.userID] = true
	}
	n := 0
	for _, m := range c.Members {
		if m.Nick == "" || here[m.UserID] {
			continue
		}
		if n++; n > MaxJoinPresences {
			break
		}
		s.sendPresence(ctx, c, s.absentPresence(ctx, c, m), s.RoomJID(c)+"/"+m.Nick, full)
	}
}

// absentPresence is the presence of a member not in the room, under the
// nick they reserved: unavailable, role none, and their address (bare:
// they have no session here; forViewer hides it where whois says so).
func (s *Service) absentPresence(ctx context.Context, c *Chat, m Member) *xmppcore.Element {
	item := el(NSMUCUser, "item", "affiliation", affiliation(c, m.UserID), "role", "none", "nick", m.Nick)
	if u, err := s.cache.byID(ctx, m.UserID); err == nil {
		setAttr(item, "jid", u.Login+"@"+s.opts.Domain)
	}
	return add(el(nsClient, "presence", "type", "unavailable"), add(el(NSMUCUser, "x"), item))
}

// sendJoinState completes a join for the session o: its self-presence,
// the history it asked for, and the subject.
func (s *Service) sendJoinState(ctx context.Context, c *Chat, userID int64, o *occupant, e *xmppcore.Element, created bool) {
	full, nick := o.full, o.nick
	self := []string{"110"}
	if created {
		self = append(self, "201")
	}
	p := s.occupantPresence(c, o, false, self...)
	if r := s.room(c.ID, false); r != nil {
		p = s.withSiblings(c, r, o, p)
	}
	s.sendPresence(ctx, c, p, s.RoomJID(c)+"/"+nick, full)
	limit, since := joinHistory(child(child(e, NSMUC, "x"), NSMUC, "history"), s.opts.HistoryOnJoin, time.Now())
	s.sendHistory(ctx, c, userID, full, limit, since)
	s.router.Route(ctx, addressed(s.subjectMessage(c), s.subjectFrom(c), full))
}

func atoiBounded(v string, max int) (int, error) {
	n := 0
	for _, r := range v {
		if r < '0' || r > '9' {
			return 0, errors.New("not a number")
		}
		n = n*10 + int(r-'0')
		if n > max {
			return max, nil
		}
	}
	return n, nil
}

// broadcastPresence sends o's presence (with the items of the user's other
// sessions under the nick) to every occupant but except.
func (s *Service) broadcastPresence(ctx context.Context, c *Chat, r *room, o *occupant, except string) {
	s.shareOccupant(c, o, false)
	p := s.withSiblings(c, r, o, s.occupantPresence(c, o, false))
	for _, full := range r.snapshot() {
		if full != except {
			s.sendPresence(ctx, c, p, attr(p, "from"), full)
		}
	}
}

// leave takes a session out of the room.
// The leave presence (its status text) is passed on; statuses are added
// to what everyone sees (333 when the client bounced an error).
func (s *Service) leave(ctx context.Context, c *Chat, full string, e *xmppcore.Element, statuses ...string) {
	r := s.room(c.ID, false)
	if r == nil {
		return
	}
	r.mu.Lock()
	o := r.occupants[full]
	delete(r.occupants, full)
	if o != nil {
		// A copy: the session's own handling may still be reading the
		// occupant it had (a nick change racing the session's end).
		left := *o
		left.presence = e
		o = &left
	}
	r.mu.Unlock()
	if o == nil {
		return
	}
	s.sendPresence(ctx, c, s.occupantPresence(c, o, true, append(statuses, "110")...), s.RoomJID(c)+"/"+o.nick, full)
	s.announceLeave(ctx, c, r, o, statuses...)
	s.dropIfEmpty(c.ID, r)
}

// handleMessage: groupchat messages, private messages between occupants,
// mediated invitations.
func (s *Service) handleMessage(ctx context.Context, u *roster.User, from, to jid.JID, e *xmppcore.Element) {
	typ := attr(e, "type")
	if typ == "error" {
		return
	}
	if to.Localpart() == "" {
		s.reply(ctx, e, "cancel", "service-unavailable", "")
		return
	}
	c, err := s.store.ByRoom(ctx, to.Localpart())
	if err != nil {
		s.replyErr(ctx, e, err)
		return
	}
	if x := child(e, NSMUCUser, "x"); x != nil && child(x, NSMUCUser, "invite") != nil {
		s.mediatedInvites(ctx, c, u, from, x, e)
		return
	}
	r := s.room(c.ID, false)
	var o *occupant
	if r != nil {
		r.mu.RLock()
		if oo := r.occupants[from.String()]; oo != nil {
			cp := *oo
			o = &cp
		}
		r.mu.RUnlock()
	}
	if o == nil {
		s.reply(ctx, e, "modify", "not-acceptable", "join the room before sending to it")
		return
	}
	if to.Resourcepart() != "" {
		s.privateMessage(ctx, c, r, o, to.Resourcepart(), e)
		return
	}
	if typ != "groupchat" {
		s.reply(ctx, e, "modify", "bad-request", "messages to the room are type groupchat")
		return
	}
	if s.clientChange(ctx, c, u.ID, e) {
		return
	}
	body := childText(e, "", "body")
	// A subject alone changes the room's topic, which is the chat's
	// description (the title stays: it is the room's name); with a body
	// or a thread it is part of an ordinary message (XEP-0045 §8.1).
	// Who may: whoever may edit the chat (canEdit).
	if subj := child(e, "", "subject"); subj != nil && body == "" && child(e, "", "thread") == nil {
		topic := subj.Text
		// Announced by the subject from the occupant alone (§8.1), no 104.
		ctx := context.WithValue(ctx, subjectByKey{}, o.nick)
		if _, err := s.Update(ctx, s.actorOf(u), c.ID, Update{Description: &topic}); err != nil {
			s.replyErr(ctx, e, err)
		}
		return
	}
	if strings.TrimSpace(body) == GetChatID {
		s.answerGetChatID(ctx, c, u.ID, from)
		return
	}
	replyTo, ok := s.markReply(ctx, c, u.ID, body, e)
	if !ok {
		return
	}
	payload := messagePayload(e)
	// A subject with a thread and no body is an ordinary message too
	// (XEP-0045 §8.1): archived like one (XEP-0313 §5), so it is in the
	// history and the archive.
	threadSubject := body == "" && child(e, "", "subject") != nil && child(e, "", "thread") != nil
	if body == "" && !threadSubject {
		// Chat states and markers (reactions are changes, above): relayed to the occupants as
		// they are, not archived.
		// A reader's markers are relayed too; only a member has a read
		// state to move.
		if payload != "" && (!c.IsMember(u.ID) || !s.displayed(ctx, c, u.ID, e)) {
			s.relayEphemeral(ctx, c, r, o, e)
		}
		return
	}
	if o.visitor {
		s.reply(ctx, e, "auth", "forbidden", "you have no voice in this room")
		return
	}
	if len(body) > MaxBody {
		s.reply(ctx, e, "modify", "not-acceptable", "message too long")
		return
	}
	// A reader's first message makes them a member (the room sees their
	// new affiliation first); in a closed chat only members post.
	if _, err := s.joinByPost(ctx, c, u.ID, o.password); err != nil {
		s.replyErr(ctx, e, err)
		return
	}
	originID := ""
	if oid := child(e, NSStanzaID, "origin-id"); oid != nil {
		originID = attr(oid, "id")
	} else {
		originID = attr(e, "id")
	}
	if len(originID) > 128 {
		originID = originID[:128]
	}
	if _, err := s.post(withLang(ctx, e), c, u.ID, o.nick, originID, body, payload, false, replyTo); err != nil {
		s.replyErr(ctx, e, err)
	}
}

// privateMessage relays a message between occupants, from room/nick.
func (s *Service) privateMessage(ctx context.Context, c *Chat, r *room, o *occupant, nick string, e *xmppcore.Element) {
	var targets []string
	r.mu.RLock()
	for full, t := range r.occupants {
		if t.nick == nick {
			targets = append(targets, full)
		}
	}
	// Joined through another node: the router takes it there.
	for full, t := range r.remote {
		if t.nick == nick {
			targets = append(targets, full)
		}
	}
	r.mu.RUnlock()
	if len(targets) == 0 {
		s.reply(ctx, e, "cancel", "item-not-found", "no such occupant")
		return
	}
	pm := el(nsClient, "message", "type", "chat")
	if id := attr(e, "id"); id != "" {
		setAttr(pm, "id", id)
	}
	pm.Children = append(pm.Children, e.Children...)
	pm.Children = append(pm.Children, el(NSMUCUser, "x"))
	for _, full := range targets {
		s.router.Route(ctx, addressed(pm, s.RoomJID(c)+"/"+o.nick, full))
	}
}

// answerGetChatID tells one user (or one session, when to is set) the
// chat's numeric id. Nothing is stored.
func (s *Service) answerGetChatID(ctx context.Context, c *Chat, userID int64, to jid.JID) {
	msg := add(el(nsClient, "message", "from", s.RoomJID(c), "type", "groupchat", "id", "getchatid-"+randomID()),
		text(nsClient, "body", "Chat id: "+itoa(c.ID)),
		el(NSVestnik, "chat", "id", itoa(c.ID), "system", "true", "command", "getChatId"))
	if to.Resourcepart() != "" {
		setAttr(msg, "to", to.String())
		s.router.Route(ctx, msg)
		return
	}
	s.router.SendToUser(userID, msg)
}

// mediatedInvites handles <x muc#user><invite to=…/></x> sent to the room:
// the invitee becomes a member and gets the invitation.
func (s *Service) mediatedInvites(ctx context.Context, c *Chat, u *roster.User, from jid.JID, x, e *xmppcore.Element) {
	for _, inv := range x.Children {
		if inv.Name.Local != "invite" {
			continue
		}
		tj, err := jid.Parse(attr(inv, "to"))
		if err != nil {
			s.reply(ctx, e, "modify", "jid-malformed", "")
			return
		}
		// The invitation comes from the inviter's occupant JID when they
		// are in the room, with the id of their message.
		by := ""
		if r := s.room(c.ID, false); r != nil {
			r.mu.RLock()
			if o := r.occupants[from.String()]; o != nil {
				by = s.RoomJID(c) + "/" + o.nick
			}
			r.mu.RUnlock()
		}
		if err := s.invite(ctx, c, u.ID, tj.Bare(), childText(inv, "", "reason"), by, attr(e, "id")); err != nil {
			s.replyErr(ctx, e, err)
			return
		}
	}
}

// Invite makes the user at invitee (a bare JID of this server) a member of
// the chat on behalf of inviter, and sends them an invitation in both
// XEP-0045 (mediated) and XEP-0249 (direct) form.
func (s *Service) Invite(ctx context.Context, c *Chat, inviter int64, invitee jid.JID, reason string) error {
	return s.invite(ctx, c, inviter, invitee, reason, "", "")
}

// invite is Invite with the invitation's from (default: the inviter's
// bare JID) and id (default: a new one). The invitee's bookmark push
// follows the invitation.
func (s *Service) invite(ctx context.Context, c *Chat, inviter int64, invitee jid.JID, reason, by, id string) error {
	ctx, flush := deferBookmarks(ctx)
	defer flush()
	target, err := s.userOf(ctx, invitee)
	if err != nil {
		return &UnknownUserError{Field: "to", UserID: 0}
	}
	if _, err := s.AddMembers(ctx, inviter, c.ID, []int64{target.ID}, nil, false); err != nil {
		return err
	}
	inv, err := s.users.UserByID(ctx, inviter)
	if err != nil {
		return err
	}
	if by == "" {
		by = s.userJID(inv)
	}
	if id == "" {
		id = "invite-" + randomID()
	}
	invite := add(el(NSMUCUser, "invite", "from", by), text(NSMUCUser, "reason", reason))
	direct := el(NSConference, "x", "jid", s.RoomJID(c))
	if reason != "" {
		setAttr(direct, "reason", reason)
	}
	body := by + " invited you to the room " + s.RoomJID(c)
	if reason != "" {
		body += " (" + reason + ")"
	}
	msg := add(el(nsClient, "message", "from", s.RoomJID(c), "to", s.userJID(target), "id", id),
		add(el(NSMUCUser, "x"), invite), text(nsClient, "body", body), direct)
	s.router.Route(ctx, msg)
	return nil
}

// DirectInvite handles a XEP-0249 invitation a user sent to another user
// (the router hands it here before delivering it): when the room is one of
// ours and the inviter may invite, the invitee becomes a member.
func (s *Service) DirectInvite(ctx context.Context, from jid.JID, invitee jid.JID, room jid.JID) error {
	u, err := s.userOf(ctx, from)
	if err != nil {
		return err
	}
	c, err := s.ChatByJID(ctx, room.Bare())
	if err != nil {
		return err
	}
	target, err := s.userOf(ctx, invitee.Bare())
	if err != nil {
		return err
	}
	_, err = s.AddMembers(ctx, u.ID, c.ID, []int64{target.ID}, nil, false)
	return err
}

var _ = mam.KindGroupchat

// MaxPayload bounds the extension elements kept with a chat message
// (OOB links, replies, corrections, markers…); larger ones are dropped.
const MaxPayload = 16 << 10

// messagePayload serializes the children of a groupchat message that are
// kept and relayed with it: everything but the body and what the server
// adds itself.
func messagePayload(e *xmppcore.Element) string {
	var b []byte
	for _, c := range e.Children {
		if payloadChild(c) {
			b = c.AppendXML(b, nsClient)
		}
	}
	if len(b) > MaxPayload {
		return ""
	}
	return string(b)
}

// payloadChild reports whether c, a child of a client's message, is
// part of its payload: not the body, ids, delays or the MUC's own.
func payloadChild(c *xmppcore.Element) bool {
	switch {
	case (c.Name.Space == "" || c.Name.Space == nsClient) && c.Name.Local == "body":
	case c.Name.Space == NSStanzaID:
	case c.Name.Space == NSDelay, c.Name.Space == NSVestnik, c.Name.Space == NSMUCUser, c.Name.Space == NSMUC, c.Name.Space == NSOccupantID:
	default:
		return true
	}
	return false
}

// payloadElements is messagePayload as elements, shared with e (none
// when larger than MaxPayload): what is relayed without being archived
// needs no serialising.
func payloadElements(e *xmppcore.Element) []*xmppcore.Element {
	var kids []*xmppcore.Element
	size := 0
	for _, c := range e.Children {
		if payloadChild(c) {
			kids = append(kids, c)
			size += c.Size()
		}
	}
	if size > MaxPayload {
		return nil
	}
	return kids
}

// relayEphemeral sends a message without a body (chat state, marker,
// reaction…) from o to every occupant, without archiving it.
func (s *Service) relayEphemeral(ctx context.Context, c *Chat, r *room, o *occupant, e *xmppcore.Element) {
	msg := el(nsClient, "message", "type", "groupchat")
	if id := attr(e, "id"); id != "" {
		setAttr(msg, "id", id)
	}
	msg.Children = append(payloadElements(e), el(NSOccupantID, "occupant-id", "id", s.occupantID(c, o.userID)))
	from := s.RoomJID(c) + "/" + o.nick
	for _, full := range r.snapshot() {
		s.router.Route(ctx, addressed(msg, from, full))
	}
	s.relayRemote(c.ID, msg, from)
}
