package mam

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Search limits.
const (
	DefaultSearchLimit = 20
	MaxSearchLimit     = 100
	maxScopeChats      = 200  // chats named in the index query; beyond, SQL alone filters
	searchWindow       = 2000 // most recent matches ranked by one search
)

// SearchOptions narrow a Search. With and ChatID scope it as in Query; with
// neither, Search covers every message the viewer may read (personal and
// chats).
type SearchOptions struct {
	With     int64
	ChatID   int64
	BeforeID int64 // only messages older than this id
	Limit    int   // DefaultSearchLimit when 0, at most MaxSearchLimit
}

// Hit is one search result.
type Hit struct {
	Message
	// Snippet is the HTML-escaped excerpt with matching words in <mark>.
	Snippet string
	Rank    float64 // higher is better
}

// Search finds the messages the viewer may read that contain every word of
// text (Russian and English words match their other forms), best first
// (bm25 on SQLite, ts_rank on PostgreSQL; newer first among equals). Only
// the searchWindow most recent matches are ranked; BeforeID reaches older
// ones.
func (s *Store) Search(ctx context.Context, viewer int64, text string, opts SearchOptions) ([]Hit, error) {
	if err := s.Settle(ctx); err != nil {
		return nil, err
	}
	if viewer == 0 {
		return nil, fmt.Errorf("%w: search without a viewer", ErrInvalid)
	}
	words := textTerms(text, maxQueryTerms)
	if len(words) == 0 {
		return nil, nil
	}
	if err := s.ftsReady(ctx); err != nil {
		return nil, err
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	limit = min(limit, MaxSearchLimit)
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()

	var w where
	var all, scope []string
	if opts.ChatID != 0 || opts.With != 0 {
		q := Query{Viewer: viewer, With: opts.With, ChatID: opts.ChatID}
		all, scope = q.scope(&w)
	} else {
		var chats []int64
		err := s.db.SelectContext(ctx, &chats, s.db.Rebind(`SELECT DISTINCT chat_id FROM chat_periods WHERE user_id = ?`), viewer)
		if err != nil {
			return nil, fmt.Errorf("mam: search chats of %d: %w", viewer, err)
		}
		if len(chats) <= maxScopeChats {
			scope = []string{userTerm(viewer)}
			for _, c := range chats {
				scope = append(scope, chatTerm(c))
			}
		}
	}
	if opts.BeforeID != 0 {
		w.add(`m.id < ?`, opts.BeforeID)
	}
	cond, args := readable(viewer)
	w.add(cond, args...)
	match := s.ftsQuery(append(append([]string(nil), words...), all...), scope)

	// Rank the searchWindow most recent matches: ranking every match of
	// a common word in a big archive costs a scan of all of them, and in a
	// messenger recent messages are what people look for.
	var q string
	var qargs []any
	if s.pg {
		q = `SELECT ` + msgColumns + `, ts_rank(m.fts, CAST(? AS tsquery)) AS rank FROM (
				SELECT * FROM messages m WHERE m.fts @@ CAST(? AS tsquery) AND ` + w.sql() + `
				ORDER BY m.id DESC LIMIT ?) m
			ORDER BY rank DESC, m.id DESC LIMIT ?`
		qargs = append(append([]any{s.ftsQuery(words, nil), match}, w.args...), searchWindow)
	} else {
		before := ""
		if opts.BeforeID != 0 {
			before = ` AND rowid < ?`
		}
		q = `SELECT ` + msgColumns + `, -c.r AS rank FROM (
				SELECT rowid AS id, bm25(messages_fts) AS r FROM messages_fts
				WHERE messages_fts MATCH ?` + before + ` ORDER BY rowid DESC LIMIT ?) c
			JOIN messages m ON m.id = c.id
			WHERE ` + w.sql() + ` ORDER BY c.r, m.id DESC LIMIT ?`
		qargs = []any{match}
		if opts.BeforeID != 0 {
			qargs = append(qargs, opts.BeforeID)
		}
		qargs = append(append(qargs, searchWindow), w.args...)
	}
	var rows []struct {
		msgRow
		Rank float64 `db:"rank"`
	}
	err := s.selectMaybeFTS(ctx, &rows, true, q, append(qargs, limit)...)
	if err != nil {
		return nil, fmt.Errorf("mam: search for %d: %w", viewer, err)
	}
	hits := make([]Hit, len(rows))
	for i := range rows {
		hits[i] = Hit{Message: rows[i].message(), Rank: rows[i].Rank}
		hits[i].Snippet = snippet(hits[i].Body, words)
	}
	return hits, nil
}

// selectMaybeFTS runs a select; with fts on PostgreSQL it turns JIT off
// for it: the estimate of a big GIN match makes PostgreSQL compile the
// query, which costs more (10-20 ms) than running it. (Not in a transaction
// on SQLite: transactions there take the write lock at BEGIN.)
func (s *Store) selectMaybeFTS(ctx context.Context, dest any, fts bool, q string, args ...any) error {
	if !s.pg || !fts {
		return s.db.SelectContext(ctx, dest, s.db.Rebind(q), args...)
	}
	return s.withTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SET LOCAL jit = off`); err != nil {
			return err
		}
		return tx.SelectContext(ctx, dest, tx.Rebind(q), args...)
	})
}
