package muc

import (
	"context"
	"errors"
	"strings"

	"mellium.im/xmpp/jid"

	"vestnik/roster"
	"vestnik/xmppcore"
)

// Ad-hoc commands (XEP-0050) on the MUC service for the server's admins
// (Options.Admins), in the manner of XEP-0133: destroying rooms. Others
// are refused (forbidden) and see no commands. As the server's own
// commands, each is one step: the form, then its submission, which holds
// everything (a sessionid is only echoed).

// CmdDestroyRooms destroys rooms. The node is Prosody's
// (mod_muc_admin's), the identifier admin tools and scripts know.
const CmdDestroyRooms = "http://prosody.im/protocol/muc#destroy"

// MaxDestroyRooms bounds how many rooms one command destroys.
const MaxDestroyRooms = 100

// isAdmin reports whether u is one of the server's admins.
func (s *Service) isAdmin(u *roster.User) bool {
	for _, a := range s.opts.Admins {
		if strings.EqualFold(a, u.Login) {
			return true
		}
	}
	return false
}

// commandsDisco answers disco#info and disco#items on the commands node
// and on the command's node of the service (XEP-0050 §2.2, §2.3); false
// when the request is none of them.
func (s *Service) commandsDisco(ctx context.Context, u *roster.User, iq, payload *xmppcore.Element) bool {
	node := attr(payload, "node")
	items := payload.Name.Space == NSDiscoItems
	if attr(iq, "type") != "get" || (!items && payload.Name.Space != NSDiscoInfo) {
		return false
	}
	switch {
	case node == xmppcore.NSCommands && items:
		q := el(NSDiscoItems, "query", "node", node)
		if s.isAdmin(u) {
			add(q, el(NSDiscoItems, "item", "jid", s.host, "node", CmdDestroyRooms, "name", "Destroy rooms"))
		}
		s.router.Route(ctx, iqResult(iq, q))
	case node == xmppcore.NSCommands:
		s.router.Route(ctx, iqResult(iq, add(el(NSDiscoInfo, "query", "node", node),
			el(NSDiscoInfo, "identity", "category", "automation", "type", "command-list", "name", "Commands"))))
	case node == CmdDestroyRooms && s.isAdmin(u) && items:
		s.router.Route(ctx, iqResult(iq, el(NSDiscoItems, "query", "node", node)))
	case node == CmdDestroyRooms && s.isAdmin(u):
		s.router.Route(ctx, iqResult(iq, add(el(NSDiscoInfo, "query", "node", node),
			el(NSDiscoInfo, "identity", "category", "automation", "type", "command-node", "name", "Destroy rooms"),
			el(NSDiscoInfo, "feature", "var", xmppcore.NSCommands),
			el(NSDiscoInfo, "feature", "var", NSData))))
	default:
		return false
	}
	return true
}

// commandIQ executes an ad-hoc command addressed to the service.
func (s *Service) commandIQ(ctx context.Context, u *roster.User, iq, cmd *xmppcore.Element) {
	if attr(iq, "type") != "set" {
		s.reply(ctx, iq, "modify", "bad-request", "commands are executed with an iq set")
		return
	}
	if attr(cmd, "node") != CmdDestroyRooms {
		s.reply(ctx, iq, "cancel", "item-not-found", "")
		return
	}
	if !s.isAdmin(u) {
		s.reply(ctx, iq, "auth", "forbidden", "only the server's admins run this command")
		return
	}
	sid := attr(cmd, "sessionid")
	if sid == "" {
		sid = randomID()
	}
	answer := func(status string, children ...*xmppcore.Element) {
		c := el(xmppcore.NSCommands, "command", "node", CmdDestroyRooms, "sessionid", sid, "status", status)
		s.router.Route(ctx, iqResult(iq, add(c, children...)))
	}
	action := attr(cmd, "action")
	if action == "cancel" {
		answer("canceled")
		return
	}
	x := child(cmd, NSData, "x")
	if x == nil {
		if action != "" && action != "execute" {
			s.reply(ctx, iq, "modify", "bad-request", "submit the command's form")
			return
		}
		answer("executing", add(el(xmppcore.NSCommands, "actions", "execute", "complete"), el(xmppcore.NSCommands, "complete")),
			s.destroyForm())
		return
	}
	// A form without a type is taken as submitted (Prosody does; scripts
	// send it so).
	if t := attr(x, "type"); t != "" && t != "submit" {
		s.reply(ctx, iq, "modify", "bad-request", "the form must be of type submit")
		return
	}
	chats, why, ok := s.roomsToDestroy(ctx, fieldValues(x, "rooms"))
	if !ok {
		s.reply(ctx, iq, "modify", "not-acceptable", why)
		return
	}
	var done []string
	for _, c := range chats {
		// The owner's <destroy/> (XEP-0045 §10.9): the same core
		// operation, on behalf of the server (actor 0).
		if err := s.Destroy(ctx, 0, c.ID, "", ""); err != nil {
			s.log.Error("destroy room by command", "chat", c.ID, "err", err)
			break
		}
		done = append(done, s.RoomJID(c))
	}
	if len(done) < len(chats) {
		// What was destroyed stays destroyed; the admin is told which.
		n := text(xmppcore.NSCommands, "note", "Destroying the rooms failed after these:\n"+strings.Join(done, "\n"))
		setAttr(n, "type", "error")
		answer("completed", n)
		return
	}
	n := text(xmppcore.NSCommands, "note", "The following rooms were destroyed:\n"+strings.Join(done, "\n"))
	setAttr(n, "type", "info")
	answer("completed", n)
}

// roomsToDestroy resolves the submitted room JIDs, all or nothing: a JID
// that is not a room of this service refuses the whole command, with a
// text naming it.
func (s *Service) roomsToDestroy(ctx context.Context, rooms []string) ([]*Chat, string, bool) {
	if len(rooms) == 0 {
		return nil, "name at least one room", false
	}
	if len(rooms) > MaxDestroyRooms {
		return nil, "too many rooms at once", false
	}
	var chats []*Chat
	seen := map[int64]bool{}
	for _, r := range rooms {
		j, err := jid.Parse(strings.TrimSpace(r))
		if err != nil || j.Domainpart() != s.host || j.Localpart() == "" || j.Resourcepart() != "" {
			return nil, "not a room of this service: " + r, false
		}
		c, err := s.store.ByRoom(ctx, j.Localpart())
		if errors.Is(err, ErrNotFound) {
			return nil, "no such room: " + r, false
		}
		if err != nil {
			s.log.Error("room for a command", "room", r, "err", err)
			return nil, "the room could not be read: " + r, false
		}
		if !seen[c.ID] {
			seen[c.ID] = true
			chats = append(chats, c)
		}
	}
	return chats, "", true
}

// fieldValues is every value of the form field named name.
func fieldValues(x *xmppcore.Element, name string) []string {
	var out []string
	for _, f := range x.Children {
		if f.Name.Local != "field" || attr(f, "var") != name {
			continue
		}
		for _, v := range f.Children {
			if v.Name.Local == "value" {
				out = append(out, v.Text)
			}
		}
	}
	return out
}

// destroyForm is the command's form: the rooms to destroy.
func (s *Service) destroyForm() *xmppcore.Element {
	x := el(NSData, "x", "type", "form")
	add(x, text(NSData, "title", "Destroy rooms"),
		text(NSData, "instructions", "The rooms' occupants leave, members are removed and each chat is closed; the history stays in the archive."))
	f := el(NSData, "field", "type", "jid-multi", "var", "rooms", "label", "Rooms to destroy")
	add(f, el(NSData, "required"))
	return add(x, f)
}
