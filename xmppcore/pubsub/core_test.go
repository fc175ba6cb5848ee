package pubsub_test

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
)

// The core's PEP hooks over real connections: pubsub requests to a
// contact's bare JID, disco on accounts, the pubsub#errors condition and
// entity capabilities sending the last items the client wants.
func TestPEPInCore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		owner := w.user(t, "petrova")
		items, err := w.users.Roster(context.Background(), owner.ID)
		if err != nil || len(items) == 0 {
			t.Fatalf("petrova's roster: %v %v", items, err)
		}
		pj := "petrova@" + domain
		p := w.login(t, "petrova", "pc")
		p.Send(iq("set", "p1", "", "<pubsub "+nsPS+"><publish node='http://jabber.org/protocol/nick'><item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Маша</nick></item></publish></pubsub>"))
		p.Expect("id='p1'", "type='result'")
		p.Send(iq("set", "p2", "", "<pubsub "+nsPS+"><publish node='urn:xmpp:avatar:metadata'><item id='a1'><metadata xmlns='urn:xmpp:avatar:metadata'/></item></publish></pubsub>"))
		p.Expect("id='p2'", "type='result'")

		c := w.login(t, items[0].Login, "pc")
		// A contact's node, read and (refused) written on their bare JID.
		c.Send(iq("get", "g1", pj, "<pubsub "+nsPS+"><items node='http://jabber.org/protocol/nick'/></pubsub>"))
		c.Expect("id='g1'", "type='result'", "from='"+pj+"'", "Маша")
		c.Send(iq("set", "g2", pj, "<pubsub "+nsPS+"><publish node='http://jabber.org/protocol/nick'><item id='current'/></publish></pubsub>"))
		if r := c.Expect("id='g2'"); !strings.Contains(r, "type='error'") {
			t.Fatalf("publish on a contact's node: %s", r)
		}
		// Disco on accounts.
		c.Send(iq("get", "d1", pj, "<query xmlns='http://jabber.org/protocol/disco#items'/>"))
		c.Expect("id='d1'", "type='result'", "node='http://jabber.org/protocol/nick'", "jid='"+pj+"'")
		p.Send(iq("get", "d2", "", "<query xmlns='http://jabber.org/protocol/disco#items'/>"))
		p.Expect("id='d2'", "type='result'", "node='urn:xmpp:avatar:metadata'")
		c.Send(iq("get", "d3", pj, "<query xmlns='http://jabber.org/protocol/disco#info'/>"))
		c.Expect("id='d3'", "type='result'", "category='account'", "category='pubsub' type='pep'", "http://jabber.org/protocol/pubsub#publish")
		c.Send(iq("get", "d4", "nosuch@"+domain, "<query xmlns='http://jabber.org/protocol/disco#items'/>"))
		c.Expect("id='d4'", "type='error'", "item-not-found")

		// A publish-options mismatch carries precondition-not-met.
		p.Send(iq("set", "e1", "", "<pubsub "+nsPS+"><publish node='http://jabber.org/protocol/nick'><item id='current'/></publish>"+
			"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"+
			"<field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options></pubsub>"))
		p.Expect("id='e1'", "type='error'", "<conflict", "<precondition-not-met xmlns='http://jabber.org/protocol/pubsub#errors'")

		// Entity capabilities: the server asks once per ver, then sends
		// the last items of the nodes the client wants (+notify).
		features := []string{"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/nick+notify"}
		ver := testCapsVer("client/pc//Test", features)
		info := "<identity category='client' type='pc' name='Test'/>"
		for _, f := range features {
			info += "<feature var='" + f + "'/>"
		}
		caps := "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://test.example' ver='" + ver + "'/>"
		c2 := dial(t, w.addr, items[0].Login+"@"+domain, "laptop", roster.DemoPassword)
		c2.Send("<presence>" + caps + "</presence>")
		q := c2.Expect("<iq", "type='get'", "disco#info", "node='https://test.example#"+ver+"'")
		id := q[strings.Index(q, "id='")+4:]
		id = id[:strings.IndexByte(id, '\'')]
		c2.Send(iq("result", id, items[0].Login+"@"+domain, "<query xmlns='http://jabber.org/protocol/disco#info' node='https://test.example#"+ver+"'>"+info+"</query>"))
		c2.Expect("pubsub#event", "from='"+pj+"'", "Маша")
		c2.ExpectNone(300*time.Millisecond, "avatar:metadata")

		// The same ver again is not asked about: the cache answers.
		c3 := dial(t, w.addr, items[0].Login+"@"+domain, "tablet", roster.DemoPassword)
		c3.Send("<presence>" + caps + "</presence>")
		c3.Expect("pubsub#event", "from='"+pj+"'", "Маша")
		c3.ExpectNone(300*time.Millisecond, "disco#info")
	})
}

