package xmppcore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/roster"
)

// online logs a user in over a pipe, asks for the roster and sends
// initial presence.
func (e *testEnv) online(user, res string) *rawConn {
	e.t.Helper()
	r := e.pipe(user + "/" + res)
	r.login(user, res, false)
	r.send(`<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>`)
	r.expect(`<iq type='result' id='r'[^>]*><query xmlns='jabber:iq:roster' ver='[^']+'>`)
	r.send(`<presence/>`)
	// The ping is answered after the initial presence (and its offline
	// flush) has been handled by the same reader.
	r.send(`<iq type='get' id='online'><ping xmlns='urn:xmpp:ping'/></iq>`)
	r.expect(`<iq type='result' id='online'[^>]*/>`)
	return r
}

func TestRosterAndPresence(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		a := e.pipe("alice")
		a.login("alice", "pc", false)
		a.send(`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`)
		items := a.expect(`<iq type='result' id='r1'[^>]*><query xmlns='jabber:iq:roster' ver='[^']+'>(.*?)</query></iq>`)[1]
		if !strings.Contains(items, `jid='bob@example.test'`) || !strings.Contains(items, `<group>Sales</group>`) || !strings.Contains(items, `subscription='both'`) {
			t.Errorf("alice's roster lacks bob in Sales: %s", items)
		}
		if strings.Contains(items, `carol@`) && !strings.Contains(items, `jid='carol@example.test'`) {
			t.Errorf("roster: %s", items)
		}
		a.send(`<presence><show>dnd</show><status>busy</status></presence>`)
		// alice is available (her own presence came back) before bob comes.
		a.expect(`<presence from='alice@example.test/pc' to='alice@example.test/pc'><show>dnd</show>`)

		b := e.pipe("bob")
		b.login("bob", "phone", false)
		b.send(`<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>`)
		b.expect(`id='r'`)
		b.send(`<presence><priority>5</priority></presence>`)
		// bob gets alice's presence, alice gets bob's.
		// Presence held for a new session comes to its full JID (a probe's
		// answer), a broadcast (if alice's came late) to the bare JID.
		b.expect(`<presence from='alice@example.test/pc' to='bob@example.test(?:/phone)?'><show>dnd</show><status>busy</status><x xmlns='vcard-temp:x:update'><photo/></x></presence>`)
		a.expect(`<presence from='bob@example.test/phone' to='alice@example.test'><priority>5</priority><x xmlns='vcard-temp:x:update'><photo/></x></presence>`)

		// Company-wide probe: dave (other department) probes alice.
		d := e.pipe("dave")
		d.login("dave", "x", false)
		d.send(`<presence type='probe' to='alice@example.test'/>`)
		d.expect(`<presence from='alice@example.test/pc' to='dave@example.test/x'><show>dnd</show>`)

		// Show changes are broadcast.
		a.send(`<presence><show>away</show></presence>`)
		b.expect(`<presence from='alice@example.test/pc' to='bob@example.test'><show>away</show><x xmlns='vcard-temp:x:update'><photo/></x></presence>`)

		// An unclean disconnect is broadcast as unavailable.
		a.c.Close()
		b.expect(`<presence from='alice@example.test/pc' type='unavailable' to='bob@example.test'/>`)

		// Probing an offline user gives unavailable with a delay stamp.
		d.send(`<presence type='probe' to='alice@example.test'/>`)
		d.expect(`<presence from='alice@example.test' to='dave@example.test/x' type='unavailable'><delay xmlns='urn:xmpp:delay'`)
		// Last activity of an offline contact.
		d.send(`<iq type='get' id='l' to='alice@example.test'><query xmlns='jabber:iq:last'/></iq>`)
		d.expect(`<iq type='result' id='l' to='dave@example.test/x' from='alice@example.test'><query xmlns='jabber:iq:last' seconds='\d+'/></iq>`)
	})
}

