package xmppcore

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// emfileListener fails its first accepts with EMFILE, as a process out
// of descriptors does, then accepts for real.
type emfileListener struct {
	net.Listener
	fail atomic.Int32
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.fail.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func TestAcceptErrorsBackOffAndRecover(t *testing.T) {
	e := newEnv(t, dbtest.Open(t, migrations.SQLite))
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &emfileListener{Listener: inner}
	ln.fail.Store(6) // 5+10+20+40+80+160 ms of backoff
	served := make(chan error, 1)
	start := time.Now()
	go func() { served <- e.srv.ServeC2S(ln) }()
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := &rawConn{t: t, c: c, name: "after emfile"}
	r.open()
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("served after %v, want the backoff (>= 315 ms) first", d)
	}
	select {
	case err := <-served:
		t.Fatalf("ServeC2S returned %v after accept errors, want it to go on", err)
	default:
	}
	if got := e.srv.Stats().AcceptErrors; got != 6 {
		t.Errorf("AcceptErrors = %d, want 6", got)
	}
}

// dialRefused reports whether the server closed a new connection without
// answering its stream header.
func dialRefused(t *testing.T, addr string) bool {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='` + testDomain + `' version='1.0'>`))
	b := make([]byte, 512)
	n, err := c.Read(b)
	if err == nil && strings.Contains(string(b[:n]), "<stream:stream") {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("connection neither answered nor closed")
	}
	return true
}

func TestConnectionCaps(t *testing.T) {
	e := newEnvWith(t, dbtest.Open(t, migrations.SQLite), testOrg, func(o *Options) {
		o.MaxConnectionsPerIP = 4
		o.MaxUnauthenticatedPerIP = 2
	})
	// One client logs in: it counts for the address, not as unauthenticated.
	alice := e.dial("alice")
	alice.login("alice", "desk", true)
	waitFor(t, "alice to count as authenticated", func() bool { return e.srv.Stats().Unauthenticated == 0 })

	var held []*rawConn
	for i := range 2 {
		r := e.dial("idle " + itoa(int64(i)))
		r.open()
		held = append(held, r)
	}
	if !dialRefused(t, e.addr) {
		t.Fatal("a third unauthenticated connection from the address was served, want it refused (cap 2)")
	}
	if got := e.srv.Stats().Unauthenticated; got != 2 {
		t.Errorf("Unauthenticated = %d, want 2", got)
	}
	// An idle one logs in: a place for an unauthenticated one frees up, and
	// the address now holds 3 of its 4.
	bob := held[0]
	bob.c.Close()
	waitFor(t, "the closed connection to be released", func() bool { return e.srv.Stats().Unauthenticated == 1 })
	bob = e.dial("bob")
	bob.login("bob", "desk", true)
	// The login's answer may reach the client before the server moves the
	// ticket to the authenticated ones.
	waitFor(t, "bob to count as authenticated", func() bool { return e.srv.Stats().Unauthenticated == 1 })
	r := e.dial("third")
	r.open()
	// 4 connections from the address: alice, bob, held[1], third.
	if !dialRefused(t, e.addr) {
		t.Fatal("a fifth connection from the address was served, want it refused (cap 4)")
	}
	// The refused ones cost nothing; closing one lets the next in.
	r.c.Close()
	waitFor(t, "the closed connection to be released", func() bool { total, _ := e.srv.admit.counts(); return total == 3 })
	again := e.dial("again")
	again.open()
	if got := e.srv.Stats().Refused; got != 2 {
		t.Errorf("Refused = %d, want 2", got)
	}
	// Alice, logged in all along, is still served.
	alice.send(`<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`)
	alice.expect(`<iq [^>]*id='p1'[^>]*type='result'|<iq [^>]*type='result'[^>]*id='p1'`)
}

func TestWebSocketCaps(t *testing.T) {
	e := newEnvWith(t, dbtest.Open(t, migrations.SQLite), testOrg, func(o *Options) {
		o.MaxConnectionsPerIP = 2
	})
	hs := httptest.NewServer(e.srv.WebSocketHandler())
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	d := websocket.Dialer{Subprotocols: []string{"xmpp"}}
	var open []*websocket.Conn
	for range 2 {
		ws, _, err := d.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		open = append(open, ws)
	}
	_, resp, err := d.Dial(url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third WebSocket: err %v, response %v; want 503", err, resp)
	}
	// A bridge-style door shares the caps.
	if _, ok := e.srv.Admit("127.0.0.1:5555"); ok {
		t.Fatal("Admit over the per-address cap succeeded")
	}
	release, ok := e.srv.Admit("192.0.2.7:5555")
	if !ok {
		t.Fatal("Admit from another address refused")
	}
	release()
	open[0].Close()
	waitFor(t, "the closed WebSocket to be released", func() bool { total, _ := e.srv.admit.counts(); return total == 1 })
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("WebSocket after one closed: %v", err)
	}
	ws.Close()
}

func TestAddrKey(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"[2001:db8:1:2::1]:5222", "[2001:db8:1:2:ffff::9]:1"},
		{"[::ffff:192.0.2.1]:5222", "192.0.2.1:80"},
	} {
		if addrKey(tc.a) != addrKey(tc.b) {
			t.Errorf("addrKey(%s) = %v, addrKey(%s) = %v; want the same", tc.a, addrKey(tc.a), tc.b, addrKey(tc.b))
		}
	}
	if addrKey("[2001:db8:1:2::1]:1") == addrKey("[2001:db8:1:3::1]:1") {
		t.Error("two /64s share a key")
	}
}
