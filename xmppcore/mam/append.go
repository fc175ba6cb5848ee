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
//
// On SQLite a message is numbered when it is queued (early numbering: id,
// delivery sequence and time given in memory, Store.nextID and seqTop), so
// the caller can route it while the disk is still busy with the commit
// before (AppendThen); batches are written in queue order, so ids are
// committed in order. An id or sequence given out is never given again,
// even after a crash: the first id after the store is opened skips
// idMargin ids, and a sequence that cannot be stored keeps its place as a
// retracted placeholder (placeholder).

type appendReq struct {
	st         *Store // the Store it was queued through
	early      bool   // routed before its commit: nobody's delivery waits for it
	m          *Message
	id         int64
	seq        int64 // the recipient's delivery sequence (personal messages)
	created    int64
	newContact bool
	err        error
	finished   bool          // set by the leader before waking
	wake       chan struct{} // one send: finished, or promoted to leader
}

// idMargin is how many ids the first append after the store is opened
// skips on SQLite: more than can be numbered but not yet committed
// (each waits for its commit, and there are fewer callers than this), so
// an id a client saw before a crash is never reused for another message,
// and a delivery mark stored before its message's commit stays above
// every new id's predecessor.
const idMargin = 1 << 16

// Append stores m, assigning m.ID (the one monotonic archive id, also the
// MAM and stanza id) and m.CreatedAt (now, unless already set), and returns
// only after the message is committed. For a personal message it also
// records both directions of personal_contacts in the same transaction and
// reports newContact=true when the pair had never exchanged a message.
func (s *Store) Append(ctx context.Context, m *Message) (newContact bool, err error) {
	return s.AppendThen(ctx, m, nil)
}

// AppendThen is Append that calls routed (when not nil, on the caller's
// goroutine) as soon as m has its archive id, delivery sequence and time
// (m.ID, m.Seq, m.CreatedAt), telling whether m is committed yet: on
// SQLite before the commit (false), so delivery does not wait for the
// disk; on PostgreSQL, whose transaction gives them, after it (true).
// Like Append it returns only once m is committed, so the sender is
// acknowledged only then. Should the commit fail after routed ran, the
// error says so and the recipient has seen a message that is not stored.
func (s *Store) AppendThen(ctx context.Context, m *Message, routed func(committed bool)) (newContact bool, err error) {
	if err := validate(m); err != nil {
		return false, err
	}
	r := &appendReq{st: s, m: m, wake: make(chan struct{}, 1), created: m.CreatedAt.UnixMicro()}
	if m.CreatedAt.IsZero() {
		r.created = time.Now().UnixMicro()
	}
	s.ap.mu.Lock()
	if !s.pg {
		if err := s.number(ctx, r); err != nil {
			s.ap.mu.Unlock()
			return false, fmt.Errorf("mam: append: %w", err)
		}
	}
	r.early = routed != nil && !s.pg
	s.ap.queue = append(s.ap.queue, r)
	lead := !s.ap.leading
	s.ap.leading = true
	s.ap.mu.Unlock()
	if routed != nil && !s.pg {
		m.ID, m.Seq, m.CreatedAt = r.id, r.seq, time.UnixMicro(r.created).UTC()
		routed(false)
	}
	if !lead {
		<-r.wake
		if r.finished {
			return s.result(r, routed)
		}
		s.ap.mu.Lock() // promoted: lead the next batches
	} else {
		// Let the callers that are ready to append join this first
		// batch: on a busy single-core server they would otherwise only
		// run once the commit is done, and every message would cost a
		// transaction of its own.
		runtime.Gosched()
		s.ap.mu.Lock()
	}
	for !r.finished {
		if s.gathers() {
			// Nobody's delivery waits for this commit: let more join it
			// (fewer, larger commits cost less of the one core).
			s.ap.mu.Unlock()
			time.Sleep(gatherDelay)
			s.ap.mu.Lock()
		}
		n := min(len(s.ap.queue), s.opts.MaxBatch)
		batch := make([]*appendReq, n)
		copy(batch, s.ap.queue)
		s.ap.queue = s.ap.queue[n:]
		if len(s.ap.queue) == 0 {
			s.ap.queue = nil
		}
		s.ap.mu.Unlock()
		s.commitBatch(ctx, batch)
		s.ap.mu.Lock()
		for _, b := range batch {
			b.finished = true
			s.ap.doneID = max(s.ap.doneID, b.id)
			if b != r {
				b.wake <- struct{}{}
			}
		}
		if s.ap.settled != nil {
			close(s.ap.settled)
			s.ap.settled = nil
		}
	}
	if len(s.ap.queue) > 0 {
		s.ap.queue[0].wake <- struct{}{}
	} else {
		s.ap.leading = false
	}
	s.ap.mu.Unlock()
	return s.result(r, routed)
}

