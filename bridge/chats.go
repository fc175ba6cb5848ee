package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"vestnik/xmppcore"
	"vestnik/xmppcore/muc"
)

// The chat lifecycle in the browser: each command is one call of the chat
// service's operation as the signed-in user, whose rules decide (who may
// edit, add, remove); each change reaches every member's browser as a
// chat_changed event translated from the service's chat event.

// chatFrame is a chat as the browser gets it in chat commands and events.
type chatFrame struct {
	ID          int64         `json:"id"`
	JID         string        `json:"jid"`
	Title       string        `json:"title"`
	Description string        `json:"description"`
	Color       string        `json:"color"`
	Type        string        `json:"type"`
	Owner       int64         `json:"owner"`
	Avatar      string        `json:"avatar,omitempty"` // URL of the avatar image
	Members     int           `json:"members"`          // how many
	Member      bool          `json:"member"`           // whether the receiving user is one
	List        []memberFrame `json:"member_list,omitempty"`
}

// memberFrame is one member with their role (owner or member).
type memberFrame struct {
	User   int64  `json:"user"`
	Role   string `json:"role"`
	Joined int64  `json:"joined"` // unix ms
}

// RoomJID is a chat's room address (Link).
func (l *xmppLink) RoomJID(room string) string { return room + "@conference." + l.bareDomain() }

func avatarURL(c *muc.Chat) string {
	if c.AvatarType == "" {
		return ""
	}
	return fmt.Sprintf("/avatars/chat/%d?v=%d", c.ID, c.UpdatedAt.UnixMicro())
}

// chatFrameOf is a chat with its members as the service returned it, for
// the user me.
func chatFrameOf(link Link, me int64, c *muc.Chat, withList bool) chatFrame {
	f := chatFrame{ID: c.ID, JID: link.RoomJID(c.Room), Title: c.Title, Description: c.Description, Color: c.Color,
		Type: c.Type, Owner: c.OwnerID, Avatar: avatarURL(c), Members: len(c.Members), Member: c.IsMember(me)}
	if withList {
		f.List = make([]memberFrame, len(c.Members))
		for i, m := range c.Members {
			f.List[i] = memberFrame{User: m.UserID, Role: m.Role, Joined: m.JoinedAt.UnixMilli()}
		}
	}
	return f
}

// chatChanged translates a chat event into the browser's event, from the
// stanza alone (no database read per browser).
func (l *xmppLink) chatChanged(ev muc.ChatEvent) Frame {
	member := true
	if ev.Kind == muc.EventMemberRemoved {
		for _, u := range ev.Users {
			if u == l.userID {
				member = false
			}
		}
	}
	c := ev.Chat
	f := chatFrame{ID: c.ID, JID: l.RoomJID(c.Room), Title: c.Title, Description: c.Description, Color: c.Color,
		Type: c.Type, Owner: c.OwnerID, Avatar: avatarURL(&c), Members: ev.MemberCount, Member: member}
	users := ev.Users
	if users == nil {
		users = []int64{}
	}
	return Frame{"type": "chat_changed", "change": ev.Kind, "chat": f, "users": users, "by": ev.Actor}
}

// commandAnswer translates the room's answer to a command (/getChatId)
// into a command_answer event; nil for any other stanza.
func (l *xmppLink) commandAnswer(el *xmppcore.Element) Frame {
	v := el.Child(muc.NSVestnik, "chat")
	if v == nil || v.AttrValue("command") == "" {
		return nil
	}
	id, _ := strconv.ParseInt(v.AttrValue("id"), 10, 64)
	return Frame{"type": "command_answer", "command": v.AttrValue("command"), "chat": id, "chat_id": id,
		"text": el.ChildText(xmppcore.NSClient, "body")}
}

// Chats is the chat service (Link); nil without group chats.
func (l *xmppLink) Chats() ChatService { return l.x.post }

