package muc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
)

// A join that creates a room (and so a bookmark) answers with the
// self-presence (201 before the item, 110 after it) and the subject
// before the bookmark push: clients and the conformance suite expect the
// join to complete first.
func TestJoinAnswersBeforeBookmarkPush(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		p := w.login(t, "petrova", "pc")
		p.Seen = nil
		room := "garden@conference." + domain
		p.Send(`<presence to='` + room + `/Мария'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		self := p.Next()
		if !strings.HasPrefix(self, "<presence") || !strings.Contains(self, "from='"+room+"/Мария'") {
			t.Fatalf("first stanza after join: %s", self)
		}
		i201, iItem, i110 := strings.Index(self, "code='201'"), strings.Index(self, "<item"), strings.Index(self, "code='110'")
		if i201 < 0 || iItem < 0 || i110 < 0 || !(i201 < iItem && iItem < i110) {
			t.Fatalf("self-presence status order: %s", self)
		}
		if strings.Contains(self, "code='100'") || strings.Contains(self, "code='170'") {
			t.Fatalf("self-presence has 100/170: %s", self)
		}
		if subj := p.Next(); !strings.Contains(subj, "<subject") {
			t.Fatalf("second stanza after join: %s", subj)
		}
		if bm := p.Next(); !strings.Contains(bm, "urn:xmpp:bookmarks:1") || !strings.Contains(bm, "id='"+room+"'") {
			t.Fatalf("third stanza after join: %s", bm)
		}
	})
}

// Membership changes through the MUC protocol: the owner is told about
// an affiliation change before the IQ result (the system message is
// archived, not sent to occupants); a config change says 104 (and 172 for whois=anyone);
// mediated invitations come from the inviter's occupant JID, before the
// invitee's bookmark push; jabber:iq:register <remove/> leaves the chat
// with 321 and affiliation none; removal by the owner names the actor.
func TestMembershipProtocolOrder(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		o := w.login(t, "petrova", "pc")
		m := w.login(t, "smirnov", "pc")
		room := "yard@conference." + domain
		join(o, room, "Owner")
		o.Expect("<subject")
		o.Expect("urn:xmpp:bookmarks:1")

		o.Send(`<iq type='set' id='cfg' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>
			<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>
			<field var='muc#roomconfig_membersonly'><value>1</value></field>
			<field var='muc#roomconfig_whois'><value>anyone</value></field></x></query></iq>`)
		o.Expect("id='cfg'", "type='result'")
		if cfg := o.Expect("code='104'"); !strings.Contains(cfg, "code='172'") {
			t.Fatalf("config change notice: %s", cfg)
		}

		o.Seen = nil
		o.Send(`<iq type='set' id='add' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='smirnov@` + domain + `'/></query></iq>`)
		notice := o.Next()
		if !strings.Contains(notice, "<message") || !strings.Contains(notice, "jid='smirnov@"+domain+"'") || !strings.Contains(notice, "affiliation='member'") {
			t.Fatalf("first stanza after adding a member: %s", notice)
		}
		if res := o.Next(); !strings.Contains(res, "id='add'") || !strings.Contains(res, "type='result'") {
			t.Fatalf("second stanza after adding a member: %s", res)
		}
		// The "added" notice is archived, not sent: the affiliation
		// message said it.
		o.ExpectNone(200*time.Millisecond, "added")

		// Invitation from the occupant JID with a body, then the bookmark.
		w2 := w.login(t, "ivanov", "pc")
		w2.Seen = nil
		o.Send(`<message to='` + room + `' id='inv1'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='ivanov@` + domain + `'/></x></message>`)
		inv := w2.Next()
		for strings.HasPrefix(inv, "<presence") {
			inv = w2.Next()
		}
		if !strings.Contains(inv, "id='inv1'") || !strings.Contains(inv, "from='"+room+"/Owner'") || !strings.Contains(inv, "<body>") {
			t.Fatalf("invitation: %s", inv)
		}
		w2.Expect("urn:xmpp:bookmarks:1", "pubsub#event")

		// The member registers (form), joins, then deregisters.
		m.Send(`<iq type='get' id='rg' to='` + room + `'><query xmlns='jabber:iq:register'/></iq>`)
		m.Expect("id='rg'", "muc#register_roomnick")
		join(m, room, "Member")
		m.Seen = nil
		m.Send(`<iq type='set' id='unreg' to='` + room + `'><query xmlns='jabber:iq:register'><remove/></query></iq>`)
		gone := m.Next()
		for !strings.Contains(gone, "type='unavailable'") && strings.HasPrefix(gone, "<presence") || strings.HasPrefix(gone, "<message") {
			gone = m.Next()
		}
		if !strings.Contains(gone, "code='321'") || !strings.Contains(gone, "affiliation='none'") || !strings.Contains(gone, "code='110'") ||
			strings.Index(gone, "code='321'") > strings.Index(gone, "<item") {
			t.Fatalf("deregistered presence: %s", gone)
		}
		m.Expect("id='unreg'", "type='result'")
		o.Expect("from='"+room+"/Member'", "type='unavailable'", "code='321'")

		// Removal by the owner names the actor.
		join(w2, room, "Ivan")
		o.Send(`<iq type='set' id='kick' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='none' jid='ivanov@` + domain + `'/></query></iq>`)
		k := w2.Expect("type='unavailable'", "code='321'")
		if !strings.Contains(k, "<actor nick='Owner'") {
			t.Fatalf("kick presence: %s", k)
		}
		o.Expect("id='kick'", "type='result'")
		// The 321 presence said it: no affiliation message besides.
		for _, st := range o.Seen {
			if strings.Contains(st, "id='aff-") && strings.Contains(st, "affiliation='none'") {
				t.Fatalf("an affiliation message for a member removed in the room: %s", st)
			}
		}
	})
}

// Destroying a room: occupants leave with <destroy/>, members are
// removed, the chat becomes closed, and the archive keeps its history.
func TestDestroyRoom(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		o := w.login(t, "petrova", "pc")
		m := w.login(t, "smirnov", "pc")
		room := "garden@conference." + domain
		join(o, room, "Owner")
		openRoom(o, room)
		join(m, room, "Member")
		speak(m, room, "Member")
		o.Send(`<message to='` + room + `' type='groupchat' id='g1'><body>before</body></message>`)
		m.Expect("<body>before</body>")
		m.Send(`<iq type='set' id='d0' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query></iq>`)
		m.Expect("id='d0'", "type='error'", "forbidden")
		o.Send(`<iq type='set' id='d1' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy><reason>done</reason></destroy></query></iq>`)
		gone := m.Expect("type='unavailable'", "<destroy")
		if !strings.Contains(gone, "<reason>done</reason>") || !strings.Contains(gone, "role='none'") || !strings.Contains(gone, "code='110'") {
			t.Fatalf("destroy presence: %s", gone)
		}
		o.Expect("type='unavailable'", "<destroy", "affiliation='owner'")
		o.Expect("id='d1'", "type='result'")
		m.Expect("<retract id='" + room + "'")

		c, err := w.chats.Store().ByRoom(ctx, "garden")
		if err != nil || c.Type != muc.TypeClosed || len(c.Members) != 0 {
			t.Fatalf("destroyed chat: %+v %v", c, err)
		}
		m.Send(`<presence to='` + room + `/Member'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		m.Expect("type='error'", "registration-required")
		// History stays readable for the former member's window.
		page, err := w.archive.Query(ctx, mam.Query{Viewer: w.user(t, "smirnov").ID, ChatID: c.ID, Limit: 10})
		if err != nil || len(page.Messages) == 0 {
			t.Fatalf("history after destroy: %+v %v", page, err)
		}
	})
}

