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

// TestBrowser runs the end-to-end suite (e2e/run.mjs) in real Chromium
// against the real `vestnik serve` with a fresh SQLite database, the demo
// company, and a slixmpp client on the c2s port.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are not short")
	}
	node, err := exec.LookPath("node")
	need(t, err == nil, "node")
	chromium := "/usr/bin/chromium"
	_, err = os.Stat(chromium)
	need(t, err == nil, chromium)
	_, err = os.Stat("node_modules/playwright-core/package.json")
	need(t, err == nil, "playwright-core (run `npm ci` in webclient/)")
	err = exec.Command("/usr/bin/python3", "-c", "import slixmpp").Run()
	need(t, err == nil, "python3-slixmpp for /usr/bin/python3")

	dir := t.TempDir()
	bin := filepath.Join(dir, "vestnik")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/vestnik").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	db := "sqlite:" + filepath.Join(dir, "vestnik.db")
	if out, err := exec.Command(bin, "migrate", "--db", db).CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	tok, err := exec.Command(bin, "token", "create", "e2e", "--db", db).Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	httpAt, c2sAt := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "serve", "--db", db, "--data", dir, "--http", httpAt, "--c2s", c2sAt, "--demo=on", "--domain", "localhost", "--upload-max-size", "2M")
	srv.Cancel = func() error { return srv.Process.Signal(os.Interrupt) }
	srv.WaitDelay = 10 * time.Second
	logf, _ := os.Create(filepath.Join(dir, "serve.log"))
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		srv.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
			t.Logf("server log:\n%s", b)
		}
	}()
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

	rctx, rcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer rcancel()
	run := exec.CommandContext(rctx, node, "e2e/run.mjs")
	run.Env = append(os.Environ(),
		"VESTNIK_URL="+base, "VESTNIK_C2S="+c2sAt, "VESTNIK_TOKEN="+strings.TrimSpace(string(tok)),
		"CHROMIUM="+chromium)
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
			fmt.Fprintln(os.Stderr, "webclient e2e", line)
		}
	}
	if err := run.Wait(); err != nil {
		t.Fatalf("e2e: %v", err)
	}
}
