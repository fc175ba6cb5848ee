package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/roster"
)

const orgJSON = `{
  "departments": [
    {"id": "1", "name": "Компания", "parent": null, "head": "1"},
    {"id": "7", "name": "Отдел продаж", "parent": "1", "head": "21"}
  ],
  "employees": [
    {"id": "1", "login": "director", "name": "Ирина Петрова", "title": "Генеральный директор", "departments": ["1"], "password": "start"},
    {"id": "21", "login": "ivanov", "name": "Иван Иванов", "departments": ["7"], "manager": "1", "active": true},
    {"id": "22", "login": "petrov", "name": "Пётр Петров", "departments": ["7"]}
  ]
}`

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func openStore(t *testing.T, url string) *roster.Store {
	t.Helper()
	db, err := migrations.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := migrations.Up(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return roster.NewStore(db)
}

func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), err
}

func TestAdminCommands(t *testing.T) {
	for _, backend := range dbtest.Backends(t) {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			url := dbtest.URL(t, backend)
			file := writeFile(t, "org.json", orgJSON)

			out, err := runCLI(t, "", "org", "import", file, "--db", url, "--dry-run")
			if err != nil || !strings.Contains(out, "3 created") || !strings.Contains(out, "dry run") {
				t.Fatalf("dry run: %v\n%s", err, out)
			}
			st := openStore(t, url)
			if us, _ := st.Users(ctx); len(us) != 0 {
				t.Fatalf("dry run created %d users", len(us))
			}
			out, err = runCLI(t, "", "org", "import", "--db", url, file)
			if err != nil || !strings.Contains(out, "created ivanov") || !strings.Contains(out, "3 created") {
				t.Fatalf("import: %v\n%s", err, out)
			}
			if _, err := st.CheckPassword(ctx, "director", "start"); err != nil {
				t.Fatalf("password from the import: %v", err)
			}

			out, err = runCLI(t, "n3w pässword\nsecond line ignored\n", "user", "passwd", "ivanov", "--db", url)
			if err != nil || !strings.Contains(out, "password of ivanov changed") {
				t.Fatalf("passwd: %v\n%s", err, out)
			}
			if _, err := st.CheckPassword(ctx, "ivanov", "n3w pässword"); err != nil {
				t.Fatalf("new password: %v", err)
			}
			if _, err := runCLI(t, "\n", "user", "passwd", "ivanov", "--db", url); err == nil || !strings.Contains(err.Error(), "no password") {
				t.Fatalf("empty password: got %v", err)
			}
			if _, err := runCLI(t, "x\n", "user", "passwd", "nobody", "--db", url); err == nil || !strings.Contains(err.Error(), `no user with login "nobody"`) {
				t.Fatalf("unknown login: got %v", err)
			}

			out, err = runCLI(t, "", "token", "create", "portal", "--db", url)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.VerifyToken(ctx, strings.TrimSpace(out)); err != nil {
				t.Fatalf("printed token %q does not verify: %v", out, err)
			}
			out, err = runCLI(t, "", "token", "create", "bot", "--scope", "read,post", "--as-user", "21", "--db", url)
			if err != nil {
				t.Fatal(err)
			}
			bot, err := st.TokenBySecret(ctx, strings.TrimSpace(out))
			if err != nil || !bot.Allows(roster.ScopeRead) || bot.Allows(roster.ScopeOrg) || bot.AsLogin != "ivanov" {
				t.Fatalf("scoped token: %+v %v", bot, err)
			}
			if _, err := runCLI(t, "", "token", "create", "x", "--scope", "everything", "--db", url); err == nil || !strings.Contains(err.Error(), `unknown scope "everything"`) {
				t.Fatalf("bad scope: got %v", err)
			}
			if _, err := runCLI(t, "", "token", "create", "x", "--as-user", "999", "--db", url); err == nil || !strings.Contains(err.Error(), "no such user") {
				t.Fatalf("bad --as-user: got %v", err)
			}
			out, err = runCLI(t, "", "token", "list", "--db", url)
			if err != nil || !strings.Contains(out, "portal") || !strings.Contains(out, "read,post") || !strings.Contains(out, "ivanov") || !strings.Contains(out, "never") {
				t.Fatalf("token list: %v\n%s", err, out)
			}
			if out, err = runCLI(t, "", "token", "revoke", "bot", "--db", url); err != nil || !strings.Contains(out, "revoked token") {
				t.Fatalf("token revoke: %v %s", err, out)
			}
			if out, _ = runCLI(t, "", "token", "list", "--db", url); !strings.Contains(out, "revoked 2") {
				t.Fatalf("token list after revoke:\n%s", out)
			}
			if _, err := runCLI(t, "", "token", "revoke", "bot", "--db", url); err == nil || !strings.Contains(err.Error(), "no live token") {
				t.Fatalf("revoke twice: got %v", err)
			}

			// CSV, a full snapshot: petrov is missing and is deactivated.
			csvFile := writeFile(t, "org.csv", "id,login,name,email,title,department,manager,active\n"+
				"1,director,Ирина Петрова,,Генеральный директор,Компания,,\n"+
				"21,ivanov,Иван Иванов,,,Компания/Отдел продаж,1,true\n")
			out, err = runCLI(t, "", "org", "import", csvFile, "--db", url)
			if err != nil || !strings.Contains(out, "1 deactivated") {
				t.Fatalf("csv import: %v\n%s", err, out)
			}
			if _, err := st.CheckPassword(ctx, "petrov", "x"); !errors.Is(err, roster.ErrNotFound) {
				t.Fatalf("deactivated petrov: %v", err)
			}
		})
	}
}

