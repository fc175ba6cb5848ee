package migrations_test

import (
	"context"
	"path/filepath"
	"testing"

	"vestnik/migrations"
)

func TestCheckpoint(t *testing.T) {
	ctx := context.Background()
	db, err := migrations.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "ckpt.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pages, size int
	if err := db.Get(&pages, `PRAGMA wal_autocheckpoint`); err != nil || pages != 10000 {
		t.Fatalf("wal_autocheckpoint: got %d, %v; want 10000", pages, err)
	}
	if err := db.Get(&size, `PRAGMA page_size`); err != nil || size != 1024 {
		t.Fatalf("page_size of a new database: got %d, %v; want 1024", size, err)
	}
	db.MustExec(`CREATE TABLE t (v TEXT)`)
	for i := 0; i < 50; i++ {
		db.MustExec(`INSERT INTO t VALUES (?)`, "row")
	}
	logFrames, copied, err := migrations.Checkpoint(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if logFrames < 50 || copied != logFrames {
		t.Fatalf("checkpoint: %d frames in the log, %d copied; want all of at least 50", logFrames, copied)
	}
	// The next commit starts the log again from its beginning.
	db.MustExec(`INSERT INTO t VALUES (?)`, "row")
	if logFrames, _, err = migrations.Checkpoint(ctx, db); err != nil || logFrames > 2 {
		t.Fatalf("after a restart: %d frames in the log (%v); want at most 2", logFrames, err)
	}
}
