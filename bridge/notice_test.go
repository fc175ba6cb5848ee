package bridge

import (
	"context"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/muc"
)

// TestSystemNotices: the system messages the server writes about members
// and about the chat (created, renamed, description/color/avatar changed)
// reach the browser with a typed event (rendered in the reader's
// language by the client) beside the English body, live and in history.
func TestSystemNotices(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e, svc := newXMPPEnv(t, db)
		ivanov, petrova, alice := e.user("ivanov"), e.user("petrova"), e.user("alice")
		chat, err := svc.Create(context.Background(), ivanov.ID, muc.NewChat{Title: "Продажи", Color: "GREEN", Type: "closed", Members: []int64{petrova.ID}})
		if err != nil {
			t.Fatal(err)
		}
		wp, _, _ := e.dial(e.login("petrova"), e.srv.URL)
		wp.hello(0)
		wi, _, _ := e.dial(e.login("ivanov"), e.srv.URL)
		wi.hello(0)
		wi.call(Frame{"type": "chat_add", "chat": chat.ID, "users": []int64{alice.ID}})
		m := wp.expectMsg("Иван Иванов added Alice Johnson")
		ev, _ := m["event"].(map[string]any)
		if m["kind"] != "system" || ev["type"] != muc.NoticeAdded || ev["actor"] != float64(ivanov.ID) ||
			len(ev["users"].([]any)) != 1 || ev["users"].([]any)[0] != float64(alice.ID) {
			t.Fatalf("added notice: got %v", m)
		}
		wi.call(Frame{"type": "chat_remove", "chat": chat.ID, "user": alice.ID})
		m = wp.expectMsg("Иван Иванов removed Alice Johnson")
		if ev, _ := m["event"].(map[string]any); ev["type"] != muc.NoticeRemoved {
			t.Fatalf("removed notice: got %v", m)
		}
		wp.call(Frame{"type": "chat_leave", "chat": chat.ID})
		m = wi.expectMsg("Мария Петрова left the chat")
		if ev, _ := m["event"].(map[string]any); ev["type"] != muc.NoticeLeft || ev["users"].([]any)[0] != float64(petrova.ID) {
			t.Fatalf("left notice: got %v", m)
		}
		// Renaming and the other edits: typed notices too, with the new
		// title; the English body is what Jabber clients read.
		wi.call(Frame{"type": "chat_edit", "chat": chat.ID, "title": "Продажи 2027"})
		m = wi.expectMsg("Иван Иванов renamed the chat to “Продажи 2027”")
		if ev, _ := m["event"].(map[string]any); ev["type"] != muc.NoticeRenamed || ev["title"] != "Продажи 2027" || ev["actor"] != float64(ivanov.ID) {
			t.Fatalf("renamed notice: got %v", m)
		}
		wi.call(Frame{"type": "chat_edit", "chat": chat.ID, "description": "план", "color": "RED", "title": "Продажи 2027"})
		m = wi.expectMsg("Иван Иванов changed the chat's description, color")
		if ev, _ := m["event"].(map[string]any); ev["type"] != muc.NoticeChanged || fmt.Sprint(ev["fields"]) != "[description color]" {
			t.Fatalf("changed notice: got %v", m)
		}
		h := wi.call(Frame{"type": "history", "with": Frame{"chat": chat.ID}})
		var types []string
		for _, x := range h["messages"].([]any) {
			if ev, ok := x.(map[string]any)["event"].(map[string]any); ok {
				types = append(types, ev["type"].(string))
			}
		}
		if got := fmt.Sprint(types); got != "[created added removed left renamed changed]" {
			t.Fatalf("history notices: got %v, want created, added, removed, left, renamed, changed", got)
		}
		// A message from the integration marked system has no event.
		if _, err := svc.PostMessage(context.Background(), chat.ID, 0, "Плановые работы", true); err != nil {
			t.Fatal(err)
		}
		if m := wi.expectMsg("Плановые работы"); m["event"] != nil {
			t.Fatalf("integration's system message: got an event %v", m["event"])
		}
	})
}
