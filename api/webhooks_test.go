package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/webhook"
	"vestnik/xmppcore/xmpptest"
)

// hookEnv is an env whose core is wired to a webhook service as
// cmd/vestnik wires it, with a receiver on loopback.
type hookEnv struct {
	*env
	hooks *webhook.Service
	rcv   *httptest.Server

	mu     sync.Mutex
	secret map[int64]string
	got    []webhook.Delivery
	forms  []url.Values // Bitrix24-form deliveries
}

func newHookEnv(t *testing.T, db *sqlx.DB, deny ...string) *hookEnv {
	t.Helper()
	ctx := context.Background()
	hooks, err := webhook.New(db, webhook.Options{DenyHosts: deny, Timeout: 2 * time.Second, RetryBase: 20 * time.Millisecond, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	users := roster.NewStore(db)
	snap := roster.DemoSnapshot()
	for i := range snap.Employees {
		snap.Employees[i].Password = ""
	}
	if _, err := users.Import(ctx, snap, false); err != nil {
		t.Fatal(err)
	}
	token, err := users.CreateToken(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	users.SetDomain("example.test")
	archive := mam.NewStoreOptions(db, mam.Options{OnChange: hooks.ArchiveChange})
	srv := xmppcore.NewServer(db, users, archive, xmppcore.Options{Domain: "example.test", AuthFailureDelay: -1, TLSConfig: xmpptest.SelfSigned(t, "example.test"),
		OnNotificationAction: func(ctx context.Context, a xmppcore.NotificationAnswer) {
			hooks.NotificationAction(ctx, webhook.Answer{NotificationID: a.ID, UserID: a.UserID, SenderID: a.SenderID, Tag: a.Tag, Value: a.Value, Link: a.Link})
		}})
	chats := muc.New(muc.NewStore(db), srv, archive, users, muc.Options{Domain: "example.test", OnMembersAdded: hooks.MembersAdded})
	chats.Register(srv)
	a := New(users, chats, srv, Options{Archive: archive, Webhooks: hooks})
	mux := http.NewServeMux()
	mux.Handle(Prefix+"/", a.Handler())
	mux.Handle(BitrixPrefix, a.Handler())
	hs := httptest.NewServer(mux)
	he := &hookEnv{env: &env{t: t, db: db, srv: hs, api: a, chats: chats, xmpp: srv, users: users, token: token}, hooks: hooks, secret: map[int64]string{}}
	he.rcv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") == "application/x-www-form-urlencoded" {
			// Bitrix24's form: the secret is auth[application_token].
			form, err := url.ParseQuery(string(body))
			if err != nil || !webhook.Verify(form.Get("auth[application_token]"), body, r.Header.Get(webhook.SignatureHeader)) {
				t.Errorf("form delivery %q: bad signature or form", body)
				http.Error(w, "bad", http.StatusUnauthorized)
				return
			}
			he.mu.Lock()
			he.forms = append(he.forms, form)
			he.mu.Unlock()
			return
		}
		var d webhook.Delivery
		if err := json.Unmarshal(body, &d); err != nil {
			t.Errorf("delivery is not JSON: %q", body)
			return
		}
		he.mu.Lock()
		defer he.mu.Unlock()
		if !webhook.Verify(he.secret[d.WebhookID], body, r.Header.Get(webhook.SignatureHeader)) {
			t.Errorf("delivery %d: bad signature", d.ID)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		he.got = append(he.got, d)
	}))
	hooks.Start()
	t.Cleanup(func() {
		hooks.Shutdown(context.Background())
		he.rcv.Close()
		hs.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	return he
}

// register makes a webhook for events and remembers its secret.
func (e *hookEnv) register(events string) int64 {
	e.t.Helper()
	st, out := e.do("POST", "/api/v1/webhooks", `{"url":"`+e.rcv.URL+`/in","events":[`+events+`]}`)
	if st != 201 {
		e.t.Fatalf("POST /webhooks: %d %v", st, out)
	}
	id := int64(out["id"].(float64))
	e.mu.Lock()
	e.secret[id] = out["secret"].(string)
	e.mu.Unlock()
	return id
}

// wait returns the first delivery of kind whose data passes ok.
func (e *hookEnv) wait(kind string, ok func(data map[string]any) bool) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		e.mu.Lock()
		for _, d := range e.got {
			var data map[string]any
			json.Unmarshal(d.Data, &data)
			if d.Event == kind && ok(data) {
				e.mu.Unlock()
				return data
			}
		}
		e.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("no %s delivery arrived", kind)
	return nil
}

func TestWebhookRoutes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newHookEnv(t, db, "10.0.0.0/8", "blocked.example")
		for _, tc := range []struct{ name, body, code string }{
			{"not http", `{"url":"ftp://portal.example/x","events":["message.created"]}`, "invalid_url"},
			{"denied address", `{"url":"http://10.2.3.4/x","events":["message.created"]}`, "denied_host"},
			{"denied name", `{"url":"https://hooks.blocked.example/x","events":["message.created"]}`, "denied_host"},
			{"no url", `{"events":["message.created"]}`, "missing_url"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, out := e.do("POST", "/api/v1/webhooks", tc.body)
				expectError(t, st, out, 422, tc.code, "url")
			})
		}
		st, out := e.do("POST", "/api/v1/webhooks", `{"url":"http://127.0.0.1:9/x","events":["message.exploded"]}`)
		expectError(t, st, out, 422, "unknown_event", "events")
		st, out = e.do("POST", "/api/v1/webhooks", `{"url":"http://127.0.0.1:9/x","events":["message.created"],"chat_id":999}`)
		expectError(t, st, out, 422, "unknown_chat", "chat_id")
		if n := count(t, db, `SELECT COUNT(*) FROM webhooks`); n != 0 {
			t.Fatalf("got %d webhooks after refusals, want 0", n)
		}

		// Admin scope only.
		post, err := e.users.CreateScopedToken(context.Background(), "poster", []string{roster.ScopePost, roster.ScopeRead}, 0)
		if err != nil {
			t.Fatal(err)
		}
		st, out = e.doToken(post, "POST", "/api/v1/webhooks", `{"url":"http://127.0.0.1:9/x","events":["message.created"]}`)
		expectError(t, st, out, 403, "insufficient_scope", "")
		st, out = e.doToken(post, "GET", "/api/v1/webhooks", "")
		expectError(t, st, out, 403, "insufficient_scope", "")

		id := e.register(`"message.created","reaction.added"`)
		st, out = e.do("GET", "/api/v1/webhooks", "")
		list, _ := out["webhooks"].([]any)
		if st != 200 || len(list) != 1 || list[0].(map[string]any)["secret"] != nil || list[0].(map[string]any)["url"] != e.rcv.URL+"/in" {
			t.Fatalf("GET /webhooks: got %d %v, want the one webhook without its secret", st, out)
		}
		if st, _ := e.do("DELETE", fmt.Sprintf("/api/v1/webhooks/%d", id), ""); st != 204 {
			t.Fatalf("DELETE: got %d, want 204", st)
		}
		st, out = e.do("DELETE", fmt.Sprintf("/api/v1/webhooks/%d", id), "")
		expectError(t, st, out, 404, "not_found", "")
	})
}