func TestMessages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		a := e.online("alice", "pc")
		a2 := e.online("alice", "phone")
		a2.send(`<iq type='set' id='c'><enable xmlns='urn:xmpp:carbons:2'/></iq>`)
		a2.expect(`<iq type='result' id='c'`)
		b := e.online("bob", "phone")

		// Full JID: only that resource; the other gets a received carbon.
		b.send(`<message to='alice@example.test/pc' type='chat' id='m1'><body>hello &lt;b&gt;</body><request xmlns='urn:xmpp:receipts'/></message>`)
		got := a.expect(`<message to='alice@example.test/pc' type='chat' id='m1' from='bob@example.test/phone'>(.*?)</message>`)[1]
		if !strings.Contains(got, `<body>hello &lt;b&gt;</body>`) || !strings.Contains(got, `<request xmlns='urn:xmpp:receipts'/>`) {
			t.Errorf("message payload: %s", got)
		}
		sid := a.reSub(got, `<stanza-id xmlns='urn:xmpp:sid:0' id='(\d+)' by='alice@example.test'/>`)
		a2.expect(`<message from='alice@example.test' to='alice@example.test/phone' type='chat'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message [^>]*id='m1'.*?<stanza-id xmlns='urn:xmpp:sid:0' id='` + sid + `'`)

		// The receipt passes through untouched and is not archived.
		a.send(`<message to='bob@example.test/phone' id='r1'><received xmlns='urn:xmpp:receipts' id='m1'/></message>`)
		b.expect(`<message to='bob@example.test/phone' id='r1' from='alice@example.test/pc'><received xmlns='urn:xmpp:receipts' id='m1'/></message>`)

		// Bare JID, type chat: every non-negative resource.
		b.send(`<message to='alice@example.test' type='chat' id='m2'><body>both</body></message>`)
		a.expect(`id='m2'.*?<body>both</body>`)
		a2.expect(`id='m2'.*?<body>both</body>`)

		// Sent carbons: alice/phone sees what alice/pc sends.
		a.send(`<message to='bob@example.test' type='chat' id='m3'><body>from pc</body></message>`)
		b.expect(`id='m3' from='alice@example.test/pc'>`)
		a2.expect(`<sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message [^>]*id='m3'`)

		// Unknown user: service-unavailable.
		b.send(`<message to='nobody@example.test' type='chat' id='m4'><body>?</body></message>`)
		b.expect(`<message id='m4' from='nobody@example.test' to='bob@example.test/phone' type='error'>.*?<service-unavailable `)

		// Offline delivery: carol is offline; messages wait, then arrive in
		// order with delay stamps, exactly once.
		for i := 1; i <= 3; i++ {
			b.send(`<message to='carol@example.test' type='chat' id='o%d'><body>offline %d</body></message>`, i, i)
		}
		// carol was not in bob's roster: the first message makes her a
		// personal contact, pushed with her department as group.
		b.expect(`<iq type='set' id='push[^']*' to='bob@example.test/phone'><query xmlns='jabber:iq:roster'><item jid='carol@example.test' subscription='both' name='Carol'><group>Development</group></item></query></iq>`)
		b.send(`<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
		b.expect(`id='sync'`)
		c := e.pipe("carol")
		c.login("carol", "pc", false)
		c.send(`<presence/>`)
		for i := 1; i <= 3; i++ {
			c.expect(`<message from='bob@example.test/phone' to='carol@example.test/pc' type='chat' id='o` + string(rune('0'+i)) + `'><body>offline \d</body><stanza-id [^>]*/><delay xmlns='urn:xmpp:delay' from='example.test' stamp='[0-9T:.\-]+Z'>Offline Storage</delay></message>`)
		}
		c.c.Close()
		time.Sleep(50 * time.Millisecond)
		c2 := e.pipe("carol again")
		c2.login("carol", "pc", false)
		c2.send(`<presence/>`)
		c2.send(`<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`)
		rest := c2.expect(`(?s)(.*)<iq type='result' id='p'`)[1]
		if strings.Contains(rest, "offline") {
			t.Errorf("offline messages delivered twice: %s", rest)
		}

		// SendPersonal (REST path) reaches online users and is archived.
		id, err := e.srv.SendPersonal(context.Background(), 1, 2, "from REST")
		if err != nil || id == 0 {
			t.Fatalf("SendPersonal: %d, %v", id, err)
		}
		b.expect(`<message type='chat' id='[^']+' from='alice@example.test' to='bob@example.test'><body>from REST</body><stanza-id xmlns='urn:xmpp:sid:0' id='` + itoa(id) + `'`)
	})
}

