// Package dbtest gives tests fresh, migrated databases on every backend:
// a temporary SQLite file, and a new PostgreSQL schema when VESTNIK_TEST_PG
// names a server (postgres://… URL). With VESTNIK_REQUIRE_ALL=1 a missing
// PostgreSQL fails the test instead of skipping it.
package dbtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations"
)

// Backend is one database a test runs against.
type Backend struct {
	Name string // "sqlite" or "postgres"
	URL  string // the --db URL of the fresh database
}

// Backends lists the backends available to this test run. PostgreSQL is
// included when VESTNIK_TEST_PG is set; under VESTNIK_REQUIRE_ALL=1 its
// absence fails the test.
func Backends(t testing.TB) []string {
	t.Helper()
	b := []string{migrations.SQLite}
	if os.Getenv("VESTNIK_TEST_PG") != "" {
		b = append(b, migrations.Postgres)
	} else if os.Getenv("VESTNIK_REQUIRE_ALL") == "1" {
		t.Fatal("VESTNIK_TEST_PG is not set but VESTNIK_REQUIRE_ALL=1: PostgreSQL tests cannot be skipped")
	}
	return b
}

// Each runs f once per backend as a subtest, each with a fresh migrated
// database.
func Each(t *testing.T, f func(t *testing.T, db *sqlx.DB)) {
	t.Helper()
	for _, name := range Backends(t) {
		t.Run(name, func(t *testing.T) {
			f(t, Open(t, name))
		})
	}
}

// Open returns a fresh migrated database of the given backend, closed (and
// for PostgreSQL dropped) when the test ends.
func Open(t testing.TB, backend string) *sqlx.DB {
	t.Helper()
	u := URL(t, backend)
	db, err := migrations.Open(context.Background(), u)
	if err != nil {
		t.Fatalf("open %s: %v", backend, err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := migrations.Up(context.Background(), db); err != nil {
		t.Fatalf("migrate %s: %v", backend, err)
	}
	return db
}

// URL makes a fresh, empty database of the given backend and returns its
// --db URL, for tests that start the server or the CLI themselves.
func URL(t testing.TB, backend string) string {
	t.Helper()
	switch backend {
	case migrations.SQLite:
		return "sqlite:" + filepath.Join(t.TempDir(), "vestnik.db")
	case migrations.Postgres:
		base := os.Getenv("VESTNIK_TEST_PG")
		if base == "" {
			if os.Getenv("VESTNIK_REQUIRE_ALL") == "1" {
				t.Fatal("VESTNIK_TEST_PG is not set but VESTNIK_REQUIRE_ALL=1")
			}
			t.Skip("VESTNIK_TEST_PG not set")
		}
		schema := fmt.Sprintf("t_%d_%x", os.Getpid(), rand.Uint64())
		admin, err := sqlx.Open(migrations.Postgres, base)
		if err != nil {
			t.Fatalf("postgres: %v", err)
		}
		defer admin.Close()
		if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
			t.Fatalf("postgres: create schema: %v", err)
		}
		t.Cleanup(func() {
			a, err := sqlx.Open(migrations.Postgres, base)
			if err == nil {
				a.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
				a.Close()
			}
		})
		pu, err := url.Parse(base)
		if err != nil {
			t.Fatalf("postgres: bad VESTNIK_TEST_PG: %v", err)
		}
		q := pu.Query()
		q.Set("search_path", schema)
		pu.RawQuery = q.Encode()
		return pu.String()
	}
	t.Fatalf("unknown backend %q", backend)
	return ""
}
