package push

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/xmpptest"
)

const (
	domain  = "example.test"
	appJID  = "push.example.test"
	secret  = "s3cret"
	testOrg = `{"departments": [{"id": "1", "name": "Company", "parent": null, "head": "1"}],
 "employees": [
  {"id": "1", "login": "alice", "name": "Alice", "departments": ["1"], "password": "secret"},
  {"id": "2", "login": "bob", "name": "Bob", "departments": ["1"], "password": "secret"}
 ]}`
)

type world struct {
	t     *testing.T
	db    *sqlx.DB
	srv   *xmppcore.Server
	push  *Service
	addr  string // c2s
	caddr string // components
}

func newWorld(t *testing.T, db *sqlx.DB, opts Options) *world {
	t.Helper()
	ctx := context.Background()
	rs := roster.NewStore(db)
	snap, err := roster.ParseJSON(strings.NewReader(testOrg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Import(ctx, snap, false); err != nil {
		t.Fatal(err)
	}
	srv := xmppcore.NewServer(db, rs, mam.NewStore(db), xmppcore.Options{Domain: domain, TLSConfig: xmpptest.SelfSigned(t, domain), AuthFailureDelay: -1})
	if err := srv.AddExternalComponent(appJID, secret); err != nil {
		t.Fatal(err)
	}
	p := New(NewStore(db), srv, opts)
	p.Register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeC2S(ln)
	go srv.ServeComponents(cln)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	return &world{t: t, db: db, srv: srv, push: p, addr: ln.Addr().String(), caddr: cln.Addr().String()}
}

func (w *world) login(user string) *xmpptest.Client {
	w.t.Helper()
	c := xmpptest.Dial(w.t, w.addr, user+"@"+domain, "phone", "secret")
	c.Send(`<presence/>`)
	c.Send(`<iq type='get' id='ready'><ping xmlns='urn:xmpp:ping'/></iq>`)
	c.Expect("id='ready'")
	return c
}

func (w *world) userID(login string) int64 {
	w.t.Helper()
	acc, err := w.srv.UserByLogin(context.Background(), login)
	if err != nil {
		w.t.Fatal(err)
	}
	return acc.ID
}

// appServer is a XEP-0114 component standing for the app server: raw XML
// over TCP, matched with regular expressions.
type appServer struct {
	t   *testing.T
	c   net.Conn
	buf []byte
}

func (w *world) appServer() *appServer {
	w.t.Helper()
	c, err := net.Dial("tcp", w.caddr)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { c.Close() })
	a := &appServer{t: w.t, c: c}
	a.send(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='` + appJID + `'>`)
	id := a.expect(`id='([^']+)'`)[1]
	sum := sha1.Sum([]byte(id + secret))
	a.send(`<handshake>` + hex.EncodeToString(sum[:]) + `</handshake>`)
	a.expect(`<handshake/>`)
	return a
}

func (a *appServer) send(s string) {
	a.t.Helper()
	if _, err := a.c.Write([]byte(s)); err != nil {
		a.t.Fatal(err)
	}
}

func (a *appServer) expect(pattern string) []string {
	a.t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(5 * time.Second)
	tmp := make([]byte, 4096)
	for {
		if m := re.FindSubmatchIndex(a.buf); m != nil {
			out := make([]string, len(m)/2)
			for i := range out {
				if m[2*i] >= 0 {
					out[i] = string(a.buf[m[2*i]:m[2*i+1]])
				}
			}
			a.buf = a.buf[m[1]:]
			return out
		}
		a.c.SetReadDeadline(deadline)
		n, err := a.c.Read(tmp)
		a.buf = append(a.buf, tmp[:n]...)
		if err != nil {
			a.t.Fatalf("app server: expect %q: %v; got %q", pattern, err, a.buf)
		}
	}
}

// expectNone checks that nothing matching pattern arrives within d.
func (a *appServer) expectNone(pattern string, d time.Duration) {
	a.t.Helper()
	re := regexp.MustCompile(pattern)
	a.c.SetReadDeadline(time.Now().Add(d))
	tmp := make([]byte, 4096)
	for {
		n, err := a.c.Read(tmp)
		a.buf = append(a.buf, tmp[:n]...)
		if re.Match(a.buf) {
			a.t.Fatalf("app server: unexpected %q in %q", pattern, a.buf)
		}
		if err != nil {
			return
		}
	}
}

