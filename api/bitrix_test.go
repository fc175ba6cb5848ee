package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/xmpptest"
)

// bxAnswer is a facade answer: status and decoded body.
type bxAnswer struct {
	st  int
	out map[string]any
}

// bx calls the facade as a PHP integration does: POST, form-encoded.
func (e *env) bx(user, method, form string) bxAnswer {
	e.t.Helper()
	return e.bxRaw(e.token, user, "POST", method, "application/x-www-form-urlencoded", form)
}

func (e *env) bxRaw(token, user, httpMethod, method, contentType, body string) bxAnswer {
	e.t.Helper()
	var rd io.Reader
	if body != "" && httpMethod != "GET" {
		rd = strings.NewReader(body)
	}
	u := e.srv.URL + "/rest/" + user + "/" + token + "/" + method
	if httpMethod == "GET" && body != "" {
		u += "?" + body
	}
	req, _ := http.NewRequest(httpMethod, u, rd)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatalf("%s %s: answer is not JSON: %d %q", httpMethod, method, resp.StatusCode, b)
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
		e.t.Fatalf("%s %s %q: got %d %s", httpMethod, method, body, resp.StatusCode, b)
	}
	return bxAnswer{resp.StatusCode, out}
}

// bxOK returns the result of a successful call.
func bxOK(t *testing.T, a bxAnswer) any {
	t.Helper()
	st, out := a.st, a.out
	if st != 200 || out["error"] != nil {
		t.Fatalf("got %d %v, want a result", st, out)
	}
	if _, ok := out["time"].(map[string]any)["duration"]; !ok {
		t.Fatalf("no time in %v", out)
	}
	return out["result"]
}

// bxID64 reads a numeric result.
func bxID64(t *testing.T, v any) int64 {
	t.Helper()
	f, ok := v.(float64)
	if !ok || f <= 0 {
		t.Fatalf("got result %v, want an id", v)
	}
	return int64(f)
}

func bxExpectError(t *testing.T, a bxAnswer, wantStatus int, wantCode string) {
	t.Helper()
	st, out := a.st, a.out
	if st != wantStatus || out["error"] != wantCode || out["error_description"] == "" || out["result"] != nil {
		t.Fatalf("got %d %v, want %d %s", st, out, wantStatus, wantCode)
	}
}

func members(t *testing.T, e *env, chatID int64) map[int64]bool {
	t.Helper()
	c, err := e.chats.Get(context.Background(), 0, chatID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]bool{}
	for _, m := range c.Members {
		out[m.UserID] = true
	}
	return out
}

