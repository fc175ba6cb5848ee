package xmppcore

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/xmpptest"
)

const testComponent = "bot.example.test"

// withComponent configures testComponent (secret "s3cret") on e's server
// and listens for components; it returns the listen address.
func (e *testEnv) withComponent() string {
	e.t.Helper()
	if err := e.srv.AddExternalComponent(testComponent, "s3cret"); err != nil {
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	go e.srv.ServeComponents(ln)
	return ln.Addr().String()
}

// dialComponent opens a component stream to addr for name and answers
// the handshake with secret; it returns the connection after the
// server's answer to the handshake (matched by want).
func dialComponent(t *testing.T, addr, name, secret, want string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawConn{t: t, c: c, name: "component"}
	r.send(`<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='%s'>`, name)
	id := r.expect(`<stream:stream [^>]*id='([^']+)'`)[1]
	sum := sha1.Sum([]byte(id + secret))
	r.send(`<handshake>%s</handshake>`, hex.EncodeToString(sum[:]))
	r.expect(want)
	return r
}

func TestComponentHandshake(t *testing.T) {
	e := newEnv(t, dbtest.Open(t, migrations.SQLite))
	addr := e.withComponent()
	for _, tc := range []struct{ name, comp, secret, want string }{
		{"wrong secret", testComponent, "guess", `<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`},
		{"unknown component", "other.example.test", "s3cret", `<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialComponent(t, addr, tc.comp, tc.secret, tc.want)
			r.expectClosed()
		})
	}
	// The right secret; a second connection is refused while it lives.
	r := dialComponent(t, addr, testComponent, "s3cret", `<handshake/>`)
	r2 := dialComponent(t, addr, testComponent, "s3cret", `<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>`)
	r2.expectClosed()
	// A stanza from outside the component's domain ends the stream.
	r.send(`<message from='alice@%s' to='bob@%s'><body>x</body></message>`, testDomain, testDomain)
	r.expect(`<invalid-from xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>`)
	r.expectClosed()
	// Once it is gone, the component connects again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r3 := dialComponent(t, addr, testComponent, "s3cret", `<handshake/>|<stream:error><conflict`)
		if e.srv.externalComponent(testComponent).connected() {
			break
		}
		r3.c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the component could not connect again")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestComponentHandshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e := newEnvWith(t, dbtest.Open(t, migrations.SQLite), testOrg, func(o *Options) { o.ComponentHandshakeTimeout = timeout })
	addr := e.withComponent()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := &rawConn{t: t, c: c, name: "silent"}
	r.send(`<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='%s'>`, testComponent)
	r.expect(`<stream:stream [^>]*id='[^']+'`)
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			break
		}
	}
	if d := time.Since(start); d > timeout+2*time.Second {
		t.Errorf("closed after %v, want about %v", d, timeout)
	}
}

