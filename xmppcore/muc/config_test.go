package muc_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/muc"
)

// submitConfig sends the owner's configuration form with the given fields.
func submitConfig(c *client, room, id, fields string) {
	c.T.Helper()
	c.Send(`<iq type='set' id='` + id + `' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>
		<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>` + fields + `</x></query></iq>`)
	c.Expect("id='"+id+"'", "type='result'")
}

// TestInstantAndReservedRooms: a room created by joining is a closed chat
// until its owner submits the first form; the default configuration (an
// instant room) opens it, a members-only form keeps it closed, and a
// later form that does not mention the type leaves it as it is.
func TestInstantAndReservedRooms(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		w.user(t, "ivanov")
		w.user(t, "popov")
		o := w.login(t, "ivanov", "gajim")
		p := w.login(t, "popov", "dino")
		instant, reserved := "instant@conference."+domain, "reserved@conference."+domain

		if self := join(o, instant, "Иван"); !strings.Contains(self, "code='201'") {
			t.Fatalf("created room without 201: %s", self)
		}
		p.Send(`<presence to='` + instant + `/Пётр'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		p.Expect("type='error'", "registration-required")
		submitConfig(o, instant, "i1", "")
		if c, _ := w.chats.Store().ByRoom(ctx, "instant"); c.Type != muc.TypeOpen {
			t.Fatalf("instant room: got type %q, want open", c.Type)
		}
		join(p, instant, "Пётр")
		// A later form without the type keeps it.
		submitConfig(o, instant, "i2", `<field var='muc#roomconfig_roomname'><value>Мгновенная</value></field>`)
		if c, _ := w.chats.Store().ByRoom(ctx, "instant"); c.Type != muc.TypeOpen || c.Title != "Мгновенная" {
			t.Fatalf("after a rename: %+v", c)
		}

		join(o, reserved, "Иван")
		submitConfig(o, reserved, "r1", `<field var='muc#roomconfig_membersonly'><value>1</value></field>`)
		if c, _ := w.chats.Store().ByRoom(ctx, "reserved"); c.Type != muc.TypeClosed {
			t.Fatalf("reserved room: got type %q, want closed", c.Type)
		}
		p.Send(`<presence to='` + reserved + `/Пётр'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		p.Expect("from='"+reserved+"/Пётр'", "type='error'", "registration-required", "by='"+reserved+"'")
	})
}

