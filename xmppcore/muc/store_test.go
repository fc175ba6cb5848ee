package muc

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// addUsers inserts active users u1…un (ext ids "1"…"n") straight into the
// users table and returns their ids.
func addUsers(t testing.TB, db *sqlx.DB, n int) []int64 {
	t.Helper()
	ids := make([]int64, n)
	now := time.Now().UnixMicro()
	for i := range ids {
		var base int
		db.Get(&base, `SELECT COUNT(*) FROM users`)
		err := db.Get(&ids[i], db.Rebind(`INSERT INTO users (ext_id, login, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id`),
			fmt.Sprint(base+1), fmt.Sprintf("u%d", base+1), fmt.Sprintf("User %d", base+1), now, now)
		if err != nil {
			t.Fatalf("add user: %v", err)
		}
	}
	return ids
}

// addMessage appends a bare chat message row and returns its id.
func addMessage(t testing.TB, db *sqlx.DB, chatID, from int64) int64 {
	t.Helper()
	var id int64
	if err := db.Get(&id, db.Rebind(`INSERT INTO messages (created_at, kind, from_id, chat_id, body) VALUES (?, 'groupchat', ?, ?, 'x') RETURNING id`),
		time.Now().UnixMicro(), from, chatID); err != nil {
		t.Fatalf("add message: %v", err)
	}
	return id
}

type period struct {
	From int64  `db:"from_id"`
	To   *int64 `db:"to_id"`
}

func periods(t *testing.T, db *sqlx.DB, chatID, userID int64) []period {
	t.Helper()
	var ps []period
	if err := db.Select(&ps, db.Rebind(`SELECT from_id, to_id FROM chat_periods WHERE chat_id = ? AND user_id = ? ORDER BY from_id`), chatID, userID); err != nil {
		t.Fatal(err)
	}
	return ps
}

var pngPixel = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")

func TestCreateAndGet(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		u := addUsers(t, db, 3)
		c, err := s.Create(ctx, NewChat{Title: "  Отдел продаж  ", Description: "d", Color: "MINT", Type: TypeClosed, OwnerID: u[0],
			Members: []int64{u[1], u[1], u[0]}, Avatar: "data:image/png;base64," + base64.StdEncoding.EncodeToString(pngPixel)})
		if err != nil {
			t.Fatal(err)
		}
		if c.Room != fmt.Sprintf("chat%d", c.ID) || c.Title != "Отдел продаж" || c.Type != TypeClosed || c.Color != "MINT" || c.OwnerID != u[0] {
			t.Fatalf("got %+v", c)
		}
		if len(c.Members) != 2 || c.Members[0].UserID != u[0] || c.Members[0].Role != RoleOwner || c.Members[1].UserID != u[1] || c.Members[1].JoinedAt.IsZero() {
			t.Fatalf("members %+v", c.Members)
		}
		img, typ, err := s.Avatar(ctx, c.ID)
		if err != nil || typ != "image/png" || string(img) != string(pngPixel) {
			t.Fatalf("avatar %q %v", typ, err)
		}
		got, err := s.ByRoom(ctx, c.Room)
		if err != nil || got.ID != c.ID {
			t.Fatalf("by room: %v %v", got, err)
		}
		if _, err := s.Get(ctx, c.ID+100); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
		// Defaults and a named room.
		d, err := s.Create(ctx, NewChat{Title: "x", OwnerID: u[2], Room: "coffee"})
		if err != nil || d.Type != TypeOpen || d.Color != Colors[0] || d.Room != "coffee" {
			t.Fatalf("defaults: %+v %v", d, err)
		}
		if _, err := s.Create(ctx, NewChat{Title: "y", OwnerID: u[2], Room: "coffee"}); !errors.Is(err, ErrConflict) {
			t.Fatalf("same room: %v", err)
		}
		if _, _, err := s.Avatar(ctx, d.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("no avatar: %v", err)
		}
	})
}

