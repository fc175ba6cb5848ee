package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"vestnik/roster"
)

// cmdOrg runs `vestnik org import FILE [--db URL] [--dry-run] [--force]`.
func cmdOrg(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		return subErr("org", args, "import")
	}
	fs := flag.NewFlagSet("org import", flag.ContinueOnError)
	dbURL := fs.String("db", defaultDB, "database URL")
	dryRun := fs.Bool("dry-run", false, "show what would change, change nothing")
	force := fs.Bool("force", false, "apply even if it deactivates more than --max-deactivated-share of active employees")
	share := fs.Float64("max-deactivated-share", roster.MaxDeactivatedShare, "share of active employees an import may deactivate without --force (0 < share <= 1)")
	pos, err := parseFlags(fs, args[1:], 1)
	if err != nil {
		return err
	}
	if *share <= 0 || *share > 1 {
		return errors.New("org import: --max-deactivated-share must be in (0, 1]")
	}
	snap, err := readSnapshot(pos[0])
	if err != nil {
		return fmt.Errorf("org import: %w", err)
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := roster.NewStore(db).ImportWith(ctx, snap, roster.ImportOptions{DryRun: *dryRun, Force: *force, MaxDeactivatedShare: *share})
	if errors.Is(err, roster.ErrMassDeactivation) {
		return fmt.Errorf("org import: %s (--force)", strings.TrimPrefix(err.Error(), "roster: "))
	}
	if err != nil {
		return fmt.Errorf("org import: %w", err)
	}
	printReport(stdout, rep)
	return nil
}

