package xmppcore

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// unreachedLog collects what the OnUnreached hook is told.
func unreachedLog(e *testEnv) chan Unreached {
	ch := make(chan Unreached, 16)
	e.srv.OnUnreached(func(_ context.Context, u Unreached) { ch <- u })
	return ch
}

func expectUnreached(t *testing.T, ch chan Unreached, want Unreached) {
	t.Helper()
	select {
	case got := <-ch:
		got.ID = 0
		if got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("no unreached event, want %+v", want)
	}
}

func expectNoUnreached(t *testing.T, ch chan Unreached, why string) {
	t.Helper()
	select {
	case got := <-ch:
		t.Errorf("%s: got %+v, want none", why, got)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestUnreached: a personal message or notification for a user with no
// connected client (none at all, or only a resumable XEP-0198 session
// whose stream died) is told to the hook once; one with a connected
// client — also an <inactive/> one (XEP-0352) — is not.
func TestUnreached(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		ch := unreachedLog(e)
		alice := e.online("alice", "pc")
		bob := mustID(t, e, "bob")

		alice.send(`<message to='bob@%s' type='chat' id='m1'><body>are you there?</body></message>`, testDomain)
		expectUnreached(t, ch, Unreached{UserID: bob, Kind: "message", From: "alice@" + testDomain, Body: "are you there?"})
		alice.send(`<message to='bob@%s' type='chat' id='m2'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`, testDomain)
		expectNoUnreached(t, ch, "a chat state")
		if _, err := e.srv.Notify(context.Background(), bob, "Payroll is out", ""); err != nil {
			t.Fatal(err)
		}
		expectUnreached(t, ch, Unreached{UserID: bob, Kind: "notification", From: testDomain, Body: "Payroll is out"})

		b, _ := smResumable(e, "phone")
		alice.send(`<message to='bob@%s' type='chat' id='m3'><body>online now</body></message>`, testDomain)
		b.expect(`<body>online now</body>`)
		expectNoUnreached(t, ch, "connected")
		b.send(`<inactive xmlns='urn:xmpp:csi:0'/>`)
		alice.send(`<message to='bob@%s' type='chat' id='m4'><body>inactive</body></message>`, testDomain)
		b.expect(`<body>inactive</body>`)
		expectNoUnreached(t, ch, "inactive (CSI)")

		b.c.Close() // the stream dies: the session waits detached
		deadline := time.Now().Add(3 * time.Second)
		for {
			ss := e.srv.router.sessions(bob)
			if len(ss) == 1 && ss[0].detached() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("bob's session never detached")
			}
			time.Sleep(10 * time.Millisecond)
		}
		alice.send(`<message to='bob@%s' type='chat' id='m5'><body>detached</body></message>`, testDomain)
		expectUnreached(t, ch, Unreached{UserID: bob, Kind: "message", From: "alice@" + testDomain, Body: "detached"})
	})
}

// TestUnreachedAcrossNodes: bob's only session is detached on node b;
// alice writes on node a, which sees an available session there and says
// nothing; node b, which holds the session, tells its hook, once.
func TestUnreachedAcrossNodes(t *testing.T) {
	db := dbtest.Open(t, migrations.Postgres)
	a := clusterNode(t, db, "unr_a", nil)
	b := clusterNode(t, db, "unr_b", nil)
	cha, chb := unreachedLog(a), unreachedLog(b)
	bob := mustID(t, a, "bob")
	bc, _ := smResumable(b, "phone")
	alice := a.online("alice", "pc")
	deadline := time.Now().Add(5 * time.Second)
	for len(a.srv.cl.Sessions(bob)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("node a never saw bob")
		}
		time.Sleep(10 * time.Millisecond)
	}
	alice.send(`<message to='bob@%s' type='chat' id='x1'><body>hello</body></message>`, testDomain)
	bc.expect(`<body>hello</body>`)
	expectNoUnreached(t, cha, "node a, bob connected")
	expectNoUnreached(t, chb, "node b, bob connected")

	bc.c.Close()
	for {
		ss := b.srv.router.sessions(bob)
		if len(ss) == 1 && ss[0].detached() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bob's session never detached")
		}
		time.Sleep(10 * time.Millisecond)
	}
	alice.send(`<message to='bob@%s' type='chat' id='x2'><body>wake up</body></message>`, testDomain)
	expectUnreached(t, chb, Unreached{UserID: bob, Kind: "message", From: "alice@" + testDomain, Body: "wake up"})
	expectNoUnreached(t, cha, "node a (b holds the session)")

	// With no session anywhere, the archiving node tells.
	b.srv.router.sessions(bob)[0].kill(closeNormal)
	for len(a.srv.cl.Sessions(bob)) != 0 {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatal("node a still sees bob")
		}
		time.Sleep(10 * time.Millisecond)
	}
	alice.send(`<message to='bob@%s' type='chat' id='x3'><body>offline</body></message>`, testDomain)
	expectUnreached(t, cha, Unreached{UserID: bob, Kind: "message", From: "alice@" + testDomain, Body: "offline"})
	expectNoUnreached(t, chb, "node b (no session)")
}
