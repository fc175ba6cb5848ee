package api

import (
	"context"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
)

// A chat's history as each member may see it (hide_history applies) and a
// user's conversation list, newest first.
func TestChatMessagesAndRecent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		st, chat := e.do("POST", "/api/v1/chats", `{"title":"План","type":"closed","owner_id":"2","users":["3"]}`)
		if st != 201 {
			t.Fatalf("create chat: %d %v", st, chat)
		}
		id := int64(chat["id"].(float64))
		post := func(from, text string) {
			t.Helper()
			if st, out := e.do("POST", fmt.Sprintf("/api/v1/chats/%d/messages", id), fmt.Sprintf(`{"from_user_id":%q,"message":%q}`, from, text)); st != 201 {
				t.Fatalf("post: %d %v", st, out)
			}
		}
		post("2", "раньше")
		if st, out := e.do("POST", fmt.Sprintf("/api/v1/chats/%d/users", id), `{"users":["4"],"hide_history":true,"skip_message":true}`); st != 200 {
			t.Fatalf("add: %d %v", st, out)
		}
		post("3", "позже")
		if st, out := e.do("POST", "/api/v1/messages", `{"from_user_id":"5","to_user_id":"4","message":"лично"}`); st != 201 {
			t.Fatalf("personal: %d %v", st, out)
		}
		texts := func(user string) []string {
			t.Helper()
			st, out := e.do("GET", fmt.Sprintf("/api/v1/chats/%d/messages?user_id=%s", id, user), "")
			if st != 200 {
				t.Fatalf("history for %s: %d %v", user, st, out)
			}
			var got []string
			for _, m := range out["messages"].([]any) {
				got = append(got, m.(map[string]any)["text"].(string))
			}
			return got
		}
		if got := fmt.Sprint(texts("3")); got != "[The chat “План” was created раньше позже]" {
			t.Errorf("member 3 sees %s", got)
		}
		if got := fmt.Sprint(texts("4")); got != "[позже]" {
			t.Errorf("member 4, added with hide_history, sees %s", got)
		}
		if st, _ := e.do("GET", fmt.Sprintf("/api/v1/chats/%d/messages?user_id=6", id), ""); st != 404 {
			t.Errorf("a non-member reading a closed chat: %d, want 404", st)
		}
		if st, _ := e.do("GET", fmt.Sprintf("/api/v1/chats/%d/messages", id), ""); st != 422 {
			t.Errorf("without user_id: %d, want 422", st)
		}

		st, out := e.do("GET", "/api/v1/users/4/recent", "")
		if st != 200 {
			t.Fatalf("recent: %d %v", st, out)
		}
		convs := out["conversations"].([]any)
		if len(convs) != 2 {
			t.Fatalf("recent of user 4: %v", convs)
		}
		first, second := convs[0].(map[string]any), convs[1].(map[string]any)
		if first["with"] != "5" || first["last_message"].(map[string]any)["text"] != "лично" ||
			int64(second["chat_id"].(float64)) != id || second["last_message"].(map[string]any)["text"] != "позже" {
			t.Errorf("recent of user 4: %v", convs)
		}

		// A token made for user 4 reads only as user 4.
		u4, _ := e.users.UserByExtID(context.Background(), "4")
		tok, _ := e.users.CreateScopedToken(context.Background(), "u4", []string{roster.ScopeRead}, u4.ID)
		if st, _ := e.doToken(tok, "GET", fmt.Sprintf("/api/v1/chats/%d/messages?user_id=3", id), ""); st != 403 {
			t.Errorf("user 4's token reading as 3: %d, want 403", st)
		}
		if st, _ := e.doToken(tok, "GET", "/api/v1/users/3/recent", ""); st != 403 {
			t.Errorf("user 4's token listing 3's conversations: %d, want 403", st)
		}
		if st, _ := e.doToken(tok, "GET", "/api/v1/users/4/recent", ""); st != 200 {
			t.Errorf("user 4's token listing its own: %d, want 200", st)
		}
	})
}