// TestBitrixPHPIntegration drives the facade as a PHP integration: chat
// made, users invited, a message posted and read back, each effect
// checked in the core.
func TestBitrixPHPIntegration(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		e := newEnv(t, db, Options{})
		archive := mam.NewStore(db)

		// im.chat.add with PHP's http_build_query arrays (USERS[0]=…).
		form := url.Values{"TYPE": {"CHAT"}, "TITLE": {"Сделка №7"}, "DESCRIPTION": {"обсуждение"}, "COLOR": {"MINT"},
			"MESSAGE": {"Добро пожаловать"}, "USERS[0]": {"2"}, "USERS[1]": {"3"},
			"AVATAR": {base64.StdEncoding.EncodeToString(pngPixel)}}
		chatID := bxID64(t, bxOK(t, e.bx("1", "im.chat.add", form.Encode())))
		c, err := e.chats.Get(ctx, 0, chatID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Title != "Сделка №7" || c.Description != "обсуждение" || c.Color != "MINT" || c.Type != muc.TypeClosed ||
			c.OwnerID != uid(t, db, "1") || c.AvatarType != "image/png" || len(c.Members) != 3 {
			t.Fatalf("created %+v", c)
		}
		welcome, err := archive.Query(ctx, mam.Query{Viewer: uid(t, db, "2"), ChatID: chatID})
		if err != nil || len(welcome.Messages) != 2 || welcome.Messages[0].Kind != mam.KindSystem ||
			welcome.Messages[1].Body != "Добро пожаловать" || welcome.Messages[1].FromID != uid(t, db, "1") {
			t.Fatalf("first message: %+v %v", welcome, err)
		}

		// im.chat.user.add with USERS[]=… and HIDE_HISTORY=Y.
		bxOK(t, e.bx("2", "im.chat.user.add", fmt.Sprintf("CHAT_ID=%d&USERS[]=4&USERS[]=5&HIDE_HISTORY=Y", chatID)))
		if m := members(t, e, chatID); !m[uid(t, db, "4")] || !m[uid(t, db, "5")] || len(m) != 5 {
			t.Fatalf("members after add: %v", m)
		}

		// im.message.add to chat<ID>; the archive has it.
		msgID := bxID64(t, bxOK(t, e.bx("2", "im.message.add", fmt.Sprintf("DIALOG_ID=chat%d&MESSAGE=%s", chatID, url.QueryEscape("цена: 100 & 200")))))
		m, err := archive.Get(ctx, msgID)
		if err != nil || m.Kind != mam.KindGroupchat || m.ChatID != chatID || m.FromID != uid(t, db, "2") || m.Body != "цена: 100 & 200" {
			t.Fatalf("archived %+v %v", m, err)
		}
		sysID := bxID64(t, bxOK(t, e.bx("1", "im.message.add", fmt.Sprintf("DIALOG_ID=chat%d&MESSAGE=Budget+approved&SYSTEM=Y", chatID))))
		if m, _ := archive.Get(ctx, sysID); m.Kind != mam.KindSystem {
			t.Fatalf("SYSTEM=Y archived as %+v", m)
		}

		// im.dialog.messages.get: newest first, with the authors (the
		// oldest is the chat's created notice).
		res := bxOK(t, e.bx("3", "im.dialog.messages.get", fmt.Sprintf("DIALOG_ID=chat%d", chatID))).(map[string]any)
		msgs := res["messages"].([]any)
		if int64(res["chat_id"].(float64)) != chatID || len(msgs) != 5 {
			t.Fatalf("messages for 3: %v", res)
		}
		newest := msgs[0].(map[string]any)
		if int64(newest["id"].(float64)) != sysID || newest["author_id"].(float64) != 0 {
			t.Fatalf("newest %v, want the system message %d by 0", newest, sysID)
		}
		second := msgs[1].(map[string]any)
		if int64(second["id"].(float64)) != msgID || second["text"] != "цена: 100 & 200" || second["author_id"].(float64) != 2 ||
			!strings.HasSuffix(second["date"].(string), "+00:00") {
			t.Fatalf("message %v", second)
		}
		users := res["users"].([]any)
		if len(users) != 2 || users[0].(map[string]any)["name"] == "" {
			t.Fatalf("users %v", users)
		}
		// User 5 joined with HIDE_HISTORY=Y: the welcome stays hidden.
		res = bxOK(t, e.bx("5", "im.dialog.messages.get", fmt.Sprintf("DIALOG_ID=chat%d&LIMIT=50", chatID))).(map[string]any)
		for _, x := range res["messages"].([]any) {
			if x.(map[string]any)["text"] == "Добро пожаловать" {
				t.Fatal("HIDE_HISTORY=Y: a new member sees the earlier message")
			}
		}
		// Paging: LIMIT then LAST_ID (older), FIRST_ID (newer).
		res = bxOK(t, e.bx("3", "im.dialog.messages.get", fmt.Sprintf("DIALOG_ID=chat%d&LIMIT=1&LAST_ID=%d", chatID, sysID))).(map[string]any)
		if got := res["messages"].([]any); len(got) != 1 || int64(got[0].(map[string]any)["id"].(float64)) != msgID {
			t.Fatalf("LAST_ID page %v", got)
		}
		res = bxOK(t, e.bx("3", "im.dialog.messages.get", fmt.Sprintf("DIALOG_ID=chat%d&FIRST_ID=%d", chatID, msgID))).(map[string]any)
		if got := res["messages"].([]any); len(got) != 1 || int64(got[0].(map[string]any)["id"].(float64)) != sysID {
			t.Fatalf("FIRST_ID page %v", got)
		}

		// im.chat.get (GET with a query, and the .json suffix), im.chat.user.list.
		got := bxOK(t, e.bxRaw(e.token, "2", "GET", "im.chat.get.json", "", fmt.Sprintf("CHAT_ID=%d", chatID))).(map[string]any)
		if got["title"] != "Сделка №7" || got["type"] != "chat" || got["owner"].(float64) != 1 || int64(got["ID"].(float64)) != chatID ||
			!strings.HasPrefix(got["avatar"].(string), "/avatars/chat/") {
			t.Fatalf("im.chat.get %v", got)
		}
		got = bxOK(t, e.bx("2", "im.chat.get", fmt.Sprintf("DIALOG_ID=chat%d", chatID))).(map[string]any)
		if int64(got["id"].(float64)) != chatID {
			t.Fatalf("im.chat.get by DIALOG_ID %v", got)
		}
		if got := bxOK(t, e.bx("2", "im.dialog.get", fmt.Sprintf("DIALOG_ID=chat%d", chatID))).(map[string]any); got["dialog_id"] != fmt.Sprintf("chat%d", chatID) {
			t.Fatalf("im.dialog.get of a chat: %v", got)
		}
		if got := bxOK(t, e.bx("2", "im.dialog.get", "DIALOG_ID=3")).(map[string]any); got["name"] != "Мария Петрова" || got["type"] != "user" {
			t.Fatalf("im.dialog.get of a person: %v", got)
		}
		bxExpectError(t, e.bx("9", "im.dialog.get", fmt.Sprintf("DIALOG_ID=chat%d", chatID)), 403, "ACCESS_DENIED")
		list := bxOK(t, e.bx("2", "im.chat.user.list", fmt.Sprintf("CHAT_ID=%d", chatID))).([]any)
		if len(list) != 5 || list[0].(float64) != 1 {
			t.Fatalf("im.chat.user.list %v", list)
		}

		// The owner renames, recolors and changes the avatar.
		bxOK(t, e.bx("1", "im.chat.updateTitle", fmt.Sprintf("CHAT_ID=%d&TITLE=%s", chatID, url.QueryEscape("Сделка закрыта"))))
		bxOK(t, e.bx("1", "im.chat.updateColor", fmt.Sprintf("CHAT_ID=%d&COLOR=aqua", chatID)))
		gif := []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")
		bxOK(t, e.bx("1", "im.chat.updateAvatar", fmt.Sprintf("CHAT_ID=%d&AVATAR=%s", chatID, url.QueryEscape(base64.StdEncoding.EncodeToString(gif)))))
		if c, _ := e.chats.Get(ctx, 0, chatID); c.Title != "Сделка закрыта" || c.Color != "AQUA" || c.AvatarType != "image/gif" {
			t.Fatalf("after updates %+v", c)
		}

		// im.search.chat.list finds it for a member, not for an outsider.
		found := bxOK(t, e.bx("2", "im.search.chat.list", "FIND="+url.QueryEscape("ЗАКРЫТА"))).([]any)
		if len(found) != 1 || int64(found[0].(map[string]any)["id"].(float64)) != chatID {
			t.Fatalf("search %v", found)
		}
		if found := bxOK(t, e.bx("9", "im.search.chat.list", "FIND="+url.QueryEscape("закрыта"))).([]any); len(found) != 0 {
			t.Fatalf("an outsider found a closed chat: %v", found)
		}

		// im.chat.user.delete by the owner; im.chat.leave by a member.
		bxOK(t, e.bx("1", "im.chat.user.delete", fmt.Sprintf("CHAT_ID=%d&USER_ID=4", chatID)))
		bxOK(t, e.bx("3", "im.chat.leave", fmt.Sprintf("CHAT_ID=%d", chatID)))
		if m := members(t, e, chatID); m[uid(t, db, "4")] || m[uid(t, db, "3")] || len(m) != 3 {
			t.Fatalf("members after delete and leave: %v", m)
		}

		// A personal message and its history.
		pmID := bxID64(t, bxOK(t, e.bx("2", "im.message.add", "DIALOG_ID=6&MESSAGE="+url.QueryEscape("лично"))))
		if m, _ := archive.Get(ctx, pmID); m.Kind != mam.KindChat || m.FromID != uid(t, db, "2") || m.ToID != uid(t, db, "6") {
			t.Fatalf("personal archived as %+v", m)
		}
		res = bxOK(t, e.bx("6", "im.dialog.messages.get", "DIALOG_ID=2")).(map[string]any)
		if got := res["messages"].([]any); len(got) != 1 || got[0].(map[string]any)["text"] != "лично" {
			t.Fatalf("personal history %v", res)
		}

		// im.recent.get: the personal correspondence first, then the chat.
		recent := bxOK(t, e.bx("2", "im.recent.get", "")).([]any)
		if len(recent) != 2 || recent[0].(map[string]any)["id"].(float64) != 6 || recent[1].(map[string]any)["id"] != fmt.Sprintf("chat%d", chatID) {
			t.Fatalf("recent %v", recent)
		}
		if last := recent[1].(map[string]any)["message"].(map[string]any); int64(last["id"].(float64)) <= sysID {
			t.Fatalf("chat's last message %v, want the newest (the leave notice)", last)
		}
		if r := bxOK(t, e.bx("2", "im.recent.get", "SKIP_CHAT=Y")).([]any); len(r) != 1 {
			t.Fatalf("SKIP_CHAT=Y: %v", r)
		}
		// A new chat is listed with its created notice (a system
		// message, author 0) as its last message.
		quiet := bxID64(t, bxOK(t, e.bx("1", "im.chat.add", "TITLE=quiet&USERS[]=9")))
		recent = bxOK(t, e.bx("9", "im.recent.get", "")).([]any)
		if len(recent) != 1 || recent[0].(map[string]any)["id"] != fmt.Sprintf("chat%d", quiet) ||
			recent[0].(map[string]any)["message"].(map[string]any)["author_id"] != float64(0) ||
			!strings.Contains(recent[0].(map[string]any)["message"].(map[string]any)["text"].(string), "created the chat") {
			t.Fatalf("recent of a new member: %v", recent)
		}
		if r := bxOK(t, e.bx("9", "im.recent.get", "LAST_UPDATE="+url.QueryEscape(atom(time.Now().Add(time.Hour))))).([]any); len(r) != 0 {
			t.Fatalf("LAST_UPDATE in the future: %v", r)
		}

		// Notifications and users.
		before := count(t, db, `SELECT COUNT(*) FROM notifications WHERE user_id = ?`, uid(t, db, "6"))
		bxID64(t, bxOK(t, e.bx("1", "im.notify.system.add", "USER_ID=6&MESSAGE="+url.QueryEscape("Отчёт готов"))))
		bxID64(t, bxOK(t, e.bx("1", "im.notify.personal.add", "USER_ID=6&MESSAGE=hi")))
		if n := count(t, db, `SELECT COUNT(*) FROM notifications WHERE user_id = ? AND text IN ('Отчёт готов', 'hi')`, uid(t, db, "6")); n != before+2 {
			t.Fatalf("notifications: %d, want %d", n, before+2)
		}
		u := bxOK(t, e.bx("1", "im.user.get", "ID=2")).(map[string]any)
		if u["id"].(float64) != 2 || u["name"] != "Иван Иванов" || u["first_name"] != "Иван" || u["last_name"] != "Иванов" ||
			u["work_position"] != "Руководитель отдела продаж" || len(u["departments"].([]any)) != 1 || u["departments"].([]any)[0].(float64) != 2 {
			t.Fatalf("im.user.get %v", u)
		}
		if u := bxOK(t, e.bx("5", "im.user.get", "")).(map[string]any); u["id"].(float64) != 5 {
			t.Fatalf("im.user.get without ID: %v", u)
		}
	})
}

