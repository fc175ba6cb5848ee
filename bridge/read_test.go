package bridge

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/muc"
)

func unreadOf(w *wsConn, key string) float64 {
	w.t.Helper()
	c := w.call(Frame{"type": "conversations"})
	for _, x := range c["conversations"].([]any) {
		cv := x.(map[string]any)
		if cv["key"] == key {
			return cv["unread"].(float64)
		}
	}
	w.t.Fatalf("conversations: no %s in %v", key, c)
	return 0
}

// TestReadFromJabber: a Jabber client's XEP-0333 <displayed/> marker is
// the user's read mark, wherever they read: the browser of the same user
// sees the unread count drop (a read event), the author's browser a read
// receipt, the author's Jabber client the marker.
func TestReadFromJabber(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newTCPEnv(t, db)
		ivanov, petrova := e.user("ivanov"), e.user("petrova")
		dino := e.jabber("ivanov", "dino")
		conv := e.jabber("petrova", "conversations")
		wi := e.browser("ivanov")
		wp := e.browser("petrova")

		var ids []float64
		for i := 1; i <= 2; i++ {
			d := wi.call(Frame{"type": "send", "to": Frame{"user": petrova.ID}, "body": fmt.Sprintf("m%d", i), "origin_id": fmt.Sprintf("o-%d", i)})
			ids = append(ids, d["message"].(map[string]any)["id"].(float64))
			wp.expectMsg(fmt.Sprintf("m%d", i))
			conv.Expect(fmt.Sprintf("id='o-%d'", i))
		}
		key := fmt.Sprintf("u%d", ivanov.ID)
		if n := unreadOf(wp, key); n != 2 {
			t.Fatalf("unread before: got %v, want 2", n)
		}
		// Conversations marks the second message displayed, by its id.
		conv.Send(`<message to='ivanov@localhost' type='chat' id='mk-1'><displayed xmlns='urn:xmpp:chat-markers:0' id='o-2'/></message>`)
		wp.expectFrame(func(f map[string]any) bool {
			w, _ := f["with"].(map[string]any)
			return f["type"] == "read" && w != nil && w["user"] == float64(ivanov.ID) && f["up_to"] == ids[1]
		}, "read event in petrova's browser")
		if n := unreadOf(wp, key); n != 0 {
			t.Fatalf("unread after the displayed marker: got %v, want 0", n)
		}
		wi.expectFrame(func(f map[string]any) bool {
			return f["type"] == "receipt" && f["state"] == "read" && f["message_id"] == ids[1] && f["user"] == float64(petrova.ID)
		}, "read receipt in ivanov's browser")
		dino.Expect("<displayed xmlns='urn:xmpp:chat-markers:0' id='o-2'")
		// An older marker does not move the mark back.
		conv.Send(`<message to='ivanov@localhost' type='chat' id='mk-2'><displayed xmlns='urn:xmpp:chat-markers:0' id='o-1'/></message>`)
		if got, err := e.arch.ReadMarkOf(context.Background(), petrova.ID, ivanov.ID, 0); err != nil || got != int64(ids[1]) {
			t.Fatalf("read mark after an older marker: got %d, %v, want %v", got, err, ids[1])
		}

		// The browser reads: the Jabber client of the same user gets the
		// marker as a sent carbon (XEP-0280), with the id it knows.
		d := wi.call(Frame{"type": "send", "to": Frame{"user": petrova.ID}, "body": "m3", "origin_id": "o-3"})
		id3 := d["message"].(map[string]any)["id"].(float64)
		conv.Expect("id='o-3'")
		wp.expectMsg("m3")
		conv.Send(`<iq type='set' id='cb'><enable xmlns='urn:xmpp:carbons:2'/></iq>`)
		conv.Expect("id='cb'")
		wp.call(Frame{"type": "read", "with": Frame{"user": ivanov.ID}, "up_to": id3})
		conv.Expect("<sent xmlns='urn:xmpp:carbons:2'", "<displayed xmlns='urn:xmpp:chat-markers:0' id='o-3'")
		dino.Expect("<displayed xmlns='urn:xmpp:chat-markers:0' id='o-3'")

		// Bad read frames change nothing.
		fid := wp.send(Frame{"type": "read", "with": Frame{"user": ivanov.ID}, "up_to": id3 + 1000})
		if f := wp.expect("error", fid); f["code"] != "not_found" {
			t.Fatalf("read of no such message: got %v", f)
		}
	})
}