func TestBlockingVCardDisco(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		a := e.online("alice", "pc")
		b := e.online("bob", "phone")

		a.send(`<iq type='get' id='v' to='bob@example.test'><vCard xmlns='vcard-temp'/></iq>`)
		v := a.expect(`<iq type='result' id='v'[^>]*>(.*?)</iq>`)[1]
		for _, want := range []string{`<FN>Боб Иванов</FN>`, `<FAMILY>Иванов</FAMILY>`, `<ORGNAME>Company</ORGNAME><ORGUNIT>Sales</ORGUNIT>`, `<TITLE>Sales</TITLE>`, `<JABBERID>bob@example.test</JABBERID>`} {
			if !strings.Contains(v, want) {
				t.Errorf("vcard lacks %s: %s", want, v)
			}
		}
		// The directory fields are read-only: a set that changes FN is
		// refused and changes nothing.
		b.send(`<iq type='set' id='v2'><vCard xmlns='vcard-temp'><FN>Бобби</FN><NICKNAME>bob</NICKNAME></vCard></iq>`)
		b.expect(`id='v2'[^>]*type='error'.*?<not-allowed .*?FN comes from the company directory`)
		// Gajim's avatar change: the card it read, repeated, plus a
		// PHOTO (its N parts reordered, an empty MIDDLE): accepted.
		b.send(`<iq type='set' id='v2b'><vCard xmlns='vcard-temp'><FN>Боб Иванов</FN><N><GIVEN>Боб</GIVEN><MIDDLE/><FAMILY>Иванов</FAMILY></N>` +
			`<ORG><ORGNAME>Company</ORGNAME><ORGUNIT>Sales</ORGUNIT></ORG><TITLE>Sales</TITLE><JABBERID>bob@example.test</JABBERID>` +
			`<NICKNAME>bob</NICKNAME><PHOTO><TYPE>image/png</TYPE><BINVAL>AAAA</BINVAL></PHOTO></vCard></iq>`)
		b.expect(`type='result' id='v2b'`)
		a.send(`<iq type='get' id='v3' to='bob@example.test'><vCard xmlns='vcard-temp'/></iq>`)
		v = a.expect(`<iq type='result' id='v3'[^>]*>(.*?)</iq>`)[1]
		if !strings.Contains(v, `<FN>Боб Иванов</FN>`) || !strings.Contains(v, "<ORGNAME>Company</ORGNAME>") || strings.Count(v, "<FN>") != 1 ||
			!strings.Contains(v, `<NICKNAME>bob</NICKNAME>`) || !strings.Contains(v, "<BINVAL>AAAA</BINVAL>") {
			t.Errorf("published vcard: %s", v)
		}
		// A photo-only set keeps the company fields and replaces the
		// user's own part.
		b.send(`<iq type='set' id='v2c'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>BBBB</BINVAL></PHOTO></vCard></iq>`)
		b.expect(`type='result' id='v2c'`)
		a.send(`<iq type='get' id='v3b' to='bob@example.test'><vCard xmlns='vcard-temp'/></iq>`)
		v = a.expect(`<iq type='result' id='v3b'[^>]*>(.*?)</iq>`)[1]
		if !strings.Contains(v, `<TITLE>Sales</TITLE>`) || !strings.Contains(v, "<ORGNAME>Company</ORGNAME>") ||
			strings.Contains(v, "NICKNAME") || !strings.Contains(v, "<BINVAL>BBBB</BINVAL>") {
			t.Errorf("photo-only set: %s", v)
		}
		// A TEL or TITLE the directory does not hold is refused too.
		b.send(`<iq type='set' id='v2d'><vCard xmlns='vcard-temp'><TITLE>CEO</TITLE></vCard></iq>`)
		b.expect(`id='v2d'[^>]*type='error'.*?<not-allowed `)
		// An empty set wipes only the user's part.
		b.send(`<iq type='set' id='v2e'><vCard xmlns='vcard-temp'/></iq>`)
		b.expect(`type='result' id='v2e'`)
		a.send(`<iq type='get' id='v3c' to='bob@example.test'><vCard xmlns='vcard-temp'/></iq>`)
		v = a.expect(`<iq type='result' id='v3c'[^>]*>(.*?)</iq>`)[1]
		if !strings.Contains(v, `<TITLE>Sales</TITLE>`) || !strings.Contains(v, "<ORGNAME>Company</ORGNAME>") || strings.Contains(v, "PHOTO") {
			t.Errorf("empty set: %s", v)
		}
		b.send(`<iq type='set' id='v4'><vCard xmlns='vcard-temp'><DESC>%s</DESC></vCard></iq>`, strings.Repeat("x", MaxVCardSize))
		b.expect(`id='v4'[^>]*type='error'.*?<not-acceptable `)
		b.send(`<iq type='set' id='v5' to='alice@example.test'><vCard xmlns='vcard-temp'><FN>x</FN></vCard></iq>`)
		b.expect(`id='v5'[^>]*type='error'`)
		b.send(`<iq type='get' id='v6'><vCard xmlns='vcard-temp'/></iq>`)
		b.expect(`type='result' id='v6'.*?<FN>Боб Иванов</FN>`)
		a.send(`<iq type='get' id='v7'><vCard xmlns='vcard-temp'/></iq>`)
		a.expect(`type='result' id='v7'.*?<FN>[^<]*</FN>.*?<JABBERID>alice@example.test</JABBERID>`)

		a.send(`<iq type='get' id='d' to='example.test'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		d := a.expect(`<iq type='result' id='d'[^>]*>(.*?)</iq>`)[1]
		for _, f := range []string{NSCarbons, NSBlocking, NSPing, NSVCard, NSLast, "urn:xmpp:mam:2", NSOffline} {
			if !strings.Contains(d, `var='`+f+`'`) {
				t.Errorf("disco#info lacks %s: %s", f, d)
			}
		}

		a.send(`<iq type='set' id='bl'><block xmlns='urn:xmpp:blocking'><item jid='bob@example.test'/></block></iq>`)
		a.expect(`<iq type='result' id='bl'`)
		a.expect(`<iq type='set' id='push[^']*' to='alice@example.test/pc'><block xmlns='urn:xmpp:blocking'><item jid='bob@example.test'/></block></iq>`)
		b.send(`<message to='alice@example.test' type='chat' id='x'><body>blocked?</body></message>`)
		b.expect(`id='x'[^>]*type='error'.*?<service-unavailable `)
		a.send(`<message to='bob@example.test' type='chat' id='y'><body>hi</body></message>`)
		a.expect(`id='y'[^>]*type='error'.*?<blocked xmlns='urn:xmpp:blocking:errors'/>`)
		a.send(`<iq type='get' id='g'><blocklist xmlns='urn:xmpp:blocking'/></iq>`)
		a.expect(`<iq type='result' id='g'[^>]*><blocklist xmlns='urn:xmpp:blocking'><item jid='bob@example.test'/></blocklist></iq>`)
		a.send(`<iq type='set' id='ub'><unblock xmlns='urn:xmpp:blocking'/></iq>`)
		a.expect(`<iq type='result' id='ub'`)
		b.send(`<message to='alice@example.test' type='chat' id='z'><body>again</body></message>`)
		a.expect(`id='z'.*?<body>again</body>`)
	})
}

