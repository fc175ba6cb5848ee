package muc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
)

// room is the live state of a chat's room: who is joined, from which
// session, under which nick. It exists only while someone is joined.
type room struct {
	mu        sync.RWMutex         // guards occupants and locked; never held across a send
	occupants map[string]*occupant // by full JID
	remote    map[string]*occupant // joined through other nodes, by full JID (remote.go)
	// locked: created by joining, its owner has not submitted the
	// configuration form yet (XEP-0045 §10.1.1). Kept in memory only: a
	// room forgotten before that stays the closed chat it was made as.
	locked bool
	// subjectBy is the nick of the occupant whose <subject/> set the
	// topic, on this node ("" when it came from elsewhere: the web, REST,
	// a configuration form, another node, or before a restart).
	subjectBy string
}

// subjectByKey carries, on a topic change by a <subject/> message, the
// nick of the occupant who sent it: the subject then comes from that
// occupant (XEP-0045 §8.1) and is the only announcement (no 104).
type subjectByKey struct{}

// setSubjectBy records who set the topic of a live room.
func (s *Service) setSubjectBy(chatID int64, nick string) {
	r := s.room(chatID, false)
	if r == nil {
		return
	}
	r.mu.Lock()
	r.subjectBy = nick
	r.mu.Unlock()
}

// subjectFrom is the address the subject comes from: the occupant JID of
// whoever set it when known (XEP-0045 §8.1), else the room.
func (s *Service) subjectFrom(c *Chat) string {
	if r := s.room(c.ID, false); r != nil {
		r.mu.RLock()
		by := r.subjectBy
		r.mu.RUnlock()
		if by != "" {
			return s.RoomJID(c) + "/" + by
		}
	}
	return s.RoomJID(c)
}

// occupant is one joined session.
type occupant struct {
	full     string // the session's full JID
	userID   int64
	nick     string
	presence *xmppcore.Element // the last presence it sent (show, status)
	visitor  bool              // voice revoked by a moderator (role visitor)
	// password is what the session gave to enter (a reader of a
	// password-protected open chat: its first message joins with it).
	password string
	// joined (Unix ns) and node (the joining service's instance) order
	// two joins under one nick on two nodes: the earlier wins, ties by
	// node (remote.go).
	joined int64
	node   string
}

// room returns the live room of a chat, creating it when create is set.
func (s *Service) room(chatID int64, create bool) *room {
	s.mu.RLock()
	r := s.rooms[chatID]
	s.mu.RUnlock()
	if r != nil || !create {
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r = s.rooms[chatID]; r == nil {
		r = &room{occupants: make(map[string]*occupant)}
		s.rooms[chatID] = r
	}
	return r
}

// unlock clears the lock of a room created by joining and reports whether
// it was locked.
func (s *Service) unlock(chatID int64) bool {
	r := s.room(chatID, false)
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	was := r.locked
	r.locked = false
	return was
}

// dropIfEmpty forgets an empty room.
func (s *Service) dropIfEmpty(chatID int64, r *room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.mu.RLock()
	empty := len(r.occupants) == 0 && len(r.remote) == 0
	r.mu.RUnlock()
	if empty && s.rooms[chatID] == r {
		delete(s.rooms, chatID)
	}
}

// nickOf returns a nick the user is joined under, "" if not joined.
func (r *room) nickOf(userID int64) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, o := range r.occupants {
		if o.userID == userID {
			return o.nick
		}
	}
	return ""
}

// snapshot returns the occupants' full JIDs.
func (r *room) snapshot() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.occupants))
	for full := range r.occupants {
		out = append(out, full)
	}
	return out
}

// list returns copies of the occupants, by nick.
func (r *room) list() []occupant {
	r.mu.RLock()
	out := make([]occupant, 0, len(r.occupants))
	for _, o := range r.occupants {
		out = append(out, *o)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		return out[i].nick < out[j].nick || out[i].nick == out[j].nick && out[i].full < out[j].full
	})
	return out
}

// Occupants returns the full JIDs joined to the chat's room.
func (s *Service) Occupants(chatID int64) []string {
	if r := s.room(chatID, false); r != nil {
		return r.snapshot()
	}
	return nil
}