// Presence extensions (caps, the server's avatar hash) reach the other
// occupants; the MUC join element does not.
func TestOccupantPresenceExtensions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		o := w.login(t, "petrova", "pc")
		m := w.login(t, "smirnov", "pc")
		room := "porch@conference." + domain
		join(o, room, "Owner")
		openRoom(o, room)
		m.Send(`<presence to='` + room + `/Member'><x xmlns='http://jabber.org/protocol/muc'/><show>away</show>` +
			`<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/><x xmlns='vcard-temp:x:update'><photo>abc</photo></x></presence>`)
		p := o.Expect("from='"+room+"/Member'", "muc#user")
		// The avatar hash is the server's (XEP-0153, xmppcore): smirnov
		// has no photo, so an empty one replaces the client's.
		for _, want := range []string{"<show>away</show>", "protocol/caps", "<x xmlns='vcard-temp:x:update'><photo></photo></x>"} {
			if !strings.Contains(p, want) {
				t.Fatalf("occupant presence lacks %s: %s", want, p)
			}
		}
		if strings.Contains(p, "abc") {
			t.Fatalf("occupant presence keeps the client's avatar hash: %s", p)
		}
		if strings.Contains(p, "xmlns='http://jabber.org/protocol/muc'") {
			t.Fatalf("occupant presence carries the join element: %s", p)
		}
	})
}

// A server admin acts as the owner of every room in the MUC protocol.
func TestAdminOwnsRooms(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorldWith(t, db, muc.Options{Domain: domain, Admins: []string{"ivanov"}})
		o := w.login(t, "petrova", "pc")
		room := "lawn@conference." + domain
		join(o, room, "Owner")
		for _, login := range []string{"smirnov", "ivanov"} {
			c := w.login(t, login, "pc")
			c.Send(`<iq type='get' id='f' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>`)
			res := c.Expect("id='f'")
			if admin := login == "ivanov"; admin != strings.Contains(res, "type='result'") {
				t.Fatalf("%s config form: %s", login, res)
			}
		}
		a := w.login(t, "ivanov", "pc2")
		a.Send(`<iq type='set' id='d' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query></iq>`)
		a.Expect("id='d'", "type='result'")
		o.Expect("type='unavailable'", "<destroy")
	})
}

