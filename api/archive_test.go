package api

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
)

func (e *env) post(path, body string) int64 {
	e.t.Helper()
	st, out := e.do("POST", path, body)
	if st != 201 {
		e.t.Fatalf("POST %s %s: %d %v", path, body, st, out)
	}
	return int64(out["id"].(float64))
}

func messagesOf(t *testing.T, out map[string]any, key string) []map[string]any {
	t.Helper()
	raw, ok := out[key].([]any)
	if !ok {
		t.Fatalf("no %q in %v", key, out)
	}
	ms := make([]map[string]any, len(raw))
	for i, m := range raw {
		ms[i] = m.(map[string]any)
	}
	return ms
}

func texts(ms []map[string]any) string {
	var b []string
	for _, m := range ms {
		b = append(b, fmt.Sprint(m["text"]))
	}
	return strings.Join(b, "|")
}

func TestHistory(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		archive := mam.NewStore(db)
		e := newEnv(t, db, Options{Archive: archive})
		var ids []int64
		for i, b := range []string{"первое", "второе <b>жирное</b>", "третье"} {
			from, to := "1", "2"
			if i == 1 {
				from, to = "2", "1"
			}
			ids = append(ids, e.post("/api/v1/messages", fmt.Sprintf(`{"from_user_id":%q,"to_user_id":%q,"message":%q}`, from, to, b)))
		}
		e.post("/api/v1/messages", `{"from_user_id":"1","to_user_id":"3","message":"секрет для третьего"}`)

		st, out := e.do("GET", "/api/v1/users/2/history?with=1", "")
		if st != 200 {
			t.Fatalf("history: %d %v", st, out)
		}
		ms := messagesOf(t, out, "messages")
		if texts(ms) != "первое|второе <b>жирное</b>|третье" || out["complete"] != true {
			t.Fatalf("history = %q %v", texts(ms), out["complete"])
		}
		m := ms[1]
		if m["id"].(float64) != float64(ids[1]) || m["from_user_id"] != "2" || m["to_user_id"] != "1" || m["kind"] != "chat" ||
			m["edited"] != false || m["deleted"] != false || m["edited_at"] != nil {
			t.Errorf("message = %v", m)
		}
		if _, err := time.Parse(time.RFC3339, m["created_at"].(string)); err != nil {
			t.Errorf("created_at %v: %v", m["created_at"], err)
		}

		// Paging back.
		_, out = e.do("GET", "/api/v1/users/1/history?with=2&limit=2", "")
		ms = messagesOf(t, out, "messages")
		if texts(ms) != "второе <b>жирное</b>|третье" || out["complete"] != false {
			t.Fatalf("last page = %q %v", texts(ms), out["complete"])
		}
		_, out = e.do("GET", fmt.Sprintf("/api/v1/users/1/history?with=2&limit=2&before=%d", ids[1]), "")
		if ms = messagesOf(t, out, "messages"); texts(ms) != "первое" || out["complete"] != true {
			t.Fatalf("previous page = %q %v", texts(ms), out["complete"])
		}

		// Edits and retractions show.
		ctx := context.Background()
		if _, err := archive.Edit(ctx, uid(t, db, "1"), ids[0], "первое, исправленное"); err != nil {
			t.Fatal(err)
		}
		if _, err := archive.Retract(ctx, uid(t, db, "1"), ids[2]); err != nil {
			t.Fatal(err)
		}
		_, out = e.do("GET", "/api/v1/users/2/history?with=1", "")
		ms = messagesOf(t, out, "messages")
		if ms[0]["text"] != "первое, исправленное" || ms[0]["edited"] != true || ms[0]["edited_at"] == nil ||
			ms[2]["text"] != "" || ms[2]["deleted"] != true {
			t.Errorf("after edit and retract: %v", ms)
		}

		// No door to somebody else's correspondence.
		_, out = e.do("GET", "/api/v1/users/2/history?with=3", "")
		if ms := messagesOf(t, out, "messages"); len(ms) != 0 {
			t.Errorf("2 with 3 = %v", ms)
		}
		_, out = e.do("GET", fmt.Sprintf("/api/v1/users/2/history?with=1&before=%d", ids[2]+100), "")
		if strings.Contains(texts(messagesOf(t, out, "messages")), "секрет") {
			t.Errorf("leak via before")
		}

		// Bad input.
		st, out = e.doToken("", "GET", "/api/v1/users/2/history?with=1", "")
		expectError(t, st, out, 401, "missing_token", "")
		st, out = e.do("GET", "/api/v1/users/nobody/history?with=1", "")
		expectError(t, st, out, 404, "not_found", "")
		st, out = e.do("GET", "/api/v1/users/2/history", "")
		expectError(t, st, out, 422, "missing_user", "with")
		st, out = e.do("GET", "/api/v1/users/2/history?with=nobody", "")
		expectError(t, st, out, 422, "unknown_user", "with")
		st, out = e.do("GET", "/api/v1/users/2/history?with=1&before=abc", "")
		expectError(t, st, out, 400, "malformed_parameter", "")
		st, out = e.do("GET", "/api/v1/users/2/history?with=1&limit=0", "")
		expectError(t, st, out, 422, "out_of_range", "limit")
		st, out = e.do("GET", "/api/v1/users/2/history?with=1&limit=501", "")
		expectError(t, st, out, 422, "out_of_range", "limit")
		st, out = e.do("GET", "/api/v1/users/2/history?with=1&before=-5", "")
		expectError(t, st, out, 422, "out_of_range", "before")
	})
}

