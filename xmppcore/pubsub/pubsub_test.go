package pubsub_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

const svc = "pubsub." + domain

// next returns the next stanza the client receives, in order, skipping
// presence.
func next(c *client) string {
	c.T.Helper()
	for {
		if s := c.Next(); !strings.HasPrefix(s, "<presence") {
			return s
		}
	}
}

func iq(typ, id, to, payload string) string {
	if to != "" {
		to = " to='" + to + "'"
	}
	return "<iq type='" + typ + "' id='" + id + "'" + to + ">" + payload + "</iq>"
}

const (
	nsPS    = "xmlns='http://jabber.org/protocol/pubsub'"
	nsOwner = "xmlns='http://jabber.org/protocol/pubsub#owner'"
)

func TestServiceNodes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		admin := w.login(t, "ivanov", "pc")
		other := w.login(t, "petrova", "pc")

		// Only admins create nodes; a second create conflicts.
		other.Send(iq("set", "c0", svc, "<pubsub "+nsPS+"><create node='news'/></pubsub>"))
		other.Expect("id='c0'", "type='error'", "<forbidden")
		admin.Send(iq("set", "c1", svc, "<pubsub "+nsPS+"><create node='news'/></pubsub>"))
		admin.Expect("id='c1'", "type='result'")
		admin.Send(iq("set", "c2", svc, "<pubsub "+nsPS+"><create node='news'/></pubsub>"))
		admin.Expect("id='c2'", "type='error'", "<conflict")

		// Subscribing someone else is refused; oneself works.
		other.Send(iq("set", "s0", svc, "<pubsub "+nsPS+"><subscribe node='news' jid='ivanov@"+domain+"'/></pubsub>"))
		other.Expect("id='s0'", "type='error'")
		me := other.JID.String()
		other.Send(iq("set", "s1", svc, "<pubsub "+nsPS+"><subscribe node='news' jid='"+me+"'/></pubsub>"))
		res := other.Expect("id='s1'", "type='result'")
		if !strings.Contains(res, "subscription='subscribed'") {
			t.Fatalf("subscribe result: %s", res)
		}

		// Publishing: the publisher gets the result, subscribers the event.
		for i, id := range []string{"a", "b"} {
			admin.Send(iq("set", "p"+id, svc, "<pubsub "+nsPS+"><publish node='news'><item id='"+id+"'><entry xmlns='http://www.w3.org/2005/Atom'><title>T"+id+"</title></entry></item></publish></pubsub>"))
			admin.Expect("id='p"+id+"'", "type='result'")
			ev := other.Expect("pubsub#event", "<item id='"+id+"'")
			if !strings.Contains(ev, "publisher='ivanov@"+domain+"'") || !strings.Contains(ev, "<title>T"+id+"</title>") || !strings.Contains(ev, "from='"+svc+"'") {
				t.Fatalf("event %d: %s", i, ev)
			}
		}
		// Items: oldest first; max_items picks the newest.
		other.Send(iq("get", "i1", svc, "<pubsub "+nsPS+"><items node='news'/></pubsub>"))
		all := other.Expect("id='i1'", "type='result'")
		if a, b := strings.Index(all, "id='a'"), strings.Index(all, "id='b'"); a < 0 || b < 0 || a > b {
			t.Fatalf("items: %s", all)
		}
		other.Send(iq("get", "i2", svc, "<pubsub "+nsPS+"><items node='news' max_items='1'/></pubsub>"))
		if one := other.Expect("id='i2'", "type='result'"); strings.Contains(one, "id='a'") || !strings.Contains(one, "id='b'") {
			t.Fatalf("max_items=1: %s", one)
		}

		// Configuration: the form, then max_items 1 drops the older item.
		other.Send(iq("get", "f0", svc, "<pubsub "+nsOwner+"><configure node='news'/></pubsub>"))
		other.Expect("id='f0'", "<forbidden")
		admin.Send(iq("get", "f1", svc, "<pubsub "+nsOwner+"><configure node='news'/></pubsub>"))
		form := admin.Expect("id='f1'", "type='result'")
		if !strings.Contains(form, "<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>") ||
			!strings.Contains(form, "pubsub#max_items") {
			t.Fatalf("config form: %s", form)
		}
		admin.Send(iq("set", "f2", svc, "<pubsub "+nsOwner+"><configure node='news'><x xmlns='jabber:x:data' type='submit'>"+
			"<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#node_config</value></field>"+
			"<field var='pubsub#max_items'><value>1</value></field><field var='pubsub#send_last_published_item'><value>on_sub</value></field></x></configure></pubsub>"))
		admin.Expect("id='f2'", "type='result'")
		admin.Send(iq("set", "f3", svc, "<pubsub "+nsOwner+"><configure node='news'><x xmlns='jabber:x:data' type='submit'>"+
			"<field var='pubsub#max_items'><value>lots</value></field></x></configure></pubsub>"))
		admin.Expect("id='f3'", "type='error'", "not-acceptable")
		other.Send(iq("get", "i3", svc, "<pubsub "+nsPS+"><items node='news'/></pubsub>"))
		if one := other.Expect("id='i3'", "type='result'"); strings.Contains(one, "id='a'") || !strings.Contains(one, "id='b'") {
			t.Fatalf("after max_items=1: %s", one)
		}

		// A publisher affiliation lets another user publish.
		other.Send(iq("set", "p2", svc, "<pubsub "+nsPS+"><publish node='news'><item id='c'/></publish></pubsub>"))
		other.Expect("id='p2'", "<forbidden")
		admin.Send(iq("set", "a1", svc, "<pubsub "+nsOwner+"><affiliations node='news'><affiliation jid='petrova@"+domain+"' affiliation='publisher'/></affiliations></pubsub>"))
		admin.Expect("id='a1'", "type='result'")
		admin.Send(iq("get", "a2", svc, "<pubsub "+nsOwner+"><affiliations node='news'/></pubsub>"))
		affs := admin.Expect("id='a2'", "type='result'")
		if !strings.Contains(affs, "affiliation='owner' jid='ivanov@"+domain+"'") || !strings.Contains(affs, "affiliation='publisher' jid='petrova@"+domain+"'") {
			t.Fatalf("affiliations: %s", affs)
		}
		other.Send(iq("set", "p3", svc, "<pubsub "+nsPS+"><publish node='news'><item id='c'><x xmlns='urn:test'/></item></publish></pubsub>"))
		other.Expect("id='p3'", "type='result'")

		// Resubscribing sends the last item (on_sub); retract notifies.
		other.Send(iq("set", "s2", svc, "<pubsub "+nsPS+"><unsubscribe node='news' jid='"+me+"'/></pubsub>"))
		other.Expect("id='s2'", "subscription='none'")
		other.Seen = nil
		other.Send(iq("set", "s3", svc, "<pubsub "+nsPS+"><subscribe node='news' jid='"+me+"'/></pubsub>"))
		other.Expect("id='s3'", "type='result'")
		if last := other.Expect("pubsub#event", "<item id='c'"); !strings.Contains(last, "urn:test") {
			t.Fatalf("last item: %s", last)
		}
		admin.Send(iq("set", "r1", svc, "<pubsub "+nsPS+"><retract node='news'><item id='c'/></retract></pubsub>"))
		admin.Expect("id='r1'", "type='result'")
		other.Expect("pubsub#event", "<retract id='c'")
		admin.Send(iq("set", "r2", svc, "<pubsub "+nsPS+"><retract node='news'><item id='c'/></retract></pubsub>"))
		admin.Expect("id='r2'", "item-not-found")

		// Disco lists the node; delete tells subscribers; twice is item-not-found.
		other.Send(iq("get", "d0", svc, "<query xmlns='http://jabber.org/protocol/disco#items'/>"))
		other.Expect("id='d0'", "node='news'")
		admin.Send(iq("set", "x1", svc, "<pubsub "+nsOwner+"><delete node='news'/></pubsub>"))
		admin.Expect("id='x1'", "type='result'")
		other.Expect("pubsub#event", "<delete node='news'")
		admin.Send(iq("set", "x2", svc, "<pubsub "+nsOwner+"><delete node='news'/></pubsub>"))
		admin.Expect("id='x2'", "item-not-found")
	})
}

