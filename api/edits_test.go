package api

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

func TestEditsOverREST(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		author, reader := e.attach(t, "2"), e.attach(t, "3")
		id := e.post("/api/v1/messages", `{"from_user_id":"2","to_user_id":"3","message":"Счёт на 100 рублей"}`)
		reader.expect(t, "Счёт на 100 рублей")
		path := fmt.Sprintf("/api/v1/messages/%d", id)

		for _, tc := range []struct {
			name, method, path, body string
			status                   int
			code, field              string
		}{
			{"someone else's", "PATCH", path, `{"from_user_id":"3","message":"Счёт на 1 рубль"}`, 403, "not_author", ""},
			{"one who cannot read it", "PATCH", path, `{"from_user_id":"4","message":"x"}`, 404, "message_not_found", ""},
			{"unknown message", "PATCH", "/api/v1/messages/999999", `{"from_user_id":"2","message":"x"}`, 404, "message_not_found", ""},
			{"not a message id", "PATCH", "/api/v1/messages/abc", `{"from_user_id":"2","message":"x"}`, 404, "message_not_found", ""},
			{"empty text", "PATCH", path, `{"from_user_id":"2","message":" "}`, 422, "empty_message", "message"},
			{"no author", "PATCH", path, `{"message":"x"}`, 422, "missing_user", "from_user_id"},
			{"delete someone else's", "DELETE", path + "?from_user_id=3", "", 403, "not_author", ""},
			{"delete without author", "DELETE", path, "", 422, "missing_user", "from_user_id"},
			{"react where one cannot read", "POST", path + "/reactions", `{"from_user_id":"4","reaction":"👍"}`, 404, "message_not_found", ""},
			{"react without a reaction", "POST", path + "/reactions", `{"from_user_id":"3"}`, 422, "missing_reaction", "reaction"},
			{"react with text", "POST", path + "/reactions", `{"from_user_id":"3","reaction":"не эмодзи"}`, 422, "invalid_reaction", "reaction"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, out := e.do(tc.method, tc.path, tc.body)
				expectError(t, st, out, tc.status, tc.code, tc.field)
			})
		}

		st, out := e.do("PATCH", path, `{"from_user_id":"2","message":"Счёт на 120 рублей"}`)
		m, _ := out["message"].(map[string]any)
		if st != 200 || m["text"] != "Счёт на 120 рублей" || m["edited"] != true || m["id"] != float64(id) {
			t.Fatalf("edit: %d %v", st, out)
		}
		reader.expect(t, "<replace xmlns='urn:xmpp:message-correct:0'", "Счёт на 120 рублей")

		st, out = e.do("POST", path+"/reactions", `{"from_user_id":3,"reaction":"👍"}`)
		if st != 200 || fmt.Sprint(out["reactions"]) != "[map[emoji:👍 users:[3]]]" {
			t.Fatalf("react: %d %v", st, out)
		}
		author.expect(t, "<reactions xmlns='urn:xmpp:reactions:0'", "<reaction>👍</reaction>")
		// Adding it again changes nothing; DELETE takes it off.
		st, out = e.do("POST", path+"/reactions", `{"from_user_id":"3","reaction":"👍"}`)
		if st != 200 || fmt.Sprint(out["reactions"]) != "[map[emoji:👍 users:[3]]]" {
			t.Fatalf("react again: %d %v", st, out)
		}
		st, out = e.do("GET", "/api/v1/users/3/history?with=2", "")
		if h := messagesOf(t, out, "messages"); st != 200 || len(h) != 1 || fmt.Sprint(h[0]["reactions"]) != "[map[emoji:👍 users:[3]]]" {
			t.Fatalf("history with reactions: %d %v", st, out)
		}
		st, out = e.do("DELETE", path+"/reactions?from_user_id=3&reaction="+url.QueryEscape("👍"), "")
		if st != 200 || fmt.Sprint(out["reactions"]) != "[]" {
			t.Fatalf("remove reaction: %d %v", st, out)
		}

		st, out = e.do("DELETE", path, `{"from_user_id":"2"}`)
		m, _ = out["message"].(map[string]any)
		if st != 200 || m["deleted"] != true || m["text"] != "" {
			t.Fatalf("delete: %d %v", st, out)
		}
		reader.expect(t, "<retract xmlns='urn:xmpp:message-retract:1'")
		st, out = e.do("PATCH", path, `{"from_user_id":"2","message":"вернуть"}`)
		expectError(t, st, out, 409, "message_retracted", "")
		st, out = e.do("POST", path+"/reactions", `{"from_user_id":"3","reaction":"👍"}`)
		expectError(t, st, out, 409, "message_retracted", "")

		// Past the edit window (24 hours by default).
		old := e.post("/api/v1/messages", `{"from_user_id":"2","to_user_id":"3","message":"позавчера"}`)
		if _, err := db.Exec(db.Rebind(`UPDATE messages SET created_at = ? WHERE id = ?`), time.Now().Add(-48*time.Hour).UnixMicro(), old); err != nil {
			t.Fatal(err)
		}
		st, out = e.do("PATCH", fmt.Sprintf("/api/v1/messages/%d", old), `{"from_user_id":"2","message":"сегодня"}`)
		expectError(t, st, out, 409, "edit_window_over", "")
		st, out = e.do("DELETE", fmt.Sprintf("/api/v1/messages/%d?from_user_id=2", old), "")
		expectError(t, st, out, 409, "edit_window_over", "")
	})
}

