package mam

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

func TestRetentionJob(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStoreOptions(db, Options{Retention: 24 * time.Hour, RetentionBatch: 3, RetentionInterval: time.Hour})
		old := time.Now().Add(-48 * time.Hour)
		for i := 0; i < 8; i++ {
			m := personal(1, 2, "старое сообщение")
			m.CreatedAt = old.Add(time.Duration(i) * time.Minute)
			mustAppend(t, s, m)
		}
		fresh := mustAppend(t, s, personal(1, 2, "свежее сообщение"))

		r := s.Retention(nil)
		errc := make(chan error, 1)
		go func() { errc <- r.Serve() }()
		deadline := time.Now().Add(5 * time.Second)
		for {
			var n int
			if err := db.Get(&n, `SELECT COUNT(*) FROM messages`); err != nil {
				t.Fatal(err)
			}
			if n == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("retention left %d messages, want 1", n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := r.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, ErrRetentionClosed) {
			t.Errorf("Serve = %v, want ErrRetentionClosed", err)
		}
		if _, err := s.Get(ctx, fresh.ID); err != nil {
			t.Errorf("fresh message gone: %v", err)
		}
		hits, err := s.Search(ctx, 2, "сообщение", SearchOptions{})
		if err != nil || len(hits) != 1 || hits[0].ID != fresh.ID {
			t.Errorf("search after retention = %+v %v", hits, err)
		}
		if !s.pg {
			var n int
			if err := db.Get(&n, `SELECT COUNT(*) FROM messages_fts`); err != nil || n != 1 {
				t.Errorf("fts rows = %d %v, want 1", n, err)
			}
		}
	})
}

func TestRetentionOff(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		s := NewStore(db)
		m := personal(1, 2, "x")
		m.CreatedAt = time.Now().Add(-10 * 365 * 24 * time.Hour)
		mustAppend(t, s, m)
		r := s.Retention(nil)
		go r.Serve()
		time.Sleep(50 * time.Millisecond)
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(context.Background(), m.ID); err != nil {
			t.Errorf("retention 0 deleted a message: %v", err)
		}
	})
}

func TestOptimizeGathersStatistics(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		s := NewStore(db)
		for i := 0; i < 50; i++ {
			mustAppend(t, s, personal(int64(i%5+1), 9, "x"))
		}
		if err := s.Optimize(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s.pg {
			return // autovacuum's job
		}
		var n int
		if err := db.Get(&n, `SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'messages'`); err != nil || n == 0 {
			t.Errorf("sqlite_stat1 rows for messages = %d %v, want some", n, err)
		}
	})
}