// testCapsVer is the XEP-0115 verification string for one identity and
// some features (no forms).
func testCapsVer(identity string, features []string) string {
	s := identity + "<"
	for _, f := range features {
		s += f + "<"
	}
	sum := sha1.Sum([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// TestPEPCapsOfContacts: notifications follow each client's +notify
// (the owner's own client without nick+notify gets none), and an account
// that gets a contact's presence with caps it does not know asks the
// client from its own bare JID; the answer brings the account's last
// items the client wants.
func TestPEPCapsOfContacts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		owner := w.user(t, "petrova")
		items, err := w.users.Roster(context.Background(), owner.ID)
		if err != nil || len(items) == 0 {
			t.Fatalf("petrova's roster: %v %v", items, err)
		}
		pj, cj := "petrova@"+domain, items[0].Login+"@"+domain
		capsOf := func(features ...string) (caps, info, ver string) {
			ver = testCapsVer("client/pc//Test", features)
			info = "<identity category='client' type='pc' name='Test'/>"
			for _, f := range features {
				info += "<feature var='" + f + "'/>"
			}
			return "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://test.example' ver='" + ver + "'/>", info, ver
		}
		answer := func(c *client, to, ver, info string) {
			c.Send(iq("result", "disco", to, "<query xmlns='http://jabber.org/protocol/disco#info' node='https://test.example#"+ver+"'>"+info+"</query>"))
		}

		// petrova's client wants no nick events.
		pCaps, pInfo, pVer := capsOf("http://jabber.org/protocol/disco#info")
		p := dial(t, w.addr, pj, "pc", roster.DemoPassword)
		p.Send("<presence>" + pCaps + "</presence>")
		p.Expect("<iq", "type='get'", "id='disco'", "#"+pVer) // from the own bare JID (the client shows none)
		answer(p, pj, pVer, pInfo)
		p.Send(iq("set", "n1", "", "<pubsub "+nsPS+"><publish node='http://jabber.org/protocol/nick'><item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Маша</nick></item></publish></pubsub>"))
		p.Expect("id='n1'", "type='result'")
		p.ExpectNone(300*time.Millisecond, "pubsub#event")

		// The colleague's client has caps nobody knows: its own account
		// and petrova's (who gets its presence) ask it.
		cCaps, cInfo, cVer := capsOf("http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/nick+notify")
		c := dial(t, w.addr, cj, "pc", roster.DemoPassword)
		c.Send("<presence>" + cCaps + "</presence>")
		c.Expect("<iq", "type='get'", "id='disco'", "from=''", "#"+cVer)
		c.Expect("<iq", "type='get'", "id='disco'", "from='"+pj+"'", "#"+cVer)
		c.ExpectNone(300*time.Millisecond, "pubsub#event")
		// Answering petrova's account brings her nick.
		answer(c, pj, cVer, cInfo)
		c.Expect("pubsub#event", "from='"+pj+"'", "Маша")
	})
}