// TestBitrixBodies: the same call as JSON, multipart and GET.
func TestBitrixBodies(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		id := bxID64(t, bxOK(t, e.bxRaw(e.token, "1", "POST", "im.chat.add.json", "application/json",
			`{"type":"OPEN","TITLE":"Открытый","USERS":[2,"3"],"COLOR":"RED"}`)))
		if c, _ := e.chats.Get(context.Background(), 0, id); c.Type != muc.TypeOpen || len(c.Members) != 3 {
			t.Fatalf("JSON-made chat %+v", c)
		}
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.WriteField("DIALOG_ID", fmt.Sprintf("chat%d", id))
		mw.WriteField("MESSAGE", "из формы")
		mw.Close()
		msgID := bxID64(t, bxOK(t, e.bxRaw(e.token, "2", "POST", "im.message.add", mw.FormDataContentType(), body.String())))
		if m, _ := mam.NewStore(db).Get(context.Background(), msgID); m.Body != "из формы" {
			t.Fatalf("multipart message %+v", m)
		}
		// An open chat: a non-member's message makes them a member (the core's rule).
		bxID64(t, bxOK(t, e.bxRaw(e.token, "7", "GET", "im.message.add", "", fmt.Sprintf("DIALOG_ID=chat%d&MESSAGE=hello", id))))
		if !members(t, e, id)[uid(t, db, "7")] {
			t.Fatal("posting to an open chat did not make the author a member")
		}
		// Untitled: named after its members, as Bitrix24 does.
		id = bxID64(t, bxOK(t, e.bx("1", "im.chat.add", "USERS[]=2")))
		if c, _ := e.chats.Get(context.Background(), 0, id); c.Title != "Chat with Сергей Волков, Иван Иванов" || c.Type != muc.TypeClosed {
			t.Fatalf("untitled chat %+v", c)
		}
	})
}

