package mam

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// TestDeferredFTS checks the full-text index written behind the archive
// (SQLite): a query never misses a stored message, an edit made before the
// indexer runs is what gets indexed, the indexer runs on its own, and a new
// store indexes what an earlier one left pending.
func TestDeferredFTS(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		search := func(s *Store, text string) []int64 {
			t.Helper()
			hits, err := s.Search(ctx, 1, text, SearchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, h := range hits {
				ids = append(ids, h.ID)
			}
			return ids
		}

		// Found at once, before the indexer's delay.
		m := mustAppend(t, s, personal(1, 2, "квартальный отчёт готов"))
		if ids := search(s, "отчёт"); len(ids) != 1 || ids[0] != m.ID {
			t.Fatalf("search right after append: %v, want [%d]", ids, m.ID)
		}
		// MAM withtext too.
		e := mustAppend(t, s, personal(1, 2, "черновик бюджета"))
		page, err := s.Query(ctx, Query{Viewer: 1, Text: "бюджет"})
		if err != nil || len(page.Messages) != 1 || page.Messages[0].ID != e.ID {
			t.Fatalf("withtext right after append: %+v %v", page, err)
		}

		// Edited before it was indexed: the new text is what is found.
		x := mustAppend(t, s, personal(1, 2, "встреча во вторник"))
		if _, err := s.Edit(ctx, 1, x.ID, "встреча в среду"); err != nil {
			t.Fatal(err)
		}
		if ids := search(s, "вторник"); len(ids) != 0 {
			t.Errorf("old text of an edited message found: %v", ids)
		}
		if ids := search(s, "среду"); len(ids) != 1 || ids[0] != x.ID {
			t.Errorf("new text of an edited message: %v, want [%d]", ids, x.ID)
		}

		if s.pg {
			return
		}
		through := func() int64 {
			var n int64
			if err := db.Get(&n, `SELECT indexed_through FROM fts_state`); err != nil {
				t.Fatal(err)
			}
			return n
		}
		// The indexer runs on its own after ftsDelay.
		y := mustAppend(t, s, personal(1, 2, "пятничный релиз"))
		deadline := time.Now().Add(5 * time.Second)
		for through() < y.ID {
			if time.Now().After(deadline) {
				t.Fatalf("indexer did not run: indexed through %d, want %d", through(), y.ID)
			}
			time.Sleep(20 * time.Millisecond)
		}

		// Left pending by a store that went away (its timer not yet
		// fired): a new store's first query indexes it.
		z := mustAppend(t, s, personal(1, 2, "забытое напоминание"))
		s2 := NewStore(db)
		if ids := search(s2, "напоминание"); len(ids) != 1 || ids[0] != z.ID {
			t.Errorf("search by a new store: %v, want [%d]", ids, z.ID)
		}
	})
}
