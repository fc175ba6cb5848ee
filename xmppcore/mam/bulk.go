package mam

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Bulk loads already-validated historical messages in one transaction,
// with their full-text terms, assigning ids in order. It is for the archive
// generator and imports from other servers, not for live traffic: it writes
// no personal contacts and takes CreatedAt as given. Messages get their IDs
// set.
func (s *Store) Bulk(ctx context.Context, msgs []Message) error {
	for i := range msgs {
		if err := validate(&msgs[i]); err != nil {
			return fmt.Errorf("mam: bulk message %d: %w", i, err)
		}
	}
	terms := make([]string, len(msgs))
	for i := range msgs {
		terms[i] = docTerms(&msgs[i])
	}
	// Messages appended before are indexed first: the bulk load moves
	// the full-text watermark past its own messages.
	if err := s.ftsReady(ctx); err != nil {
		return err
	}
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if s.pg {
			err = s.bulkPG(ctx, tx, msgs, terms)
		} else {
			err = s.bulkSQLite(ctx, tx, msgs, terms)
		}
		if err != nil || len(msgs) == 0 {
			return err
		}
		return sequenceBulk(ctx, tx, msgs[0].ID, msgs[len(msgs)-1].ID)
	})
	s.ap.mu.Lock()
	if !s.ap.leading {
		s.ap.seqTop = nil // read again from the counters Bulk moved
		s.ap.doneID = s.ap.nextID
	}
	s.ap.mu.Unlock()
	if err != nil {
		return fmt.Errorf("mam: bulk: %w", err)
	}
	return nil
}

func pairOf(m *Message) (sql.NullInt64, sql.NullInt64) {
	if m.Kind != KindChat {
		return sql.NullInt64{}, sql.NullInt64{}
	}
	return nullID(min(m.FromID, m.ToID)), nullID(max(m.FromID, m.ToID))
}

func (s *Store) bulkPG(ctx context.Context, tx *sqlx.Tx, msgs []Message, terms []string) error {
	var ids []int64
	if err := tx.SelectContext(ctx, &ids, `SELECT nextval(pg_get_serial_sequence('messages', 'id'))
		FROM generate_series(1, $1) ORDER BY 1`, len(msgs)); err != nil {
		return err
	}
	// lib/pq runs a prepared COPY … FROM STDIN as the COPY protocol.
	stmt, err := tx.PrepareContext(ctx, `COPY messages (id, created_at, kind, from_id, to_id, chat_id,
		pair_lo, pair_hi, from_resource, origin_id, body, payload, fts) FROM STDIN`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for i := range msgs {
		m := &msgs[i]
		m.ID = ids[i]
		lo, hi := pairOf(m)
		if _, err := stmt.ExecContext(ctx, m.ID, m.CreatedAt.UnixMicro(), m.Kind, nullID(m.FromID), nullID(m.ToID),
			nullID(m.ChatID), lo, hi, m.FromResource, m.OriginID, m.Body, m.Payload,
			sql.NullString{String: terms[i], Valid: terms[i] != ""}); err != nil {
			return err
		}
	}
	_, err = stmt.ExecContext(ctx)
	return err
}

// sqliteRows is how many rows one multi-row INSERT carries (12 parameters
// each, under SQLite's limit of 32766).
const sqliteRows = 1000

func (s *Store) bulkSQLite(ctx context.Context, tx *sqlx.Tx, msgs []Message, terms []string) error {
	var next int64
	if err := tx.GetContext(ctx, &next, `SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'messages'`); err != nil {
		return err
	}
	var maxID int64
	if err := tx.GetContext(ctx, &maxID, `SELECT COALESCE(MAX(id), 0) FROM messages`); err != nil {
		return err
	}
	next = max(next, maxID)
	// Above the ids appends have numbered and not yet stored.
	s.ap.mu.Lock()
	next = max(next, s.ap.nextID)
	if s.ap.nextID != 0 {
		s.ap.nextID = next + int64(len(msgs))
	}
	s.ap.mu.Unlock()
	for start := 0; start < len(msgs); start += sqliteRows {
		end := min(start+sqliteRows, len(msgs))
		var q, f strings.Builder
		q.WriteString(`INSERT INTO messages (id, created_at, kind, from_id, to_id, chat_id, pair_lo, pair_hi,
			from_resource, origin_id, body, payload) VALUES `)
		f.WriteString(`INSERT INTO messages_fts (rowid, terms) VALUES `)
		args := make([]any, 0, 12*(end-start))
		var fargs []any
		for i := start; i < end; i++ {
			m := &msgs[i]
			next++
			m.ID = next
			lo, hi := pairOf(m)
			if i > start {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, m.ID, m.CreatedAt.UnixMicro(), m.Kind, nullID(m.FromID), nullID(m.ToID), nullID(m.ChatID),
				lo, hi, m.FromResource, m.OriginID, m.Body, m.Payload)
			if terms[i] != "" {
				if len(fargs) > 0 {
					f.WriteString(", ")
				}
				f.WriteString("(?, ?)")
				fargs = append(fargs, m.ID, terms[i])
			}
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
		if len(fargs) > 0 {
			if _, err := tx.ExecContext(ctx, f.String(), fargs...); err != nil {
				return err
			}
		}
	}
	_, err := tx.ExecContext(ctx, `UPDATE fts_state SET indexed_through = ?`, next)
	return err
}

// sequenceBulk gives the personal messages a bulk load wrote (ids lo..hi)
// their recipients' next delivery sequences, in id order (after the
// highest of the recipient's stored counter and earlier messages' — on
// SQLite the counter lives in memory), and raises the recipients'
// counters: set-based, in the load's transaction.
func sequenceBulk(ctx context.Context, tx *sqlx.Tx, lo, hi int64) error {
	if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE messages SET to_seq = x.n
		FROM (SELECT m.id, ROW_NUMBER() OVER (PARTITION BY m.to_id ORDER BY m.id) +
		             (SELECT CASE WHEN COALESCE(MAX(p.to_seq), 0) > COALESCE(MAX(d.top_seq), 0)
		                          THEN COALESCE(MAX(p.to_seq), 0) ELSE COALESCE(MAX(d.top_seq), 0) END
		              FROM messages p LEFT JOIN deliveries d ON d.user_id = p.to_id
		              WHERE p.to_id = m.to_id AND p.kind = 'chat' AND p.id < ?) AS n
		      FROM messages m
		      WHERE m.kind = 'chat' AND m.to_id IS NOT NULL AND m.id BETWEEN ? AND ?) AS x
		WHERE messages.id = x.id`), lo, lo, hi); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO deliveries (user_id, last_id, top_seq)
		SELECT to_id, 0, MAX(to_seq) FROM messages
		WHERE kind = 'chat' AND to_id IS NOT NULL AND id BETWEEN ? AND ?
		GROUP BY to_id
		ON CONFLICT (user_id) DO UPDATE SET top_seq = excluded.top_seq`), lo, hi)
	return err
}