// fanout sends a groupchat message to every joined session, here and,
// in a cluster, through the services on the other nodes. It never waits:
// Route queues or drops.
func (s *Service) fanout(ctx context.Context, c *Chat, msg *xmppcore.Element) {
	if b, ok := s.router.(chatBroadcaster); ok {
		b.BroadcastChat(c.ID, msg)
	} else if b, ok := s.router.(componentBroadcaster); ok {
		b.BroadcastComponent(msg)
	}
	s.fanoutLocal(ctx, c, msg)
}

// fanoutLocal sends a groupchat message to the sessions joined (or
// following) through this node.
func (s *Service) fanoutLocal(ctx context.Context, c *Chat, msg *xmppcore.Element) {
	var occupants []string
	if r := s.room(c.ID, false); r != nil {
		occupants = r.snapshot()
	}
	followers := s.followersOf(c.ID)
	from := attr(msg, "from")
	if nativeNotice(msg) {
		// XMPP says it in its own way: occupants get no body for it.
		occupants = nil
	}
	for _, full := range occupants {
		s.router.Route(ctx, addressed(msg, from, full))
	}
	if len(followers) == 0 {
		return
	}
	joined := make(map[string]bool, len(occupants))
	for _, full := range occupants {
		joined[full] = true
	}
	for _, full := range followers {
		if !joined[full] {
			s.router.Route(ctx, addressed(msg, from, full))
		}
	}
}

// groupchatElement is the stanza occupants get for an archived message.
func (s *Service) groupchatElement(c *Chat, m *mam.Message, nick string, system bool) *xmppcore.Element {
	roomJID := s.RoomJID(c)
	from := roomJID
	if !system && nick != "" {
		from = roomJID + "/" + nick
	}
	id := strconv.FormatInt(m.ID, 10)
	msg := el(nsClient, "message", "from", from, "type", "groupchat", "id", messageStanzaID(m))
	setLang(msg, m.Lang)
	if m.Payload != "" {
		if kids, err := xmppcore.ParseFragment(m.Payload); err == nil {
			msg.Children = append(msg.Children, kids...)
		}
	}
	if m.Body != "" || m.Payload == "" {
		// A message without a body (a subject in a thread) has none.
		msg.Children = append(msg.Children, text(nsClient, "body", m.Body))
	}
	msg.Children = append(msg.Children, el(NSStanzaID, "stanza-id", "id", id, "by", roomJID))
	if m.OriginID != "" {
		msg.Children = append(msg.Children, el(NSStanzaID, "origin-id", "id", m.OriginID))
	}
	if !system && m.FromID != 0 {
		msg.Children = append(msg.Children, el(NSOccupantID, "occupant-id", "id", s.occupantID(c, m.FromID)))
	}
	v := el(NSVestnik, "chat", "id", strconv.FormatInt(c.ID, 10))
	if system {
		setAttr(v, "system", "true")
	} else if m.FromID != 0 {
		setAttr(v, "from-user", strconv.FormatInt(m.FromID, 10))
	}
	msg.Children = append(msg.Children, v)
	return msg
}

// messageStanzaID is the stanza id attribute of an archived message: the
// client's own when it gave one (so it recognizes its echo).
func messageStanzaID(m *mam.Message) string {
	if m.OriginID != "" {
		return m.OriginID
	}
	return "m" + strconv.FormatInt(m.ID, 10)
}

// affiliation is a user's XEP-0045 affiliation with the chat: owner,
// member, or none for who reads an open chat without being a member. c
// must carry all its members (Store.Get, not forPost).
func affiliation(c *Chat, userID int64) string {
	switch {
	case userID == c.OwnerID:
		return "owner"
	case c.IsMember(userID):
		return "member"
	}
	return "none"
}

// occupantItem is the muc#user item describing an occupant.
func (s *Service) occupantItem(c *Chat, o *occupant) *xmppcore.Element {
	aff, role := affiliation(c, o.userID), "participant"
	if aff == "owner" {
		role = "moderator"
	} else if o.visitor {
		role = "visitor"
	}
	return el(NSMUCUser, "item", "affiliation", aff, "role", role, "jid", o.full)
}

