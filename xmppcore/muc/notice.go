package muc

import (
	"context"
	"strconv"
	"strings"

	"vestnik/xmppcore"
)

// NSNotice names the typed event a system message the server writes
// carries beside its English body: <notice xmlns='urn:vestnik:notice:0'
// type='added' actor='7' users='12 13'/>. Jabber clients show the body;
// the web client renders the event in the reader's language.
const NSNotice = "urn:vestnik:notice:0"

// Notice types.
const (
	NoticeJoined  = "joined"  // users joined (by themselves, or added by an integration)
	NoticeAdded   = "added"   // actor added users
	NoticeLeft    = "left"    // users left
	NoticeRemoved = "removed" // actor removed users
	NoticeClosed  = "closed"  // actor (0: the integration) closed the chat
	NoticeCreated = "created" // actor (0: the integration) created the chat, titled Title
	NoticeRenamed = "renamed" // actor renamed the chat to Title
	NoticeChanged = "changed" // actor changed Fields: "description", "color", "avatar"
)

// nativeNotices are the notices whose event XEP-0045 already tells a
// room's occupants in its own form, so the room does not send them the
// notice's body as well (the archive, MAM and the web client keep it):
// membership (an affiliation change: the occupant's presence, or a
// message with the item to the owner, §9.3–9.4; the presence of who
// enters or leaves), the title and the other settings (status 104,
// §10.2), the description (the room's subject, §8.1) and the end of the
// chat (<destroy/>, §10.9). A chat's creation and the system messages an
// integration posts have no such form and reach the occupants.
var nativeNotices = map[string]bool{
	NoticeJoined: true, NoticeAdded: true, NoticeLeft: true, NoticeRemoved: true,
	NoticeRenamed: true, NoticeChanged: true, NoticeClosed: true,
}

// nativeNotice reports whether msg, a room message, carries a notice
// XMPP already conveys (nativeNotices).
func nativeNotice(msg *xmppcore.Element) bool {
	v := child(msg, NSVestnik, "chat")
	if v == nil || attr(v, "system") != "true" {
		return false
	}
	n, ok := ParseNotice(msg.Children)
	return ok && nativeNotices[n.Type]
}

// A Notice is what a server-written system message is about.
type Notice struct {
	Type   string   `json:"type"`
	Actor  int64    `json:"actor,omitempty"`
	Users  []int64  `json:"users,omitempty"`
	Title  string   `json:"title,omitempty"`
	Fields []string `json:"fields,omitempty"`
}

func (n Notice) element() *xmppcore.Element {
	e := el(NSNotice, "notice", "type", n.Type)
	if n.Actor != 0 {
		setAttr(e, "actor", strconv.FormatInt(n.Actor, 10))
	}
	if len(n.Users) > 0 {
		ids := make([]string, len(n.Users))
		for i, u := range n.Users {
			ids[i] = strconv.FormatInt(u, 10)
		}
		setAttr(e, "users", strings.Join(ids, " "))
	}
	if n.Title != "" {
		setAttr(e, "title", n.Title)
	}
	if len(n.Fields) > 0 {
		setAttr(e, "fields", strings.Join(n.Fields, " "))
	}
	return e
}

// ParseNotice reads the notice among a system message's elements.
func ParseNotice(kids []*xmppcore.Element) (Notice, bool) {
	for _, k := range kids {
		if k.Name.Space != NSNotice || k.Name.Local != "notice" {
			continue
		}
		n := Notice{Type: k.AttrValue("type")}
		n.Actor, _ = strconv.ParseInt(k.AttrValue("actor"), 10, 64)
		for _, f := range strings.Fields(k.AttrValue("users")) {
			if id, err := strconv.ParseInt(f, 10, 64); err == nil {
				n.Users = append(n.Users, id)
			}
		}
		n.Title = k.AttrValue("title")
		n.Fields = strings.Fields(k.AttrValue("fields"))
		return n, n.Type != ""
	}
	return Notice{}, false
}

// postNotice archives and fans out a system message the server writes:
// text for Jabber clients, n for clients that render it themselves.
func (s *Service) postNotice(ctx context.Context, chatID int64, text string, n Notice) (int64, error) {
	c, err := s.store.forPost(ctx, chatID, 0)
	if err != nil {
		return 0, err
	}
	return s.post(ctx, c, 0, "", "", text, n.element().String(), true, 0)
}

// postAdded is the system message for members added by actor.
func (s *Service) postAdded(ctx context.Context, chatID, actor int64, added []int64) (int64, error) {
	names := make([]string, 0, len(added))
	for _, u := range added {
		names = append(names, s.displayName(ctx, u))
	}
	if actor != 0 && (len(added) > 1 || added[0] != actor) {
		return s.postNotice(ctx, chatID, s.displayName(ctx, actor)+" added "+strings.Join(names, ", "),
			Notice{Type: NoticeAdded, Actor: actor, Users: added})
	}
	return s.postNotice(ctx, chatID, strings.Join(names, ", ")+" joined the chat", Notice{Type: NoticeJoined, Users: added})
}

// postRemoved is the system message for a member removed by actor (or
// leaving, when actor is 0 or the member).
func (s *Service) postRemoved(ctx context.Context, chatID, actor, userID int64) (int64, error) {
	if actor != 0 && actor != userID {
		return s.postNotice(ctx, chatID, s.displayName(ctx, actor)+" removed "+s.displayName(ctx, userID),
			Notice{Type: NoticeRemoved, Actor: actor, Users: []int64{userID}})
	}
	return s.postNotice(ctx, chatID, s.displayName(ctx, userID)+" left the chat", Notice{Type: NoticeLeft, Users: []int64{userID}})
}

// postCreated is the system message that opens a new chat.
func (s *Service) postCreated(ctx context.Context, c *Chat, actor int64) (int64, error) {
	text := "The chat “" + c.Title + "” was created"
	if actor != 0 {
		text = s.displayName(ctx, actor) + " created the chat “" + c.Title + "”"
	}
	return s.postNotice(ctx, c.ID, text, Notice{Type: NoticeCreated, Actor: actor, Title: c.Title})
}

// postEdited is the system messages for an edit: the new title, and which
// of the description, color and avatar changed (a change of type or owner
// has notices of its own, or none).
func (s *Service) postEdited(ctx context.Context, old, nc *Chat, actor int64, avatarChanged bool) error {
	who := "The chat"
	if actor != 0 {
		who = s.displayName(ctx, actor)
	}
	if nc.Title != old.Title {
		text := who + " renamed the chat to “" + nc.Title + "”"
		if actor == 0 {
			text = "The chat was renamed to “" + nc.Title + "”"
		}
		if _, err := s.postNotice(ctx, nc.ID, text, Notice{Type: NoticeRenamed, Actor: actor, Title: nc.Title}); err != nil {
			return err
		}
	}
	var fields []string
	if nc.Description != old.Description {
		fields = append(fields, "description")
	}
	if nc.Color != old.Color {
		fields = append(fields, "color")
	}
	if avatarChanged {
		fields = append(fields, "avatar")
	}
	if len(fields) == 0 {
		return nil
	}
	text := who + " changed the chat's " + strings.Join(fields, ", ")
	if actor == 0 {
		text = "The chat's " + strings.Join(fields, ", ") + " changed"
	}
	_, err := s.postNotice(ctx, nc.ID, text, Notice{Type: NoticeChanged, Actor: actor, Fields: fields})
	return err
}
