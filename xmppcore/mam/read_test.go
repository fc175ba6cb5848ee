package mam

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

func TestMarkReadPersonal(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		a := mustAppend(t, s, personal(2, 1, "a"))
		b := mustAppend(t, s, personal(2, 1, "b"))
		mine := mustAppend(t, s, personal(1, 2, "mine"))
		c := mustAppend(t, s, personal(2, 1, "c"))
		other := mustAppend(t, s, personal(2, 3, "not 1's"))
		b.OriginID = "client-b"
		if _, err := db.Exec(db.Rebind(`UPDATE messages SET origin_id = ? WHERE id = ?`), "client-b", b.ID); err != nil {
			t.Fatal(err)
		}

		unread := func(want int) {
			t.Helper()
			cs, err := s.Conversations(ctx, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != 1 || cs[0].With != 2 || cs[0].Last.ID != c.ID {
				t.Fatalf("conversations: got %+v", cs)
			}
			if cs[0].Unread != want {
				t.Fatalf("unread: got %d, want %d", cs[0].Unread, want)
			}
			if n, err := s.UnreadPersonal(ctx, 1); err != nil || n != want {
				t.Fatalf("UnreadPersonal: got %d, %v, want %d", n, err, want)
			}
		}
		unread(3)
		// By a client's id (XEP-0333 names the message as the client knows it).
		mark, m, moved, err := s.MarkRead(ctx, 1, Ref{Client: "client-b", With: 2})
		if err != nil || !moved || mark.UpTo != b.ID || m.ID != b.ID {
			t.Fatalf("mark by client id: got %+v, %v, %v", mark, moved, err)
		}
		unread(1)
		// Never backwards.
		mark, _, moved, err = s.MarkRead(ctx, 1, Ref{ID: a.ID, With: 2})
		if err != nil || moved || mark.UpTo != b.ID {
			t.Fatalf("backwards: got %+v, moved %v, %v; want the mark to stay at %d", mark, moved, err, b.ID)
		}
		unread(1)
		// Up to one's own message counts as read too.
		if _, _, moved, err = s.MarkRead(ctx, 1, Ref{ID: mine.ID, With: 2}); err != nil || !moved {
			t.Fatalf("own message: moved %v, %v", moved, err)
		}
		if _, _, _, err = s.MarkRead(ctx, 1, Ref{ID: c.ID, With: 2}); err != nil {
			t.Fatal(err)
		}
		unread(0)
		if got, err := s.ReadMarkOf(ctx, 1, 2, 0); err != nil || got != c.ID {
			t.Fatalf("ReadMarkOf: got %d, %v, want %d", got, err, c.ID)
		}
		// The colleague sees how far 1 has read.
		cs, err := s.Conversations(ctx, 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range cs {
			if x.With == 1 && x.PeerRead != c.ID {
				t.Fatalf("peer read: got %d, want %d", x.PeerRead, c.ID)
			}
		}

		for _, tc := range []struct {
			name string
			ref  Ref
			want error
		}{
			{"another conversation's message", Ref{ID: other.ID, With: 2}, ErrNotFound},
			{"a message 1 cannot read", Ref{ID: other.ID, With: 3}, ErrNotFound},
			{"no such message", Ref{ID: c.ID + 100, With: 2}, ErrNotFound},
			{"no conversation", Ref{ID: c.ID}, ErrInvalid},
			{"two conversations", Ref{ID: c.ID, With: 2, ChatID: 5}, ErrInvalid},
			{"no message", Ref{With: 2}, ErrInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, _, _, err := s.MarkRead(ctx, 1, tc.ref); !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
			})
		}
		if got, _ := s.ReadMarkOf(ctx, 1, 2, 0); got != c.ID {
			t.Fatalf("refused marks changed the mark: got %d, want %d", got, c.ID)
		}
	})
}

