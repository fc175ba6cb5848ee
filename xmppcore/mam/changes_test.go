package mam

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

func TestEditWindow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStoreOptions(db, Options{EditWindow: time.Hour})
		old := mustAppend(t, s, &Message{Kind: KindChat, FromID: 1, ToID: 2, Body: "вчера", CreatedAt: time.Now().Add(-2 * time.Hour)})
		fresh := mustAppend(t, s, personal(1, 2, "сейчас"))
		if _, err := s.Edit(ctx, 1, old.ID, "поправка"); !errors.Is(err, ErrTooLate) || !errors.Is(err, ErrForbidden) {
			t.Errorf("edit after the window: got %v, want ErrTooLate (an ErrForbidden)", err)
		}
		if _, err := s.Retract(ctx, 1, old.ID); !errors.Is(err, ErrTooLate) {
			t.Errorf("retract after the window: got %v, want ErrTooLate", err)
		}
		if got, _ := s.Get(ctx, old.ID); got.Body != "вчера" || got.EditedAt != nil {
			t.Errorf("refused edit changed the message: %+v", got)
		}
		if _, err := s.Edit(ctx, 1, fresh.ID, "   "); !errors.Is(err, ErrInvalid) {
			t.Errorf("empty edit: got %v, want ErrInvalid", err)
		}
		if _, err := s.Edit(ctx, 1, fresh.ID, "поправка"); err != nil {
			t.Errorf("edit within the window: %v", err)
		}
		// Someone who cannot read the message does not learn it exists.
		if _, err := s.Edit(ctx, 3, fresh.ID, "чужое"); !errors.Is(err, ErrNotFound) {
			t.Errorf("edit by an outsider: got %v, want ErrNotFound", err)
		}
		if _, err := s.Retract(ctx, 1, fresh.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Retract(ctx, 1, fresh.ID); !errors.Is(err, ErrRetracted) {
			t.Errorf("retract twice: got %v, want ErrRetracted", err)
		}
		// No limit.
		s = NewStoreOptions(db, Options{EditWindow: -1})
		if _, err := s.Edit(ctx, 1, old.ID, "поправка"); err != nil || s.EditWindow() != 0 {
			t.Errorf("edit without a window: %v (window %v)", err, s.EditWindow())
		}
		if NewStore(db).EditWindow() != DefaultEditWindow {
			t.Errorf("default window: got %v, want %v", NewStore(db).EditWindow(), DefaultEditWindow)
		}
	})
}

func TestResolve(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		a := mustAppend(t, s, &Message{Kind: KindChat, FromID: 1, ToID: 2, OriginID: "dino-1", Body: "to 2"})
		b := mustAppend(t, s, &Message{Kind: KindChat, FromID: 1, ToID: 3, OriginID: "dino-1", Body: "to 3, same client id"})
		addPeriod(t, db, 7, 1, 1, 0)
		addPeriod(t, db, 7, 2, 1, 0)
		c := mustAppend(t, s, &Message{Kind: KindGroupchat, ChatID: 7, FromID: 2, Body: "in the chat"})
		for _, tc := range []struct {
			name   string
			viewer int64
			ref    Ref
			want   int64 // 0: ErrNotFound
		}{
			{"client id in the conversation", 2, Ref{Client: "dino-1", With: 1}, a.ID},
			{"the same client id in another conversation", 3, Ref{Client: "dino-1", With: 1}, b.ID},
			{"the author's side", 1, Ref{Client: "dino-1", With: 3, Author: 1}, b.ID},
			{"another author's id", 2, Ref{Client: "dino-1", With: 1, Author: 2}, 0},
			{"archive id", 2, Ref{ID: a.ID}, a.ID},
			{"archive id outside the conversation named", 1, Ref{ID: a.ID, With: 3}, 0},
			{"archive id the viewer may not read", 3, Ref{ID: a.ID}, 0},
			{"room stanza-id", 1, Ref{Client: itoa(c.ID), ChatID: 7}, c.ID},
			{"room message id without a client id", 1, Ref{Client: "m" + itoa(c.ID), ChatID: 7}, c.ID},
			{"room stanza-id of another chat", 1, Ref{Client: itoa(c.ID), ChatID: 8}, 0},
			{"non-member", 3, Ref{Client: itoa(c.ID), ChatID: 7}, 0},
			{"unknown client id", 2, Ref{Client: "nope", With: 1}, 0},
			{"no conversation", 2, Ref{Client: "dino-1"}, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m, err := s.Resolve(ctx, tc.viewer, tc.ref)
				if tc.want == 0 {
					if !errors.Is(err, ErrNotFound) {
						t.Fatalf("got %+v %v, want ErrNotFound", m, err)
					}
					return
				}
				if err != nil || m.ID != tc.want {
					t.Fatalf("got %+v %v, want message %d", m, err, tc.want)
				}
			})
		}
	})
}