func TestPEP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		owner := w.user(t, "petrova")
		items, err := w.users.Roster(context.Background(), owner.ID)
		if err != nil || len(items) == 0 {
			t.Fatalf("petrova's roster: %v %v", items, err)
		}
		p := w.login(t, "petrova", "pc")
		phone := w.login(t, "petrova", "phone")
		contact := w.login(t, items[0].Login, "pc")
		p.Seen, phone.Seen = nil, nil

		// First publish creates the node; the result comes before the
		// notification, which reaches every own session and contacts.
		p.Send(iq("set", "n1", "", "<pubsub "+nsPS+"><publish node='http://jabber.org/protocol/nick'><item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Маша</nick></item></publish></pubsub>"))
		res := next(p)
		if !strings.Contains(res, "id='n1'") || !strings.Contains(res, "type='result'") || !strings.Contains(res, "<item id='current'") {
			t.Fatalf("first stanza after publish: %s", res)
		}
		ev := next(p)
		// (The test client drops a 'from' equal to its own bare JID.)
		if !strings.Contains(ev, "pubsub#event") || !strings.Contains(ev, "Маша") {
			t.Fatalf("notification: %s", ev)
		}
		phone.Expect("pubsub#event", "Маша")
		contact.Expect("pubsub#event", "from='petrova@"+domain+"'", "Маша")

		// Items on one's own JID; the item id is generated when missing.
		p.Send(iq("get", "n2", "", "<pubsub "+nsPS+"><items node='http://jabber.org/protocol/nick'/></pubsub>"))
		p.Expect("id='n2'", "type='result'", "Маша")
		p.Send(iq("set", "n3", "", "<pubsub "+nsPS+"><publish node='urn:xmpp:microblog:0'><item><entry xmlns='http://www.w3.org/2005/Atom'/></item></publish>"+
			"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"+
			"<field var='pubsub#max_items'><value>max</value></field><field var='pubsub#access_model'><value>open</value></field></x></publish-options></pubsub>"))
		if r := p.Expect("id='n3'"); !strings.Contains(r, "type='result'") || !strings.Contains(r, "<item id='") {
			t.Fatalf("publish with options: %s", r)
		}
		// Preconditions that do not match the existing node fail.
		p.Send(iq("set", "n4", "", "<pubsub "+nsPS+"><publish node='urn:xmpp:microblog:0'><item id='x'/></publish>"+
			"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"+
			"<field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options></pubsub>"))
		p.Expect("id='n4'", "type='error'", "<conflict", "access_model")
		p.Send(iq("get", "n5", "", "<pubsub "+nsOwner+"><configure node='urn:xmpp:microblog:0'/></pubsub>"))
		if f := p.Expect("id='n5'", "type='result'"); !strings.Contains(f, "<value>max</value>") || !strings.Contains(f, "<value>open</value></field>") {
			t.Fatalf("configured by publish-options: %s", f)
		}
		// Retract and delete on one's own node.
		p.Send(iq("set", "n6", "", "<pubsub "+nsPS+"><retract node='http://jabber.org/protocol/nick' notify='1'><item id='current'/></retract></pubsub>"))
		p.Expect("id='n6'", "type='result'")
		contact.Expect("pubsub#event", "<retract id='current'")
		p.Send(iq("set", "n7", "", "<pubsub "+nsOwner+"><delete node='urn:xmpp:microblog:0'/></pubsub>"))
		p.Expect("id='n7'", "type='result'")

		// The bookmarks node is still the chat service's: publishing a
		// bookmark for a new chat is refused there, listing works.
		p.Send(iq("get", "b1", "", "<pubsub "+nsPS+"><items node='urn:xmpp:bookmarks:1'/></pubsub>"))
		p.Expect("id='b1'", "type='result'", "node='urn:xmpp:bookmarks:1'")
		p.Send(iq("set", "b2", "", "<pubsub "+nsPS+"><publish node='urn:xmpp:bookmarks:1'><item id='nosuch@conference."+domain+"'><conference xmlns='urn:xmpp:bookmarks:1'/></item></publish></pubsub>"))
		p.Expect("id='b2'", "type='error'", "item-not-found")
	})
}

