package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore"
	"vestnik/xmppcore/muc"
)

const portal, otherPortal = "http://portal.example", "http://intranet.example"

// loginLink asks the REST handler for a one-time login link for login.
func (e *env) loginLink(login string) string {
	e.t.Helper()
	resp := e.post(client(), "/api/v1/users/"+e.user(login).ExtID+"/login-token", ``, nil)
	defer resp.Body.Close()
	var got struct{ URL string }
	json.NewDecoder(resp.Body).Decode(&got)
	if resp.StatusCode != 201 {
		e.t.Fatalf("login link: status %d", resp.StatusCode)
	}
	return got.URL
}

// widgetCall sends a widget request as a portal page's fetch would.
func (e *env) widgetCall(method, origin, body, bearer string) (*http.Response, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+"/widget/session", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp, m
}

// widgetSignIn exchanges a fresh login link for a widget credential.
func (e *env) widgetSignIn(login, origin string) string {
	e.t.Helper()
	resp, m := e.widgetCall("POST", origin, fmt.Sprintf(`{"login":%q}`, e.loginLink(login)), "")
	tok, _ := m["token"].(string)
	if resp.StatusCode != 201 || tok == "" {
		e.t.Fatalf("widget sign-in: %d %v", resp.StatusCode, m)
	}
	return tok
}

// dialWidget opens /ws as the widget does: the portal's Origin and the
// credential among the subprotocols.
func (e *env) dialWidget(origin, cred string) (*wsConn, *http.Response, error) {
	hdr := http.Header{}
	hdr.Set("Origin", origin)
	d := *websocket.DefaultDialer
	d.Subprotocols = []string{WidgetProtocol, WidgetTokenProtocol + cred}
	ws, resp, err := d.Dial("ws"+strings.TrimPrefix(e.srv.URL, "http")+"/ws", hdr)
	if err != nil {
		return nil, resp, err
	}
	e.t.Cleanup(func() { ws.Close() })
	return &wsConn{t: e.t, ws: ws}, resp, nil
}

func expectClose(t *testing.T, w *wsConn, code int, within time.Duration) {
	t.Helper()
	w.ws.SetReadDeadline(time.Now().Add(within))
	for {
		_, _, err := w.ws.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, code) {
			t.Fatalf("got %v, want close %d", err, code)
		}
		return
	}
}