func TestReactions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		addPeriod(t, db, 7, 1, 1, 0)
		addPeriod(t, db, 7, 2, 1, 0)
		m := mustAppend(t, s, chatMsg(7, 1, "обед в час?"))
		if _, sum, err := s.React(ctx, 2, m.ID, []string{"👍", "🎉", "👍"}); err != nil || show(sum) != "👍:2 🎉:2" {
			t.Fatalf("react: got %v %v", show(sum), err)
		}
		if _, sum, err := s.React(ctx, 1, m.ID, []string{"👍"}); err != nil || show(sum) != "👍:2,1 🎉:2" {
			t.Fatalf("second user: got %v %v", show(sum), err)
		}
		// A set replaces the user's previous one.
		if _, sum, err := s.React(ctx, 2, m.ID, []string{"❤️"}); err != nil || show(sum) != "👍:1 ❤️:2" {
			t.Fatalf("replace: got %v %v", show(sum), err)
		}
		if _, sum, err := s.AddReaction(ctx, 2, m.ID, "❤️"); err != nil || show(sum) != "👍:1 ❤️:2" {
			t.Fatalf("add again: got %v %v", show(sum), err)
		}
		if _, sum, err := s.RemoveReaction(ctx, 1, m.ID, "👍"); err != nil || show(sum) != "❤️:2" {
			t.Fatalf("remove: got %v %v", show(sum), err)
		}
		// Bad input changes nothing.
		many := strings.Split("😀 😁 😂 🤣 😃 😄 😅 😆 😉 😊 😋", " ")
		for name, set := range map[string][]string{
			"too many":  many,
			"too long":  {strings.Repeat("👍", 17)},
			"empty":     {""},
			"space":     {"👍 👍"},
			"control":   {"a\x00"},
			"bad utf-8": {"\xff"},
		} {
			if _, _, err := s.React(ctx, 2, m.ID, set); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: got %v, want ErrInvalid", name, err)
			}
		}
		// Only who may read the message reacts.
		if _, _, err := s.React(ctx, 3, m.ID, []string{"👎"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("non-member: got %v, want ErrNotFound", err)
		}
		got, err := s.Reactions(ctx, []int64{m.ID, m.ID + 100})
		if err != nil || len(got) != 1 || show(got[m.ID]) != "❤️:2" {
			t.Fatalf("stored: got %v %v", got, err)
		}
		// Empty removes; a retraction takes them all.
		if _, sum, err := s.React(ctx, 2, m.ID, nil); err != nil || len(sum) != 0 {
			t.Fatalf("empty set: got %v %v", show(sum), err)
		}
		s.React(ctx, 2, m.ID, []string{"👍"})
		if _, err := s.Retract(ctx, 1, m.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Reactions(ctx, []int64{m.ID}); len(got) != 0 {
			t.Errorf("reactions of a retracted message: %v", got)
		}
		if _, _, err := s.React(ctx, 2, m.ID, []string{"👍"}); !errors.Is(err, ErrRetracted) {
			t.Errorf("react to a retracted message: got %v, want ErrRetracted", err)
		}
		// Retention takes reactions with their message.
		old := mustAppend(t, s, &Message{Kind: KindChat, FromID: 1, ToID: 2, Body: "старое", CreatedAt: time.Now().Add(-time.Hour)})
		s.React(ctx, 2, old.ID, []string{"👍"})
		if _, err := s.DeleteOlderThan(ctx, time.Now().Add(-time.Minute), 10); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.Get(&n, db.Rebind(`SELECT COUNT(*) FROM reactions WHERE message_id = ?`), old.ID); err != nil || n != 0 {
			t.Errorf("reactions left after retention: %d %v", n, err)
		}
	})
}

