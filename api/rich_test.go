package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/xmpptest"
)

// TestBitrixRichMessages: ATTACH and KEYBOARD sent as a PHP integration
// sends them (form-encoded arrays) and as JSON are stored with the
// message, come back from im.dialog.messages.get and REST history, and a
// Jabber client reads the plain-text fallback (no BB-codes).
func TestBitrixRichMessages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		e := newEnv(t, db, Options{})
		if err := e.users.SetPassword(ctx, "ivanov", "secret"); err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go e.xmpp.ServeC2S(ln)
		cl := xmpptest.Dial(t, ln.Addr().String(), "ivanov@example.test", "gajim", "secret")
		cl.Send(`<presence/>`)
		cl.Send(`<iq type='get' id='ready' to='example.test'><ping xmlns='urn:xmpp:ping'/></iq>`)
		cl.Expect("id='ready'")

		// Form-encoded, PHP's arrays.
		form := url.Values{
			"DIALOG_ID":                   {"2"},
			"MESSAGE":                     {"Сделка [b]№12[/b] закрыта, [url=https://crm.test/12]карточка[/url]"},
			"ATTACH[0][USER][NAME]":       {"CRM"},
			"ATTACH[1][LINK][NAME]":       {"Сделка 12"},
			"ATTACH[1][LINK][LINK]":       {"https://crm.test/12"},
			"ATTACH[2][DELIMITER][SIZE]":  {"200"},
			"ATTACH[3][GRID][0][NAME]":    {"Сумма"},
			"ATTACH[3][GRID][0][VALUE]":   {"100 ₽"},
			"ATTACH[3][GRID][0][DISPLAY]": {"LINE"},
			"KEYBOARD[0][TEXT]":           {"Одобрить"},
			"KEYBOARD[0][COMMAND]":        {"approve"},
			"KEYBOARD[0][COMMAND_PARAMS]": {"12"},
			"KEYBOARD[1][TYPE]":           {"NEWLINE"},
			"KEYBOARD[2][TEXT]":           {"Открыть"},
			"KEYBOARD[2][LINK]":           {"https://crm.test/12"},
		}
		id := bxID64(t, bxOK(t, e.bx("1", "im.message.add", form.Encode())))
		cl.Expect("<message", "from='director@example.test",
			strings.ReplaceAll("Сделка №12 закрыта, карточка (https://crm.test/12)\nCRM\nСделка 12\nhttps://crm.test/12\n────────\nСумма: 100 ₽\n[Одобрить]\n[Открыть] https://crm.test/12</body>", "\n", "&#xA;"),
			"urn:vestnik:rich:0")

		// MAM gives a Jabber client the same: the fallback body and the element.
		cl.Send(`<iq type='set' id='mam1'><query xmlns='urn:xmpp:mam:2' queryid='mam1'/></iq>`)
		cl.Expect("<result", "queryid='mam1'", "Сделка №12 закрыта, карточка (https://crm.test/12)", "urn:vestnik:rich:0")
		cl.Expect("id='mam1'", "<fin")

		// Back from im.dialog.messages.get with the text as sent and the
		// attachment and keyboard in params.
		got := bxOK(t, e.bx("1", "im.dialog.messages.get", "DIALOG_ID=2")).(map[string]any)["messages"].([]any)
		var msg map[string]any
		for _, m := range got {
			if int64(m.(map[string]any)["id"].(float64)) == id {
				msg = m.(map[string]any)
			}
		}
		if msg == nil || msg["text"] != form.Get("MESSAGE") {
			t.Fatalf("im.dialog.messages.get: %v", got)
		}
		params, _ := json.Marshal(msg["params"])
		for _, want := range []string{`"ATTACH":[{"BLOCKS":[{"USER":{"NAME":"CRM"}}`, `"DELIMITER":{"SIZE":200}`, `"KEYBOARD":[{"COMMAND":"approve","COMMAND_PARAMS":"12","TEXT":"Одобрить"},{"TYPE":"NEWLINE"}`} {
			if !strings.Contains(string(params), want) {
				t.Errorf("params %s: want %s", params, want)
			}
		}

		// JSON, the full ATTACH form and KEYBOARD with BUTTONS, to a chat.
		chatID := bxID64(t, bxOK(t, e.bx("1", "im.chat.add", "TITLE=rich&USERS[]=2")))
		body := fmt.Sprintf(`{"DIALOG_ID":"chat%d","MESSAGE":"","ATTACH":{"ID":1,"COLOR":"#29619b","BLOCKS":[{"MESSAGE":"API в [B]im 24[/B]"},{"IMAGE":{"NAME":"chart","LINK":"https://crm.test/c.png"}},{"FILE":[{"NAME":"deal.pdf","LINK":"https://crm.test/d.pdf","SIZE":2048}]}]},"KEYBOARD":{"BUTTONS":[{"TEXT":"Да","COMMAND":"yes","BG_COLOR":"#29619b","DISABLED":"N"}]}}`, chatID)
		cid := bxID64(t, bxOK(t, e.bxRaw(e.token, "1", "POST", "im.message.add", "application/json", body)))
		st, hist := e.do("GET", fmt.Sprintf("/api/v1/chats/%d/messages?user_id=2", chatID), "")
		if st != 200 {
			t.Fatalf("history: %d %v", st, hist)
		}
		ms := hist["messages"].([]any)
		last := ms[len(ms)-1].(map[string]any)
		if int64(last["id"].(float64)) != cid || last["text"] != "" || last["attach"] == nil || last["keyboard"] == nil {
			t.Fatalf("REST history: %v", last)
		}
		if a := last["attach"].(map[string]any); a["color"] != "#29619b" || len(a["blocks"].([]any)) != 3 {
			t.Fatalf("REST history attach: %v", a)
		}
		arch := mam.NewStore(db)
		m, err := arch.GetFor(ctx, uid(t, db, "2"), cid)
		if err != nil {
			t.Fatal(err)
		}
		if m.Body != "API в im 24\n[image] chart https://crm.test/c.png\n[file] deal.pdf (2.0 KB) https://crm.test/d.pdf\n[Да]" {
			t.Fatalf("stored fallback body: %q", m.Body)
		}

		// Bad input: a clear 400 naming the field, nothing stored.
		before, _ := arch.Count(ctx, mam.Query{Viewer: uid(t, db, "1"), With: uid(t, db, "2")})
		for _, tc := range []struct{ name, form, code, in string }{
			{"javascript", "DIALOG_ID=2&MESSAGE=x&ATTACH[0][LINK][LINK]=javascript:alert(1)", "ATTACH_ERROR", "[0].link.link"},
			{"two kinds", "DIALOG_ID=2&ATTACH[0][MESSAGE]=x&ATTACH[0][DELIMITER][SIZE]=1", "ATTACH_ERROR", "[0]"},
			{"bad color", "DIALOG_ID=2&MESSAGE=x&KEYBOARD[0][TEXT]=a&KEYBOARD[0][COMMAND]=b&KEYBOARD[0][BG_COLOR]=red", "KEYBOARD_ERROR", "bg_color"},
			{"nothing", "DIALOG_ID=2&MESSAGE=&ATTACH=&KEYBOARD=", "MESSAGE_EMPTY", ""},
			{"blocks not a list", "DIALOG_ID=2&ATTACH[BLOCKS]=x", "ATTACH_ERROR", "BLOCKS"},
			{"not a number", "DIALOG_ID=2&ATTACH[0][DELIMITER][SIZE]=wide", "ATTACH_ERROR", ""},
			{"too many blocks", "DIALOG_ID=2&" + strings.Repeat("ATTACH[][MESSAGE]=x&", 51), "ATTACH_ERROR", "at most 50"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := e.bx("1", "im.message.add", tc.form)
				bxExpectError(t, a, 400, tc.code)
				if !strings.Contains(a.out["error_description"].(string), tc.in) {
					t.Errorf("description %q does not name %q", a.out["error_description"], tc.in)
				}
			})
		}
		if after, _ := arch.Count(ctx, mam.Query{Viewer: uid(t, db, "1"), With: uid(t, db, "2")}); after != before {
			t.Fatalf("refused messages were stored: %d → %d", before, after)
		}

		// im.message.update: new text keeps the keyboard; KEYBOARD=N drops it.
		bxOK(t, e.bx("1", "im.message.update", url.Values{"MESSAGE_ID": {fmt.Sprint(id)}, "MESSAGE": {"[i]обновлено[/i]"}}.Encode()))
		cl.Expect("<replace", "обновлено&#xA;CRM")
		if m, _ := arch.GetFor(ctx, uid(t, db, "2"), id); !strings.HasPrefix(m.Body, "обновлено\nCRM") || xmppcore.RichOf(m.Payload).Keyboard == nil {
			t.Fatalf("after update: %q %v", m.Body, xmppcore.RichOf(m.Payload))
		}
		bxOK(t, e.bx("1", "im.message.update", url.Values{"MESSAGE_ID": {fmt.Sprint(id)}, "KEYBOARD": {"N"}}.Encode()))
		if m, _ := arch.GetFor(ctx, uid(t, db, "2"), id); strings.Contains(m.Body, "Одобрить") || xmppcore.RichOf(m.Payload).Keyboard != nil {
			t.Fatalf("after KEYBOARD=N: %q", m.Body)
		}

		// A notification with BB-codes and an attachment is readable text.
		bxOK(t, e.bx("1", "im.notify.personal.add", url.Values{"USER_ID": {"2"}, "MESSAGE": {"[b]Новая[/b] задача"}, "ATTACH[0][LINK][LINK]": {"https://crm.test/t/1"}}.Encode()))
		cl.Expect("Новая задача&#xA;https://crm.test/t/1")
	})
}

