package roster

import (
	"context"
	"strings"

	"github.com/jmoiron/sqlx"
)

// insertRows runs "INSERT INTO table (cols) VALUES (…),(…)" in batches.
func insertRows(ctx context.Context, tx *sqlx.Tx, table string, cols []string, rows [][]any) error {
	return batch(len(rows), len(cols), func(lo, hi int) error {
		q, args := valuesSQL("INSERT INTO "+table+" ("+strings.Join(cols, ", ")+") VALUES ", nil, rows[lo:hi])
		_, err := tx.ExecContext(ctx, tx.Rebind(q), args...)
		return err
	})
}

// insertReturning is insertRows with "RETURNING ret" scanned by scan.
func insertReturning(ctx context.Context, tx *sqlx.Tx, table string, cols []string, rows [][]any, ret string, scan func(*sqlx.Rows) error) error {
	return batch(len(rows), len(cols), func(lo, hi int) error {
		q, args := valuesSQL("INSERT INTO "+table+" ("+strings.Join(cols, ", ")+") VALUES ", nil, rows[lo:hi])
		rs, err := tx.QueryxContext(ctx, tx.Rebind(q+" RETURNING "+ret), args...)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			if err := scan(rs); err != nil {
				return err
			}
		}
		return rs.Err()
	})
}

// updateRows updates table rows by id in batches with one statement per
// batch: WITH v(id, c1…) AS (VALUES …) UPDATE table SET c1 = v.c1 … FROM v.
// types gives the SQL type of each value column (for PostgreSQL, which
// cannot infer the types of parameters in VALUES).
func updateRows(ctx context.Context, tx *sqlx.Tx, table string, cols, types []string, rows [][]any) error {
	casts := append([]string{"BIGINT"}, types...)
	return batch(len(rows), len(cols)+1, func(lo, hi int) error {
		var set []string
		for _, c := range cols {
			set = append(set, c+" = v."+c)
		}
		head := "WITH v(id, " + strings.Join(cols, ", ") + ") AS (VALUES "
		q, args := valuesSQL(head, casts, rows[lo:hi])
		q += ") UPDATE " + table + " SET " + strings.Join(set, ", ") + " FROM v WHERE " + table + ".id = v.id"
		_, err := tx.ExecContext(ctx, tx.Rebind(q), args...)
		return err
	})
}

// valuesSQL appends "(?,?),(?,?)" for rows to head, with CAST(? AS type)
// when casts is given.
func valuesSQL(head string, casts []string, rows [][]any) (string, []any) {
	var b strings.Builder
	b.WriteString(head)
	var args []any
	for i, r := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j, v := range r {
			if j > 0 {
				b.WriteByte(',')
			}
			if casts != nil {
				b.WriteString("CAST(? AS " + casts[j] + ")")
			} else {
				b.WriteByte('?')
			}
			args = append(args, v)
		}
		b.WriteByte(')')
	}
	return b.String(), args
}

// deleteIn runs "DELETE FROM table WHERE col IN (…)" in batches.
func deleteIn(ctx context.Context, tx *sqlx.Tx, table, col string, ids []int64) error {
	return batch(len(ids), 1, func(lo, hi int) error {
		q, args, err := sqlx.In("DELETE FROM "+table+" WHERE "+col+" IN (?)", ids[lo:hi])
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, tx.Rebind(q), args...)
		return err
	})
}