// withSiblings adds to o's presence p the items of the other sessions of
// o's user joined under the same nick here (XEP-0045 §7.2.3: one nick,
// several sessions, one presence listing each).
func (s *Service) withSiblings(c *Chat, r *room, o *occupant, p *xmppcore.Element) *xmppcore.Element {
	x := child(p, NSMUCUser, "x")
	if x == nil {
		return p
	}
	var sibs []occupant
	r.mu.RLock()
	for full, other := range r.occupants {
		if full != o.full && other.nick == o.nick && other.userID == o.userID {
			sibs = append(sibs, *other)
		}
	}
	r.mu.RUnlock()
	if len(sibs) == 0 {
		return p
	}
	sort.Slice(sibs, func(i, j int) bool { return sibs[i].full < sibs[j].full })
	// The siblings' items follow the occupant's own (before a 110).
	cp := *x
	cp.Children = nil
	for _, ch := range x.Children {
		cp.Children = append(cp.Children, ch)
		if ch.Name.Local == "item" {
			for i := range sibs {
				cp.Children = append(cp.Children, s.occupantItem(c, &sibs[i]))
			}
		}
	}
	out := *p
	out.Children = make([]*xmppcore.Element, len(p.Children))
	for i, ch := range p.Children {
		if ch == x {
			ch = &cp
		}
		out.Children[i] = ch
	}
	return &out
}

// affiliationChanged announces that userID's affiliation is now what c
// (fresh from the store) says — also when it did not change: an owner
// who sets it again re-announces it (XEP-0045 §9.3, as Prosody does).
// Each session of the user in the room gets its presence with 110, the
// other occupants see it; actor (the user who made the change, 0: none
// to name) is named by nick when in the room, with the real JID to
// moderators. A user not in the room is announced to the owner by a
// message (announceAffiliation).
func (s *Service) affiliationChanged(ctx context.Context, c *Chat, userID, actor int64) {
	r := s.room(c.ID, false)
	var mine []occupant
	var by *occupant
	elsewhere := false
	if r != nil {
		r.mu.RLock()
		for _, o := range r.occupants {
			if o.userID == userID {
				mine = append(mine, *o)
			} else if actor != 0 && o.userID == actor && by == nil {
				cp := *o
				by = &cp
			}
		}
		if actor == userID && len(mine) > 0 {
			cp := mine[0]
			by = &cp
		}
		for _, o := range r.remote {
			elsewhere = elsewhere || o.userID == userID
		}
		r.mu.RUnlock()
	}
	if len(mine) == 0 && elsewhere {
		// Joined through another node, which announces it
		// (membersAddedElsewhere).
		return
	}
	if len(mine) == 0 {
		if t, err := s.cache.byID(ctx, userID); err == nil {
			s.announceAffiliation(ctx, c, t, affiliation(c, userID))
		}
		return
	}
	// actorIn names the actor in an item: nick alone, or with the real
	// JID (for moderators).
	actorIn := func(p *xmppcore.Element, withJID bool) *xmppcore.Element {
		if by == nil {
			return p
		}
		out := p.Copy()
		if it := child(child(out, NSMUCUser, "x"), NSMUCUser, "item"); it != nil {
			a := el(NSMUCUser, "actor", "nick", by.nick)
			if withJID {
				setAttr(a, "jid", by.full)
			}
			add(it, a)
		}
		return out
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].full < mine[j].full })
	for i := range mine {
		o := &mine[i]
		s.sendPresence(ctx, c, actorIn(s.occupantPresence(c, o, false, "110"), false), s.RoomJID(c)+"/"+o.nick, o.full)
		s.shareOccupant(c, o, false)
		p := actorIn(s.occupantPresence(c, o, false), true)
		for _, other := range r.list() {
			if other.userID != userID {
				s.sendPresence(ctx, c, p, attr(p, "from"), other.full)
			}
		}
	}
}