// TestComponentRouting: users reach the component at its domain, at a
// JID in it and at a resource of it; the component's stanzas reach users
// (bare and full JIDs), its IQ results come back, the server answers its
// disco#info and ping, lists it in disco#items, and a stanza to it while
// it is not connected bounces with service-unavailable.
func TestComponentRouting(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		addr := e.withComponent()
		alice := e.online("alice", "pc")

		alice.send(`<iq type='get' id='d1' to='%s'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`, testDomain)
		alice.expect(`<iq type='result' id='d1'[^>]*>.*<item jid='` + testComponent + `'/>`)
		alice.send(`<message to='%s' type='chat' id='early'><body>anyone?</body></message>`, testComponent)
		alice.expect(`<message [^>]*id='early'[^>]*type='error'.*<service-unavailable`)

		comp := dialComponent(t, addr, testComponent, "s3cret", `<handshake/>`)
		for _, to := range []string{testComponent, "echo@" + testComponent, testComponent + "/res"} {
			alice.send(`<message to='%s' type='chat' id='m1'><body>hello</body></message>`, to)
			comp.expect(`<message [^>]*to='` + to + `'[^>]*>` + `<body>hello</body></message>`)
		}
		alice.send(`<iq type='get' id='q1' to='%s'><query xmlns='jabber:iq:version'/></iq>`, testComponent)
		comp.expect(`<iq type='get' id='q1' to='` + testComponent + `' from='alice@example.test/pc'><query xmlns='jabber:iq:version'/></iq>`)
		comp.send(`<iq type='result' id='q1' from='%s' to='alice@%s/pc'><query xmlns='jabber:iq:version'><name>bot</name></query></iq>`, testComponent, testDomain)
		alice.expect(`<iq type='result' id='q1' from='` + testComponent + `'[^>]*><query xmlns='jabber:iq:version'><name>bot</name>`)

		comp.send(`<message from='echo@%s' to='alice@%s' type='chat' id='c1'><body>hi from the bot</body></message>`, testComponent, testDomain)
		alice.expect(`<message [^>]*from='echo@` + testComponent + `'[^>]*><body>hi from the bot</body>`)
		comp.send(`<presence from='echo@%s' to='alice@%s/pc'/>`, testComponent, testDomain)
		alice.expect(`<presence from='echo@` + testComponent + `' to='alice@example.test/pc'/>`)

		// Blocking the component's domain (XEP-0191) stops what it sends.
		alice.send(`<iq type='set' id='bl'><block xmlns='urn:xmpp:blocking'><item jid='%s'/></block></iq>`, testComponent)
		alice.expect(`<iq type='result' id='bl'`)
		comp.send(`<message from='echo@%s' to='alice@%s' type='chat'><body>blocked</body></message>`, testComponent, testDomain)
		comp.send(`<iq type='get' id='b2' from='echo@%s' to='alice@%s/pc'><ping xmlns='urn:xmpp:ping'/></iq>`, testComponent, testDomain)
		comp.expect(`<iq [^>]*id='b2'[^>]*type='error'.*<service-unavailable`)
		alice.send(`<iq type='set' id='ub'><unblock xmlns='urn:xmpp:blocking'><item jid='%s'/></unblock></iq>`, testComponent)
		if got := alice.upTo(`<iq type='result' id='ub'`); strings.Contains(got, "blocked") {
			t.Errorf("a blocked component's message arrived: %q", got)
		}

		comp.send(`<iq type='get' id='p1' from='%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>`, testComponent, testDomain)
		comp.expect(`<iq type='result' id='p1' from='` + testDomain + `' to='` + testComponent + `'/>`)
		comp.send(`<iq type='get' id='i1' from='%s' to='%s'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, testComponent, testDomain)
		comp.expect(`<iq type='result' id='i1'[^>]*><query xmlns='http://jabber.org/protocol/disco#info'><identity category='server'`)
		comp.send(`<iq type='get' id='x1' from='%s' to='nobody@elsewhere.test'><ping xmlns='urn:xmpp:ping'/></iq>`, testComponent)
		comp.expect(`<iq [^>]*id='x1'[^>]*type='error'.*<remote-server-not-found`)
		// An IQ to a resource that is not online bounces.
		comp.send(`<iq type='get' id='x2' from='%s' to='alice@%s/gone'><ping xmlns='urn:xmpp:ping'/></iq>`, testComponent, testDomain)
		comp.expect(`<iq [^>]*id='x2'[^>]*type='error'.*<service-unavailable`)
	})
}

// TestComponentAcrossNodes: the component is connected to node a; alice,
// on node b, reaches it and it reaches her, and an IQ the server on node
// b sends it is answered there.
func TestComponentAcrossNodes(t *testing.T) {
	db := dbtest.Open(t, migrations.Postgres)
	a := clusterNode(t, db, "comp_a", nil)
	b := clusterNode(t, db, "comp_b", nil)
	if err := b.srv.AddExternalComponent(testComponent, "s3cret"); err != nil {
		t.Fatal(err)
	}
	addr := a.withComponent()
	comp := dialComponent(t, addr, testComponent, "s3cret", `<handshake/>`)
	alice := b.online("alice", "pc")
	deadline := time.Now().Add(5 * time.Second)
	for len(a.srv.cl.Sessions(mustID(t, a, "alice"))) == 0 || len(b.srv.cl.Nodes()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the nodes never saw each other")
		}
		time.Sleep(10 * time.Millisecond)
	}
	alice.send(`<message to='echo@%s' type='chat' id='m1'><body>across</body></message>`, testComponent)
	comp.expect(`<message [^>]*from='alice@example.test/pc'[^>]*><body>across</body>`)
	comp.send(`<message from='echo@%s' to='alice@%s' type='chat' id='c1'><body>back</body></message>`, testComponent, testDomain)
	alice.expect(`<message [^>]*from='echo@` + testComponent + `'[^>]*><body>back</body>`)

	got := make(chan string, 1)
	b.srv.SendIQ(context.Background(), NewElement(NSClient, "iq", "type", "get", "to", testComponent).AddChild(NewElement(NSPing, "ping")), 5*time.Second,
		func(r *Element) {
			if r == nil {
				got <- "timeout"
				return
			}
			got <- r.AttrValue("type")
		})
	id := comp.expect(`<iq type='get' to='` + testComponent + `' id='([^']+)' from='` + testDomain + `'>`)[1]
	comp.send(`<iq type='result' id='%s' from='%s' to='%s'/>`, id, testComponent, testDomain)
	if r := <-got; r != "result" {
		t.Errorf("got %s, want result", r)
	}
}

// TestComponentSlixmpp runs testdata/component.py: slixmpp's
// ComponentXMPP connects, and a slixmpp client talks to it through the
// server.
func TestComponentSlixmpp(t *testing.T) {
	e := newEnv(t, dbtest.Open(t, migrations.SQLite))
	caddr := e.withComponent()
	_, port, _ := net.SplitHostPort(e.addr)
	_, cport, _ := net.SplitHostPort(caddr)
	xmpptest.RunSlixmpp(t, "testdata/component.py", "127.0.0.1", port, cport, testDomain, "secret", testComponent, "s3cret")
}

// TestComponentStanzaTooLarge: the component's stanzas are bounded like a
// client's: a larger one ends the stream with policy-violation.
func TestComponentStanzaTooLarge(t *testing.T) {
	e := newEnv(t, dbtest.Open(t, migrations.SQLite))
	comp := dialComponent(t, e.withComponent(), testComponent, "s3cret", `<handshake/>`)
	go comp.c.Write([]byte(`<message from='` + testComponent + `' to='alice@` + testDomain + `'><body>` + strings.Repeat("x", MaxStanzaSize) + `</body></message>`))
	comp.expect(`<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>`)
}
