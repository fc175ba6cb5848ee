package xmppcore

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// boshClient posts BOSH bodies to a test server.
type boshClient struct {
	t   *testing.T
	url string
	c   *http.Client
	sid string
	rid int
}

// post sends a body with the next rid and the given attributes and
// payload; it returns the answer.
func (b *boshClient) post(attrs, payload string) string {
	b.t.Helper()
	b.rid++
	return b.postRID(b.rid, attrs, payload)
}

func (b *boshClient) postRID(rid int, attrs, payload string) string {
	b.t.Helper()
	body := "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' rid='" + itoa(int64(rid)) + "'"
	if b.sid != "" {
		body += " sid='" + b.sid + "'"
	}
	body += " " + attrs + ">" + payload + "</body>"
	resp, err := b.c.Post(b.url, "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		b.t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("post: status %d: %s", resp.StatusCode, out)
	}
	return string(out)
}

func mustMatch(t *testing.T, what, got, pattern string) []string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("%s: got %s, want %s", what, got, pattern)
	}
	return m
}

// TestBOSH: XEP-0206 through the same stream code as TCP: session
// creation with the features, SASL, restart, bind, a held request that
// takes a message from another user, a retransmitted rid answered again,
// terminate; bad input gets the standard terminate conditions and HTTP
// errors and starts nothing.
func TestBOSH(t *testing.T) {
	e := newEnv(t, dbtest.Open(t, migrations.SQLite))
	ts := httptest.NewTLSServer(e.srv.BOSHHandler())
	defer ts.Close()
	b := &boshClient{t: t, url: ts.URL, c: ts.Client(), rid: 1000}

	created := b.post("to='example.test' wait='2' hold='1' xml:lang='en' xmpp:version='1.0'", "")
	b.sid = mustMatch(t, "session creation", created, `sid='([^']+)'`)[1]
	for _, want := range []string{"hold='1'", "requests='2'", "wait='2'", "<stream:features>", "<mechanism>PLAIN</mechanism>", "xmpp:version='1.0'"} {
		if !strings.Contains(created, want) {
			t.Errorf("creation answer lacks %s: %s", want, created)
		}
	}
	mustMatch(t, "auth", b.post("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+plainAuth("alice", "secret")+"</auth>"), `<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'`)
	mustMatch(t, "restart", b.post("xmpp:restart='true' to='example.test'", ""), `<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'`)
	mustMatch(t, "bind", b.post("", "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bosh</resource></bind></iq>"), `<jid>alice@example.test/bosh</jid>`)
	// A stanza without its namespace is taken as jabber:client.
	b.post("", "<presence/>")

	// An empty request waits; bob's message comes in it.
	bob := e.pipe("bob")
	bob.login("bob", "pipe", false)
	got := make(chan string, 1)
	go func() { got <- b.post("", "") }()
	time.Sleep(100 * time.Millisecond)
	bob.send(`<message to='alice@example.test/bosh' type='chat' id='m1'><body>через BOSH</body></message>`)
	select {
	case g := <-got:
		mustMatch(t, "held request", g, `<message [^>]*from='bob@example.test/pipe'[^>]*>.*через BOSH`)
	case <-time.After(5 * time.Second):
		t.Fatal("the held request got no message")
	}
	// With nothing to send, a request comes back empty after wait.
	start := time.Now()
	if g := b.post("", ""); !strings.HasSuffix(g, "/>") || time.Since(start) < time.Second {
		t.Errorf("idle request: %q after %v", g, time.Since(start))
	}
	// The last rid again: the same answer.
	last := b.rid
	if g := b.postRID(last, "", ""); !strings.HasSuffix(g, "/>") {
		t.Errorf("retransmission: %s", g)
	}
	// A rid far ahead ends the session.
	mustMatch(t, "rid out of window", b.postRID(last+10, "", ""), `type='terminate' condition='item-not-found'`)
	mustMatch(t, "after the end", b.post("", ""), `condition='item-not-found'`)

	// A second session, ended by the client.
	c := &boshClient{t: t, url: ts.URL, c: ts.Client(), rid: 7}
	c.sid = mustMatch(t, "second creation", c.post("to='example.test' wait='1' hold='1' xmpp:version='1.0'", ""), `sid='([^']+)'`)[1]
	mustMatch(t, "terminate", c.post("type='terminate'", ""), `type='terminate'`)

	// Bad input.
	x := &boshClient{t: t, url: ts.URL, c: ts.Client()}
	mustMatch(t, "other host", x.post("to='other.test' wait='1' hold='1'", ""), `condition='host-unknown'`)
	x.sid = "nope"
	mustMatch(t, "unknown sid", x.post("", ""), `condition='item-not-found'`)
	for _, tc := range []struct {
		name, method, body string
		status             int
	}{
		{"get", "GET", "", http.StatusMethodNotAllowed},
		{"not a body", "POST", "<iq/>", http.StatusBadRequest},
		{"not xml", "POST", "<body", http.StatusBadRequest},
		{"too large", "POST", "<body xmlns='http://jabber.org/protocol/httpbind' rid='1'>" + strings.Repeat("x", BOSHMaxRequest) + "</body>", http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.URL, strings.NewReader(tc.body))
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("got %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

// TestBOSHInactivity: a session whose client holds no request for the
// inactivity time ends (its account goes offline); a later request gets
// item-not-found.
func TestBOSHInactivity(t *testing.T) {
	e := newEnv(t, dbtest.Open(t, migrations.SQLite))
	h := e.srv.BOSHHandler().(*boshHandler)
	h.inactivity = 300 * time.Millisecond
	ts := httptest.NewTLSServer(h)
	defer ts.Close()
	b := &boshClient{t: t, url: ts.URL, c: ts.Client(), rid: 1}
	b.sid = mustMatch(t, "creation", b.post("to='example.test' wait='1' hold='1' xmpp:version='1.0'", ""), `sid='([^']+)'`)[1]
	b.post("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+plainAuth("carol", "secret")+"</auth>")
	b.post("xmpp:restart='true' to='example.test'", "")
	mustMatch(t, "bind", b.post("", "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"), `<jid>carol@`)
	carol, err := e.rs.UserByLogin(context.Background(), "carol")
	if err != nil {
		t.Fatal(err)
	}
	if !e.srv.Online(carol.ID) {
		t.Fatal("carol is not online over BOSH")
	}
	for i := 0; e.srv.Online(carol.ID); i++ {
		if i > 50 {
			t.Fatal("an inactive BOSH session did not end")
		}
		time.Sleep(100 * time.Millisecond)
	}
	mustMatch(t, "after inactivity", b.post("", ""), `condition='item-not-found'`)
}