// TestCoreEventsReachWebhooks: REST edits, retractions, reactions and
// member additions take the core's paths, which queue the events.
func TestCoreEventsReachWebhooks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newHookEnv(t, db)
		e.register(`"message.created","message.updated","message.deleted","reaction.added","chat.member_added"`)
		chat := e.createChat(`{"title":"События","type":"closed","owner_id":"2","users":["2"]}`)
		e.wait(webhook.ChatMemberAdded, func(d map[string]any) bool { return d["chat_id"] == float64(chat) })
		if st, out := e.do("POST", fmt.Sprintf("/api/v1/chats/%d/users", chat), `{"users":["3"]}`); st != 200 {
			t.Fatalf("add user: %d %v", st, out)
		}
		e.wait(webhook.ChatMemberAdded, func(d map[string]any) bool {
			u, _ := d["users"].([]any)
			return len(u) == 1 && u[0] == "3"
		})
		st, out := e.do("POST", fmt.Sprintf("/api/v1/chats/%d/messages", chat), `{"from_user_id":"2","message":"привет"}`)
		if st != 201 {
			t.Fatalf("post: %d %v", st, out)
		}
		mid := out["id"].(float64)
		e.wait(webhook.MessageCreated, func(d map[string]any) bool {
			m := d["message"].(map[string]any)
			return m["id"] == mid && m["text"] == "привет" && m["from_user_id"] == "2" && m["chat_id"] == float64(chat)
		})
		if st, out := e.do("PATCH", fmt.Sprintf("/api/v1/messages/%d", int64(mid)), `{"from_user_id":"2","message":"привет!"}`); st != 200 {
			t.Fatalf("edit: %d %v", st, out)
		}
		e.wait(webhook.MessageUpdated, func(d map[string]any) bool {
			m := d["message"].(map[string]any)
			return m["id"] == mid && m["text"] == "привет!" && m["edited"] == true && d["user_id"] == "2"
		})
		if st, out := e.do("POST", fmt.Sprintf("/api/v1/messages/%d/reactions", int64(mid)), `{"from_user_id":"3","reaction":"👍"}`); st != 200 {
			t.Fatalf("react: %d %v", st, out)
		}
		e.wait(webhook.ReactionAdded, func(d map[string]any) bool {
			r, _ := d["reactions"].([]any)
			return d["user_id"] == "3" && len(r) == 1 && r[0] == "👍"
		})
		if st, out := e.do("DELETE", fmt.Sprintf("/api/v1/messages/%d", int64(mid)), `{"from_user_id":"2"}`); st != 200 && st != 204 {
			t.Fatalf("delete: %d %v", st, out)
		}
		e.wait(webhook.MessageDeleted, func(d map[string]any) bool {
			m := d["message"].(map[string]any)
			return m["id"] == mid && m["deleted"] == true && m["text"] == ""
		})
	})
}

