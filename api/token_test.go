package api

import (
	"context"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
)

// Scoped tokens reach only their routes; a token made for a user acts as
// that user only; a revoked token stops working; use is recorded.
func TestTokenScopesAndUser(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		ctx := context.Background()
		mk := func(name string, scopes []string, asUser string) string {
			t.Helper()
			var uid int64
			if asUser != "" {
				u, err := e.users.UserByExtID(ctx, asUser)
				if err != nil {
					t.Fatal(err)
				}
				uid = u.ID
			}
			tok, err := e.users.CreateScopedToken(ctx, name, scopes, uid)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		reader := mk("reader", []string{roster.ScopeRead}, "")
		poster := mk("poster", []string{roster.ScopePost}, "")
		bot := mk("bot", []string{roster.ScopePost, roster.ScopeRead}, "2")

		cases := []struct {
			name, token, method, path, body string
			status                          int
			code                            string
		}{
			{"read token reads", reader, "GET", "/api/v1/colors", "", 200, ""},
			{"read token cannot post", reader, "POST", "/api/v1/messages", `{"from_user_id":"2","to_user_id":"3","message":"hi"}`, 403, "insufficient_scope"},
			{"post token posts", poster, "POST", "/api/v1/messages", `{"from_user_id":"2","to_user_id":"3","message":"hi"}`, 201, ""},
			{"post token cannot read history", poster, "GET", "/api/v1/users/2/history?with=3", "", 403, "insufficient_scope"},
			{"post token cannot replace the org", poster, "PUT", "/api/v1/org", `{}`, 403, "insufficient_scope"},
			{"read token cannot mint login links", reader, "POST", "/api/v1/users/2/login-token", "", 403, "insufficient_scope"},
			{"user token posts as its user", bot, "POST", "/api/v1/messages", `{"from_user_id":"2","to_user_id":"3","message":"from the bot"}`, 201, ""},
			{"user token cannot post as another", bot, "POST", "/api/v1/messages", `{"from_user_id":"3","to_user_id":"2","message":"spoofed"}`, 403, "token_user"},
			{"user token reads its own history", bot, "GET", "/api/v1/users/2/history?with=3", "", 200, ""},
			{"user token cannot read another's history", bot, "GET", "/api/v1/users/3/history?with=2", "", 403, "token_user"},
		}
		_, other := e.do("POST", "/api/v1/chats", `{"title":"Чужой","type":"closed","owner_id":"3","users":["4"]}`)
		_, own := e.do("POST", "/api/v1/chats", `{"title":"Свой","type":"closed","owner_id":"2","users":["4"]}`)
		cases = append(cases,
			struct {
				name, token, method, path, body string
				status                          int
				code                            string
			}{"user token: no system message where its user is no member", bot, "POST", fmt.Sprintf("/api/v1/chats/%v/messages", other["id"]), `{"system":true,"message":"notice"}`, 403, "forbidden"},
			struct {
				name, token, method, path, body string
				status                          int
				code                            string
			}{"user token: system message where its user is a member", bot, "POST", fmt.Sprintf("/api/v1/chats/%v/messages", own["id"]), `{"system":true,"message":"notice"}`, 201, ""},
		)
		for _, c := range cases {
			status, body := e.doToken(c.token, c.method, c.path, c.body)
			if status != c.status {
				t.Errorf("%s: got %d %v, want %d", c.name, status, body, c.status)
				continue
			}
			if c.code != "" {
				if got := body["error"].(map[string]any)["code"]; got != c.code {
					t.Errorf("%s: got code %v, want %s", c.name, got, c.code)
				}
			}
		}
		toks, err := e.users.Tokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range toks {
			if tk.Name == "bot" && (tk.LastUsed == nil || tk.AsLogin != "ivanov") {
				t.Errorf("bot token: last used %v, as %q", tk.LastUsed, tk.AsLogin)
			}
		}
		if _, err := e.users.RevokeToken(ctx, "bot"); err != nil {
			t.Fatal(err)
		}
		// A fresh API (no cached verification) refuses it at once.
		fresh := newEnv(t, db, Options{})
		if status, _ := fresh.doToken(bot, "GET", "/api/v1/colors", ""); status != 401 {
			t.Errorf("revoked token: got %d, want 401", status)
		}
		if _, err := e.users.RevokeToken(ctx, "bot"); err != roster.ErrNotFound {
			t.Errorf("revoking twice: got %v, want ErrNotFound", err)
		}
	})
}