func TestAdminErrors(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "v.db")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"org without subcommand", []string{"org"}, "org: missing subcommand"},
		{"org unknown subcommand", []string{"org", "export"}, `org: unknown subcommand "export"`},
		{"user unknown subcommand", []string{"user", "add", "x"}, `user: unknown subcommand "add"`},
		{"token unknown subcommand", []string{"token", "frobnicate"}, `token: unknown subcommand "frobnicate"`},
		{"import without file", []string{"org", "import", "--db", url}, "want 1 argument(s)"},
		{"import bad extension", []string{"org", "import", "org.xml", "--db", url}, "want a .json or .csv file"},
		{"import missing file", []string{"org", "import", filepath.Join(t.TempDir(), "none.json"), "--db", url}, "no such file"},
		{"token without name", []string{"token", "create", "--db", url}, "want 1 argument(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCLI(t, "", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

// TestAdminBinary runs the built binary: exit status, one problem per line
// on standard error, and nothing applied for an invalid import.
func TestAdminBinary(t *testing.T) {
	bin := buildBinary(t)
	url := "sqlite:" + filepath.Join(t.TempDir(), "v.db")
	bad := writeFile(t, "bad.json", `{"employees": [
		{"id": "1", "login": "a", "name": "A"},
		{"id": "1", "login": "b c", "name": "B", "manager": "9"}]}`)
	cmd := exec.Command(bin, "org", "import", bad, "--db", url)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("invalid import: got %v, want exit status 1", err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "vestnik: org import: ") ||
		!strings.HasPrefix(lines[1], "employees[1] (id 1): id: duplicate id") ||
		!strings.HasPrefix(lines[2], "employees[1] (id 1): login:") ||
		!strings.HasPrefix(lines[3], "employees[1] (id 1): manager: unknown employee 9") {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
	if us, err := openStore(t, url).Users(context.Background()); err != nil || len(us) != 0 {
		t.Fatalf("invalid import applied %d users", len(us))
	}

	cmd = exec.Command(bin, "user", "passwd", "nobody", "--db", url)
	cmd.Stdin = strings.NewReader("pw\n")
	out, err := cmd.CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Fatalf("passwd of unknown user: %v, output %q; want exit 1 and one line", err, out)
	}

	good := writeFile(t, "org.json", orgJSON)
	cmd = exec.Command(bin, "org", "import", good)
	cmd.Env = append(os.Environ(), "VESTNIK_DB="+url, "VESTNIK_DRY_RUN=true")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "dry run") {
		t.Fatalf("flags from the environment: %v\n%s", err, out)
	}
}