// publish matches one publish to the app server and returns its id and
// the whole iq.
const publish = `<iq type='set' from='bob@example.test' to='push.example.test' id='([^']+)'>(.*?)</iq>`

func enable(c *xmpptest.Client, id, extra string) {
	c.Send(`<iq type='set' id='` + id + `'><enable xmlns='urn:xmpp:push:0' jid='` + appJID + `' node='n1'>` + extra + `</enable></iq>`)
}

const secretForm = `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>tok</value></field></x>`

func TestEnableDisable(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db, Options{})
		bob := w.login("bob")
		bob.Send(`<iq type='get' id='info' to='bob@example.test'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		bob.Expect(`id='info'`, `var='urn:xmpp:push:0'`)

		for _, tc := range []struct{ name, iq, want string }{
			{"no node", `<enable xmlns='urn:xmpp:push:0' jid='` + appJID + `'/>`, "bad-request"},
			{"no jid", `<enable xmlns='urn:xmpp:push:0' node='n1'/>`, "bad-request"},
			{"remote app server", `<enable xmlns='urn:xmpp:push:0' jid='push.elsewhere.test' node='n1'/>`, "remote-server-not-found"},
			{"other form", `<enable xmlns='urn:xmpp:push:0' jid='` + appJID + `' node='n1'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x></enable>`, "bad-request"},
			{"get", "", "bad-request"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.iq == "" {
					bob.Send(`<iq type='get' id='e-` + tc.name + `'><enable xmlns='urn:xmpp:push:0' jid='` + appJID + `' node='n1'/></iq>`)
				} else {
					bob.Send(`<iq type='set' id='e-` + tc.name + `'>` + tc.iq + `</iq>`)
				}
				bob.Expect(`id='e-`+tc.name+`'`, `type='error'`, tc.want)
			})
		}
		list := func() []Registration {
			t.Helper()
			regs, err := w.push.store.List(context.Background(), w.userID("bob"))
			if err != nil {
				t.Fatal(err)
			}
			return regs
		}
		if n := len(list()); n != 0 {
			t.Fatalf("refused enables stored %d registrations", n)
		}
		enable(bob, "e1", secretForm)
		bob.Expect(`id='e1'`, `type='result'`)
		enable(bob, "e2", "") // the same node again: options replaced
		bob.Expect(`id='e2'`, `type='result'`)
		bob.Send(`<iq type='set' id='e3'><enable xmlns='urn:xmpp:push:0' jid='` + appJID + `' node='n2'/></iq>`)
		bob.Expect(`id='e3'`, `type='result'`)
		if regs := list(); len(regs) != 2 || regs[0].Node != "n1" || regs[0].Options != "" || regs[1].Node != "n2" {
			t.Fatalf("got %+v, want n1 without options and n2", regs)
		}
		bob.Send(`<iq type='set' id='d1'><disable xmlns='urn:xmpp:push:0' jid='` + appJID + `' node='n1'/></iq>`)
		bob.Expect(`id='d1'`, `type='result'`)
		if regs := list(); len(regs) != 1 || regs[0].Node != "n2" {
			t.Fatalf("after disabling n1: %+v", regs)
		}
		enable(bob, "e4", "")
		bob.Expect(`id='e4'`, `type='result'`)
		bob.Send(`<iq type='set' id='d2'><disable xmlns='urn:xmpp:push:0' jid='` + appJID + `'/></iq>`)
		bob.Expect(`id='d2'`, `type='result'`)
		if regs := list(); len(regs) != 0 {
			t.Fatalf("after disabling the jid: %+v", regs)
		}
	})
}

// TestPublish: bob enables push and goes offline; alice's message makes
// the server publish the summary (no body by default) with bob's
// publish options to the app server, from bob's bare JID.
func TestPublish(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db, Options{})
		app := w.appServer()
		// No registration yet: nothing is pushed (and bob is remembered
		// as having none, until he enables push).
		alice := w.login("alice")
		alice.Send(`<message to='bob@example.test' type='chat' id='m0'><body>before</body></message>`)
		app.expectNone(`<publish`, 200*time.Millisecond)

		bob := w.login("bob")
		enable(bob, "e1", secretForm)
		bob.Expect(`id='e1'`, `type='result'`)
		bob.Sess.Close()
		waitOffline(t, w, "bob")

		alice.Send(`<message to='bob@example.test' type='chat' id='m1'><body>secret plans</body></message>`)
		m := app.expect(publish)
		id, got := m[1], m[2]
		want := `<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n1'><item><notification xmlns='urn:xmpp:push:0'>` +
			`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:push:summary</value></field>` +
			`<field var='message-count'><value>1</value></field><field var='last-message-sender'><value>alice@example.test</value></field></x>` +
			`</notification></item></publish><publish-options>` + secretForm + `</publish-options></pubsub>`
		if got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
		app.send(`<iq type='result' id='` + id + `' from='` + appJID + `' to='bob@example.test'/>`)

		// A notification (a chat mention) pushes too; bob online again: nothing.
		if _, err := w.srv.Notify(context.Background(), w.userID("bob"), "You were mentioned", ""); err != nil {
			t.Fatal(err)
		}
		app.expect(`<field var='message-count'><value>2</value></field><field var='last-message-sender'><value>example.test</value></field>.*?</iq>`)
		w.login("bob")
		alice.Send(`<message to='bob@example.test' type='chat' id='m2'><body>now?</body></message>`)
		app.expectNone(`<publish`, 300*time.Millisecond)
	})
}