// TestBitrixErrors: bad input is answered as Bitrix24 does and changes
// nothing.
func TestBitrixErrors(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		e := newEnv(t, db, Options{})
		closed := bxID64(t, bxOK(t, e.bx("1", "im.chat.add", "TITLE=closed&USERS[]=2")))
		readOnly, err := e.users.CreateScopedToken(ctx, "read", []string{roster.ScopeRead}, 0)
		if err != nil {
			t.Fatal(err)
		}
		postOnly, _ := e.users.CreateScopedToken(ctx, "post", []string{roster.ScopePost}, 0)
		asTwo, _ := e.users.CreateScopedToken(ctx, "as 2", []string{roster.ScopeAdmin}, uid(t, db, "2"))
		chat := fmt.Sprintf("chat%d", closed)
		cid := fmt.Sprint(closed)

		for _, tc := range []struct {
			name, token, user, http, method, ctype, body string
			status                                       int
			code                                         string
		}{
			{"unknown method", e.token, "1", "POST", "im.nothing.here", "", "", 404, "ERROR_METHOD_NOT_FOUND"},
			{"bad token", "nope", "1", "POST", "im.message.add", "", "DIALOG_ID=2&MESSAGE=x", 401, "INVALID_CREDENTIALS"},
			{"unknown user", e.token, "404", "POST", "im.message.add", "", "DIALOG_ID=2&MESSAGE=x", 401, "INVALID_CREDENTIALS"},
			{"token bound to another user", asTwo, "1", "POST", "im.message.add", "", "DIALOG_ID=2&MESSAGE=x", 401, "INVALID_CREDENTIALS"},
			{"read-only token posts", readOnly, "1", "POST", "im.message.add", "", "DIALOG_ID=2&MESSAGE=x", 401, "insufficient_scope"},
			{"post-only token reads", postOnly, "1", "GET", "im.dialog.messages.get", "", "DIALOG_ID=2", 401, "insufficient_scope"},
			{"PUT", e.token, "1", "PUT", "im.message.add", "", "", 405, "INVALID_REQUEST"},
			{"no DIALOG_ID", e.token, "1", "POST", "im.message.add", "", "MESSAGE=x", 400, "DIALOG_ID_EMPTY"},
			{"bad DIALOG_ID", e.token, "1", "POST", "im.message.add", "", "DIALOG_ID=chatX&MESSAGE=x", 400, "INVALID_DIALOG_ID"},
			{"unknown peer", e.token, "1", "POST", "im.message.add", "", "DIALOG_ID=404&MESSAGE=x", 400, "USER_NOT_FOUND"},
			{"no MESSAGE", e.token, "1", "POST", "im.message.add", "", "DIALOG_ID=" + chat, 400, "MESSAGE_EMPTY"},
			{"blank MESSAGE", e.token, "1", "POST", "im.message.add", "", "DIALOG_ID=" + chat + "&MESSAGE=+", 400, "MESSAGE_EMPTY"},
			{"MESSAGE a list", e.token, "1", "POST", "im.message.add", "", "DIALOG_ID=" + chat + "&MESSAGE[]=x", 400, "INVALID_MESSAGE"},
			{"SYSTEM not Y/N", e.token, "1", "POST", "im.message.add", "", "DIALOG_ID=" + chat + "&MESSAGE=x&SYSTEM=maybe", 400, "INVALID_SYSTEM"},
			{"SYSTEM to a person", e.token, "1", "POST", "im.message.add", "", "DIALOG_ID=2&MESSAGE=x&SYSTEM=Y", 400, "INVALID_SYSTEM"},
			{"ATTACH javascript link", e.token, "1", "POST", "im.message.add", "", "DIALOG_ID=" + chat + "&MESSAGE=x&ATTACH[0][LINK][LINK]=javascript:alert(1)", 400, "ATTACH_ERROR"},
			{"ATTACH not JSON", e.token, "1", "POST", "im.message.add", "", "DIALOG_ID=" + chat + "&MESSAGE=x&ATTACH=hello", 400, "ATTACH_ERROR"},
			{"MENU", e.token, "1", "POST", "im.message.add", "", "DIALOG_ID=" + chat + "&MESSAGE=x&MENU[0][TEXT]=hi", 400, "UNSUPPORTED_MENU"},
			{"KEYBOARD", e.token, "1", "POST", "im.message.add", "", "DIALOG_ID=" + chat + "&MESSAGE=x&KEYBOARD[0][TEXT]=Yes", 400, "KEYBOARD_ERROR"},
			{"non-member posts to a closed chat", e.token, "5", "POST", "im.message.add", "", "DIALOG_ID=" + chat + "&MESSAGE=x", 403, "ACCESS_DENIED"},
			{"non-member system message", e.token, "5", "POST", "im.message.add", "", "DIALOG_ID=" + chat + "&MESSAGE=x&SYSTEM=Y", 403, "ACCESS_DENIED"},
			{"unknown chat", e.token, "1", "POST", "im.message.add", "", "DIALOG_ID=chat424242&MESSAGE=x", 403, "ACCESS_DENIED"},
			{"non-member reads a closed chat", e.token, "5", "POST", "im.dialog.messages.get", "", "DIALOG_ID=" + chat, 403, "ACCESS_DENIED"},
			{"non-member gets a closed chat", e.token, "5", "GET", "im.chat.get", "", "CHAT_ID=" + cid, 403, "ACCESS_DENIED"},
			{"non-member lists members", e.token, "5", "GET", "im.chat.user.list", "", "CHAT_ID=" + cid, 403, "ACCESS_DENIED"},
			{"non-member invites", e.token, "5", "POST", "im.chat.user.add", "", "CHAT_ID=" + cid + "&USERS[]=6", 403, "ACCESS_DENIED"},
			{"member renames", e.token, "2", "POST", "im.chat.updateTitle", "", "CHAT_ID=" + cid + "&TITLE=mine", 403, "ACCESS_DENIED"},
			{"member removes the owner", e.token, "2", "POST", "im.chat.user.delete", "", "CHAT_ID=" + cid + "&USER_ID=1", 403, "ACCESS_DENIED"},
			{"remove a non-member", e.token, "1", "POST", "im.chat.user.delete", "", "CHAT_ID=" + cid + "&USER_ID=9", 400, "USER_NOT_FOUND"},
			{"non-member leaves", e.token, "5", "POST", "im.chat.leave", "", "CHAT_ID=" + cid, 403, "ACCESS_DENIED"},
			{"no CHAT_ID", e.token, "1", "POST", "im.chat.user.add", "", "USERS[]=6", 400, "CHAT_ID_EMPTY"},
			{"no USERS", e.token, "1", "POST", "im.chat.user.add", "", "CHAT_ID=" + cid, 400, "USERS_EMPTY"},
			{"unknown user invited", e.token, "1", "POST", "im.chat.user.add", "", "CHAT_ID=" + cid + "&USERS[]=404", 400, "USER_NOT_FOUND"},
			{"HIDE_HISTORY not Y/N", e.token, "1", "POST", "im.chat.user.add", "", "CHAT_ID=" + cid + "&USERS[]=6&HIDE_HISTORY=x", 400, "INVALID_HIDE_HISTORY"},
			{"bad TYPE", e.token, "1", "POST", "im.chat.add", "", "TITLE=t&TYPE=LINES", 400, "INVALID_TYPE"},
			{"bad COLOR", e.token, "1", "POST", "im.chat.add", "", "TITLE=t&COLOR=NOPE", 400, "UNKNOWN_COLOR"},
			{"bad AVATAR", e.token, "1", "POST", "im.chat.add", "", "TITLE=t&AVATAR=bm90IGFuIGltYWdl", 400, "INVALID_AVATAR"},
			{"ENTITY_TYPE", e.token, "1", "POST", "im.chat.add", "", "TITLE=t&ENTITY_TYPE=CRM&ENTITY_ID=DEAL|1", 400, "UNSUPPORTED_ENTITY_TYPE"},
			{"OWNER_ID with a user's token", asTwo, "2", "POST", "im.chat.add", "", "TITLE=t&OWNER_ID=1", 403, "ACCESS_DENIED"},
			{"malformed parameter name", e.token, "1", "POST", "im.chat.add", "", "TITLE=t&USERS[=2", 400, "INVALID_REQUEST"},
			{"bad COLOR update", e.token, "1", "POST", "im.chat.updateColor", "", "CHAT_ID=" + cid + "&COLOR=NOPE", 400, "UNKNOWN_COLOR"},
			{"no TITLE update", e.token, "1", "POST", "im.chat.updateTitle", "", "CHAT_ID=" + cid, 400, "TITLE_EMPTY"},
			{"malformed JSON", e.token, "1", "POST", "im.message.add", "application/json", `{"DIALOG_ID":`, 400, "INVALID_REQUEST"},
			{"bad LIMIT", e.token, "1", "POST", "im.dialog.messages.get", "", "DIALOG_ID=" + chat + "&LIMIT=-1", 400, "INVALID_LIMIT"},
			{"no USER_ID to notify", e.token, "1", "POST", "im.notify.system.add", "", "MESSAGE=x", 400, "USER_ID_EMPTY"},
			{"notification SUB_TAG", e.token, "1", "POST", "im.notify.personal.add", "", "USER_ID=2&MESSAGE=x&SUB_TAG=t1", 400, "UNSUPPORTED_SUB_TAG"},
			{"no FIND", e.token, "1", "POST", "im.search.chat.list", "", "", 400, "FIND_EMPTY"},
			{"unknown user get", e.token, "1", "POST", "im.user.get", "", "ID=404", 400, "USER_NOT_FOUND"},
			{"file part", e.token, "1", "POST", "im.message.add", "multipart/form-data; boundary=b",
				"--b\r\nContent-Disposition: form-data; name=\"AVATAR\"; filename=\"a.png\"\r\n\r\nx\r\n--b--\r\n", 400, "INVALID_REQUEST"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctype := tc.ctype
				if ctype == "" && tc.http == "POST" {
					ctype = "application/x-www-form-urlencoded"
				}
				beforeMsgs := count(t, db, `SELECT COUNT(*) FROM messages`)
				beforeChats := count(t, db, `SELECT COUNT(*) FROM chats`)
				beforeMembers := count(t, db, `SELECT COUNT(*) FROM chat_members`)
				beforeNotes := count(t, db, `SELECT COUNT(*) FROM notifications`)
				bxExpectError(t, e.bxRaw(tc.token, tc.user, tc.http, tc.method, ctype, tc.body), tc.status, tc.code)
				if count(t, db, `SELECT COUNT(*) FROM messages`) != beforeMsgs || count(t, db, `SELECT COUNT(*) FROM chats`) != beforeChats ||
					count(t, db, `SELECT COUNT(*) FROM chat_members`) != beforeMembers || count(t, db, `SELECT COUNT(*) FROM notifications`) != beforeNotes {
					t.Fatal("a refused call changed something")
				}
			})
		}
		// Malformed paths under /rest/.
		resp, err := http.Get(e.srv.URL + "/rest/1/" + e.token)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("/rest/1/token: got %d, want 404", resp.StatusCode)
		}
		if c, _ := e.chats.Get(ctx, 0, closed); c.Title != "closed" {
			t.Fatalf("the closed chat changed: %+v", c)
		}
	})
}

