package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// TestKillUnderLoad: `vestnik serve` is killed (SIGKILL) while three
// senders — an XMPP client, a browser on the bridge, a REST caller — send
// personal messages to four recipients (two XMPP clients with XEP-0198
// acks, two browsers), then started again on the same database. Every
// message the server accepted (an XEP-0198 ack to the sender, a bridge
// ack, a REST 201) must reach its recipient exactly once: by stanza-id
// for the XMPP clients (a copy confirmed in the instant before the kill
// may come again, and XMPP clients drop it by stanza-id; counted), and
// with no copy at all for the browsers (hello with last_id).
func TestKillUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	for _, backend := range dbtest.Backends(t) {
		t.Run(backend, func(t *testing.T) { killUnderLoad(t, bin, dbtest.URL(t, backend)) })
	}
}

// loadEnv is what the test's clients share: addresses, ids, and what
// was accepted and received.
type loadEnv struct {
	t                   *testing.T
	httpAt, c2sAt       string
	ids                 map[string]int64 // login → internal user id
	token               string
	stop                atomic.Bool // senders stop
	finished            atomic.Bool // receivers stop
	mu                  sync.Mutex
	accepted            map[string]string              // body → recipient login
	got                 map[string]map[string][]string // recipient → body → ids received (each copy)
	sent                atomic.Int64
	reconnects, refused atomic.Int64
}

func (e *loadEnv) accept(body, to string) {
	e.mu.Lock()
	e.accepted[body] = to
	e.mu.Unlock()
}

func (e *loadEnv) receive(to, body, id string) {
	e.mu.Lock()
	if e.got[to] == nil {
		e.got[to] = map[string][]string{}
	}
	e.got[to][body] = append(e.got[to][body], id)
	e.mu.Unlock()
}