// TestSeenByInChat: a member's read mark in a chat, from a Jabber client
// or a browser, reaches the other members' browsers as a seen event, the
// room's occupants as a displayed marker; seen_by and history answer who
// has read what.
func TestSeenByInChat(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newTCPEnv(t, db)
		ctx := context.Background()
		ivanov, petrova, alice := e.user("ivanov"), e.user("petrova"), e.user("alice")
		chat, err := e.svc.Create(ctx, ivanov.ID, muc.NewChat{Title: "Планёрка", Color: "GREEN", Type: "closed", Members: []int64{petrova.ID, alice.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := chat.Room + "@conference.localhost"
		conv := e.jabber("petrova", "conversations")
		conv.Send(`<presence to='` + room + `/Петрова'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		conv.Expect("<subject")
		wi := e.browser("ivanov")
		wp := e.browser("petrova")
		wa := e.browser("alice")

		d := wi.call(Frame{"type": "send", "to": Frame{"chat": chat.ID}, "body": "Итоги недели"})
		id := d["message"].(map[string]any)["id"].(float64)
		wp.expectMsg("Итоги недели")
		conv.Expect("Итоги недели")
		key := fmt.Sprintf("c%d", chat.ID)
		if n := unreadOf(wp, key); n != 1 {
			t.Fatalf("petrova's unread before: got %v, want 1", n)
		}
		seenBy := func(want []int64) {
			t.Helper()
			got := wi.call(Frame{"type": "seen_by", "chat": chat.ID, "message_id": id})["users"].([]any)
			ids := make([]int64, len(got))
			for i, u := range got {
				ids[i] = int64(u.(float64))
			}
			if !reflect.DeepEqual(ids, want) {
				t.Fatalf("seen_by: got %v, want %v", ids, want)
			}
		}
		seenBy([]int64{})

		// Conversations marks it displayed by the room's stanza-id.
		conv.Send(fmt.Sprintf(`<message to='%s' type='groupchat' id='d-1'><displayed xmlns='urn:xmpp:chat-markers:0' id='%d'/></message>`, room, int64(id)))
		isSeen := func(user int64) func(map[string]any) bool {
			return func(f map[string]any) bool {
				return f["type"] == "seen" && f["chat"] == float64(chat.ID) && f["user"] == float64(user) && f["up_to"] == id
			}
		}
		wi.expectFrame(isSeen(petrova.ID), "seen event in the author's browser")
		wp.expectFrame(func(f map[string]any) bool {
			w, _ := f["with"].(map[string]any)
			return f["type"] == "read" && w != nil && w["chat"] == float64(chat.ID) && f["up_to"] == id
		}, "read event in petrova's browser")
		if n := unreadOf(wp, key); n != 0 {
			t.Fatalf("petrova's unread after the displayed marker: got %v, want 0", n)
		}
		seenBy([]int64{petrova.ID})

		// Alice reads in the browser: the room's occupants get the marker
		// from her, the author's browser the seen event.
		wa.call(Frame{"type": "read", "with": Frame{"chat": chat.ID}, "up_to": id})
		wi.expectFrame(isSeen(alice.ID), "seen event for alice")
		conv.Expect("<displayed xmlns='urn:xmpp:chat-markers:0' id='"+fmt.Sprint(int64(id))+"'", "from='"+room+"/")
		seenBy([]int64{petrova.ID, alice.ID})
		h := wi.call(Frame{"type": "history", "with": Frame{"chat": chat.ID}})
		marks, _ := h["read_marks"].(map[string]any)
		if marks[fmt.Sprint(petrova.ID)] != id || marks[fmt.Sprint(alice.ID)] != id {
			t.Fatalf("history read_marks: got %v", h["read_marks"])
		}

		// Someone outside the chat learns nothing.
		wo := e.browser("director")
		fid := wo.send(Frame{"type": "seen_by", "chat": chat.ID, "message_id": id})
		if f := wo.expect("error", fid); f["code"] != "not_found" {
			t.Fatalf("seen_by from outside: got %v", f)
		}
		fid = wo.send(Frame{"type": "read", "with": Frame{"chat": chat.ID}, "up_to": id})
		if f := wo.expect("error", fid); f["code"] != "not_found" {
			t.Fatalf("read from outside: got %v", f)
		}
	})
}

// TestReadAcrossNodes: two nodes on one PostgreSQL database. A read mark
// set in a browser on node B reaches the author's browser on node A (a
// read receipt, a seen event in a chat) and the reader's own browser on A
// (its unread count drops).
func TestReadAcrossNodes(t *testing.T) {
	node := clusterNodes(t)
	ea, svcA := node("read_a")
	eb, _ := node("read_b")
	ivanov, petrova := ea.user("ivanov"), ea.user("petrova")
	dial := func(e *env, login string) *wsConn {
		w, _, err := e.dial(e.login(login), e.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		w.hello(0)
		return w
	}
	wi, wpA, wpB := dial(ea, "ivanov"), dial(ea, "petrova"), dial(eb, "petrova")

	d := wi.call(Frame{"type": "send", "to": Frame{"user": petrova.ID}, "body": "через узлы"})
	id := d["message"].(map[string]any)["id"].(float64)
	wpB.expectMsg("через узлы")
	wpB.call(Frame{"type": "read", "with": Frame{"user": ivanov.ID}, "up_to": id})
	wi.expectFrame(func(f map[string]any) bool {
		return f["type"] == "receipt" && f["state"] == "read" && f["message_id"] == id
	}, "read receipt on the other node")
	wpA.expectFrame(func(f map[string]any) bool {
		w, _ := f["with"].(map[string]any)
		return f["type"] == "read" && w != nil && w["user"] == float64(ivanov.ID) && f["up_to"] == id
	}, "read event in the reader's browser on the other node")

	c, err := svcA.Create(context.Background(), ivanov.ID, muc.NewChat{Title: "Узлы", Type: muc.TypeClosed, Members: []int64{petrova.ID}})
	if err != nil {
		t.Fatal(err)
	}
	chatChanged(wpB, c.ID, "created")
	cid := wi.call(Frame{"type": "send", "to": Frame{"chat": c.ID}, "body": "в чат"})["message"].(map[string]any)["id"].(float64)
	wpB.expectMsg("в чат")
	wpB.call(Frame{"type": "read", "with": Frame{"chat": c.ID}, "up_to": cid})
	wi.expectFrame(func(f map[string]any) bool {
		return f["type"] == "seen" && f["chat"] == float64(c.ID) && f["user"] == float64(petrova.ID) && f["up_to"] == cid
	}, "seen event on the other node")
}