// TestBitrixSeenByXMPPClient: what the facade posts reaches a real XMPP
// client over TCP, personal and in a chat room, through the same core path.
func TestBitrixSeenByXMPPClient(t *testing.T) {
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

		bxOK(t, e.bx("1", "im.message.add", "DIALOG_ID=2&MESSAGE="+url.QueryEscape("Привет из портала")))
		cl.Expect("<message", "from='director@example.test", "Привет из портала")

		id := bxID64(t, bxOK(t, e.bx("1", "im.chat.add", "TITLE=room&USERS[]=2")))
		cl.Send(fmt.Sprintf(`<presence to='chat%d@conference.example.test/ivanov'><x xmlns='http://jabber.org/protocol/muc'/></presence>`, id))
		cl.Expect("<presence", fmt.Sprintf("chat%d@conference.example.test/ivanov", id), "110")
		bxOK(t, e.bx("1", "im.message.add", fmt.Sprintf("DIALOG_ID=chat%d&MESSAGE=%s", id, url.QueryEscape("в чат"))))
		cl.Expect("type='groupchat'", "<body>в чат</body>")
	})
}

// TestBitrixParams: PHP's form arrays and JSON become the same tree.
func TestBitrixParams(t *testing.T) {
	parse := func(t *testing.T, ctype, body string) bxParams {
		t.Helper()
		r, _ := http.NewRequest("POST", "/rest/1/t/m?q=1", strings.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		p, err := parseBitrixParams(r)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	const form = "application/x-www-form-urlencoded"
	for _, tc := range []struct{ name, ctype, body, want string }{
		{"appended", form, "USERS[]=1&USERS[]=2", "1,2"},
		{"indexed by number, not text", form, "USERS[10]=c&USERS[2]=b&USERS[0]=a", "a,b,c"},
		{"encoded brackets", form, "USERS%5B0%5D=7&USERS%5B1%5D=8", "7,8"},
		{"keyed then appended, as PHP", form, "USERS[3]=x&USERS[]=y", "x,y"},
		{"one value", form, "users=5", "5"},
		{"JSON", "application/json", `{"USERS":[1,"2"]}`, "1,2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(t, tc.ctype, tc.body)
			got, err := p.list("USERS")
			if err != nil || strings.Join(got, ",") != tc.want {
				t.Fatalf("got %v %v, want %s", got, err, tc.want)
			}
			if q, _ := p.str("Q"); q != "1" {
				t.Fatalf("query parameter: got %q", q)
			}
		})
	}
	p := parse(t, form, "ATTACH[0][MESSAGE]=hi&ATTACH[0][LINK][NAME]=site&SYSTEM=y&LIMIT=x")
	a := p["ATTACH"].(map[string]any)["0"].(map[string]any)
	if a["MESSAGE"] != "hi" || a["LINK"].(map[string]any)["NAME"] != "site" {
		t.Fatalf("nested: %v", p)
	}
	if y, err := p.yn("SYSTEM", false); !y || err != nil {
		t.Fatalf("SYSTEM=y: %v %v", y, err)
	}
	if _, err := p.id("LIMIT"); err == nil {
		t.Fatal("LIMIT=x: no error")
	}
	if _, err := p.str("ATTACH"); err == nil {
		t.Fatal("ATTACH as text: no error")
	}
	j := parse(t, "application/json", `{"system":true,"hide_history":false,"chat_id":12}`)
	if j["SYSTEM"] != "Y" || j["HIDE_HISTORY"] != "N" || j["CHAT_ID"] != "12" {
		t.Fatalf("JSON scalars: %v", j)
	}
}

// TestBitrixRateLimit: the facade shares the token's bucket with /api/v1.
func TestBitrixRateLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{Rate: 1}) // bursts of 2
		if st, out := e.do("GET", "/api/v1/colors", ""); st != 200 {
			t.Fatalf("native call: %d %v", st, out)
		}
		bxOK(t, e.bx("1", "im.user.get", ""))
		a := e.bx("1", "im.user.get", "")
		bxExpectError(t, a, 503, "QUERY_LIMIT_EXCEEDED")
	})
}

// TestBitrixChatPostRateLimit: the core's per-chat rate limit is Bitrix24's
// QUERY_LIMIT_EXCEEDED (which its clients retry), not an internal error;
// /api/v1 answers 429 rate_limited for the same rule.
func TestBitrixChatPostRateLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{Rate: -1})
		chatID := bxID64(t, bxOK(t, e.bx("1", "im.chat.add", "TITLE=flood&USERS[0]=2")))
		var a bxAnswer
		posted := 0
		for range muc.DefaultMessageBurst + 10 {
			a = e.bx("2", "im.message.add", fmt.Sprintf("DIALOG_ID=chat%d&MESSAGE=tick", chatID))
			if a.st != 200 {
				break
			}
			posted++
		}
		bxExpectError(t, a, 503, "QUERY_LIMIT_EXCEEDED")
		if posted < muc.DefaultMessageBurst || posted > muc.DefaultMessageBurst+5 {
			t.Fatalf("got %d posts before the limit, want about %d", posted, muc.DefaultMessageBurst)
		}
		st, out := e.do("POST", fmt.Sprintf("/api/v1/chats/%d/messages", chatID), `{"from_user_id":"2","message":"tock"}`)
		expectError(t, st, out, 429, "rate_limited", "")
	})
}
