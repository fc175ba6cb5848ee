package api

import (
	"context"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore"
)

// attachCarbons is attach with XEP-0280 carbons on, like a second device.
func (e *env) attachCarbons(t *testing.T, ext string) *sink {
	t.Helper()
	s := &sink{in: make(chan string, 100)}
	sess, err := e.xmpp.Attach(context.Background(), uid(t, e.db, ext), "phone", s)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	iq := xmppcore.NewElement(xmppcore.NSClient, "iq", "type", "set", "id", "c1")
	iq.AddChild(xmppcore.NewElement(xmppcore.NSCarbons, "enable"))
	for _, el := range []*xmppcore.Element{iq, xmppcore.NewElement(xmppcore.NSClient, "presence")} {
		if err := sess.Handle(ctx, el); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(sess.Close)
	return s
}

func unreadWith(t *testing.T, e *env, user, key string, val any) float64 {
	t.Helper()
	st, out := e.do("GET", "/api/v1/users/"+user+"/recent", "")
	if st != 200 {
		t.Fatalf("recent: %d %v", st, out)
	}
	for _, c := range out["conversations"].([]any) {
		c := c.(map[string]any)
		if fmt.Sprint(c[key]) == fmt.Sprint(val) {
			return c["unread"].(float64)
		}
	}
	t.Fatalf("recent of %s: no conversation with %s=%v in %v", user, key, val, out)
	return 0
}

func TestRESTRead(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		var ids []int64
		for i := 0; i < 3; i++ {
			ids = append(ids, e.post("/api/v1/messages", fmt.Sprintf(`{"from_user_id":"2","to_user_id":"3","message":"m%d"}`, i)))
		}
		other := e.post("/api/v1/messages", `{"from_user_id":"2","to_user_id":"4","message":"not 3's"}`)
		if n := unreadWith(t, e, "3", "with", "2"); n != 3 {
			t.Fatalf("unread before: got %v, want 3", n)
		}
		author := e.attach(t, "2")
		phone := e.attachCarbons(t, "3")

		st, out := e.do("POST", "/api/v1/users/3/read", fmt.Sprintf(`{"with":"2","up_to":%d}`, ids[1]))
		if st != 200 || out["up_to"].(float64) != float64(ids[1]) || out["moved"] != true || out["unread"].(float64) != 1 {
			t.Fatalf("read: %d %v", st, out)
		}
		// The author's client sees the message displayed; the reader's
		// other device gets the marker as a sent carbon.
		author.expect(t, "<displayed xmlns='urn:xmpp:chat-markers:0'", fmt.Sprintf("<read xmlns='urn:vestnik:message:0' id='%d'", ids[1]))
		phone.expect(t, "<sent xmlns='urn:xmpp:carbons:2'", "<displayed xmlns='urn:xmpp:chat-markers:0'")
		if n := unreadWith(t, e, "3", "with", "2"); n != 1 {
			t.Fatalf("unread after: got %v, want 1", n)
		}
		// Never backwards.
		st, out = e.do("POST", "/api/v1/users/3/read", fmt.Sprintf(`{"with":2,"up_to":%d}`, ids[0]))
		if st != 200 || out["up_to"].(float64) != float64(ids[1]) || out["moved"] != false {
			t.Fatalf("backwards: %d %v", st, out)
		}

		chat := e.createChat(`{"title":"Продажи","owner_id":"2","type":"closed","users":["3"]}`)
		cm := e.post(fmt.Sprintf("/api/v1/chats/%d/messages", chat), `{"from_user_id":"2","message":"всем"}`)
		if n := unreadWith(t, e, "3", "chat_id", chat); n != 1 {
			t.Fatalf("chat unread: got %v, want 1", n)
		}
		st, out = e.do("POST", "/api/v1/users/3/read", fmt.Sprintf(`{"chat_id":%d,"up_to":%d}`, chat, cm))
		if st != 200 || out["unread"].(float64) != 0 {
			t.Fatalf("chat read: %d %v", st, out)
		}
		if n := unreadWith(t, e, "3", "chat_id", chat); n != 0 {
			t.Fatalf("chat unread after: got %v, want 0", n)
		}

		outsider, err := e.users.CreateScopedToken(context.Background(), "as 4", []string{roster.ScopePost}, uid(t, db, "4"))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, user, body string
			status           int
			code             string
		}{
			{"both targets", "3", fmt.Sprintf(`{"with":"2","chat_id":%d,"up_to":%d}`, chat, cm), 400, "bad_target"},
			{"no target", "3", fmt.Sprintf(`{"up_to":%d}`, cm), 400, "bad_target"},
			{"no up_to", "3", `{"with":"2"}`, 400, "bad_up_to"},
			{"malformed", "3", `{"with":`, 400, "malformed_json"},
			{"unknown user", "nobody", fmt.Sprintf(`{"with":"2","up_to":%d}`, ids[2]), 404, "not_found"},
			{"unknown colleague", "3", fmt.Sprintf(`{"with":"nobody","up_to":%d}`, ids[2]), 404, "not_found"},
			{"another conversation's message", "3", fmt.Sprintf(`{"with":"2","up_to":%d}`, other), 404, "message_not_found"},
			{"a chat message as personal", "3", fmt.Sprintf(`{"with":"2","up_to":%d}`, cm), 404, "message_not_found"},
			{"no such chat", "3", fmt.Sprintf(`{"chat_id":999999,"up_to":%d}`, cm), 404, "not_found"},
			{"a closed chat of others (hidden from them)", "4", fmt.Sprintf(`{"chat_id":%d,"up_to":%d}`, chat, cm), 404, "not_found"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, out := e.do("POST", "/api/v1/users/"+tc.user+"/read", tc.body)
				expectError(t, st, out, tc.status, tc.code, "")
			})
		}
		st, out = e.doToken(outsider, "POST", "/api/v1/users/3/read", fmt.Sprintf(`{"with":"2","up_to":%d}`, ids[2]))
		expectError(t, st, out, 403, "token_user", "")
		if n := unreadWith(t, e, "3", "with", "2"); n != 1 {
			t.Fatalf("refused reads changed the unread count: got %v, want 1", n)
		}
	})
}

