package bridge

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
)

// newXMPPEnv is a bridge over a real XMPP core and chat service.
func newXMPPEnv(t *testing.T, db *sqlx.DB) (*env, *muc.Service) {
	t.Helper()
	users := roster.NewStore(db)
	if _, err := users.Import(context.Background(), roster.DemoSnapshot(), false); err != nil {
		t.Fatalf("demo import: %v", err)
	}
	arch := mam.NewStore(db)
	srv := xmppcore.NewServer(db, users, arch, xmppcore.Options{Domain: "localhost"})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	chats := muc.NewStore(db)
	svc := muc.New(chats, srv, arch, users, muc.Options{Domain: "localhost"})
	svc.Register(srv)
	e := newEnv(t, db, XMPP(srv, users, chats, svc, arch, nil))
	return e, svc
}

// expectMsg reads frames until a message event whose body is body.
func (w *wsConn) expectMsg(body string) map[string]any {
	w.t.Helper()
	f := w.take(func(f map[string]any) bool {
		m, ok := f["message"].(map[string]any)
		return f["type"] == "message" && ok && m["body"] == body
	}, fmt.Sprintf("message %q", body))
	return f["message"].(map[string]any)
}

func (w *wsConn) expectFrame(pred func(map[string]any) bool, what string) map[string]any {
	w.t.Helper()
	return w.take(pred, what)
}

func TestRoundTripThroughCore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e, _ := newXMPPEnv(t, db)
		ivanov, petrova := e.user("ivanov"), e.user("petrova")
		wi, _, err := e.dial(e.login("ivanov"), e.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		wi.hello(0)
		wp, _, err := e.dial(e.login("petrova"), e.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		wp.hello(0)

		// Ivanov sees Petrova come online.
		wi.expectFrame(func(f map[string]any) bool {
			return f["type"] == "presence" && f["user"] == float64(petrova.ID) && f["show"] == "online"
		}, "petrova's presence")

		d := wi.call(Frame{"type": "send", "to": Frame{"user": petrova.ID}, "body": "Привет <b>!", "origin_id": "o-1"})
		sent := d["message"].(map[string]any)
		id := sent["id"].(float64)
		if id <= 0 || sent["from"] != float64(ivanov.ID) || sent["origin_id"] != "o-1" {
			t.Fatalf("ack: got %v", sent)
		}
		got := wp.expectMsg("Привет <b>!")
		if got["id"] != id || got["from"] != float64(ivanov.ID) {
			t.Fatalf("delivered: got %v, want id %v", got, id)
		}
		// Stored before the ack.
		if _, err := e.arch.Get(context.Background(), int64(id)); err != nil {
			t.Fatalf("not in the archive: %v", err)
		}
		// Petrova's browser got it: a delivery receipt, then reading it: a read marker.
		wi.expectFrame(func(f map[string]any) bool {
			return f["type"] == "receipt" && f["state"] == "delivered" && f["message_id"] == id
		}, "delivered receipt")
		wp.send(Frame{"type": "typing", "to": Frame{"user": ivanov.ID}, "state": "composing"})
		wi.expectFrame(func(f map[string]any) bool {
			return f["type"] == "typing" && f["user"] == float64(petrova.ID) && f["state"] == "composing"
		}, "typing")
		wp.call(Frame{"type": "read", "with": Frame{"user": ivanov.ID}, "up_to": id})
		wi.expectFrame(func(f map[string]any) bool {
			return f["type"] == "receipt" && f["state"] == "read" && f["message_id"] == id
		}, "read receipt")

		// Edit and delete reach the other side.
		wi.call(Frame{"type": "edit", "message_id": id, "body": "Привет!"})
		ed := wp.expectFrame(func(f map[string]any) bool { return f["type"] == "edited" }, "edited")
		if m := ed["message"].(map[string]any); m["body"] != "Привет!" || m["edited"] != true {
			t.Fatalf("edited: got %v", m)
		}
		// Only the author may edit.
		id2 := wp.send(Frame{"type": "edit", "message_id": id, "body": "hacked"})
		if f := wp.expect("error", id2); f["code"] != "forbidden" {
			t.Fatalf("editing another's message: got %v", f)
		}
		wi.call(Frame{"type": "delete", "message_id": id})
		del := wp.expectFrame(func(f map[string]any) bool { return f["type"] == "deleted" }, "deleted")
		if m := del["message"].(map[string]any); m["deleted"] != true || m["body"] != "" {
			t.Fatalf("deleted: got %v", m)
		}

		// Status.
		wp.call(Frame{"type": "presence", "show": "dnd", "status": "на встрече"})
		wi.expectFrame(func(f map[string]any) bool {
			return f["type"] == "presence" && f["user"] == float64(petrova.ID) && f["show"] == "dnd" && f["status"] == "на встрече"
		}, "dnd presence")
	})
}

