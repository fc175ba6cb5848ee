package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jmoiron/sqlx"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/xmppcore"
)

// clientFrom is a client whose connections come from a loopback source
// address.
func clientFrom(ip string) *http.Client {
	c := client()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c.Transport = &http.Transport{DialContext: d.DialContext}
	return c
}

func TestLoginBruteForceThrottled(t *testing.T) {
	e := newEnv(t, dbtest.Open(t, migrations.SQLite), nil)
	th := xmppcore.NewThrottle(xmppcore.ThrottleOptions{BaseDelay: 5 * time.Millisecond, MaxDelay: 40 * time.Millisecond})
	e.b.opts.Guard = th
	attacker := clientFrom("127.0.0.1")
	status := func(c *http.Client, login, pass string) int {
		resp := e.post(c, "/login", fmt.Sprintf(`{"login":%q,"password":%q}`, login, pass), nil)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range xmppcore.AuthPairBurst {
		if got := status(attacker, "ivanov", fmt.Sprint("guess", i)); got != 401 {
			t.Fatalf("guess %d: status %d, want 401", i, got)
		}
	}
	// Refused now, even with the right password, and told when to retry.
	resp := e.post(attacker, "/login", `{"login":"ivanov","password":"demo"}`, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after %d failures: status %d, Retry-After %q; want 429 with Retry-After", xmppcore.AuthPairBurst, resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The victim from another address logs in, fast, while the attack goes on.
	var took []time.Duration
	for range 5 {
		go status(attacker, "ivanov", "guess")
		start := time.Now()
		if got := status(clientFrom("127.0.0.2"), "ivanov", "demo"); got != 200 {
			t.Fatalf("ivanov from his own address: status %d, want 200", got)
		}
		took = append(took, time.Since(start))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	if took[2] > time.Second {
		t.Errorf("victim's login p50 %v during the attack", took[2])
	}
	st := th.Stats()
	if st.Failures[xmppcore.DoorWeb] != int64(xmppcore.AuthPairBurst) || st.Throttled[xmppcore.DoorWeb] < 1 {
		t.Errorf("stats %+v, want %d web failures and refusals", st, xmppcore.AuthPairBurst)
	}
}

func TestWebSocketCap(t *testing.T) {
	db := dbtest.Open(t, migrations.SQLite)
	e := newEnv(t, db, nil)
	srv := xmppcore.NewServer(db, e.users, e.arch, xmppcore.Options{Domain: "localhost", MaxConnectionsPerIP: 1})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	e.b.opts.Admit = srv.Admit
	c := e.login("ivanov")
	w, _, err := e.dial(c, e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, resp, err := e.dial(c, e.srv.URL)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second WebSocket from the address: err %v, response %v; want 503", err, resp)
	}
	w.ws.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, err := e.dial(c, e.srv.URL); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no WebSocket after the first one closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitClosed reads frames until the socket closes and returns the error.
func (w *wsConn) waitClosed(within time.Duration) error {
	w.ws.SetReadDeadline(time.Now().Add(within))
	for {
		if _, _, err := w.ws.ReadMessage(); err != nil {
			return err
		}
	}
}

func TestSessionsEndWithTheirReason(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e, _ := newXMPPEnv(t, db)
		ctx := context.Background()
		ci, cp, cs := e.login("ivanov"), e.login("petrova"), e.login("smirnov")
		var ws []*wsConn
		for _, c := range []*http.Client{ci, cp, cs} {
			w, _, err := e.dial(c, e.srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			w.hello(0)
			ws = append(ws, w)
		}
		link, _, err := e.b.CreateLoginToken(ctx, e.user("ivanov").ID)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := e.users.SetPassword(ctx, "ivanov", "a-new-password"); err != nil {
			t.Fatal(err)
		}
		if err := e.users.Logout(ctx, "petrova"); err != nil {
			t.Fatal(err)
		}
		for i, who := range []string{"ivanov", "petrova"} {
			if err := ws[i].waitClosed(6 * time.Second); !websocket.IsCloseError(err, CodeUnauthorized) {
				t.Fatalf("%s's WebSocket: got %v, want close %d", who, err, CodeUnauthorized)
			}
		}
		if d := time.Since(start); d > xmppcore.EventPollInterval+time.Second {
			t.Errorf("WebSockets closed %v after the change, want within the poll interval (%v)", d, xmppcore.EventPollInterval)
		}
		for who, c := range map[string]*http.Client{"ivanov": ci, "petrova": cp} {
			resp, err := c.Get(e.srv.URL + "/session")
			if err != nil {
				t.Fatal(err)
			}
			var s map[string]any
			json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
			if u, ok := s["user"]; resp.StatusCode != 200 || !ok || u != nil {
				t.Errorf("%s's old cookie: /session %d %v, want 200 with user null", who, resp.StatusCode, s)
			}
		}
		resp, err := client().Get(e.srv.URL + "/login/token/" + link)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("login link made before the password change: status %d, want 404", resp.StatusCode)
		}
		// Smirnov is untouched.
		if d := ws[2].call(Frame{"type": "presence", "show": "away"}); d["type"] == "error" {
			t.Errorf("smirnov's connection: %v", d)
		}
		resp, err = cs.Get(e.srv.URL + "/session")
		if err != nil {
			t.Fatal(err)
		}
		var ss struct{ User *userJSON }
		json.NewDecoder(resp.Body).Decode(&ss)
		resp.Body.Close()
		if resp.StatusCode != 200 || ss.User == nil {
			t.Errorf("smirnov's cookie: /session %d, want 200 with the user", resp.StatusCode)
		}
	})
}