// occupantPresence is o's presence as others see it, to be addressed.
func (s *Service) occupantPresence(c *Chat, o *occupant, unavailable bool, statuses ...string) *xmppcore.Element {
	p := el(nsClient, "presence", "from", s.RoomJID(c)+"/"+o.nick)
	if unavailable {
		setAttr(p, "type", "unavailable")
		if o.presence != nil && attr(o.presence, "type") == "unavailable" {
			if st := child(o.presence, "", "status"); st != nil && (st.Name.Space == "" || st.Name.Space == nsClient) {
				p.Children = append(p.Children, st)
			}
		}
	} else if o.presence != nil {
		// show, status, priority and the extensions (caps, avatar
		// update, idle…) pass through; the MUC elements do not.
		for _, ch := range o.presence.Children {
			switch ch.Name.Space {
			case "", nsClient:
				switch ch.Name.Local {
				case "show", "status", "priority":
					p.Children = append(p.Children, ch)
				}
			case NSMUC, NSMUCUser, NSMUCOwner, NSMUCAdmin:
			default:
				p.Children = append(p.Children, ch)
			}
		}
	}
	// Status codes come before the item, except 110 (self-presence)
	// after it: the order clients and Prosody use. A member who was
	// removed (321) leaves with affiliation and role none.
	x := el(NSMUCUser, "x")
	removed := false
	for _, st := range statuses {
		if st != "110" {
			x.Children = append(x.Children, el(NSMUCUser, "status", "code", st))
		}
		removed = removed || st == "321"
	}
	item := s.occupantItem(c, o)
	if unavailable && !slices.Contains(statuses, "303") {
		// Who leaves has no role any more (XEP-0045 §7.14); a nick
		// change (303) keeps it.
		setAttr(item, "role", "none")
	}
	if removed {
		setAttr(item, "affiliation", "none")
		setAttr(item, "role", "none")
	}
	for _, st := range statuses {
		switch st {
		case "301": // banned
			setAttr(item, "affiliation", "outcast")
			setAttr(item, "role", "none")
		case "307", "322": // kicked; not a member of a chat that closed
			setAttr(item, "role", "none")
		}
	}
	add(x, item)
	for _, st := range statuses {
		if st == "110" {
			x.Children = append(x.Children, el(NSMUCUser, "status", "code", st))
		}
	}
	p.Children = append(p.Children, x, el(NSOccupantID, "occupant-id", "id", s.occupantID(c, o.userID)))
	return p
}

// sendPresence sends a room presence from the occupant JID from to the
// session to, as that session may see it (forViewer).
func (s *Service) sendPresence(ctx context.Context, c *Chat, p *xmppcore.Element, from, to string) {
	s.router.Route(ctx, addressed(s.forViewer(ctx, c, p, to), from, to))
}

// forViewer is a room presence as the session to may see it: in a
// semi-anonymous room (WhoisModerators) only the owner and the server's
// admins see real JIDs; anyone else sees the items (and actors) without
// them, but for their own session's.
func (s *Service) forViewer(ctx context.Context, c *Chat, p *xmppcore.Element, to string) *xmppcore.Element {
	if c.Whois != WhoisModerators {
		return p
	}
	x := child(p, NSMUCUser, "x")
	if x == nil || s.seesJIDs(ctx, c, to) {
		return p
	}
	hides := func(e *xmppcore.Element) bool { return e.HasAttr("jid") && attr(e, "jid") != to }
	hidden := false
	for _, it := range x.Children {
		if it.Name.Local != "item" {
			continue
		}
		hidden = hidden || hides(it)
		for _, a := range it.Children {
			hidden = hidden || a.Name.Local == "actor" && hides(a)
		}
	}
	if !hidden {
		return p
	}
	out := p.Copy()
	for _, it := range child(out, NSMUCUser, "x").Children {
		if it.Name.Local != "item" {
			continue
		}
		if hides(it) {
			it.RemoveAttr("jid")
		}
		for _, a := range it.Children {
			if a.Name.Local == "actor" && hides(a) {
				a.RemoveAttr("jid")
			}
		}
	}
	return out
}

// seesJIDs reports whether the session full is the owner's or a server
// admin's: who sees real JIDs in a semi-anonymous room.
func (s *Service) seesJIDs(ctx context.Context, c *Chat, full string) bool {
	j, err := jid.Parse(full)
	if err != nil || j.Domainpart() != s.opts.Domain {
		return false
	}
	for _, a := range s.opts.Admins {
		if a == j.Localpart() {
			return true
		}
	}
	owner, err := s.cache.byID(ctx, c.OwnerID)
	return err == nil && owner.Login == j.Localpart()
}

