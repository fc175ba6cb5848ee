package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
)

type env struct {
	t     *testing.T
	db    *sqlx.DB
	users *roster.Store
	arch  *mam.Store
	b     *Bridge
	srv   *httptest.Server
	xmpp  *xmppcore.Server // set by newPhotoEnv
}

func newEnv(t *testing.T, db *sqlx.DB, core Core) *env {
	t.Helper()
	users := roster.NewStore(db)
	if _, err := users.Import(context.Background(), roster.DemoSnapshot(), false); err != nil {
		t.Fatalf("demo import: %v", err)
	}
	chats := muc.NewStore(db)
	arch := mam.NewStore(db)
	b := New(db, users, chats, core, NewArchive(arch, chats), Options{})
	mux := http.NewServeMux()
	b.Register(mux)
	mux.HandleFunc("POST /api/v1/users/{id}/login-token", b.LoginTokenHandler)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.Shutdown(ctx)
		srv.Close()
	})
	return &env{t: t, db: db, users: users, arch: arch, b: b, srv: srv}
}

func (e *env) user(login string) *roster.User {
	e.t.Helper()
	u, err := e.users.UserByLogin(context.Background(), login)
	if err != nil {
		e.t.Fatalf("user %s: %v", login, err)
	}
	return u
}

// post sends a JSON POST like the web client does (same Origin).
func (e *env) post(c *http.Client, path, body string, hdr map[string]string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", e.srv.URL)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	return resp
}

func client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (e *env) login(login string) *http.Client {
	e.t.Helper()
	c := client()
	resp := e.post(c, "/login", fmt.Sprintf(`{"login":%q,"password":"demo"}`, login), nil)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		e.t.Fatalf("login %s: status %d", login, resp.StatusCode)
	}
	return c
}

// wsConn is a scripted bridge client.
type wsConn struct {
	t  *testing.T
	ws *websocket.Conn
	n  int
	// skipped holds frames read while waiting for another one; later
	// waits look at them first, so frames racing each other (an ack and
	// a receipt, say) are never lost to the test.
	skipped []map[string]any
}

func (e *env) dial(c *http.Client, origin string) (*wsConn, *http.Response, error) {
	u, _ := url.Parse(e.srv.URL)
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	for _, ck := range c.Jar.Cookies(u) {
		hdr.Add("Cookie", ck.Name+"="+ck.Value)
	}
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.srv.URL, "http")+"/ws", hdr)
	if err != nil {
		return nil, resp, err
	}
	e.t.Cleanup(func() { ws.Close() })
	return &wsConn{t: e.t, ws: ws}, resp, nil
}

func (w *wsConn) send(f Frame) string {
	w.t.Helper()
	if _, ok := f["id"]; !ok {
		w.n++
		f["id"] = fmt.Sprintf("t%d", w.n)
	}
	if err := w.ws.WriteJSON(f); err != nil {
		w.t.Fatalf("write: %v", err)
	}
	id, _ := f["id"].(string)
	return id
}

func (w *wsConn) next() map[string]any {
	w.t.Helper()
	w.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var f map[string]any
	if err := w.ws.ReadJSON(&f); err != nil {
		w.t.Fatalf("read: %v", err)
	}
	return f
}

// take returns the first frame, among those skipped earlier and then new
// ones, that pred accepts; the others stay skipped in order.
func (w *wsConn) take(pred func(map[string]any) bool, what string) map[string]any {
	w.t.Helper()
	for i, f := range w.skipped {
		if pred(f) {
			w.skipped = append(w.skipped[:i:i], w.skipped[i+1:]...)
			return f
		}
	}
	for i := 0; i < 100; i++ {
		f := w.next()
		if pred(f) {
			return f
		}
		w.skipped = append(w.skipped, f)
	}
	w.t.Fatalf("no %s", what)
	return nil
}

