package xmppcore

import (
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
)

// TestSubscriptions plays RFC 6121 §3 between alice (Sales) and dave
// (Development), whom the org structure does not make colleagues: a
// request kept with its XEP-0379 token while dave is offline, approval,
// pre-approval, presence flowing by subscription, removal, and a
// generated colleague who is "both" from the start. dave is on TCP.
func TestSubscriptions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)

		// The stream features announce pre-approval and versioning.
		f := e.pipe("features")
		f.open()
		f.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth("erin", "secret"))
		f.expect(`<success`)
		f.open()
		feats := f.expect(`(?s)<stream:features>(.*?)</stream:features>`)[1]
		for _, want := range []string{`<ver xmlns='urn:xmpp:features:rosterver'/>`, `<sub xmlns='urn:xmpp:features:pre-approval'/>`} {
			if !strings.Contains(feats, want) {
				t.Errorf("features lack %s: %s", want, feats)
			}
		}

		a := e.online("alice", "pc")
		a.send(`<presence type='subscribe' to='dave@example.test'><preauth xmlns='urn:xmpp:pars:0' token='t0k'/></presence>`)
		a.expect(`<iq type='set' id='push[^']*' to='alice@example.test/pc'><query xmlns='jabber:iq:roster' ver='2'><item jid='dave@example.test' subscription='none' ask='subscribe'/></query></iq>`)
		a.expect(`<presence from='dave@example.test' to='alice@example.test' type='unavailable'/>`)

		// dave logs in later: the request waits for his available
		// presence and comes whole.
		d := e.dial("dave")
		d.login("dave", "x", true)
		d.send(`<iq type='get' id='r'><query xmlns='jabber:iq:roster' ver=''/></iq>`)
		ver := d.expect(`<iq type='result' id='r'[^>]*><query xmlns='jabber:iq:roster' ver='([^']+)'>`)[1]
		d.send(`<presence/>`)
		d.expect(`<presence from='dave@example.test/x' to='dave@example.test/x'><x xmlns='vcard-temp:x:update'><photo/></x></presence>`)
		d.expect(`<presence type='subscribe' to='dave@example.test' from='alice@example.test'><preauth xmlns='urn:xmpp:pars:0' token='t0k'/></presence>`)
		// alice's presence does not reach him: he is not subscribed.
		a.send(`<presence><show>away</show></presence>`)

		// dave approves: alice gets the approval, the push and his
		// presence (with its time), he gets his push.
		d.send(`<presence type='subscribed' to='alice@example.test'/>`)
		got := d.expect(`<iq type='set' id='push[^']*' to='dave@example.test/x'><query xmlns='jabber:iq:roster' ver='([^']+)'><item jid='alice@example.test' subscription='from'/></query></iq>`)
		if got[1] == ver {
			t.Errorf("dave's roster version did not move: %s", ver)
		}
		a.expect(`<presence type='subscribed' to='alice@example.test' from='dave@example.test'/>`)
		a.expect(`<query xmlns='jabber:iq:roster' ver='3'><item jid='dave@example.test' subscription='to'/></query>`)
		a.expect(`<presence from='dave@example.test/x' to='alice@example.test'><x xmlns='vcard-temp:x:update'><photo/></x><delay xmlns='urn:xmpp:delay' from='example.test' stamp='[^']+'/></presence>`)
		// Presence now flows from dave to alice, not back.
		d.send(`<presence><show>chat</show></presence>`)
		a.expect(`<presence from='dave@example.test/x' to='alice@example.test'><show>chat</show><x xmlns='vcard-temp:x:update'><photo/></x></presence>`)
		d.send(`<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`)
		if rest := d.expect(`(?s)(.*)<iq type='result' id='p1'`)[1]; strings.Contains(rest, "alice@example.test/pc") {
			t.Errorf("dave got alice's presence without a subscription: %s", rest)
		}

		// Pre-approval (RFC 6121 §3.4): alice approves dave before he
		// asks; his request is answered at once.
		a.send(`<presence type='subscribed' to='dave@example.test'/>`)
		a.expect(`<query xmlns='jabber:iq:roster' ver='4'><item jid='dave@example.test' subscription='to' approved='true'/></query>`)
		d.send(`<presence type='subscribe' to='alice@example.test'/>`)
		d.expect(`<item jid='alice@example.test' subscription='from' ask='subscribe'/>`)
		d.expect(`<presence from='alice@example.test' to='dave@example.test' type='subscribed'/>`)
		d.expect(`<item jid='alice@example.test' subscription='both'/>`)
		d.expect(`<presence from='alice@example.test/pc' to='dave@example.test'><show>away</show><x xmlns='vcard-temp:x:update'><photo/></x><delay xmlns='urn:xmpp:delay'`)
		a.expect(`<query xmlns='jabber:iq:roster' ver='5'><item jid='dave@example.test' subscription='both'/></query>`)

		// A roster get with the current version: nothing, pushes follow.
		a.send(`<iq type='get' id='v'><query xmlns='jabber:iq:roster' ver='5'/></iq>`)
		a.expect(`<iq type='result' id='v' to='alice@example.test/pc'/>`)

		// alice removes dave: he is told (unsubscribe, unsubscribed to
		// his roster-reading session), gets her unavailable, and his
		// item ends as none.
		a.send(`<iq type='set' id='rm'><query xmlns='jabber:iq:roster'><item jid='dave@example.test' subscription='remove'/></query></iq>`)
		a.expect(`<iq type='result' id='rm'`)
		a.expect(`<item jid='dave@example.test' subscription='remove'/>`)
		d.expect(`<presence from='alice@example.test' to='dave@example.test' type='unsubscribed'/>`)
		d.expect(`<item jid='alice@example.test' subscription='from'/>`)
		d.expect(`<presence from='alice@example.test/pc' to='dave@example.test' type='unavailable'/>`)
		d.expect(`<presence from='alice@example.test' to='dave@example.test' type='unsubscribe'/>`)
		d.expect(`<item jid='alice@example.test' subscription='none'/>`)
		a.send(`<presence><show>xa</show></presence>`)
		d.send(`<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>`)
		if rest := d.expect(`(?s)(.*)<iq type='result' id='p2'`)[1]; strings.Contains(rest, "<show>xa</show>") {
			t.Errorf("presence still flows after removal: %s", rest)
		}

		// A generated colleague is subscribed already: bob answers at
		// once and alice's item does not change.
		b := e.online("bob", "phone")
		a.expect(`<presence from='bob@example.test/phone' to='alice@example.test'><x xmlns='vcard-temp:x:update'><photo/></x></presence>`)
		a.send(`<presence type='subscribe' to='bob@example.test'/>`)
		a.expect(`<presence from='bob@example.test' to='alice@example.test' type='subscribed'/>`)
		a.expect(`<presence from='bob@example.test/phone' to='alice@example.test'><x xmlns='vcard-temp:x:update'><photo/></x><delay`)
		a.send(`<iq type='get' id='p3'><ping xmlns='urn:xmpp:ping'/></iq>`)
		if rest := a.expect(`(?s)(.*)<iq type='result' id='p3'`)[1]; strings.Contains(rest, "jabber:iq:roster") {
			t.Errorf("a generated item changed: %s", rest)
		}
		_ = b

		// A JID on the domain that is no account refuses at once.
		a.send(`<presence type='subscribe' to='nobody@example.test'/>`)
		a.expect(`<item jid='nobody@example.test' subscription='none' ask='subscribe'/>`)
		a.expect(`<presence from='nobody@example.test' to='alice@example.test' type='unsubscribed'/>`)
		a.expect(`<item jid='nobody@example.test' subscription='none'/>`)

		// A request too big to keep is refused, and nothing is kept.
		a.send(`<presence type='subscribe' to='erin@example.test' id='big'><x xmlns='urn:example:pad'>%s</x></presence>`, strings.Repeat("p", roster.MaxPendingStanza))
		a.expect(`<presence [^>]*id='big'[^>]*type='error'[^>]*><error type='wait'><resource-constraint`)
		a.send(`<iq type='get' id='r9'><query xmlns='jabber:iq:roster'/></iq>`)
		if items := a.expect(`<iq type='result' id='r9'[^>]*>(.*?)</iq>`)[1]; strings.Contains(items, "erin@") {
			t.Errorf("a refused request left an item: %s", items)
		}

		// Nothing goes to a blocked contact (XEP-0191 §3.5).
		a.send(`<iq type='set' id='blk'><block xmlns='urn:xmpp:blocking'><item jid='dave@example.test'/></block></iq>`)
		a.expect(`<iq type='result' id='blk'`)
		a.send(`<presence type='subscribe' to='dave@example.test' id='s9'/>`)
		a.expect(`<presence [^>]*id='s9'[^>]*type='error'[^>]*><error type='cancel'><not-acceptable`)

		// The requests and states are stored: a new session of dave's
		// sees them in the roster.
		time.Sleep(20 * time.Millisecond)
		d2 := e.online("dave", "y")
		d2.send(`<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>`)
		if items := d2.expect(`<iq type='result' id='r2'[^>]*>(.*?)</iq>`)[1]; !strings.Contains(items, `<item jid='alice@example.test' subscription='none'/>`) {
			t.Errorf("dave's stored roster: %s", items)
		}
	})
}
