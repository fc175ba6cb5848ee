package xmppcore

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// smOnline logs user in over real TCP with TLS, sends presence, waits for
// the presence traffic to settle, then enables XEP-0198.
func smOnline(e *testEnv, user, res string) *rawConn {
	e.t.Helper()
	r := e.dial(user + "/" + res)
	r.login(user, res, true)
	r.send(`<presence/><iq type='get' id='settle'><ping xmlns='urn:xmpp:ping'/></iq>`)
	r.expect(`<iq type='result' id='settle'[^>]*/>`)
	r.send(`<enable xmlns='urn:xmpp:sm:3'/>`)
	r.expect(`<enabled xmlns='urn:xmpp:sm:3'/>`)
	return r
}

// upTo reads until pattern and returns everything that came before it.
func (r *rawConn) upTo(pattern string) string {
	r.t.Helper()
	return r.expect(`(?s)(.*?)` + pattern)[1]
}

func TestSMUnackedComeBackOffline(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		a := e.online("alice", "pc")
		b := smOnline(e, "bob", "phone")

		a.send(`<message to='bob@%s' type='chat' id='m1'><body>first</body></message>`, testDomain)
		b.expect(`<body>first</body>`)
		b.expect(`<r xmlns='urn:xmpp:sm:3'/>`) // the end of a burst
		b.send(`<a xmlns='urn:xmpp:sm:3' h='1'/>`)
		// The ack is handled before the ping that follows it.
		b.send(`<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`)
		b.expect(`id='p'`)

		a.send(`<message to='bob@%s' type='chat' id='m2'><body>second</body></message>`, testDomain)
		a.send(`<message to='bob@%s' type='chat' id='m3'><body>third</body></message>`, testDomain)
		b.expect(`<body>second</body>`)
		b.expect(`<body>third</body>`)
		// The connection dies without an ack for the ping result, second
		// and third.
		b.c.Close()

		b2 := e.dial("bob/laptop")
		b2.login("bob", "laptop", true)
		b2.send(`<presence/><iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
		got := b2.upTo(`<iq type='result' id='sync'[^>]*/>`)
		for body, want := range map[string]int{"first": 0, "second": 1, "third": 1} {
			if n := strings.Count(got, "<body>"+body+"</body>"); n != want {
				t.Errorf("offline %q: got %d, want %d", body, n, want)
			}
		}
		if !regexp.MustCompile(`(?s)<body>second</body>.*<body>third</body>`).MatchString(got) {
			t.Errorf("offline messages out of order: %q", clip([]byte(got)))
		}

		// Once offline delivery raised the mark (no SM here), a third
		// login gets nothing again.
		b2.send(`</stream:stream>`)
		b2.expectClosed()
		b3 := e.dial("bob/tablet")
		b3.login("bob", "tablet", true)
		b3.send(`<presence/><iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
		if got := b3.upTo(`<iq type='result' id='sync'[^>]*/>`); strings.Contains(got, "<body>") {
			t.Errorf("delivered again: %q", clip([]byte(got)))
		}
	})
}