// lifecycleErr maps the chat service's refusals to bridge errors.
func lifecycleErr(err error) error {
	var ie *muc.InvalidError
	var ue *muc.UnknownUserError
	switch {
	case errors.As(err, &ie):
		return &cmdError{code: ie.Code, msg: ie.Message, field: ie.Field}
	case errors.As(err, &ue):
		return &cmdError{code: "unknown_user", msg: fmt.Sprintf("user %d does not exist or is not active", ue.UserID), field: ue.Field}
	case errors.Is(err, muc.ErrNotFound):
		return bad("not_found", "no such chat or member")
	case errors.Is(err, muc.ErrForbidden):
		return bad("forbidden", strings.TrimPrefix(err.Error(), muc.ErrForbidden.Error()+": "))
	case errors.Is(err, muc.ErrConflict):
		return bad("conflict", "it exists already")
	case errors.Is(err, muc.ErrRateLimited):
		return bad("rate_limited", strings.TrimPrefix(err.Error(), muc.ErrRateLimited.Error()+": "))
	}
	return err
}

// chatCommand serves the chat lifecycle commands (docs/bridge.md).
func (c *conn) chatCommand(ctx context.Context, r *request) (any, error) {
	if err := c.needLink(); err != nil {
		return nil, err
	}
	svc := c.link.Chats()
	if svc == nil {
		return nil, bad("unavailable", "group chats are not available on this server")
	}
	me := c.user.ID
	if r.Type != "chat_create" && r.Type != "chats_find" && r.Chat <= 0 {
		return nil, bad("bad_target", "chat must name a chat id")
	}
	var (
		ch  *muc.Chat
		err error
	)
	switch r.Type {
	case "chat_create":
		if r.Title == nil {
			return nil, &cmdError{code: "empty_title", msg: "title is required", field: "title"}
		}
		nc := muc.NewChat{Title: *r.Title, Members: r.Users}
		if r.Description != nil {
			nc.Description = *r.Description
		}
		if r.Color != nil {
			nc.Color = *r.Color
		}
		if r.ChatType != nil {
			nc.Type = *r.ChatType
		}
		if r.Avatar != nil {
			nc.Avatar = *r.Avatar
		}
		ch, err = svc.Create(ctx, me, nc)
	case "chat_edit":
		up := muc.Update{Title: r.Title, Description: r.Description, Color: r.Color, Type: r.ChatType, Avatar: r.Avatar, OwnerID: r.Owner}
		ch, err = svc.Update(ctx, me, r.Chat, up)
	case "chat_add":
		if len(r.Users) == 0 {
			return nil, &cmdError{code: "missing_users", msg: "give at least one user id", field: "users"}
		}
		var added []int64
		if added, err = svc.AddMembers(ctx, me, r.Chat, r.Users, r.HideHistory, r.SkipMessage); err == nil {
			if ch, err = svc.Get(ctx, me, r.Chat); err == nil {
				return map[string]any{"added": nonNil(added), "chat": chatFrameOf(c.link, me, ch, true)}, nil
			}
		}
	case "chat_join":
		if _, err = svc.AddMembers(ctx, me, r.Chat, []int64{me}, nil, false); err == nil {
			ch, err = svc.Get(ctx, me, r.Chat)
		}
	case "chat_remove", "chat_leave":
		user := r.User
		if r.Type == "chat_leave" || user == 0 {
			user = me
		}
		if err = svc.RemoveMember(ctx, me, r.Chat, user); err == nil {
			return map[string]any{}, nil
		}
	case "chat_info":
		ch, err = svc.Get(ctx, me, r.Chat)
	case "chats_find":
		text := strings.TrimSpace(r.Text)
		if len(text) > 4*muc.MaxTitle {
			return nil, bad("bad_query", "the search text is too long")
		}
		var list []muc.Chat
		if list, err = svc.FindChats(ctx, me, text, r.Limit); err == nil {
			out := make([]chatFrame, len(list))
			for i := range list {
				out[i] = chatFrameOf(c.link, me, &list[i], false)
			}
			return map[string]any{"chats": out}, nil
		}
	}
	if err != nil {
		return nil, lifecycleErr(err)
	}
	return map[string]any{"chat": chatFrameOf(c.link, me, ch, true)}, nil
}
