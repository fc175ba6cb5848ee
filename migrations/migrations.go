// Package migrations owns the database schema: numbered SQL files per
// dialect, embedded in the binary, and the runner that applies them. It also
// opens the database named by a --db URL, since the dialect decides which
// files apply.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"  // PostgreSQL driver "postgres"
	_ "modernc.org/sqlite" // pure-Go SQLite driver "sqlite"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// Dialects, as sqlx driver names.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// sqlitePageSize is the page size of new SQLite databases. Every commit
// writes each page it touched to the write-ahead log, and an archived
// message touches pages all over its indexes (by sender, by recipient, by
// pair): with 1 KiB pages a busy server logs a quarter of the bytes it
// would with SQLite's default of 4 KiB, and a slow disk keeps up (tsung,
// 3,000 msg/s on this machine's virtual disk: p99 68 -> 42 ms).
const sqlitePageSize = 1024

// createSQLite creates the database file when there is none, with
// sqlitePageSize pages: the page size is fixed by the first write (the
// driver runs its _pragma list sorted, journal_mode before page_size).
func createSQLite(path string) error {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	db, err := sqlx.Open(SQLite, "file:"+path)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	_, err = db.Exec(`PRAGMA page_size = ` + strconv.Itoa(sqlitePageSize) + `; PRAGMA journal_mode = WAL`)
	return err
}

// ErrTooNew is returned when the database has migrations this binary does
// not know: it was written by a newer Vestnik.
var ErrTooNew = errors.New("database schema is newer than this vestnik binary")

// Open connects to the database named by dbURL: "sqlite:PATH" or a
// "postgres://" URL. It pings the database so an unreachable one fails here.
func Open(ctx context.Context, dbURL string) (*sqlx.DB, error) {
	var db *sqlx.DB
	var err error
	switch {
	case strings.HasPrefix(dbURL, "sqlite:"):
		path := strings.TrimPrefix(dbURL, "sqlite:")
		if path == "" {
			return nil, fmt.Errorf("db: empty sqlite path in %q", dbURL)
		}
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("db: %w", err)
			}
		}
		q := url.Values{}
		if err := createSQLite(path); err != nil {
			return nil, fmt.Errorf("db: %w", err)
		}
		for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)",
			"wal_autocheckpoint(" + strconv.Itoa(autoCheckpointPages) + ")"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		db, err = sqlx.Open(SQLite, "file:"+path+"?"+q.Encode())
		if err == nil {
			// One writer at a time is SQLite's model; a small pool keeps
			// readers concurrent under WAL.
			db.SetMaxOpenConns(8)
		}
	case strings.HasPrefix(dbURL, "postgres://"), strings.HasPrefix(dbURL, "postgresql://"):
		db, err = sqlx.Open(Postgres, dbURL)
		if err == nil {
			db.SetMaxOpenConns(32)
			db.SetMaxIdleConns(16)
		}
	default:
		return nil, fmt.Errorf("db: unsupported database URL %q (want sqlite:PATH or postgres://…)", dbURL)
	}
	if err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("db: cannot reach database: %w", err)
	}
	return db, nil
}

type migration struct {
	version int
	name    string
	sql     string
}

func load(dialect string) ([]migration, error) {
	entries, err := fs.ReadDir(files, dialect)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migrations: bad file name %q", name)
		}
		b, err := fs.ReadFile(files, dialect+"/"+name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations: duplicate version %d", ms[i].version)
		}
	}
	return ms, nil
}

// Up applies every migration not yet recorded in schema_migrations, each in
// its own transaction, and returns how many it applied. A database holding a
// version this binary does not know is refused with ErrTooNew.
func Up(ctx context.Context, db *sqlx.DB) (int, error) {
	ms, err := load(db.DriverName())
	if err != nil {
		return 0, err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return 0, fmt.Errorf("migrations: create table: %w", err)
	}
	var applied []int
	if err := db.SelectContext(ctx, &applied, `SELECT version FROM schema_migrations`); err != nil {
		return 0, fmt.Errorf("migrations: read applied: %w", err)
	}
	known := make(map[int]bool, len(ms))
	for _, m := range ms {
		known[m.version] = true
	}
	done := make(map[int]bool, len(applied))
	for _, v := range applied {
		if !known[v] {
			return 0, fmt.Errorf("%w: it has migration %d", ErrTooNew, v)
		}
		done[v] = true
	}
	n := 0
	for _, m := range ms {
		if done[m.version] {
			continue
		}
		if err := apply(ctx, db, m); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func apply(ctx context.Context, db *sqlx.DB, m migration) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrations: %s: %w", m.name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migrations: %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
		m.version, m.name, time.Now().UnixMicro()); err != nil {
		return fmt.Errorf("migrations: record %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrations: commit %s: %w", m.name, err)
	}
	return nil
}