func TestSMAckedNotRedelivered(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		a := e.online("alice", "pc")
		b := smOnline(e, "bob", "phone")
		for i := 0; i < 3; i++ {
			a.send(`<message to='bob@%s' type='chat'><body>m%d</body></message>`, testDomain, i)
			b.expect(`<body>m` + itoa(int64(i)) + `</body>`)
		}
		// h counts modulo 2^32 from 0: three messages.
		b.send(`<a xmlns='urn:xmpp:sm:3' h='3'/><iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`)
		b.expect(`id='p'`)
		b.c.Close()

		b2 := e.dial("bob/laptop")
		b2.login("bob", "laptop", true)
		b2.send(`<presence/><iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
		if got := b2.upTo(`<iq type='result' id='sync'[^>]*/>`); strings.Contains(got, "<body>") {
			t.Errorf("acknowledged messages delivered again: %q", clip([]byte(got)))
		}
	})
}

func TestSMHandledCountTooHigh(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		b := smOnline(e, "bob", "phone")
		b.send(`<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`)
		b.expect(`id='p'`)
		b.send(`<a xmlns='urn:xmpp:sm:3' h='2'/>`)
		b.expect(`<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><handled-count-too-high xmlns='urn:xmpp:sm:3' h='2' send-count='1'/></stream:error>`)
		b.expectClosed()
	})
}

func TestSMRequestsAcks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		b := smOnline(e, "bob", "phone")
		// The server asks after every SMRequestEvery stanzas even within
		// one burst: the client's pings all answered at once.
		var burst strings.Builder
		for i := 0; i < SMRequestEvery; i++ {
			burst.WriteString(`<iq type='get' id='q` + itoa(int64(i)) + `'><ping xmlns='urn:xmpp:ping'/></iq>`)
		}
		b.send("%s", burst.String())
		got := b.upTo(`<r xmlns='urn:xmpp:sm:3'/>`)
		if n := strings.Count(got, "<iq "); n > SMRequestEvery {
			t.Errorf("got %d stanzas before <r/>, want at most %d", n, SMRequestEvery)
		}
	})
}

func TestCSIHoldsPresence(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		b := e.pipe("bob/phone")
		b.open()
		b.expect(`</stream:features>`)
		b.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth("bob", "secret"))
		b.expect(`<success `)
		b.open()
		b.expect(`<csi xmlns='urn:xmpp:csi:0'/>`)
		b.send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>phone</resource></bind></iq>`)
		b.expect(`</bind></iq>`)
		b.send(`<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq><presence/><iq type='get' id='s'><ping xmlns='urn:xmpp:ping'/></iq>`)
		b.expect(`id='s'`)
		a := e.online("alice", "pc")
		b.expect(`<presence [^>]*from='alice@`)

		b.send(`<inactive xmlns='urn:xmpp:csi:0'/><iq type='get' id='s2'><ping xmlns='urn:xmpp:ping'/></iq>`)
		b.expect(`id='s2'`)
		a.send(`<presence><show>away</show></presence>`)
		a.send(`<message to='bob@%s' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`, testDomain)
		a.send(`<presence><show>xa</show></presence>`)
		a.send(`<iq type='get' id='as'><ping xmlns='urn:xmpp:ping'/></iq>`)
		a.expect(`id='as'`)
		a.send(`<message to='bob@%s' type='chat'><body>now</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`, testDomain)
		got := b.upTo(`<body>now</body>`)
		if strings.Contains(got, "<show>") || strings.Contains(got, "composing") {
			t.Errorf("inactive session got presence or a chat state: %q", clip([]byte(got)))
		}
		b.send(`<active xmlns='urn:xmpp:csi:0'/><iq type='get' id='s3'><ping xmlns='urn:xmpp:ping'/></iq>`)
		got = b.upTo(`id='s3'`)
		if strings.Contains(got, "<show>away</show>") || strings.Count(got, "<show>xa</show>") != 1 {
			t.Errorf("flushed presence: got %q, want only the latest (xa)", clip([]byte(got)))
		}
		if strings.Contains(got, "composing") {
			t.Errorf("stale chat state flushed after the message: %q", clip([]byte(got)))
		}
	})
}

// authOnly runs STARTTLS and SASL PLAIN and reopens the stream, stopping
// before resource binding (for <resume/>).
func (r *rawConn) authOnly(user string) {
	r.t.Helper()
	r.starttls()
	r.expect(`<mechanism>PLAIN</mechanism>.*</stream:features>`)
	r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth(user, "secret"))
	r.expect(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`)
	r.open()
	r.expect(`<csi xmlns='urn:xmpp:csi:0'/>`)
}

// smResumable logs bob in over TCP with a resumable XEP-0198 session and
// returns the stream and its resume id.
func smResumable(e *testEnv, res string) (*rawConn, string) {
	e.t.Helper()
	r := e.dial("bob/" + res)
	r.login("bob", res, true)
	r.send(`<presence/><iq type='get' id='settle'><ping xmlns='urn:xmpp:ping'/></iq>`)
	r.expect(`<iq type='result' id='settle'[^>]*/>`)
	r.send(`<enable xmlns='urn:xmpp:sm:3' resume='true'/>`)
	id := r.expect(`<enabled xmlns='urn:xmpp:sm:3' id='([^']+)' resume='true' max='\d+'/>`)[1]
	return r, id
}