func TestHRChanges(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		d := e.online("dave", "pc")
		erin := e.online("erin", "pc")
		// An import moves erin to Sales and deactivates nobody else…
		org := strings.Replace(testOrg, `{"id": "5", "login": "erin", "name": "Erin", "departments": ["3"], "password": "secret"}`,
			`{"id": "5", "login": "erin", "name": "Erin", "departments": ["3"], "active": false}`, 1)
		snap, err := roster.ParseJSON(strings.NewReader(org))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.rs.Import(context.Background(), snap, false); err != nil {
			t.Fatal(err)
		}
		// …erin's session is closed, dave gets a roster push removing her.
		erin.expect(`<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`)
		erin.expectClosed()
		d.expect(`<iq type='set' id='push[^']*' to='dave@example.test/pc'><query xmlns='jabber:iq:roster' ver='[^']+'><item jid='erin@example.test' subscription='remove'/></query></iq>`)
	})
}

func TestSlowConsumer(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		e.srv.opts.RateStanzas = -1       // measure the router, not the rate limit
		slow := e.online("carol", "slow") // stops reading from here on
		b := e.online("bob", "fast")
		start := time.Now()
		for i := 0; i < 3*SendQueueLen; i++ { // a batch in flight plus a full queue
			b.send(`<message to='carol@example.test/slow' type='headline'><body>%d</body></message>`, i)
		}
		// The router did not wait for carol: bob is answered at once.
		b.send(`<iq type='get' id='alive'><ping xmlns='urn:xmpp:ping'/></iq>`)
		b.expect(`<iq type='result' id='alive'`)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("sender held up %v", d)
		}
		// carol's connection was closed as a slow consumer.
		slow.expectClosed()
		carol, err := e.rs.UserByLogin(context.Background(), "carol")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if e.srv.router.session(carol.ID, "slow") != nil {
			t.Errorf("slow session still routed")
		}
	})
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, dbtest.Open(t, migrations.SQLite))
	b := e.online("bob", "fast")
	start := time.Now()
	n := RateBurst + RateStanzas/2 // half a second beyond the burst
	for i := 0; i < n; i++ {
		b.send(`<iq type='get' id='p%d'><ping xmlns='urn:xmpp:ping'/></iq>`, i)
	}
	b.expect(fmt.Sprintf(`<iq type='result' id='p%d'`, n-1))
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("%d stanzas handled in %v: not rate limited", n, d)
	}
}