// gatherDelay is how long a leader waits for more messages before a
// commit that no delivery waits for (gathers).
const gatherDelay = 2 * time.Millisecond

// gathers reports whether the next batch may wait gatherDelay for more
// messages (s.ap.mu held): on SQLite, when messages come together (two or
// more queued), every queued one was routed before its commit, and the
// batch is not full. A lone message is committed at once: reads on a
// user's behalf wait for it (Settle), and at a low rate there is nothing
// to gather.
func (s *Store) gathers() bool {
	if s.pg || len(s.ap.queue) < 2 || len(s.ap.queue) >= s.opts.MaxBatch {
		return false
	}
	for _, r := range s.ap.queue {
		if !r.early {
			return false
		}
	}
	return true
}

// number gives r its id and its recipient's delivery sequence (SQLite,
// s.ap.mu held). What is not in memory yet (the last id, a recipient's
// counter) is read with s.ap.mu let go meanwhile.
func (s *Store) number(ctx context.Context, r *appendReq) error {
	m := r.m
	for {
		_, haveTop := s.ap.seqTop[m.ToID]
		needTop := sequenced(m) && !haveTop
		if s.ap.nextID != 0 && !needTop {
			break
		}
		needID := s.ap.nextID == 0
		s.ap.mu.Unlock()
		last, top, err := s.counters(ctx, needID, needTop, m.ToID)
		s.ap.mu.Lock()
		if err != nil {
			return err
		}
		if needID && s.ap.nextID == 0 {
			s.ap.nextID = last + idMargin
			s.ap.doneID = s.ap.nextID
		}
		if _, ok := s.ap.seqTop[m.ToID]; needTop && !ok {
			if s.ap.seqTop == nil {
				s.ap.seqTop = map[int64]int64{}
			}
			s.ap.seqTop[m.ToID] = top
		}
	}
	s.ap.nextID++
	r.id = s.ap.nextID
	if sequenced(m) {
		s.ap.seqTop[m.ToID]++
		r.seq = s.ap.seqTop[m.ToID]
	}
	return nil
}

// counters reads, on SQLite, the highest id ever given (messages, the
// AUTOINCREMENT counter, and delivery marks, which may have been stored
// before their message's commit) and recipient user's delivery sequence
// counter: the highest of the stored counter and mark and the sequence
// of the user's newest message.
func (s *Store) counters(ctx context.Context, needID, needTop bool, user int64) (last, top int64, err error) {
	// Like the commit, not cut short by the caller's cancellation.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultTimeout)
	defer cancel()
	if needID {
		if err := s.db.GetContext(ctx, &last, `SELECT MAX(
			(SELECT COALESCE(MAX(id), 0) FROM messages),
			(SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'messages'),
			(SELECT COALESCE(MAX(last_id), 0) FROM deliveries))`); err != nil {
			return 0, 0, err
		}
	}
	if needTop {
		if err := s.db.GetContext(ctx, &top, `SELECT MAX(
			(SELECT COALESCE(MAX(MAX(top_seq), MAX(mark_seq)), 0) FROM deliveries WHERE user_id = ?),
			COALESCE((SELECT to_seq FROM messages WHERE to_id = ? AND kind = 'chat' ORDER BY id DESC LIMIT 1), 0))`,
			user, user); err != nil {
			return 0, 0, err
		}
	}
	return last, top, nil
}

