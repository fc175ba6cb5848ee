package webclient

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConverse runs converse/run.mjs: Converse.js (the converse.js npm
// package, a devDependency) in real Chromium against the real `vestnik
// serve` over WebSocket: roster, group chats from bookmarks, MUC join and
// history, a message archived, file upload.
func TestConverse(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are not short")
	}
	node, err := exec.LookPath("node")
	need(t, err == nil, "node")
	chromium := "/usr/bin/chromium"
	_, err = os.Stat(chromium)
	need(t, err == nil, chromium)
	_, err = os.Stat("node_modules/converse.js/dist/converse.min.js")
	need(t, err == nil, "converse.js (run `npm ci` in webclient/)")

	dir := t.TempDir()
	bin := filepath.Join(dir, "vestnik")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/vestnik").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	db := "sqlite:" + filepath.Join(dir, "vestnik.db")
	if out, err := exec.Command(bin, "migrate", "--db", db).CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	tok, err := exec.Command(bin, "token", "create", "converse", "--db", db).Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	httpAt, c2sAt := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "serve", "--db", db, "--data", dir, "--http", httpAt, "--c2s", c2sAt, "--demo=on", "--domain", "localhost",
		"--upload-origins", "*") // the page is served from another origin
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
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer rcancel()
	run := exec.CommandContext(rctx, node, "converse/run.mjs")
	run.Env = append(os.Environ(), "VESTNIK_URL="+base, "VESTNIK_TOKEN="+strings.TrimSpace(string(tok)), "CHROMIUM="+chromium)
	out, _ := run.StdoutPipe()
	run.Stderr = run.Stdout
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		t.Log(sc.Text())
	}
	if err := run.Wait(); err != nil {
		t.Fatalf("converse: %v", err)
	}
}
