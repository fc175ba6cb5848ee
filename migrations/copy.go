package migrations

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// A whole installation moves from the embedded SQLite database to
// PostgreSQL with Copy, and a running SQLite server is backed up with
// Backup. Both work on the schema as the migrations made it, table by
// table, so that a table added by a later migration is covered without a
// change here.

// skipTables are never copied: the destination records its own migrations.
var skipTables = map[string]bool{"schema_migrations": true}

// sqliteOnly reports the SQLite tables PostgreSQL does without: FTS5's
// index and its shadow tables, and the deferred indexer's watermark
// (PostgreSQL indexes in the writing transaction).
func sqliteOnly(name string) bool {
	return name == "fts_state" || name == "messages_fts" || strings.HasPrefix(name, "messages_fts_")
}

// CopyOptions tunes Copy.
type CopyOptions struct {
	// Computed fills columns that only the destination has, keyed
	// "table.column", from the source row (column name → value). A
	// destination-only column without an entry is left to its default.
	Computed map[string]func(row map[string]any) (any, error)
	// Progress, if set, is called after each table with its row count.
	Progress func(table string, rows int64)
}

// TableSum is one table's row count and content checksum: the sum, in
// four 64-bit lanes, of the SHA-256 of each row's canonical encoding
// (order-independent, so both databases may return rows in their own
// collation order).
type TableSum struct {
	Table    string
	Rows     int64
	Checksum string
}

// ErrNotEmpty: Copy fills a fresh database only.
var ErrNotEmpty = errors.New("destination database is not empty")

// column is one column of a destination table and how its values are
// encoded.
type column struct {
	name string
	typ  string // PostgreSQL data type: bigint, integer, text, boolean, bytea, tsvector, …
}

type table struct {
	name   string
	common []column // in both databases: copied and checksummed
	extra  []column // only in the destination: computed or default
}

// Copy copies every table of src (SQLite, migrated to this binary's
// schema) into dst (PostgreSQL, migrated and empty) in one destination
// transaction, keeping ids, then moves identity sequences past the copied
// ids and compares row counts and checksums of both sides. The source is
// read inside one read transaction, so a server writing to it meanwhile
// does not make the copy inconsistent (what it writes later is not
// copied).
func Copy(ctx context.Context, src, dst *sqlx.DB, opts CopyOptions) ([]TableSum, error) {
	if src.DriverName() != SQLite || dst.DriverName() != Postgres {
		return nil, errors.New("db copy: copies from sqlite: to postgres:// only")
	}
	srcConn, err := src.Connx(ctx)
	if err != nil {
		return nil, fmt.Errorf("db copy: source: %w", err)
	}
	defer srcConn.Close()
	if _, err := srcConn.ExecContext(ctx, `BEGIN`); err != nil {
		return nil, fmt.Errorf("db copy: source snapshot: %w", err)
	}
	defer srcConn.ExecContext(context.Background(), `ROLLBACK`)

	tables, err := plan(ctx, srcConn, dst)
	if err != nil {
		return nil, err
	}
	tx, err := dst.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("db copy: destination: %w", err)
	}
	defer tx.Rollback()
	for _, t := range tables {
		var any bool
		if err := tx.GetContext(ctx, &any, `SELECT EXISTS (SELECT 1 FROM `+pq.QuoteIdentifier(t.name)+`)`); err != nil {
			return nil, fmt.Errorf("db copy: %s: %w", t.name, err)
		}
		if any {
			return nil, fmt.Errorf("%w: table %s has rows (db copy fills a freshly migrated database)", ErrNotEmpty, t.name)
		}
	}
	sums := make([]TableSum, 0, len(tables))
	for _, t := range tables {
		// Secondary indexes are built once after the rows are in, which
		// is several times faster than maintaining them row by row (the
		// full-text GIN index above all).
		var idx []struct {
			Name string `db:"indexname"`
			Def  string `db:"indexdef"`
		}
		if err := tx.SelectContext(ctx, &idx, `SELECT indexname, indexdef FROM pg_indexes
			WHERE schemaname = current_schema() AND tablename = $1
			AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = $2::regclass)`, t.name, pq.QuoteIdentifier(t.name)); err != nil {
			return nil, fmt.Errorf("db copy: indexes of %s: %w", t.name, err)
		}
		for _, i := range idx {
			if _, err := tx.ExecContext(ctx, `DROP INDEX `+pq.QuoteIdentifier(i.Name)); err != nil {
				return nil, fmt.Errorf("db copy: %s: %w", t.name, err)
			}
		}
		sum, err := copyTable(ctx, srcConn, tx, t, opts.Computed)
		if err != nil {
			return nil, err
		}
		for _, i := range idx {
			if _, err := tx.ExecContext(ctx, i.Def); err != nil {
				return nil, fmt.Errorf("db copy: rebuild index %s: %w", i.Name, err)
			}
		}
		if err := resetSequences(ctx, tx, t); err != nil {
			return nil, err
		}
		sums = append(sums, sum)
		if opts.Progress != nil {
			opts.Progress(t.name, sum.Rows)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("db copy: commit: %w", err)
	}
	// Verify what the destination now holds against what was read.
	for i, t := range tables {
		got, err := checksum(ctx, dst, t)
		if err != nil {
			return nil, err
		}
		if got != sums[i] {
			return sums, fmt.Errorf("db copy: %s: destination has %d rows (checksum %s), source %d (%s)",
				t.name, got.Rows, got.Checksum, sums[i].Rows, sums[i].Checksum)
		}
	}
	return sums, nil
}

