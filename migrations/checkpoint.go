package migrations

import (
	"context"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
)

// SQLite in WAL mode appends commits to the write-ahead log and copies them
// into the database file at checkpoints. Left to itself SQLite checkpoints
// inside the commit that crosses wal_autocheckpoint pages, fsync of the
// database file included: on a slow disk every writer queued behind that
// commit waits hundreds of milliseconds. A running server therefore
// checkpoints from a goroutine of its own, on a connection of its own, in
// PASSIVE mode (never blocking writers or readers); the automatic checkpoint
// stays only as a safety net far above what the background keeps up with.

// autoCheckpointPages is the wal_autocheckpoint of every SQLite connection:
// 40 MB of log, reached only when nothing checkpoints in the background
// (the command-line tools, a stalled checkpointer).
const autoCheckpointPages = 10000

// CheckpointInterval is how often Checkpoints runs.
const CheckpointInterval = time.Second

// Checkpoint runs one PASSIVE checkpoint of an SQLite database and returns
// the frames in the log and those copied into the database file. It is a
// no-op for PostgreSQL.
func Checkpoint(ctx context.Context, db *sqlx.DB) (logFrames, copied int, err error) {
	if db.DriverName() != SQLite {
		return 0, 0, nil
	}
	var busy int
	err = db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &copied)
	return logFrames, copied, err
}

// Checkpoints checkpoints an SQLite database every CheckpointInterval
// until ctx ends. For PostgreSQL it returns at once.
func Checkpoints(ctx context.Context, db *sqlx.DB, log *slog.Logger) {
	if db.DriverName() != SQLite {
		return
	}
	t := time.NewTicker(CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, _, err := Checkpoint(ctx, db); err != nil && ctx.Err() == nil {
			log.Warn("sqlite checkpoint", "err", err)
		}
	}
}