func TestNotificationActions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newHookEnv(t, db)
		e.register(`"notification.action"`)
		body := `{"to_user_id":"2","text":"Отпуск с 1 июля","link":"/tasks/7","tag":"leave-7","sender_id":"3",
			"buttons":[{"title":"Принять","value":"accept"},{"title":"Отклонить","value":"decline"}]}`
		st, out := e.do("POST", "/api/v1/notifications", body)
		if st != 201 {
			t.Fatalf("notify: %d %v", st, out)
		}
		first := out["id"].(float64)
		st, out = e.do("POST", "/api/v1/notifications", body)
		if st != 201 {
			t.Fatalf("notify again: %d %v", st, out)
		}
		id := int64(out["id"].(float64))
		if n := count(t, db, `SELECT COUNT(*) FROM notifications WHERE tag = 'leave-7'`); n != 1 || float64(id) == first {
			t.Fatalf("got %d notifications tagged leave-7 (id %d after %v), want the new one alone", n, id, first)
		}
		for _, tc := range []struct {
			name, body string
			status     int
			code       string
		}{
			{"too many buttons", `{"to_user_id":"2","text":"x","buttons":[{"title":"a","value":"1"},{"title":"b","value":"2"},{"title":"c","value":"3"},{"title":"d","value":"4"},{"title":"e","value":"5"},{"title":"f","value":"6"}]}`, 422, "too_many_buttons"},
			{"same value twice", `{"to_user_id":"2","text":"x","buttons":[{"title":"a","value":"1"},{"title":"b","value":"1"}]}`, 422, "duplicate_button"},
			{"button without title", `{"to_user_id":"2","text":"x","buttons":[{"title":"","value":"1"}]}`, 422, "invalid_button"},
			{"unknown sender", `{"to_user_id":"2","text":"x","sender_id":"nobody"}`, 422, "unknown_user"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, out := e.do("POST", "/api/v1/notifications", tc.body)
				expectError(t, st, out, tc.status, tc.code, "")
			})
		}
		path := fmt.Sprintf("/api/v1/notifications/%d/action", id)
		st, out = e.do("POST", path, `{"user_id":"3","value":"accept"}`)
		expectError(t, st, out, 404, "not_found", "")
		st, out = e.do("POST", path, `{"user_id":"2","value":"maybe"}`)
		expectError(t, st, out, 422, "unknown_button", "value")
		st, out = e.do("POST", path, `{"user_id":"2","value":"accept"}`)
		if st != 200 || out["answer"] != "accept" {
			t.Fatalf("action: got %d %v", st, out)
		}
		st, out = e.do("POST", path, `{"user_id":"2","value":"decline"}`)
		expectError(t, st, out, 409, "answered", "")
		e.wait(webhook.NotificationAction, func(d map[string]any) bool {
			return d["notification_id"] == float64(id) && d["value"] == "accept" && d["user_id"] == "2" && d["sender_id"] == "3" &&
				d["tag"] == "leave-7" && d["link"] == "/tasks/7"
		})
		ex, err := e.xmpp.NotificationExtras(context.Background(), uid(t, db, "2"), []int64{id})
		if err != nil || ex[id].Answer != "accept" || len(ex[id].Buttons) != 2 || ex[id].AnsweredAt == nil {
			t.Fatalf("extras: got %+v %v", ex, err)
		}
	})
}

