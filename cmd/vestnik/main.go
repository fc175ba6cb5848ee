// Command vestnik is the Vestnik messenger server and its admin tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `usage:
  vestnik serve   [--domain localhost] [--db sqlite:./data/vestnik.db]
                  [--http 127.0.0.1:8080] [--c2s 127.0.0.1:5222]
                  [--tls-cert FILE --tls-key FILE] [--data ./data] [--demo=auto|on|off]
  vestnik migrate [--db URL]
  vestnik org import FILE [--db URL] [--dry-run] [--force] [--max-deactivated-share 0.5]
  vestnik user passwd LOGIN [--db URL]
  vestnik token create NAME [--scope post,read,org,login,admin] [--as-user ID] [--db URL]
  vestnik token list [--db URL]
  vestnik token revoke ID|NAME [--db URL]
  vestnik backup FILE [--db sqlite:PATH]          consistent copy of a running server's SQLite
  vestnik db copy --from sqlite:PATH --to postgres://…   move an installation to PostgreSQL
  vestnik user logout LOGIN [--db URL]
Every flag can also be set as VESTNIK_<FLAG> in the environment.`

// helpText is a command's flags, asked for with -h or --help: printed to
// standard output, exit status 0.
type helpText string

func (h helpText) Error() string { return string(h) }

// errUsage asks main to print the usage text.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	var help helpText
	if errors.As(err, &help) {
		fmt.Fprint(os.Stdout, string(help))
		os.Exit(0)
	}
	if err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, usage)
		} else {
			fmt.Fprintln(os.Stderr, "vestnik: "+err.Error())
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, rest, stdout)
	case "org":
		return cmdOrg(ctx, rest, stdout)
	case "user":
		return cmdUser(ctx, rest, stdin, stdout)
	case "token":
		return cmdToken(ctx, rest, stdout)
	case "backup":
		return cmdBackup(ctx, rest, stdout)
	case "db":
		return cmdDB(ctx, rest, stdout)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q (see 'vestnik help')", cmd)
}

// parseFlags parses flags that may stand before or after positional
// arguments, fills unset flags from VESTNIK_* environment variables, and
// returns the positional arguments. want is the number of positional
// arguments required.
func parseFlags(fs *flag.FlagSet, args []string, want int) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				var b strings.Builder
				fmt.Fprintf(&b, "vestnik %s flags (each also VESTNIK_<FLAG>):\n", fs.Name())
				fs.SetOutput(&b)
				fs.PrintDefaults()
				return nil, helpText(b.String())
			}
			return nil, fmt.Errorf("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s: bad value %q in %s: %v", fs.Name(), v, envName(f.Name), err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if len(pos) != want {
		return nil, fmt.Errorf("%s: want %d argument(s), got %d", fs.Name(), want, len(pos))
	}
	return pos, nil
}

func envName(flagName string) string {
	b := []byte("VESTNIK_" + flagName)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
