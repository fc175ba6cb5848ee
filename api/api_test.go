package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
)

// env is an API over a fresh database with the demo company imported.
type env struct {
	t     *testing.T
	db    *sqlx.DB
	srv   *httptest.Server
	api   *API
	chats *muc.Service
	xmpp  *xmppcore.Server
	users *roster.Store
	token string
}

func newEnv(t *testing.T, db *sqlx.DB, opts Options) *env {
	t.Helper()
	ctx := context.Background()
	users := roster.NewStore(db)
	snap := roster.DemoSnapshot()
	for i := range snap.Employees {
		snap.Employees[i].Password = "" // no logins here: skip the key derivations
	}
	if _, err := users.Import(ctx, snap, false); err != nil {
		t.Fatal(err)
	}
	token, err := users.CreateToken(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	archive := mam.NewStore(db)
	srv, msgr := newServer(t, db, users, archive)
	chats := muc.New(muc.NewStore(db), srv, archive, users, muc.Options{Domain: "example.test"})
	chats.Register(srv)
	if opts.Archive == nil {
		opts.Archive = archive
	}
	a := New(users, chats, msgr, opts)
	mux := http.NewServeMux()
	mux.Handle(Prefix+"/", a.Handler())
	mux.Handle(BitrixPrefix, a.Handler())
	mux.Handle("GET /avatars/chat/{id}", a.AvatarHandler())
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &env{t: t, db: db, srv: hs, api: a, chats: chats, xmpp: srv, users: users, token: token}
}

// do sends a request with the env's token and decodes a JSON answer.
func (e *env) do(method, path, body string) (int, map[string]any) {
	e.t.Helper()
	return e.doToken(e.token, method, path, body)
}

func (e *env) doToken(token, method, path, body string) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &out); err != nil {
			e.t.Fatalf("%s %s: answer is not JSON: %q", method, path, b)
		}
	}
	if resp.StatusCode >= 500 {
		e.t.Fatalf("%s %s %q: got %d %s", method, path, body, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// expectError checks status, code and (for 422) the field.
func expectError(t *testing.T, status int, out map[string]any, wantStatus int, wantCode, wantField string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("got status %d (%v), want %d", status, out, wantStatus)
	}
	e, _ := out["error"].(map[string]any)
	if e == nil || e["code"] != wantCode || e["message"] == "" {
		t.Fatalf("got error %v, want code %q", out, wantCode)
	}
	if wantField != "" && e["field"] != wantField {
		t.Fatalf("got field %v, want %q (%v)", e["field"], wantField, e)
	}
}

func uid(t *testing.T, db *sqlx.DB, ext string) int64 {
	t.Helper()
	var id int64
	if err := db.Get(&id, db.Rebind(`SELECT id FROM users WHERE ext_id = ?`), ext); err != nil {
		t.Fatal(err)
	}
	return id
}

func count(t *testing.T, db *sqlx.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Get(&n, db.Rebind(query), args...); err != nil {
		t.Fatal(err)
	}
	return n
}

var pngPixel = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")

// createChat makes a chat over the API and returns its id.
func (e *env) createChat(body string) int64 {
	e.t.Helper()
	st, out := e.do("POST", "/api/v1/chats", body)
	if st != http.StatusCreated {
		e.t.Fatalf("create chat: %d %v", st, out)
	}
	return int64(out["id"].(float64))
}

func TestAuth(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		st, out := e.doToken("", "GET", "/api/v1/colors", "")
		expectError(t, st, out, 401, "missing_token", "")
		st, out = e.doToken("nope", "GET", "/api/v1/colors", "")
		expectError(t, st, out, 401, "invalid_token", "")
		st, out = e.doToken("", "POST", "/api/v1/chats", `{"title":"x","owner_id":"1"}`)
		expectError(t, st, out, 401, "missing_token", "")
		st, out = e.do("GET", "/api/v1/colors", "")
		if st != 200 || len(out["colors"].([]any)) != 16 || out["colors"].([]any)[0] != "RED" {
			t.Fatalf("colors: %d %v", st, out)
		}
		st, out = e.do("GET", "/api/v1/nothing-here", "")
		expectError(t, st, out, 404, "not_found", "")
		st, out = e.do("DELETE", "/api/v1/colors", "")
		expectError(t, st, out, 405, "method_not_allowed", "")
		st, out = e.do("PUT", "/api/v1/chats/1", "{}")
		expectError(t, st, out, 405, "method_not_allowed", "")
		if n := count(t, db, `SELECT COUNT(*) FROM chats`); n != 0 {
			t.Fatalf("unauthenticated create stored %d chats", n)
		}
	})
}

func TestRateLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{Rate: 1}) // bursts of 2
		var got []int
		for range 4 {
			st, _ := e.do("GET", "/api/v1/colors", "")
			got = append(got, st)
		}
		if fmt.Sprint(got[:2]) != "[200 200]" || got[3] != 429 {
			t.Fatalf("got %v, want two 200s then 429", got)
		}
		st, out := e.do("GET", "/api/v1/colors", "")
		expectError(t, st, out, 429, "rate_limited", "")
	})
}

func TestCreateAndGetChat(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		avatar := "data:image/png;base64," + base64.StdEncoding.EncodeToString(pngPixel)
		st, out := e.do("POST", "/api/v1/chats", `{"title":"Красный отдел","description":"про продажи","color":"PURPLE","type":"closed",
			"owner_id":2,"users":["6", 9],"avatar":"`+avatar+`","unknown_field":true}`)
		if st != 201 {
			t.Fatalf("create: %d %v", st, out)
		}
		id := int64(out["id"].(float64))
		if out["jid"] != fmt.Sprintf("chat%d@conference.example.test", id) || out["title"] != "Красный отдел" || out["color"] != "PURPLE" ||
			out["type"] != "closed" || out["owner_id"] != "2" || out["description"] != "про продажи" {
			t.Fatalf("chat %v", out)
		}
		members := out["members"].([]any)
		if len(members) != 3 || members[0].(map[string]any)["user_id"] != "2" || members[0].(map[string]any)["role"] != "owner" ||
			members[0].(map[string]any)["joined_at"] == "" {
			t.Fatalf("members %v", members)
		}
		av, _ := out["avatar"].(string)
		if !strings.HasPrefix(av, fmt.Sprintf("/avatars/chat/%d", id)) {
			t.Fatalf("avatar url %q", av)
		}
		resp, err := http.Get(e.srv.URL + av) // public, no token
		if err != nil {
			t.Fatal(err)
		}
		img, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || !bytes.Equal(img, pngPixel) {
			t.Fatalf("avatar: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		st, got := e.do("GET", fmt.Sprintf("/api/v1/chats/%d", id), "")
		if st != 200 || got["title"] != "Красный отдел" || len(got["members"].([]any)) != 3 {
			t.Fatalf("get: %d %v", st, got)
		}
		st, _ = e.do("GET", fmt.Sprintf("/api/v1/chats/%d/avatar", id), "")
		if st != 200 {
			t.Fatalf("avatar with token: %d", st)
		}
		e.createChat(`{"title":"Синий","owner_id":"3"}`)
		e.createChat(`{"title":"КРАСНАЯ ЛИНИЯ","owner_id":"3","type":"open"}`)
		st, found := e.do("GET", "/api/v1/chats?title="+urlQuery("красн"), "")
		if st != 200 || len(found["chats"].([]any)) != 2 {
			t.Fatalf("find: %d %v", st, found)
		}
		st, found = e.do("GET", "/api/v1/chats?title=zzz", "")
		if st != 200 || len(found["chats"].([]any)) != 0 {
			t.Fatalf("find none: %d %v", st, found)
		}
		st, found = e.do("GET", "/api/v1/chats", "")
		if st != 200 || len(found["chats"].([]any)) != 3 {
			t.Fatalf("list all: %d %v", st, found)
		}
		st, out = e.do("GET", "/api/v1/chats?limit=x", "")
		expectError(t, st, out, 422, "invalid_limit", "limit")
		for _, p := range []string{"/api/v1/chats/9999", "/api/v1/chats/abc", "/api/v1/chats/-1", "/api/v1/chats/9999/avatar"} {
			st, out = e.do("GET", p, "")
			expectError(t, st, out, 404, "not_found", "")
		}
		resp, _ = http.Get(e.srv.URL + "/avatars/chat/9999")
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("missing avatar: %d", resp.StatusCode)
		}
	})
}

