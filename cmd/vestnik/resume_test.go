package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"vestnik/migrations/dbtest"
)

// resetProxy forwards TCP connections to the server and can reset them
// (RST both ways), as a network change does to a phone.
type resetProxy struct {
	ln    net.Listener
	to    string
	mu    sync.Mutex
	conns []*net.TCPConn
}

func newResetProxy(t *testing.T, to string) *resetProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &resetProxy{ln: ln, to: to}
	t.Cleanup(func() { ln.Close(); p.reset() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c.(*net.TCPConn), s.(*net.TCPConn))
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

// reset cuts every proxied connection with a TCP reset.
func (p *resetProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.SetLinger(0)
		c.Close()
	}
	p.conns = nil
}

// TestResumeAfterReset: slixmpp (XEP-0198, resumable) loses its TCP
// connection by a reset while messages flow, connects again and resumes;
// every message reaches it exactly once — those it had before the
// reset, those written to the dead connection, those sent while it was
// away.
func TestResumeAfterReset(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import slixmpp").Run(); err != nil {
		t.Skipf("python3-slixmpp not available: %v", err)
	}
	bin := buildBinary(t)
	dbURL := dbtest.URL(t, dbtest.Backends(t)[0])
	s := startServer(t, bin, dbURL, "--demo", "auto")
	tok, err := exec.Command(bin, "token", "create", "resume-test", "--db", dbURL).Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	token := strings.TrimSpace(string(tok))
	proxy := newResetProxy(t, s.c2sAt)
	_, port, _ := net.SplitHostPort(proxy.ln.Addr().String())

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	py := exec.CommandContext(ctx, python, "testdata/resume.py", "127.0.0.1", port, "example.test", "demo")
	var stderr bytes.Buffer
	py.Stderr = &stderr
	out, _ := py.StdoutPipe()
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); py.Wait() }()
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var mu sync.Mutex
	got := map[string][]string{} // body → stanza-ids
	var events []string
	wait := func(what string, done func() bool) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for !done() {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("resume.py ended waiting for %s: %s\n%s", what, events, stderr.String())
				}
				mu.Lock()
				if f := strings.Fields(l); len(f) == 3 && f[0] == "GOT" {
					got[f[1]] = append(got[f[1]], f[2])
				} else {
					events = append(events, l)
				}
				mu.Unlock()
			case <-deadline:
				t.Fatalf("no %s; events %v, got %v\n%s\nserver:\n%s", what, events, got, stderr.String(), s.out)
			}
		}
	}
	seen := func(ev string) func() bool {
		return func() bool {
			for _, e := range events {
				if e == ev {
					return true
				}
			}
			return false
		}
	}
	post := func(n int) string {
		body := fmt.Sprintf("r-%d", n)
		req, _ := http.NewRequest("POST", "http://"+s.httpAt+"/api/v1/messages",
			strings.NewReader(fmt.Sprintf(`{"from_user_id":"4","to_user_id":"5","message":%q}`, body)))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("post %s: status %d", body, resp.StatusCode)
		}
		return body
	}
	have := func(n int) func() bool {
		return func() bool { return len(got) >= n }
	}

	wait("READY", seen("READY"))
	for i := 0; i < 10; i++ {
		post(i)
	}
	wait("the first ten", have(10))
	// Messages in flight when the connection is reset, and more while
	// the session waits detached.
	for i := 10; i < 15; i++ {
		post(i)
	}
	proxy.reset()
	for i := 15; i < 20; i++ {
		post(i)
	}
	wait("RESUMED", seen("RESUMED"))
	wait("all twenty", have(20))
	time.Sleep(time.Second) // a copy would come now
	for drained := false; !drained; {
		select {
		case l, ok := <-lines:
			if f := strings.Fields(l); ok && len(f) == 3 && f[0] == "GOT" {
				got[f[1]] = append(got[f[1]], f[2])
			}
			drained = !ok
		default:
			drained = true
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 0; i < 20; i++ {
		body := fmt.Sprintf("r-%d", i)
		if len(got[body]) != 1 {
			t.Errorf("%s received %d times (stanza-ids %v)", body, len(got[body]), got[body])
		}
	}
	if !seen("CUT")() {
		t.Errorf("the connection was not cut: %v", events)
	}
	t.Logf("events %v", events)
}
