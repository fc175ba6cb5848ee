package muc

import (
	"context"
	"strconv"
	"sync"
	"time"

	"vestnik/xmppcore"
)

// componentBroadcaster is the part of the router that reaches the MUC
// services of the other nodes in a cluster (xmppcore.Server).
type componentBroadcaster interface {
	BroadcastComponent(el *xmppcore.Element)
}

// chatBroadcaster is the part of the router that carries one chat's
// traffic to the nodes watching it, a notice to the nodes holding a
// user's sessions, and a question to every node (xmppcore.Server).
type chatBroadcaster interface {
	BroadcastChat(chatID int64, el *xmppcore.Element)
	WatchChat(chatID int64, on bool)
	BroadcastUser(userID int64, el *xmppcore.Element)
	AskComponents(el *xmppcore.Element, timeout time.Duration) int
}

// SyncTimeout bounds how long a join waits for the other nodes to list
// their occupants of a room this node starts watching.
const SyncTimeout = time.Second

// watch has this node watch chat chatID's traffic from the other nodes
// while it has occupants or followers of it (and stop when it has none).
// watchMu orders the transitions; it is taken after s.mu and r.mu are
// released.
func (s *Service) watch(chatID int64) {
	b, ok := s.router.(chatBroadcaster)
	if !ok {
		return
	}
	s.mu.RLock()
	want := len(s.followers[chatID]) > 0
	if r := s.rooms[chatID]; r != nil && !want {
		r.mu.RLock()
		want = len(r.occupants) > 0
		r.mu.RUnlock()
	}
	s.mu.RUnlock()
	s.setWatch(b, chatID, want)
}

// watchOn has this node watch chat chatID now (a join under way: its
// subscription must be in place before the occupant can miss anything),
// and learn the occupants joined through the other nodes.
func (s *Service) watchOn(chatID int64) {
	if b, ok := s.router.(chatBroadcaster); ok {
		s.setWatch(b, chatID, true)
		s.syncRemote(b, chatID)
	}
}

func (s *Service) setWatch(b chatBroadcaster, chatID int64, want bool) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.watching[chatID] == want {
		return
	}
	if want {
		s.watching[chatID] = true
	} else {
		delete(s.watching, chatID)
		delete(s.synced, chatID)
	}
	b.WatchChat(chatID, want)
	if !want {
		// Not watched, its remote occupants are not kept up to date: they
		// are asked again when it is watched again.
		if r := s.room(chatID, false); r != nil {
			r.mu.Lock()
			r.remote = nil
			r.mu.Unlock()
			s.dropIfEmpty(chatID, r)
		}
	}
}

// watched reports whether this node watches chat chatID.
func (s *Service) watched(chatID int64) bool {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	return s.watching[chatID]
}

// syncRemote asks the other nodes for their occupants of a chat this node
// watches, unless it was told them since it started watching: the
// answers come (through HandleCluster) before anything the nodes publish
// on the chat after answering, and the chat's subject was subscribed to
// before asking, so nothing falls between. A node that does not answer
// within SyncTimeout leaves the chat unsynced (the next join asks again).
func (s *Service) syncRemote(b chatBroadcaster, chatID int64) {
	s.watchMu.Lock()
	done := s.synced[chatID] || !s.watching[chatID]
	s.watchMu.Unlock()
	if done {
		return
	}
	if b.AskComponents(el(nsOccupant, "sync", "from", s.host, "chat", itoa(chatID)), SyncTimeout) != 0 {
		return
	}
	s.watchMu.Lock()
	if s.watching[chatID] {
		s.synced[chatID] = true
	}
	s.watchMu.Unlock()
}

// AnswerCluster answers another node's question (xmppcore.ClusterAnswerer):
// <sync chat/> gets one occupant notice per occupant of the chat joined
// through this node.
func (s *Service) AnswerCluster(ctx context.Context, q *xmppcore.Element) []*xmppcore.Element {
	if q.Name.Space != nsOccupant || q.Name.Local != "sync" {
		return nil
	}
	chatID, err := strconv.ParseInt(attr(q, "chat"), 10, 64)
	if err != nil {
		return nil
	}
	r := s.room(chatID, false)
	if r == nil {
		return nil
	}
	var out []*xmppcore.Element
	for _, o := range r.list() {
		out = append(out, s.occupantNotice(chatID, &o, false, nil))
	}
	return out
}