func killUnderLoad(t *testing.T, bin, dbURL string) {
	httpAt, c2sAt := freeAddr(t), freeAddr(t)
	start := func() *server {
		s := startServer(t, bin, dbURL, "--http", httpAt, "--c2s", c2sAt, "--demo", "auto")
		s.c2sAt = c2sAt
		return s
	}
	s := start()
	tok, err := exec.Command(bin, "token", "create", "crash-test", "--db", dbURL).Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	e := &loadEnv{t: t, httpAt: httpAt, c2sAt: c2sAt, token: strings.TrimSpace(string(tok)), ids: map[string]int64{},
		accepted: map[string]string{}, got: map[string]map[string][]string{}}
	db, err := migrations.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT id, login FROM users`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var login string
		rows.Scan(&id, &login)
		e.ids[login] = id
	}
	rows.Close()
	db.Close()

	xmppTo, webTo := []string{"alice", "bob"}, []string{"petrova", "ivanov"}
	recipients := append(append([]string{}, xmppTo...), webTo...)
	var wg sync.WaitGroup
	run := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	for _, r := range xmppTo {
		run(func() { e.xmppReceiver(r) })
	}
	for _, r := range webTo {
		run(func() { e.webReceiver(r) })
	}
	time.Sleep(time.Second) // the receivers are online
	run(func() { e.xmppSender("smirnov", recipients) })
	run(func() { e.webSender("kuznetsova", recipients) })
	run(func() { e.restSender("8", recipients) })

	time.Sleep(3 * time.Second)
	s.cmd.Process.Kill()
	<-s.done
	killedAt := time.Now()
	start()
	t.Logf("restarted in %v", time.Since(killedAt).Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	e.stop.Store(true)

	// Wait until every accepted message arrived (or 15 s).
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if len(e.missing()) == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // late copies would show now
	e.finished.Store(true)
	wg.Wait()
	missing := e.missing()
	wireDup := map[string]int{}
	for to, bodies := range e.got {
		for body, ids := range bodies {
			distinct := map[string]bool{}
			for _, id := range ids {
				distinct[id] = true
			}
			if len(distinct) > 1 {
				t.Errorf("%s got %q stored %d times (ids %v)", to, body, len(distinct), ids)
			}
			if want, ok := e.accepted[body]; ok && want != to {
				t.Errorf("%q for %s reached %s", body, want, to)
			}
			wireDup[to] += len(ids) - 1
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d accepted messages lost, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	for _, r := range webTo {
		if wireDup[r] > 0 {
			t.Errorf("browser %s got %d copies of messages it had", r, wireDup[r])
		}
	}
	// Received but never acknowledged to its sender: routed before a
	// commit the kill cut off (SQLite), or stored with its ack lost.
	unacked := 0
	for _, bodies := range e.got {
		for body := range bodies {
			if _, ok := e.accepted[body]; !ok {
				unacked++
			}
		}
	}
	t.Logf("sent %d, accepted %d, lost %d; copies dropped by stanza-id: alice %d, bob %d; browsers %d, %d; received but not acknowledged to the sender %d; reconnects %d",
		e.sent.Load(), len(e.accepted), len(missing), wireDup["alice"], wireDup["bob"], wireDup["petrova"], wireDup["ivanov"], unacked, e.reconnects.Load())
	if len(e.accepted) < 300 {
		t.Errorf("only %d messages accepted: not under load", len(e.accepted))
	}
}

// missing lists the accepted messages their recipient has not got.
func (e *loadEnv) missing() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for body, to := range e.accepted {
		if len(e.got[to][body]) == 0 {
			out = append(out, body)
		}
	}
	return out
}

// ---- XMPP (a minimal client with XEP-0198: STARTTLS, PLAIN, bind) ----

type xmlEl struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Inner   string     `xml:",innerxml"`
}

func (x *xmlEl) attr(name string) string {
	for _, a := range x.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

type smConn struct {
	conn net.Conn
	dec  *xml.Decoder
	wmu  sync.Mutex
}

func (c *smConn) write(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(c.conn, s)
	return err
}

// next reads the next top-level element of the stream.
func (c *smConn) next() (*xmlEl, error) {
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local == "stream" {
				continue
			}
			var el xmlEl
			if err := c.dec.DecodeElement(&el, &se); err != nil {
				return nil, err
			}
			return &el, nil
		}
	}
}

func (c *smConn) open() error {
	c.dec = xml.NewDecoder(c.conn)
	if err := c.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0'>`); err != nil {
		return err
	}
	_, err := c.next() // features
	return err
}

func (c *smConn) expect(local string) (*xmlEl, error) {
	el, err := c.next()
	if err != nil {
		return nil, err
	}
	if el.XMLName.Local != local {
		return nil, fmt.Errorf("got <%s>%s, want <%s>", el.XMLName.Local, el.Inner, local)
	}
	return el, nil
}

// smLogin logs login in, sends presence and enables XEP-0198.
func smLogin(addr, login string) (*smConn, error) {
	raw, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	c := &smConn{conn: raw}
	fail := func(err error) (*smConn, error) { raw.Close(); return nil, err }
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.open(); err != nil {
		return fail(err)
	}
	c.write(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	if _, err := c.expect("proceed"); err != nil {
		return fail(err)
	}
	tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: "example.test"})
	c.conn = tc
	if err := c.open(); err != nil {
		return fail(err)
	}
	c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` +
		base64.StdEncoding.EncodeToString([]byte("\x00"+login+"\x00demo")) + `</auth>`)
	if _, err := c.expect("success"); err != nil {
		return fail(err)
	}
	if err := c.open(); err != nil {
		return fail(err)
	}
	c.write(`<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>load</resource></bind></iq>`)
	if _, err := c.expect("iq"); err != nil {
		return fail(err)
	}
	// XEP-0198 first (as mobile clients do): the offline messages that
	// initial presence brings are then acknowledged too.
	c.write(`<enable xmlns='urn:xmpp:sm:3'/>`)
	if _, err := c.expect("enabled"); err != nil {
		return fail(err)
	}
	raw.SetReadDeadline(time.Time{})
	return c, c.write(`<presence/>`)
}

var (
	bodyRe = func(inner string) string {
		i := strings.Index(inner, "<body>")
		j := strings.Index(inner, "</body>")
		if i < 0 || j < i {
			return ""
		}
		return inner[i+6 : j]
	}
	stanzaIDOf = func(inner string) string {
		i := strings.Index(inner, "<stanza-id ")
		if i < 0 {
			return ""
		}
		rest := inner[i:]
		j := strings.Index(rest, " id=\"")
		q := `"`
		if j < 0 {
			j = strings.Index(rest, " id='")
			q = `'`
		}
		if j < 0 {
			return ""
		}
		rest = rest[j+5:]
		return rest[:strings.Index(rest, q)]
	}
)