// plan lists the tables to copy in an order that satisfies the
// destination's foreign keys, with the columns both databases have.
func plan(ctx context.Context, src sqlx.QueryerContext, dst *sqlx.DB) ([]table, error) {
	var srcTables []string
	if err := sqlx.SelectContext(ctx, src, &srcTables, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND sql NOT LIKE 'CREATE VIRTUAL%'`); err != nil {
		return nil, fmt.Errorf("db copy: source tables: %w", err)
	}
	var cols []struct {
		Table string `db:"table_name"`
		Name  string `db:"column_name"`
		Type  string `db:"data_type"`
	}
	if err := dst.SelectContext(ctx, &cols, `SELECT table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`); err != nil {
		return nil, fmt.Errorf("db copy: destination columns: %w", err)
	}
	dstCols := map[string][]column{}
	for _, c := range cols {
		typ := c.Type
		if typ == "USER-DEFINED" {
			typ = "other"
		}
		dstCols[c.Table] = append(dstCols[c.Table], column{c.Name, typ})
	}
	var out []table
	for _, name := range srcTables {
		if skipTables[name] || sqliteOnly(name) {
			continue
		}
		dc, ok := dstCols[name]
		if !ok {
			return nil, fmt.Errorf("db copy: table %s exists only in the source", name)
		}
		var sc []struct {
			Name string `db:"name"`
		}
		if err := sqlx.SelectContext(ctx, src, &sc, `SELECT name FROM pragma_table_info(?)`, name); err != nil {
			return nil, fmt.Errorf("db copy: columns of %s: %w", name, err)
		}
		have := map[string]bool{}
		for _, c := range sc {
			have[c.Name] = true
		}
		t := table{name: name}
		for _, c := range dc {
			if have[c.name] {
				t.common = append(t.common, c)
			} else {
				t.extra = append(t.extra, c)
			}
		}
		for n := range have {
			found := false
			for _, c := range dc {
				found = found || c.name == n
			}
			if !found {
				return nil, fmt.Errorf("db copy: column %s.%s exists only in the source", name, n)
			}
		}
		out = append(out, t)
	}
	for name := range dstCols {
		if skipTables[name] {
			continue
		}
		found := false
		for _, t := range out {
			found = found || t.name == name
		}
		if !found {
			return nil, fmt.Errorf("db copy: table %s exists only in the destination (is the source migrated?)", name)
		}
	}
	return orderByForeignKeys(ctx, dst, out)
}

// orderByForeignKeys sorts tables so that a referenced table comes before
// the tables referencing it (ties by name, so the order is stable).
func orderByForeignKeys(ctx context.Context, dst *sqlx.DB, tables []table) ([]table, error) {
	var refs []struct {
		From string `db:"from_table"`
		To   string `db:"to_table"`
	}
	if err := dst.SelectContext(ctx, &refs, `SELECT c.relname AS from_table, r.relname AS to_table
		FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid
		WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace`); err != nil {
		return nil, fmt.Errorf("db copy: foreign keys: %w", err)
	}
	deps := map[string][]string{}
	for _, r := range refs {
		if r.From != r.To {
			deps[r.From] = append(deps[r.From], r.To)
		}
	}
	sort.Slice(tables, func(i, j int) bool { return tables[i].name < tables[j].name })
	byName := map[string]table{}
	for _, t := range tables {
		byName[t.name] = t
	}
	state := map[string]int{} // 1 visiting, 2 done
	var out []table
	var visit func(n string) error
	visit = func(n string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("db copy: foreign keys form a cycle through %s", n)
		case 2:
			return nil
		}
		state[n] = 1
		for _, d := range deps[n] {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[n] = 2
		if t, ok := byName[n]; ok {
			out = append(out, t)
		}
		return nil
	}
	for _, t := range tables {
		if err := visit(t.name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// copyTable streams one table into the destination with COPY and returns
// the count and checksum of what it read.
func copyTable(ctx context.Context, src sqlx.QueryerContext, tx *sqlx.Tx, t table, computed map[string]func(map[string]any) (any, error)) (TableSum, error) {
	names := make([]string, 0, len(t.common)+len(t.extra))
	for _, c := range t.common {
		names = append(names, c.name)
	}
	var fill []column
	for _, c := range t.extra {
		if computed[t.name+"."+c.name] != nil {
			names = append(names, c.name)
			fill = append(fill, c)
		}
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = pq.QuoteIdentifier(n)
	}
	stmt, err := tx.PrepareContext(ctx, `COPY `+pq.QuoteIdentifier(t.name)+` (`+strings.Join(quoted, ", ")+`) FROM STDIN`)
	if err != nil {
		return TableSum{}, fmt.Errorf("db copy: %s: %w", t.name, err)
	}
	defer stmt.Close()
	out := make([]any, len(names))
	sum, err := readTable(ctx, src, t, "read", func(vals []any) error {
		copy(out, vals)
		if len(fill) > 0 {
			row := make(map[string]any, len(t.common))
			for i, c := range t.common {
				row[c.name] = vals[i]
			}
			for j, c := range fill {
				v, err := computed[t.name+"."+c.name](row)
				if err != nil {
					return fmt.Errorf("%s.%s: %w", t.name, c.name, err)
				}
				out[len(t.common)+j] = v
			}
		}
		if _, err := stmt.ExecContext(ctx, out...); err != nil {
			return fmt.Errorf("write %s: %w", t.name, err)
		}
		return nil
	})
	if err != nil {
		return TableSum{}, err
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return TableSum{}, fmt.Errorf("db copy: write %s: %w", t.name, err)
	}
	return sum, nil
}

// convert turns a value read from SQLite into what the destination
// column takes.
func convert(v any, typ string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case "boolean":
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			return x != 0, nil
		}
	case "bigint", "integer", "smallint":
		switch x := v.(type) {
		case int64:
			return x, nil
		case float64:
			if x == math.Trunc(x) {
				return int64(x), nil
			}
		case string:
			return strconv.ParseInt(x, 10, 64)
		}
	case "bytea":
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
	case "double precision", "real":
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		}
	default: // text and the like
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		}
	}
	return nil, fmt.Errorf("value %T %v does not fit a %s column", v, v, typ)
}

// resetSequences moves the identity sequences of t past the copied ids.
func resetSequences(ctx context.Context, tx *sqlx.Tx, t table) error {
	for _, c := range t.common {
		var seq sql.NullString
		if err := tx.GetContext(ctx, &seq, `SELECT pg_get_serial_sequence($1, $2)`, pq.QuoteIdentifier(t.name), c.name); err != nil {
			return fmt.Errorf("db copy: sequence of %s.%s: %w", t.name, c.name, err)
		}
		if !seq.Valid {
			continue
		}
		q := `SELECT setval($1, GREATEST(COALESCE(MAX(` + pq.QuoteIdentifier(c.name) + `), 0), 1), MAX(` + pq.QuoteIdentifier(c.name) + `) IS NOT NULL) FROM ` + pq.QuoteIdentifier(t.name)
		if _, err := tx.ExecContext(ctx, q, seq.String); err != nil {
			return fmt.Errorf("db copy: sequence of %s.%s: %w", t.name, c.name, err)
		}
	}
	return nil
}

// checksum reads a table of db back and sums it like copyTable did.
func checksum(ctx context.Context, db sqlx.QueryerContext, t table) (TableSum, error) {
	return readTable(ctx, db, t, "verify", func([]any) error { return nil })
}

// readTable reads the common columns of every row of t from db, converted
// to the destination's types, hands each row to f (the slice is reused)
// and returns the table's count and checksum.
func readTable(ctx context.Context, db sqlx.QueryerContext, t table, what string, f func(vals []any) error) (TableSum, error) {
	sel := make([]string, len(t.common))
	for i, c := range t.common {
		sel[i] = `"` + c.name + `"`
	}
	rows, err := db.QueryContext(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM "`+t.name+`"`)
	if err != nil {
		return TableSum{}, fmt.Errorf("db copy: %s %s: %w", what, t.name, err)
	}
	defer rows.Close()
	acc := newSum(t.name)
	raw := make([]any, len(t.common))
	ptrs := make([]any, len(raw))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	vals := make([]any, len(raw))
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return TableSum{}, fmt.Errorf("db copy: %s %s: %w", what, t.name, err)
		}
		for i, c := range t.common {
			v, err := convert(raw[i], c.typ)
			if err != nil {
				return TableSum{}, fmt.Errorf("db copy: %s %s.%s: %w", what, t.name, c.name, err)
			}
			vals[i] = v
		}
		acc.add(vals, t.common)
		if err := f(vals); err != nil {
			return TableSum{}, fmt.Errorf("db copy: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return TableSum{}, fmt.Errorf("db copy: %s %s: %w", what, t.name, err)
	}
	return acc.sum(), nil
}

