package mam

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime"
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
	seq        int64 // the recipient's delivery sequence (personal messages)
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
		// Let the callers that are ready to append join this first
		// batch: on a busy single-core server they would otherwise only
		// run once the commit is done, and every message would cost a
		// transaction of its own.
		s.mu.Unlock()
		runtime.Gosched()
		s.mu.Lock()
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
	r.m.Seq = r.seq
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
	tops := map[int64]int64{}
	err := s.appendTx(ctx, func(tx *sqlx.Tx) error {
		if s.pg && len(batch) > 1 {
			if err := s.insertBatchPG(ctx, tx, batch); err != nil {
				return err
			}
			return s.appended(ctx, tx, batch)
		}
		if !s.pg && len(batch) > 1 {
			if err := s.insertBatchSQLite(ctx, tx, batch, tops); err != nil {
				return err
			}
			return s.appended(ctx, tx, batch)
		}
		for _, r := range batch {
			if err := s.insert(ctx, tx, r, tops); err != nil {
				return err
			}
		}
		return s.appended(ctx, tx, batch)
	})
	if err == nil {
		s.keepSeqs(tops)
		s.keepPairs(batch)
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
		tops := map[int64]int64{}
		if err := s.appendTx(ctx, func(tx *sqlx.Tx) error {
			if err := s.insert(ctx, tx, r, tops); err != nil {
				return err
			}
			return s.appended(ctx, tx, []*appendReq{r})
		}); err != nil {
			r.err = fmt.Errorf("mam: append: %w", err)
			continue
		}
		s.keepSeqs(tops)
		s.keepPairs([]*appendReq{r})
	}
}

// maxKnownPairs bounds Store.pairs (then it starts over).
const maxKnownPairs = 100000

// keepPairs remembers the personal pairs a committed SQLite transaction
// stored.
func (s *Store) keepPairs(batch []*appendReq) {
	if s.pg {
		return
	}
	for _, r := range batch {
		m := r.m
		if m.Kind != KindChat || m.FromID == m.ToID {
			continue
		}
		if s.pairs == nil || len(s.pairs) >= maxKnownPairs {
			s.pairs = map[[2]int64]struct{}{}
		}
		s.pairs[[2]int64{min(m.FromID, m.ToID), max(m.FromID, m.ToID)}] = struct{}{}
	}
}

// keepSeqs keeps the counters a committed SQLite transaction moved.
func (s *Store) keepSeqs(tops map[int64]int64) {
	if len(tops) == 0 {
		return
	}
	if s.seqTop == nil {
		s.seqTop = map[int64]int64{}
	}
	for u, top := range tops {
		s.seqTop[u] = top
	}
}

// nextSeqSQLite gives the next delivery sequence of recipient user on
// SQLite, where one process writes: the counter lives in memory
// (s.seqTop, moved in tops until the transaction commits), read once per
// user as the highest of the stored counter and mark and the sequence
// of the user's newest message. Nothing more is written per message.
func (s *Store) nextSeqSQLite(ctx context.Context, tx *sqlx.Tx, user int64, tops map[int64]int64) (int64, error) {
	top, ok := tops[user]
	if !ok {
		top, ok = s.seqTop[user]
	}
	if !ok {
		var stored []struct {
			Top  int64 `db:"top_seq"`
			Mark int64 `db:"mark_seq"`
		}
		if err := tx.SelectContext(ctx, &stored, `SELECT top_seq, mark_seq FROM deliveries WHERE user_id = ?`, user); err != nil {
			return 0, err
		}
		var last []sql.NullInt64
		if err := tx.SelectContext(ctx, &last, `SELECT to_seq FROM messages WHERE to_id = ? AND kind = 'chat'
			ORDER BY id DESC LIMIT 1`, user); err != nil {
			return 0, err
		}
		if len(stored) == 1 {
			top = max(stored[0].Top, stored[0].Mark)
		}
		if len(last) == 1 {
			top = max(top, last[0].Int64)
		}
	}
	top++
	tops[user] = top
	return top, nil
}