func urlQuery(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func TestCreateChatBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		big := `{"title":"x","owner_id":"1","description":"` + strings.Repeat("a", MaxBody) + `"}`
		for _, tc := range []struct {
			name, body  string
			status      int
			code, field string
		}{
			{"malformed", `{"title":`, 400, "malformed_json", ""},
			{"not an object", `[1,2]`, 400, "malformed_json", ""},
			{"trailing garbage", `{"title":"x","owner_id":"1"} {}`, 400, "malformed_json", ""},
			{"empty body", ``, 400, "malformed_json", ""},
			{"no title", `{"owner_id":"1"}`, 422, "empty_title", "title"},
			{"empty title", `{"title":"   ","owner_id":"1"}`, 422, "empty_title", "title"},
			{"title not a string", `{"title":5,"owner_id":"1"}`, 422, "invalid_type", "title"},
			{"long title", `{"title":"` + strings.Repeat("я", 256) + `","owner_id":"1"}`, 422, "title_too_long", "title"},
			{"unknown color", `{"title":"x","owner_id":"1","color":"NAVY"}`, 422, "unknown_color", "color"},
			{"unknown type", `{"title":"x","owner_id":"1","type":"private"}`, 422, "unknown_type", "type"},
			{"no owner", `{"title":"x"}`, 422, "missing_user", "owner_id"},
			{"unknown owner", `{"title":"x","owner_id":"777"}`, 422, "unknown_user", "owner_id"},
			{"inactive owner", `{"title":"x","owner_id":"30"}`, 422, "unknown_user", "owner_id"},
			{"owner as object", `{"title":"x","owner_id":{}}`, 422, "invalid_type", "owner_id"},
			{"owner as fraction", `{"title":"x","owner_id":1.5}`, 422, "invalid_type", "owner_id"},
			{"unknown member", `{"title":"x","owner_id":"1","users":["2","777"]}`, 422, "unknown_user", "users"},
			{"users not an array", `{"title":"x","owner_id":"1","users":"2"}`, 422, "invalid_type", "users"},
			{"bad avatar", `{"title":"x","owner_id":"1","avatar":"data:text/html,<script>"}`, 422, "invalid_avatar", "avatar"},
			{"too large", big, 413, "body_too_large", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, out := e.do("POST", "/api/v1/chats", tc.body)
				expectError(t, st, out, tc.status, tc.code, tc.field)
			})
		}
		if n := count(t, db, `SELECT COUNT(*) FROM chats`); n != 0 {
			t.Fatalf("bad requests stored %d chats", n)
		}
	})
}