type rowSum struct {
	table string
	rows  int64
	lanes [4]uint64
	buf   []byte
}

func newSum(table string) *rowSum { return &rowSum{table: table} }

// add hashes one row: each value tagged with its kind and length, so that
// no two different rows encode alike.
func (s *rowSum) add(vals []any, cols []column) {
	b := s.buf[:0]
	for i, v := range vals {
		b = append(b, cols[i].name...)
		b = append(b, 0)
		switch x := v.(type) {
		case nil:
			b = append(b, 'N')
		case bool:
			if x {
				b = append(b, 'T')
			} else {
				b = append(b, 'F')
			}
		case int64:
			b = append(b, 'I')
			b = strconv.AppendInt(b, x, 10)
		case float64:
			b = append(b, 'D')
			b = strconv.AppendFloat(b, x, 'g', -1, 64)
		case string:
			b = append(b, 'S')
			b = binary.AppendUvarint(b, uint64(len(x)))
			b = append(b, x...)
		case []byte:
			b = append(b, 'B')
			b = binary.AppendUvarint(b, uint64(len(x)))
			b = append(b, x...)
		}
		b = append(b, 0)
	}
	s.buf = b
	h := sha256.Sum256(b)
	for i := range s.lanes {
		s.lanes[i] += binary.BigEndian.Uint64(h[i*8:])
	}
	s.rows++
}

