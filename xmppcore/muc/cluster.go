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
	if _, ok := ParseChatEvent(msg); ok {
		// A chat changed on another node: this node's followers.
		s.emitLocal(ctx, msg)
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