func TestSMResume(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		a := e.online("alice", "pc")
		b, id := smResumable(e, "phone")
		a.send(`<message to='bob@%s' type='chat'><body>one</body></message>`, testDomain)
		b.expect(`<body>one</body>`)
		a.send(`<message to='bob@%s' type='chat'><body>two</body></message>`, testDomain)
		a.send(`<message to='bob@%s' type='chat'><body>three</body></message>`, testDomain)
		b.expect(`<body>three</body>`)
		b.send(`<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`) // handled: h=1
		b.expect(`id='p'`)
		b.c.Close() // acked nothing but "one" (h=1 below)

		// While detached, the session is still there and keeps what comes.
		a.send(`<message to='bob@%s' type='chat'><body>four</body></message>`, testDomain)
		a.send(`<iq type='get' id='as'><ping xmlns='urn:xmpp:ping'/></iq>`)
		if got := a.upTo(`id='as'`); strings.Contains(got, "unavailable") {
			t.Errorf("a detached session went unavailable: %q", clip([]byte(got)))
		}

		b2 := e.dial("bob/phone2")
		b2.authOnly("bob")
		b2.send(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='1'/>`, id)
		b2.expect(`<resumed xmlns='urn:xmpp:sm:3' previd='` + regexp.QuoteMeta(id) + `' h='1'/>`)
		b2.send(`<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
		got := b2.upTo(`<iq type='result' id='sync' to='bob@` + testDomain + `/phone'/>`)
		for body, want := range map[string]int{"one": 0, "two": 1, "three": 1, "four": 1} {
			if n := strings.Count(got, "<body>"+body+"</body>"); n != want {
				t.Errorf("after resume %q: got %d, want %d", body, n, want)
			}
		}
		if !regexp.MustCompile(`(?s)two.*three.*four`).MatchString(got) {
			t.Errorf("resent out of order: %q", clip([]byte(got)))
		}
		// Live messages reach the resumed stream; acks count on.
		a.send(`<message to='bob@%s' type='chat'><body>five</body></message>`, testDomain)
		b2.expect(`<body>five</body>`)
		// Sent after h=1 ("one"): two, three, the result of p, four, the result
		// of sync, five: h=7.
		b2.send(`<a xmlns='urn:xmpp:sm:3' h='7'/><r xmlns='urn:xmpp:sm:3'/>`)
		b2.expect(`<a xmlns='urn:xmpp:sm:3' h='2'/>`) // the pings p and sync
		b2.send(`<a xmlns='urn:xmpp:sm:3' h='8'/>`)
		b2.expect(`handled-count-too-high`)
	})
}

func TestSMResumeFailed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		_, id := smResumable(e, "phone")
		// Another user cannot take bob's session; an unknown id fails too.
		for _, prev := range []string{id, "nope"} {
			a := e.dial("alice")
			a.authOnly("alice")
			a.send(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='0'/>`, prev)
			a.expect(`<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>`)
			a.send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`)
			a.expect(`<jid>alice@`)
		}
	})
}