func TestMarkReadChatAndSeenBy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		// Chat 10: 1, 2 and 3 members from the start; 4 joins later
		// (hide_history); 5 left.
		for _, u := range []int64{1, 2, 3} {
			addPeriod(t, db, 10, u, 0, 0)
		}
		m1 := mustAppend(t, s, chatMsg(10, 1, "hello"))
		addPeriod(t, db, 10, 5, 0, m1.ID)
		sys := mustAppend(t, s, &Message{Kind: KindSystem, ChatID: 10, Body: "4 joined"})
		addPeriod(t, db, 10, 4, sys.ID, 0)
		m2 := mustAppend(t, s, chatMsg(10, 2, "hi"))
		m3 := mustAppend(t, s, chatMsg(10, 1, "how are you"))

		unreadOf := func(user int64) int {
			t.Helper()
			cs, err := s.Conversations(ctx, user, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				if c.ChatID == 10 {
					return c.Unread
				}
			}
			t.Fatalf("user %d: chat 10 not listed in %+v", user, cs)
			return 0
		}
		if got := unreadOf(3); got != 3 {
			t.Fatalf("3's unread: got %d, want 3", got)
		}
		if got := unreadOf(4); got != 2 {
			t.Fatalf("4's unread (m2, m3; joined after m1): got %d, want 2", got)
		}
		if got := unreadOf(1); got != 1 {
			t.Fatalf("1's unread (own messages do not count): got %d, want 1", got)
		}

		seen := func(id int64, want []int64) {
			t.Helper()
			got, err := s.SeenBy(ctx, 1, 10, id)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seen by of %d: got %v, want %v", id, got, want)
			}
		}
		seen(m1.ID, []int64{})
		if _, _, moved, err := s.MarkRead(ctx, 3, Ref{ID: m2.ID, ChatID: 10}); err != nil || !moved {
			t.Fatalf("3 reads m2: moved %v, %v", moved, err)
		}
		if _, _, _, err := s.MarkRead(ctx, 4, Ref{ID: m3.ID, ChatID: 10}); err != nil {
			t.Fatal(err)
		}
		// By the room's stanza-id as a Jabber client names it.
		if _, _, _, err := s.MarkRead(ctx, 2, Ref{Client: "m" + itoa(m3.ID), ChatID: 10}); err != nil {
			t.Fatal(err)
		}
		if got := unreadOf(3); got != 1 {
			t.Fatalf("3's unread after reading m2: got %d, want 1", got)
		}
		// m1: 3 and 2 read past it; 4 joined after it (cannot have seen it).
		seen(m1.ID, []int64{2, 3})
		seen(m3.ID, []int64{2, 4})
		// m2 is 2's: its author is not listed.
		seen(m2.ID, []int64{3, 4})
		marks, err := s.ChatReadMarks(ctx, 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[int64]int64{2: m3.ID, 3: m2.ID, 4: m3.ID}; !reflect.DeepEqual(marks, want) {
			t.Fatalf("chat read marks: got %v, want %v", marks, want)
		}

		if _, err := s.ChatReadMarks(ctx, 5, 10); !errors.Is(err, ErrNotFound) {
			t.Fatalf("read marks for a former member: got %v, want ErrNotFound", err)
		}
		if _, err := s.SeenBy(ctx, 4, 10, m1.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("seen by of a message 4 cannot read: got %v, want ErrNotFound", err)
		}
		if _, _, _, err := s.MarkRead(ctx, 4, Ref{ID: m1.ID, ChatID: 10}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("4 marks a message before joining: got %v, want ErrNotFound", err)
		}
		if _, _, _, err := s.MarkRead(ctx, 1, Ref{ID: m2.ID, ChatID: 11}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a message of another chat: got %v, want ErrNotFound", err)
		}
	})
}

// BenchmarkMarkRead: a reader marks a 2,000-message personal conversation
// read message by message (the browser's read on each new message).
func BenchmarkMarkRead(b *testing.B) {
	for _, backend := range dbtest.Backends(b) {
		b.Run(backend, func(b *testing.B) {
			s := NewStore(dbtest.Open(b, backend))
			ctx := context.Background()
			ids := make([]int64, 2000)
			for i := range ids {
				m := personal(2, 1, "сообщение")
				if _, err := s.Append(ctx, m); err != nil {
					b.Fatal(err)
				}
				ids[i] = m.ID
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, _, err := s.MarkRead(ctx, 1, Ref{ID: ids[i%len(ids)], With: 2}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConversations: the conversation list with unread counts of a
// user with 50 colleagues and 20 chats, 40 messages each.
func BenchmarkConversations(b *testing.B) {
	for _, backend := range dbtest.Backends(b) {
		b.Run(backend, func(b *testing.B) {
			db := dbtest.Open(b, backend)
			s := NewStore(db)
			ctx := context.Background()
			for i := 0; i < 40; i++ {
				for p := int64(2); p < 52; p++ {
					if _, err := s.Append(ctx, personal(p, 1, "лично")); err != nil {
						b.Fatal(err)
					}
				}
				for c := int64(100); c < 120; c++ {
					if _, err := s.Append(ctx, chatMsg(c, 2, "в чат")); err != nil {
						b.Fatal(err)
					}
				}
			}
			for c := int64(100); c < 120; c++ {
				if _, err := db.Exec(db.Rebind(`INSERT INTO chat_periods (chat_id, user_id, from_id) VALUES (?, 1, 0)`), c); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cs, err := s.Conversations(ctx, 1, 0)
				if err != nil || len(cs) != 70 {
					b.Fatalf("got %d conversations, %v", len(cs), err)
				}
			}
		})
	}
}

// BenchmarkUnreadLongChat: the conversation list of a member who has read
// a 20,000-message chat up to its last 5 messages: only those are counted
// (the chat index's range after the read mark), not the history.
func BenchmarkUnreadLongChat(b *testing.B) {
	for _, backend := range dbtest.Backends(b) {
		b.Run(backend, func(b *testing.B) {
			db := dbtest.Open(b, backend)
			s := NewStore(db)
			ctx := context.Background()
			if _, err := db.Exec(db.Rebind(`INSERT INTO chat_periods (chat_id, user_id, from_id) VALUES (100, 1, 0)`)); err != nil {
				b.Fatal(err)
			}
			ms := make([]Message, 20000)
			for i := range ms {
				ms[i] = *chatMsg(100, 2, "x")
			}
			if err := s.Bulk(ctx, ms); err != nil {
				b.Fatal(err)
			}
			if _, _, _, err := s.MarkRead(ctx, 1, Ref{ID: ms[len(ms)-6].ID, ChatID: 100}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cs, err := s.Conversations(ctx, 1, 0)
				if err != nil || len(cs) != 1 || cs[0].Unread != 5 {
					b.Fatalf("got %+v, %v", cs, err)
				}
			}
		})
	}
}
