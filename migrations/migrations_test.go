package migrations_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

func TestUpIsIdempotentAndRefusesNewer(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		n, err := migrations.Up(ctx, db)
		if err != nil || n != 0 {
			t.Fatalf("second Up: got %d, %v; want 0, nil", n, err)
		}
		var tables int
		if err := db.Get(&tables, `SELECT COUNT(*) FROM schema_migrations`); err != nil || tables == 0 {
			t.Fatalf("schema_migrations: got %d rows, %v", tables, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (99999, 'future', 0)`); err != nil {
			t.Fatal(err)
		}
		if _, err := migrations.Up(ctx, db); !errors.Is(err, migrations.ErrTooNew) {
			t.Fatalf("Up on newer db: got %v, want ErrTooNew", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"mysql://x", "sqlite:", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"} {
		if db, err := migrations.Open(ctx, u); err == nil {
			db.Close()
			t.Errorf("Open(%q): got nil error", u)
		}
	}
}