// The hooks the core calls: PEP nodes in disco#items and the last items
// for a contact who comes online, both filtered by access model.
func TestPEPHooks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		p := w.login(t, "petrova", "pc")
		p.Send(iq("set", "h1", "", "<pubsub "+nsPS+"><publish node='http://jabber.org/protocol/nick'><item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Маша</nick></item></publish></pubsub>"))
		p.Expect("id='h1'", "type='result'")
		p.Send(iq("set", "h2", "", "<pubsub "+nsPS+"><publish node='secret'><item id='1'><x xmlns='urn:test'/></item></publish>"+
			"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"+
			"<field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options></pubsub>"))
		p.Expect("id='h2'", "type='result'")

		owner, viewer := "petrova@"+domain, "ivanov@"+domain
		own, err := w.ps.NodeItems(ctx, owner, owner)
		if err != nil || !strings.Contains(own.String(), "node='secret'") || !strings.Contains(own.String(), "protocol/nick") {
			t.Fatalf("own nodes: %v %v", own, err)
		}
		other, err := w.ps.NodeItems(ctx, owner, viewer)
		if err != nil || strings.Contains(other.String(), "secret") || !strings.Contains(other.String(), "protocol/nick") {
			t.Fatalf("nodes seen by a colleague: %v %v", other, err)
		}

		iv := w.login(t, "ivanov", "pc")
		iv.Seen = nil
		if err := w.ps.SendLastItems(ctx, owner, iv.JID.String(), nil); err != nil {
			t.Fatal(err)
		}
		iv.Expect("pubsub#event", "Маша", "from='"+owner+"'")
		iv.ExpectNone(200*time.Millisecond, "urn:test")
	})
}

