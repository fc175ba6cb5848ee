package muc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"

	"vestnik/xmppcore"
)

// Occupants joined through other nodes of a cluster. Each node's service
// owns its own occupants; it tells the other nodes watching the chat of
// each join, presence change and leave (an <occupant/> notice from the
// service's domain on the chat's subject, BroadcastChat), and they keep
// those occupants in room.remote: a joining session gets the one occupant
// list of every node, a nick taken on another node is refused, and the
// local occupants see the remote ones come and go. A node that starts
// watching a chat for a join asks the others for their occupants of it
// (<sync chat/>, AskComponents; each answers with one occupant notice per
// local occupant) before the join goes on, and forgets the chat's remote
// occupants when it stops watching it. Room messages cross as before
// (fanout). Two joins under one nick on two nodes in the same instant both
// succeed at first; as soon as each node hears of the other's occupant the
// same rule picks one (the earlier join, then the lower node instance), and
// the loser's node takes its occupant out with a conflict error.
// Moderation of an occupant joined elsewhere (kick, ban, removal, voice)
// goes to its node as an <eject/> or <voice/> notice on the chat's
// subject, a destroyed room as <destroy/>; what the room says to every
// occupant (chat states, the subject, a configuration notice) as
// <relay/>; private messages and probes reach it through the router.

// nsOccupant names the notices between nodes.
const nsOccupant = "urn:vestnik:muc:occupant:0"

// modInfo is who moderated an occupant out of the room and why, as the
// others see it (XEP-0045 §8.2: actor and reason in the item).
type modInfo struct {
	byNick, byFull, reason string
}

// decorate adds the actor and the reason to the item of p.
func (m *modInfo) decorate(p *xmppcore.Element) *xmppcore.Element {
	if m == nil {
		return p
	}
	if it := child(child(p, NSMUCUser, "x"), NSMUCUser, "item"); it != nil {
		if m.byNick != "" {
			add(it, el(NSMUCUser, "actor", "nick", m.byNick, "jid", m.byFull))
		}
		if m.reason != "" {
			add(it, text(NSMUCUser, "reason", m.reason))
		}
	}
	return p
}

// occupantNotice describes a local occupant to the other nodes: joined or
// changed (left false), or left (with the status codes and moderation the
// others show).
func (s *Service) occupantNotice(chatID int64, o *occupant, left bool, mod *modInfo, statuses ...string) *xmppcore.Element {
	n := el(nsOccupant, "occupant", "from", s.host, "chat", strconv.FormatInt(chatID, 10),
		"full", o.full, "user", strconv.FormatInt(o.userID, 10), "nick", o.nick,
		"joined", strconv.FormatInt(o.joined, 10), "node", o.node)
	if o.visitor {
		setAttr(n, "visitor", "1")
	}
	if left {
		setAttr(n, "left", "1")
		if len(statuses) > 0 {
			setAttr(n, "status", strings.Join(statuses, " "))
		}
		if mod != nil {
			setAttr(n, "actor-nick", mod.byNick)
			setAttr(n, "actor-jid", mod.byFull)
			setAttr(n, "reason", mod.reason)
		}
	}
	if o.presence != nil {
		n.Children = append(n.Children, o.presence)
	}
	return n
}

// shareOccupant tells the other nodes watching the chat that a local
// occupant joined or changed presence (left false) or left.
func (s *Service) shareOccupant(c *Chat, o *occupant, left bool) {
	s.shareChat(c.ID, s.occupantNotice(c.ID, o, left, nil))
}

