package mam

import (
	"context"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

func TestRecent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		mustAppend(t, s, personal(1, 2, "a"))
		last12 := mustAppend(t, s, personal(2, 1, "b"))
		last13 := mustAppend(t, s, personal(1, 3, "c"))
		mustAppend(t, s, personal(2, 3, "not 1's"))
		mustAppend(t, s, &Message{Kind: KindHeadline, ToID: 1, Body: "a notification is no conversation"})
		// Chat 10: 1 is a member from the start; chat 11: 1 left after
		// the first message; chat 12: 1 joined after the only message.
		addPeriod(t, db, 10, 1, 0, 0)
		old := mustAppend(t, s, chatMsg(11, 2, "before leaving"))
		addPeriod(t, db, 11, 1, 0, old.ID)
		mustAppend(t, s, chatMsg(12, 2, "before joining"))
		mustAppend(t, s, chatMsg(10, 2, "first"))
		last10 := mustAppend(t, s, &Message{Kind: KindSystem, ChatID: 10, Body: "newest"})
		addPeriod(t, db, 12, 1, last10.ID+1, 0)
		mustAppend(t, s, chatMsg(11, 2, "after leaving"))

		got, err := s.Recent(ctx, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int64{last10.ID, last13.ID, last12.ID}; !sameIDs(got, want) {
			t.Fatalf("got %v, want %v", ids(got), want)
		}
		if got, _ := s.Recent(ctx, 1, 2); !sameIDs(got, []int64{last10.ID, last13.ID}) {
			t.Fatalf("limit 2: got %v", ids(got))
		}
		if got, _ := s.Recent(ctx, 4, 0); len(got) != 0 {
			t.Fatalf("a user without conversations: got %v", ids(got))
		}
		if _, err := s.Recent(ctx, 0, 0); err == nil {
			t.Fatal("no viewer: got no error")
		}
	})
}