// TestRoomPassword: a password-protected open chat refuses a non-member
// without the password or with a wrong one (not-authorized) and changes
// nothing; the right password makes a member; members rejoin without it;
// the owner reads it back in the form and removes it.
func TestRoomPassword(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		w.user(t, "ivanov")
		popov, smirnov := w.user(t, "popov"), w.user(t, "smirnov")
		o := w.login(t, "ivanov", "gajim")
		p := w.login(t, "popov", "dino")
		room := "secret@conference." + domain
		join(o, room, "Иван")
		submitConfig(o, room, "s1", `<field var='muc#roomconfig_roomsecret'><value>кот-123</value></field>`)

		o.Send(`<iq type='get' id='f1' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#disco#info'/></iq>`)
		o.Send(`<iq type='get' id='d1' to='` + room + `'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		if info := o.Expect("id='d1'", "type='result'"); !strings.Contains(info, "muc_passwordprotected") || strings.Contains(info, "muc_unsecured") {
			t.Fatalf("disco#info of a protected room: %s", info)
		}
		o.Send(`<iq type='get' id='c1' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>`)
		form := o.Expect("id='c1'", "type='result'")
		if !strings.Contains(form, "muc#roomconfig_roomsecret") || !strings.Contains(form, "кот-123") {
			t.Fatalf("owner's form without the password: %s", form)
		}

		for _, tc := range []struct{ name, x string }{
			{"none", ""},
			{"wrong", "<password>кот-124</password>"},
			{"empty", "<password/>"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p.Send(`<presence to='` + room + `/Пётр'><x xmlns='http://jabber.org/protocol/muc'>` + tc.x + `</x></presence>`)
				p.Expect("type='error'", "not-authorized", "type='auth'", "by='"+room+"'")
				if c, _ := w.chats.Store().ByRoom(ctx, "secret"); c.IsMember(popov.ID) {
					t.Fatal("a refused join made a member")
				}
			})
		}
		// The right password lets him in as a reader; his first message
		// (with the password he entered with) makes him a member.
		p.Send(`<presence to='` + room + `/Пётр'><x xmlns='http://jabber.org/protocol/muc'><password>кот-123</password></x></presence>`)
		if self := p.Expect("from='"+room+"/Пётр'", "code='110'"); !strings.Contains(self, "affiliation='none'") {
			t.Fatalf("a reader's self-presence: %s", self)
		}
		if c, _ := w.chats.Store().ByRoom(ctx, "secret"); c.IsMember(popov.ID) {
			t.Fatal("entering with the password made a member")
		}
		p.Send(`<message to='` + room + `' type='groupchat' id='first'><body>добрый день</body></message>`)
		p.Expect("from='"+room+"/Пётр'", "affiliation='member'", "code='110'")
		p.Expect("добрый день", "id='first'")
		if c, _ := w.chats.Store().ByRoom(ctx, "secret"); !c.IsMember(popov.ID) {
			t.Fatal("the first message did not make a member")
		}
		// Leaving by the bare room JID; a member rejoins without the password.
		p.Send(`<presence type='unavailable' to='` + room + `'/>`)
		p.Expect("type='unavailable'", "from='"+room+"/Пётр'")
		join(p, room, "Пётр")

		// Only who may edit the chat sets it; too long is refused.
		p.Send(`<iq type='set' id='p1' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>
			<field var='muc#roomconfig_roomsecret'><value>свой</value></field></x></query></iq>`)
		p.Expect("id='p1'", "type='error'")
		o.Send(`<iq type='set' id='p2' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>
			<field var='muc#roomconfig_roomsecret'><value>` + strings.Repeat("x", muc.MaxPassword+1) + `</value></field></x></query></iq>`)
		o.Expect("id='p2'", "type='error'", "not-acceptable")
		if c, _ := w.chats.Store().ByRoom(ctx, "secret"); c.Password != "кот-123" {
			t.Fatalf("password after refused changes: %q", c.Password)
		}

		// The rule is the core's, for every door: joining by oneself or by
		// posting needs the password; the right one joins.
		petrova := w.user(t, "petrova")
		c, err := w.chats.Store().ByRoom(ctx, "secret")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.chats.AddMembers(ctx, petrova.ID, c.ID, []int64{petrova.ID}, nil, false); !errors.Is(err, muc.ErrPasswordRequired) || !errors.Is(err, muc.ErrForbidden) {
			t.Errorf("self-join without the password: got %v, want ErrPasswordRequired", err)
		}
		if _, err := w.chats.PostMessage(ctx, c.ID, petrova.ID, "без пароля", false); !errors.Is(err, muc.ErrPasswordRequired) {
			t.Errorf("posting without the password: got %v, want ErrPasswordRequired", err)
		}
		if _, err := w.chats.Join(ctx, petrova.ID, c.ID, "кот-124"); !errors.Is(err, muc.ErrPasswordRequired) {
			t.Errorf("a wrong password: got %v", err)
		}
		if ok, _ := w.chats.Store().IsMember(ctx, c.ID, petrova.ID); ok {
			t.Fatal("refused joins made a member")
		}
		if _, err := w.chats.Join(ctx, petrova.ID, c.ID, "кот-123"); err != nil {
			t.Errorf("the right password: %v", err)
		}

		// Removed (an empty value; a 104 to the occupants): anyone enters
		// and joins by posting.
		submitConfig(o, room, "s2", `<field var='muc#roomconfig_roomsecret'/>`)
		o.Expect("code='104'")
		s := w.login(t, "smirnov", "profanity")
		join(s, room, "Сидор")
		speak(s, room, "Сидор")
		if c, _ := w.chats.Store().ByRoom(ctx, "secret"); c.Password != "" || !c.IsMember(smirnov.ID) {
			t.Fatalf("after removing the password: %+v", c)
		}
	})
}

// TestRoomPresenceProbe: an occupant probing a nick gets that occupant's
// presence, or unavailable for a nick nobody has; who is not in the room
// is refused with not-acceptable.
func TestRoomPresenceProbe(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		w.user(t, "ivanov")
		w.user(t, "popov")
		o := w.login(t, "ivanov", "gajim")
		p := w.login(t, "popov", "dino")
		room := "probe@conference." + domain
		join(o, room, "Иван")
		o.Send(`<presence type='probe' to='` + room + `/Иван'/>`)
		if got := o.Expect("from='"+room+"/Иван'", "affiliation='owner'"); strings.Contains(got, "type=") {
			t.Fatalf("probe of self: %s", got)
		}
		o.Send(`<presence type='probe' to='` + room + `/Никто'/>`)
		o.Expect("from='"+room+"/Никто'", "type='unavailable'", "role='none'")
		p.Send(`<presence type='probe' to='` + room + `/Иван'/>`)
		p.Expect("from='"+room+"/Иван'", "type='error'", "not-acceptable")
	})
}

// TestRoomNicknames: a nick with a code point PRECIS disallows (a
// variation selector, a zero-width joiner out of context) is refused with
// jid-malformed (the address itself is refused) and changes nothing;
// emoji and Cyrillic nicks are fine, and a nick change tells the session
// its new nick (110).
func TestRoomNicknames(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		w.user(t, "ivanov")
		o := w.login(t, "ivanov", "gajim")
		room := "nicks@conference." + domain
		join(o, room, "Иван")
		for _, nick := range []string{"🤖\uFE0F", "a\u200Db"} {
			o.Send(`<presence to='` + room + `/` + nick + `'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
			o.Expect("type='error'", "jid-malformed")
		}
		c, err := w.chats.Store().ByRoom(context.Background(), "nicks")
		if err != nil {
			t.Fatal(err)
		}
		if occ := w.chats.Occupants(c.ID); len(occ) != 1 {
			t.Fatalf("occupants after refused nicks: %v", occ)
		}
		join(o, room, "🤖") // a nick change to an emoji
	})
}