func (s *rowSum) sum() TableSum {
	var b [32]byte
	for i, l := range s.lanes {
		binary.BigEndian.PutUint64(b[i*8:], l)
	}
	return TableSum{Table: s.table, Rows: s.rows, Checksum: hex.EncodeToString(b[:8])}
}

// Backup writes a consistent copy of a SQLite database, live or not, to
// path (which must not exist) with VACUUM INTO, then checks the copy's
// integrity. Readers and writers of the live database go on meanwhile:
// the copy is the database as of the start of the backup.
func Backup(ctx context.Context, db *sqlx.DB, path string) (time.Duration, error) {
	if db.DriverName() != SQLite {
		return 0, errors.New("backup: only the embedded SQLite database is backed up here; for PostgreSQL use pg_dump")
	}
	if _, err := os.Stat(path); err == nil {
		return 0, fmt.Errorf("backup: %s already exists", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("backup: %w", err)
	}
	start := time.Now()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		os.Remove(path)
		return 0, fmt.Errorf("backup: %w", err)
	}
	took := time.Since(start)
	check, err := sqlx.Open(SQLite, "file:"+path+"?mode=ro")
	if err != nil {
		return 0, fmt.Errorf("backup: check: %w", err)
	}
	defer check.Close()
	var res string
	if err := check.GetContext(ctx, &res, `PRAGMA quick_check`); err != nil {
		return 0, fmt.Errorf("backup: check: %w", err)
	}
	if res != "ok" {
		return 0, fmt.Errorf("backup: the copy at %s fails its integrity check: %s", path, res)
	}
	return took, nil
}