// xmppReceiver stays logged in as login (logging in again after any
// cut), records every message and acknowledges what it handled.
func (e *loadEnv) xmppReceiver(login string) {
	for !e.finished.Load() {
		c, err := smLogin(e.c2sAt, login)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		e.reconnects.Add(1)
		var h uint32
		go func() {
			for !e.finished.Load() {
				time.Sleep(100 * time.Millisecond)
			}
			c.conn.Close()
		}()
		for {
			el, err := c.next()
			if err != nil {
				break
			}
			switch el.XMLName.Local {
			case "message", "presence", "iq":
				h++
				if body := bodyRe(el.Inner); strings.HasPrefix(body, "x-") {
					e.receive(login, body, stanzaIDOf(el.Inner))
				}
			case "r":
				c.write(fmt.Sprintf(`<a xmlns='urn:xmpp:sm:3' h='%d'/>`, h))
			}
		}
		c.conn.Close()
	}
}

// xmppSender sends round robin; a message counts as accepted once the
// server's XEP-0198 ack covers it (handled = archived).
func (e *loadEnv) xmppSender(login string, to []string) {
	n := 0
	for !e.stop.Load() {
		c, err := smLogin(e.c2sAt, login)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		var mu sync.Mutex
		var pending []string // sent, not yet acked, in order
		var acked uint32
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				el, err := c.next()
				if err != nil {
					return
				}
				if el.XMLName.Local != "a" {
					continue
				}
				// h counts every stanza the server handled on this
				// stream: the initial presence sent after <enable/>
				// (smLogin) first, then the messages.
				h, _ := strconv.ParseUint(el.attr("h"), 10, 32)
				mu.Lock()
				for ; acked+1 < uint32(h) && len(pending) > 0; acked++ {
					b := pending[0]
					pending = pending[1:]
					e.accept(b, b[strings.LastIndex(b, "-")+1:])
				}
				mu.Unlock()
			}
		}()
		tick := time.NewTicker(15 * time.Millisecond)
		for !e.stop.Load() {
			<-tick.C
			r := to[n%len(to)]
			body := fmt.Sprintf("x-xmpp-%d-%s", n, r)
			n++
			mu.Lock()
			pending = append(pending, body)
			mu.Unlock()
			e.sent.Add(1)
			if c.write(fmt.Sprintf(`<message to='%s@example.test' type='chat' id='m%d'><body>%s</body></message><r xmlns='urn:xmpp:sm:3'/>`, r, n, body)) != nil {
				break
			}
		}
		tick.Stop()
		if e.stop.Load() {
			time.Sleep(500 * time.Millisecond) // the last acks
		}
		c.conn.Close()
		<-done
	}
}

// ---- the bridge (a browser) and REST ----

