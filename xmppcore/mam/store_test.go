package mam

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

func personal(from, to int64, body string) *Message {
	return &Message{Kind: KindChat, FromID: from, ToID: to, Body: body}
}

func mustAppend(t *testing.T, s *Store, m *Message) *Message {
	t.Helper()
	if _, err := s.Append(context.Background(), m); err != nil {
		t.Fatalf("append %+v: %v", m, err)
	}
	return m
}

func TestAppendAndGet(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		before := time.Now().Add(-time.Second)
		m := &Message{Kind: KindChat, FromID: 1, ToID: 2, FromResource: "gajim", OriginID: "o-1",
			Body: "Привет, <b>мир</b>", Payload: `<request xmlns="urn:xmpp:receipts"/>`, Lang: "ru-RU"}
		newContact, err := s.Append(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if !newContact {
			t.Errorf("first message of a pair: newContact = false, want true")
		}
		if m.ID == 0 || m.CreatedAt.Before(before) {
			t.Fatalf("got id %d created %v, want assigned", m.ID, m.CreatedAt)
		}
		got, err := s.Get(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Body != m.Body || got.Payload != m.Payload || got.FromID != 1 || got.ToID != 2 || got.ChatID != 0 ||
			got.FromResource != "gajim" || got.OriginID != "o-1" || got.Lang != "ru-RU" || got.Kind != KindChat || got.Deleted || got.EditedAt != nil ||
			!got.CreatedAt.Equal(m.CreatedAt) {
			t.Errorf("got %+v, want %+v", got, m)
		}
		var lo, hi int64
		if err := db.QueryRowx(db.Rebind(`SELECT pair_lo, pair_hi FROM messages WHERE id = ?`), m.ID).Scan(&lo, &hi); err != nil {
			t.Fatal(err)
		}
		if lo != 1 || hi != 2 {
			t.Errorf("pair = (%d, %d), want (1, 2)", lo, hi)
		}

		// The reverse direction is the same pair: not a new contact.
		m2 := personal(2, 1, "ответ")
		if newContact, err := s.Append(ctx, m2); err != nil || newContact {
			t.Errorf("reply: newContact %v err %v, want false nil", newContact, err)
		}
		if m2.ID <= m.ID {
			t.Errorf("ids not monotonic: %d then %d", m.ID, m2.ID)
		}
		if got, err := s.Get(ctx, m2.ID); err != nil || got.Lang != "" {
			t.Errorf("message without a language: got %q (%v), want \"\"", got.Lang, err)
		}
		var n int
		if err := db.Get(&n, `SELECT COUNT(*) FROM personal_contacts`); err != nil || n != 2 {
			t.Errorf("personal_contacts rows = %d (%v), want 2", n, err)
		}
		var pairs []struct {
			U int64 `db:"user_id"`
			C int64 `db:"contact_id"`
		}
		if err := db.Select(&pairs, `SELECT user_id, contact_id FROM personal_contacts ORDER BY user_id`); err != nil {
			t.Fatal(err)
		}
		if len(pairs) != 2 || pairs[0].U != 1 || pairs[0].C != 2 || pairs[1].U != 2 || pairs[1].C != 1 {
			t.Errorf("personal_contacts = %+v, want both directions", pairs)
		}

		// Chat messages carry no pair and make no contacts.
		c := mustAppend(t, s, &Message{Kind: KindGroupchat, FromID: 1, ChatID: 7, Body: "всем"})
		sys := mustAppend(t, s, &Message{Kind: KindSystem, ChatID: 7, Body: "Иван вошёл в чат"})
		got, err = s.Get(ctx, sys.ID)
		if err != nil || got.FromID != 0 || got.ChatID != 7 || got.Kind != KindSystem {
			t.Errorf("system message: got %+v %v", got, err)
		}
		if c.ID >= sys.ID {
			t.Errorf("ids not monotonic")
		}
		if _, err := s.Get(ctx, sys.ID+100); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get unknown: err %v, want ErrNotFound", err)
		}
	})
}

func TestAppendInvalid(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		s := NewStore(db)
		bad := []*Message{
			{Kind: KindChat, FromID: 1},
			{Kind: KindChat, FromID: 1, ToID: 2, ChatID: 3},
			{Kind: KindGroupchat, FromID: 1},
			{Kind: KindSystem},
			{Kind: "weird", FromID: 1, ToID: 2},
			{Kind: KindChat, FromID: 1, ToID: 2, Body: string(make([]byte, MaxBody+1))},
			{Kind: KindChat, FromID: 1, ToID: 2, Body: "x", Lang: string(make([]byte, MaxLang+1))},
		}
		for i, m := range bad {
			if _, err := s.Append(context.Background(), m); !errors.Is(err, ErrInvalid) {
				t.Errorf("%d: err %v, want ErrInvalid", i, err)
			}
		}
		var n int
		if err := db.Get(&n, `SELECT COUNT(*) FROM messages`); err != nil || n != 0 {
			t.Errorf("messages stored = %d (%v), want 0", n, err)
		}
	})
}