// Settle waits until every message numbered before the call is committed
// or has failed (SQLite; PostgreSQL numbers in the transaction): a lookup
// by id or client id then finds a message routed before its commit, and
// offline delivery one routed while the recipient had no session. It must
// not be called holding a lock that routing takes: the leader may be
// routing its own message before committing it.
func (s *Store) Settle(ctx context.Context) error {
	if s.pg {
		return nil
	}
	s.ap.mu.Lock()
	target := s.ap.nextID
	for s.ap.doneID < target {
		if s.ap.settled == nil {
			s.ap.settled = make(chan struct{})
		}
		ch := s.ap.settled
		s.ap.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.ap.mu.Lock()
	}
	s.ap.mu.Unlock()
	return nil
}

// result is the caller's outcome once its message's batch finished; a
// message that PostgreSQL numbered is routed now.
func (s *Store) result(r *appendReq, routed func(bool)) (bool, error) {
	if r.err != nil {
		return false, r.err
	}
	r.m.ID = r.id
	r.m.Seq = r.seq
	r.m.CreatedAt = time.UnixMicro(r.created).UTC()
	if routed != nil && s.pg {
		routed(true)
	}
	return r.newContact, nil
}

// commitBatch writes batch in one transaction. Should that fail, each
// message is retried in a transaction of its own, so one bad message cannot
// fail the others; on SQLite one that still fails leaves a placeholder
// keeping its id and sequence.
func (s *Store) commitBatch(ctx context.Context, batch []*appendReq) {
	// The batch carries other callers' messages: the leader's cancellation
	// must not abort it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultTimeout)
	defer cancel()
	stores := storesOf(batch)
	if !s.pg {
		defer func() {
			for _, st := range stores {
				st.ftsAppended()
			}
		}()
	}
	start := time.Now()
	err := s.appendTx(ctx, func(tx *sqlx.Tx) error {
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
		s.keepPairs(batch)
		took := time.Since(start)
		for _, st := range stores {
			if st.opts.OnCommit != nil {
				n := 0
				for _, r := range batch {
					if r.st == st {
						n++
					}
				}
				st.opts.OnCommit(took, n)
			}
		}
		return
	}
	if len(batch) == 1 {
		batch[0].err = fmt.Errorf("mam: append: %w", err)
		s.placeholder(ctx, batch[0])
		return
	}
	for _, r := range batch {
		if err := s.appendTx(ctx, func(tx *sqlx.Tx) error {
			if err := s.insert(ctx, tx, r); err != nil {
				return err
			}
			return s.appended(ctx, tx, []*appendReq{r})
		}); err != nil {
			r.err = fmt.Errorf("mam: append: %w", err)
			s.placeholder(ctx, r)
			continue
		}
		s.keepPairs([]*appendReq{r})
	}
}

// placeholder stores, for a personal message numbered on SQLite that
// could not be stored, a retracted message with its id and sequence: the
// sequence was given out (and perhaps the message routed), and a hole
// would hold the recipient's delivery mark below it for good. Offline
// delivery confirms it without delivering it.
func (s *Store) placeholder(ctx context.Context, r *appendReq) {
	if s.pg || r.seq == 0 {
		return
	}
	m := r.m
	lo, hi := min(m.FromID, m.ToID), max(m.FromID, m.ToID)
	_ = s.appendTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO messages (id, created_at, kind, from_id, to_id, pair_lo, pair_hi, to_seq, deleted)
			VALUES (?, ?, 'chat', ?, ?, ?, ?, ?, TRUE)`, r.id, r.created, m.FromID, m.ToID, lo, hi, r.seq)
		return err
	})
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
		if s.ap.pairs == nil || len(s.ap.pairs) >= maxKnownPairs {
			s.ap.pairs = map[[2]int64]struct{}{}
		}
		s.ap.pairs[[2]int64{min(m.FromID, m.ToID), max(m.FromID, m.ToID)}] = struct{}{}
	}
}

// The statements of one append. The full-text terms of a message are
// written later on SQLite (ftsindex.go) and with the row on PostgreSQL.
const (
	insertMessageSQL = `INSERT INTO messages (id, created_at, kind, from_id, to_id, chat_id, pair_lo, pair_hi,
		from_resource, origin_id, body, payload, reply_to, to_seq, lang) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
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
	msg, contacts *sqlx.Stmt // prepared, or nil
}

// prepare binds the statements prepared once on the store's SQLite writer
// connection (Store.writerStmts) to the transaction; they close with it.
func (a *appendTxn) prepare(ctx context.Context, s *Store) error {
	if err := s.writerStmts(ctx); err != nil {
		return err
	}
	a.msg = a.tx.StmtxContext(ctx, s.ap.msgStmt)
	a.contacts = a.tx.StmtxContext(ctx, s.ap.contactsStmt)
	return nil
}

func (a *appendTxn) exec(ctx context.Context, st *sqlx.Stmt, q string, args ...any) (sql.Result, error) {
	if st != nil {
		return st.ExecContext(ctx, args...)
	}
	return a.tx.ExecContext(ctx, a.tx.Rebind(q), args...)
}

// insertBatchSQLite writes a batch on SQLite with the prepared statements.
func (s *Store) insertBatchSQLite(ctx context.Context, tx *sqlx.Tx, batch []*appendReq) error {
	a := &appendTxn{tx: tx}
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

func (s *Store) insert(ctx context.Context, tx *sqlx.Tx, r *appendReq) error {
	a := &appendTxn{tx: tx}
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
	if s.ap.writer == nil {
		c, err := s.db.Connx(ctx)
		if err != nil {
			return err
		}
		s.ap.writer = c
	}
	tx, err := s.ap.writer.BeginTxx(ctx, nil)
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		s.ap.writer.Close()
		s.ap.writer = nil
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
	if s.ap.msgStmt != nil {
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
	s.ap.msgStmt, s.ap.contactsStmt = msg, contacts
	return nil
}

func (s *Store) insertWith(ctx context.Context, a *appendTxn, r *appendReq) error {
	m := r.m
	var lo, hi sql.NullInt64
	if m.Kind == KindChat {
		lo, hi = nullID(min(m.FromID, m.ToID)), nullID(max(m.FromID, m.ToID))
	}
	r.newContact = false
	if s.pg {
		// Numbered here (SQLite: when queued); indexed with the row
		// (SQLite: later, ftsindex.go).
		r.seq = 0
		if sequenced(m) {
			if err := a.tx.QueryRowxContext(ctx, nextSeqSQL, m.ToID).Scan(&r.seq); err != nil {
				return err
			}
		}
		terms := docTerms(m)
		if err := a.tx.QueryRowxContext(ctx, a.tx.Rebind(insertMessagePGSQL), r.created, m.Kind, nullID(m.FromID), nullID(m.ToID),
			nullID(m.ChatID), lo, hi, m.FromResource, m.OriginID, m.Body, m.Payload, nullID(m.ReplyTo), nullID(r.seq),
			nullText(m.Lang), sql.NullString{String: terms, Valid: terms != ""}).Scan(&r.id); err != nil {
			return err
		}
	} else if _, err := a.exec(ctx, a.msg, insertMessageSQL, r.id, r.created, m.Kind, nullID(m.FromID), nullID(m.ToID),
		nullID(m.ChatID), lo, hi, m.FromResource, m.OriginID, m.Body, m.Payload, nullID(m.ReplyTo), nullID(r.seq),
		nullText(m.Lang)); err != nil {
		return err
	}
	if err := insertFiles(ctx, a.tx, r.id, m.Files); err != nil {
		return err
	}
	_, known := s.ap.pairs[[2]int64{min(m.FromID, m.ToID), max(m.FromID, m.ToID)}]
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