func TestChatThroughCore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e, svc := newXMPPEnv(t, db)
		ivanov, petrova, alice := e.user("ivanov"), e.user("petrova"), e.user("alice")
		chat, err := svc.Create(context.Background(), ivanov.ID, muc.NewChat{Title: "Продажи", Color: "GREEN", Type: "closed", Members: []int64{petrova.ID}})
		if err != nil {
			t.Fatal(err)
		}
		wi, _, _ := e.dial(e.login("ivanov"), e.srv.URL)
		wi.hello(0)
		wp, _, _ := e.dial(e.login("petrova"), e.srv.URL)
		wp.hello(0)
		d := wi.call(Frame{"type": "send", "to": Frame{"chat": chat.ID}, "body": "Всем привет", "origin_id": "c-1"})
		id := d["message"].(map[string]any)["id"]
		m := wp.expectMsg("Всем привет")
		if m["id"] != id || m["chat"] != float64(chat.ID) || m["kind"] != "groupchat" {
			t.Fatalf("chat message: got %v", m)
		}
		// Typing in the chat reaches the other member's browser.
		wp.send(Frame{"type": "typing", "to": Frame{"chat": chat.ID}, "state": "composing"})
		wi.expectFrame(func(f map[string]any) bool {
			return f["type"] == "typing" && f["chat"] == float64(chat.ID) && f["user"] == float64(petrova.ID)
		}, "typing in the chat")
		// A non-member cannot post to a closed chat.
		wa, _, _ := e.dial(e.login("alice"), e.srv.URL)
		wa.hello(0)
		fid := wa.send(Frame{"type": "send", "to": Frame{"chat": chat.ID}, "body": "можно?"})
		if f := wa.expect("error", fid); f["code"] != "forbidden" && f["code"] != "invalid" {
			t.Fatalf("non-member post: got %v", f)
		}
		h := wa.call(Frame{"type": "history", "with": Frame{"chat": chat.ID}})
		if len(h["messages"].([]any)) != 0 {
			t.Fatalf("non-member reads the chat: %v", h)
		}
		c := wp.call(Frame{"type": "conversations"})
		found := false
		for _, x := range c["conversations"].([]any) {
			cv := x.(map[string]any)
			if cv["key"] == fmt.Sprintf("c%d", chat.ID) && cv["unread"].(float64) == 1 {
				found = true
			}
		}
		if !found {
			t.Fatalf("conversations: got %v", c)
		}
		// Added with hide_history: the conversation list shows nothing of
		// what was said before (the archive's access rule decides it).
		hide := true
		if _, err := svc.AddMembers(context.Background(), ivanov.ID, chat.ID, []int64{alice.ID}, &hide, true); err != nil {
			t.Fatal(err)
		}
		c = wa.call(Frame{"type": "conversations"})
		for _, x := range c["conversations"].([]any) {
			cv := x.(map[string]any)
			if cv["key"] == fmt.Sprintf("c%d", chat.ID) && (cv["unread"].(float64) != 0 || cv["last"] != nil) {
				t.Fatalf("hidden history in alice's conversation list: %v", cv)
			}
		}
	})
}