// TestWidgetSignIn: a one-time login link from the portal becomes a widget
// credential only from an origin of --widget-origins; the credential works
// only from that origin, only in the WebSocket handshake (never as a
// cookie), only for the widget's commands, and once revoked or expired it
// ends the connection.
func TestWidgetSignIn(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, nil)
		e.b.opts.WidgetOrigins = []string{portal + "/", otherPortal}

		// Preflight: the allowed origin gets CORS, another none.
		resp, _ := e.widgetCall("OPTIONS", portal, "", "")
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != portal || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
		if resp, _ := e.widgetCall("OPTIONS", "http://evil.example", "", ""); resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("foreign preflight: got %d", resp.StatusCode)
		}

		// A foreign origin, or none, cannot exchange a link; the link
		// is not used up by the refusal.
		link := e.loginLink("ivanov")
		for _, o := range []string{"http://evil.example", "", e.srv.URL} {
			if resp, m := e.widgetCall("POST", o, fmt.Sprintf(`{"login":%q}`, link), ""); resp.StatusCode != 403 {
				t.Fatalf("origin %q: got %d %v, want 403", o, resp.StatusCode, m)
			}
		}
		bad := []struct {
			name, body, ct string
			status         int
			code           string
		}{
			{"not json", `{`, "application/json", 400, "malformed"},
			{"form", `login=x`, "application/x-www-form-urlencoded", 415, "json_required"},
			{"empty", `{"login":""}`, "application/json", 422, "missing_login"},
			{"unknown", `{"login":"http://x/login/token/nope"}`, "application/json", 401, "bad_login"},
		}
		for _, c := range bad {
			req, _ := http.NewRequest("POST", e.srv.URL+"/widget/session", strings.NewReader(c.body))
			req.Header.Set("Origin", portal)
			req.Header.Set("Content-Type", c.ct)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var m struct{ Error apiError }
			json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
			if resp.StatusCode != c.status || m.Error.Code != c.code {
				t.Errorf("%s: got %d %q, want %d %q", c.name, resp.StatusCode, m.Error.Code, c.status, c.code)
			}
		}
		resp, m := e.widgetCall("POST", portal, fmt.Sprintf(`{"login":%q}`, link), "")
		cred, _ := m["token"].(string)
		if resp.StatusCode != 201 || cred == "" || resp.Header.Get("Access-Control-Allow-Origin") != portal {
			t.Fatalf("exchange: %d %v %v", resp.StatusCode, m, resp.Header)
		}
		if u, _ := m["user"].(map[string]any); u["id"] != float64(e.user("ivanov").ID) {
			t.Fatalf("exchange user: %v", m)
		}
		// The link works once.
		if resp, _ := e.widgetCall("POST", portal, fmt.Sprintf(`{"login":%q}`, link), ""); resp.StatusCode != 401 {
			t.Fatalf("second exchange: got %d, want 401", resp.StatusCode)
		}

		// The credential is no cookie.
		req, _ := http.NewRequest("GET", e.srv.URL+"/session", nil)
		req.AddCookie(&http.Cookie{Name: CookieName, Value: cred})
		r2, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var s map[string]any
		json.NewDecoder(r2.Body).Decode(&s)
		r2.Body.Close()
		if s["user"] != nil {
			t.Fatalf("widget credential as a cookie: %v", s)
		}

		// The WebSocket: from the portal with the credential it works.
		w, resp, err := e.dialWidget(portal, cred)
		if err != nil {
			t.Fatalf("widget dial: %v", err)
		}
		if resp.Header.Get("Sec-WebSocket-Protocol") != WidgetProtocol {
			t.Fatalf("subprotocol: %q", resp.Header.Get("Sec-WebSocket-Protocol"))
		}
		w.hello(0)
		st := w.call(Frame{"type": "widget_state"})
		if u, _ := st["user"].(map[string]any); u["id"] != float64(e.user("ivanov").ID) {
			t.Fatalf("widget_state: %v", st)
		}
		// Only the widget's commands.
		id := w.send(Frame{"type": "search", "text": "x"})
		if f := w.expect("error", id); f["code"] != "forbidden" {
			t.Fatalf("search from the widget: %v", f)
		}
		// A login link for the full messenger, good once.
		ll := w.call(Frame{"type": "login_link"})
		lu, _ := ll["url"].(string)
		if !strings.HasPrefix(lu, e.srv.URL+"/login/token/") {
			t.Fatalf("login_link: %v", ll)
		}
		r3, err := client().Get(lu)
		if err != nil {
			t.Fatal(err)
		}
		r3.Body.Close()
		if r3.StatusCode != http.StatusSeeOther {
			t.Fatalf("login_link opened: got %d", r3.StatusCode)
		}

		// The same credential from another allowed origin: not signed in.
		w2, _, err := e.dialWidget(otherPortal, cred)
		if err != nil {
			t.Fatal(err)
		}
		expectClose(t, w2, CodeUnauthorized, 5*time.Second)
		// From a foreign origin: no handshake at all.
		if _, resp, err := e.dialWidget("http://evil.example", cred); err == nil || resp == nil || resp.StatusCode != 403 {
			t.Fatalf("foreign origin: got %v, want a 403 handshake", err)
		}

		// Revocation: DELETE /widget/session ends the open socket with
		// 4001, and the credential opens nothing any more.
		if resp, _ := e.widgetCall("DELETE", portal, "", cred); resp.StatusCode != 204 {
			t.Fatalf("widget logout: got %d", resp.StatusCode)
		}
		expectClose(t, w, CodeUnauthorized, 5*time.Second)
		w3, _, err := e.dialWidget(portal, cred)
		if err != nil {
			t.Fatal(err)
		}
		expectClose(t, w3, CodeUnauthorized, 5*time.Second)

		// Expiry ends a connection that is open at that moment: a widget
		// credential issued by the core as sign-in issues it, with a
		// lifetime of 700 ms.
		ivanov, err := e.users.UserByLogin(context.Background(), "ivanov")
		if err != nil {
			t.Fatal(err)
		}
		cred2, _, err := e.users.CreateWebSession(context.Background(), ivanov.ID, portal, 700*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		w4, _, err := e.dialWidget(portal, cred2)
		if err != nil {
			t.Fatal(err)
		}
		w4.hello(0)
		expectClose(t, w4, CodeUnauthorized, 5*time.Second)

		// Logging the user out everywhere ends widget credentials too.
		cred3 := e.widgetSignIn("ivanov", portal)
		if err := e.users.Logout(context.Background(), "ivanov"); err != nil {
			t.Fatal(err)
		}
		w5, _, err := e.dialWidget(portal, cred3)
		if err != nil {
			t.Fatal(err)
		}
		expectClose(t, w5, CodeUnauthorized, 5*time.Second)
	})
}

