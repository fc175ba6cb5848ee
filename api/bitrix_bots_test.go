package api

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// waitForm returns the first Bitrix24-form delivery whose event is name
// and whose fields pass ok.
func (e *hookEnv) waitForm(name string, ok func(f url.Values) bool) url.Values {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		e.mu.Lock()
		for _, f := range e.forms {
			if f.Get("event") == name && ok(f) {
				e.mu.Unlock()
				return f
			}
		}
		e.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("no %s delivery arrived", name)
	return nil
}

// TestBitrixBots drives imbot.* as a PHP integration would: the bot is
// registered, registers a command, hears it (ONIMCOMMANDADD, form-encoded)
// and messages (ONIMBOTMESSAGEADD) in a chat it was added to, answers
// with imbot.message.add, and is unregistered.
func TestBitrixBots(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newHookEnv(t, db, "blocked.example")
		hook := url.QueryEscape(e.rcv.URL + "/bitrix")
		a := e.bx("2", "imbot.register", "CODE=echo&TYPE=B&EVENT_MESSAGE_ADD=http%3A%2F%2Fblocked.example%2F&PROPERTIES[NAME]=x")
		if a.st != 400 || a.out["error"] != "EVENT_MESSAGE_ADD_ERROR" {
			t.Fatalf("a denied handler: got %d %v", a.st, a.out)
		}
		a = e.bx("2", "imbot.register", "CODE=echo&EVENT_MESSAGE_ADD="+hook)
		if a.st != 400 || a.out["error"] != "NAME_ERROR" {
			t.Fatalf("no PROPERTIES[NAME]: got %d %v", a.st, a.out)
		}
		botID := bxOK(t, e.bx("2", "imbot.register", "CODE=echo&TYPE=B&EVENT_MESSAGE_ADD="+hook+"&EVENT_WELCOME_MESSAGE="+hook+
			"&EVENT_BOT_DELETE="+hook+"&PROPERTIES[NAME]=Эхо&PROPERTIES[COLOR]=GREEN"))
		if botID != "bot_echo" {
			t.Fatalf("BOT_ID: got %v, want bot_echo", botID)
		}
		if a := e.bx("2", "imbot.register", "CODE=echo&EVENT_MESSAGE_ADD="+hook+"&PROPERTIES[NAME]=Эхо"); a.out["error"] != "CODE_ERROR" {
			t.Fatalf("the same CODE again: got %v", a.out)
		}
		if id := bxOK(t, e.bx("2", "imbot.command.register", "BOT_ID=bot_echo&COMMAND=echo&EVENT_COMMAND_ADD="+hook+
			"&LANG[0][LANGUAGE_ID]=ru&LANG[0][TITLE]=Эхо&LANG[0][PARAMS]=текст")); id != float64(1) {
			t.Fatalf("COMMAND_ID: got %v, want 1", id)
		}
		chat := bxOK(t, e.bx("2", "im.chat.add", "TITLE=Эхо-чат&USERS[]=3&USERS[]=bot_echo")).(float64)
		dialog := fmt.Sprintf("chat%d", int64(chat))
		e.waitForm("ONIMBOTJOINCHAT", func(f url.Values) bool { return f.Get("data[PARAMS][DIALOG_ID]") == dialog })

		bxOK(t, e.bx("3", "im.message.add", "DIALOG_ID="+dialog+"&MESSAGE="+url.QueryEscape("/echo привет")))
		f := e.waitForm("ONIMCOMMANDADD", func(f url.Values) bool { return true })
		for k, want := range map[string]string{"data[COMMAND][bot_echo][COMMAND]": "echo", "data[COMMAND][bot_echo][COMMAND_PARAMS]": "привет",
			"data[PARAMS][DIALOG_ID]": dialog, "data[PARAMS][FROM_USER_ID]": "3", "data[PARAMS][MESSAGE]": "/echo привет"} {
			if f.Get(k) != want {
				t.Errorf("ONIMCOMMANDADD %s: got %q, want %q", k, f.Get(k), want)
			}
		}
		// An unregistered command is no ONIMCOMMANDADD (the message is
		// still ONIMBOTMESSAGEADD).
		bxOK(t, e.bx("3", "im.message.add", "DIALOG_ID="+dialog+"&MESSAGE="+url.QueryEscape("/other x")))
		e.waitForm("ONIMBOTMESSAGEADD", func(f url.Values) bool { return f.Get("data[PARAMS][MESSAGE]") == "/other x" })
		e.mu.Lock()
		for _, f := range e.forms {
			if f.Get("event") == "ONIMCOMMANDADD" && f.Get("data[PARAMS][MESSAGE]") == "/other x" {
				t.Error("an unregistered command reached ONIMCOMMANDADD")
			}
		}
		e.mu.Unlock()

		id := bxOK(t, e.bx("2", "imbot.message.add", "BOT_ID=bot_echo&DIALOG_ID="+dialog+"&MESSAGE="+url.QueryEscape("привет")))
		if n := count(t, db, `SELECT COUNT(*) FROM messages WHERE id = ? AND from_id = ? AND body = 'привет'`, id, uid(t, db, "bot_echo")); n != 1 {
			t.Fatalf("imbot.message.add: the message is not the bot's")
		}
		if a := e.bx("2", "imbot.message.add", "BOT_ID=2&DIALOG_ID="+dialog+"&MESSAGE=x"); a.out["error"] != "BOT_ID_ERROR" {
			t.Fatalf("an employee as BOT_ID: got %v", a.out)
		}
		if bxOK(t, e.bx("2", "imbot.unregister", "BOT_ID=bot_echo")) != true {
			t.Fatal("imbot.unregister did not answer true")
		}
		if n := count(t, db, `SELECT COUNT(*) FROM webhooks`); n != 0 {
			t.Fatalf("got %d webhooks after imbot.unregister", n)
		}
	})
}

