package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"vestnik/migrations"
	"vestnik/xmppcore/mam"
)

// cmdBackup runs `vestnik backup FILE [--db sqlite:…]`: a consistent copy
// of the SQLite database, also while a server is using it.
func cmdBackup(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	dbURL := fs.String("db", defaultDB, "database URL (sqlite:PATH)")
	pos, err := parseFlags(fs, args, 1)
	if err != nil {
		return err
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	took, err := migrations.Backup(ctx, db, pos[0])
	if err != nil {
		return err
	}
	st, err := os.Stat(pos[0])
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup written to %s (%d bytes in %s, integrity ok); serve it with --db sqlite:%s\n",
		pos[0], st.Size(), took.Round(time.Millisecond), pos[0])
	return nil
}

// cmdDB runs `vestnik db copy --from sqlite:… --to postgres://…`.
func cmdDB(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "copy" {
		return subErr("db", args, "copy")
	}
	fs := flag.NewFlagSet("db copy", flag.ContinueOnError)
	from := fs.String("from", defaultDB, "source database (sqlite:PATH)")
	to := fs.String("to", "", "destination database (postgres://…), migrated here and empty")
	if _, err := parseFlags(fs, args[1:], 0); err != nil {
		return err
	}
	if *to == "" {
		return fmt.Errorf("db copy: --to is required (a postgres:// URL)")
	}
	src, err := openDB(ctx, *from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openDB(ctx, *to)
	if err != nil {
		return err
	}
	defer dst.Close()
	start := time.Now()
	sums, err := migrations.Copy(ctx, src, dst, migrations.CopyOptions{
		Computed: map[string]func(map[string]any) (any, error){"messages.fts": messageTerms},
	})
	if err != nil {
		return err
	}
	if err := mam.AfterCopy(ctx, dst); err != nil {
		return err
	}
	took := time.Since(start)
	var total, msgs int64
	for _, s := range sums {
		fmt.Fprintf(stdout, "%-24s %10d rows  checksum %s  ok\n", s.Table, s.Rows, s.Checksum)
		total += s.Rows
		if s.Table == "messages" {
			msgs = s.Rows
		}
	}
	fmt.Fprintf(stdout, "copied %d rows in %d tables in %s (%.0f messages/s), verified\n",
		total, len(sums), took.Round(time.Millisecond), float64(msgs)/took.Seconds())
	return nil
}

// messageTerms computes the PostgreSQL full-text column of a copied
// message (SQLite keeps its index elsewhere) from the row's values.
func messageTerms(row map[string]any) (any, error) {
	m := mam.Message{Kind: str(row["kind"]), Body: str(row["body"])}
	m.FromID, _ = row["from_id"].(int64)
	m.ToID, _ = row["to_id"].(int64)
	m.ChatID, _ = row["chat_id"].(int64)
	m.Deleted, _ = row["deleted"].(bool)
	if t := mam.IndexTerms(&m); t != "" {
		return t, nil
	}
	return nil, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
