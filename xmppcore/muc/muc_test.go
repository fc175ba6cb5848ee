package muc_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
)

// openRoom makes a room the client created an open chat through the
// configuration form (a room created by joining is closed).
func openRoom(c *client, room string) {
	c.T.Helper()
	c.Send(`<iq type='set' id='open-room' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>
		<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>
		<field var='muc#roomconfig_publicroom'><value>1</value></field></x></query></iq>`)
	c.Expect("id='open-room'", "type='result'")
}

// join sends presence to room/nick and waits for the self-presence.
func join(c *client, room, nick string) string {
	c.T.Helper()
	c.Send(fmt.Sprintf(`<presence to='%s/%s'><x xmlns='http://jabber.org/protocol/muc'/></presence>`, room, nick))
	return c.Expect("from='"+room+"/"+nick+"'", "code='110'")
}

// speak has the occupant c (joined as nick) post its first message,
// which makes a reader of an open chat a member: its new affiliation
// comes first, then the message.
func speak(c *client, room, nick string) {
	c.T.Helper()
	c.Send(`<message to='` + room + `' type='groupchat' id='hello'><body>hello</body></message>`)
	c.Expect("from='"+room+"/"+nick+"'", "affiliation='member'", "code='110'")
	c.Expect("id='hello'", "<body>hello</body>")
}