func TestCreateInvalid(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		u := addUsers(t, db, 2)
		db.Exec(db.Rebind(`UPDATE users SET active = FALSE WHERE id = ?`), u[1])
		gif := "data:image/gif;base64," + base64.StdEncoding.EncodeToString(pngPixel)
		big := "data:image/png;base64," + base64.StdEncoding.EncodeToString(append(append([]byte{}, pngPixel...), make([]byte, MaxAvatar)...))
		for _, tc := range []struct {
			name, field string
			nc          NewChat
		}{
			{"empty title", "title", NewChat{Title: "  ", OwnerID: u[0]}},
			{"long title", "title", NewChat{Title: strings.Repeat("я", MaxTitle+1), OwnerID: u[0]}},
			{"control characters", "title", NewChat{Title: "a\nb", OwnerID: u[0]}},
			{"bad color", "color", NewChat{Title: "t", Color: "blue", OwnerID: u[0]}},
			{"bad type", "type", NewChat{Title: "t", Type: "secret", OwnerID: u[0]}},
			{"inactive owner", "owner_id", NewChat{Title: "t", OwnerID: u[1]}},
			{"no owner", "owner_id", NewChat{Title: "t", OwnerID: 9999}},
			{"unknown member", "users", NewChat{Title: "t", OwnerID: u[0], Members: []int64{9999}}},
			{"avatar not data", "avatar", NewChat{Title: "t", OwnerID: u[0], Avatar: "http://x/y.png"}},
			{"avatar svg", "avatar", NewChat{Title: "t", OwnerID: u[0], Avatar: "data:image/svg+xml;base64,PHN2Zz4="}},
			{"avatar lies", "avatar", NewChat{Title: "t", OwnerID: u[0], Avatar: gif}},
			{"avatar bad base64", "avatar", NewChat{Title: "t", OwnerID: u[0], Avatar: "data:image/png;base64,!!!"}},
			{"avatar too big", "avatar", NewChat{Title: "t", OwnerID: u[0], Avatar: big}},
			{"reserved room", "room", NewChat{Title: "t", OwnerID: u[0], Room: "chat12"}},
			{"bad room", "room", NewChat{Title: "t", OwnerID: u[0], Room: "Big Room"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.Create(ctx, tc.nc)
				var ie *InvalidError
				var ue *UnknownUserError
				switch {
				case errors.As(err, &ie):
					if ie.Field != tc.field {
						t.Fatalf("field %q, want %q (%v)", ie.Field, tc.field, err)
					}
				case errors.As(err, &ue):
					if ue.Field != tc.field {
						t.Fatalf("field %q, want %q (%v)", ue.Field, tc.field, err)
					}
				default:
					t.Fatalf("got %v, want a validation error on %s", err, tc.field)
				}
			})
		}
		var n int
		db.Get(&n, `SELECT COUNT(*) FROM chats`)
		if n != 0 {
			t.Fatalf("%d chats stored by failed creates", n)
		}
	})
}

func TestFindByTitle(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		u := addUsers(t, db, 2)
		mk := func(title, typ string, members ...int64) int64 {
			c, err := s.Create(ctx, NewChat{Title: title, Type: typ, OwnerID: u[0], Members: members})
			if err != nil {
				t.Fatal(err)
			}
			return c.ID
		}
		a := mk("Красная площадь", TypeOpen)
		b := mk("ОЧЕНЬ КРАСНЫЙ", TypeClosed)
		mk("Blue 100%", TypeOpen)
		c := mk("Ещё красное", TypeClosed, u[1])
		ids := func(cs []Chat) []int64 {
			var out []int64
			for _, c := range cs {
				out = append(out, c.ID)
			}
			return out
		}
		got, err := s.FindByTitle(ctx, "КРАСН", 0, 0)
		if err != nil || fmt.Sprint(ids(got)) != fmt.Sprint([]int64{c, b, a}) {
			t.Fatalf("all: %v %v", ids(got), err)
		}
		if len(got[0].Members) != 2 {
			t.Fatalf("members: %+v", got[0].Members)
		}
		got, _ = s.FindByTitle(ctx, "красн", u[1], 0)
		if fmt.Sprint(ids(got)) != fmt.Sprint([]int64{c, a}) {
			t.Fatalf("viewer sees closed chats of others: %v", ids(got))
		}
		got, _ = s.FindByTitle(ctx, "0%", 0, 0)
		if len(got) != 1 {
			t.Fatalf("%% not literal: %v", ids(got))
		}
		got, _ = s.FindByTitle(ctx, "_", 0, 0)
		if len(got) != 0 {
			t.Fatalf("_ not literal: %v", ids(got))
		}
		mine, err := s.ChatsOf(ctx, u[1])
		if err != nil || fmt.Sprint(ids(mine)) != fmt.Sprint([]int64{c}) {
			t.Fatalf("chats of: %v %v", ids(mine), err)
		}
		open, _ := s.OpenChats(ctx)
		if len(open) != 2 {
			t.Fatalf("open chats: %v", ids(open))
		}
	})
}

