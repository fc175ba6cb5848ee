package mam

import (
	"context"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// Every personal message gets its recipient's next sequence number, with
// no gap and no repeat, also when many are appended at once (group
// commit); other kinds get none.
func TestDeliverySequences(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		first := mustAppend(t, s, personal(1, 2, "first"))
		if first.Seq != 1 {
			t.Fatalf("first message to user 2: seq %d, want 1", first.Seq)
		}
		const senders, each = 8, 24
		var wg sync.WaitGroup
		errs := make(chan error, senders*each)
		for i := 0; i < senders; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				for k := 0; k < each; k++ {
					to := int64(2 + k%2) // users 2 and 3
					if _, err := s.Append(ctx, personal(int64(10+i), to, "x")); err != nil {
						errs <- err
					}
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		room := &Message{Kind: KindGroupchat, FromID: 1, ChatID: 7, Body: "room"}
		mustAppend(t, s, room)
		if room.Seq != 0 {
			t.Errorf("chat message: seq %d, want 0", room.Seq)
		}
		// A bulk load (imports) numbers on from there.
		bulk := []Message{*personal(5, 3, "old one"), *personal(5, 3, "old two")}
		if err := s.Bulk(ctx, bulk); err != nil {
			t.Fatal(err)
		}
		after := mustAppend(t, s, personal(6, 3, "after the import"))
		if after.Seq != senders*each/2+3 {
			t.Errorf("after a bulk load: seq %d, want %d", after.Seq, senders*each/2+3)
		}
		// Counters behind the archive (copied from SQLite by vestnik db
		// copy, where they live in memory) or missing: a store numbers on
		// after the newest message.
		if _, err := db.Exec(db.Rebind(`UPDATE deliveries SET top_seq = 0 WHERE user_id = ?`), 2); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(db.Rebind(`DELETE FROM deliveries WHERE user_id = ?`), 3); err != nil {
			t.Fatal(err)
		}
		fresh := NewStore(db)
		for user, want := range map[int64]int64{2: 2 + senders*each/2, 3: senders*each/2 + 4} {
			m := mustAppend(t, fresh, personal(9, user, "after a stale counter"))
			if m.Seq != want {
				t.Errorf("user %d after a stale counter: seq %d, want %d", user, m.Seq, want)
			}
		}
		for user, n := range map[int64]int64{2: 2 + senders*each/2, 3: senders*each/2 + 4} {
			msgs, err := s.UndeliveredAfter(ctx, user, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(msgs)) != n {
				t.Fatalf("user %d: %d messages, want %d", user, len(msgs), n)
			}
			for i, m := range msgs {
				if m.Seq != int64(i+1) {
					t.Fatalf("user %d: message %d (id %d) has seq %d, want %d (in id order, no gap)", user, i, m.ID, m.Seq, i+1)
				}
			}
		}
	})
}

// The mark moves by sequence, never down, and offline delivery reads
// the archive above it.
func TestMarks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		a := mustAppend(t, s, personal(1, 2, "a"))
		other := mustAppend(t, s, personal(2, 1, "to someone else"))
		b := mustAppend(t, s, personal(1, 2, "b"))
		c := mustAppend(t, s, personal(3, 2, "c"))
		if m, err := s.Mark(ctx, 2); err != nil || m != (Mark{}) {
			t.Fatalf("mark before any: got %+v, %v; want zero", m, err)
		}
		// Up to an archive id: the newest message to the user at or below it.
		m, err := s.MarkUpTo(ctx, 2, other.ID)
		if err != nil || m != (Mark{Seq: 1, ID: a.ID}) {
			t.Fatalf("mark up to %d: got %+v, %v; want {1 %d}", other.ID, m, err, a.ID)
		}
		if err := s.StoreMarks(ctx, map[int64]Mark{2: {Seq: 3, ID: c.ID}, 1: {Seq: 1, ID: other.ID}}); err != nil {
			t.Fatal(err)
		}
		// Never lowered.
		if err := s.StoreMarks(ctx, map[int64]Mark{2: {Seq: 2, ID: b.ID}}); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.Mark(ctx, 2); m != (Mark{Seq: 3, ID: c.ID}) {
			t.Errorf("mark of 2: got %+v, want {3 %d}", m, c.ID)
		}
		if got, _ := s.Undelivered(ctx, 2, 0); len(got) != 0 {
			t.Errorf("undelivered after the mark: got %v", ids(got))
		}
		d := mustAppend(t, s, personal(1, 2, "d"))
		if d.Seq != 4 {
			t.Errorf("after marks: seq %d, want 4 (the counter is not the mark)", d.Seq)
		}
		if got, _ := s.UndeliveredAfter(ctx, 2, c.ID, 0); !sameIDs(got, []int64{d.ID}) {
			t.Errorf("after %d: got %v, want [%d]", c.ID, ids(got), d.ID)
		}
	})
}
