//go:build linux

package xmppcore

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// TestIdleReader checks that an idle TLS connection waits for input outside
// the XML decoder, and that input arriving in every shape (several stanzas
// in one TLS record, a stanza split across records, whitespace) is served.
func TestIdleReader(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		r := e.dial("a")
		r.login("alice", "desk", true)

		// Three pings in one write: one TLS record.
		r.send(`<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq><iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq><iq type='get' id='p3'><ping xmlns='urn:xmpp:ping'/></iq>`)
		for _, id := range []string{"p1", "p2", "p3"} {
			r.expect(`<iq [^>]*id='` + id + `'[^>]*type='result'|<iq [^>]*type='result'[^>]*id='` + id + `'`)
		}
		// One stanza in two records, with a pause between them.
		r.send(`<iq type='get' id='p4'><ping xml`)
		time.Sleep(50 * time.Millisecond)
		r.send(`ns='urn:xmpp:ping'/></iq>`)
		r.expect(`id='p4'`)
		// A whitespace keepalive, then a stanza.
		r.send(" ")
		time.Sleep(50 * time.Millisecond)
		r.send(`<iq type='get' id='p5'><ping xmlns='urn:xmpp:ping'/></iq>`)
		r.expect(`id='p5'`)

		// Idle now: the reader waits in awaitInput, not in the decoder.
		waitFor(t, "an idle reader outside the decoder", func() bool {
			parked, inDecoder := readerStacks()
			return parked == 1 && inDecoder == 0
		})

		// The peer goes away while the reader waits: the session ends.
		r.c.Close()
		waitFor(t, "the connection to close", func() bool { return e.srv.Stats().Connections == 0 })
	})
}

// readerStacks counts the connection readers waiting for input outside
// the decoder and those blocked inside it.
func readerStacks() (parked, inDecoder int) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		switch {
		case strings.Contains(g, "(*conn).awaitInput") && !strings.Contains(g, "encoding/xml"):
			parked++
		case strings.Contains(g, "(*conn).serve") && strings.Contains(g, "encoding/xml"):
			inDecoder++
		}
	}
	return parked, inDecoder
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