// expect waits for a frame of type typ (and id, when given).
func (w *wsConn) expect(typ, id string) map[string]any {
	w.t.Helper()
	f := w.take(func(f map[string]any) bool {
		return f["type"] == typ && (id == "" || f["id"] == id) ||
			f["type"] == "error" && id != "" && f["id"] == id
	}, typ+" frame")
	if f["type"] == "error" && typ != "error" {
		w.t.Fatalf("got error %v %v, want %s", f["code"], f["message"], typ)
	}
	return f
}

func (w *wsConn) call(f Frame) map[string]any {
	w.t.Helper()
	id := w.send(f)
	a := w.expect("ack", id)
	d, _ := a["data"].(map[string]any)
	return d
}

func (w *wsConn) hello(lastID int64) []map[string]any {
	w.t.Helper()
	id := w.send(Frame{"type": "hello", "last_id": lastID})
	var replay []map[string]any
	acked := false
	for {
		f := w.next()
		switch f["type"] {
		case "ack":
			acked = acked || f["id"] == id
		case "synced":
			if !acked {
				w.t.Fatalf("synced before the hello's ack")
			}
			return replay
		case "message":
			// Live messages (offline delivery) may come before the ack.
			replay = append(replay, f["message"].(map[string]any))
		}
	}
}

func TestLogin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, nil)
		tests := []struct {
			name   string
			body   string
			hdr    map[string]string
			status int
			code   string
		}{
			{"wrong password", `{"login":"ivanov","password":"nope"}`, nil, 401, "bad_credentials"},
			{"unknown user", `{"login":"nobody","password":"demo"}`, nil, 401, "bad_credentials"},
			{"malformed", `{"login":`, nil, 400, "malformed"},
			{"empty", `{}`, nil, 422, "missing_credentials"},
			{"form post", `login=ivanov&password=demo`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "json_required"},
			{"foreign origin", `{"login":"ivanov","password":"demo"}`, map[string]string{"Origin": "http://evil.example"}, 403, "bad_origin"},
			{"too large", `{"login":"ivanov","password":"` + strings.Repeat("x", 5000) + `"}`, nil, 413, "too_large"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				c := client()
				resp := e.post(c, "/login", tc.body, tc.hdr)
				defer resp.Body.Close()
				var got struct{ Error apiError }
				json.NewDecoder(resp.Body).Decode(&got)
				if resp.StatusCode != tc.status || got.Error.Code != tc.code {
					t.Fatalf("got %d %q, want %d %q", resp.StatusCode, got.Error.Code, tc.status, tc.code)
				}
				if len(resp.Cookies()) != 0 {
					t.Fatalf("got a cookie on failure")
				}
			})
		}

		c := client()
		resp := e.post(c, "/login", `{"login":"Ivanov","password":"demo"}`, nil)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("login: got %d, want 200", resp.StatusCode)
		}
		ck := resp.Cookies()
		if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteLaxMode || ck[0].Name != CookieName {
			t.Fatalf("cookie: got %+v", ck)
		}
		var n int
		db.Get(&n, db.Rebind(`SELECT COUNT(*) FROM web_sessions WHERE hash = ?`), ck[0].Value)
		if n != 0 {
			t.Fatalf("the session secret is stored in clear")
		}
		r2, _ := c.Get(e.srv.URL + "/session")
		var s struct{ User userJSON }
		json.NewDecoder(r2.Body).Decode(&s)
		r2.Body.Close()
		if r2.StatusCode != 200 || s.User.Login != "ivanov" {
			t.Fatalf("session: got %d %+v", r2.StatusCode, s.User)
		}
		// Logout from a foreign page is refused; from ours it ends the session.
		r3 := e.post(c, "/logout", `{}`, map[string]string{"Origin": "http://evil.example"})
		r3.Body.Close()
		if r3.StatusCode != 403 {
			t.Fatalf("foreign logout: got %d, want 403", r3.StatusCode)
		}
		old := ck[0].Value
		r4 := e.post(c, "/logout", `{}`, nil)
		r4.Body.Close()
		if r4.StatusCode != 204 {
			t.Fatalf("logout: got %d, want 204", r4.StatusCode)
		}
		req, _ := http.NewRequest("GET", e.srv.URL+"/session", nil)
		req.Header.Set("Cookie", CookieName+"="+old)
		r5, _ := http.DefaultClient.Do(req)
		var s5 map[string]any
		json.NewDecoder(r5.Body).Decode(&s5)
		r5.Body.Close()
		if u, ok := s5["user"]; r5.StatusCode != 200 || !ok || u != nil {
			t.Fatalf("session after logout: got %d %v, want 200 with user null", r5.StatusCode, s5)
		}
	})
}