// TestBitrixNotifyTagConfirm: TAG replaces a user's earlier notification
// of the tag; im.notify.confirm presses a button and the webhook hears it.
func TestBitrixNotifyTagConfirm(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newHookEnv(t, db)
		e.register(`"notification.action"`)
		bxOK(t, e.bx("3", "im.notify.personal.add", "USER_ID=2&MESSAGE=first&TAG=task-1"))
		second := bxOK(t, e.bx("3", "im.notify.personal.add", "USER_ID=2&MESSAGE=second&TAG=task-1"))
		if n := count(t, db, `SELECT COUNT(*) FROM notifications WHERE tag = 'task-1'`); n != 1 {
			t.Fatalf("got %d notifications tagged task-1, want 1", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM notifications WHERE id = ? AND sender_id = ?`, second, uid(t, db, "3")); n != 1 {
			t.Fatal("the personal notification does not name its sender")
		}
		// Buttons come from the native API (Bitrix24 has no REST way to
		// add them); the facade presses them.
		st, out := e.do("POST", "/api/v1/notifications", `{"to_user_id":"2","text":"Встреча в 15:00","buttons":[{"title":"Да","value":"Y"},{"title":"Нет","value":"N"}]}`)
		if st != 201 {
			t.Fatalf("notify: %d %v", st, out)
		}
		id := int64(out["id"].(float64))
		if a := e.bx("2", "im.notify.confirm", fmt.Sprintf("NOTIFY_ID=%d", id)); a.out["error"] != "NOTIFY_VALUE_ERROR" {
			t.Fatalf("no NOTIFY_VALUE: got %v", a.out)
		}
		if a := e.bx("3", "im.notify.confirm", fmt.Sprintf("NOTIFY_ID=%d&NOTIFY_VALUE=Y", id)); a.out["error"] != "ID_ERROR" {
			t.Fatalf("someone else's notification: got %v", a.out)
		}
		if bxOK(t, e.bx("2", "im.notify.confirm", fmt.Sprintf("NOTIFY_ID=%d&NOTIFY_VALUE=Y", id))) != true {
			t.Fatal("im.notify.confirm did not answer true")
		}
		e.wait("notification.action", func(d map[string]any) bool { return d["notification_id"] == float64(id) && d["value"] == "Y" })
	})
}
