package xmppcore

import (
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

func TestStats(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		r := e.pipe("a")
		r.open()
		r.expect(`</stream:features>`)
		r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth("alice", "wrong"))
		r.expect(`<not-authorized/>`)
		r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth("alice", "secret"))
		r.expect(`<success`)
		r.open()
		r.expect(`<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>`)
		r.send(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`)
		r.expect(`<jid>`)
		r.send(`<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`)
		r.expect(`id='p1'`)

		st := e.srv.Stats()
		if st.Connections != 1 || st.Users != 1 || st.Sessions != 1 || st.AuthFailures != 1 || st.StanzasIn < 1 {
			t.Fatalf("stats with one session: got %+v; want 1 connection, user, session, auth failure and a stanza", st)
		}
		r.send(`</stream:stream>`)
		deadline := time.Now().Add(5 * time.Second)
		for e.srv.Stats().Sessions != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		st = e.srv.Stats()
		if st.Sessions != 0 || st.Closed[closeNormal] != 1 {
			t.Fatalf("stats after close: got %+v; want no sessions and one normal close", st)
		}
	})
}

// A stanza routed to a stream that is closing cleanly must not turn its
// logout into a slow-consumer close (402 of 2,000 clean logouts were
// counted so).
func TestCleanCloseNotSlowConsumer(t *testing.T) {
	e := newEnv(t, dbtest.Open(t, migrations.SQLite))
	acc, err := e.srv.users.byLogin(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		r := e.dial("alice")
		r.login("alice", "r"+itoa(int64(i)), true)
		sess := e.srv.router.sessions(acc.ID)[0]
		c := sess.sink.(*conn)
		// The logout has begun (the reader saw </stream:stream>) when a
		// stanza for the session arrives.
		c.closeFromReader(closeNormal, nil)
		sess.deliver(NewElement(NSClient, "message", "from", "bob@"+testDomain, "type", "chat"))
		r.expectClosed()
		waitFor(t, "the session to end", func() bool { return len(e.srv.router.sessions(acc.ID)) == 0 })
	}
	st := e.srv.Stats()
	if st.Closed[closeNormal] != n || st.Closed[closeSlowConsumer] != 0 {
		t.Errorf("closed normal %d, slow-consumer %d; want %d and 0", st.Closed[closeNormal], st.Closed[closeSlowConsumer], n)
	}
}
