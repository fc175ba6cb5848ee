package webclient

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// need skips the test when a tool is missing, or fails it under
// VESTNIK_REQUIRE_ALL=1.
func need(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("VESTNIK_REQUIRE_ALL") == "1" {
		t.Fatalf("%s is missing but VESTNIK_REQUIRE_ALL=1", what)
	}
	t.Skipf("%s is missing", what)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

const chromium = "/usr/bin/chromium"

// needBrowser skips (or fails, see need) a browser test unless node,
// Chromium and the npm packages at the given paths under node_modules are
// there; slixmpp too when a test drives a Jabber client. It answers
// node's path.
func needBrowser(t *testing.T, slixmpp bool, modules ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests are not short")
	}
	node, err := exec.LookPath("node")
	need(t, err == nil, "node")
	_, err = os.Stat(chromium)
	need(t, err == nil, chromium)
	for _, m := range modules {
		_, err = os.Stat(filepath.Join("node_modules", m))
		need(t, err == nil, m+" (run `npm ci` in webclient/)")
	}
	if slixmpp {
		err = exec.Command("/usr/bin/python3", "-c", "import slixmpp").Run()
		need(t, err == nil, "python3-slixmpp for /usr/bin/python3")
	}
	return node
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// binary builds `vestnik` once for all the browser tests of the package.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vestnik-webclient-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "vestnik")
		if out, err := exec.Command("go", "build", "-o", builtBin, "../cmd/vestnik").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// served is a running `vestnik serve` for a browser test.
type served struct {
	base, c2sAt, token string
}

// serve starts `vestnik serve` on a fresh SQLite database with the demo
// company (domain localhost), with a REST token named tokenName, extra
// flags and environment; it is stopped (and its log shown if the test
// failed) at the test's end. httpAt may be "" for a free address.
func serve(t *testing.T, httpAt, tokenName string, env []string, args ...string) *served {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "vestnik.db")
	if out, err := exec.Command(bin, "migrate", "--db", db).CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	tok, err := exec.Command(bin, "token", "create", tokenName, "--db", db).Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	if httpAt == "" {
		httpAt = freeAddr(t)
	}
	c2sAt := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	srv := exec.CommandContext(ctx, bin, append([]string{"serve", "--db", db, "--data", dir, "--http", httpAt, "--c2s", c2sAt,
		"--demo=on", "--domain", "localhost"}, args...)...)
	srv.Env = append(os.Environ(), env...)
	srv.Cancel = func() error { return srv.Process.Signal(os.Interrupt) }
	srv.WaitDelay = 10 * time.Second
	logf, _ := os.Create(filepath.Join(dir, "serve.log"))
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		srv.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
			t.Logf("server log:\n%s", b)
		}
	})
	base := "http://" + httpAt
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i > 100 {
			t.Fatalf("server did not start: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &served{base: base, c2sAt: c2sAt, token: strings.TrimSpace(string(tok))}
}

// runNode runs a node script with the given environment (added to this
// process's, CHROMIUM set) for at most limit, logging its output; lines
// starting METRICS also go to stderr under label, so `make test` shows
// the figures.
func runNode(t *testing.T, node, script, label string, limit time.Duration, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	run := exec.CommandContext(ctx, node, script)
	run.Env = append(append(os.Environ(), "CHROMIUM="+chromium), env...)
	out, _ := run.StdoutPipe()
	run.Stderr = run.Stdout
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		t.Log(line)
		if strings.HasPrefix(line, "METRICS ") {
			fmt.Fprintln(os.Stderr, label, line)
		}
	}
	if err := run.Wait(); err != nil {
		t.Fatalf("%s: %v", label, err)
	}
}