func TestBitrixDialogRead(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		chat := bxID64(t, bxOK(t, e.bx("2", "im.chat.add", "TITLE=read&USERS[]=3")))
		var last int64
		for i := 0; i < 3; i++ {
			last = bxID64(t, bxOK(t, e.bx("2", "im.message.add", fmt.Sprintf("DIALOG_ID=chat%d&MESSAGE=m%d", chat, i))))
		}
		pm := bxID64(t, bxOK(t, e.bx("2", "im.message.add", "DIALOG_ID=3&MESSAGE=hi")))
		counters := func() map[string]float64 {
			t.Helper()
			out := map[string]float64{}
			for _, it := range bxOK(t, e.bx("3", "im.recent.get", "")).([]any) {
				it := it.(map[string]any)
				out[fmt.Sprint(it["id"])] = it["counter"].(float64)
			}
			return out
		}
		chatKey := fmt.Sprintf("chat%d", chat)
		if c := counters(); c[chatKey] != 3 || c["2"] != 1 {
			t.Fatalf("counters before: %v", c)
		}
		// Without MESSAGE_ID: everything.
		res := bxOK(t, e.bx("3", "im.dialog.read", "DIALOG_ID="+chatKey)).(map[string]any)
		if res["dialogId"] != chatKey || res["chatId"].(float64) != float64(chat) || res["lastId"].(float64) != float64(last) || res["counter"].(float64) != 0 {
			t.Fatalf("im.dialog.read chat: %v", res)
		}
		res = bxOK(t, e.bx("3", "im.dialog.read", fmt.Sprintf("DIALOG_ID=2&MESSAGE_ID=%d", pm))).(map[string]any)
		if res["lastId"].(float64) != float64(pm) || res["counter"].(float64) != 0 || res["chatId"].(float64) != 0 {
			t.Fatalf("im.dialog.read personal: %v", res)
		}
		if c := counters(); c[chatKey] != 0 || c["2"] != 0 {
			t.Fatalf("counters after: %v", c)
		}
		bxExpectError(t, e.bx("3", "im.dialog.read", fmt.Sprintf("DIALOG_ID=2&MESSAGE_ID=%d", last)), 400, "MESSAGE_ID_ERROR")
		bxExpectError(t, e.bx("3", "im.dialog.read", "MESSAGE_ID=1"), 400, "DIALOG_ID_EMPTY")
		bxExpectError(t, e.bx("4", "im.dialog.read", fmt.Sprintf("DIALOG_ID=%s&MESSAGE_ID=%d", chatKey, last)), 403, "ACCESS_DENIED")
	})
}
