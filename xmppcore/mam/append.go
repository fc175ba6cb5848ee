package mam

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Appends use group commit: concurrent callers queue their messages; one of
// them (the leader) writes the queue in one transaction, up to
// Options.MaxBatch messages, and wakes each caller only after the commit.
// When the leader's own message is stored it hands leadership to the oldest
// waiting caller, so no caller works for others indefinitely. There is no
// background goroutine: an idle store holds nothing.

type appendReq struct {
	m          *Message
	id         int64
	created    int64
	newContact bool
	err        error
	finished   bool          // set by the leader before waking
	wake       chan struct{} // one send: finished, or promoted to leader
}

// Append stores m, assigning m.ID (the one monotonic archive id, also the
// MAM and stanza id) and m.CreatedAt (now, unless already set), and returns
// only after the message is committed. For a personal message it also
// records both directions of personal_contacts in the same transaction and
// reports newContact=true when the pair had never exchanged a message.
func (s *Store) Append(ctx context.Context, m *Message) (newContact bool, err error) {
	if err := validate(m); err != nil {
		return false, err
	}
	r := &appendReq{m: m, wake: make(chan struct{}, 1)}
	s.mu.Lock()
	s.queue = append(s.queue, r)
	if s.leading {
		s.mu.Unlock()
		<-r.wake
		if r.finished {
			return r.result()
		}
		s.mu.Lock() // promoted: lead the next batches
	} else {
		s.leading = true
	}
	for !r.finished {
		n := min(len(s.queue), s.opts.MaxBatch)
		batch := make([]*appendReq, n)
		copy(batch, s.queue)
		s.queue = s.queue[n:]
		if len(s.queue) == 0 {
			s.queue = nil
		}
		s.mu.Unlock()
		s.commitBatch(ctx, batch)
		for _, b := range batch {
			b.finished = true
			if b != r {
				b.wake <- struct{}{}
			}
		}
		s.mu.Lock()
	}
	if len(s.queue) > 0 {
		s.queue[0].wake <- struct{}{}
	} else {
		s.leading = false
	}
	s.mu.Unlock()
	return r.result()
}

func (r *appendReq) result() (bool, error) {
	if r.err != nil {
		return false, r.err
	}
	r.m.ID = r.id
	r.m.CreatedAt = time.UnixMicro(r.created).UTC()
	return r.newContact, nil
}

// commitBatch writes batch in one transaction. Should that fail, each
// message is retried in a transaction of its own, so one bad message cannot
// fail the others.
func (s *Store) commitBatch(ctx context.Context, batch []*appendReq) {
	// The batch carries other callers' messages: the leader's cancellation
	// must not abort it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultTimeout)
	defer cancel()
	if !s.pg {
		defer s.ftsAppended()
	}
	start := time.Now()
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		if s.pg && len(batch) > 1 {
			if err := s.insertBatchPG(ctx, tx, batch); err != nil {
				return err
			}
			return s.appended(ctx, tx, batch)
		}
		if !s.pg && len(batch) > 1 {
			if err := s.insertBatchSQLite(ctx, tx, batch); err != nil {
				return err
			}
			return s.appended(ctx, tx, batch)
		}
		for _, r := range batch {
			if err := s.insert(ctx, tx, r); err != nil {
				return err
			}
		}
		return s.appended(ctx, tx, batch)
	})
	if err == nil {
		if s.opts.OnCommit != nil {
			s.opts.OnCommit(time.Since(start), len(batch))
		}
		return
	}
	if len(batch) == 1 {
		batch[0].err = fmt.Errorf("mam: append: %w", err)
		return
	}
	for _, r := range batch {
		if err := s.withTx(ctx, func(tx *sqlx.Tx) error {
			if err := s.insert(ctx, tx, r); err != nil {
				return err
			}
			return s.appended(ctx, tx, []*appendReq{r})
		}); err != nil {
			r.err = fmt.Errorf("mam: append: %w", err)
		}
	}
}

