package mam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// retentionPause separates two delete batches so retention never holds the
// database (SQLite has one writer) for long.
const retentionPause = 50 * time.Millisecond

// ErrRetentionClosed is returned by Retention.Serve after Shutdown.
var ErrRetentionClosed = errors.New("mam: retention job closed")

// DeleteOlderThan deletes at most limit messages created before t, oldest
// first, with their full-text entries, in one transaction. It returns how
// many it deleted.
func (s *Store) DeleteOlderThan(ctx context.Context, t time.Time, limit int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	var ids []int64
	if err := s.db.SelectContext(ctx, &ids, s.db.Rebind(`SELECT id FROM messages WHERE created_at < ?
		ORDER BY created_at LIMIT ?`), t.UnixMicro(), limit); err != nil {
		return 0, fmt.Errorf("mam: retention select: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	in := `(?` + strings.Repeat(", ?", len(ids)-1) + `)`
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("mam: retention: %w", err)
	}
	defer tx.Rollback()
	if !s.pg {
		if _, err := tx.ExecContext(ctx, `DELETE FROM messages_fts WHERE rowid IN `+in, anys(ids)...); err != nil {
			return 0, fmt.Errorf("mam: retention fts: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM message_files WHERE message_id IN `+in), anys(ids)...); err != nil {
		return 0, fmt.Errorf("mam: retention files: %w", err)
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM reactions WHERE message_id IN `+in), anys(ids)...); err != nil {
		return 0, fmt.Errorf("mam: retention reactions: %w", err)
	}
	res, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM messages WHERE id IN `+in), anys(ids)...)
	if err != nil {
		return 0, fmt.Errorf("mam: retention delete: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("mam: retention commit: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Retention is the background job deleting messages older than
// Options.Retention: every RetentionInterval it deletes in batches of
// RetentionBatch with a pause between them. It has the http.Server shape:
// Serve runs it, Shutdown stops it.
type Retention struct {
	s      *Store
	logger *slog.Logger
	now    func() time.Time

	once sync.Once
	quit chan struct{}
	done chan struct{}
}

// Retention returns the store's retention job (not yet running).
func (s *Store) Retention(logger *slog.Logger) *Retention {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Retention{s: s, logger: logger, now: time.Now, quit: make(chan struct{}), done: make(chan struct{})}
}

// Serve runs the job until Shutdown and returns ErrRetentionClosed. With
// Options.Retention 0 it deletes nothing and only keeps the planner's
// statistics fresh (Optimize).
func (r *Retention) Serve() error {
	defer close(r.done)
	period := r.s.opts.Retention
	tick := time.NewTicker(r.s.opts.RetentionInterval)
	defer tick.Stop()
	for {
		if period > 0 {
			r.runOnce(period)
		}
		if err := r.s.Optimize(context.Background()); err != nil {
			r.logger.Warn("archive optimize failed", "err", err)
		}
		select {
		case <-r.quit:
			return ErrRetentionClosed
		case <-tick.C:
		}
	}
}

func (r *Retention) runOnce(period time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	cutoff := r.now().Add(-period)
	total := 0
	for {
		n, err := r.s.DeleteOlderThan(ctx, cutoff, r.s.opts.RetentionBatch)
		total += n
		if err != nil {
			if ctx.Err() == nil {
				r.logger.Error("retention failed", "err", err)
			}
			break
		}
		if n < r.s.opts.RetentionBatch {
			break
		}
		select {
		case <-r.quit:
			return
		case <-time.After(retentionPause):
		}
	}
	if total > 0 {
		r.logger.Info("retention deleted messages", "count", total, "before", cutoff)
	}
}

// Shutdown stops the job and waits for the running batch to end, or for ctx.
func (r *Retention) Shutdown(ctx context.Context) error {
	r.once.Do(func() { close(r.quit) })
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Optimize keeps SQLite's planner statistics current (PRAGMA optimize, with
// a bounded analysis): without them SQLite may walk a whole index for a
// query on a user's archive. PostgreSQL's autovacuum does this itself.
func (s *Store) Optimize(ctx context.Context) error {
	if s.pg {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("mam: optimize: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA analysis_limit = 1000`); err != nil {
		return fmt.Errorf("mam: optimize: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA optimize = 0x10002`); err != nil {
		return fmt.Errorf("mam: optimize: %w", err)
	}
	return nil
}