func TestRoomJoinTalkLeave(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		ivanov, smirnov, petrova := w.user(t, "ivanov"), w.user(t, "smirnov"), w.user(t, "petrova")
		c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "Продажи", Type: muc.TypeClosed, OwnerID: ivanov.ID, Members: []int64{smirnov.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := w.chats.RoomJID(c)
		early, err := w.chats.PostMessage(ctx, c.ID, smirnov.ID, "до входа", false)
		if err != nil {
			t.Fatal(err)
		}

		a := w.login(t, "ivanov", "gajim")
		self := join(a, room, "Иван")
		if !strings.Contains(self, "affiliation='owner'") || !strings.Contains(self, "role='moderator'") {
			t.Fatalf("owner self-presence: %s", self)
		}
		hist := a.Expect("до входа", "urn:xmpp:delay", fmt.Sprintf("id='%d'", early))
		if !strings.Contains(hist, "from='"+room+"/smirnov'") {
			t.Fatalf("history from: %s", hist)
		}
		a.Expect("<subject></subject>")

		b := w.login(t, "smirnov", "dino")
		join(b, room, "Алексей")
		b.Expect("from='"+room+"/Иван'", "affiliation='owner'")
		a.Expect("from='"+room+"/Алексей'", "affiliation='member'")

		// A groupchat message: archived with a stanza-id by the room, then to both.
		a.Send(`<message to='` + room + `' type='groupchat' id='m1'><body>Всем привет</body></message>`)
		got := b.Expect("Всем привет", "from='"+room+"/Иван'", "by='"+room+"'")
		echo := a.Expect("Всем привет", "id='m1'")
		if !strings.Contains(echo, "urn:xmpp:sid:0") {
			t.Fatalf("echo without stanza-id: %s", echo)
		}
		page, err := w.archive.Query(ctx, mam.Query{Viewer: smirnov.ID, ChatID: c.ID, Limit: 10})
		if err != nil || len(page.Messages) < 2 || page.Messages[len(page.Messages)-1].Body != "Всем привет" ||
			page.Messages[len(page.Messages)-1].Kind != mam.KindGroupchat {
			t.Fatalf("archive %+v %v (got %s)", page, err, got)
		}

		// A message posted over REST/bridge reaches the occupants.
		if _, err := w.chats.PostMessage(ctx, c.ID, smirnov.ID, "из портала", false); err != nil {
			t.Fatal(err)
		}
		a.Expect("из портала", "from='"+room+"/Алексей'")
		if _, err := w.chats.PostMessage(ctx, c.ID, 0, "Системное", true); err != nil {
			t.Fatal(err)
		}
		a.Expect("Системное", "from='"+room+"'", "system='true'")

		// /getChatId: to the sender alone, not stored.
		before := countRows(t, db, `SELECT COUNT(*) FROM messages`)
		b.Send(`<message to='` + room + `' type='groupchat'><body>/getChatId</body></message>`)
		b.Expect(fmt.Sprintf("Chat id: %d", c.ID))
		a.ExpectNone(300*time.Millisecond, "getChatId")
		a.ExpectNone(10*time.Millisecond, "Chat id:")
		if after := countRows(t, db, `SELECT COUNT(*) FROM messages`); after != before {
			t.Fatal("/getChatId was archived")
		}

		// A non-member cannot join a closed chat or post to it.
		p := w.login(t, "petrova", "x")
		p.Send(`<presence to='` + room + `/Мария'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		p.Expect("type='error'", "registration-required")
		p.Send(`<message to='` + room + `' type='groupchat'><body>влезу</body></message>`)
		p.Expect("type='error'", "not-acceptable")
		if _, err := w.chats.PostMessage(ctx, c.ID, petrova.ID, "x", false); err == nil {
			t.Fatal("non-member posted to a closed chat")
		}

		// Leaving: the others see the occupant go.
		b.Send(`<presence to='` + room + `/Алексей' type='unavailable'/>`)
		b.Expect("type='unavailable'", "code='110'")
		a.Expect("from='"+room+"/Алексей'", "type='unavailable'")
		if occ := w.chats.Occupants(c.ID); len(occ) != 1 {
			t.Fatalf("occupants after leave: %v", occ)
		}
		// A disconnect leaves the room too.
		a.Sess.Close()
		deadline := time.Now().Add(3 * time.Second)
		for len(w.chats.Occupants(c.ID)) != 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if occ := w.chats.Occupants(c.ID); len(occ) != 0 {
			t.Fatalf("occupants after disconnect: %v", occ)
		}
	})
}

func countRows(t *testing.T, db *sqlx.DB, q string) int {
	t.Helper()
	var n int
	if err := db.Get(&n, q); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOpenChatsDiscoAndCreateByJoin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		ivanov, petrova := w.user(t, "ivanov"), w.user(t, "petrova")
		open, _ := w.chats.Create(ctx, 0, muc.NewChat{Title: "Курилка", Type: muc.TypeOpen, OwnerID: ivanov.ID})
		closed, _ := w.chats.Create(ctx, 0, muc.NewChat{Title: "Секрет", Type: muc.TypeClosed, OwnerID: ivanov.ID})

		p := w.login(t, "petrova", "x")
		p.Send(`<iq type='get' id='d1' to='conference.` + domain + `'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`)
		items := p.Expect("id='d1'", "type='result'")
		if !strings.Contains(items, w.chats.RoomJID(open)) || strings.Contains(items, w.chats.RoomJID(closed)) {
			t.Fatalf("disco items: %s", items)
		}
		p.Send(`<iq type='get' id='d2' to='` + w.chats.RoomJID(open) + `'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		info := p.Expect("id='d2'", "type='result'")
		for _, f := range []string{"muc_persistent", "muc_open", "Курилка"} {
			if !strings.Contains(info, f) {
				t.Fatalf("room info lacks %s: %s", f, info)
			}
		}
		p.Send(`<iq type='get' id='d3' to='` + w.chats.RoomJID(closed) + `'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		p.Expect("id='d3'", "item-not-found")

		// Entering an open chat reads it: affiliation none, no membership.
		if self := join(p, w.chats.RoomJID(open), "Мария"); !strings.Contains(self, "affiliation='none'") || !strings.Contains(self, "role='participant'") {
			t.Fatalf("a reader's self-presence: %s", self)
		}
		if ok, _ := w.chats.Store().IsMember(ctx, open.ID, petrova.ID); ok {
			t.Fatal("entering an open chat made a member")
		}

		// Joining a room that does not exist creates a closed chat owned by the joiner.
		self := join(p, "coffee@conference."+domain, "Мария")
		if !strings.Contains(self, "code='201'") || !strings.Contains(self, "affiliation='owner'") {
			t.Fatalf("new room self-presence: %s", self)
		}
		c, err := w.chats.Store().ByRoom(ctx, "coffee")
		if err != nil || c.OwnerID != petrova.ID || c.Type != muc.TypeClosed {
			t.Fatalf("created chat %+v %v", c, err)
		}
		p.Send(`<presence to='chat999@conference.` + domain + `/x'/>`)
		p.Expect("type='error'", "not-allowed")
		// Not in the room directory of others, and closed to them.
		i := w.login(t, "ivanov", "y")
		i.Send(`<iq type='get' id='d1' to='conference.` + domain + `'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`)
		if items := i.Expect("id='d1'", "type='result'"); strings.Contains(items, "coffee@") {
			t.Fatalf("a client-created room is listed: %s", items)
		}
		i.Send(`<presence to='coffee@conference.` + domain + `/Иван'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		i.Expect("type='error'", "registration-required")

		// The owner's configuration form opens it (publicroom on)…
		p.Send(`<iq type='get' id='c1' to='coffee@conference.` + domain + `'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>`)
		form := p.Expect("id='c1'", "type='result'")
		if !strings.Contains(form, "muc#roomconfig_membersonly") || !strings.Contains(form, "muc#roomconfig_roomname") {
			t.Fatalf("config form: %s", form)
		}
		openRoom(p, "coffee@conference."+domain)
		if c, _ = w.chats.Store().ByRoom(ctx, "coffee"); c.Type != muc.TypeOpen {
			t.Fatalf("after publicroom=1: %+v", c)
		}
		p.Expect("code='104'")
		// …closes it again and renames it: a config change (104), not a new subject.
		p.Send(`<iq type='set' id='c2' to='coffee@conference.` + domain + `'><query xmlns='http://jabber.org/protocol/muc#owner'>
			<x xmlns='jabber:x:data' type='submit'>
			<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>
			<field var='muc#roomconfig_roomname'><value>Кофе</value></field>
			<field var='muc#roomconfig_membersonly'><value>1</value></field></x></query></iq>`)
		p.Expect("id='c2'", "type='result'")
		p.Expect("code='104'")
		c, _ = w.chats.Store().ByRoom(ctx, "coffee")
		if c.Title != "Кофе" || c.Type != muc.TypeClosed {
			t.Fatalf("after config: %+v", c)
		}
		// The subject is the topic: it sets the description, not the title.
		p.Send(`<message to='coffee@conference.` + domain + `' type='groupchat'><subject>Где взять зёрна</subject></message>`)
		p.Expect("<subject>Где взять зёрна</subject>")
		c, _ = w.chats.Store().ByRoom(ctx, "coffee")
		if c.Title != "Кофе" || c.Description != "Где взять зёрна" {
			t.Fatalf("after a subject: %+v", c)
		}
		// Not the owner: forbidden.
		i.Send(`<iq type='get' id='c3' to='coffee@conference.` + domain + `'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>`)
		i.Expect("id='c3'", "type='error'")
	})
}

func TestInvitesAndBookmarks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		ivanov, petrova := w.user(t, "ivanov"), w.user(t, "petrova")
		c, _ := w.chats.Create(ctx, 0, muc.NewChat{Title: "Закрытый", Type: muc.TypeClosed, OwnerID: ivanov.ID})
		room := w.chats.RoomJID(c)
		i := w.login(t, "ivanov", "a")
		p := w.login(t, "petrova", "b")
		join(i, room, "Иван")
		// A mediated invitation makes petrova a member and reaches her.
		i.Send(`<message to='` + room + `'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='petrova@` + domain + `'><reason>заходи</reason></invite></x></message>`)
		inv := p.Expect("from='"+room+"'", "<invite", "заходи")
		if !strings.Contains(inv, "jabber:x:conference") {
			t.Fatalf("invitation lacks the direct form: %s", inv)
		}
		if ok, _ := w.chats.Store().IsMember(ctx, c.ID, petrova.ID); !ok {
			t.Fatal("invitee is not a member")
		}
		p.Expect("urn:xmpp:bookmarks:1", room) // PEP notification
		// The owner in the room learns it in XMPP's form (the affiliation
		// change), not as the "added" notice, which the archive keeps.
		i.Expect("jid='petrova@"+domain+"'", "affiliation='member'")
		i.ExpectNone(200*time.Millisecond, "Мария Петрова")
		if page, err := w.archive.Query(ctx, mam.Query{Viewer: ivanov.ID, ChatID: c.ID, Limit: 10}); err != nil ||
			len(page.Messages) == 0 || !strings.Contains(page.Messages[len(page.Messages)-1].Body, "added Мария Петрова") {
			t.Fatalf("archive after the invitation: %+v %v", page, err)
		}

		// XEP-0402 bookmarks on the own bare JID.
		p.Send(`<iq type='get' id='b1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>`)
		bm := p.Expect("id='b1'", "type='result'")
		if !strings.Contains(bm, "id='"+room+"'") || !strings.Contains(bm, "autojoin='true'") {
			t.Fatalf("bookmarks: %s", bm)
		}
		// XEP-0048 private storage.
		p.Send(`<iq type='get' id='b2'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>`)
		st := p.Expect("id='b2'", "type='result'")
		if !strings.Contains(st, "jid='"+room+"'") || !strings.Contains(st, "autojoin='true'") {
			t.Fatalf("private bookmarks: %s", st)
		}
		// Retracting the bookmark leaves the chat.
		p.Send(`<iq type='set' id='b3'><pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='urn:xmpp:bookmarks:1'><item id='` + room + `'/></retract></pubsub></iq>`)
		p.Expect("id='b3'", "type='result'")
		if ok, _ := w.chats.Store().IsMember(ctx, c.ID, petrova.ID); ok {
			t.Fatal("retracting the bookmark did not leave the chat")
		}
		// Publishing a bookmark of a closed chat she is not in: forbidden.
		p.Send(`<iq type='set' id='b4'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:bookmarks:1'><item id='` + room + `'><conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'/></item></publish></pubsub></iq>`)
		p.Expect("id='b4'", "type='error'", "forbidden")
		// Other PEP nodes are not served.
		p.Send(`<iq type='get' id='b5'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:avatar:metadata'/></pubsub></iq>`)
		p.Expect("id='b5'", "type='error'")
	})
}

