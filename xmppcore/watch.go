package xmppcore

import (
	"strconv"
	"strings"
	"sync"
)

// Presence is visible company-wide (SPEC §4), but XMPP tells a session
// only about its roster. Doors that show everyone's presence (the bridge)
// watch the core instead: every change of what a user shows, made on this
// node or another, and typing in chats, which crosses nodes the same way.

// PresenceEvent is what a user shows now, over all the user's sessions on
// every node: "online", "away", "dnd" or "offline".
type PresenceEvent struct {
	UserID int64
	Show   string
	Status string
}

// ChatTypingEvent says UserID is typing ("composing") or stopped
// ("paused") in a chat; Members are the users to tell (the door checked
// that UserID is one of them).
type ChatTypingEvent struct {
	ChatID, UserID int64
	State          string
	Members        []int64
}

// watchers holds the functions that watch presence and typing; its mutex
// guards the slices and the last shows only.
type watchers struct {
	mu       sync.Mutex
	presence []func(PresenceEvent)
	typing   []func(ChatTypingEvent)
	photo    []func(PhotoEvent)
	last     map[int64]PresenceEvent
}

// PhotoEvent says a user's photo changed, on this node or another:
// Version is the photo store's new version ("" = no photo).
type PhotoEvent struct {
	UserID  int64
	Version string
}

// OnPhotoChange has f called with every change of a user's photo on any
// node. f must not block.
func (s *Server) OnPhotoChange(f func(PhotoEvent)) {
	s.watch.mu.Lock()
	s.watch.photo = append(s.watch.photo, f)
	s.watch.mu.Unlock()
}

// PhotoChanged tells the watchers on every node that a user's photo
// changed (the photo store calls it, whichever door set the photo).
func (s *Server) PhotoChanged(ev PhotoEvent) {
	s.tellPhoto(ev)
	if s.clustered() {
		s.cl.Broadcast(NewElement(nsCluster, "photo", "user", strconv.FormatInt(ev.UserID, 10), "version", ev.Version).String())
	}
}

func (s *Server) tellPhoto(ev PhotoEvent) {
	s.watch.mu.Lock()
	fs := s.watch.photo
	s.watch.mu.Unlock()
	for _, f := range fs {
		f(ev)
	}
}

// OnPresence has f called with every change of a user's presence on any
// node. f runs on the goroutine that made the change and must not block.
func (s *Server) OnPresence(f func(PresenceEvent)) {
	s.watch.mu.Lock()
	s.watch.presence = append(s.watch.presence, f)
	s.watch.mu.Unlock()
}

// OnChatTyping has f called with typing in chats, from every node. f must
// not block.
func (s *Server) OnChatTyping(f func(ChatTypingEvent)) {
	s.watch.mu.Lock()
	s.watch.typing = append(s.watch.typing, f)
	s.watch.mu.Unlock()
}

// ChatTyping tells the watchers on every node that a user is typing in a
// chat (another node hears it on the chat's subject: it watches the chat
// while its sessions follow it).
func (s *Server) ChatTyping(ev ChatTypingEvent) {
	s.tellTyping(ev)
	if s.clustered() {
		ids := make([]string, len(ev.Members))
		for i, m := range ev.Members {
			ids[i] = strconv.FormatInt(m, 10)
		}
		s.cl.SendChat(ev.ChatID, NewElement(nsCluster, "typing", "user", strconv.FormatInt(ev.UserID, 10),
			"chat", strconv.FormatInt(ev.ChatID, 10), "state", ev.State, "members", strings.Join(ids, ",")).String())
	}
}

func (s *Server) tellTyping(ev ChatTypingEvent) {
	s.watch.mu.Lock()
	fs := s.watch.typing
	s.watch.mu.Unlock()
	for _, f := range fs {
		f(ev)
	}
}

// clusterTyping applies a typing notice from another node.
func (s *Server) clusterTyping(el *Element) {
	ev := ChatTypingEvent{State: el.AttrValue("state")}
	var err error
	if ev.UserID, err = strconv.ParseInt(el.AttrValue("user"), 10, 64); err != nil {
		return
	}
	if ev.ChatID, err = strconv.ParseInt(el.AttrValue("chat"), 10, 64); err != nil {
		return
	}
	for _, m := range strings.Split(el.AttrValue("members"), ",") {
		if id, err := strconv.ParseInt(m, 10, 64); err == nil {
			ev.Members = append(ev.Members, id)
		}
	}
	s.tellTyping(ev)
}

// presenceChanged tells the watchers what the user shows now, if it
// changed: the most present of the user's available sessions here and on
// other nodes.
func (s *Server) presenceChanged(userID int64) {
	s.watch.mu.Lock()
	n := len(s.watch.presence)
	s.watch.mu.Unlock()
	if n == 0 {
		return
	}
	ev := PresenceEvent{UserID: userID, Show: "offline"}
	consider := func(p *Element) {
		if p == nil {
			return
		}
		show := showOf(p)
		if rank(show) > rank(ev.Show) {
			ev.Show, ev.Status = show, p.ChildText(NSClient, "status")
		}
	}
	for _, t := range s.router.sessions(userID) {
		if t.available.Load() {
			p := t.presence.Load()
			if p == nil {
				p = NewElement(NSClient, "presence")
			}
			consider(p)
		}
	}
	if s.cl != nil {
		for _, rs := range s.cl.Sessions(userID) {
			if rs.Available {
				p := parseStanza(rs.Presence)
				if p == nil {
					p = NewElement(NSClient, "presence")
				}
				consider(p)
			}
		}
	}
	s.watch.mu.Lock()
	if s.watch.last == nil {
		s.watch.last = map[int64]PresenceEvent{}
	}
	if old, ok := s.watch.last[userID]; ok && old == ev || !ok && ev.Show == "offline" {
		s.watch.mu.Unlock()
		return
	}
	if ev.Show == "offline" {
		delete(s.watch.last, userID)
	} else {
		s.watch.last[userID] = ev
	}
	fs := s.watch.presence
	s.watch.mu.Unlock()
	for _, f := range fs {
		f(ev)
	}
}

// showOf maps an available presence's <show/> to what the company sees.
func showOf(p *Element) string {
	switch p.ChildText(NSClient, "show") {
	case "away", "xa":
		return "away"
	case "dnd":
		return "dnd"
	default:
		return "online"
	}
}

// rank orders shows: a user with a session online is online.
func rank(show string) int {
	switch show {
	case "online":
		return 3
	case "dnd":
		return 2
	case "away":
		return 1
	}
	return 0
}