// occupantID is a user's XEP-0421 occupant id in a chat: the same for
// every session and nick of the user in that room, different between
// rooms, and telling nothing by itself (rooms are non-anonymous anyway:
// the real JID is in the presence).
func (s *Service) occupantID(c *Chat, userID int64) string {
	h := sha256.Sum256([]byte("vestnik occupant-id\x00" + s.RoomJID(c) + "\x00" + strconv.FormatInt(userID, 10)))
	return base64.RawURLEncoding.EncodeToString(h[:18])
}

// broadcastSubject sends the room subject (the chat's description, its
// topic) to every occupant.
func (s *Service) broadcastSubject(ctx context.Context, c *Chat) {
	msg, from := s.subjectMessage(c), s.subjectFrom(c)
	for _, full := range s.Occupants(c.ID) {
		s.router.Route(ctx, addressed(msg, from, full))
	}
	s.relayRemote(c.ID, msg, from)
}

func (s *Service) subjectMessage(c *Chat) *xmppcore.Element {
	return add(el(nsClient, "message", "from", s.RoomJID(c), "type", "groupchat", "id", "subject-"+strconv.FormatInt(c.ID, 10)),
		text(nsClient, "subject", c.Description))
}

// kick removes every session of userID from the room (they are no longer a
// member): each gets unavailable with status 321, the others see them go.
func (s *Service) kick(ctx context.Context, c *Chat, userID, actor int64) {
	s.eject(ctx, c, userID, actor, "", "321")
}

// announceLeave tells the other occupants that o left, unless another
// session still shares o's nick.
func (s *Service) announceLeave(ctx context.Context, c *Chat, r *room, o *occupant, statuses ...string) {
	s.announceLeaveWith(ctx, c, r, o, nil, statuses...)
}

// announceLeaveWith is announceLeave for an occupant moderated out (mod,
// which may be nil: the actor and reason, here and on the other nodes).
func (s *Service) announceLeaveWith(ctx context.Context, c *Chat, r *room, o *occupant, mod *modInfo, statuses ...string) {
	s.shareChat(c.ID, s.occupantNotice(c.ID, o, true, mod, statuses...))
	s.watch(c.ID)
	var rest *occupant
	r.mu.RLock()
	for _, other := range r.occupants {
		if other.nick == o.nick {
			cp := *other
			rest = &cp
			break
		}
	}
	r.mu.RUnlock()
	if rest != nil {
		// Another session keeps the nick: the occupants see who is left.
		s.broadcastPresence(ctx, c, r, rest, "")
		return
	}
	p := mod.decorate(s.occupantPresence(c, o, true, statuses...))
	for _, full := range r.snapshot() {
		s.sendPresence(ctx, c, p, attr(p, "from"), full)
	}
}

// joinHistory reads a join's <history/> (XEP-0045 §7.2.14): how many
// messages at most (maxstanzas, bounded by max; maxchars='0' asks for
// none — other maxchars values are not counted, clients use only 0) and
// from when (seconds before now, or since; the later of both). Absent or
// malformed attributes leave the defaults: max messages, any time.
func joinHistory(h *xmppcore.Element, max int, now time.Time) (limit int, since time.Time) {
	limit = max
	if h == nil {
		return limit, since
	}
	if v := attr(h, "maxstanzas"); v != "" {
		if n, err := atoiBounded(v, max); err == nil {
			limit = n
		}
	}
	if attr(h, "maxchars") == "0" {
		limit = 0
	}
	if v := attr(h, "seconds"); v != "" {
		if n, err := atoiBounded(v, 1<<31); err == nil {
			since = now.Add(-time.Duration(n) * time.Second)
		}
	}
	if v := attr(h, "since"); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil && t.After(since) {
			since = t
		}
	}
	return limit, since
}