// TestRESTRichMessages: attach and keyboard on POST /messages and POST
// /chats/{id}/messages, PATCH /messages/{id}, and pressing a button
// through the core (the keyboard-pressed hook).
func TestRESTRichMessages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		e := newEnv(t, db, Options{})
		var mu sync.Mutex
		var presses []xmppcore.KeyboardPress
		e.xmpp.OnKeyboardPress(func(_ context.Context, p xmppcore.KeyboardPress) {
			mu.Lock()
			presses = append(presses, p)
			mu.Unlock()
		})
		st, out := e.do("POST", "/api/v1/messages", `{"from_user_id":"1","to_user_id":"2","message":"[b]Опрос[/b]","attach":[{"message":"Идём?"}],"keyboard":[{"text":"Да","command":"vote","command_params":"yes"},{"text":"Сайт","link":"https://portal.test"}]}`)
		if st != 201 {
			t.Fatalf("POST /messages: %d %v", st, out)
		}
		id := int64(out["id"].(float64))
		st, out = e.do("GET", "/api/v1/users/2/history?with=1", "")
		if st != 200 {
			t.Fatalf("history: %d %v", st, out)
		}
		ms := out["messages"].([]any)
		m := ms[len(ms)-1].(map[string]any)
		if m["text"] != "[b]Опрос[/b]" || len(m["keyboard"].([]any)) != 2 {
			t.Fatalf("history: %v", m)
		}

		// Errors name the field (422, SPEC's error model); nothing stored.
		for _, tc := range []struct{ name, body, field string }{
			{"link scheme", `{"from_user_id":"1","to_user_id":"2","attach":[{"link":{"link":"javascript:x"}}]}`, "attach.blocks[0].link.link"},
			{"button action", `{"from_user_id":"1","to_user_id":"2","message":"x","keyboard":[{"text":"a"}]}`, "keyboard[0]"},
		} {
			st, out := e.do("POST", "/api/v1/messages", tc.body)
			if st != 422 || out["error"].(map[string]any)["field"] != tc.field {
				t.Errorf("%s: got %d %v, want 422 on %s", tc.name, st, out, tc.field)
			}
		}
		chatID := bxID64(t, bxOK(t, e.bx("1", "im.chat.add", "TITLE=poll&USERS[]=2")))
		st, out = e.do("POST", fmt.Sprintf("/api/v1/chats/%d/messages", chatID), `{"from_user_id":"1","keyboard":[{"text":"Ок","command":"ok"}]}`)
		if st != 201 {
			t.Fatalf("POST chat message with a keyboard only: %d %v", st, out)
		}
		cid := int64(out["id"].(float64))

		// PATCH replaces the keyboard, keeps the text.
		st, out = e.do("PATCH", fmt.Sprintf("/api/v1/messages/%d", id), `{"from_user_id":"1","keyboard":[{"text":"Нет","command":"vote","command_params":"no"}]}`)
		out, _ = out["message"].(map[string]any)
		if st != 200 || out["text"] != "[b]Опрос[/b]" || len(out["keyboard"].([]any)) != 1 {
			t.Fatalf("PATCH: %d %v", st, out)
		}

		// Pressing: the reader may press a command button; the hook hears it.
		p, err := e.xmpp.PressButton(ctx, uid(t, db, "2"), id, 0)
		if err != nil || p.Command != "vote" || p.Params != "no" {
			t.Fatalf("press: %+v %v", p, err)
		}
		st, out = e.do("POST", fmt.Sprintf("/api/v1/messages/%d/keyboard", cid), `{"from_user_id":"2","button":0}`)
		if st != 200 || out["command"] != "ok" {
			t.Fatalf("press in a chat over REST: %d %v", st, out)
		}
		if st, out = e.do("POST", fmt.Sprintf("/api/v1/messages/%d/keyboard", cid), `{"from_user_id":"2","button":3}`); st != 422 {
			t.Fatalf("press a missing button over REST: %d %v", st, out)
		}
		if st, out = e.do("POST", fmt.Sprintf("/api/v1/messages/%d/keyboard", cid), `{"from_user_id":"3","button":0}`); st != 404 {
			t.Fatalf("press by a non-member over REST: %d %v", st, out)
		}
		if _, err := e.xmpp.PressButton(ctx, uid(t, db, "3"), id, 0); err == nil {
			t.Fatal("a user who cannot read the message pressed its button")
		}
		if _, err := e.xmpp.PressButton(ctx, uid(t, db, "2"), id, 5); err == nil {
			t.Fatal("a button that does not exist was pressed")
		}
		mu.Lock()
		defer mu.Unlock()
		if len(presses) != 2 || presses[0].UserID != uid(t, db, "2") || presses[0].MessageID != id || presses[1].ChatID != chatID {
			t.Fatalf("hook got %+v", presses)
		}
	})
}
