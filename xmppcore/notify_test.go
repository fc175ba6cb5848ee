package xmppcore

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// recSink records what an attached session is sent.
type recSink struct {
	mu  sync.Mutex
	got []string
}

func (r *recSink) Deliver(el *Element) bool {
	r.mu.Lock()
	r.got = append(r.got, el.String())
	r.mu.Unlock()
	return true
}
func (r *recSink) Close(string) {}

// loginUntil logs a stream in, sends initial presence and returns what
// arrived before the answer to a ping sent after it.
func (e *testEnv) loginUntil(user, res string) (*rawConn, string) {
	e.t.Helper()
	r := e.pipe(user + "/" + res)
	r.login(user, res, false)
	r.send(`<presence/><iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`)
	return r, r.expect(`(?s)^(.*?)<iq type='result' id='p1'[^>]*/>`)[1]
}

// Unread portal notifications reach an XMPP client at its initial
// presence, only those created since the user was last seen; attached
// (bridge) sessions get none.
func TestNotificationsOnLogin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		u, err := e.rs.UserByLogin(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.srv.Notify(ctx, u.ID, "first headline", "https://portal.example/1"); err != nil {
			t.Fatal(err)
		}
		r, got := e.loginUntil("alice", "pc")
		if !strings.Contains(got, "first headline") || !strings.Contains(got, "type='headline'") || !strings.Contains(got, "urn:xmpp:delay") {
			t.Fatalf("first login: %q", got)
		}
		r.send(`</stream:stream>`)
		r.expectClosed()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, err := e.srv.LastSeen(ctx, u.ID); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("last seen not stored")
			}
			time.Sleep(10 * time.Millisecond)
		}
		// A bridge session coming online is sent nothing stored (the web
		// client lists notifications itself); it was seen, too.
		sink := &recSink{}
		bs, err := e.srv.Attach(ctx, u.ID, "web", sink)
		if err != nil {
			t.Fatal(err)
		}
		if err := bs.Handle(ctx, NewElement(NSClient, "presence")); err != nil {
			t.Fatal(err)
		}
		sink.mu.Lock()
		for _, s := range sink.got {
			if strings.Contains(s, "headline") {
				t.Errorf("bridge session got %s", s)
			}
		}
		sink.mu.Unlock()
		bs.Close()

		time.Sleep(2 * time.Millisecond)
		if _, err := e.srv.Notify(ctx, u.ID, "second headline", ""); err != nil {
			t.Fatal(err)
		}

		_, got = e.loginUntil("alice", "laptop")
		if !strings.Contains(got, "second headline") || strings.Contains(got, "first headline") {
			t.Fatalf("second login: %q", got)
		}
	})
}