func (e *loadEnv) webLogin(login string) *http.Client {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	for {
		resp, err := c.Post("http://"+e.httpAt+"/login", "application/json",
			strings.NewReader(fmt.Sprintf(`{"login":%q,"password":"demo"}`, login)))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return c
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *loadEnv) webDial(c *http.Client) (*websocket.Conn, error) {
	u, _ := url.Parse("http://" + e.httpAt)
	hdr := http.Header{"Origin": {"http://" + e.httpAt}}
	for _, ck := range c.Jar.Cookies(u) {
		hdr.Add("Cookie", ck.Name+"="+ck.Value)
	}
	d := websocket.Dialer{HandshakeTimeout: 2 * time.Second}
	ws, _, err := d.Dial("ws://"+e.httpAt+"/ws", hdr)
	return ws, err
}

type webFrame struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Message struct {
		ID   int64  `json:"id"`
		Body string `json:"body"`
		To   int64  `json:"to"`
	} `json:"message"`
	Data struct {
		Message struct {
			ID   int64  `json:"id"`
			Body string `json:"body"`
		} `json:"message"`
	} `json:"data"`
}

// webReceiver is a browser: it reconnects with hello last_id (the
// highest message id it has) after any cut.
func (e *loadEnv) webReceiver(login string) {
	c := e.webLogin(login)
	var last int64
	for !e.finished.Load() {
		ws, err := e.webDial(c)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		e.reconnects.Add(1)
		ws.WriteJSON(map[string]any{"type": "hello", "id": "h", "last_id": last})
		go func() {
			for !e.finished.Load() {
				time.Sleep(100 * time.Millisecond)
			}
			ws.Close()
		}()
		for {
			var f webFrame
			if err := ws.ReadJSON(&f); err != nil {
				break
			}
			if f.Type != "message" || !strings.HasPrefix(f.Message.Body, "x-") {
				continue
			}
			e.receive(login, f.Message.Body, strconv.FormatInt(f.Message.ID, 10))
			last = max(last, f.Message.ID)
		}
		ws.Close()
	}
}

// webSender sends from a browser; the ack (with the stored id) accepts.
func (e *loadEnv) webSender(login string, to []string) {
	c := e.webLogin(login)
	n := 0
	for !e.stop.Load() {
		ws, err := e.webDial(c)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		ws.WriteJSON(map[string]any{"type": "hello", "id": "h", "last_id": 0})
		var mu sync.Mutex
		bodies := map[string]string{} // frame id → body
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				var f webFrame
				if err := ws.ReadJSON(&f); err != nil {
					return
				}
				if f.Type == "ack" && f.Data.Message.ID != 0 {
					mu.Lock()
					b := bodies[f.ID]
					mu.Unlock()
					if b != "" && b == f.Data.Message.Body {
						e.accept(b, b[strings.LastIndex(b, "-")+1:])
					}
				}
			}
		}()
		tick := time.NewTicker(15 * time.Millisecond)
		for !e.stop.Load() {
			<-tick.C
			r := to[n%len(to)]
			body := fmt.Sprintf("x-web-%d-%s", n, r)
			id := "s" + strconv.Itoa(n)
			n++
			mu.Lock()
			bodies[id] = body
			mu.Unlock()
			e.sent.Add(1)
			if ws.WriteJSON(map[string]any{"type": "send", "id": id, "to": map[string]any{"user": e.ids[r]}, "body": body}) != nil {
				break
			}
		}
		tick.Stop()
		if e.stop.Load() {
			time.Sleep(500 * time.Millisecond)
		}
		ws.Close()
		<-done
	}
}

// restSender posts as the portal; 201 accepts.
func (e *loadEnv) restSender(from string, to []string) {
	ext := map[string]string{"petrova": "3", "ivanov": "2", "alice": "4", "bob": "5"}
	hc := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(15 * time.Millisecond)
	defer tick.Stop()
	for n := 0; !e.stop.Load(); n++ {
		<-tick.C
		r := to[n%len(to)]
		body := fmt.Sprintf("x-rest-%d-%s", n, r)
		b, _ := json.Marshal(map[string]string{"from_user_id": from, "to_user_id": ext[r], "message": body})
		req, _ := http.NewRequest("POST", "http://"+e.httpAt+"/api/v1/messages", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+e.token)
		req.Header.Set("Content-Type", "application/json")
		e.sent.Add(1)
		resp, err := hc.Do(req)
		if err != nil {
			e.refused.Add(1)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			e.accept(body, r)
		}
	}
}