// TestAvatarToVCard: an XEP-0084 avatar published on PEP (what
// Conversations and Dino do) becomes the vCard PHOTO that vCard-only
// clients read (XEP-0398); an empty metadata removes it; the directory
// fields stay.
func TestAvatarToVCard(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		p := w.login(t, "petrova", "conversations")
		other := w.login(t, "ivanov", "converse")
		const png = "iVBORw0KGgo="
		p.Send(iq("set", "a1", "", "<pubsub "+nsPS+"><publish node='urn:xmpp:avatar:data'><item id='abc123'><data xmlns='urn:xmpp:avatar:data'>"+png+"</data></item></publish></pubsub>"))
		p.Expect("id='a1'", "type='result'")
		p.Send(iq("set", "a2", "", "<pubsub "+nsPS+"><publish node='urn:xmpp:avatar:metadata'><item id='abc123'><metadata xmlns='urn:xmpp:avatar:metadata'>"+
			"<info id='abc123' type='image/png' bytes='8' width='1' height='1'/></metadata></item></publish></pubsub>"))
		p.Expect("id='a2'", "type='result'")
		// The conversion follows the IQ result; a later IQ of the same
		// session is answered after it.
		p.Send(iq("get", "sync", "", "<ping xmlns='urn:xmpp:ping'/>"))
		p.Expect("id='sync'")
		other.Send(`<iq type='get' id='v1' to='petrova@` + domain + `'><vCard xmlns='vcard-temp'/></iq>`)
		v := other.Expect("id='v1'", "type='result'")
		if !strings.Contains(v, "<TYPE>image/png</TYPE><BINVAL>"+png+"</BINVAL>") || !strings.Contains(v, "<FN>") {
			t.Fatalf("vCard after the PEP avatar: %s", v)
		}
		p.Send(iq("set", "a3", "", "<pubsub "+nsPS+"><publish node='urn:xmpp:avatar:metadata'><item id='none'><metadata xmlns='urn:xmpp:avatar:metadata'/></item></publish></pubsub>"))
		p.Expect("id='a3'", "type='result'")
		p.Send(iq("get", "sync2", "", "<ping xmlns='urn:xmpp:ping'/>"))
		p.Expect("id='sync2'")
		other.Send(`<iq type='get' id='v2' to='petrova@` + domain + `'><vCard xmlns='vcard-temp'/></iq>`)
		if v := other.Expect("id='v2'", "type='result'"); strings.Contains(v, "PHOTO") || !strings.Contains(v, "<FN>") {
			t.Fatalf("vCard after disabling the avatar: %s", v)
		}
	})
}

// TestVCardPhotoToPEP: a vCard PHOTO (Gajim, Converse.js) is published
// as the XEP-0084 avatar — data under its SHA-1, then metadata — so PEP
// clients see it; the account advertises the conversion.
func TestVCardPhotoToPEP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		p := w.login(t, "petrova", "gajim")
		p.Send(iq("get", "d1", "petrova@"+domain, "<query xmlns='http://jabber.org/protocol/disco#info'/>"))
		if d := p.Expect("id='d1'", "type='result'"); !strings.Contains(d, "urn:xmpp:pep-vcard-conversion:0") {
			t.Fatalf("account disco#info: %s", d)
		}
		// "hello" is aGVsbG8= ; its SHA-1 is aaf4c61d…
		p.Send(iq("set", "v1", "", "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>aGVs\n bG8=</BINVAL></PHOTO></vCard>"))
		p.Expect("id='v1'", "type='result'")
		p.Send(iq("get", "sync", "", "<ping xmlns='urn:xmpp:ping'/>"))
		p.Expect("id='sync'")
		const sha = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
		p.Send(iq("get", "m1", "", "<pubsub "+nsPS+"><items node='urn:xmpp:avatar:metadata'/></pubsub>"))
		if m := p.Expect("id='m1'", "type='result'"); !strings.Contains(m, "id='"+sha+"'") || !strings.Contains(m, "bytes='5'") || !strings.Contains(m, "type='image/png'") {
			t.Fatalf("avatar metadata: %s", m)
		}
		p.Send(iq("get", "m2", "", "<pubsub "+nsPS+"><items node='urn:xmpp:avatar:data'><item id='"+sha+"'/></items></pubsub>"))
		if m := p.Expect("id='m2'", "type='result'"); !strings.Contains(m, ">aGVsbG8=</data>") {
			t.Fatalf("avatar data: %s", m)
		}
		// Bad base64 changes no avatar (and the vCard set itself stands).
		p.Send(iq("set", "v2", "", "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>!!!</BINVAL></PHOTO></vCard>"))
		p.Expect("id='v2'", "type='result'")
		p.Send(iq("get", "m3", "", "<pubsub "+nsPS+"><items node='urn:xmpp:avatar:metadata'/></pubsub>"))
		if m := p.Expect("id='m3'", "type='result'"); !strings.Contains(m, "id='"+sha+"'") {
			t.Fatalf("avatar metadata after a bad photo: %s", m)
		}
	})
}
