package mam

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Query limits.
const (
	DefaultLimit = 50
	MaxLimit     = 500
	MaxIDs       = 100 // ids in one Query.IDs filter
)

// Query selects messages the viewer may read.
//
// Scope: ChatID != 0 is that chat's history (With then filters the author);
// otherwise With != 0 is the personal conversation of Viewer with With;
// otherwise the viewer's whole personal archive (messages sent or received
// outside chats).
//
// Filters: Start/End (inclusive, on CreatedAt), BeforeID/AfterID (exclusive
// id bounds), IDs, and Text (full-text: every word, stemmed).
//
// Paging (XEP-0059 over the id order): a page holds at most Limit messages
// (DefaultLimit when 0, at most MaxLimit), always oldest first. Without
// Reverse it is the oldest Limit messages of the range (use AfterID = the
// previous page's Last to go forward); with Reverse the newest (use BeforeID
// = the previous page's First to go back). Complete tells that the page
// reaches the end of the range in the paging direction.
type Query struct {
	Viewer   int64
	With     int64
	ChatID   int64
	Start    time.Time
	End      time.Time
	BeforeID int64
	AfterID  int64
	IDs      []int64
	Text     string
	Limit    int
	Reverse  bool

	// MAM preferences (personal archive only): other parties to leave
	// out, and when non-nil the only ones to show.
	exclude, only []int64
	// MAM on a room: with = room@service/nick (the author's nick).
	nick string
}

// Page is one page of a Query.
type Page struct {
	Messages    []Message // oldest first
	Complete    bool
	First, Last int64 // ids of the first and last message; 0 when empty
}

type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) sql() string { return strings.Join(w.conds, " AND ") }

// scope adds the Query's scope conditions and returns the full-text meta
// terms matching it: all must match, and at least one of any (when given).
func (q *Query) scope(w *where) (all, any []string) {
	switch {
	case q.ChatID != 0:
		w.add(`m.chat_id = ?`, q.ChatID)
		if q.With != 0 {
			w.add(`m.from_id = ?`, q.With)
		}
		return []string{chatTerm(q.ChatID)}, nil
	case q.With != 0:
		w.add(`m.pair_lo = ? AND m.pair_hi = ?`, min(q.Viewer, q.With), max(q.Viewer, q.With))
		if q.With == q.Viewer {
			return []string{userTerm(q.Viewer)}, nil
		}
		return []string{userTerm(q.Viewer), userTerm(q.With)}, nil
	default:
		w.add(`m.chat_id IS NULL AND (m.from_id = ? OR m.to_id = ?)`, q.Viewer, q.Viewer)
		return []string{userTerm(q.Viewer)}, nil
	}
}