func TestAppendConcurrent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		s := NewStoreOptions(db, Options{MaxBatch: 7})
		const workers, each = 8, 25
		var wg sync.WaitGroup
		ids := make(chan int64, workers*each)
		errs := make(chan error, workers*each)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					m := personal(int64(w+1), int64(w+100), fmt.Sprintf("w%d m%d", w, i))
					if i%2 == 1 {
						m.Lang = fmt.Sprintf("x-w%d", w)
					}
					if _, err := s.Append(context.Background(), m); err != nil {
						errs <- err
						return
					}
					ids <- m.ID
				}
			}()
		}
		wg.Wait()
		close(ids)
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		seen := map[int64]bool{}
		for id := range ids {
			if seen[id] || id == 0 {
				t.Fatalf("id %d assigned twice or zero", id)
			}
			seen[id] = true
			m, err := s.Get(context.Background(), id)
			if err != nil {
				t.Fatalf("acked id %d not stored: %v", id, err)
			}
			// The batch paths keep each message's language.
			var w, i int
			fmt.Sscanf(m.Body, "w%d m%d", &w, &i)
			want := ""
			if i%2 == 1 {
				want = fmt.Sprintf("x-w%d", w)
			}
			if m.Lang != want {
				t.Errorf("message %q: lang %q, want %q", m.Body, m.Lang, want)
			}
		}
		var n int
		if err := db.Get(&n, `SELECT COUNT(*) FROM messages`); err != nil || n != workers*each {
			t.Errorf("stored %d (%v), want %d", n, err, workers*each)
		}
	})
}

func TestAppendCanceledContextStillStores(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		s := NewStore(db)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		m := personal(1, 2, "x")
		if _, err := s.Append(ctx, m); err != nil {
			t.Fatalf("append with canceled ctx: %v", err)
		}
		if _, err := s.Get(context.Background(), m.ID); err != nil {
			t.Fatal(err)
		}
	})
}

func TestUndeliveredAndMark(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		a := mustAppend(t, s, personal(1, 2, "a"))
		mustAppend(t, s, personal(2, 1, "to someone else"))
		mustAppend(t, s, &Message{Kind: KindGroupchat, FromID: 1, ChatID: 9, Body: "chat"})
		b := mustAppend(t, s, personal(3, 2, "b"))
		del := mustAppend(t, s, personal(3, 2, "retracted"))
		if _, err := db.Exec(db.Rebind(`UPDATE messages SET deleted = TRUE WHERE id = ?`), del.ID); err != nil {
			t.Fatal(err)
		}
		c := mustAppend(t, s, personal(1, 2, "c"))

		got, err := s.Undelivered(ctx, 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int64{a.ID, b.ID, c.ID}; !sameIDs(got, want) {
			t.Fatalf("undelivered = %v, want %v", ids(got), want)
		}
		if got, _ := s.Undelivered(ctx, 2, 2); !sameIDs(got, []int64{a.ID, b.ID}) {
			t.Errorf("limit 2: got %v", ids(got))
		}
		if err := s.MarkDelivered(ctx, 2, b.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Undelivered(ctx, 2, 0); !sameIDs(got, []int64{c.ID}) {
			t.Errorf("after mark: got %v, want [%d]", ids(got), c.ID)
		}
		// Monotonic: a lower mark changes nothing.
		if err := s.MarkDelivered(ctx, 2, a.ID); err != nil {
			t.Fatal(err)
		}
		if mark, _ := s.DeliveryMark(ctx, 2); mark != b.ID {
			t.Errorf("mark = %d, want %d", mark, b.ID)
		}
		if err := s.MarkDelivered(ctx, 2, c.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Undelivered(ctx, 2, 0); len(got) != 0 {
			t.Errorf("all delivered: got %v", ids(got))
		}
	})
}

func ids(ms []Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func sameIDs(ms []Message, want []int64) bool {
	got := ids(ms)
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestAppendConcurrentNewContactOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		s := NewStore(db)
		const n = 40
		var wg sync.WaitGroup
		var mu sync.Mutex
		news := 0
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				from, to := int64(5), int64(6)
				if i%2 == 1 {
					from, to = 6, 5
				}
				nc, err := s.Append(context.Background(), personal(from, to, "hi"))
				if err != nil {
					t.Error(err)
				}
				if nc {
					mu.Lock()
					news++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if news != 1 {
			t.Errorf("newContact reported %d times, want 1", news)
		}
	})
}