func TestLoginToken(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, nil)
		ivanov := e.user("ivanov")
		resp := e.post(client(), "/api/v1/users/"+ivanov.ExtID+"/login-token", ``, nil)
		var got struct{ URL string }
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != 201 || !strings.HasPrefix(got.URL, e.srv.URL+"/login/token/") {
			t.Fatalf("got %d %q", resp.StatusCode, got.URL)
		}
		c := client()
		r1, err := c.Get(got.URL)
		if err != nil {
			t.Fatal(err)
		}
		r1.Body.Close()
		if r1.StatusCode != http.StatusSeeOther || r1.Header.Get("Location") != "/" {
			t.Fatalf("token login: got %d %q", r1.StatusCode, r1.Header.Get("Location"))
		}
		r2, _ := c.Get(e.srv.URL + "/session")
		r2.Body.Close()
		if r2.StatusCode != 200 {
			t.Fatalf("session after token login: got %d", r2.StatusCode)
		}
		// The link works once.
		r3, _ := client().Get(got.URL)
		r3.Body.Close()
		if r3.StatusCode != 404 {
			t.Fatalf("second use: got %d, want 404", r3.StatusCode)
		}
		r4 := e.post(client(), "/api/v1/users/no-such/login-token", ``, nil)
		r4.Body.Close()
		if r4.StatusCode != 404 {
			t.Fatalf("unknown user: got %d, want 404", r4.StatusCode)
		}
	})
}

func TestWebSocketOriginAndAuth(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, nil)
		c := e.login("ivanov")
		if _, resp, err := e.dial(c, "http://evil.example"); err == nil || resp == nil || resp.StatusCode != 403 {
			t.Fatalf("foreign origin: got err %v, want a 403 handshake", err)
		}
		if _, resp, err := e.dial(c, ""); err == nil || resp == nil || resp.StatusCode != 403 {
			t.Fatalf("no origin: got err %v, want a 403 handshake", err)
		}
		// Without a session the socket opens and closes with 4001.
		w, _, err := e.dial(client(), e.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		w.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err = w.ws.ReadMessage()
		if !websocket.IsCloseError(err, CodeUnauthorized) {
			t.Fatalf("no session: got %v, want close %d", err, CodeUnauthorized)
		}
	})
}