// The statements of one append. The full-text terms of a message are
// written later on SQLite (ftsindex.go) and with the row on PostgreSQL.
const (
	insertMessageSQL = `INSERT INTO messages (created_at, kind, from_id, to_id, chat_id, pair_lo, pair_hi,
		from_resource, origin_id, body, payload, reply_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
	insertMessagePGSQL = `INSERT INTO messages (created_at, kind, from_id, to_id, chat_id, pair_lo, pair_hi,
		from_resource, origin_id, body, payload, reply_to, fts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS tsvector)) RETURNING id`
	insertContactsSQL = `INSERT INTO personal_contacts (user_id, contact_id) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING`
)

// appendTx runs the statements of appends in one transaction: each as it
// comes, or, for a batch on SQLite (where preparing a statement costs more
// than running an insert), prepared once.
type appendTx struct {
	tx            *sqlx.Tx
	msg, contacts *sqlx.Stmt // prepared, or nil
}

func (a *appendTx) prepare(ctx context.Context) error {
	var err error
	if a.msg, err = a.tx.PreparexContext(ctx, insertMessageSQL); err != nil {
		return err
	}
	a.contacts, err = a.tx.PreparexContext(ctx, insertContactsSQL)
	return err
}

func (a *appendTx) close() {
	for _, st := range []*sqlx.Stmt{a.msg, a.contacts} {
		if st != nil {
			st.Close()
		}
	}
}

func (a *appendTx) queryRow(ctx context.Context, st *sqlx.Stmt, q string, args ...any) *sqlx.Row {
	if st != nil {
		return st.QueryRowxContext(ctx, args...)
	}
	return a.tx.QueryRowxContext(ctx, a.tx.Rebind(q), args...)
}

func (a *appendTx) exec(ctx context.Context, st *sqlx.Stmt, q string, args ...any) (sql.Result, error) {
	if st != nil {
		return st.ExecContext(ctx, args...)
	}
	return a.tx.ExecContext(ctx, a.tx.Rebind(q), args...)
}

// insertBatchSQLite writes a batch on SQLite with the statements prepared
// once.
func (s *Store) insertBatchSQLite(ctx context.Context, tx *sqlx.Tx, batch []*appendReq) error {
	a := &appendTx{tx: tx}
	defer a.close()
	if err := a.prepare(ctx); err != nil {
		return err
	}
	for _, r := range batch {
		if err := s.insertWith(ctx, a, r); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) insert(ctx context.Context, tx *sqlx.Tx, r *appendReq) error {
	return s.insertWith(ctx, &appendTx{tx: tx}, r)
}

func (s *Store) insertWith(ctx context.Context, a *appendTx, r *appendReq) error {
	m := r.m
	r.created = m.CreatedAt.UnixMicro()
	if m.CreatedAt.IsZero() {
		r.created = time.Now().UnixMicro()
	}
	var lo, hi sql.NullInt64
	if m.Kind == KindChat {
		lo, hi = nullID(min(m.FromID, m.ToID)), nullID(max(m.FromID, m.ToID))
	}
	args := []any{r.created, m.Kind, nullID(m.FromID), nullID(m.ToID), nullID(m.ChatID), lo, hi,
		m.FromResource, m.OriginID, m.Body, m.Payload, nullID(m.ReplyTo)}
	q := insertMessageSQL
	if s.pg {
		// PostgreSQL indexes with the row; SQLite later (ftsindex.go).
		terms := docTerms(m)
		q = insertMessagePGSQL
		args = append(args, sql.NullString{String: terms, Valid: terms != ""})
	}
	r.newContact = false
	if err := a.queryRow(ctx, a.msg, q, args...).Scan(&r.id); err != nil {
		return err
	}
	if err := insertFiles(ctx, a.tx, r.id, m.Files); err != nil {
		return err
	}
	if m.Kind == KindChat && m.FromID != m.ToID {
		res, err := a.exec(ctx, a.contacts, insertContactsSQL, m.FromID, m.ToID, m.ToID, m.FromID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		r.newContact = n > 0
	}
	return nil
}

// insertBatchPG writes a batch on PostgreSQL in three round trips: ids from
// the sequence, one multi-row insert, one multi-row personal_contacts insert.
func (s *Store) insertBatchPG(ctx context.Context, tx *sqlx.Tx, batch []*appendReq) error {
	var ids []int64
	if err := tx.SelectContext(ctx, &ids, `SELECT nextval(pg_get_serial_sequence('messages', 'id'))
		FROM generate_series(1, $1)`, len(batch)); err != nil {
		return err
	}
	slices.Sort(ids)
	now := time.Now().UnixMicro()
	var q strings.Builder
	q.WriteString(`INSERT INTO messages (id, created_at, kind, from_id, to_id, chat_id, pair_lo, pair_hi,
		from_resource, origin_id, body, payload, reply_to, fts) VALUES `)
	args := make([]any, 0, 14*len(batch))
	type pair struct{ lo, hi int64 }
	first := map[pair]*appendReq{}
	var pairs []pair
	for i, r := range batch {
		m := r.m
		r.id, r.newContact = ids[i], false
		r.created = m.CreatedAt.UnixMicro()
		if m.CreatedAt.IsZero() {
			r.created = now
		}
		var lo, hi sql.NullInt64
		if m.Kind == KindChat {
			lo, hi = nullID(min(m.FromID, m.ToID)), nullID(max(m.FromID, m.ToID))
			if p := (pair{lo.Int64, hi.Int64}); p.lo != p.hi && first[p] == nil {
				first[p] = r
				pairs = append(pairs, p)
			}
		}
		terms := docTerms(m)
		if i > 0 {
			q.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, CAST($%d AS tsvector))",
			n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10, n+11, n+12, n+13, n+14)
		args = append(args, r.id, r.created, m.Kind, nullID(m.FromID), nullID(m.ToID), nullID(m.ChatID), lo, hi,
			m.FromResource, m.OriginID, m.Body, m.Payload, nullID(m.ReplyTo), sql.NullString{String: terms, Valid: terms != ""})
	}
	if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
		return err
	}
	for _, r := range batch {
		if err := insertFiles(ctx, tx, r.id, r.m.Files); err != nil {
			return err
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	q.Reset()
	args = args[:0]
	q.WriteString(`INSERT INTO personal_contacts (user_id, contact_id) VALUES `)
	for i, p := range pairs {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "($%d, $%d), ($%d, $%d)", 4*i+1, 4*i+2, 4*i+3, 4*i+4)
		args = append(args, p.lo, p.hi, p.hi, p.lo)
	}
	q.WriteString(` ON CONFLICT DO NOTHING RETURNING user_id, contact_id`)
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var u, c int64
		if err := rows.Scan(&u, &c); err != nil {
			return err
		}
		first[pair{min(u, c), max(u, c)}].newContact = true
	}
	return rows.Err()
}

// insertFiles records the files message id carries (rare: one statement
// per message that has any).
func insertFiles(ctx context.Context, tx *sqlx.Tx, id int64, files []int64) error {
	if len(files) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO message_files (message_id, file_id) VALUES `)
	args := make([]any, 0, 2*len(files))
	for i, f := range files {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?)")
		args = append(args, id, f)
	}
	q.WriteString(` ON CONFLICT DO NOTHING`)
	_, err := tx.ExecContext(ctx, tx.Rebind(q.String()), args...)
	return err
}