// remoteOccupant applies another node's occupant notice: the room's remote
// occupants change and the occupants joined here see the presence.
func (s *Service) remoteOccupant(ctx context.Context, n *xmppcore.Element) {
	chatID, err := strconv.ParseInt(attr(n, "chat"), 10, 64)
	if err != nil {
		return
	}
	userID, err := strconv.ParseInt(attr(n, "user"), 10, 64)
	if err != nil {
		return
	}
	if !s.watched(chatID) {
		// Late, after this node stopped watching the chat: it asks again
		// when it watches it again.
		return
	}
	o := &occupant{full: attr(n, "full"), userID: userID, nick: attr(n, "nick"), node: attr(n, "node"), visitor: attr(n, "visitor") == "1"}
	o.joined, _ = strconv.ParseInt(attr(n, "joined"), 10, 64)
	if len(n.Children) > 0 {
		o.presence = n.Children[0]
	}
	left := attr(n, "left") == "1"
	c, err := s.store.Get(ctx, chatID)
	if err != nil {
		return
	}
	r := s.room(chatID, !left)
	if r == nil {
		return
	}
	r.mu.Lock()
	if r.remote == nil {
		r.remote = map[string]*occupant{}
	}
	old := r.remote[o.full]
	if left {
		delete(r.remote, o.full)
	} else {
		r.remote[o.full] = o
	}
	var losers []*occupant
	lost := false
	if !left {
		for _, lo := range r.occupants {
			if lo.nick != o.nick || lo.userID == o.userID {
				continue
			}
			if beats(o, lo) {
				losers = append(losers, lo)
			} else {
				lost = true
			}
		}
		for _, lo := range losers {
			delete(r.occupants, lo.full)
		}
	}
	r.mu.Unlock()
	for _, lo := range losers {
		s.nickLost(ctx, c, r, lo)
	}
	if lost {
		// Its own node takes it out when it hears of ours.
		return
	}
	if left && old == nil {
		return
	}
	if !left && old != nil && old.nick != o.nick {
		// A nick change: the old nick leaves.
		p := s.occupantPresence(c, old, true, "303")
		setAttr(child(child(p, NSMUCUser, "x"), NSMUCUser, "item"), "nick", o.nick)
		s.toLocal(ctx, c, r, p)
	}
	var statuses []string
	var mod *modInfo
	if left {
		statuses = strings.Fields(attr(n, "status"))
		if attr(n, "actor-nick") != "" || attr(n, "reason") != "" {
			mod = &modInfo{byNick: attr(n, "actor-nick"), byFull: attr(n, "actor-jid"), reason: attr(n, "reason")}
		}
	}
	s.toLocal(ctx, c, r, mod.decorate(s.occupantPresence(c, o, left, statuses...)))
	if left {
		s.dropIfEmpty(chatID, r)
	}
}

// toLocal sends a room presence to the occupants joined through this node.
func (s *Service) toLocal(ctx context.Context, c *Chat, r *room, p *xmppcore.Element) {
	for _, full := range r.snapshot() {
		s.sendPresence(ctx, c, p, attr(p, "from"), full)
	}
}

// ClusterSessionGone drops the remote occupants of a session that ended or
// went unavailable on another node (its node may have died without
// saying so; xmppcore calls this for every such session).
func (s *Service) ClusterSessionGone(ctx context.Context, full string) {
	s.mu.RLock()
	var rooms []int64
	for id, r := range s.rooms {
		r.mu.RLock()
		if r.remote[full] != nil {
			rooms = append(rooms, id)
		}
		r.mu.RUnlock()
	}
	s.mu.RUnlock()
	for _, id := range rooms {
		n := el(nsOccupant, "occupant", "chat", strconv.FormatInt(id, 10), "full", full, "left", "1")
		r := s.room(id, false)
		if r == nil {
			continue
		}
		r.mu.RLock()
		o := r.remote[full]
		r.mu.RUnlock()
		if o == nil {
			continue
		}
		setAttr(n, "user", strconv.FormatInt(o.userID, 10))
		setAttr(n, "nick", o.nick)
		s.remoteOccupant(ctx, n)
	}
}

// remoteList returns copies of the room's remote occupants.
func (r *room) remoteList() []occupant {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]occupant, 0, len(r.remote))
	for _, o := range r.remote {
		out = append(out, *o)
	}
	return out
}

// remoteNickTaken reports whether another user holds nick on another node.
func (r *room) remoteNickTaken(nick string, userID int64) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, o := range r.remote {
		if o.nick == nick && o.userID != userID {
			return true
		}
	}
	return false
}

// beats reports whether occupant a keeps a nick that b holds too (joined
// on two nodes at once): the earlier join wins, then the lower node
// instance, so every node decides the same.
func beats(a, b *occupant) bool {
	if a.joined != b.joined {
		return a.joined < b.joined
	}
	return a.node < b.node
}

