package muc

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"

	"mellium.im/xmpp/jid"

	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
)

// visibleRoom returns the room to names if viewer may see it; otherwise
// it answers iq with the error (a room one may not see does not exist for
// them) and reports false.
func (s *Service) visibleRoom(ctx context.Context, iq *xmppcore.Element, to jid.JID, viewer int64) (*Chat, bool) {
	c, err := s.store.ByRoom(ctx, to.Localpart())
	if err == nil && !canSee(c, viewer) {
		err = ErrNotFound
	}
	if err != nil {
		s.replyErr(ctx, iq, err)
		return nil, false
	}
	return c, true
}

// roomArchive answers a MAM query on a room's archive (XEP-0313 §6): the
// archive package does the query, with the member's windows applied.
func (s *Service) roomArchive(ctx context.Context, u *roster.User, from, to jid.JID, iq, payload *xmppcore.Element) {
	c, ok := s.visibleRoom(ctx, iq, to, u.ID)
	if !ok {
		return
	}
	// Who may read an open chat without being a member (a reader) finds
	// its archive empty: history is the members'.
	resp, err := s.archive.HandleQuery(ctx, s.dir, mam.Request{Viewer: u.ID, ChatID: c.ID, ArchiveJID: s.RoomJID(c),
		To: from.String(), Query: payload, Get: attr(iq, "type") == "get", Reader: c.Type == TypeOpen})
	var me *mam.Error
	if errors.As(err, &me) {
		s.reply(ctx, iq, me.Type, me.Condition, me.Text)
		return
	}
	if err != nil {
		s.replyErr(ctx, iq, err)
		return
	}
	for _, r := range resp.Results {
		s.router.Route(ctx, r)
	}
	s.router.Route(ctx, iqResult(iq, resp.Fin))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func randomID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// handleIQ serves disco, the owner's configuration form and the admin
// affiliation lists.
func (s *Service) handleIQ(ctx context.Context, u *roster.User, from, to jid.JID, iq *xmppcore.Element) {
	typ := attr(iq, "type")
	if typ == "result" || typ == "error" {
		return
	}
	var payload *xmppcore.Element
	if len(iq.Children) > 0 {
		payload = iq.Children[0]
	}
	if payload == nil {
		s.reply(ctx, iq, "modify", "bad-request", "")
		return
	}
	if to.Resourcepart() != "" {
		s.occupantIQ(ctx, from, to, iq, payload)
		return
	}
	ns := payload.Name.Space
	if to.Localpart() == "" && s.commandsDisco(ctx, u, iq, payload) { // adhoc.go
		return
	}
	switch {
	case ns == NSDiscoInfo && typ == "get":
		s.discoInfo(ctx, u, to, iq)
	case ns == NSDiscoItems && typ == "get":
		s.discoItems(ctx, u, to, iq)
	case ns == NSMUCOwner && to.Localpart() != "":
		s.ownerIQ(ctx, u, to, iq, payload)
	case ns == NSMUCAdmin && to.Localpart() != "":
		s.adminIQ(ctx, u, to, iq, payload)
	case ns == mam.NS && to.Localpart() != "":
		s.roomArchive(ctx, u, from, to, iq, payload)
	case ns == NSRegister && to.Localpart() != "":
		s.registerIQ(ctx, u, to, iq, payload)
	case ns == NSVCard && typ == "get" && to.Localpart() != "":
		s.roomVCard(ctx, u, to, iq)
	case ns == "urn:xmpp:ping" && typ == "get":
		s.router.Route(ctx, iqResult(iq, nil))
	case ns == xmppcore.NSCommands && to.Localpart() == "":
		s.commandIQ(ctx, u, iq, payload) // adhoc.go
	default:
		s.reply(ctx, iq, "cancel", "service-unavailable", "")
	}
}

func (s *Service) discoInfo(ctx context.Context, u *roster.User, to jid.JID, iq *xmppcore.Element) {
	q := el(NSDiscoInfo, "query")
	if node := attr(iq.Children[0], "node"); node == "x-roomuser-item" && to.Localpart() != "" {
		// The nick the user reserved in the room (XEP-0045 §7.12).
		c, ok := s.visibleRoom(ctx, iq, to, u.ID)
		if !ok {
			return
		}
		setAttr(q, "node", node)
		if m := c.Member(u.ID); m != nil && m.Nick != "" {
			add(q, el(NSDiscoInfo, "identity", "category", "conference", "type", "text", "name", m.Nick))
		}
		s.router.Route(ctx, iqResult(iq, q))
		return
	} else if node != "" {
		s.reply(ctx, iq, "cancel", "item-not-found", "")
		return
	}
	if to.Localpart() == "" {
		add(q, el(NSDiscoInfo, "identity", "category", "conference", "type", "text", "name", "Chats"))
		for _, f := range []string{NSDiscoInfo, NSDiscoItems, NSMUC, NSConference, "urn:xmpp:mam:2", NSStanzaID, xmppcore.NSCommands} {
			add(q, el(NSDiscoInfo, "feature", "var", f))
		}
		s.router.Route(ctx, iqResult(iq, q))
		return
	}
	c, ok := s.visibleRoom(ctx, iq, to, u.ID)
	if !ok {
		return
	}
	add(q, el(NSDiscoInfo, "identity", "category", "conference", "type", "text", "name", c.Title))
	secured := "muc_unsecured"
	if c.Password != "" {
		secured = "muc_passwordprotected"
	}
	anonymity := "muc_nonanonymous"
	if c.Whois == WhoisModerators {
		anonymity = "muc_semianonymous"
	}
	moderation := "muc_unmoderated"
	if c.Moderated {
		moderation = "muc_moderated"
	}
	features := []string{NSMUC, "muc_persistent", anonymity, moderation, secured,
		"urn:xmpp:mam:2", NSStanzaID, NSDiscoInfo, NSVCard, xmppcore.NSRetract, NSOccupantID}
	if c.Type == TypeOpen {
		features = append(features, "muc_open", "muc_public")
	} else {
		features = append(features, "muc_membersonly", "muc_hidden")
	}
	for _, f := range features {
		add(q, el(NSDiscoInfo, "feature", "var", f))
	}
	add(q, reactionRestrictions())
	add(q, dataForm("result", NSRoomInfo,
		field("text-single", "muc#roominfo_description", "Description", c.Description),
		field("text-single", "muc#roominfo_subject", "Subject", c.Description),
		field("text-single", "muc#roominfo_occupants", "Number of occupants", strconv.Itoa(len(s.Occupants(c.ID)))),
		field("text-single", "muc#roomconfig_roomname", "Name", c.Title),
		field("text-single", "x-vestnik#chat_id", "Chat id", itoa(c.ID)),
		field("text-single", "x-vestnik#color", "Color", c.Color),
	))
	if h := s.avatarHash(ctx, c); h != "" {
		add(q.Children[len(q.Children)-1], field("text-single", "muc#roominfo_avatarhash", "Avatar hash", h))
	}
	s.router.Route(ctx, iqResult(iq, q))
}

// roomVCard answers vcard-temp for a room (XEP-0486 room avatars): the
// title, the description and the avatar image.
func (s *Service) roomVCard(ctx context.Context, u *roster.User, to jid.JID, iq *xmppcore.Element) {
	c, ok := s.visibleRoom(ctx, iq, to, u.ID)
	if !ok {
		return
	}
	v := add(el(NSVCard, "vCard"), text(NSVCard, "FN", c.Title))
	if c.Description != "" {
		add(v, text(NSVCard, "DESC", c.Description))
	}
	if c.AvatarType != "" {
		img, typ, err := s.store.Avatar(ctx, c.ID)
		if err == nil {
			add(v, add(el(NSVCard, "PHOTO"), text(NSVCard, "TYPE", typ), text(NSVCard, "BINVAL", base64.StdEncoding.EncodeToString(img))))
		}
	}
	s.router.Route(ctx, iqResult(iq, v))
}

// avatarHash is the SHA-1 of the chat's avatar (XEP-0153/0486), "" when none.
func (s *Service) avatarHash(ctx context.Context, c *Chat) string {
	if c.AvatarType == "" {
		return ""
	}
	img, _, err := s.store.Avatar(ctx, c.ID)
	if err != nil {
		return ""
	}
	sum := sha1.Sum(img)
	return hex.EncodeToString(sum[:])
}

func (s *Service) discoItems(ctx context.Context, u *roster.User, to jid.JID, iq *xmppcore.Element) {
	q := el(NSDiscoItems, "query")
	if to.Localpart() != "" {
		// A room's items are its occupants, shown only to occupants and
		// members; we list none (non-anonymous presence carries them).
		s.router.Route(ctx, iqResult(iq, q))
		return
	}
	chats, err := s.store.OpenChats(ctx)
	if err != nil {
		s.replyErr(ctx, iq, err)
		return
	}
	mine, err := s.store.ChatsOf(ctx, u.ID)
	if err != nil {
		s.replyErr(ctx, iq, err)
		return
	}
	seen := make(map[int64]bool)
	for _, list := range [][]Chat{chats, mine} {
		for i := range list {
			c := &list[i]
			if seen[c.ID] {
				continue
			}
			seen[c.ID] = true
			add(q, el(NSDiscoItems, "item", "jid", s.RoomJID(c), "name", c.Title))
		}
	}
	s.router.Route(ctx, iqResult(iq, q))
}

// ownerIQ: the room configuration form (get) and its submission (set).
// actorOf is the policy actor for a user in the MUC protocol: server
// admins act as the integration (0), which may do what an owner may.
func (s *Service) actorOf(u *roster.User) int64 {
	for _, a := range s.opts.Admins {
		if a == u.Login {
			return 0
		}
	}
	return u.ID
}

func (s *Service) ownerIQ(ctx context.Context, u *roster.User, to jid.JID, iq, payload *xmppcore.Element) {
	actor := s.actorOf(u)
	c, ok := s.visibleRoom(ctx, iq, to, actor)
	if !ok {
		return
	}
	if err := canEdit(c, actor); err != nil {
		s.replyErr(ctx, iq, err)
		return
	}
	switch attr(iq, "type") {
	case "get":
		members := "0"
		if c.Type == TypeClosed {
			members = "1"
		}
		public := "1"
		if c.Type == TypeClosed {
			public = "0"
		}
		protected := "0"
		if c.Password != "" {
			protected = "1"
		}
		moderated := "0"
		if c.Moderated {
			moderated = "1"
		}
		form := dataForm("form", NSRoomConfig,
			field("text-single", "muc#roomconfig_roomname", "Title", c.Title),
			field("text-multi", "muc#roomconfig_roomdesc", "Description", c.Description),
			field("boolean", "muc#roomconfig_membersonly", "Closed chat: members only, invitation by a member", members),
			field("boolean", "muc#roomconfig_publicroom", "Listed in the room directory", public),
			field("boolean", "muc#roomconfig_persistentroom", "Persistent", "1"),
			field("boolean", "muc#roomconfig_moderatedroom", "Moderated: who is not a member enters without voice", moderated),
			field("boolean", "muc#roomconfig_passwordprotectedroom", "Password for those who are not members yet", protected),
			field("text-private", "muc#roomconfig_roomsecret", "Password", c.Password),
		)
		// Occupants' presence is broadcast whatever their role (a
		// company chat); "none" adds the absent members with a
		// reserved nick.
		pb := field("list-multi", "muc#roomconfig_presencebroadcast", "Roles whose presence is broadcast", "moderator")
		add(pb, text(NSData, "value", "participant"), text(NSData, "value", "visitor"))
		if c.ShowOffline {
			add(pb, text(NSData, "value", "none"))
		}
		for _, role := range []string{"moderator", "participant", "visitor", "none"} {
			add(pb, add(el(NSData, "option", "label", role), text(NSData, "value", role)))
		}
		add(form, pb)
		whois := field("list-single", "muc#roomconfig_whois", "Who may discover real JIDs", c.Whois)
		for _, w := range []string{WhoisModerators, WhoisAnyone} {
			add(whois, add(el(NSData, "option", "label", w), text(NSData, "value", w)))
		}
		add(form, whois)
		colors := field("list-single", "x-vestnik#color", "Color", c.Color)
		for _, col := range Colors {
			add(colors, add(el(NSData, "option", "label", col), text(NSData, "value", col)))
		}
		add(form, colors)
		s.router.Route(ctx, iqResult(iq, add(el(NSMUCOwner, "query"), form)))
	case "set":
		if d := child(payload, NSMUCOwner, "destroy"); d != nil {
			if err := s.Destroy(ctx, actor, c.ID, childText(d, NSMUCOwner, "reason"), attr(d, "jid")); err != nil {
				s.replyErr(ctx, iq, err)
				return
			}
			s.router.Route(ctx, iqResult(iq, nil))
			return
		}
		x := child(payload, NSData, "x")
		if x == nil || attr(x, "type") == "cancel" {
			s.router.Route(ctx, iqResult(iq, nil))
			return
		}
		vals := formValues(x)
		var up Update
		// A room created by joining is locked until its owner submits
		// the first form (XEP-0045 §10.1): the default configuration
		// (an instant room, or a form that does not say) is an open
		// chat, as Prosody and ejabberd make a public room.
		// Such a room shows real JIDs to its owner only, unless the form
		// says anyone (muc#roomconfig_whois; XEP-0045's semi-anonymous
		// default, as Prosody and ejabberd have it); chats made in the web
		// client or over REST are non-anonymous.
		if s.unlock(c.ID) {
			if _, ok := vals["muc#roomconfig_membersonly"]; !ok {
				if _, ok := vals["muc#roomconfig_publicroom"]; !ok {
					vals["muc#roomconfig_membersonly"] = "0"
				}
			}
			if _, ok := vals["muc#roomconfig_whois"]; !ok {
				vals["muc#roomconfig_whois"] = WhoisModerators
			}
		}
		if v, ok := vals["muc#roomconfig_whois"]; ok && (v == WhoisAnyone || v == WhoisModerators) {
			up.Whois = &v
		}
		if v, ok := vals["muc#roomconfig_moderatedroom"]; ok {
			m := formTrue(v)
			up.Moderated = &m
		}
		if v, ok := vals["muc#roomconfig_roomname"]; ok {
			up.Title = &v
		}
		if f := formField(x, "muc#roomconfig_roomdesc"); f != nil {
			d := multiText(f)
			up.Description = &d
		}
		// Open (any employee finds and joins it) unless the form says
		// members only or not listed; either field alone decides.
		mo, hasMO := vals["muc#roomconfig_membersonly"]
		pub, hasPub := vals["muc#roomconfig_publicroom"]
		switch {
		case hasMO && formTrue(mo), hasPub && !formTrue(pub):
			t := TypeClosed
			up.Type = &t
		case hasMO || hasPub:
			t := TypeOpen
			up.Type = &t
		}
		if v, ok := vals["x-vestnik#color"]; ok {
			up.Color = &v
		}
		if v, ok := vals["muc#roomconfig_roomsecret"]; ok {
			up.Password = &v
		}
		if f := formField(x, "muc#roomconfig_presencebroadcast"); f != nil {
			show := false
			for _, v := range f.Children {
				show = show || v.Name.Local == "value" && v.Text == "none"
			}
			up.ShowOffline = &show
		}
		if v, ok := vals["muc#roomconfig_passwordprotectedroom"]; ok && !formTrue(v) {
			none := ""
			up.Password = &none
		}
		// The service tells the occupants that the configuration
		// changed (104) after this answer; a room is always
		// non-anonymous here, which a whois=anyone request confirms
		// (104 with 172).
		ctx, flush := deferBookmarks(ctx)
		whois := vals["muc#roomconfig_whois"] == "anyone"
		if whois {
			ctx = context.WithValue(ctx, extraStatusKey{}, "172")
		}
		nc, err := s.Update(ctx, actor, c.ID, up)
		if err != nil {
			s.replyErr(ctx, iq, err)
			return
		}
		s.router.Route(ctx, iqResult(iq, nil))
		flush()
		changed := nc.Title != c.Title || nc.Description != c.Description || nc.Type != c.Type || nc.Color != c.Color
		if !changed && (whois || nc.Password != c.Password || nc.ShowOffline != c.ShowOffline || nc.Whois != c.Whois || nc.Moderated != c.Moderated) {
			s.roomNotice(ctx, nc, "104")
		}
	}
}

// formTrue reads a boolean form value.
func formTrue(v string) bool { return v == "1" || v == "true" }

func formField(x *xmppcore.Element, name string) *xmppcore.Element {
	for _, f := range x.Children {
		if f.Name.Local == "field" && attr(f, "var") == name {
			return f
		}
	}
	return nil
}

// multiText joins a text-multi field's values with newlines.
func multiText(f *xmppcore.Element) string {
	var out string
	first := true
	for _, v := range f.Children {
		if v.Name.Local != "value" {
			continue
		}
		if !first {
			out += "\n"
		}
		out += v.Text
		first = false
	}
	return out
}

// adminIQ: affiliation lists (get) and changes (set): affiliation member
// adds a member, none or outcast removes one (the owner, or a member
// removing themselves).
func (s *Service) adminIQ(ctx context.Context, u *roster.User, to jid.JID, iq, payload *xmppcore.Element) {
	actor := s.actorOf(u)
	c, ok := s.visibleRoom(ctx, iq, to, actor)
	if !ok {
		return
	}
	switch attr(iq, "type") {
	case "get":
		want := ""
		if it := child(payload, NSMUCAdmin, "item"); it != nil {
			want = attr(it, "affiliation")
		}
		if actor != 0 && !c.IsMember(u.ID) {
			s.reply(ctx, iq, "auth", "forbidden", "")
			return
		}
		q := el(NSMUCAdmin, "query")
		if want == "outcast" {
			outs, err := s.store.Outcasts(ctx, c.ID)
			if err != nil {
				s.replyErr(ctx, iq, err)
				return
			}
			for _, o := range outs {
				if ou, err := s.users.UserByID(ctx, o.UserID); err == nil {
					it := el(NSMUCAdmin, "item", "affiliation", "outcast", "jid", s.userJID(ou))
					if o.Reason != "" {
						add(it, text(NSMUCAdmin, "reason", o.Reason))
					}
					add(q, it)
				}
			}
		}
		for _, m := range c.Members {
			aff := "member"
			if m.UserID == c.OwnerID {
				aff = "owner"
			}
			if want != "" && want != aff {
				continue
			}
			mu, err := s.users.UserByID(ctx, m.UserID)
			if err != nil {
				continue
			}
			it := el(NSMUCAdmin, "item", "affiliation", aff, "jid", s.userJID(mu))
			if m.Nick != "" {
				setAttr(it, "nick", m.Nick)
			}
			add(q, it)
		}
		s.router.Route(ctx, iqResult(iq, q))
	case "set":
		// System messages about added and removed members follow the
		// IQ result.
		var added, removed []int64
		defer func() {
			if len(added) > 0 {
				if _, err := s.postAdded(ctx, c.ID, u.ID, added); err != nil {
					s.log.Error("muc added message", "err", err)
				}
			}
			for _, id := range removed {
				if _, err := s.postRemoved(ctx, c.ID, u.ID, id); err != nil {
					s.log.Error("muc removed message", "err", err)
				}
			}
		}()
		var err error
		for _, it := range payload.Children {
			if it.Name.Local != "item" {
				continue
			}
			aff := attr(it, "affiliation")
			if role := attr(it, "role"); role != "" && aff == "" {
				// Kick and voice (XEP-0045 §8.2–8.4), by nick.
				switch role {
				case "none":
					err = s.Kick(ctx, actor, c, attr(it, "nick"), childText(it, NSMUCAdmin, "reason"))
				case "participant", "visitor":
					err = s.SetVoice(ctx, actor, c, attr(it, "nick"), role == "participant")
				default:
					s.reply(ctx, iq, "cancel", "not-allowed", "the owner is the room's only moderator")
					return
				}
				if errors.Is(err, ErrNotFound) {
					s.reply(ctx, iq, "cancel", "item-not-found", "no such occupant")
					return
				}
				if err != nil {
					s.replyErr(ctx, iq, err)
					return
				}
				continue
			}
			var target *roster.User
			if j := attr(it, "jid"); j != "" {
				tj, err := jid.Parse(j)
				if err == nil {
					target, err = s.userOf(ctx, tj.Bare())
				}
				if err != nil {
					s.reply(ctx, iq, "cancel", "item-not-found", "no such user")
					return
				}
			} else if n := attr(it, "nick"); n != "" {
				id := s.occupantByNick(c.ID, n)
				if id == 0 {
					s.reply(ctx, iq, "cancel", "item-not-found", "no such occupant")
					return
				}
				if target, err = s.users.UserByID(ctx, id); err != nil {
					s.replyErr(ctx, iq, err)
					return
				}
			} else {
				s.reply(ctx, iq, "modify", "bad-request", "an item needs a jid or a nick")
				return
			}
			switch aff {
			case "member", "owner":
				// Member: added (or confirmed); owner: only the owner
				// themselves (the owner is changed in the room
				// configuration). Either may reserve a nick; the
				// affiliation is announced even when it did not change.
				if aff == "owner" && target.ID != c.OwnerID {
					s.reply(ctx, iq, "cancel", "not-allowed", "the owner is changed in the room configuration")
					return
				}
				var now []int64
				now, err = s.setMember(ctx, actor, u.ID, c, target.ID, attr(it, "nick"))
				added = append(added, now...)
			case "none":
				if err = s.removeMember(ctx, actor, c.ID, target.ID); err == nil {
					removed = append(removed, target.ID)
				}
			case "outcast":
				wasMember := c.IsMember(target.ID)
				if err = s.Ban(ctx, actor, c.ID, target.ID, childText(it, NSMUCAdmin, "reason")); err == nil && wasMember {
					removed = append(removed, target.ID)
				}
			default:
				s.reply(ctx, iq, "cancel", "not-allowed", "the owner is changed in the room configuration; member, none and outcast affiliations can be set")
				return
			}
			if err != nil {
				s.replyErr(ctx, iq, err)
				return
			}
		}
		s.router.Route(ctx, iqResult(iq, nil))
	}
}

// setMember makes target a member on behalf of actor (the policy actor;
// by is the user acting, for the announcement), reserving nick for them
// when given (an occupant of someone else under that nick is kicked:
// status 307). It returns the users added. The new (or unchanged)
// affiliation is announced either way.
func (s *Service) setMember(ctx context.Context, actor, by int64, c *Chat, target int64, nick string) ([]int64, error) {
	if err := canEdit(c, actor); err != nil {
		// Only the owner reserves nicks and re-announces members;
		// adding members follows canAdd (AddMembers).
		if nick != "" {
			return nil, err
		}
		if c.IsMember(target) {
			return nil, nil
		}
	}
	if nick != "" {
		if !validNick(nick) {
			return nil, invalid("nick", "invalid_nick", "not a valid nickname")
		}
		if h := c.NickHolder(nick); h != 0 && h != target {
			return nil, ErrConflict
		}
		s.evictNick(ctx, c, nick, target)
	}
	added, err := s.AddMembers(ctx, actor, c.ID, []int64{target}, nil, true)
	if err != nil {
		return nil, err
	}
	if nick != "" {
		if err := s.store.SetNick(ctx, c.ID, target, nick); err != nil {
			return added, err
		}
	}
	if len(added) == 0 {
		nc, err := s.store.Get(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		s.affiliationChanged(ctx, nc, target, by)
	}
	return added, nil
}

// evictNick kicks the sessions joined under nick that are not keep's
// (the nick was reserved for keep): status 307, "This nickname is
// reserved".
func (s *Service) evictNick(ctx context.Context, c *Chat, nick string, keep int64) {
	r := s.room(c.ID, false)
	if r == nil {
		return
	}
	var users []int64
	r.mu.RLock()
	for _, o := range r.occupants {
		if o.nick == nick && o.userID != keep {
			users = append(users, o.userID)
		}
	}
	r.mu.RUnlock()
	for _, u := range users {
		s.eject(ctx, c, u, 0, "This nickname is reserved", "307")
	}
}

// validNick reports whether nick can be a room nick: a valid JID
// resourcepart.
func validNick(nick string) bool {
	_, err := jid.New("room", "example.test", nick)
	return err == nil
}

// announceAffiliation tells the occupants that a user who is not in the
// room got a new affiliation (XEP-0045 §9.3, §9.4).
func (s *Service) announceAffiliation(ctx context.Context, c *Chat, target *roster.User, aff string) {
	s.announceAffiliationWith(ctx, c, target, aff, "", "")
}

// announceAffiliationWith is announceAffiliation with a status code before
// the item (301 for a ban) and a reason in it, when not empty.
func (s *Service) announceAffiliationWith(ctx context.Context, c *Chat, target *roster.User, aff, reason, code string) {
	r := s.room(c.ID, false)
	if r != nil && r.hasUser(target.ID) {
		return
	}
	x := el(NSMUCUser, "x")
	if code != "" {
		add(x, el(NSMUCUser, "status", "code", code))
	}
	item := el(NSMUCUser, "item", "jid", s.userJID(target), "affiliation", aff)
	if reason != "" {
		add(item, text(NSMUCUser, "reason", reason))
	}
	msg := add(el(nsClient, "message", "id", "aff-"+randomID()), add(x, item))
	// Moderators (the owner) are told, here and on the other nodes;
	// Prosody does the same.
	s.relayRemoteTo(c.ID, c.OwnerID, target.ID, msg, s.RoomJID(c))
	if r == nil {
		return
	}
	r.mu.RLock()
	var mods []string
	for full, o := range r.occupants {
		if o.userID == c.OwnerID {
			mods = append(mods, full)
		}
	}
	r.mu.RUnlock()
	for _, full := range mods {
		s.router.Route(ctx, addressed(msg, s.RoomJID(c), full))
	}
}

// NSRegister is in-band registration, used with rooms for membership
// (XEP-0045 §7.10): registering makes a member, <remove/> leaves the chat.
const NSRegister = "jabber:iq:register"

func (s *Service) registerIQ(ctx context.Context, u *roster.User, to jid.JID, iq, payload *xmppcore.Element) {
	c, ok := s.visibleRoom(ctx, iq, to, u.ID)
	if !ok {
		return
	}
	if attr(iq, "type") == "get" {
		if !c.IsMember(u.ID) {
			s.reply(ctx, iq, "auth", "registration-required", "only members register a nickname; join the chat first")
			return
		}
		form := dataForm("form", "http://jabber.org/protocol/muc#register",
			add(el(NSData, "field", "type", "text-single", "label", "Nickname", "var", "muc#register_roomnick"), el(NSData, "required")))
		s.router.Route(ctx, iqResult(iq, add(el(NSRegister, "query"), form)))
		return
	}
	if child(payload, NSRegister, "remove") != nil {
		if !c.IsMember(u.ID) {
			s.reply(ctx, iq, "cancel", "item-not-found", "not a member")
			return
		}
		ctx, flush := deferBookmarks(ctx)
		if err := s.removeMember(ctx, u.ID, c.ID, u.ID); err != nil {
			s.replyErr(ctx, iq, err)
			return
		}
		s.router.Route(ctx, iqResult(iq, nil))
		flush()
		if _, err := s.postRemoved(ctx, c.ID, u.ID, u.ID); err != nil {
			s.log.Error("muc removed message", "err", err)
		}
		return
	}
	// Registering reserves the member's nick (XEP-0045 §7.10); who is
	// not a member joins the chat first (a bookmark, a message, the
	// owner), as Prosody refuses unaffiliated registration by default.
	if !c.IsMember(u.ID) {
		s.reply(ctx, iq, "auth", "registration-required", "only members register a nickname; join the chat first")
		return
	}
	x := child(payload, NSData, "x")
	if x == nil || attr(x, "type") != "submit" {
		s.reply(ctx, iq, "modify", "bad-request", "submit the registration form")
		return
	}
	nick := formValues(x)["muc#register_roomnick"]
	if nick == "" || !validNick(nick) {
		s.reply(ctx, iq, "modify", "not-acceptable", "a nickname is required")
		return
	}
	if h := c.NickHolder(nick); h != 0 && h != u.ID {
		s.reply(ctx, iq, "cancel", "conflict", "that nickname is reserved")
		return
	}
	if err := s.store.SetNick(ctx, c.ID, u.ID, nick); err != nil {
		s.replyErr(ctx, iq, err)
		return
	}
	// The registration is announced as an affiliation (XEP-0045 §7.10):
	// the user's sessions in the room get their presence, before the
	// result.
	if nc, err := s.store.Get(ctx, c.ID); err == nil {
		s.affiliationChanged(ctx, nc, u.ID, 0)
	}
	s.router.Route(ctx, iqResult(iq, nil))
}

// occupantIQ answers an IQ to an occupant JID. XEP-0410 self-ping: a
// session that is not in the room gets not-acceptable (it must rejoin);
// its own occupant JID answers a ping. IQs between occupants are not
// relayed.
func (s *Service) occupantIQ(ctx context.Context, from, to jid.JID, iq, payload *xmppcore.Element) {
	var chatID int64
	if c, err := s.store.ByRoom(ctx, to.Localpart()); err == nil {
		chatID = c.ID
	}
	if !s.isOccupant(chatID, from.String(), to.Resourcepart()) {
		s.reply(ctx, iq, "cancel", "not-acceptable", "not in the room")
		return
	}
	if payload.Name.Space == "urn:xmpp:ping" && attr(iq, "type") == "get" && s.nickOfSession(chatID, from.String()) == to.Resourcepart() {
		s.router.Route(ctx, iqResult(iq, nil))
		return
	}
	s.reply(ctx, iq, "cancel", "feature-not-implemented", "IQs to occupants are not relayed")
}

// isOccupant: is the session full in the room (chat id), and is nick an
// occupant of it (joined here or through another node)?
func (s *Service) isOccupant(chatID int64, full, nick string) bool {
	if chatID == 0 {
		return false
	}
	r := s.room(chatID, false)
	if r == nil {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.occupants[full] == nil {
		return false
	}
	for _, o := range r.occupants {
		if o.nick == nick {
			return true
		}
	}
	for _, o := range r.remote {
		if o.nick == nick {
			return true
		}
	}
	return false
}

// nickOfSession is the nick of a joined session, or "".
func (s *Service) nickOfSession(chatID int64, full string) string {
	r := s.room(chatID, false)
	if r == nil {
		return ""
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if o := r.occupants[full]; o != nil {
		return o.nick
	}
	return ""
}