func TestSearchEndpoint(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{Archive: mam.NewStore(db)})
		e.post("/api/v1/messages", `{"from_user_id":"1","to_user_id":"2","message":"Отправь <script>сообщение</script> клиенту"}`)
		e.post("/api/v1/messages", `{"from_user_id":"1","to_user_id":"3","message":"секретное сообщение про премии"}`)
		chat := e.createChat(`{"title":"closed","owner_id":"1","type":"closed","users":["4"]}`)
		e.post(fmt.Sprintf("/api/v1/chats/%d/messages", chat), `{"from_user_id":"4","message":"планы на квартал и сообщения"}`)

		st, out := e.do("GET", "/api/v1/users/2/search?q="+urlQuery("сообщения"), "")
		if st != 200 {
			t.Fatalf("search: %d %v", st, out)
		}
		hits := messagesOf(t, out, "hits")
		if len(hits) != 1 || hits[0]["from_user_id"] != "1" || hits[0]["to_user_id"] != "2" ||
			hits[0]["snippet"] != "Отправь &lt;script&gt;<mark>сообщение</mark>&lt;/script&gt; клиенту" {
			t.Fatalf("hits for 2 = %v", hits)
		}
		_, out = e.do("GET", "/api/v1/users/1/search?q="+urlQuery("сообщение"), "")
		if hits := messagesOf(t, out, "hits"); len(hits) != 3 {
			t.Errorf("hits for 1 = %d, want 3 (two personal, one chat)", len(hits))
		}
		_, out = e.do("GET", "/api/v1/users/4/search?q="+urlQuery("план"), "")
		hits = messagesOf(t, out, "hits")
		if len(hits) != 1 || hits[0]["chat_id"].(float64) != float64(chat) || hits[0]["kind"] != "groupchat" {
			t.Errorf("chat hit for 4 = %v", hits)
		}
		_, out = e.do("GET", "/api/v1/users/1/search?q="+urlQuery("сообщение")+"&with=3", "")
		if hits := messagesOf(t, out, "hits"); len(hits) != 1 || !strings.Contains(hits[0]["text"].(string), "премии") {
			t.Errorf("with=3 = %v", hits)
		}

		// What 2 must not find: 1<->3, the closed chat — however asked.
		for _, q := range []string{
			"q=" + urlQuery("премии"),
			"q=" + urlQuery("премии") + "&with=3",
			"q=" + urlQuery("планы"),
			"q=" + urlQuery("планы") + fmt.Sprintf("&chat_id=%d", chat),
		} {
			st, out := e.do("GET", "/api/v1/users/2/search?"+q, "")
			if st != 200 || len(messagesOf(t, out, "hits")) != 0 {
				t.Errorf("2 searched %s: %d %v", q, st, out)
			}
		}

		st, out = e.do("GET", "/api/v1/users/2/search", "")
		expectError(t, st, out, 422, "missing_text", "q")
		st, out = e.do("GET", "/api/v1/users/2/search?q="+strings.Repeat("a", 501), "")
		expectError(t, st, out, 422, "too_long", "q")
		st, out = e.do("GET", "/api/v1/users/2/search?q=x&chat_id=abc", "")
		expectError(t, st, out, 400, "malformed_parameter", "")
		st, out = e.do("GET", "/api/v1/users/2/search?q=x&limit=101", "")
		expectError(t, st, out, 422, "out_of_range", "limit")
		st, out = e.do("GET", "/api/v1/users/2/search?q=x&with=1&chat_id=1", "")
		expectError(t, st, out, 422, "conflicting_scope", "chat_id")
		st, out = e.do("GET", "/api/v1/users/999/search?q=x", "")
		expectError(t, st, out, 404, "not_found", "")
	})
}
