package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// xclient is a real XMPP client (mellium) over TCP with STARTTLS and
// SCRAM, scripted with send and expect.
type xclient struct {
	t    testing.TB
	sess *xmpp.Session
	jid  string // the bound full JID
	conn net.Conn
	in   chan string
	seen []string
}

func xdial(t testing.TB, addr, bare, password string) *xclient {
	t.Helper()
	j := jid.MustParse(bare)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// The deadline is set on the connection, not through a context:
	// mellium's context watcher may fire after the login returned and
	// cut a later read or write short.
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	sess, err := xmpp.NewClientSession(context.Background(), j, conn,
		xmpp.StartTLS(&tls.Config{InsecureSkipVerify: true, ServerName: j.Domainpart()}),
		xmpp.SASL("", password, sasl.ScramSha256, sasl.ScramSha1),
		xmpp.BindResource(),
	)
	if err != nil {
		conn.Close()
		t.Fatalf("login %s: %v", bare, err)
	}
	conn.SetDeadline(time.Time{})
	c := &xclient{t: t, sess: sess, jid: sess.LocalAddr().String(), conn: conn, in: make(chan string, 10000)}
	go sess.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		raw, err := serialize(r, start)
		if err != nil {
			return err
		}
		c.in <- raw
		return nil
	}))
	t.Cleanup(c.close)
	return c
}

func (c *xclient) close() { c.sess.Close(); c.conn.Close() }

func (c *xclient) send(raw string) {
	c.t.Helper()
	if err := c.trySend(raw); err != nil {
		c.t.Fatalf("send %s: %v", raw, err)
	}
}

// trySend is send for other goroutines than the test's. It uses no
// deadline of its own: a context cancelled right after one Send makes
// mellium cut the next one short when many are sent back to back.
func (c *xclient) trySend(raw string) error {
	return c.sess.Send(context.Background(), xml.NewDecoder(strings.NewReader(raw)))
}

// expect waits for a stanza containing every part, skipping others.
func (c *xclient) expect(parts ...string) string {
	c.t.Helper()
	match := func(s string) bool {
		for _, p := range parts {
			if !strings.Contains(s, p) {
				return false
			}
		}
		return true
	}
	for i, s := range c.seen {
		if match(s) {
			c.seen = append(c.seen[:i], c.seen[i+1:]...)
			return s
		}
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-c.in:
			if match(s) {
				return s
			}
			c.seen = append(c.seen, s)
		case <-deadline:
			c.t.Fatalf("no stanza with %q; got:\n%s", parts, strings.Join(c.seen, "\n"))
			return ""
		}
	}
}

// expectNone fails if a stanza containing part arrived or arrives within d.
func (c *xclient) expectNone(d time.Duration, part string) {
	c.t.Helper()
	deadline := time.After(d)
	for {
		for _, s := range c.seen {
			if strings.Contains(s, part) {
				c.t.Fatalf("unexpected stanza: %s", s)
			}
		}
		select {
		case s := <-c.in:
			c.seen = append(c.seen, s)
		case <-deadline:
			return
		}
	}
}