func TestRoomHistoryWindowsAndArchive(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		ivanov, smirnov := w.user(t, "ivanov"), w.user(t, "smirnov")
		c, _ := w.chats.Create(ctx, 0, muc.NewChat{Title: "t", Type: muc.TypeClosed, OwnerID: ivanov.ID})
		room := w.chats.RoomJID(c)
		w.chats.PostMessage(ctx, c.ID, ivanov.ID, "секрет до тебя", false)
		hide := true
		if _, err := w.chats.AddMembers(ctx, 0, c.ID, []int64{smirnov.ID}, &hide, true); err != nil {
			t.Fatal(err)
		}
		w.chats.PostMessage(ctx, c.ID, ivanov.ID, "после входа", false)
		s := w.login(t, "smirnov", "r")
		join(s, room, "Алексей")
		s.Expect("после входа", "urn:xmpp:delay")
		s.Expect("<subject>")
		for _, x := range s.Seen {
			if strings.Contains(x, "секрет до тебя") {
				t.Fatalf("hidden history sent on join: %s", x)
			}
		}
		// MAM on the room JID applies the same window.
		s.Send(`<iq type='set' id='q1' to='` + room + `'><query xmlns='urn:xmpp:mam:2' queryid='f1'/></iq>`)
		s.Expect("queryid='f1'", "после входа")
		fin := s.Expect("id='q1'", "type='result'")
		if !strings.Contains(fin, "fin") {
			t.Fatalf("fin: %s", fin)
		}
		for _, x := range s.Seen {
			if strings.Contains(x, "секрет до тебя") {
				t.Fatalf("hidden history over MAM: %s", x)
			}
		}
	})
}