// shareChat sends a notice of this service to the services of the other
// nodes watching the chat.
func (s *Service) shareChat(chatID int64, n *xmppcore.Element) {
	if b, ok := s.router.(chatBroadcaster); ok {
		b.BroadcastChat(chatID, n)
	} else if b, ok := s.router.(componentBroadcaster); ok {
		b.BroadcastComponent(n)
	}
}

// HandleCluster applies what the service on another node sent: a room
// message it archived goes to the occupants and followers joined through
// this node, a chat event to this node's followers (events.go), occupant
// notices and moderation to the room's state here (remote.go)
// (xmppcore.ClusterComponent).
func (s *Service) HandleCluster(ctx context.Context, msg *xmppcore.Element) {
	if msg.Name.Space == nsOccupant {
		switch msg.Name.Local {
		case "occupant":
			s.remoteOccupant(ctx, msg)
		case "eject", "voice", "destroy", "owner":
			s.remoteModeration(ctx, msg)
		case "relay":
			s.remoteRelay(ctx, msg)
		}
		return
	}
	if msg.Name.Local != "message" || msg.AttrValue("type") != "groupchat" {
		return
	}
	if ev, ok := ParseChatEvent(msg); ok {
		// A chat changed on another node: this node's followers, and
		// the occupants here of users who became members. An event can
		// come twice (on the chat's subject and on a new member's).
		if s.events.seen(attr(msg, "id")) {
			return
		}
		s.emitLocal(ctx, msg)
		switch {
		case ev.Kind == EventMembersAdded:
			s.membersAddedElsewhere(ctx, ev.Chat.ID, ev.Users)
		case ev.Kind == EventMemberRemoved, ev.Kind == EventEdited && ev.Chat.Type == TypeClosed:
			s.outElsewhere(ctx, ev)
		}
		return
	}
	v := msg.Child(NSVestnik, "chat")
	if v == nil {
		return
	}
	id, err := strconv.ParseInt(v.AttrValue("id"), 10, 64)
	if err != nil {
		return
	}
	c, err := s.store.Get(ctx, id)
	if err != nil {
		s.log.Warn("cluster: room message for an unknown chat", "chat", id, "err", err)
		return
	}
	s.fanoutLocal(ctx, c, msg)
}

// recentIDs remembers the last ids seen (bounded), to drop repeats.
type recentIDs struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	ring []string
	next int
}

const recentIDsMax = 4096

// seen records id and reports whether it was recorded before ("" never is).
func (r *recentIDs) seen(id string) bool {
	if id == "" {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ids[id]; ok {
		return true
	}
	if r.ids == nil {
		r.ids = make(map[string]struct{}, recentIDsMax)
		r.ring = make([]string, recentIDsMax)
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.ids, old)
	}
	r.ring[r.next] = id
	r.next = (r.next + 1) % recentIDsMax
	r.ids[id] = struct{}{}
	return false
}

// membersAddedElsewhere announces the new affiliation of the occupants
// joined through this node whose users another node made members (a
// reader who joined by the web client, REST or a bookmark there): their
// node owns their presence.
func (s *Service) membersAddedElsewhere(ctx context.Context, chatID int64, users []int64) {
	r := s.room(chatID, false)
	if r == nil {
		return
	}
	var here []int64
	for _, u := range users {
		if r.nickOf(u) != "" {
			here = append(here, u)
		}
	}
	if len(here) == 0 {
		return
	}
	c, err := s.store.Get(ctx, chatID)
	if err != nil {
		s.log.Warn("cluster: members added to an unknown chat", "chat", chatID, "err", err)
		return
	}
	for _, u := range here {
		s.affiliationChanged(ctx, c, u, 0)
	}
}

// outElsewhere applies to the occupants joined through this node what
// another node decided: members it removed leave the room (321), and a
// chat it made closed loses its readers (322).
func (s *Service) outElsewhere(ctx context.Context, ev ChatEvent) {
	r := s.room(ev.Chat.ID, false)
	if r == nil {
		return
	}
	c, err := s.store.Get(ctx, ev.Chat.ID)
	if err != nil {
		s.log.Warn("cluster: change of an unknown chat", "chat", ev.Chat.ID, "err", err)
		return
	}
	if ev.Kind == EventMemberRemoved {
		for _, u := range ev.Users {
			if r.nickOf(u) != "" && !c.IsMember(u) {
				s.eject(ctx, c, u, ev.Actor, "", "321")
			}
		}
		return
	}
	if c.Type == TypeClosed {
		// The event's owner too is no reader: the chat read now may
		// already be past a later change on the other node (a destroy
		// that removed the members, whose own notice follows).
		s.readersOut(ctx, c, ev.Actor, ev.Chat.OwnerID)
	}
}