func waitOffline(t *testing.T, w *world, login string) {
	t.Helper()
	id := w.userID(login)
	deadline := time.Now().Add(5 * time.Second)
	for w.srv.Online(id) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still online", login)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPublishBodyAndRate: with Options.Body the text is in the
// notification (cut to MaxBody); a burst is pushed once at once and once
// more when the rate allows, summing up the rest.
func TestPublishBodyAndRate(t *testing.T) {
	db := dbtest.Open(t, migrations.SQLite)
	w := newWorld(t, db, Options{Body: true, Burst: 1, Every: 400 * time.Millisecond})
	app := w.appServer()
	bob := w.login("bob")
	enable(bob, "e1", "")
	bob.Expect(`id='e1'`, `type='result'`)
	bob.Sess.Close()
	waitOffline(t, w, "bob")
	alice := w.login("alice")
	long := strings.Repeat("я", MaxBody+10)
	alice.Send(`<message to='bob@example.test' type='chat'><body>` + long + `</body></message>`)
	app.expect(`<field var='message-count'><value>1</value></field><field var='last-message-sender'><value>alice@example.test</value></field><field var='last-message-body'><value>` + strings.Repeat("я", MaxBody) + `…</value></field>.*?</iq>`)
	start := time.Now()
	for _, b := range []string{"two", "three", "four"} {
		alice.Send(`<message to='bob@example.test' type='chat'><body>` + b + `</body></message>`)
	}
	app.expect(`<field var='message-count'><value>4</value></field><field var='last-message-sender'><value>alice@example.test</value></field><field var='last-message-body'><value>four</value></field>.*?</iq>`)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("the second push came after %v, want the rate's 400 ms", d)
	}
	app.expectNone(`<publish`, 600*time.Millisecond)
}

// TestErrorDisables: an app server's error that says the registration is
// gone disables it; a temporary one (type wait) does not.
func TestErrorDisables(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db, Options{})
		app := w.appServer()
		bob := w.login("bob")
		enable(bob, "e1", "")
		bob.Expect(`id='e1'`, `type='result'`)
		bob.Sess.Close()
		waitOffline(t, w, "bob")
		alice := w.login("alice")
		regs := func() int {
			t.Helper()
			r, err := w.push.store.List(context.Background(), w.userID("bob"))
			if err != nil {
				t.Fatal(err)
			}
			return len(r)
		}

		alice.Send(`<message to='bob@example.test' type='chat'><body>one</body></message>`)
		id := app.expect(publish)[1]
		app.send(`<iq type='error' id='` + id + `' from='` + appJID + `' to='bob@example.test'><error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`)
		time.Sleep(100 * time.Millisecond)
		if n := regs(); n != 1 {
			t.Fatalf("a temporary error: %d registrations, want 1", n)
		}

		alice.Send(`<message to='bob@example.test' type='chat'><body>two</body></message>`)
		id = app.expect(publish)[1]
		app.send(`<iq type='error' id='` + id + `' from='` + appJID + `' to='bob@example.test'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`)
		deadline := time.Now().Add(3 * time.Second)
		for regs() != 0 {
			if time.Now().After(deadline) {
				t.Fatal("item-not-found did not disable the registration")
			}
			time.Sleep(20 * time.Millisecond)
		}
		alice.Send(`<message to='bob@example.test' type='chat'><body>three</body></message>`)
		app.expectNone(`<publish`, 300*time.Millisecond)
	})
}
