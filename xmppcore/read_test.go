package xmppcore

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
)

// TestReadOverXMPP: a Jabber client's XEP-0333 displayed marker raises the
// read mark (never back), reaches the author with the archive id and the
// reader's other resource as a sent carbon; MarkRead from another door
// (REST, the bridge) does the same with the client's id.
func TestReadOverXMPP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		alice := e.online("alice", "pc")
		phone := e.online("alice", "phone")
		phone.send(`<iq type='set' id='cb'><enable xmlns='urn:xmpp:carbons:2'/></iq>`)
		phone.expect(`id='cb'`)
		bob := e.online("bob", "pc")
		aliceID, bobID := e.userID("alice"), e.userID("bob")

		bob.send(`<message to='alice@example.test' type='chat' id='b1'><body>Первое</body><markable xmlns='urn:xmpp:chat-markers:0'/></message>`)
		id1 := alice.expect(`<message [^>]*id='b1'.*?<stanza-id xmlns='urn:xmpp:sid:0' id='(\d+)'`)[1]
		bob.send(`<message to='alice@example.test' type='chat' id='b2'><body>Второе</body><markable xmlns='urn:xmpp:chat-markers:0'/></message>`)
		id2 := alice.expect(`<message [^>]*id='b2'.*?<stanza-id xmlns='urn:xmpp:sid:0' id='(\d+)'`)[1]
		// A client's own <read/> is not believed.
		alice.send(`<message to='bob@example.test' type='chat' id='d1'><displayed xmlns='urn:xmpp:chat-markers:0' id='b1'/><read xmlns='urn:vestnik:message:0' id='999999' user='7'/></message>`)
		bob.expect(`<displayed xmlns='urn:xmpp:chat-markers:0' id='b1'/><read xmlns='urn:vestnik:message:0' id='` + id1 + `' user='` + itoa(aliceID) + `'/>`)
		phone.expect(`<sent xmlns='urn:xmpp:carbons:2'>.*?<displayed xmlns='urn:xmpp:chat-markers:0' id='b1'/>`)
		mark := func(want string) {
			t.Helper()
			got, err := e.arch.ReadMarkOf(ctx, aliceID, bobID, 0)
			if err != nil || itoa(got) != want {
				t.Fatalf("alice's read mark: got %d, %v, want %s", got, err, want)
			}
		}
		mark(id1)

		// Another door: up to b2 by archive id; bob sees his client's id.
		rm, moved, err := e.srv.MarkRead(ctx, ReadRequest{User: aliceID, With: bobID, UpTo: atoi(t, id2)})
		if err != nil || !moved || itoa(rm.UpTo) != id2 {
			t.Fatalf("MarkRead: %+v %v %v", rm, moved, err)
		}
		bob.expect(`<displayed xmlns='urn:xmpp:chat-markers:0' id='b2'/>`)
		phone.expect(`<sent xmlns='urn:xmpp:carbons:2'>.*?<displayed xmlns='urn:xmpp:chat-markers:0' id='b2'/>`)
		mark(id2)

		// Backwards and wrong: nothing moves.
		alice.send(`<message to='bob@example.test' type='chat' id='d2'><displayed xmlns='urn:xmpp:chat-markers:0' id='b1'/></message>`)
		got := bob.expect(`<message [^>]*id='d2'.*?</message>`)[0]
		if strings.Contains(got, "urn:vestnik:message:0") {
			t.Fatalf("an older marker announced a moved mark: %s", got)
		}
		if _, moved, err := e.srv.MarkRead(ctx, ReadRequest{User: aliceID, With: bobID, UpTo: atoi(t, id1)}); err != nil || moved {
			t.Fatalf("MarkRead backwards: moved %v, %v", moved, err)
		}
		if _, _, err := e.srv.MarkRead(ctx, ReadRequest{User: e.userID("carol"), With: bobID, UpTo: atoi(t, id2)}); !errors.Is(err, mam.ErrNotFound) {
			t.Fatalf("MarkRead of someone else's message: got %v, want mam.ErrNotFound", err)
		}
		if _, _, err := e.srv.MarkRead(ctx, ReadRequest{User: aliceID, UpTo: atoi(t, id2)}); !errors.Is(err, mam.ErrInvalid) {
			t.Fatalf("MarkRead without a conversation: got %v, want mam.ErrInvalid", err)
		}
		mark(id2)
	})
}

// TestNotificationStore: one copy of the notification rules for the core
// and the bridge: pages, counts, marking by ids or up to an id, and a
// user never reaches another's.
func TestNotificationStore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		aliceID, bobID := e.userID("alice"), e.userID("bob")
		var ids []int64
		for _, text := range []string{"one", "two", "three"} {
			id, err := e.srv.Notify(ctx, aliceID, text, "")
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		bobs, err := e.srv.Notify(ctx, bobID, "bob's", "https://portal.example/x")
		if err != nil {
			t.Fatal(err)
		}
		ns := NewNotificationStore(db)
		page, err := ns.List(ctx, aliceID, ids[2], 10, false)
		if err != nil || len(page) != 2 || page[0].ID != ids[1] || page[1].ID != ids[0] {
			t.Fatalf("page before the newest: %+v %v", page, err)
		}
		// Marking by ids: another user's id changes nothing.
		if n, err := ns.MarkRead(ctx, aliceID, 0, []int64{ids[0], bobs}); err != nil || n != 1 {
			t.Fatalf("mark by ids: %d %v, want 1", n, err)
		}
		if n, err := ns.Unread(ctx, aliceID); err != nil || n != 2 {
			t.Fatalf("unread: %d %v, want 2", n, err)
		}
		if n, _ := ns.Unread(ctx, bobID); n != 1 {
			t.Fatalf("bob's unread changed: %d", n)
		}
		unread, err := ns.List(ctx, aliceID, 0, 0, true)
		if err != nil || len(unread) != 2 || unread[0].Text != "three" {
			t.Fatalf("unread list: %+v %v", unread, err)
		}
		if n, err := ns.MarkRead(ctx, aliceID, ids[1], nil); err != nil || n != 1 {
			t.Fatalf("mark up to: %d %v, want 1", n, err)
		}
		n, err := e.srv.Notification(ctx, aliceID, ids[1])
		if err != nil || n.Text != "two" || n.ReadAt == nil {
			t.Fatalf("Notification: %+v %v", n, err)
		}
		if _, err := e.srv.Notification(ctx, aliceID, bobs); !errors.Is(err, ErrNotFound) {
			t.Fatalf("another user's notification: got %v, want ErrNotFound", err)
		}
		if c, err := ns.MarkRead(ctx, aliceID, 0, nil); err != nil || c != 1 {
			t.Fatalf("mark all: %d %v, want 1", c, err)
		}
	})
}
