package muc

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"vestnik/xmppcore"
)

// Change events. Every change of a chat — created, edited, members added,
// removed or gone — reaches the open clients of the members concerned at
// once, in the form each door understands:
//
//   - XMPP clients get their bookmarks pushed or retracted (XEP-0402) when
//     they join or leave a chat or its title changes; occupants of the room
//     get the room's own notices: a status 104 message for a configuration
//     change, the subject when the topic (the description) changes, and
//     presence or affiliation notices when members or the owner change.
//   - Following sessions (the bridge) get one <chat-event/> (NSVestnik)
//     from the room, carrying the chat's fields, so that the door
//     translates it without reading the database. The sessions of a member
//     who was removed get it too, last. In a cluster the event goes to the
//     chat services of the other nodes, which deliver it to their own
//     followers and update their follow lists.

// Kinds of chat events.
const (
	EventCreated       = "created"        // the chat was made; Users are its members
	EventEdited        = "edited"         // title, description, color, type, avatar or owner changed
	EventMembersAdded  = "members_added"  // Users joined or were added
	EventMemberRemoved = "member_removed" // Users left or were removed (a closed chat: everyone)
)

// ChatEvent is a change as followers get it.
type ChatEvent struct {
	Kind        string
	Chat        Chat // without Members; UpdatedAt is set
	MemberCount int
	Users       []int64 // added or removed
	Actor       int64   // who did it; 0: the integration or the server
}

// chatEventElement is the event as a message from the room.
func (s *Service) chatEventElement(c *Chat, kind string, users []int64, actor int64) *xmppcore.Element {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = itoa(u)
	}
	e := el(NSVestnik, "chat-event", "kind", kind, "chat", itoa(c.ID), "room", c.Room, "title", c.Title,
		"description", c.Description, "color", c.Color, "type", c.Type, "owner", itoa(c.OwnerID),
		"avatar", c.AvatarType, "updated", itoa(c.UpdatedAt.UnixMicro()), "members", strconv.Itoa(len(c.Members)),
		"users", strings.Join(ids, " "), "actor", itoa(actor))
	// Type groupchat: a router never delivers it to another session of
	// the user when the follower is gone.
	return add(el(nsClient, "message", "type", "groupchat", "from", s.RoomJID(c), "id", "ev-"+randomID()), e)
}

// ParseChatEvent reads a chat event from a message a following session
// received; ok is false for any other stanza.
func ParseChatEvent(msg *xmppcore.Element) (ev ChatEvent, ok bool) {
	e := child(msg, NSVestnik, "chat-event")
	if e == nil {
		return ev, false
	}
	num := func(name string) int64 {
		n, _ := strconv.ParseInt(attr(e, name), 10, 64)
		return n
	}
	ev.Kind = attr(e, "kind")
	ev.Chat = Chat{ID: num("chat"), Room: attr(e, "room"), Title: attr(e, "title"), Description: attr(e, "description"),
		Color: attr(e, "color"), Type: attr(e, "type"), OwnerID: num("owner"), AvatarType: attr(e, "avatar")}
	ev.Chat.UpdatedAt = timeMicro(num("updated"))
	ev.MemberCount = int(num("members"))
	ev.Actor = num("actor")
	for _, f := range strings.Fields(attr(e, "users")) {
		if n, err := strconv.ParseInt(f, 10, 64); err == nil {
			ev.Users = append(ev.Users, n)
		}
	}
	return ev, ev.Chat.ID > 0 && ev.Kind != ""
}

// emit sends a chat event to the followers here and on the other nodes.
// c must carry its members as they are after the change.
func (s *Service) emit(ctx context.Context, c *Chat, kind string, users []int64, actor int64) {
	if s.router == nil {
		return
	}
	msg := s.chatEventElement(c, kind, users, actor)
	if f := s.opts.OnMembersAdded; f != nil && len(users) > 0 && (kind == EventCreated || kind == EventMembersAdded) {
		defer f(context.WithoutCancel(ctx), c.ID, actor, users)
	}
	later(ctx, func() {
		s.shareEvent(c.ID, kind, users, msg)
		s.emitLocal(context.WithoutCancel(ctx), msg)
	})
}

// shareEvent sends a chat event to the other nodes that need it: those
// watching the chat (its followers and occupants, removed members
// included) and, for members added, those holding their sessions (not
// watching the chat yet). A node in both gets it twice and handles it
// once (by its id).
func (s *Service) shareEvent(chatID int64, kind string, users []int64, msg *xmppcore.Element) {
	b, ok := s.router.(chatBroadcaster)
	if !ok {
		if b, ok := s.router.(componentBroadcaster); ok {
			b.BroadcastComponent(msg)
		}
		return
	}
	b.BroadcastChat(chatID, msg)
	if kind == EventCreated || kind == EventMembersAdded {
		for _, u := range users {
			b.BroadcastUser(u, msg)
		}
	}
}