// TestWidgetConnectionCap: widget connections take places under the same
// connection caps as the web client's.
func TestWidgetConnectionCap(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, nil)
		var held atomic.Int32
		e.b.opts.WidgetOrigins = []string{portal}
		e.b.opts.Admit = func(string) (func(), bool) {
			if held.Add(1) > 1 {
				held.Add(-1)
				return nil, false
			}
			return func() { held.Add(-1) }, true
		}
		cred := e.widgetSignIn("ivanov", portal)
		w, _, err := e.dialWidget(portal, cred)
		if err != nil {
			t.Fatal(err)
		}
		w.hello(0)
		if _, resp, err := e.dialWidget(portal, cred); err == nil || resp == nil || resp.StatusCode != 503 {
			t.Fatalf("second widget over the cap: got %v, want 503", err)
		}
		if _, resp, err := e.dial(e.login("petrova"), e.srv.URL); err == nil || resp == nil || resp.StatusCode != 503 {
			t.Fatalf("a browser over the cap: got %v, want 503", err)
		}
		w.ws.Close()
		deadline := time.Now().Add(5 * time.Second)
		for held.Load() != 0 {
			if time.Now().After(deadline) {
				t.Fatal("the widget's place was not given back")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// TestWidgetMessages: a widget connection is a session of the core like a
// browser's: a personal message from a Jabber client reaches it at once,
// the answer from the widget reaches the Jabber client, reading it clears
// the widget's count, and logging the user out ends the widget.
func TestWidgetMessages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newTCPEnv(t, db)
		e.b.opts.WidgetOrigins = []string{portal}
		petrova := e.user("petrova")
		w, _, err := e.dialWidget(portal, e.widgetSignIn("ivanov", portal))
		if err != nil {
			t.Fatal(err)
		}
		w.hello(0)
		jc := e.jabber("petrova", "gajim")
		t0 := time.Now()
		jc.Send(`<message type='chat' to='ivanov@localhost' id='m1'><body>Привет &lt;b&gt;</body></message>`)
		f := w.take(func(f map[string]any) bool {
			m, _ := f["message"].(map[string]any)
			return f["type"] == "message" && m["from"] == float64(petrova.ID)
		}, "message from petrova")
		if d := time.Since(t0); d > time.Second {
			t.Errorf("message reached the widget after %v, want < 1s", d)
		}
		if m := f["message"].(map[string]any); m["body"] != "Привет <b>" {
			t.Fatalf("body: %v", m)
		}
		st := w.call(Frame{"type": "widget_state"})
		if st["unread_messages"] != float64(1) {
			t.Fatalf("unread: %v", st)
		}
		w.call(Frame{"type": "send", "to": map[string]any{"user": petrova.ID}, "body": "ответ из виджета", "origin_id": "w1"})
		jc.Expect("ответ из виджета")
		w.send(Frame{"type": "read", "with": map[string]any{"user": petrova.ID}, "up_to": f["message"].(map[string]any)["id"]})
		if st := w.call(Frame{"type": "widget_state"}); st["unread_messages"] != float64(0) {
			t.Fatalf("unread after reading: %v", st)
		}
		// Logging the user out everywhere ends the open widget too.
		if err := e.users.Logout(context.Background(), "ivanov"); err != nil {
			t.Fatal(err)
		}
		expectClose(t, w, CodeUnauthorized, 10*time.Second)
	})
}