// nickLost takes out a local occupant (already out of r.occupants) whose
// nick an occupant of another node won: the session gets the conflict
// error a refused join gets, and everyone else sees it leave.
func (s *Service) nickLost(ctx context.Context, c *Chat, r *room, o *occupant) {
	req := el(nsClient, "presence", "from", o.full, "to", s.RoomJID(c)+"/"+o.nick)
	req.Children = append(req.Children, el(NSMUC, "x"))
	s.reply(ctx, req, "cancel", "conflict", "that nickname was taken on another node at the same time")
	s.announceLeave(ctx, c, r, o)
}

// remoteByNick returns a copy of an occupant joined under nick through
// another node, nil if none.
func (r *room) remoteByNick(nick string) *occupant {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, o := range r.remote {
		if o.nick == nick {
			cp := *o
			return &cp
		}
	}
	return nil
}

// remoteModeration applies another node's moderation to the occupants
// joined here: <eject user code/> takes the user's sessions out (kick,
// ban, removal), <voice nick voice/> changes their role.
func (s *Service) remoteModeration(ctx context.Context, n *xmppcore.Element) {
	chatID, err := strconv.ParseInt(attr(n, "chat"), 10, 64)
	if err != nil {
		return
	}
	c, err := s.store.Get(ctx, chatID)
	if err != nil {
		return
	}
	switch n.Name.Local {
	case "eject":
		userID, err := strconv.ParseInt(attr(n, "user"), 10, 64)
		if err != nil {
			return
		}
		s.ejectLocal(ctx, c, userID, &modInfo{byNick: attr(n, "actor-nick"), byFull: attr(n, "actor-jid"), reason: attr(n, "reason")}, attr(n, "code"))
	case "voice":
		s.setVoiceLocal(ctx, c, attr(n, "nick"), attr(n, "voice") == "1")
	case "destroy":
		s.destroyLocal(ctx, c, attr(n, "reason"), attr(n, "alt"))
	case "owner":
		old, err := strconv.ParseInt(attr(n, "old"), 10, 64)
		if err == nil {
			s.ownerChangedLocal(ctx, c, old)
		}
	}
}

// relayRemote gives the occupants joined through the other nodes a
// stanza from the room that this node gave its own occupants (a chat
// state or marker, a configuration notice, the subject): it crosses as
// <relay chat/> on the chat's subject, already addressed from.
func (s *Service) relayRemote(chatID int64, msg *xmppcore.Element, from string) {
	s.shareChat(chatID, add(el(nsOccupant, "relay", "from", s.host, "chat", itoa(chatID)), addressed(msg, from, "")))
}

// relayRemoteTo is relayRemote for the occupants of one user (the owner),
// unless user absent is in the room (on any node).
func (s *Service) relayRemoteTo(chatID, userID, absent int64, msg *xmppcore.Element, from string) {
	s.shareChat(chatID, add(el(nsOccupant, "relay", "from", s.host, "chat", itoa(chatID), "user", itoa(userID), "absent", itoa(absent)), addressed(msg, from, "")))
}

// hasUser reports whether a session of the user is in the room, here or
// through another node.
func (r *room) hasUser(userID int64) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, o := range r.occupants {
		if o.userID == userID {
			return true
		}
	}
	for _, o := range r.remote {
		if o.userID == userID {
			return true
		}
	}
	return false
}

// remoteRelay gives a stanza another node relayed (relayRemote) to the
// occupants joined here.
func (s *Service) remoteRelay(ctx context.Context, n *xmppcore.Element) {
	chatID, err := strconv.ParseInt(attr(n, "chat"), 10, 64)
	if err != nil || len(n.Children) != 1 {
		return
	}
	r := s.room(chatID, false)
	if r == nil {
		return
	}
	msg := n.Children[0]
	from := attr(msg, "from")
	var only int64 // the sessions of one user (the owner), when set
	if u := attr(n, "user"); u != "" {
		if only, err = strconv.ParseInt(u, 10, 64); err != nil {
			return
		}
	}
	if a := attr(n, "absent"); a != "" {
		if id, err := strconv.ParseInt(a, 10, 64); err != nil || r.hasUser(id) {
			return
		}
	}
	r.mu.RLock()
	var to []string
	for full, o := range r.occupants {
		if only == 0 || o.userID == only {
			to = append(to, full)
		}
	}
	r.mu.RUnlock()
	for _, full := range to {
		s.router.Route(ctx, addressed(msg, from, full))
	}
}

// newNodeToken names this service instance among the nodes.
func newNodeToken() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
