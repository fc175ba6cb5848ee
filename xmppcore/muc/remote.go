package muc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"

	"vestnik/xmppcore"
)

// Occupants joined through other nodes of a cluster. Each node's service
// owns its own occupants; it tells the other nodes of each join, presence
// change and leave (an <occupant/> notice from the service's domain, by
// BroadcastComponent), and they keep those occupants in room.remote: a
// joining session gets the one occupant list of every node, a nick taken
// on another node is refused, and the local occupants see the remote ones
// come and go. Room messages cross as before (fanout). Two joins under one
// nick on two nodes in the same instant both succeed at first; as soon as
// each node hears of the other's occupant the same rule picks one (the
// earlier join, then the lower node instance), and the loser's node takes
// its occupant out with a conflict error. A service that starts asks the
// others for their occupants (a <sync/> notice; each answers with one
// occupant notice per local occupant).

// nsOccupant names the notice between nodes.
const nsOccupant = "urn:vestnik:muc:occupant:0"

// shareOccupant tells the other nodes that a local occupant joined or
// changed presence (left false) or left.
func (s *Service) shareOccupant(c *Chat, o *occupant, left bool) {
	b, ok := s.router.(componentBroadcaster)
	if !ok {
		return
	}
	n := el(nsOccupant, "occupant", "from", s.host, "chat", strconv.FormatInt(c.ID, 10),
		"full", o.full, "user", strconv.FormatInt(o.userID, 10), "nick", o.nick,
		"joined", strconv.FormatInt(o.joined, 10), "node", o.node)
	if left {
		setAttr(n, "left", "1")
	}
	if o.presence != nil {
		n.Children = append(n.Children, o.presence)
	}
	b.BroadcastComponent(n)
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
	o := &occupant{full: attr(n, "full"), userID: userID, nick: attr(n, "nick"), node: attr(n, "node")}
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
	s.toLocal(ctx, c, r, s.occupantPresence(c, o, left))
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

// askOccupants asks the services of the other nodes for their occupants
// (at start: occupants joined before this node came are not announced
// again otherwise).
func (s *Service) askOccupants(router any) {
	if b, ok := router.(componentBroadcaster); ok {
		b.BroadcastComponent(el(nsOccupant, "sync", "from", s.host))
	}
}

// shareAll answers another node's <sync/>: one occupant notice per local
// occupant of every room.
func (s *Service) shareAll(ctx context.Context) {
	s.mu.RLock()
	rooms := make(map[int64]*room, len(s.rooms))
	for id, r := range s.rooms {
		rooms[id] = r
	}
	s.mu.RUnlock()
	for id, r := range rooms {
		c := &Chat{ID: id}
		for _, o := range r.list() {
			s.shareOccupant(c, &o, false)
		}
	}
}

// newNodeToken names this service instance among the nodes.
func newNodeToken() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
