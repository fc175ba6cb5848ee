package mam

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

func TestBulk(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		first := mustAppend(t, s, personal(1, 2, "до импорта"))
		base := time.Now().Add(-time.Hour)
		msgs := make([]Message, 2500)
		for i := range msgs {
			msgs[i] = Message{Kind: KindChat, FromID: 1, ToID: 2, Body: fmt.Sprintf("импортированное сообщение %d", i), CreatedAt: base}
			if i%3 == 0 {
				msgs[i] = Message{Kind: KindGroupchat, FromID: 1, ChatID: 4, Body: "в чате", CreatedAt: base}
			}
		}
		if err := s.Bulk(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		if msgs[0].ID <= first.ID || msgs[2499].ID != msgs[0].ID+2499 {
			t.Errorf("ids %d..%d after %d", msgs[0].ID, msgs[2499].ID, first.ID)
		}
		after := mustAppend(t, s, personal(2, 1, "после импорта"))
		if after.ID <= msgs[2499].ID {
			t.Errorf("append after bulk got id %d <= %d", after.ID, msgs[2499].ID)
		}
		hits, err := s.Search(ctx, 2, "импортированные", SearchOptions{Limit: 100})
		if err != nil || len(hits) != 100 {
			t.Errorf("search bulk: %d hits %v", len(hits), err)
		}
		n, err := s.Count(ctx, Query{Viewer: 2, With: 1})
		if err != nil || n != 1+1666+1 {
			t.Errorf("count = %d %v", n, err)
		}
		bad := []Message{{Kind: "x"}}
		if err := s.Bulk(ctx, bad); err == nil {
			t.Error("bulk of an invalid message succeeded")
		}
	})
}