func TestLoadDemo(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, dbtest.URL(t, migrations.SQLite))
	var out bytes.Buffer
	if err := loadDemo(ctx, st, "off", &out); err != nil || out.Len() != 0 {
		t.Fatalf("off: %v %q", err, out.String())
	}
	if us, _ := st.Users(ctx); len(us) != 0 {
		t.Fatal("--demo=off loaded users")
	}
	if err := loadDemo(ctx, st, "auto", &out); err != nil || !strings.Contains(out.String(), "Demo company loaded") ||
		!strings.Contains(out.String(), `password "demo"`) {
		t.Fatalf("auto on an empty database: %v %q", err, out.String())
	}
	us, _ := st.Users(ctx)
	if len(us) < 25 {
		t.Fatalf("demo company has %d active users", len(us))
	}
	for _, login := range []string{"director", "ivanov", "petrova", "alice", "bob"} {
		if _, err := st.CheckPassword(ctx, login, "demo"); err != nil {
			t.Errorf("demo login %s: %v", login, err)
		}
	}
	deps, _ := st.Departments(ctx)
	nested := 0
	for _, d := range deps {
		if d.ParentID != 0 {
			nested++
		}
	}
	if len(deps) < 5 || nested < 4 {
		t.Fatalf("demo departments: %d (%d nested)", len(deps), nested)
	}
	out.Reset()
	if err := loadDemo(ctx, st, "auto", &out); err != nil || strings.Contains(out.String(), "loaded") || !strings.Contains(out.String(), "Log in as") {
		t.Fatalf("auto on a loaded database: %v %q", err, out.String())
	}
}

// TestServeLoadsDemo starts the real server: --demo=off leaves the database
// empty, the default (auto) loads the demo company once and says how to
// log in.
func TestServeLoadsDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	url := dbtest.URL(t, migrations.SQLite)
	s := startServer(t, bin, url, "--demo=off")
	s.stop(t)
	if strings.Contains(s.out.String(), "Log in as") {
		t.Fatalf("--demo=off printed demo logins:\n%s", s.out)
	}
	s = startServer(t, bin, url)
	s.stop(t)
	if out := s.out.String(); !strings.Contains(out, "Demo company loaded: 30 employees") || !strings.Contains(out, `password "demo"`) {
		t.Fatalf("first start with --demo=auto:\n%s", out)
	}
	if _, err := openStore(t, url).CheckPassword(context.Background(), "alice", "demo"); err != nil {
		t.Fatalf("demo login after serve: %v", err)
	}
}

func TestOrgImportRefusesMassDeactivation(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "v.db")
	if _, err := runCLI(t, "", "org", "import", writeFile(t, "org.json", orgJSON), "--db", url); err != nil {
		t.Fatal(err)
	}
	empty := writeFile(t, "empty.json", `{"departments": [], "employees": []}`)
	_, err := runCLI(t, "", "org", "import", empty, "--db", url)
	if err == nil || !strings.Contains(err.Error(), "active employees") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("empty snapshot: got %v, want a refusal naming --force", err)
	}
	if us, _ := openStore(t, url).Users(context.Background()); len(us) == 0 {
		t.Fatal("the refused import deactivated employees")
	}
	if _, err := runCLI(t, "", "org", "import", empty, "--db", url, "--max-deactivated-share", "2"); err == nil {
		t.Fatal("--max-deactivated-share 2 accepted")
	}
	if _, err := runCLI(t, "", "org", "import", empty, "--db", url, "--force"); err != nil {
		t.Fatalf("forced: %v", err)
	}
	if us, _ := openStore(t, url).Users(context.Background()); len(us) != 0 {
		t.Fatalf("forced import left %d active", len(us))
	}
}

func TestUserLogout(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "v.db")
	if _, err := runCLI(t, "", "org", "import", writeFile(t, "org.json", orgJSON), "--db", url); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "", "user", "logout", "ivanov", "--db", url)
	if err != nil || !strings.Contains(out, "every session of ivanov ended") {
		t.Fatalf("logout: %q %v", out, err)
	}
	if _, err := runCLI(t, "", "user", "logout", "nobody", "--db", url); err == nil || !strings.Contains(err.Error(), `no user with login "nobody"`) {
		t.Fatalf("logout nobody: %v", err)
	}
	if _, err := runCLI(t, "", "user", "frobnicate"); err == nil || !strings.Contains(err.Error(), "passwd|logout") {
		t.Fatalf("unknown subcommand: %v", err)
	}
}