// sendHistory sends the joiner the latest messages they may read, oldest
// first, with delay stamps.
func (s *Service) sendHistory(ctx context.Context, c *Chat, userID int64, to string, limit int, since time.Time) {
	if limit <= 0 {
		return
	}
	page, err := s.archive.Query(ctx, mam.Query{Viewer: userID, ChatID: c.ID, Limit: limit, Reverse: true, Start: since})
	if err != nil {
		s.log.Warn("history on join", "chat", c.ID, "err", err)
		return
	}
	msgs := append([]mam.Message(nil), page.Messages...)
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].ID < msgs[j].ID })
	for i := range msgs {
		m := &msgs[i]
		// System messages (who joined, who was added) are not join
		// history: the joiner sees the occupants' presence instead, and
		// the archive (MAM) keeps them.
		if m.Deleted || m.Kind == mam.KindSystem {
			continue
		}
		nick := m.FromResource
		system := m.Kind == mam.KindSystem
		if !system && nick == "" && m.FromID != 0 {
			nick = s.login(ctx, m.FromID)
		}
		msg := s.groupchatElement(c, m, nick, system)
		msg.Children = append(msg.Children, el(NSDelay, "delay", "from", s.RoomJID(c), "stamp", m.CreatedAt.UTC().Format(time.RFC3339Nano)))
		s.router.Route(ctx, addressed(msg, attr(msg, "from"), to))
	}
}

// destroyLocal takes the occupants joined through this node out of the
// room of a chat being destroyed, each with the <destroy/> notice.
func (s *Service) destroyLocal(ctx context.Context, c *Chat, reason, alt string) {
	if r := s.room(c.ID, false); r != nil {
		r.mu.Lock()
		gone := make([]*occupant, 0, len(r.occupants))
		for full, o := range r.occupants {
			gone = append(gone, o)
			delete(r.occupants, full)
		}
		r.remote = nil // every node empties its own part
		r.mu.Unlock()
		for _, o := range gone {
			d := el(NSMUCUser, "destroy")
			if alt != "" {
				setAttr(d, "jid", alt)
			}
			if reason != "" {
				add(d, text(NSMUCUser, "reason", reason))
			}
			aff := "none"
			if o.userID == c.OwnerID {
				aff = "owner"
			}
			p := add(el(nsClient, "presence", "type", "unavailable"),
				add(el(NSMUCUser, "x"), d, el(NSMUCUser, "item", "affiliation", aff, "jid", o.full, "role", "none"), el(NSMUCUser, "status", "code", "110")))
			s.sendPresence(ctx, c, p, s.RoomJID(c)+"/"+o.nick, o.full)
		}
		s.dropIfEmpty(c.ID, r)
		s.watch(c.ID)
	}
}

// Destroy closes a chat on behalf of actor (its owner, or 0 for the
// integration and server admins): occupants leave with a <destroy/>
// notice (reason and an alternative room, both optional), members are
// removed, and the chat becomes closed. The archive keeps its history.
func (s *Service) Destroy(ctx context.Context, actor, chatID int64, reason, alt string) error {
	c, err := s.store.Get(ctx, chatID)
	if err != nil {
		return err
	}
	if err := canEdit(c, actor); err != nil {
		return err
	}
	s.shareChat(c.ID, el(nsOccupant, "destroy", "from", s.host, "chat", itoa(c.ID), "reason", reason, "alt", alt))
	s.destroyLocal(ctx, c, reason, alt)
	// The notice comes after the occupants left (XEP-0045 §10.9: the
	// <destroy/> presence is what they get), while the members still are
	// members: archived in their history, shown to the web client.
	notice := "The chat was closed"
	if actor != 0 {
		notice = s.displayName(ctx, actor) + " closed the chat"
	}
	if _, err := s.postNotice(ctx, chatID, notice, Notice{Type: NoticeClosed, Actor: actor}); err != nil {
		return err
	}
	for _, m := range c.Members {
		if err := s.store.RemoveMember(ctx, chatID, m.UserID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		s.memberChanged(ctx, m.UserID, c, false)
	}
	closed := TypeClosed
	nc, err := s.store.Update(ctx, chatID, Update{Type: &closed})
	if err != nil {
		return err
	}
	gone := make([]int64, len(c.Members))
	for i, m := range c.Members {
		gone[i] = m.UserID
	}
	s.emit(ctx, nc, EventMemberRemoved, gone, actor)
	return nil
}