// The statements of one append. The full-text terms of a message are
// written later on SQLite (ftsindex.go) and with the row on PostgreSQL.
const (
	insertMessageSQL = `INSERT INTO messages (created_at, kind, from_id, to_id, chat_id, pair_lo, pair_hi,
		from_resource, origin_id, body, payload, reply_to, to_seq, lang) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
	insertMessagePGSQL = `INSERT INTO messages (created_at, kind, from_id, to_id, chat_id, pair_lo, pair_hi,
		from_resource, origin_id, body, payload, reply_to, to_seq, lang, fts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS tsvector)) RETURNING id`
	insertContactsSQL = `INSERT INTO personal_contacts (user_id, contact_id) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING`
	// nextSeqSQL takes the recipient's next delivery sequence on
	// PostgreSQL (SQLite: nextSeqSQLite). Its row lock also orders
	// concurrent transactions to the same recipient, on any node: the one
	// that takes it first commits first.
	nextSeqSQL = `INSERT INTO deliveries (user_id, last_id, top_seq) VALUES ($1, 0, 1 + ` + lastSeqPG + `)
		ON CONFLICT (user_id) DO UPDATE SET top_seq = ` + seqUpdatePG + ` RETURNING top_seq`
	// lastSeqPG is the sequence of recipient $1's newest message (one
	// probe of the (to_id, id) index). A new counter starts after it and a
	// counter behind it moves past it: counters copied from SQLite, where
	// they live in memory (vestnik db copy), may be behind or missing.
	lastSeqPG = `COALESCE((SELECT m.to_seq FROM messages m WHERE m.to_id = $1 AND m.kind = 'chat'
		ORDER BY m.id DESC LIMIT 1), 0)`
	// seqUpdatePG raises a counter by this batch's count (the inserted
	// value less the newest message's sequence), never below the inserted
	// value.
	seqUpdatePG = `GREATEST(deliveries.top_seq + excluded.top_seq - COALESCE((SELECT m.to_seq FROM messages m
		WHERE m.to_id = excluded.user_id AND m.kind = 'chat' ORDER BY m.id DESC LIMIT 1), 0), excluded.top_seq)`
)

// sequenced reports whether m gets a delivery sequence: a personal
// message, numbered per recipient.
func sequenced(m *Message) bool { return m.Kind == KindChat && m.ToID != 0 }

// appendTxn holds the statements of appends in one transaction: on SQLite
// prepared (Store.writerStmts), on PostgreSQL each as it comes.
type appendTxn struct {
	tx            *sqlx.Tx
	msg, contacts *sqlx.Stmt      // prepared, or nil
	tops          map[int64]int64 // SQLite: delivery sequence counters moved by this transaction
}

// prepare binds the statements prepared once on the store's SQLite writer
// connection (Store.writerStmts) to the transaction; they close with it.
func (a *appendTxn) prepare(ctx context.Context, s *Store) error {
	if err := s.writerStmts(ctx); err != nil {
		return err
	}
	a.msg = a.tx.StmtxContext(ctx, s.msgStmt)
	a.contacts = a.tx.StmtxContext(ctx, s.contactsStmt)
	return nil
}

func (a *appendTxn) queryRow(ctx context.Context, st *sqlx.Stmt, q string, args ...any) *sqlx.Row {
	if st != nil {
		return st.QueryRowxContext(ctx, args...)
	}
	return a.tx.QueryRowxContext(ctx, a.tx.Rebind(q), args...)
}

func (a *appendTxn) exec(ctx context.Context, st *sqlx.Stmt, q string, args ...any) (sql.Result, error) {
	if st != nil {
		return st.ExecContext(ctx, args...)
	}
	return a.tx.ExecContext(ctx, a.tx.Rebind(q), args...)
}

// insertBatchSQLite writes a batch on SQLite with the prepared statements.
func (s *Store) insertBatchSQLite(ctx context.Context, tx *sqlx.Tx, batch []*appendReq, tops map[int64]int64) error {
	a := &appendTxn{tx: tx, tops: tops}
	if err := a.prepare(ctx, s); err != nil {
		return err
	}
	for _, r := range batch {
		if err := s.insertWith(ctx, a, r); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) insert(ctx context.Context, tx *sqlx.Tx, r *appendReq, tops map[int64]int64) error {
	a := &appendTxn{tx: tx, tops: tops}
	if !s.pg {
		if err := a.prepare(ctx, s); err != nil {
			return err
		}
	}
	return s.insertWith(ctx, a, r)
}

// appendTx runs f in a transaction for appends: on PostgreSQL from the
// pool; on SQLite on the store's writer connection, taken on first use.
// A connection the driver reports broken is let go; the next append takes
// another.
func (s *Store) appendTx(ctx context.Context, f func(tx *sqlx.Tx) error) error {
	if s.pg {
		return s.withTx(ctx, f)
	}
	if s.writer == nil {
		c, err := s.db.Connx(ctx)
		if err != nil {
			return err
		}
		s.writer = c
	}
	tx, err := s.writer.BeginTxx(ctx, nil)
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		s.writer.Close()
		s.writer = nil
	}
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// writerStmts prepares the SQLite append statements once. They are the
// database's, prepared again by database/sql on a connection that has not
// seen them (only after the writer connection was replaced).
func (s *Store) writerStmts(ctx context.Context) error {
	if s.msgStmt != nil {
		return nil
	}
	msg, err := s.db.PreparexContext(ctx, insertMessageSQL)
	if err != nil {
		return err
	}
	contacts, err := s.db.PreparexContext(ctx, insertContactsSQL)
	if err != nil {
		msg.Close()
		return err
	}
	s.msgStmt, s.contactsStmt = msg, contacts
	return nil
}

func (s *Store) insertWith(ctx context.Context, a *appendTxn, r *appendReq) error {
	m := r.m
	r.created = m.CreatedAt.UnixMicro()
	if m.CreatedAt.IsZero() {
		r.created = time.Now().UnixMicro()
	}
	var lo, hi sql.NullInt64
	if m.Kind == KindChat {
		lo, hi = nullID(min(m.FromID, m.ToID)), nullID(max(m.FromID, m.ToID))
	}
	r.seq = 0
	if sequenced(m) && s.pg {
		if err := a.tx.QueryRowxContext(ctx, nextSeqSQL, m.ToID).Scan(&r.seq); err != nil {
			return err
		}
	} else if sequenced(m) {
		var err error
		if r.seq, err = s.nextSeqSQLite(ctx, a.tx, m.ToID, a.tops); err != nil {
			return err
		}
	}
	args := []any{r.created, m.Kind, nullID(m.FromID), nullID(m.ToID), nullID(m.ChatID), lo, hi,
		m.FromResource, m.OriginID, m.Body, m.Payload, nullID(m.ReplyTo), nullID(r.seq), nullText(m.Lang)}
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
	_, known := s.pairs[[2]int64{min(m.FromID, m.ToID), max(m.FromID, m.ToID)}]
	if m.Kind == KindChat && m.FromID != m.ToID && !(known && !s.pg) {
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

// insertBatchPG writes a batch on PostgreSQL in four round trips: the
// recipients' delivery sequences, ids from the sequence, one multi-row
// insert, one multi-row personal_contacts insert.
func (s *Store) insertBatchPG(ctx context.Context, tx *sqlx.Tx, batch []*appendReq) error {
	if err := takeSeqsPG(ctx, tx, batch); err != nil {
		return err
	}
	var ids []int64
	if err := tx.SelectContext(ctx, &ids, `SELECT nextval(pg_get_serial_sequence('messages', 'id'))
		FROM generate_series(1, $1)`, len(batch)); err != nil {
		return err
	}
	slices.Sort(ids)
	now := time.Now().UnixMicro()
	var q strings.Builder
	q.WriteString(`INSERT INTO messages (id, created_at, kind, from_id, to_id, chat_id, pair_lo, pair_hi,
		from_resource, origin_id, body, payload, reply_to, to_seq, lang, fts) VALUES `)
	args := make([]any, 0, 16*len(batch))
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
		fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, CAST($%d AS tsvector))",
			n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10, n+11, n+12, n+13, n+14, n+15, n+16)
		args = append(args, r.id, r.created, m.Kind, nullID(m.FromID), nullID(m.ToID), nullID(m.ChatID), lo, hi,
			m.FromResource, m.OriginID, m.Body, m.Payload, nullID(m.ReplyTo), nullID(r.seq), nullText(m.Lang),
			sql.NullString{String: terms, Valid: terms != ""})
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

// takeSeqsPG gives the batch's personal messages their recipients'
// next delivery sequences, in batch order, with one statement: the
// recipients' counters are raised by their counts, rows locked in user id
// order (so two batches never wait on each other in a cycle), before the
// batch takes its archive ids: for one recipient, ids then follow commit
// order even across nodes.
func takeSeqsPG(ctx context.Context, tx *sqlx.Tx, batch []*appendReq) error {
	counts := map[int64]int64{}
	for _, r := range batch {
		r.seq = 0
		if sequenced(r.m) {
			counts[r.m.ToID]++
		}
	}
	if len(counts) == 0 {
		return nil
	}
	users := make([]int64, 0, len(counts))
	for u := range counts {
		users = append(users, u)
	}
	slices.Sort(users)
	var q strings.Builder
	q.WriteString(`INSERT INTO deliveries (user_id, last_id, top_seq) VALUES `)
	args := make([]any, 0, 2*len(users))
	for i, u := range users {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "($%d, 0, $%d + %s)", 2*i+1, 2*i+2, strings.ReplaceAll(lastSeqPG, "$1", fmt.Sprintf("$%d", 2*i+1)))
		args = append(args, u, counts[u])
	}
	q.WriteString(` ON CONFLICT (user_id) DO UPDATE SET top_seq = ` + seqUpdatePG + ` RETURNING user_id, top_seq`)
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	next := map[int64]int64{} // user → first sequence of this batch
	for rows.Next() {
		var u, top int64
		if err := rows.Scan(&u, &top); err != nil {
			return err
		}
		next[u] = top - counts[u] + 1
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range batch {
		if sequenced(r.m) {
			r.seq = next[r.m.ToID]
			next[r.m.ToID]++
		}
	}
	return nil
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