// TestWidgetNotifications: a mention's notification names its chat,
// message and sender, live and in widget_state, so the widget needs no
// text matching; a notification with buttons reaches the widget with its
// sender and buttons, and the widget answers it through the same command
// as the messenger's bell, once.
func TestWidgetNotifications(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newTCPEnv(t, db)
		e.b.opts.WidgetOrigins = []string{portal}
		ctx := context.Background()
		ivanov, petrova := e.user("ivanov"), e.user("petrova")
		chat, err := e.svc.Create(ctx, petrova.ID, muc.NewChat{Title: "Склад", Color: "GREEN", Type: "closed", Members: []int64{ivanov.ID}})
		if err != nil {
			t.Fatal(err)
		}
		w, _, err := e.dialWidget(portal, e.widgetSignIn("ivanov", portal))
		if err != nil {
			t.Fatal(err)
		}
		w.hello(0)
		wp := e.browser("petrova")
		sent := wp.call(Frame{"type": "send", "to": Frame{"chat": chat.ID}, "body": "@ivanov проверь остатки"})["message"].(map[string]any)
		isNote := func(f map[string]any) bool { return f["type"] == "notification" }
		n := w.take(isNote, "the mention's notification")["notification"].(map[string]any)
		if n["chat"] != float64(chat.ID) || n["message_id"] != sent["id"] || n["sender"] != float64(petrova.ID) {
			t.Fatalf("mention notification: got %v, want chat %d, message %v, sender %d", n, chat.ID, sent["id"], petrova.ID)
		}

		id, err := e.xs.NotifyWith(ctx, xmppcore.NotifyRequest{UserID: ivanov.ID, Text: "Отпуск с 1 марта?", SenderID: petrova.ID,
			Buttons: []xmppcore.NotificationButton{{Title: "Согласовать", Value: "yes"}, {Title: "Отклонить", Value: "no"}}})
		if err != nil {
			t.Fatal(err)
		}
		n = w.take(isNote, "the notification with buttons")["notification"].(map[string]any)
		if n["id"] != float64(id) || n["sender"] != float64(petrova.ID) || len(n["buttons"].([]any)) != 2 || n["chat"] != nil {
			t.Fatalf("notification with buttons: %v", n)
		}
		st := w.call(Frame{"type": "widget_state"})
		if l := st["notifications"].([]any); len(l) != 2 || l[0].(map[string]any)["buttons"] == nil || l[1].(map[string]any)["message_id"] != sent["id"] {
			t.Fatalf("widget_state notifications: %v", l)
		}
		if a := w.call(Frame{"type": "notification_action", "notification_id": id, "answer": "yes"}); a["answer"] != "yes" {
			t.Fatalf("answer: %v", a)
		}
		fid := w.send(Frame{"type": "notification_action", "notification_id": id, "answer": "no"})
		if f := w.expect("error", fid); f["code"] != "answered" {
			t.Fatalf("second answer: %v", f)
		}
	})
}
