package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// limitedBinary wraps bin in a script that lowers the descriptor limit
// (soft and hard, so Go's runtime cannot raise it) to n.
func limitedBinary(t *testing.T, bin string, n int) string {
	t.Helper()
	sh := filepath.Join(t.TempDir(), "vestnik-limited")
	script := fmt.Sprintf("#!/bin/sh\nulimit -n %d || exit 3\nexec %q \"$@\"\n", n, bin)
	if err := os.WriteFile(sh, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return sh
}

// streamAnswered opens an XMPP stream and reports whether the server
// answered its header.
func streamAnswered(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(c, `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0'>`)
	b := make([]byte, 1024)
	n, _ := c.Read(b)
	return bytes.Contains(b[:n], []byte("<stream:stream"))
}

// holdConns opens n TCP connections to addr and keeps them open.
func holdConns(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var cs []net.Conn
	for range n {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", len(cs), err)
		}
		cs = append(cs, c)
	}
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	return cs
}

func healthy(httpAt string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + httpAt + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

func eventually(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServeLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	noPerIP := []string{"--max-connections-per-ip", "-1", "--max-unauthenticated-per-ip", "-1"}

	t.Run("out of descriptors", func(t *testing.T) {
		// No connection cap: accept runs out of descriptors. The server
		// must not exit, and must serve again once connections close.
		s := startServer(t, limitedBinary(t, bin, 100), dbtest.URL(t, migrations.SQLite),
			append([]string{"--max-connections", "-1"}, noPerIP...)...)
		cs := holdConns(t, s.c2sAt, 150) // the backlog takes what accept cannot
		eventually(t, "an accept error", 10*time.Second, func() bool { return strings.Contains(s.out.String(), "accept failed") })
		if streamAnswered(s.c2sAt) {
			t.Fatal("a stream was served with every descriptor taken")
		}
		for _, c := range cs {
			c.Close()
		}
		eventually(t, "the server to serve streams again", 15*time.Second, func() bool { return streamAnswered(s.c2sAt) })
		eventually(t, "/healthz to answer again", 10*time.Second, func() bool { return healthy(s.httpAt) })
		select {
		case err := <-s.done:
			t.Fatalf("server exited: %v\n%s", err, s.out)
		default:
		}
		s.stop(t)
	})

	t.Run("cap fitted to descriptors", func(t *testing.T) {
		// The default cap is lowered to the descriptor limit less a
		// reserve: connections beyond it are refused, HTTP goes on.
		s := startServer(t, limitedBinary(t, bin, 200), dbtest.URL(t, migrations.SQLite), noPerIP...)
		if !strings.Contains(s.out.String(), "max_connections=72") {
			t.Errorf("no warning of the lowered cap (72) in\n%s", s.out)
		}
		for range 100 {
			// Refused ones may fail to connect already: they are counted.
			if c, err := net.DialTimeout("tcp", s.c2sAt, 2*time.Second); err == nil {
				defer c.Close()
			}
		}
		eventually(t, "connections to be refused at the cap", 10*time.Second, func() bool {
			_, m := get(t, "http://"+s.httpAt+"/metrics")
			return strings.Contains(m, "vestnik_connections_refused_total 28") && strings.Contains(m, "vestnik_xmpp_connections 72")
		})
		if !healthy(s.httpAt) {
			t.Fatal("/healthz does not answer at the connection cap")
		}
		s.stop(t)
	})

	s := startServer(t, bin, dbtest.URL(t, migrations.SQLite), "--http-idle-timeout", "1s", "--http-read-timeout", "2s",
		"--max-connections-per-ip", "3")

	t.Run("per address", func(t *testing.T) {
		cs := holdConns(t, s.c2sAt, 3)
		eventually(t, "3 streams held", 5*time.Second, func() bool {
			_, m := get(t, "http://"+s.httpAt+"/metrics")
			return strings.Contains(m, "vestnik_xmpp_unauthenticated 3")
		})
		if streamAnswered(s.c2sAt) {
			t.Fatal("a fourth connection from one address was served (cap 3)")
		}
		cs[0].Close()
		eventually(t, "a place to free up", 5*time.Second, func() bool { return streamAnswered(s.c2sAt) })
	})

	t.Run("idle keep-alive closed", func(t *testing.T) {
		c, err := net.Dial("tcp", s.httpAt)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("healthz: %v %v", resp, err)
		}
		resp.Body.Close()
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := br.ReadByte(); err == nil || isTimeout(err) {
			t.Fatalf("idle connection: read %v, want it closed", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("idle connection closed after %v, want about 1 s", d)
		}
	})

	t.Run("slow body closed", func(t *testing.T) {
		c, err := net.Dial("tcp", s.httpAt)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", s.httpAt)
		start := time.Now()
		closed := false
		for time.Since(start) < 6*time.Second {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write([]byte(" ")); err != nil {
				closed = true
				break
			}
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			b := make([]byte, 512)
			if _, err := c.Read(b); err != nil && !isTimeout(err) || err == nil {
				closed = true
				break
			}
		}
		if !closed {
			t.Fatal("a body sent one byte per 200 ms was still being read after 6 s (read timeout 2 s)")
		}
		if d := time.Since(start); d < 1500*time.Millisecond {
			t.Errorf("slow body cut after %v, before the read timeout", d)
		}
	})

	t.Run("413 after a whole body", func(t *testing.T) {
		tok, err := exec.Command(bin, "token", "create", "limits-test", "--db", s.dbURL).Output()
		if err != nil {
			t.Fatalf("token create: %v", err)
		}
		token := strings.TrimSpace(string(tok))
		for _, tc := range []struct{ path, header string }{
			{"/api/v1/messages", "Authorization: Bearer " + token + "\r\n"},
			{"/api/v1/messages", ""}, // 401, same drain
			{"/login", ""},
		} {
			// Like Python's http.client: the whole body first, then the answer.
			c, err := net.Dial("tcp", s.httpAt)
			if err != nil {
				t.Fatal(err)
			}
			body := bytes.Repeat([]byte("x"), 6<<20)
			c.SetDeadline(time.Now().Add(20 * time.Second))
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n", tc.path, s.httpAt, tc.header, len(body))
			if _, err := c.Write(body); err != nil {
				t.Fatalf("%s: writing the body: %v", tc.path, err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			c.Close()
			if err != nil {
				t.Fatalf("%s: reading the answer after the body: %v", tc.path, err)
			}
			want := http.StatusRequestEntityTooLarge
			if tc.path == "/api/v1/messages" && tc.header == "" {
				want = http.StatusUnauthorized
			}
			if resp.StatusCode != want {
				t.Errorf("%s: got %d, want %d", tc.path, resp.StatusCode, want)
			}
		}
	})
	s.stop(t)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Uploads (and HR syncs) keep their long deadlines under a short server
// read timeout; other requests do not.
func TestLongTransfers(t *testing.T) {
	var got atomic.Int64
	h := drainRefused(longTransfers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, "cut", http.StatusBadRequest)
			return
		}
		got.Store(n)
		w.WriteHeader(http.StatusNoContent)
	})))
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	slowPut := func(method, path string) (int, error) {
		pr, pw := io.Pipe()
		go func() {
			for range 8 {
				pw.Write([]byte("0123456789"))
				time.Sleep(100 * time.Millisecond)
			}
			pw.Close()
		}()
		req, _ := http.NewRequest(method, srv.URL+path, pr)
		req.ContentLength = 80
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	for _, tc := range []struct {
		method, path string
		long         bool
	}{
		{"PUT", "/upload/0123/f.txt", true},
		{"PUT", "/api/v1/org", true},
		{"POST", "/api/v1/messages", false},
	} {
		got.Store(0)
		st, err := slowPut(tc.method, tc.path)
		if tc.long && (err != nil || st != http.StatusNoContent || got.Load() != 80) {
			t.Errorf("%s %s over 800 ms: status %d, %v, %d bytes read; want the whole body", tc.method, tc.path, st, err, got.Load())
		}
		if !tc.long && err == nil && st == http.StatusNoContent {
			t.Errorf("%s %s over 800 ms with a 300 ms read timeout: read whole, want it cut", tc.method, tc.path)
		}
	}
}
