package mam

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/jmoiron/sqlx"
)

// On SQLite the full-text index is written behind the archive. An append
// commits the message alone; its terms go into messages_fts ftsDelay later,
// with those of every message appended meanwhile, in one transaction. A
// full-text query (search, MAM withtext) first indexes whatever is pending,
// so it never misses a stored message. Per commit FTS5 writes a new segment
// and its structure record: with the small commits of a busy messenger that
// was a third of the archive's pages written and a sixth of the server's
// CPU. fts_state.indexed_through records how far the index reaches, so
// messages stored before a crash are indexed after it. PostgreSQL keeps
// its tsvector in the message row, written with it.

const insertFTSSQL = `INSERT INTO messages_fts (rowid, terms) VALUES (?, ?)`

const (
	// ftsDelay is how long after an append its terms are indexed.
	ftsDelay = 500 * time.Millisecond
	// ftsBatch is how many messages one indexing transaction takes.
	ftsBatch = 500
	// ftsYieldEvery is how many messages the indexer indexes between
	// yields of the processor.
	ftsYieldEvery = 8
)

// ftsAppended notes committed appends whose terms are not indexed yet and
// schedules the indexer.
func (s *Store) ftsAppended() {
	s.ftsDirty.Store(true)
	if s.ftsScheduled.CompareAndSwap(false, true) {
		time.AfterFunc(ftsDelay, func() {
			s.ftsScheduled.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
			defer cancel()
			// On failure (the database closing) the messages stay
			// pending: the next full-text query or append indexes them.
			s.indexFTS(ctx)
		})
	}
}

// ftsReady makes the full-text index complete before a query reads it.
func (s *Store) ftsReady(ctx context.Context) error {
	if s.pg || !s.ftsDirty.Load() {
		return nil
	}
	if err := s.indexFTS(ctx); err != nil {
		return fmt.Errorf("mam: full-text index: %w", err)
	}
	return nil
}

// indexFTS indexes every pending message (SQLite).
func (s *Store) indexFTS(ctx context.Context) error {
	s.ftsMu.Lock()
	defer s.ftsMu.Unlock()
	for {
		// Cleared before reading: an append committed after this
		// point sets it again.
		s.ftsDirty.Store(false)
		n, err := s.indexFTSBatch(ctx)
		if err != nil {
			s.ftsDirty.Store(true)
			return err
		}
		if n < ftsBatch {
			return nil
		}
	}
}

// indexFTSBatch indexes up to ftsBatch pending messages in one
// transaction and returns how many it took. Reading the messages inside
// the write transaction orders it with edits (reindex), which leave
// pending messages to the indexer.
func (s *Store) indexFTSBatch(ctx context.Context) (int, error) {
	n := 0
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		var through int64
		if err := tx.GetContext(ctx, &through, `SELECT indexed_through FROM fts_state`); err != nil {
			return err
		}
		var rows []msgRow
		if err := tx.SelectContext(ctx, &rows, `SELECT `+msgColumns+` FROM messages m WHERE m.id > ? ORDER BY m.id LIMIT ?`,
			through, ftsBatch); err != nil {
			return err
		}
		if n = len(rows); n == 0 {
			return nil
		}
		st, err := tx.PreparexContext(ctx, insertFTSSQL)
		if err != nil {
			return err
		}
		defer st.Close()
		for i := range rows {
			if i%ftsYieldEvery == ftsYieldEvery-1 {
				// Stemming and FTS5 are CPU work in this process
				// (pure-Go SQLite): let the goroutines that deliver run
				// in between rather than behind a long slice of it.
				runtime.Gosched()
			}
			m := rows[i].message()
			if terms := docTerms(&m); terms != "" {
				if _, err := st.ExecContext(ctx, m.ID, terms); err != nil {
					return err
				}
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE fts_state SET indexed_through = ?`, rows[n-1].ID)
		return err
	})
	return n, err
}

// ftsPending reports whether message id is not indexed yet (SQLite, in tx).
func ftsPending(ctx context.Context, tx *sqlx.Tx, id int64) (bool, error) {
	var through int64
	err := tx.GetContext(ctx, &through, `SELECT indexed_through FROM fts_state`)
	return id > through, err
}
