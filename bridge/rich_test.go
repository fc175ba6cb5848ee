package bridge

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/rich"
)

// TestRichAcrossDoors: a rich message posted through the core reaches the
// browser live and in history with its text, attachment and keyboard, a
// Jabber client with the plain-text fallback; the browser presses a
// command button (the core's keyboard-pressed hook hears it) and is
// refused a button that does not exist; a Jabber client's own <rich/>
// element is held to the same rule.
func TestRichAcrossDoors(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newTCPEnv(t, db)
		ctx := context.Background()
		ivanov, petrova := e.user("ivanov"), e.user("petrova")
		var mu sync.Mutex
		var presses []xmppcore.KeyboardPress
		e.xs.OnKeyboardPress(func(_ context.Context, p xmppcore.KeyboardPress) {
			mu.Lock()
			presses = append(presses, p)
			mu.Unlock()
		})
		chat, err := e.svc.Create(ctx, ivanov.ID, muc.NewChat{Title: "Опрос", Color: "GREEN", Type: "closed", Members: []int64{petrova.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := chat.Room + "@conference.localhost"
		conv := e.jabber("petrova", "conversations")
		conv.Send(`<presence to='` + room + `/Петрова'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		conv.Expect("<subject")
		wp := e.browser("petrova")

		c := &rich.Content{Text: "Обед [b]в час[/b]?", Attach: &rich.Attach{Blocks: []rich.Block{{Link: &rich.Link{Name: "Меню", Link: "https://cafe.test/menu"}}}},
			Keyboard: []rich.Button{{Text: "Да", Command: "lunch", CommandParams: "yes"}, {Text: "Меню", Link: "https://cafe.test/menu"}}}
		id, err := e.svc.PostRich(ctx, chat.ID, ivanov.ID, c, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		conv.Expect("type='groupchat'", "<body>Обед в час?&#xA;Меню&#xA;https://cafe.test/menu&#xA;[Да] [Меню] https://cafe.test/menu</body>")
		live := wp.take(func(f map[string]any) bool {
			m, _ := f["message"].(map[string]any)
			return f["type"] == "message" && m != nil && m["id"] == float64(id)
		}, "the rich message")["message"].(map[string]any)
		r, _ := live["rich"].(map[string]any)
		if r == nil || r["text"] != "Обед [b]в час[/b]?" || len(r["keyboard"].([]any)) != 2 || r["attach"] == nil {
			t.Fatalf("live frame: %v", live)
		}
		h := wp.call(Frame{"type": "history", "with": Frame{"chat": chat.ID}})
		msgs := h["messages"].([]any)
		if last := msgs[len(msgs)-1].(map[string]any); last["rich"] == nil {
			t.Fatalf("history: %v", last)
		}

		// Pressing: a command button is an event; a link button or a
		// missing one is refused; a non-member cannot press.
		if a := wp.call(Frame{"type": "press", "message_id": id, "button": 0}); a["button"] != float64(0) {
			t.Fatalf("press: %v", a)
		}
		fid := wp.send(Frame{"type": "press", "message_id": id, "button": 1})
		if f := wp.expect("error", fid); f["code"] != "bad_button" {
			t.Fatalf("press a link button: %v", f)
		}
		wa := e.browser("alice")
		fid = wa.send(Frame{"type": "press", "message_id": id, "button": 0})
		if f := wa.expect("error", fid); f["code"] != "not_found" {
			t.Fatalf("press by a non-member: %v", f)
		}
		mu.Lock()
		if len(presses) != 1 || presses[0].UserID != petrova.ID || presses[0].ChatID != chat.ID || presses[0].Params != "yes" {
			t.Fatalf("hook: %+v", presses)
		}
		mu.Unlock()

		// A Jabber client (a bot) may send a <rich/> element: validated,
		// body made its fallback; an invalid one is a bad-request error.
		conv.Send(`<message to='ivanov@localhost' type='chat' id='r-1'><body>ignored</body><rich xmlns='urn:vestnik:rich:0'>{"text":"[i]Готово[/i]","keyboard":[{"text":"Ок","command":"ok"}]}</rich></message>`)
		wi := e.browser("ivanov")
		_ = wi
		conv.Send(`<message to='ivanov@localhost' type='chat' id='r-2'><body>x</body><rich xmlns='urn:vestnik:rich:0'>{"attach":[{"link":{"link":"javascript:alert(1)"}}]}</rich></message>`)
		conv.Expect("type='error'", "id='r-2'", "bad-request", "link.link")
		h = wi.call(Frame{"type": "history", "with": Frame{"user": petrova.ID}})
		msgs = h["messages"].([]any)
		last := msgs[len(msgs)-1].(map[string]any)
		if last["body"] != "Готово\n[Ок]" || !strings.Contains(last["rich"].(map[string]any)["text"].(string), "[i]") || len(msgs) != 1 {
			t.Fatalf("history after a Jabber client's rich message: %v", msgs)
		}
	})
}

// TestTypedBBCodeOneRule: BB-codes typed in the browser reach Jabber
// clients as plain text, as a REST message's do, in a chat and one to one;
// the browser keeps the formatting (the rich text), history too; XEP-0393
// styling (*bold*) passes through as typed; a Jabber client's BB-codes are
// held to the same rule.
func TestTypedBBCodeOneRule(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newTCPEnv(t, db)
		ctx := context.Background()
		ivanov, petrova := e.user("ivanov"), e.user("petrova")
		chat, err := e.svc.Create(ctx, ivanov.ID, muc.NewChat{Title: "Формат", Color: "GREEN", Type: "closed", Members: []int64{petrova.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := chat.Room + "@conference.localhost"
		conv := e.jabber("petrova", "conversations")
		conv.Send(`<presence to='` + room + `/Петрова'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		conv.Expect("<subject")
		wi, wp := e.browser("ivanov"), e.browser("petrova")

		wi.call(Frame{"type": "send", "to": Frame{"chat": chat.ID}, "body": "[b]Важно:[/b] см. [url=https://wiki.test/a]вики[/url]"})
		conv.Expect("type='groupchat'", "<body>Важно: см. вики (https://wiki.test/a)</body>")
		wi.call(Frame{"type": "send", "to": Frame{"user": petrova.ID}, "body": "[i]срочно[/i] и *жирно*"})
		conv.Expect("type='chat'", "<body>срочно и *жирно*</body>")
		wi.call(Frame{"type": "send", "to": Frame{"user": petrova.ID}, "body": "*только стиль* _XEP-0393_"})
		conv.Expect("type='chat'", "<body>*только стиль* _XEP-0393_</body>")

		live := wp.take(func(f map[string]any) bool {
			m, _ := f["message"].(map[string]any)
			return f["type"] == "message" && m != nil && m["body"] == "срочно и *жирно*"
		}, "the browser's BB-coded message")["message"].(map[string]any)
		if r, _ := live["rich"].(map[string]any); r == nil || r["text"] != "[i]срочно[/i] и *жирно*" {
			t.Fatalf("live frame: %v", live)
		}
		h := wp.call(Frame{"type": "history", "with": Frame{"chat": chat.ID}})
		msgs := h["messages"].([]any)
		last := msgs[len(msgs)-1].(map[string]any)
		if r, _ := last["rich"].(map[string]any); last["body"] != "Важно: см. вики (https://wiki.test/a)" || r == nil || r["text"] != "[b]Важно:[/b] см. [url=https://wiki.test/a]вики[/url]" {
			t.Fatalf("chat history: %v", last)
		}
		h = wp.call(Frame{"type": "history", "with": Frame{"user": ivanov.ID}})
		msgs = h["messages"].([]any)
		if last := msgs[len(msgs)-1].(map[string]any); last["rich"] != nil || last["body"] != "*только стиль* _XEP-0393_" {
			t.Fatalf("styling only: %v", last)
		}

		// A Jabber client's typed BB-code: the same rule.
		conv.Send(`<message to='` + room + `' type='groupchat' id='bb-1'><body>[u]ок[/u]</body></message>`)
		conv.Expect("type='groupchat'", "id='bb-1'", "<body>ок</body>")
	})
}
