package upload

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Files live as long as a message carries them. A file no live message
// carries any more — never sent, its messages retracted, or removed by
// the archive's retention — is deleted, bytes and thumbnail included,
// once it is older than Options.OrphanAfter.

// Sweep defaults.
const (
	DefaultOrphanAfter = 24 * time.Hour // an uploaded file waits this long to be sent
	DefaultSweepEvery  = time.Hour
	sweepBatch         = 500
)

// Sweep deletes up to sweepBatch files created before now-OrphanAfter
// that no live (not retracted) message carries, and the XEP-0363 slots
// that expired unused, and returns how many files it deleted.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	cutoff := now.Add(-s.opts.OrphanAfter).UnixMicro()
	var gone []struct {
		ID    int64  `db:"id"`
		Token string `db:"token"`
	}
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.SelectContext(ctx, &gone, tx.Rebind(`SELECT f.id, f.token FROM files f
			WHERE f.created_at < ? AND NOT EXISTS (
				SELECT 1 FROM message_files mf JOIN messages m ON m.id = mf.message_id
				WHERE mf.file_id = f.id AND NOT m.deleted)
			ORDER BY f.id LIMIT ?`), cutoff, sweepBatch); err != nil {
			return err
		}
		if len(gone) > 0 {
			ids := make([]any, len(gone))
			tokens := make([]any, len(gone))
			for i, g := range gone {
				ids[i], tokens[i] = g.ID, g.Token
			}
			in := "(?" + strings.Repeat(", ?", len(gone)-1) + ")"
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{`DELETE FROM message_files WHERE file_id IN ` + in, ids},
				{`DELETE FROM files WHERE id IN ` + in, ids},
				{`DELETE FROM uploads WHERE token IN ` + in, tokens},
			} {
				if _, err := tx.ExecContext(ctx, tx.Rebind(q.sql), q.args...); err != nil {
					return err
				}
			}
		}
		// Slots never used (the client asked and gave up).
		_, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM uploads WHERE uploaded_at IS NULL AND created_at < ?`),
			now.Add(-slotLifetime).UnixMicro())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("upload: sweep: %w", err)
	}
	// The rows are gone: no one can be handed these files any more.
	for _, g := range gone {
		path := filepath.Join(s.dir, g.Token)
		os.Remove(path)
		os.Remove(path + ".thumb")
	}
	return len(gone), nil
}

// SweepLoop runs Sweep every Options.SweepEvery until ctx ends, batch
// after batch while there is more to delete.
func (s *Store) SweepLoop(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(s.opts.SweepEvery)
	defer t.Stop()
	for {
		for {
			n, err := s.Sweep(ctx, time.Now())
			if err != nil {
				if ctx.Err() == nil {
					log.Error("sweep files", "err", err)
				}
				break
			}
			if n > 0 {
				log.Info("deleted files no message carries", "files", n)
			}
			if n < sweepBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Store) withTx(ctx context.Context, f func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}