// readSnapshot parses an HR import file by its extension.
func readSnapshot(path string) (*roster.Snapshot, error) {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".json" && ext != ".csv" {
		return nil, fmt.Errorf("%s: want a .json or .csv file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var snap *roster.Snapshot
	if ext == ".json" {
		snap, err = roster.ParseJSON(f)
	} else {
		snap, err = roster.ParseCSV(f)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return snap, nil
}

func printReport(w io.Writer, rep *roster.Report) {
	for _, l := range rep.Lines {
		fmt.Fprintln(w, l)
	}
	if rep.More > 0 {
		fmt.Fprintf(w, "… and %d more changes\n", rep.More)
	}
	fmt.Fprintln(w, rep.String())
}

// cmdUser runs `vestnik user passwd LOGIN [--db URL]`, the password being
// the first line of standard input.
func cmdUser(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "logout" {
		return cmdUserLogout(ctx, args[1:], stdout)
	}
	if len(args) == 0 || args[0] != "passwd" {
		return subErr("user", args, "passwd|logout")
	}
	fs := flag.NewFlagSet("user passwd", flag.ContinueOnError)
	dbURL := fs.String("db", defaultDB, "database URL")
	pos, err := parseFlags(fs, args[1:], 1)
	if err != nil {
		return err
	}
	login := pos[0]
	password, err := readPassword(stdin)
	if err != nil {
		return fmt.Errorf("user passwd: %w", err)
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := roster.NewStore(db).SetPassword(ctx, login, password); err != nil {
		if errors.Is(err, roster.ErrNotFound) {
			return fmt.Errorf("user passwd: no user with login %q", login)
		}
		return fmt.Errorf("user passwd: %w", err)
	}
	fmt.Fprintf(stdout, "password of %s changed\n", login)
	return nil
}

// cmdUserLogout runs `vestnik user logout LOGIN [--db URL]`: every session
// of the user ends (web cookies and login links at once, XMPP streams and
// web client connections within seconds on every running node).
func cmdUserLogout(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("user logout", flag.ContinueOnError)
	dbURL := fs.String("db", defaultDB, "database URL")
	pos, err := parseFlags(fs, args, 1)
	if err != nil {
		return err
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := roster.NewStore(db).Logout(ctx, pos[0]); err != nil {
		if errors.Is(err, roster.ErrNotFound) {
			return fmt.Errorf("user logout: no user with login %q", pos[0])
		}
		return fmt.Errorf("user logout: %w", err)
	}
	fmt.Fprintf(stdout, "every session of %s ended\n", pos[0])
	return nil
}

// readPassword returns the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	if r == nil {
		return "", errors.New("no password on standard input")
	}
	br := bufio.NewReaderSize(io.LimitReader(r, roster.MaxPasswordLen+2), roster.MaxPasswordLen+2)
	line, err := br.ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read standard input: %w", err)
	}
	if err == io.EOF && len(line) > roster.MaxPasswordLen {
		return "", fmt.Errorf("password longer than %d bytes", roster.MaxPasswordLen)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on standard input (want it on the first line)")
	}
	return line, nil
}

// cmdToken runs `vestnik token create NAME [--scope LIST] [--as-user ID]`,
// `vestnik token list` and `vestnik token revoke ID|NAME`.
func cmdToken(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return subErr("token", args, "create|list|revoke")
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	dbURL := fs.String("db", defaultDB, "database URL")
	switch args[0] {
	case "create":
		scope := fs.String("scope", "", "comma-separated scopes: "+strings.Join(roster.Scopes, ", ")+" (default admin: all)")
		asUser := fs.String("as-user", "", "portal id of the only user the token may act as")
		pos, err := parseFlags(fs, args[1:], 1)
		if err != nil {
			return err
		}
		scopes, err := roster.ParseScopes(*scope)
		if err != nil {
			return fmt.Errorf("token create: --scope: %w", err)
		}
		db, err := openDB(ctx, *dbURL)
		if err != nil {
			return err
		}
		defer db.Close()
		st := roster.NewStore(db)
		var uid int64
		if *asUser != "" {
			u, err := st.UserByExtID(ctx, *asUser)
			if err != nil {
				return fmt.Errorf("token create: --as-user %q: no such user", *asUser)
			}
			uid = u.ID
		}
		tok, err := st.CreateScopedToken(ctx, pos[0], scopes, uid)
		if err != nil {
			return fmt.Errorf("token create: %w", err)
		}
		fmt.Fprintln(stdout, tok)
		return nil
	case "list":
		if _, err := parseFlags(fs, args[1:], 0); err != nil {
			return err
		}
		db, err := openDB(ctx, *dbURL)
		if err != nil {
			return err
		}
		defer db.Close()
		toks, err := roster.NewStore(db).Tokens(ctx)
		if err != nil {
			return fmt.Errorf("token list: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tAS USER\tCREATED\tLAST USED\tSTATE")
		for _, t := range toks {
			as, used, state := "any", "never", "active"
			if t.AsUser != 0 {
				as = t.AsLogin
			}
			if t.LastUsed != nil {
				used = t.LastUsed.Format(time.DateTime)
			}
			if t.Revoked != nil {
				state = "revoked " + t.Revoked.Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(t.Scopes, ","), as, t.Created.Format(time.DateTime), used, state)
		}
		return tw.Flush()
	case "revoke":
		pos, err := parseFlags(fs, args[1:], 1)
		if err != nil {
			return err
		}
		db, err := openDB(ctx, *dbURL)
		if err != nil {
			return err
		}
		defer db.Close()
		t, err := roster.NewStore(db).RevokeToken(ctx, pos[0])
		if errors.Is(err, roster.ErrNotFound) {
			return fmt.Errorf("token revoke: no live token %q (vestnik token list)", pos[0])
		}
		if err != nil {
			return fmt.Errorf("token revoke: %w", err)
		}
		fmt.Fprintf(stdout, "revoked token %d (%s); running servers refuse it within 10 seconds\n", t.ID, t.Name)
		return nil
	}
	return subErr("token", args, "create|list|revoke")
}

func subErr(cmd string, args []string, want string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s: missing subcommand (want '%s %s')", cmd, cmd, want)
	}
	return fmt.Errorf("%s: unknown subcommand %q (want '%s %s')", cmd, args[0], cmd, want)
}

// loadDemo loads the demo company per --demo: "auto" into an empty
// database, "on" always, "off" never. It prints how to log in when the demo
// accounts are there.
func loadDemo(ctx context.Context, st *roster.Store, mode string, stdout io.Writer) error {
	if mode == "off" {
		return nil
	}
	load := mode == "on"
	if mode == "auto" {
		us, err := st.Users(ctx)
		if err != nil {
			return err
		}
		load = len(us) == 0
		if !load {
			// Already loaded on an earlier start, or real data: say how
			// to log in only when the demo accounts are still there.
			if _, err := st.CheckPassword(ctx, "director", roster.DemoPassword); err != nil {
				return nil
			}
		}
	}
	if load {
		rep, err := st.Import(ctx, roster.DemoSnapshot(), false)
		if err != nil {
			return fmt.Errorf("demo company: %w", err)
		}
		fmt.Fprintf(stdout, "Demo company loaded: %d employees.\n", rep.Created)
	}
	fmt.Fprintf(stdout, "Log in as director, ivanov, petrova, alice or bob with password %q.\n", roster.DemoPassword)
	return nil
}