func TestSMResumeTimeout(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnvWith(t, db, testOrg, func(o *Options) { o.SMResumeTimeout = 300 * time.Millisecond })
		a := e.online("alice", "pc")
		b, id := smResumable(e, "phone")
		a.send(`<message to='bob@%s' type='chat'><body>lost1</body></message>`, testDomain)
		a.send(`<message to='bob@%s' type='chat'><body>lost2</body></message>`, testDomain)
		b.expect(`<body>lost2</body>`)
		b.send(`<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`)
		b.expect(`id='p1'`)
		b.c.Close()
		// At the timeout the session ends for real.
		a.expect(`<presence [^>]*from='bob@` + testDomain + `/phone'[^>]*type='unavailable'`)
		b2 := e.dial("bob/phone")
		b2.authOnly("bob")
		b2.send(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='0'/>`, id)
		// h: the one stanza bob sent after <enable/> (the ping p1).
		b2.expect(`<failed xmlns='urn:xmpp:sm:3' h='1'><item-not-found `)
		b2.send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq><presence/><iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
		got := b2.upTo(`<iq type='result' id='sync'[^>]*/>`)
		for _, body := range []string{"lost1", "lost2"} {
			if n := strings.Count(got, "<body>"+body+"</body>"); n != 1 {
				t.Errorf("offline %q: got %d, want 1", body, n)
			}
		}
		if !strings.Contains(got, "Offline Storage") {
			t.Errorf("not offline messages: %q", clip([]byte(got)))
		}
	})
}

// The mark is the last contiguous confirmed sequence, not the highest:
// a message that only a stream which died without acking had is not
// passed over because another session confirmed a later one. It goes at
// once to the user's other session, once, and never again.
func TestSMGapNotPassed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		a := e.online("alice", "pc")
		phone := smOnline(e, "bob", "phone")
		pc := e.online("bob", "pc")

		a.send(`<message to='bob@%s/phone' type='chat' id='m1'><body>first</body></message>`, testDomain)
		phone.expect(`<body>first</body>`)
		a.send(`<message to='bob@%s' type='chat' id='m2'><body>second</body></message>`, testDomain)
		phone.expect(`<body>second</body>`)
		pc.expect(`<body>second</body>`) // confirmed: pc cannot ack
		phone.c.Close()                  // neither acked

		got := pc.upTo(`<body>first</body>`)
		if strings.Contains(got, "<body>second</body>") {
			t.Errorf("second given again: %q", clip([]byte(got)))
		}
		pc.send(`<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
		if got := pc.upTo(`<iq type='result' id='sync'[^>]*/>`); strings.Contains(got, "<body>") {
			t.Errorf("given twice: %q", clip([]byte(got)))
		}
		pc.send(`</stream:stream>`)
		pc.expectClosed()

		tablet := e.dial("bob/tablet")
		tablet.login("bob", "tablet", true)
		tablet.send(`<presence/><iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
		if got := tablet.upTo(`<iq type='result' id='sync'[^>]*/>`); strings.Contains(got, "<body>") {
			t.Errorf("offline again after both were confirmed: %q", clip([]byte(got)))
		}
	})
}

// A MAM catch-up the client acknowledges (XEP-0198) confirms what it
// fetched: the offline delivery of its initial presence does not give
// those messages again, only what came after.
func TestMAMCatchUpConfirms(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		a := e.online("alice", "pc")
		for _, body := range []string{"one", "two"} {
			a.send(`<message to='bob@%s' type='chat'><body>%s</body></message>`, testDomain, body)
		}
		a.send(`<iq type='get' id='as'><ping xmlns='urn:xmpp:ping'/></iq>`)
		a.expect(`id='as'`)

		b := e.dial("bob/phone")
		b.login("bob", "phone", true)
		b.send(`<enable xmlns='urn:xmpp:sm:3'/>`)
		b.expect(`<enabled xmlns='urn:xmpp:sm:3'/>`)
		b.send(`<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='c'/></iq>`)
		got := b.upTo(`<iq [^>]*id='q'`)
		if strings.Count(got, "<result ") != 2 {
			t.Fatalf("MAM catch-up: %q", clip([]byte(got)))
		}
		// Two results and the IQ result: h=3.
		b.send(`<a xmlns='urn:xmpp:sm:3' h='3'/>`)
		a.send(`<message to='bob@%s' type='chat'><body>three</body></message>`, testDomain)
		a.send(`<iq type='get' id='as2'><ping xmlns='urn:xmpp:ping'/></iq>`)
		a.expect(`id='as2'`)
		b.send(`<presence/><iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
		got = b.upTo(`<iq type='result' id='sync'[^>]*/>`)
		for body, want := range map[string]int{"one": 0, "two": 0, "three": 1} {
			if n := strings.Count(got, "<body>"+body+"</body>"); n != want {
				t.Errorf("offline %q after the catch-up: got %d, want %d (%q)", body, n, want, clip([]byte(got)))
			}
		}
	})
}
