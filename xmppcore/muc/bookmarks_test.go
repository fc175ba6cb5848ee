package muc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/muc"
)

// TestBookmarksAsPublished: the bookmark features are on the account's
// bare JID; PEP storage:bookmarks (what Converse.js reads) lists the
// chats; a XEP-0402 publish is served back as the client published it
// (nick, password, extensions, autojoin='false'), with the membership
// rule unchanged; rooms elsewhere are kept; XEP-0048 sets keep them too.
func TestBookmarksAsPublished(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		ivanov, petrova := w.user(t, "ivanov"), w.user(t, "petrova")
		c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "Склад", Type: muc.TypeClosed, OwnerID: ivanov.ID, Members: []int64{petrova.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := w.chats.RoomJID(c)
		p := w.login(t, "petrova", "converse")

		// Before any chat, PEP storage:bookmarks has no item.
		q := w.login(t, "popov", "converse")
		q.Send(`<iq type='get' id='e1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='storage:bookmarks'/></pubsub></iq>`)
		q.Expect("id='e1'", "type='error'", "item-not-found")

		// Discovery: the PEP features are the account's, not the domain's.
		p.Send(`<iq type='get' id='d1' to='petrova@` + domain + `'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		info := p.Expect("id='d1'", "type='result'")
		for _, f := range []string{"urn:xmpp:bookmarks:1#compat'", "urn:xmpp:bookmarks:1#compat-pep'", "http://jabber.org/protocol/pubsub#config-node-max'"} {
			if !strings.Contains(info, f) {
				t.Errorf("account disco#info lacks %s: %s", f, info)
			}
		}
		p.Send(`<iq type='get' id='d2' to='` + domain + `'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		if d := p.Expect("id='d2'", "type='result'"); strings.Contains(d, "bookmarks:1#compat") {
			t.Errorf("domain disco#info advertises #compat: %s", d)
		}

		// PEP storage:bookmarks, as Converse.js reads it without #compat.
		p.Send(`<iq type='get' id='s1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='storage:bookmarks'/></pubsub></iq>`)
		st := p.Expect("id='s1'", "type='result'")
		if !strings.Contains(st, "id='current'") || !strings.Contains(st, "jid='"+room+"'") || !strings.Contains(st, "autojoin='true'") {
			t.Fatalf("PEP storage:bookmarks: %s", st)
		}

		// A XEP-0402 publish comes back as published.
		p.Send(`<iq type='set' id='p1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:bookmarks:1'><item id='` + room + `'>` +
			`<conference xmlns='urn:xmpp:bookmarks:1' name='Мой склад' autojoin='true'><nick>Маша</nick><password>pw</password>` +
			`<extensions><state xmlns='tag:example.test,2026:ui' collapsed='1'/></extensions></conference></item></publish></pubsub></iq>`)
		p.Expect("id='p1'", "type='result'")
		p.Send(`<iq type='get' id='g1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>`)
		got := p.Expect("id='g1'", "type='result'")
		for _, want := range []string{"name='Мой склад'", "<nick>Маша</nick>", "<password>pw</password>", "collapsed='1'", "tag:example.test,2026:ui"} {
			if !strings.Contains(got, want) {
				t.Errorf("published bookmark lacks %s: %s", want, got)
			}
		}
		// XEP-0048 views carry the nick and name too.
		p.Send(`<iq type='get' id='g2'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>`)
		if pv := p.Expect("id='g2'", "type='result'"); !strings.Contains(pv, "<nick>Маша</nick>") || !strings.Contains(pv, "name='Мой склад'") {
			t.Errorf("private storage: %s", pv)
		}

		// autojoin='false' leaves the chat; the bookmark stays as published.
		p.Send(`<iq type='set' id='p2'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:bookmarks:1'><item id='` + room + `'>` +
			`<conference xmlns='urn:xmpp:bookmarks:1' name='Мой склад' autojoin='false'><nick>Маша</nick></conference></item></publish></pubsub></iq>`)
		p.Expect("id='p2'", "type='result'")
		if ok, _ := w.chats.Store().IsMember(ctx, c.ID, petrova.ID); ok {
			t.Fatal("autojoin='false' did not leave the chat")
		}
		p.Send(`<iq type='get' id='g3'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>`)
		if got := p.Expect("id='g3'", "type='result'"); !strings.Contains(got, "id='"+room+"'") || !strings.Contains(got, "autojoin='false'") {
			t.Fatalf("left chat's bookmark: %s", got)
		}

		// Added back by the owner: the bookmark autojoins again, the nick stays.
		if _, err := w.chats.AddMembers(ctx, ivanov.ID, c.ID, []int64{petrova.ID}, nil, true); err != nil {
			t.Fatal(err)
		}
		p.Send(`<iq type='get' id='g4'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>`)
		if got := p.Expect("id='g4'", "type='result'"); !strings.Contains(got, "autojoin='true'") || !strings.Contains(got, "<nick>Маша</nick>") {
			t.Fatalf("re-added chat's bookmark: %s", got)
		}
		// Removed by the owner: not listed.
		if err := w.chats.RemoveMember(ctx, ivanov.ID, c.ID, petrova.ID); err != nil {
			t.Fatal(err)
		}
		p.Send(`<iq type='get' id='g5'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>`)
		if got := p.Expect("id='g5'", "type='result'"); strings.Contains(got, room) {
			t.Fatalf("removed member still has the bookmark: %s", got)
		}

		// A room elsewhere is kept as published, and retracted.
		const far = "lobby@conference.jabber.example"
		p.Send(`<iq type='set' id='p3'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:bookmarks:1'><item id='` + far + `'>` +
			`<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'><nick>mp</nick></conference></item></publish></pubsub></iq>`)
		p.Expect("id='p3'", "type='result'")
		p.Send(`<iq type='get' id='g6'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>`)
		if got := p.Expect("id='g6'", "type='result'"); !strings.Contains(got, "id='"+far+"'") || !strings.Contains(got, "<nick>mp</nick>") {
			t.Fatalf("foreign room: %s", got)
		}
		p.Send(`<iq type='set' id='r1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='urn:xmpp:bookmarks:1'><item id='` + far + `'/></retract></pubsub></iq>`)
		p.Expect("id='r1'", "type='result'")
		p.Send(`<iq type='get' id='g7'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>`)
		if got := p.Expect("id='g7'", "type='result'"); strings.Contains(got, far) {
			t.Fatalf("retracted foreign room still listed: %s", got)
		}

		// A XEP-0048 PEP publish (older Converse.js) is the new list.
		open, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "Курилка", Type: muc.TypeOpen, OwnerID: ivanov.ID})
		if err != nil {
			t.Fatal(err)
		}
		p.Send(`<iq type='set' id='p4'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='storage:bookmarks'><item id='current'>` +
			`<storage xmlns='storage:bookmarks'><conference jid='` + w.chats.RoomJID(open) + `' autojoin='true' name='Курилка'><nick>М</nick></conference></storage>` +
			`</item></publish></pubsub></iq>`)
		p.Expect("id='p4'", "type='result'")
		if ok, _ := w.chats.Store().IsMember(ctx, open.ID, petrova.ID); !ok {
			t.Fatal("storage:bookmarks publish did not join the open chat")
		}
		// Bad input changes nothing.
		p.Send(`<iq type='set' id='p5'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:bookmarks:1'><item id='not a jid@@'><conference xmlns='urn:xmpp:bookmarks:1'/></item></publish></pubsub></iq>`)
		p.Expect("id='p5'", "type='error'", "bad-request")
	})
}