func TestMembershipWindows(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		u := addUsers(t, db, 4)
		c, err := s.Create(ctx, NewChat{Title: "t", OwnerID: u[0]})
		if err != nil {
			t.Fatal(err)
		}
		m1 := addMessage(t, db, c.ID, u[0])
		// Visible history: window from 0.
		if added, err := s.AddMembers(ctx, c.ID, []int64{u[1]}, false); err != nil || len(added) != 1 {
			t.Fatalf("add: %v %v", added, err)
		}
		if p := periods(t, db, c.ID, u[1]); len(p) != 1 || p[0].From != 0 || p[0].To != nil {
			t.Fatalf("visible window %+v", p)
		}
		// Hidden history: window after the newest message.
		if _, err := s.AddMembers(ctx, c.ID, []int64{u[2], u[1]}, true); err != nil {
			t.Fatal(err)
		}
		if p := periods(t, db, c.ID, u[2]); len(p) != 1 || p[0].From != m1+1 {
			t.Fatalf("hidden window %+v, want from %d", p, m1+1)
		}
		if p := periods(t, db, c.ID, u[1]); len(p) != 1 || p[0].From != 0 {
			t.Fatalf("existing member's window changed: %+v", p)
		}
		m2 := addMessage(t, db, c.ID, u[0])
		// Leaving closes the window at the newest message.
		if err := s.RemoveMember(ctx, c.ID, u[1]); err != nil {
			t.Fatal(err)
		}
		if p := periods(t, db, c.ID, u[1]); len(p) != 1 || p[0].To == nil || *p[0].To != m2 {
			t.Fatalf("closed window %+v, want to %d", p, m2)
		}
		if err := s.RemoveMember(ctx, c.ID, u[1]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("remove twice: %v", err)
		}
		m3 := addMessage(t, db, c.ID, u[0])
		// Rejoining never shows the time away, even without hide_history.
		if _, err := s.AddMembers(ctx, c.ID, []int64{u[1]}, false); err != nil {
			t.Fatal(err)
		}
		if p := periods(t, db, c.ID, u[1]); len(p) != 2 || p[1].From != m3+1 || p[1].To != nil {
			t.Fatalf("rejoin windows %+v", p)
		}
		// Leave and rejoin with no message in between: one open window.
		s.RemoveMember(ctx, c.ID, u[1])
		s.AddMembers(ctx, c.ID, []int64{u[1]}, false)
		if p := periods(t, db, c.ID, u[1]); len(p) != 2 || p[1].To != nil {
			t.Fatalf("quick rejoin windows %+v", p)
		}
		if ok, _ := s.IsMember(ctx, c.ID, u[1]); !ok {
			t.Fatal("not a member after rejoin")
		}
		if _, err := s.AddMembers(ctx, c.ID+99, []int64{u[3]}, false); !errors.Is(err, ErrNotFound) {
			t.Fatalf("add to missing chat: %v", err)
		}
		var ue *UnknownUserError
		if _, err := s.AddMembers(ctx, c.ID, []int64{u[3], 12345}, false); !errors.As(err, &ue) || ue.UserID != 12345 {
			t.Fatalf("unknown user: %v", err)
		}
		if ok, _ := s.IsMember(ctx, c.ID, u[3]); ok {
			t.Fatal("partial add applied")
		}
		// The owner leaves: the longest-standing member takes over.
		if err := s.RemoveMember(ctx, c.ID, u[0]); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctx, c.ID)
		if got.OwnerID != u[2] || got.Members[0].UserID != u[2] || got.Members[0].Role != RoleOwner {
			t.Fatalf("new owner: %+v", got)
		}
	})
}

func TestUpdate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		u := addUsers(t, db, 1)
		c, _ := s.Create(ctx, NewChat{Title: "old", OwnerID: u[0]})
		title, color, desc, typ := "Новое Имя", "PURPLE", "about", TypeClosed
		got, err := s.Update(ctx, c.ID, Update{Title: &title, Color: &color, Description: &desc, Type: &typ})
		if err != nil || got.Title != title || got.Color != color || got.Description != desc || got.Type != typ {
			t.Fatalf("update: %+v %v", got, err)
		}
		found, _ := s.FindByTitle(ctx, "новое", 0, 0)
		if len(found) != 1 {
			t.Fatal("renamed chat not found by new title")
		}
		bad := "nope"
		var ie *InvalidError
		if _, err := s.Update(ctx, c.ID, Update{Color: &bad}); !errors.As(err, &ie) || ie.Field != "color" {
			t.Fatalf("bad color: %v", err)
		}
		if _, err := s.Update(ctx, c.ID+5, Update{Title: &title}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing chat: %v", err)
		}
		av := "data:image/png;base64," + base64.StdEncoding.EncodeToString(pngPixel)
		if _, err := s.Update(ctx, c.ID, Update{Avatar: &av}); err != nil {
			t.Fatal(err)
		}
		if _, typ, err := s.Avatar(ctx, c.ID); err != nil || typ != "image/png" {
			t.Fatalf("avatar %q %v", typ, err)
		}
		none := ""
		s.Update(ctx, c.ID, Update{Avatar: &none})
		if _, _, err := s.Avatar(ctx, c.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("avatar removed: %v", err)
		}
	})
}

// TestConcurrentAdds: the same users added by concurrent requests end up
// members once, without errors.
func TestConcurrentAdds(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		u := addUsers(t, db, 6)
		c, _ := s.Create(ctx, NewChat{Title: "t", OwnerID: u[0]})
		errs := make(chan error, 8)
		for range 8 {
			go func() {
				_, err := s.AddMembers(ctx, c.ID, u[1:], false)
				errs <- err
			}()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		ms, _ := s.Members(ctx, c.ID)
		if len(ms) != 6 {
			t.Fatalf("%d members", len(ms))
		}
		var n int
		db.Get(&n, db.Rebind(`SELECT COUNT(*) FROM chat_periods WHERE chat_id = ?`), c.ID)
		if n != 6 {
			t.Fatalf("%d windows", n)
		}
	})
}