func TestBadFrames(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, nil)
		w, _, err := e.dial(e.login("ivanov"), e.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		// Before hello.
		id := w.send(Frame{"type": "contacts"})
		if f := w.expect("error", id); f["code"] != "hello_required" {
			t.Fatalf("got %v, want hello_required", f["code"])
		}
		w.hello(0)
		cases := []struct {
			name, raw, code string
		}{
			{"not json", `{nope`, "bad_frame"},
			{"array", `[1,2]`, "bad_frame"},
			{"no type", `{"id":"a1"}`, "bad_frame"},
			{"unknown type", `{"type":"launch","id":"a2"}`, "unknown_type"},
			{"wrong field type", `{"type":"history","id":"a3","with":"bob"}`, "bad_frame"},
			{"bad target", `{"type":"history","id":"a4","with":{"user":1,"chat":2}}`, "bad_target"},
			{"send without core", `{"type":"send","id":"a5","to":{"user":1},"body":"x"}`, "unavailable"},
			{"empty read", `{"type":"read","id":"a6","with":{"user":1}}`, "bad_target"},
			{"second hello", `{"type":"hello","id":"a7"}`, "bad_frame"},
			{"search empty", `{"type":"search","id":"a8","text":"  "}`, "bad_query"},
			{"notifications_read nothing", `{"type":"notifications_read","id":"a9"}`, "bad_frame"},
			{"profile unknown", `{"type":"profile","id":"a10","user":999999}`, "not_found"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if err := w.ws.WriteMessage(websocket.TextMessage, []byte(tc.raw)); err != nil {
					t.Fatal(err)
				}
				f := w.expect("error", "")
				if f["code"] != tc.code {
					t.Fatalf("got %v (%v), want %s", f["code"], f["message"], tc.code)
				}
			})
		}
		// The connection still works after all that.
		d := w.call(Frame{"type": "ping"})
		if d["time"] == nil {
			t.Fatalf("ping: got %v", d)
		}
		// A frame over the size limit closes the connection with 1009.
		big := `{"type":"ping","pad":"` + strings.Repeat("x", MaxFrame) + `"}`
		w.ws.WriteMessage(websocket.TextMessage, []byte(big))
		for {
			w.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := w.ws.ReadMessage(); err != nil {
				if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
					t.Fatalf("oversized frame: got %v, want close 1009", err)
				}
				break
			}
		}
	})
}

func TestRateLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, nil)
		w, _, err := e.dial(e.login("ivanov"), e.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		w.hello(0)
		for i := 0; i < RateBurst*2; i++ {
			w.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`))
		}
		for {
			w.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := w.ws.ReadMessage(); err != nil {
				if !websocket.IsCloseError(err, CodeRateLimited) {
					t.Fatalf("got %v, want close %d", err, CodeRateLimited)
				}
				return
			}
		}
	})
}

func TestContactsHistoryNotifications(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, nil)
		ctx := context.Background()
		ivanov, petrova := e.user("ivanov"), e.user("petrova")
		var ids []int64
		for i := 0; i < 5; i++ {
			m := &mam.Message{Kind: "chat", FromID: petrova.ID, ToID: ivanov.ID, Body: fmt.Sprintf("сообщение %d <b>", i)}
			if i%2 == 1 {
				m.FromID, m.ToID = ivanov.ID, petrova.ID
			}
			if _, err := e.arch.Append(ctx, m); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
		if _, err := db.Exec(db.Rebind(`INSERT INTO notifications (user_id, text, link, created_at) VALUES (?, ?, ?, ?)`), ivanov.ID, "Отчёт готов", "https://portal.example/r/1", time.Now().UnixMicro()); err != nil {
			t.Fatal(err)
		}
		w, _, err := e.dial(e.login("ivanov"), e.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		w.hello(0)

		d := w.call(Frame{"type": "contacts"})
		all, err := e.users.Users(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(d["users"].([]any)); n != len(all) || n < 25 {
			t.Fatalf("contacts: got %d users, want %d", n, len(all))
		}
		if len(d["departments"].([]any)) < 5 {
			t.Fatalf("contacts: got %d departments", len(d["departments"].([]any)))
		}

		d = w.call(Frame{"type": "conversations"})
		convs := d["conversations"].([]any)
		if len(convs) != 1 {
			t.Fatalf("conversations: got %v", convs)
		}
		c := convs[0].(map[string]any)
		if c["key"] != fmt.Sprintf("u%d", petrova.ID) || c["unread"].(float64) != 3 || c["last"].(map[string]any)["id"].(float64) != float64(ids[4]) {
			t.Fatalf("conversation: got %v", c)
		}

		d = w.call(Frame{"type": "history", "with": Frame{"user": petrova.ID}, "limit": 2})
		msgs := d["messages"].([]any)
		if len(msgs) != 2 || d["complete"] != false || msgs[1].(map[string]any)["id"].(float64) != float64(ids[4]) {
			t.Fatalf("history page 1: got %v", d)
		}
		d = w.call(Frame{"type": "history", "with": Frame{"user": petrova.ID}, "before_id": ids[3], "limit": 10})
		if len(d["messages"].([]any)) != 3 || d["complete"] != true {
			t.Fatalf("history page 2: got %v", d)
		}

		w.call(Frame{"type": "read", "with": Frame{"user": petrova.ID}, "up_to": ids[4]})
		d = w.call(Frame{"type": "conversations"})
		if u := d["conversations"].([]any)[0].(map[string]any)["unread"].(float64); u != 0 {
			t.Fatalf("unread after read: got %v, want 0", u)
		}

		d = w.call(Frame{"type": "search", "text": "сообщения"})
		if n := len(d["hits"].([]any)); n != 5 {
			t.Fatalf("search: got %d hits, want 5", n)
		}

		d = w.call(Frame{"type": "notifications"})
		notes := d["notifications"].([]any)
		if len(notes) != 1 || d["unread"].(float64) != 1 || notes[0].(map[string]any)["text"] != "Отчёт готов" {
			t.Fatalf("notifications: got %v", d)
		}
		d = w.call(Frame{"type": "notifications_read", "all": true})
		if d["unread"].(float64) != 0 {
			t.Fatalf("after mark read: got %v", d)
		}

		// Petrova cannot read someone else's correspondence through history.
		w2, _, err := e.dial(e.login("alice"), e.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		w2.hello(0)
		d = w2.call(Frame{"type": "history", "with": Frame{"user": petrova.ID}})
		if len(d["messages"].([]any)) != 0 {
			t.Fatalf("alice sees ivanov's messages: %v", d)
		}

		// Resume: a hello with last_id replays what came after it.
		w3, _, err := e.dial(e.login("ivanov"), e.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		replay := w3.hello(ids[2])
		if len(replay) != 2 || replay[0]["id"].(float64) != float64(ids[3]) || replay[1]["id"].(float64) != float64(ids[4]) {
			t.Fatalf("replay: got %v", replay)
		}
	})
}

func TestWidgetState(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, nil)
		e.b.opts.WidgetOrigins = []string{"http://portal.example"}
		ivanov, petrova := e.user("ivanov"), e.user("petrova")
		ctx := context.Background()
		for i := 0; i < 2; i++ {
			if _, err := e.arch.Append(ctx, &mam.Message{Kind: "chat", FromID: petrova.ID, ToID: ivanov.ID, Body: "hi"}); err != nil {
				t.Fatal(err)
			}
		}
		db.Exec(db.Rebind(`INSERT INTO notifications (user_id, text, link, created_at) VALUES (?, ?, '', ?)`), ivanov.ID, "<b>note</b>", time.Now().UnixMicro())
		c := e.login("ivanov")
		get := func(origin string) (*http.Response, map[string]any) {
			req, _ := http.NewRequest("GET", e.srv.URL+"/widget/state", nil)
			if origin != "" {
				req.Header.Set("Origin", origin)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			json.NewDecoder(resp.Body).Decode(&m)
			return resp, m
		}
		resp, m := get("http://portal.example")
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "http://portal.example" || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("allowed origin: %d %v", resp.StatusCode, resp.Header)
		}
		if m["unread_messages"].(float64) != 2 || m["unread_notifications"].(float64) != 1 {
			t.Fatalf("state: %v", m)
		}
		if resp, _ := get("http://evil.example"); resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("foreign origin: %d", resp.StatusCode)
		}
		// Without a session: no user, no data.
		req, _ := http.NewRequest("GET", e.srv.URL+"/widget/state", nil)
		r2, _ := http.DefaultClient.Do(req)
		var anon map[string]any
		json.NewDecoder(r2.Body).Decode(&anon)
		r2.Body.Close()
		if anon["user"] != nil || len(anon) != 1 {
			t.Fatalf("anonymous: %v", anon)
		}
	})
}
