package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// buildBinary builds the vestnik binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vestnik")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
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

// server is a running `vestnik serve` child process.
type server struct {
	cmd            *exec.Cmd
	httpAt, c2sAt  string
	dataDir, dbURL string
	out            *lockedBuilder
	done           chan error
}

// lockedBuilder collects the server's output from the reader goroutine
// while the test reads it.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startServer(t *testing.T, bin, dbURL string, extra ...string) *server {
	t.Helper()
	s := &server{httpAt: freeAddr(t), c2sAt: freeAddr(t), dataDir: t.TempDir(), dbURL: dbURL, out: &lockedBuilder{}, done: make(chan error, 1)}
	for i := 0; i+1 < len(extra); i++ {
		if extra[i] == "--http" { // the caller chose the address (e.g. for --public-url)
			s.httpAt = extra[i+1]
		}
	}
	args := append([]string{"serve", "--domain", "example.test", "--db", dbURL, "--http", s.httpAt, "--c2s", s.c2sAt, "--data", s.dataDir}, extra...)
	s.cmd = exec.Command(bin, args...)
	pr, pw := io.Pipe()
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.out.WriteString(sc.Text() + "\n")
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	go func() { err := s.cmd.Wait(); pw.Close(); s.done <- err }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + s.httpAt + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case err := <-s.done:
			t.Fatalf("server exited early: %v\n%s", err, s.out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("server did not become healthy\n%s", s.out)
	return nil
}

// stop sends SIGTERM and expects a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("server exit after SIGTERM: %v\n%s", err, s.out)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("server did not stop within 15 s of SIGTERM\n%s", s.out)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	for _, backend := range dbtest.Backends(t) {
		t.Run(backend, func(t *testing.T) {
			s := startServer(t, bin, dbtest.URL(t, backend))
			if code, body := get(t, "http://"+s.httpAt+"/healthz"); code != 200 || body != "ok\n" {
				t.Fatalf("healthz: got %d %q", code, body)
			}
			if code, body := get(t, "http://"+s.httpAt+"/metrics"); code != 200 || !strings.Contains(body, "vestnik_uptime_seconds") {
				t.Fatalf("metrics: got %d %q", code, body)
			} else {
				for _, want := range []string{"vestnik_xmpp_connections 0", "vestnik_bridge_connections 0", `vestnik_sessions_closed_total{reason="slow-consumer"} 0`} {
					if !strings.Contains(body, want) {
						t.Errorf("metrics: no %q in\n%s", want, body)
					}
				}
			}
			// A login and a message feed the latency histograms.
			ivan := xdial(t, s.c2sAt, "ivanov@example.test", "demo")
			ivan.send(`<message xmlns='jabber:client' to='petrova@example.test' type='chat' id='m1'><body>metrics</body></message>`)
			ivan.send(`<iq xmlns='jabber:client' type='get' id='after' to='example.test'><ping xmlns='urn:xmpp:ping'/></iq>`)
			ivan.expect(`id="after"`)
			// The message was routed before its commit (the ping's answer
			// does not wait for it): the commit shows a little later.
			wants := []string{`vestnik_message_handling_seconds_count{type="chat"} 1`, "vestnik_xmpp_login_seconds_count 1",
				"vestnik_archive_commit_seconds_count", "vestnik_archive_commit_messages_bucket", `vestnik_http_request_duration_seconds_count{route="GET /healthz"}`,
				"process_open_fds", "go_gc_duration_seconds"}
			var missing []string
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				_, body := get(t, "http://"+s.httpAt+"/metrics")
				missing = missing[:0]
				for _, want := range wants {
					if !strings.Contains(body, want) {
						missing = append(missing, want)
					}
				}
				if len(missing) == 0 || time.Now().After(deadline) {
					break
				}
			}
			for _, want := range missing {
				t.Errorf("metrics after a message: no %q", want)
			}
			ivan.close()
			for _, f := range []string{"tls-cert.pem", "tls-key.pem"} {
				if _, err := os.Stat(filepath.Join(s.dataDir, f)); err != nil {
					t.Errorf("self-signed certificate: %v", err)
				}
			}
			s.stop(t)
			if !strings.Contains(s.out.String(), "http://"+s.httpAt) {
				t.Errorf("startup output does not say where to log in:\n%s", s.out)
			}
		})
	}
}

func TestMigrateRefusesNewerDatabase(t *testing.T) {
	u := dbtest.URL(t, migrations.SQLite)
	bin := buildBinary(t)
	if out, err := exec.Command(bin, "migrate", "--db", u).CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	path := strings.TrimPrefix(u, "sqlite:")
	d, err := migrations.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	d.MustExec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (99999, 'future', 0)`)
	d.Close()
	out, err := exec.Command(bin, "migrate", "--db", "sqlite:"+path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "newer than this vestnik binary") || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Fatalf("migrate on a newer database: got err=%v output %q; want exit 1 with one line", err, out)
	}
}