// systemMessages counts a chat's system messages as its owner (user 1)
// reads them in the archive; serverOnly: only those without an author.
func systemMessages(t *testing.T, db *sqlx.DB, chatID int64, serverOnly bool) int {
	t.Helper()
	page, err := mam.NewStore(db).Query(context.Background(), mam.Query{Viewer: uid(t, db, "1"), ChatID: chatID, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range page.Messages {
		if m.Kind == mam.KindSystem && (!serverOnly || m.FromID == 0) {
			n++
		}
	}
	return n
}

func TestAddUsersAndHistoryWindows(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		id := e.createChat(`{"title":"t","owner_id":"1","type":"closed"}`)
		st, out := e.do("POST", fmt.Sprintf("/api/v1/chats/%d/messages", id), `{"from_user_id":"1","message":"before"}`)
		if st != 201 {
			t.Fatalf("post: %d %v", st, out)
		}
		first := int64(out["id"].(float64))
		// Visible history, with the join message (after the created notice).
		st, out = e.do("POST", fmt.Sprintf("/api/v1/chats/%d/users", id), `{"users":["2"]}`)
		if st != 200 || fmt.Sprint(out["added"]) != "[2]" {
			t.Fatalf("add: %d %v", st, out)
		}
		if n := systemMessages(t, db, id, true); n != 2 {
			t.Fatalf("%d system messages, want 2", n)
		}
		// Hidden history, no join message.
		st, out = e.do("POST", fmt.Sprintf("/api/v1/chats/%d/users", id), `{"users":[3, "2"],"hide_history":true,"skip_message":true}`)
		if st != 200 || fmt.Sprint(out["added"]) != "[3]" {
			t.Fatalf("add hidden: %d %v", st, out)
		}
		if n := systemMessages(t, db, id, false); n != 2 {
			t.Fatalf("skip_message posted: %d system messages, want the created notice and the first join", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM chat_periods WHERE chat_id = ? AND user_id = ? AND from_id = 0`, id, uid(t, db, "2")); n != 1 {
			t.Fatal("visible window missing")
		}
		if n := count(t, db, `SELECT COUNT(*) FROM chat_periods WHERE chat_id = ? AND user_id = ? AND from_id > ?`, id, uid(t, db, "3"), first); n != 1 {
			t.Fatal("hidden window missing")
		}
		// The archive applies the windows: user 3 does not see "before".
		page, err := mam.NewStore(db).Query(context.Background(), mam.Query{Viewer: uid(t, db, "3"), ChatID: id, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			if m.ID == first {
				t.Fatal("a member added with hide_history sees earlier messages")
			}
		}
		page, _ = mam.NewStore(db).Query(context.Background(), mam.Query{Viewer: uid(t, db, "2"), ChatID: id, Limit: 50})
		if len(page.Messages) < 2 || page.Messages[1].ID != first { // after the created notice
			t.Fatalf("a member added without hide_history misses earlier messages: %+v", page.Messages)
		}
		for _, tc := range []struct {
			name, path, body string
			status           int
			code, field      string
		}{
			{"no users", fmt.Sprintf("/api/v1/chats/%d/users", id), `{"users":[]}`, 422, "missing_users", "users"},
			{"unknown user", fmt.Sprintf("/api/v1/chats/%d/users", id), `{"users":["555"]}`, 422, "unknown_user", "users"},
			{"hide_history not bool", fmt.Sprintf("/api/v1/chats/%d/users", id), `{"users":["5"],"hide_history":"yes"}`, 422, "invalid_type", "hide_history"},
			{"unknown chat", "/api/v1/chats/9999/users", `{"users":["5"]}`, 404, "not_found", ""},
			{"malformed", fmt.Sprintf("/api/v1/chats/%d/users", id), `{"users":[`, 400, "malformed_json", ""},
			{"outsider invites to closed", fmt.Sprintf("/api/v1/chats/%d/users", id), `{"from_user_id":"5","users":["5"]}`, 403, "forbidden", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, out := e.do("POST", tc.path, tc.body)
				expectError(t, st, out, tc.status, tc.code, tc.field)
			})
		}
		// A member invites to the closed chat.
		st, out = e.do("POST", fmt.Sprintf("/api/v1/chats/%d/users", id), `{"from_user_id":"2","users":["5"]}`)
		if st != 200 || fmt.Sprint(out["added"]) != "[5]" {
			t.Fatalf("member invites: %d %v", st, out)
		}
	})
}

func TestOpenChatRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		id := e.createChat(`{"title":"open","owner_id":"1","type":"open"}`)
		path := fmt.Sprintf("/api/v1/chats/%d/users", id)
		// Anyone joins an open chat by themselves…
		if st, out := e.do("POST", path, `{"from_user_id":"4","users":["4"]}`); st != 200 {
			t.Fatalf("join open: %d %v", st, out)
		}
		// …but an outsider cannot add others before joining.
		st, out := e.do("POST", path, `{"from_user_id":"5","users":["6"]}`)
		expectError(t, st, out, 403, "forbidden", "")
		// Posting to an open chat makes the author a member.
		st, out = e.do("POST", fmt.Sprintf("/api/v1/chats/%d/messages", id), `{"from_user_id":"7","message":"hi"}`)
		if st != 201 {
			t.Fatalf("post to open: %d %v", st, out)
		}
		if ok, _ := e.chats.Store().IsMember(context.Background(), id, uid(t, db, "7")); !ok {
			t.Fatal("poster did not become a member")
		}
	})
}

func TestChatMessages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		id := e.createChat(`{"title":"closed","owner_id":"1","type":"closed","users":["2"]}`)
		path := fmt.Sprintf("/api/v1/chats/%d/messages", id)
		st, out := e.do("POST", path, `{"from_user_id":2,"message":"привет <b>всем</b>"}`)
		if st != 201 {
			t.Fatalf("post: %d %v", st, out)
		}
		msgID := int64(out["id"].(float64))
		m, err := mam.NewStore(db).Get(context.Background(), msgID)
		if err != nil || m.Kind != "groupchat" || m.Body != "привет <b>всем</b>" || m.FromID != uid(t, db, "2") || m.ChatID != id {
			t.Fatalf("archived %+v %v", m, err)
		}
		st, out = e.do("POST", path, `{"message":"Бюджет утверждён","system":true}`)
		if st != 201 {
			t.Fatalf("system: %d %v", st, out)
		}
		m, _ = mam.NewStore(db).Get(context.Background(), int64(out["id"].(float64)))
		if m.Kind != "system" || m.FromID != 0 {
			t.Fatalf("system archived as %+v", m)
		}
		if st, out = e.do("POST", path, `{"from_user_id":0,"message":"sys","system":true}`); st != 201 {
			t.Fatalf("system with 0: %d %v", st, out)
		}
		before := count(t, db, `SELECT COUNT(*) FROM messages`)
		st, out = e.do("POST", path, `{"from_user_id":"2","message":" /getChatId "}`)
		if st != 200 || int64(out["chat_id"].(float64)) != id {
			t.Fatalf("getChatId: %d %v", st, out)
		}
		if after := count(t, db, `SELECT COUNT(*) FROM messages`); after != before {
			t.Fatal("/getChatId was stored")
		}
		for _, tc := range []struct {
			name, path, body string
			status           int
			code, field      string
		}{
			{"non-member to closed", path, `{"from_user_id":"5","message":"x"}`, 403, "forbidden", ""},
			{"non-member getChatId", path, `{"from_user_id":"5","message":"/getChatId"}`, 403, "forbidden", ""},
			{"no author", path, `{"message":"x"}`, 422, "missing_user", "from_user_id"},
			{"unknown author", path, `{"from_user_id":"404","message":"x"}`, 422, "unknown_user", "from_user_id"},
			{"empty message", path, `{"from_user_id":"2","message":"  "}`, 422, "empty_message", "message"},
			{"no message", path, `{"from_user_id":"2"}`, 422, "empty_message", "message"},
			{"message not a string", path, `{"from_user_id":"2","message":["x"]}`, 422, "invalid_type", "message"},
			{"system not bool", path, `{"message":"x","system":"yes"}`, 422, "invalid_type", "system"},
			{"too long", path, `{"from_user_id":"2","message":"` + strings.Repeat("x", MaxMessage+1) + `"}`, 422, "message_too_long", "message"},
			{"unknown chat", "/api/v1/chats/424242/messages", `{"from_user_id":"2","message":"x"}`, 404, "not_found", ""},
			{"malformed", path, `{"message":"x",}`, 400, "malformed_json", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, out := e.do("POST", tc.path, tc.body)
				expectError(t, st, out, tc.status, tc.code, tc.field)
			})
		}
	})
}

func TestPatchAndRemove(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		id := e.createChat(`{"title":"old","owner_id":"1","users":["2","3"]}`)
		path := fmt.Sprintf("/api/v1/chats/%d", id)
		st, out := e.do("PATCH", path, `{"from_user_id":"2","title":"new"}`)
		expectError(t, st, out, 403, "forbidden", "")
		st, out = e.do("PATCH", path, `{"from_user_id":"1","title":"Новое","color":"AQUA","description":"d"}`)
		if st != 200 || out["title"] != "Новое" || out["color"] != "AQUA" || out["description"] != "d" {
			t.Fatalf("patch: %d %v", st, out)
		}
		st, out = e.do("PATCH", path, `{"color":"navy"}`)
		expectError(t, st, out, 422, "unknown_color", "color")
		st, out = e.do("PATCH", path, `{"title":""}`)
		expectError(t, st, out, 422, "empty_title", "title")
		st, out = e.do("PATCH", "/api/v1/chats/9999", `{"title":"x"}`)
		expectError(t, st, out, 404, "not_found", "")
		// A member cannot remove another; the owner can; anyone may leave.
		st, out = e.do("DELETE", path+"/users/3?from_user_id=2", "")
		expectError(t, st, out, 403, "forbidden", "")
		if st, _ := e.do("DELETE", path+"/users/3?from_user_id=1", ""); st != 204 {
			t.Fatalf("owner removes: %d", st)
		}
		if st, _ := e.do("DELETE", path+"/users/2?from_user_id=2", ""); st != 204 {
			t.Fatalf("leave: %d", st)
		}
		st, out = e.do("DELETE", path+"/users/2", "")
		expectError(t, st, out, 404, "not_found", "")
		st, out = e.do("DELETE", path+"/users/nobody", "")
		expectError(t, st, out, 404, "not_found", "")
		st, got := e.do("GET", path, "")
		if st != 200 || len(got["members"].([]any)) != 1 {
			t.Fatalf("members after removal: %v", got)
		}
	})
}

func TestPutOrg(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		body := `{"departments":[{"id":"1","name":"Компания","parent":null,"head":"1"}],
			"employees":[{"id":"1","login":"director","name":"Сергей Волков","departments":["1"]},
			{"id":"100","login":"newbie","name":"Новый Сотрудник","departments":["1"]}]}`
		st, out := e.do("PUT", "/api/v1/org?dry_run=true&force=true", body)
		if st != 200 || out["created"] != float64(1) || out["dry_run"] != true {
			t.Fatalf("dry run: %d %v", st, out)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM users WHERE ext_id = '100'`); n != 0 {
			t.Fatal("dry run applied")
		}
		// It keeps 1 of the demo's active employees: refused unless forced,
		// and so is an empty snapshot.
		activeUsers := func() int {
			t.Helper()
			us, err := e.users.Users(context.Background()) // the active employees
			if err != nil {
				t.Fatal(err)
			}
			return len(us)
		}
		active := activeUsers()
		for _, b := range []string{body, `{}`} {
			st, out = e.do("PUT", "/api/v1/org", b)
			expectError(t, st, out, 422, "mass_deactivation", "")
			if msg := out["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "of "+strconv.Itoa(active)+" active employees") {
				t.Errorf("message %q does not give the figures", msg)
			}
		}
		st, out = e.do("PUT", "/api/v1/org?dry_run=true&force=false", `{}`)
		expectError(t, st, out, 422, "mass_deactivation", "")
		if n := activeUsers(); n != active {
			t.Fatalf("refused imports changed the active employees: %d, want %d", n, active)
		}
		st, out = e.do("PUT", "/api/v1/org?force=maybe", body)
		expectError(t, st, out, 422, "invalid_force", "force")
		st, out = e.do("PUT", "/api/v1/org?force=true", body)
		if st != 200 || out["created"] != float64(1) || out["deactivated"].(float64) < 20 {
			t.Fatalf("forced import: %d %v", st, out)
		}
		st, out = e.do("PUT", "/api/v1/org", `{"departments":[],"employees":[{"id":"1","login":"bad login!","name":"x"},{"id":"1","login":"y","name":"y"}]}`)
		expectError(t, st, out, 422, "invalid_import", "")
		if d := out["error"].(map[string]any)["details"].([]any); len(d) < 2 {
			t.Fatalf("details %v", d)
		}
		st, out = e.do("PUT", "/api/v1/org", `{"employees":`)
		expectError(t, st, out, 400, "malformed_json", "")
		st, out = e.do("PUT", "/api/v1/org?dry_run=maybe", body)
		expectError(t, st, out, 422, "invalid_dry_run", "dry_run")
	})
}

// TestNeverServerError throws bad bodies at every route: none may give a
// 500 (do fails the test on any 5xx).
func TestNeverServerError(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{Rate: -1})
		id := e.createChat(`{"title":"t","owner_id":"1"}`)
		bodies := []string{``, `null`, `0`, `"x"`, `[]`, `{}`, `{"a":`, `{"users":null}`, `{"users":[null]}`, `{"users":[{}]}`,
			`{"title":null,"owner_id":null}`, `{"from_user_id":"1","message":null}`, `{"to_user_id":[],"text":{}}`,
			`{"from_user_id":1e400}`, `{"owner_id":-1,"title":"x"}`, `{"owner_id":"` + strings.Repeat("9", 300) + `","title":"x"}`,
			"{\"title\":\"\xff\xfe\",\"owner_id\":\"1\"}", `{"departments":[{"id":null}],"employees":{}}`}
		for _, route := range e.api.Routes() {
			method, path, _ := strings.Cut(route, " ")
			path = strings.ReplaceAll(path, "{id}", fmt.Sprint(id))
			path = strings.ReplaceAll(path, "{user_id}", "1")
			for _, b := range bodies {
				e.do(method, path, b)
			}
		}
	})
}

