package muc

import (
	"context"
	"strconv"

	"vestnik/xmppcore"
)

// componentBroadcaster is the part of the router that reaches the MUC
// services of the other nodes in a cluster (xmppcore.Server).
type componentBroadcaster interface {
	BroadcastComponent(el *xmppcore.Element)
}

// chatBroadcaster is the part of the router that carries one chat's
// traffic to the nodes watching it (xmppcore.Server).
type chatBroadcaster interface {
	BroadcastChat(chatID int64, el *xmppcore.Element)
	WatchChat(chatID int64, on bool)
}

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
// subscription must be in place before the occupant can miss anything).
func (s *Service) watchOn(chatID int64) {
	if b, ok := s.router.(chatBroadcaster); ok {
		s.setWatch(b, chatID, true)
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
	}
	b.WatchChat(chatID, want)
}

// HandleCluster fans out a room message that the service on another node
// archived to the occupants and followers joined through this node, and
// delivers chat events (events.go) to this node's followers
// (xmppcore.ClusterComponent).
func (s *Service) HandleCluster(ctx context.Context, msg *xmppcore.Element) {
	if msg.Name.Space == nsOccupant && msg.Name.Local == "occupant" {
		s.remoteOccupant(ctx, msg)
		return
	}
	if msg.Name.Space == nsOccupant && msg.Name.Local == "sync" {
		s.shareAll(ctx)
		return
	}
	if msg.Name.Local != "message" || msg.AttrValue("type") != "groupchat" {
		return
	}
	if ev, ok := ParseChatEvent(msg); ok {
		// A chat changed on another node: this node's followers, and
		// the occupants here of users who became members.
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
		s.readersOut(ctx, c, ev.Actor)
	}
}
