package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations"
)

const defaultDB = "sqlite:./data/vestnik.db"

// openDB opens and migrates the database; every subcommand starts here.
func openDB(ctx context.Context, url string) (*sqlx.DB, error) {
	db, err := migrations.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if _, err := migrations.Up(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func cmdMigrate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	dbURL := fs.String("db", defaultDB, "database URL")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	db, err := migrations.Open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := migrations.Up(ctx, db)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied %d migration(s)\n", n)
	return nil
}