func TestInvalidUTF8Refused(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{Rate: -1})
		// What user 1, the author of every refused body, has: chats and
		// readable messages, read through the core.
		archive := mam.NewStore(db)
		held := func() (int, int64) {
			t.Helper()
			ctx := context.Background()
			cs, err := e.chats.Store().ChatsOf(ctx, uid(t, db, "1"))
			if err != nil {
				t.Fatal(err)
			}
			n, err := archive.Count(ctx, mam.Query{Viewer: uid(t, db, "1")})
			if err != nil {
				t.Fatal(err)
			}
			return len(cs), n
		}
		chats, msgs := held()
		for _, tc := range []struct{ method, path, body, field string }{
			{"POST", "/api/v1/chats", "{\"title\":\"Отдел \xff\xfe\",\"owner_id\":\"1\"}", "title"},
			{"POST", "/api/v1/chats", "{\"title\":\"t\",\"owner_id\":\"1\",\"users\":[\"1\",\"\xc3\x28\"]}", "users[1]"},
			{"POST", "/api/v1/messages", "{\"from_user_id\":\"1\",\"to_user_id\":\"2\",\"message\":\"hi \xed\xa0\x80\"}", "message"},
			{"PUT", "/api/v1/org", "{\"departments\":[],\"employees\":[{\"id\":\"1\",\"login\":\"a\",\"name\":\"\xff\"}]}", "employees[0].name"},
		} {
			st, out := e.do(tc.method, tc.path, tc.body)
			expectError(t, st, out, 400, "invalid_utf8", tc.field)
		}
		if c, m := held(); c != chats || m != msgs {
			t.Fatal("a body with invalid UTF-8 was stored")
		}
	})
}
