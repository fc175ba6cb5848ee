package xmppcore

import (
	"encoding/base64"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jmoiron/sqlx"
	"mellium.im/sasl"

	"vestnik/migrations/dbtest"
)

// wsConn is a scripted RFC 7395 session: one element per message.
type wsConn struct {
	t   *testing.T
	ws  *websocket.Conn
	buf string
}

func (w *wsConn) send(s string) {
	w.t.Helper()
	if err := w.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		w.t.Fatalf("ws send: %v", err)
	}
}

func (w *wsConn) expect(pattern string) []string {
	w.t.Helper()
	re := regexp.MustCompile(pattern)
	w.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if m := re.FindStringSubmatchIndex(w.buf); m != nil {
			out := make([]string, len(m)/2)
			for i := range out {
				if m[2*i] >= 0 {
					out[i] = w.buf[m[2*i]:m[2*i+1]]
				}
			}
			w.buf = w.buf[m[1]:]
			return out
		}
		_, msg, err := w.ws.ReadMessage()
		if err != nil {
			w.t.Fatalf("ws expect %q: %v; got %s", pattern, err, clip([]byte(w.buf)))
		}
		w.buf += string(msg) + "\n"
	}
}

// scram runs a SCRAM exchange with the mellium client negotiator.
func scram(t *testing.T, mech sasl.Mechanism, user, pass string, send func(string), expect func(string) []string) {
	t.Helper()
	c := sasl.NewClient(mech, sasl.Credentials(func() ([]byte, []byte, []byte) { return []byte(user), []byte(pass), nil }))
	_, first, err := c.Step(nil)
	if err != nil {
		t.Fatal(err)
	}
	send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='` + mech.Name + `'>` + base64.StdEncoding.EncodeToString(first) + `</auth>`)
	ch, _ := base64.StdEncoding.DecodeString(expect(`<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>([^<]+)</challenge>`)[1])
	_, final, err := c.Step(ch)
	if err != nil {
		t.Fatal(err)
	}
	send(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>` + base64.StdEncoding.EncodeToString(final) + `</response>`)
	v, _ := base64.StdEncoding.DecodeString(expect(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>([^<]+)</success>`)[1])
	if _, _, err := c.Step(v); err != nil {
		t.Fatalf("server signature: %v", err)
	}
}

func TestWebSocket(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		hs := httptest.NewServer(e.srv.WebSocketHandler())
		defer hs.Close()
		d := websocket.Dialer{Subprotocols: []string{"xmpp"}}
		ws, resp, err := d.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		if resp.Header.Get("Sec-WebSocket-Protocol") != "xmpp" {
			t.Fatalf("subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
		}
		w := &wsConn{t: t, ws: ws}
		open := `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.test' version='1.0'/>`
		w.send(open)
		w.expect(`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='example.test' id='[^']+' version='1.0'`)
		mechs := w.expect(`<stream:features xmlns:stream='http://etherx.jabber.org/streams'><c xmlns='http://jabber.org/protocol/caps'[^>]*/><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>(.*?)</mechanisms>`)[1]
		if strings.Contains(mechs, "PLAIN") {
			t.Errorf("PLAIN offered without TLS: %s", mechs)
		}
		// PLAIN is refused without TLS even when asked for.
		w.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + plainAuth("alice", "secret") + `</auth>`)
		w.expect(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><encryption-required/></failure>`)
		scram(t, sasl.ScramSha1, "alice", "secret", w.send, w.expect)
		w.send(open)
		w.expect(`<open `)
		w.expect(`<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>`)
		w.send(`<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>`)
		w.expect(`<iq xmlns='jabber:client' type='result' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@example.test/web</jid></bind></iq>`)
		w.send(`<presence xmlns='jabber:client'/>`)

		b := e.online("bob", "tcp")
		b.send(`<message to='alice@example.test' type='chat' id='w1'><body>to the web</body></message>`)
		// Live, or (when it raced alice's initial presence) by the offline
		// flush: either way once.
		w.expect(`<message xmlns='jabber:client' [^>]*id='w1'[^>]*><body>to the web</body>`)
		w.send(`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`)
		w.expect(`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`)
		b.expect(`<presence from='alice@example.test/web' type='unavailable'`)
	})
}

func TestSCRAMOverTLS(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		for _, m := range []sasl.Mechanism{sasl.ScramSha256, sasl.ScramSha1} {
			r := e.dial(m.Name)
			r.starttls()
			r.expect(`</stream:features>`)
			send := func(s string) { r.send("%s", s) }
			scram(t, m, "bob", "secret", send, r.expect)
			r.open()
			r.expect(`<bind `)
			// A wrong password fails with not-authorized.
			w := e.dial(m.Name + " wrong")
			w.starttls()
			w.expect(`</stream:features>`)
			c := sasl.NewClient(m, sasl.Credentials(func() ([]byte, []byte, []byte) { return []byte("bob"), []byte("bad"), nil }))
			_, first, _ := c.Step(nil)
			w.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>%s</auth>`, m.Name, base64.StdEncoding.EncodeToString(first))
			ch, _ := base64.StdEncoding.DecodeString(w.expect(`<challenge [^>]*>([^<]+)</challenge>`)[1])
			_, final, _ := c.Step(ch)
			w.send(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>`, base64.StdEncoding.EncodeToString(final))
			w.expect(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>`)
		}
	})
}

// TestWebSocketSMResume: XEP-0198 over RFC 7395 (as Converse.js uses it):
// the socket is cut, a new one resumes and gets the unacknowledged message.
func TestWebSocketSMResume(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		hs := httptest.NewServer(e.srv.WebSocketHandler())
		defer hs.Close()
		open := `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.test' version='1.0'/>`
		login := func() *wsConn {
			d := websocket.Dialer{Subprotocols: []string{"xmpp"}}
			ws, _, err := d.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ws.Close() })
			w := &wsConn{t: t, ws: ws}
			w.send(open)
			w.expect(`</stream:features>`)
			scram(t, sasl.ScramSha256, "alice", "secret", w.send, w.expect)
			w.send(open)
			w.expect(`<sm xmlns='urn:xmpp:sm:3'/>`)
			return w
		}
		w := login()
		w.send(`<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>`)
		w.expect(`<jid>alice@example.test/web</jid>`)
		w.send(`<presence xmlns='jabber:client'/>`)
		w.send(`<iq xmlns='jabber:client' type='get' id='s'><ping xmlns='urn:xmpp:ping'/></iq>`)
		w.expect(`id='s'`)
		w.send(`<enable xmlns='urn:xmpp:sm:3' resume='true'/>`)
		id := w.expect(`<enabled xmlns='urn:xmpp:sm:3' id='([^']+)' resume='true'`)[1]

		b := e.online("bob", "tcp")
		b.send(`<message to='alice@example.test' type='chat' id='w1'><body>over the web</body></message>`)
		w.expect(`<body>over the web</body>`)
		w.ws.UnderlyingConn().Close() // no ack, no close

		w2 := login()
		w2.send(`<resume xmlns='urn:xmpp:sm:3' previd='` + id + `' h='0'/>`)
		w2.expect(`<resumed xmlns='urn:xmpp:sm:3' previd='` + regexp.QuoteMeta(id) + `' h='0'/>`)
		w2.send(`<iq xmlns='jabber:client' type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
		got := w2.expect(`(?s)(.*?)id='sync'`)[1]
		if n := strings.Count(got, "<body>over the web</body>"); n != 1 {
			t.Errorf("after resume: got the message %d times, want 1: %s", n, clip([]byte(got)))
		}
	})
}