// TestResume: messages sent while a browser was away come back exactly
// once when it reconnects with its last id, whether through the replay or
// the core's offline delivery, and its own message sent before the drop
// comes back too (the client sees its origin id and does not resend).
func TestResume(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e, _ := newXMPPEnv(t, db)
		ivanov, petrova := e.user("ivanov"), e.user("petrova")
		wi, _, _ := e.dial(e.login("ivanov"), e.srv.URL)
		wi.hello(0)
		cp := e.login("petrova")
		wp, _, _ := e.dial(cp, e.srv.URL)
		wp.hello(0)
		first := wi.call(Frame{"type": "send", "to": Frame{"user": petrova.ID}, "body": "one"})["message"].(map[string]any)["id"].(float64)
		wp.expectMsg("one")
		// Petrova's own message, then she drops.
		mine := wp.call(Frame{"type": "send", "to": Frame{"user": ivanov.ID}, "body": "mine", "origin_id": "p-9"})["message"].(map[string]any)["id"].(float64)
		wp.ws.Close()
		time.Sleep(100 * time.Millisecond)
		var want []float64
		for i := 0; i < 5; i++ {
			d := wi.call(Frame{"type": "send", "to": Frame{"user": petrova.ID}, "body": fmt.Sprintf("away %d", i)})
			want = append(want, d["message"].(map[string]any)["id"].(float64))
		}
		wp2, _, _ := e.dial(cp, e.srv.URL)
		replay := wp2.hello(int64(first))
		// Then anything the live path brings (offline flush) must not repeat.
		seen := map[float64]int{}
		var bodies []string
		for _, m := range replay {
			seen[m["id"].(float64)]++
			bodies = append(bodies, m["body"].(string))
		}
		deadline := time.Now().Add(700 * time.Millisecond)
		wp2.ws.SetReadDeadline(deadline)
		for {
			var f map[string]any
			if err := wp2.ws.ReadJSON(&f); err != nil {
				break
			}
			if f["type"] == "message" {
				m := f["message"].(map[string]any)
				seen[m["id"].(float64)]++
				bodies = append(bodies, m["body"].(string))
			}
		}
		if seen[mine] != 1 || seen[first] != 0 {
			t.Fatalf("replay: got %v", bodies)
		}
		for _, id := range want {
			if seen[id] != 1 {
				t.Fatalf("message %v delivered %d times (bodies %v, replay %v)", id, seen[id], bodies, replay)
			}
		}
		if len(seen) != 6 {
			t.Fatalf("got %d distinct messages %v, want 6", len(seen), bodies)
		}
	})
}

// A hello with last_id says what the browser has: the offline flush of
// the attach must not send those again (they were above the stored
// delivery mark: delivered before a crash, or read through another
// door's replay), and what is newer comes once.
func TestHelloLastIDNotResent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e, _ := newXMPPEnv(t, db)
		petrova := e.user("petrova")
		wi, _, _ := e.dial(e.login("ivanov"), e.srv.URL)
		wi.hello(0)
		var ids []float64
		for _, body := range []string{"a", "b", "c"} {
			d := wi.call(Frame{"type": "send", "to": Frame{"user": petrova.ID}, "body": body})
			ids = append(ids, d["message"].(map[string]any)["id"].(float64))
		}
		cp := e.login("petrova")
		drain := func(w *wsConn, replay []map[string]any) map[string]int {
			got := map[string]int{}
			for _, m := range replay {
				got[m["body"].(string)]++
			}
			w.ws.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			for {
				var f map[string]any
				if err := w.ws.ReadJSON(&f); err != nil {
					return got
				}
				if m, ok := f["message"].(map[string]any); ok && f["type"] == "message" {
					got[m["body"].(string)]++
				}
			}
		}
		wp, _, _ := e.dial(cp, e.srv.URL)
		got := drain(wp, wp.hello(int64(ids[1])))
		if got["a"] != 0 || got["b"] != 0 || got["c"] != 1 || len(got) != 1 {
			t.Fatalf("hello with last_id of b: got %v, want only c once", got)
		}
		wp.ws.Close()
		time.Sleep(100 * time.Millisecond)
		wp2, _, _ := e.dial(cp, e.srv.URL)
		if got := drain(wp2, wp2.hello(int64(ids[2]))); len(got) != 0 {
			t.Fatalf("hello with last_id of c: got %v, want nothing", got)
		}
	})
}