// TestClusterEndToEnd runs two `vestnik serve` processes on one
// PostgreSQL database: users logged in on different nodes exchange
// personal messages and see each other's presence.
func TestClusterEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	u := dbtest.URL(t, migrations.Postgres)
	a := startServer(t, bin, u, "--demo", "on", "--node-id", "node_a")
	b := startServer(t, bin, u, "--demo", "off", "--node-id", "node_b")

	// carol (on B) is online first; bob (same department) logs in on A.
	carol := xdial(t, b.c2sAt, "carol@example.test", "demo")
	carol.send(`<presence xmlns='jabber:client'/>`)
	time.Sleep(200 * time.Millisecond)
	bob := xdial(t, a.c2sAt, "bob@example.test", "demo")
	bob.send(`<presence xmlns='jabber:client'><show>chat</show></presence>`)

	// Presence crosses both ways: broadcast to B, and carol's from the
	// registry when bob comes online on A.
	defer func() {
		if t.Failed() {
			t.Logf("node A:\n%s\nnode B:\n%s", a.out, b.out)
			if db, err := migrations.Open(context.Background(), u); err == nil {
				var nodes []string
				db.Select(&nodes, `SELECT id || ' ' || route FROM nodes`)
				t.Logf("nodes: %q", nodes)
				for _, srv := range []*server{a, b} {
					_, m := get(t, "http://"+srv.httpAt+"/metrics")
					for _, l := range strings.Split(m, "\n") {
						if strings.HasPrefix(l, "vestnik_cluster") {
							t.Log(l)
						}
					}
				}
				db.Close()
			}
		}
	}()
	carol.expect("<presence", `from="`+bob.jid+`"`, "<show", "chat")
	bob.expect("<presence", `from="`+carol.jid+`"`)

	// A personal message from A to a user on B, and the answer.
	bob.send(`<message xmlns='jabber:client' to='carol@example.test' type='chat' id='m1'><body>привет через узлы</body></message>`)
	got := carol.expect("<message", `from="`+bob.jid+`"`, "привет через узлы")
	if !strings.Contains(got, "stanza-id") {
		t.Errorf("cross-node message without the archive's stanza-id: %s", got)
	}
	carol.send(`<message xmlns='jabber:client' to='` + bob.jid + `' type='chat' id='m2'><body>got it</body></message>`)
	bob.expect("<message", `from="`+carol.jid+`"`, "got it")

	// Carbons: bob's phone on B gets a copy of what bob sends from A.
	phone := xdial(t, b.c2sAt, "bob@example.test", "demo")
	phone.send(`<iq xmlns='jabber:client' type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>`)
	phone.expect("<iq", `id="c1"`, `type="result"`)
	phone.send(`<presence xmlns='jabber:client'/>`)
	carol.expect("<presence", `from="`+phone.jid+`"`)
	bob.expect("<presence", `from="`+phone.jid+`"`)
	bob.send(`<message xmlns='jabber:client' to='carol@example.test' type='chat' id='m4'><body>with a copy</body></message>`)
	carol.expect("<message", "with a copy")
	phone.expect("<message", "<sent", "with a copy")
	// What bob's laptop already got on A is not offline for his phone on B.
	phone.expectNone(200*time.Millisecond, "Offline Storage")
	phone.close()
	bob.expect("<presence", `from="`+phone.jid+`"`, `type="unavailable"`)

	// An IQ to a full JID on the other node, and its answer.
	bob.send(`<iq xmlns='jabber:client' type='get' to='` + carol.jid + `' id='v1'><query xmlns='jabber:iq:version'/></iq>`)
	carol.expect("<iq", `id="v1"`, `from="`+bob.jid+`"`)
	carol.send(`<iq xmlns='jabber:client' type='result' to='` + bob.jid + `' id='v1'/>`)
	bob.expect("<iq", `id="v1"`, `type="result"`, `from="`+carol.jid+`"`)

	// A first message to someone outside the roster adds a contact on
	// both sides: the roster push reaches the recipient on the other node.
	sok := xdial(t, b.c2sAt, "sokolova@example.test", "demo")
	sok.send(`<iq xmlns='jabber:client' type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`)
	sok.expect("<iq", `id="r1"`, `type="result"`)
	sok.send(`<presence xmlns='jabber:client'/>`)
	bob.send(`<message xmlns='jabber:client' to='sokolova@example.test' type='chat' id='m5'><body>invoice?</body></message>`)
	sok.expect("<message", "invoice?")
	sok.expect("<iq", `type="set"`, `jid="bob@example.test"`)

	// REST on node A: a notification and a personal message for carol,
	// who is on node B.
	tok, err := exec.Command(bin, "token", "create", "cluster-test", "--db", u).Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	token := strings.TrimSpace(string(tok))
	post := func(path, body string) { postJSON(t, "http://"+a.httpAt+"/api/v1"+path, token, body) }
	post("/notifications", `{"to_user_id": "14", "text": "отчёт готов"}`)
	carol.expect("<message", `type="headline"`, "отчёт готов")
	post("/messages", `{"from_user_id": "5", "to_user_id": "14", "message": "from the portal"}`)
	carol.expect("<message", `from="bob@example.test`, "from the portal")
	// A chat: bob joins its room through node A, carol through node B;
	// each sees the other's messages.
	resp := postJSON(t, "http://"+a.httpAt+"/api/v1/chats", token,
		`{"title": "Кластер", "color": "GREEN", "type": "closed", "owner_id": "5", "users": ["5", "14"]}`)
	var chat struct {
		JID string `json:"jid"`
	}
	if err := json.Unmarshal([]byte(resp), &chat); err != nil || chat.JID == "" {
		t.Fatalf("create chat: %q, %v", resp, err)
	}
	bob.send(`<presence xmlns='jabber:client' to='` + chat.JID + `/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
	bob.expect("<presence", `from="`+chat.JID+`/Bob"`)
	carol.send(`<presence xmlns='jabber:client' to='` + chat.JID + `/Carol'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
	carol.expect("<presence", `from="`+chat.JID+`/Carol"`)
	bob.send(`<message xmlns='jabber:client' to='` + chat.JID + `' type='groupchat' id='g1'><body>всем привет</body></message>`)
	carol.expect("<message", `type="groupchat"`, `from="`+chat.JID+`/Bob"`, "всем привет")
	bob.expect("<message", `type="groupchat"`, "всем привет") // the echo
	carol.send(`<message xmlns='jabber:client' to='` + chat.JID + `' type='groupchat' id='g2'><body>и тебе</body></message>`)
	bob.expect("<message", `type="groupchat"`, `from="`+chat.JID+`/Carol"`, "и тебе")
	post("/chats/"+strings.TrimPrefix(strings.Split(chat.JID, "@")[0], "chat")+"/messages", `{"from_user_id": "5", "message": "from REST"}`)
	carol.expect("<message", `type="groupchat"`, "from REST")
	// Edits and reactions cross nodes: bob corrects his room message on
	// A and carol sees it on B; carol reacts on B to bob's personal
	// message and bob sees it on A.
	bob.send(`<message xmlns='jabber:client' to='` + chat.JID + `' type='groupchat' id='g3'><body>всем привет!</body><replace xmlns='urn:xmpp:message-correct:0' id='g1'/></message>`)
	carol.expect("<message", `type="groupchat"`, `from="`+chat.JID+`/Bob"`, `<replace id="g1">`, "всем привет!")
	carol.send(`<message xmlns='jabber:client' to='bob@example.test' type='chat' id='r1'><reactions xmlns='urn:xmpp:reactions:0' id='m1'><reaction>👍</reaction></reactions></message>`)
	bob.expect("<message", `<reactions id="m1"><reaction>👍</reaction></reactions>`)

	if code, m := get(t, "http://"+a.httpAt+"/metrics"); code != 200 || !strings.Contains(m, "vestnik_cluster_nodes 1") {
		t.Errorf("metrics of node A: got %d, want vestnik_cluster_nodes 1", code)
	}

	// Blocking on B holds for messages sent from A.
	carol.send(`<iq xmlns='jabber:client' type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='bob@example.test'/></block></iq>`)
	carol.expect("<iq", `id="b1"`, `type="result"`)
	time.Sleep(100 * time.Millisecond)
	bob.send(`<message xmlns='jabber:client' to='carol@example.test' type='chat' id='x1'><body>blocked?</body></message>`)
	carol.expectNone(300*time.Millisecond, "blocked?")
	carol.send(`<iq xmlns='jabber:client' type='set' id='b2'><unblock xmlns='urn:xmpp:blocking'><item jid='bob@example.test'/></unblock></iq>`)
	carol.expect("<iq", `id="b2"`, `type="result"`)
	time.Sleep(100 * time.Millisecond)
	bob.send(`<message xmlns='jabber:client' to='carol@example.test' type='chat' id='x2'><body>unblocked</body></message>`)
	carol.expect("<message", "unblocked")

	// A presence change, then bob goes offline.
	bob.send(`<presence xmlns='jabber:client'><show>away</show></presence>`)
	carol.expect("<presence", `from="`+bob.jid+`"`, "away")

	// Cross-node latency: message from A to B and back, one at a time.
	const n = 50
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		bob.send(fmt.Sprintf(`<message xmlns='jabber:client' to='carol@example.test' type='chat' id='p%d'><body>ping %d</body></message>`, i, i))
		carol.expect(fmt.Sprintf("ping %d<", i))
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("cross-node personal message, client to client: p50 %v, p90 %v, max %v", lat[n/2], lat[n*9/10], lat[n-1])
	// The same on one node, for comparison.
	fed := xdial(t, a.c2sAt, "fedorov@example.test", "demo")
	fed.send(`<presence xmlns='jabber:client'/>`)
	lat = lat[:0]
	for i := 0; i < n; i++ {
		t0 := time.Now()
		bob.send(fmt.Sprintf(`<message xmlns='jabber:client' to='fedorov@example.test' type='chat' id='q%d'><body>pong %d</body></message>`, i, i))
		fed.expect(fmt.Sprintf("pong %d<", i))
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("same-node personal message, client to client: p50 %v, p90 %v, max %v", lat[n/2], lat[n*9/10], lat[n-1])
	// Throughput: bob pipelines messages from A, carol receives on B.
	// Bursts stay under the server's per-connection rate limit (a bucket
	// of RateBurst = 400 refilled at 200/s), given time to refill.
	const burst = 300
	time.Sleep(1500 * time.Millisecond)
	sendErr := make(chan error, 2)
	t0 := time.Now()
	go func() {
		for i := 0; i < burst; i++ {
			if err := bob.trySend(fmt.Sprintf(`<message xmlns='jabber:client' to='carol@example.test' type='chat' id='t%d'><body>burst %d</body></message>`, i, i)); err != nil {
				sendErr <- fmt.Errorf("send burst %d: %w", i, err)
				return
			}
		}
	}()
	for i := 0; i < burst; i++ {
		select {
		case err := <-sendErr:
			t.Fatal(err)
		default:
		}
		carol.expect(fmt.Sprintf("burst %d<", i))
	}
	t.Logf("cross-node personal messages, one client pipelining %d: %.0f messages/s", burst, burst/time.Since(t0).Seconds())
	// The same burst on one node.
	time.Sleep(1500 * time.Millisecond)

	t0 = time.Now()
	go func() {
		for i := 0; i < burst; i++ {
			if err := bob.trySend(fmt.Sprintf(`<message xmlns='jabber:client' to='fedorov@example.test' type='chat' id='u%d'><body>burst %d</body></message>`, i, i)); err != nil {
				sendErr <- fmt.Errorf("send burst %d: %w", i, err)
				return
			}
		}
	}()
	for i := 0; i < burst; i++ {
		select {
		case err := <-sendErr:
			t.Fatal(err)
		default:
		}
		fed.expect(fmt.Sprintf("burst %d<", i))
	}
	t.Logf("same-node personal messages, one client pipelining %d: %.0f messages/s", burst, burst/time.Since(t0).Seconds())

	bob.close()
	carol.expect("<presence", `from="`+bob.jid+`"`, `type="unavailable"`)

	// A message to a user with no session anywhere waits in the archive and
	// arrives when bob logs in, on the other node.
	carol.send(`<message xmlns='jabber:client' to='bob@example.test' type='chat' id='m3'><body>offline hello</body></message>`)
	time.Sleep(300 * time.Millisecond)
	bob2 := xdial(t, b.c2sAt, "bob@example.test", "demo")
	bob2.send(`<presence xmlns='jabber:client'/>`)
	bob2.expect("<message", "offline hello")
	a.stop(t)
	b.stop(t)
}

// serialize writes the element read from r (its start already read) as
// XML text with double-quoted attributes.
func serialize(r xml.TokenReader, start *xml.StartElement) (string, error) {
	var b strings.Builder
	writeStart := func(se xml.StartElement) {
		b.WriteString("<" + se.Name.Local)
		for _, a := range se.Attr {
			if a.Name.Local == "xmlns" || a.Name.Space == "xmlns" {
				continue
			}
			b.WriteString(" " + a.Name.Local + "=\"")
			xml.EscapeText(&b, []byte(a.Value))
			b.WriteString("\"")
		}
		b.WriteString(">")
	}
	writeStart(*start)
	depth := 1
	for depth > 0 {
		tok, err := r.Token()
		if err == io.EOF && depth == 1 {
			b.WriteString("</" + start.Name.Local + ">")
			break
		}
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			writeStart(t)
		case xml.EndElement:
			depth--
			b.WriteString("</" + t.Name.Local + ">")
		case xml.CharData:
			xml.EscapeText(&b, t)
		}
	}
	return b.String(), nil
}

// postJSON posts body with the bearer token and expects 201; it returns
// the answer.
func postJSON(t *testing.T, url, token, body string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 201 {
		t.Fatalf("POST %s: got %d %s, want 201", url, resp.StatusCode, b)
	}
	return string(b)
}