// Extension elements of groupchat messages (OOB links, subjects with a
// body) are kept and relayed, also in join history; messages without a
// body (markers, chat states) are relayed live only.
func TestGroupchatPayload(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		o := w.login(t, "petrova", "pc")
		m := w.login(t, "smirnov", "pc")
		room := "deck@conference." + domain
		join(o, room, "Owner")
		openRoom(o, room)
		join(m, room, "Member")
		speak(m, room, "Member")
		o.Send(`<message to='` + room + `' type='groupchat' id='u1'><body>https://x/y.png</body><x xmlns='jabber:x:oob'><url>https://x/y.png</url></x><subject>Topic</subject></message>`)
		got := m.Expect("<body>https://x/y.png</body>")
		if !strings.Contains(got, "<url>https://x/y.png</url>") || !strings.Contains(got, "<subject>Topic</subject>") {
			t.Fatalf("relayed message: %s", got)
		}
		o.Send(`<message to='` + room + `' type='groupchat' id='mk'><displayed xmlns='urn:xmpp:chat-markers:0' id='u1'/></message>`)
		if mk := m.Expect("chat-markers", "from='"+room+"/Owner'"); strings.Contains(mk, "stanza-id") {
			t.Fatalf("marker was archived: %s", mk)
		}
		c, err := w.chats.Store().ByRoom(context.Background(), "deck")
		if err != nil || c.Title == "Topic" {
			t.Fatalf("a subject with a body renamed the chat: %+v %v", c, err)
		}
		// A new session's join history has the link.
		h := w.login(t, "smirnov", "phone")
		h.Send(`<presence to='` + room + `/Member'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		if hist := h.Expect("<delay", "https://x/y.png"); !strings.Contains(hist, "jabber:x:oob") {
			t.Fatalf("history: %s", hist)
		}
	})
}

// Leaving with a status text shows it to the others; a session that
// bounces an error to the room is taken out with status 333.
func TestLeaveStatusAndErrorBounce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		o := w.login(t, "petrova", "pc")
		m := w.login(t, "smirnov", "pc")
		room := "hall@conference." + domain
		join(o, room, "Owner")
		openRoom(o, room)
		join(m, room, "Member")
		m.Send(`<presence type='unavailable' to='` + room + `/Member'><status>Farewell</status></presence>`)
		if p := o.Expect("from='"+room+"/Member'", "type='unavailable'"); !strings.Contains(p, "<status>Farewell</status>") {
			t.Fatalf("leave presence: %s", p)
		}
		join(m, room, "Member")
		m.Send(`<presence type='error' to='` + room + `'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Test error</text></error></presence>`)
		p := o.Expect("from='"+room+"/Member'", "type='unavailable'", "code='333'")
		if !strings.Contains(p, "<status>Kicked: service unavailable: Test error</status>") {
			t.Fatalf("bounce presence: %s", p)
		}
	})
}

// XEP-0410 self-ping: a joined session's ping to its own occupant JID is
// answered; a session that is not in the room gets not-acceptable.
func TestSelfPing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		o := w.login(t, "petrova", "pc")
		room := "nook@conference." + domain
		join(o, room, "Owner")
		o.Send(`<iq type='get' id='sp1' to='` + room + `/Owner'><ping xmlns='urn:xmpp:ping'/></iq>`)
		o.Expect("id='sp1'", "type='result'")
		other := w.login(t, "petrova", "phone")
		other.Send(`<iq type='get' id='sp2' to='` + room + `/Owner'><ping xmlns='urn:xmpp:ping'/></iq>`)
		other.Expect("id='sp2'", "type='error'", "not-acceptable")
	})
}

// A join presence from a session that is already joined replays the
// join: the other occupants, the self-presence, history and subject.
func TestRejoinResyncs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		o := w.login(t, "petrova", "pc")
		m := w.login(t, "smirnov", "pc")
		room := "loft@conference." + domain
		join(o, room, "Owner")
		openRoom(o, room)
		join(m, room, "Member")
		speak(m, room, "Member")
		m.Expect("<subject")
		o.Send(`<message to='` + room + `' type='groupchat' id='r1'><body>earlier</body></message>`)
		m.Expect("<body>earlier</body>")
		m.Seen = nil
		m.Send(`<presence to='` + room + `/Member'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		m.Expect("from='"+room+"/Owner'", "muc#user")
		m.Expect("from='"+room+"/Member'", "code='110'")
		m.Expect("<delay", "<body>earlier</body>")
		m.Expect("<subject")
		// A plain presence update is just broadcast.
		m.Send(`<presence to='` + room + `/Member'><show>away</show></presence>`)
		o.Expect("from='"+room+"/Member'", "<show>away</show>")
		m.ExpectNone(300*time.Millisecond, "<subject")
	})
}