// TestBotRoutes: a bot is made with a token acting as it alone and a
// webhook; HR imports leave it active; removing it revokes the token.
func TestBotRoutes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newHookEnv(t, db, "blocked.example")
		st, out := e.do("POST", "/api/v1/bots", `{"code":"Bad Code","name":"x","url":"`+e.rcv.URL+`"}`)
		expectError(t, st, out, 422, "invalid_code", "code")
		st, out = e.do("POST", "/api/v1/bots", `{"code":"helper","name":"x","url":"http://blocked.example/"}`)
		expectError(t, st, out, 422, "denied_host", "url")
		st, bot := e.do("POST", "/api/v1/bots", `{"code":"helper","name":"Помощник","url":"`+e.rcv.URL+`"}`)
		if st != 201 || bot["id"] != "bot_helper" || bot["token"] == nil {
			t.Fatalf("POST /bots: %d %v", st, bot)
		}
		st, out = e.do("POST", "/api/v1/bots", `{"code":"helper","name":"Другой","url":"`+e.rcv.URL+`"}`)
		expectError(t, st, out, 422, "bot_exists", "code")
		// An HR import (a full snapshot without the bot) leaves it be.
		snap := roster.DemoSnapshot()
		for i := range snap.Employees {
			snap.Employees[i].Password = ""
		}
		if _, err := e.users.Import(context.Background(), snap, false); err != nil {
			t.Fatal(err)
		}
		u, err := e.users.UserByExtID(context.Background(), "bot_helper")
		if err != nil || !u.Active {
			t.Fatalf("the bot after an HR import: %+v %v", u, err)
		}
		tok := bot["token"].(string)
		if st, out := e.doToken(tok, "POST", "/api/v1/messages", `{"from_user_id":"bot_helper","to_user_id":"2","message":"Здравствуйте"}`); st != 201 {
			t.Fatalf("the bot writes: %d %v", st, out)
		}
		st, out = e.doToken(tok, "POST", "/api/v1/messages", `{"from_user_id":"2","to_user_id":"3","message":"x"}`)
		expectError(t, st, out, 403, "token_user", "")
		if st, _ := e.do("DELETE", "/api/v1/bots/bot_helper", ""); st != 204 {
			t.Fatalf("DELETE /bots: got %d", st)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM webhooks`); n != 0 {
			t.Fatalf("got %d webhooks after the bot was removed", n)
		}
		if _, err := e.users.TokenBySecret(context.Background(), tok); err == nil {
			t.Fatal("the bot's token still verifies after removal")
		}
		if st, _ := e.do("DELETE", "/api/v1/bots/2", ""); st != 404 {
			t.Fatalf("DELETE /bots of an employee: got %d, want 404", st)
		}
	})
}