func TestRepliesOverREST(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		reader := e.attach(t, "2")
		q := e.post("/api/v1/messages", `{"from_user_id":"2","to_user_id":"3","message":"Когда?"}`)
		a := e.post("/api/v1/messages", fmt.Sprintf(`{"from_user_id":"3","to_user_id":"2","message":"В три","reply_to":%d}`, q))
		reader.expect(t, "В три", "<reply xmlns='urn:xmpp:reply:0' to='ivanov@example.test'", fmt.Sprintf("<reply-to xmlns='urn:vestnik:message:0' id='%d'/>", q))
		st, out := e.do("GET", "/api/v1/users/2/history?with=3", "")
		h := messagesOf(t, out, "messages")
		if st != 200 || len(h) != 2 || h[1]["id"] != float64(a) || h[1]["reply_to"] != float64(q) || h[0]["reply_to"] != nil {
			t.Fatalf("history: %d %v", st, out)
		}
		// A message of another conversation cannot be answered here.
		other := e.post("/api/v1/messages", `{"from_user_id":"2","to_user_id":"4","message":"не вам"}`)
		st, out = e.do("POST", "/api/v1/messages", fmt.Sprintf(`{"from_user_id":"3","to_user_id":"2","message":"?","reply_to":%d}`, other))
		expectError(t, st, out, 422, "unknown_reply", "reply_to")

		chat := e.createChat(`{"title":"Ответы","color":"GREEN","type":"closed","owner_id":"2","users":["3"]}`)
		c1 := e.post(fmt.Sprintf("/api/v1/chats/%d/messages", chat), `{"from_user_id":"2","message":"Повестка?"}`)
		c2 := e.post(fmt.Sprintf("/api/v1/chats/%d/messages", chat), fmt.Sprintf(`{"from_user_id":"3","message":"Бюджет","reply_to":%d}`, c1))
		var replyTo int64
		if err := db.Get(&replyTo, db.Rebind(`SELECT reply_to FROM messages WHERE id = ?`), c2); err != nil || replyTo != c1 {
			t.Fatalf("chat reply stored: %d %v, want %d", replyTo, err, c1)
		}
		st, out = e.do("POST", fmt.Sprintf("/api/v1/chats/%d/messages", chat), fmt.Sprintf(`{"from_user_id":"3","message":"?","reply_to":%d}`, q))
		expectError(t, st, out, 422, "unknown_reply", "reply_to")

		// A mention in the text notifies the member named.
		e.post(fmt.Sprintf("/api/v1/chats/%d/messages", chat), `{"from_user_id":"3","message":"@Иван Иванов, глянь"}`)
		reader.expect(t, "mentioned you", "@Иван Иванов, глянь", "type='headline'")
	})
}