// show renders a summary as "emoji:user,user …".
func show(sum []Reaction) string {
	var parts []string
	for _, r := range sum {
		users := make([]string, len(r.Users))
		for i, u := range r.Users {
			users[i] = itoa(u)
		}
		parts = append(parts, r.Emoji+":"+strings.Join(users, ","))
	}
	return strings.Join(parts, " ")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestReplies(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		q := mustAppend(t, s, &Message{Kind: KindChat, FromID: 1, ToID: 2, OriginID: "q-1", Body: "Когда?"})
		other := mustAppend(t, s, personal(1, 3, "не тебе"))
		target, err := s.ReplyTarget(ctx, 2, Ref{Client: "q-1", With: 1})
		if err != nil || target.ID != q.ID {
			t.Fatalf("reply target: %+v %v", target, err)
		}
		a := mustAppend(t, s, &Message{Kind: KindChat, FromID: 2, ToID: 1, Body: "В три", ReplyTo: target.ID})
		// Both append paths (one alone, a batch) keep it.
		batch := make(chan *Message, 3)
		for i := 0; i < 3; i++ {
			go func() {
				m := &Message{Kind: KindChat, FromID: 2, ToID: 1, Body: "и ещё", ReplyTo: q.ID}
				if _, err := s.Append(ctx, m); err != nil {
					t.Error(err)
				}
				batch <- m
			}()
		}
		for _, m := range []*Message{a, <-batch, <-batch, <-batch} {
			got, err := s.Get(ctx, m.ID)
			if err != nil || got.ReplyTo != q.ID {
				t.Fatalf("stored reply: %+v %v, want reply_to %d", got, err, q.ID)
			}
		}
		if _, err := s.ReplyTarget(ctx, 2, Ref{ID: other.ID, With: 1}); !errors.Is(err, ErrNotFound) {
			t.Errorf("reply to a message one cannot see: got %v, want ErrNotFound", err)
		}
		if _, err := s.ReplyTarget(ctx, 3, Ref{ID: q.ID, With: 1}); !errors.Is(err, ErrNotFound) {
			t.Errorf("reply from outside the conversation: got %v, want ErrNotFound", err)
		}
		if _, err := s.Retract(ctx, 1, q.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ReplyTarget(ctx, 2, Ref{ID: q.ID, With: 1}); !errors.Is(err, ErrRetracted) {
			t.Errorf("reply to a retracted message: got %v, want ErrRetracted", err)
		}
	})
}

// TestResolveWindow: a client id names one of the conversation's latest
// ClientIDWindow messages; an older message is still found by archive id.
func TestResolveWindow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		old := mustAppend(t, s, &Message{Kind: KindChat, FromID: 1, ToID: 2, OriginID: "old-1", Body: "давно"})
		more := make([]Message, ClientIDWindow)
		for i := range more {
			more[i] = Message{Kind: KindChat, FromID: 2, ToID: 1, Body: "x", CreatedAt: time.Now()}
		}
		if err := s.Bulk(ctx, more); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Resolve(ctx, 2, Ref{Client: "old-1", With: 1}); !errors.Is(err, ErrNotFound) {
			t.Errorf("client id beyond the window: got %v, want ErrNotFound", err)
		}
		if m, err := s.Resolve(ctx, 2, Ref{ID: old.ID, With: 1}); err != nil || m.ID != old.ID {
			t.Errorf("archive id beyond the window: got %+v %v", m, err)
		}
		recent := mustAppend(t, s, &Message{Kind: KindChat, FromID: 1, ToID: 2, OriginID: "old-1", Body: "снова"})
		if m, err := s.Resolve(ctx, 2, Ref{Client: "old-1", With: 1}); err != nil || m.ID != recent.ID {
			t.Errorf("recent client id: got %+v %v", m, err)
		}
	})
}
