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
)

// A Notice is what a server-written system message is about.
type Notice struct {
	Type  string  `json:"type"`
	Actor int64   `json:"actor,omitempty"`
	Users []int64 `json:"users,omitempty"`
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