// emitLocal delivers a chat event to this node's followers: new members'
// sessions start following first, removed members' sessions get it and
// stop following.
func (s *Service) emitLocal(ctx context.Context, msg *xmppcore.Element) {
	ev, ok := ParseChatEvent(msg)
	if !ok {
		return
	}
	s.mu.Lock()
	if ev.Kind == EventCreated || ev.Kind == EventMembersAdded {
		for _, u := range ev.Users {
			for full := range s.follows[u] {
				s.addFollowerLocked(ev.Chat.ID, full)
			}
		}
	}
	fs := s.followers[ev.Chat.ID]
	targets := make([]string, 0, len(fs))
	for full := range fs {
		targets = append(targets, full)
	}
	if ev.Kind == EventMemberRemoved {
		for _, u := range ev.Users {
			for full := range s.follows[u] {
				if _, in := fs[full]; !in {
					targets = append(targets, full)
				}
				delete(fs, full)
			}
		}
	}
	s.mu.Unlock()
	s.watch(ev.Chat.ID) // followers came or went
	from := attr(msg, "from")
	for _, full := range targets {
		s.router.Route(ctx, addressed(msg, from, full))
	}
}

// later runs f now, or after the IQ answer or join under way when ctx
// defers notices (deferBookmarks).
func later(ctx context.Context, f func()) {
	if q, ok := ctx.Value(bookmarkQueueKey{}).(*bookmarkQueue); ok {
		q.pushes = append(q.pushes, f)
		return
	}
	f()
}

// configChanged tells the occupants and the members what an edit changed
// (old is the chat before it, nc after it).
func (s *Service) configChanged(ctx context.Context, old, nc *Chat, actor int64, avatarChanged bool) {
	if nc.Title != old.Title {
		for _, m := range nc.Members {
			s.pushBookmark(ctx, m.UserID, nc, true)
		}
	}
	subjectBy, bySubject := ctx.Value(subjectByKey{}).(string)
	fields := nc.Title != old.Title || nc.Description != old.Description && !bySubject || nc.Color != old.Color ||
		nc.Type != old.Type || avatarChanged
	later(ctx, func() {
		if fields {
			s.roomNotice(ctx, nc, "104")
		}
		if nc.Description != old.Description {
			s.setSubjectBy(nc.ID, subjectBy)
			s.broadcastSubject(ctx, nc)
		}
		if nc.OwnerID != old.OwnerID {
			s.ownerChanged(ctx, nc, old.OwnerID)
		}
		if old.Type == TypeOpen && nc.Type == TypeClosed {
			s.readersOut(ctx, nc, actor)
		}
	})
	s.emit(ctx, nc, EventEdited, nil, actor)
}

// readersOut takes the readers (occupants who are not members) out of a
// chat that became closed: status 322 (XEP-0045 §9.7).
func (s *Service) readersOut(ctx context.Context, c *Chat, actor int64, keep ...int64) {
	r := s.room(c.ID, false)
	if r == nil {
		return
	}
	seen := make(map[int64]bool)
	for _, o := range r.list() {
		if !seen[o.userID] && !c.IsMember(o.userID) && o.userID != c.OwnerID && !slices.Contains(keep, o.userID) {
			seen[o.userID] = true
			s.eject(ctx, c, o.userID, actor, "", "322")
		}
	}
}

// extraStatusKey carries a status code that a room notice under this
// context adds (172 when a configuration form asked whois=anyone).
type extraStatusKey struct{}

// roomNotice sends the occupants a message from the room with muc#user
// status codes (104: the configuration changed).
func (s *Service) roomNotice(ctx context.Context, c *Chat, codes ...string) {
	if extra, ok := ctx.Value(extraStatusKey{}).(string); ok {
		codes = append(codes, extra)
	}
	x := el(NSMUCUser, "x")
	for _, code := range codes {
		add(x, el(NSMUCUser, "status", "code", code))
	}
	msg := add(el(nsClient, "message", "type", "groupchat", "id", "config-"+randomID()), x)
	for _, full := range s.Occupants(c.ID) {
		s.router.Route(ctx, addressed(msg, s.RoomJID(c), full))
	}
	s.relayRemote(c.ID, msg, s.RoomJID(c))
}

// ownerChanged re-announces the presence of the old and the new owner's
// occupants, whose affiliation and role changed (XEP-0045 §10.6, §10.7).
func (s *Service) ownerChanged(ctx context.Context, c *Chat, oldOwner int64) {
	s.shareChat(c.ID, el(nsOccupant, "owner", "from", s.host, "chat", itoa(c.ID), "old", itoa(oldOwner)))
	s.ownerChangedLocal(ctx, c, oldOwner)
}

// ownerChangedLocal is ownerChanged for the occupants joined here.
func (s *Service) ownerChangedLocal(ctx context.Context, c *Chat, oldOwner int64) {
	r := s.room(c.ID, false)
	if r == nil {
		return
	}
	for _, o := range r.list() {
		if o.userID == oldOwner || o.userID == c.OwnerID {
			oc := o
			s.broadcastPresence(ctx, c, r, &oc, "")
		}
	}
}

func timeMicro(n int64) time.Time { return time.UnixMicro(n).UTC() }