// Query returns one page of the messages selected by q.
func (s *Store) Query(ctx context.Context, q Query) (*Page, error) {
	if err := s.Settle(ctx); err != nil {
		return nil, err
	}
	if q.Viewer == 0 {
		return nil, fmt.Errorf("%w: query without a viewer", ErrInvalid)
	}
	if len(q.IDs) > MaxIDs {
		return nil, fmt.Errorf("%w: more than %d ids", ErrInvalid, MaxIDs)
	}
	if strings.TrimSpace(q.Text) != "" {
		if err := s.ftsReady(ctx); err != nil {
			return nil, err
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	w, none, err := s.build(ctx, &q)
	if err != nil {
		return nil, err
	}
	if none {
		return &Page{Complete: true}, nil
	}

	order := "ASC"
	if q.Reverse {
		order = "DESC"
	}
	var rows []msgRow
	err = s.selectMaybeFTS(ctx, &rows, q.Text != "", `SELECT `+msgColumns+` FROM messages m WHERE `+w.sql()+
		` ORDER BY m.id `+order+` LIMIT ?`, append(w.args, limit+1)...)
	if err != nil {
		return nil, fmt.Errorf("mam: query for %d: %w", q.Viewer, err)
	}
	p := &Page{Complete: len(rows) <= limit}
	if len(rows) > limit {
		rows = rows[:limit]
	}
	p.Messages = messages(rows)
	if q.Reverse {
		slices.Reverse(p.Messages)
	}
	if n := len(p.Messages); n > 0 {
		p.First, p.Last = p.Messages[0].ID, p.Messages[n-1].ID
	}
	return p, nil
}

// build returns the WHERE conditions of q; none=true when q can match
// nothing.
func (s *Store) build(ctx context.Context, q *Query) (w where, none bool, err error) {
	all, any := q.scope(&w)
	if q.ChatID != 0 {
		// Bound the scan of a chat by the viewer's membership windows:
		// nothing for a non-member, and a hide_history member's scan
		// starts at their first window. The access rule below still
		// decides each message.
		var b struct {
			N    int           `db:"n"`
			Lo   sql.NullInt64 `db:"lo"`
			Hi   sql.NullInt64 `db:"hi"`
			Open int           `db:"open"`
		}
		if err := s.db.GetContext(ctx, &b, s.db.Rebind(`SELECT COUNT(*) AS n, MIN(from_id) AS lo, MAX(to_id) AS hi,
			COALESCE(SUM(CASE WHEN to_id IS NULL THEN 1 ELSE 0 END), 0) AS open
			FROM chat_periods WHERE chat_id = ? AND user_id = ?`), q.ChatID, q.Viewer); err != nil {
			return w, false, fmt.Errorf("mam: windows of %d in %d: %w", q.Viewer, q.ChatID, err)
		}
		if b.N == 0 {
			return w, true, nil
		}
		w.add(`m.id >= ?`, b.Lo.Int64)
		if b.Open == 0 && b.Hi.Valid {
			w.add(`m.id <= ?`, b.Hi.Int64)
		}
	}
	if !q.Start.IsZero() {
		w.add(`m.created_at >= ?`, q.Start.UnixMicro())
	}
	if !q.End.IsZero() {
		w.add(`m.created_at <= ?`, q.End.UnixMicro())
	}
	if q.BeforeID != 0 {
		w.add(`m.id < ?`, q.BeforeID)
	}
	if q.AfterID != 0 {
		w.add(`m.id > ?`, q.AfterID)
	}
	if len(q.IDs) > 0 {
		w.add(`m.id IN (?`+strings.Repeat(", ?", len(q.IDs)-1)+`)`, anys(q.IDs)...)
	}
	if strings.TrimSpace(q.Text) != "" {
		words := textTerms(q.Text, maxQueryTerms)
		if len(words) == 0 {
			return w, true, nil
		}
		match := s.ftsQuery(append(words, all...), any)
		if s.pg {
			w.add(`m.fts @@ CAST(? AS tsquery)`, match)
		} else {
			w.add(`m.id IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)`, match)
		}
	}
	cond, args := readable(q.Viewer)
	w.add(cond, args...)

	if q.nick != "" {
		w.add(`m.from_resource = ?`, q.nick)
	}
	if len(q.exclude) > 0 {
		in := `(?` + strings.Repeat(", ?", len(q.exclude)-1) + `)`
		w.add(`NOT (COALESCE(m.from_id, 0) IN `+in+` OR COALESCE(m.to_id, 0) IN `+in+`)`,
			append(anys(q.exclude), anys(q.exclude)...)...)
	}
	if q.only != nil {
		if len(q.only) == 0 {
			return w, true, nil
		}
		in := `(?` + strings.Repeat(", ?", len(q.only)-1) + `)`
		w.add(`(COALESCE(m.from_id, 0) IN `+in+` OR COALESCE(m.to_id, 0) IN `+in+`)`,
			append(anys(q.only), anys(q.only)...)...)
	}
	return w, false, nil
}

// Count returns how many messages q selects (ignoring Limit).
func (s *Store) Count(ctx context.Context, q Query) (int64, error) {
	if err := s.Settle(ctx); err != nil {
		return 0, err
	}
	if q.Viewer == 0 {
		return 0, fmt.Errorf("%w: query without a viewer", ErrInvalid)
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	w, none, err := s.build(ctx, &q)
	if err != nil {
		return 0, err
	}
	if none {
		return 0, nil
	}
	var n int64
	if err := s.db.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM messages m WHERE `+w.sql()), w.args...); err != nil {
		return 0, fmt.Errorf("mam: count for %d: %w", q.Viewer, err)
	}
	return n, nil
}

func anys(ids []int64) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}
