package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"vestnik/migrations"
)

// privatePG is a PostgreSQL server of the test's own (initdb into a
// temporary directory), so that it can be restarted without touching the
// one other tests share.
type privatePG struct {
	t          *testing.T
	bin, data  string
	port       int
	owner      string // run as this user ("" = as the test); PostgreSQL refuses root
	url, logFn string
}

// startPrivatePG initdb's and starts a PostgreSQL on a free loopback
// port; it skips when no PostgreSQL binaries are installed (fails under
// VESTNIK_REQUIRE_ALL=1).
func startPrivatePG(t *testing.T) *privatePG {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		if os.Getenv("VESTNIK_REQUIRE_ALL") == "1" {
			t.Fatal("no PostgreSQL binaries in /usr/lib/postgresql/*/bin but VESTNIK_REQUIRE_ALL=1")
		}
		t.Skip("no PostgreSQL binaries in /usr/lib/postgresql/*/bin")
	}
	p := &privatePG{t: t, bin: filepath.Dir(bins[len(bins)-1])}
	dir, err := os.MkdirTemp("", "vestnik-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p.data, p.logFn = filepath.Join(dir, "data"), filepath.Join(dir, "log")
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root and no postgres user to run PostgreSQL as")
		}
		p.owner = u.Username
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		os.Chmod(dir, 0o755)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	p.port, _ = strconv.Atoi(port)
	p.run("initdb", "-D", p.data, "-U", "vestnik", "--auth=trust", "-E", "UTF8", "--no-sync")
	p.run("pg_ctl", "-D", p.data, "-l", p.logFn, "-w", "-o", p.opts(dir), "start")
	t.Cleanup(func() { p.ctl("stop", "-m", "immediate") })
	p.url = fmt.Sprintf("postgres://vestnik@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	return p
}

func (p *privatePG) opts(dir string) string {
	return fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100", p.port, dir)
}

// run runs one of PostgreSQL's programs as the owner.
func (p *privatePG) run(prog string, args ...string) {
	p.t.Helper()
	if out, err := p.cmd(prog, args...).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(p.logFn)
		p.t.Fatalf("%s %v: %v\n%s\n%s", prog, args, err, out, log)
	}
}

func (p *privatePG) cmd(prog string, args ...string) *exec.Cmd {
	path := filepath.Join(p.bin, prog)
	if p.owner != "" {
		return exec.Command("runuser", append([]string{"-u", p.owner, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (p *privatePG) ctl(args ...string) error {
	return p.cmd("pg_ctl", append([]string{"-D", p.data, "-w"}, args...)...).Run()
}

// TestClusterPostgresRestart: two nodes on a PostgreSQL that is restarted
// (pg_ctl stop -m fast, 10 s down, start) in the middle of a load of messages between
// users on both nodes. Every message the archive holds reaches its
// recipient exactly once, no node takes the other for dead, no client
// sees a presence go unavailable, and every connection stays up.
func TestClusterPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	pg := startPrivatePG(t)
	bin := buildBinary(t)
	start := func(id, demo string) *server {
		return startServer(t, bin, pg.url, "--demo", demo, "--cluster", "--node-id", id, "--cluster-listen", freeAddr(t))
	}
	n1 := start("r1", "on")
	n2 := start("r2", "off")
	defer func() {
		if t.Failed() {
			t.Logf("node 1:\n%s\nnode 2:\n%s", n1.out, n2.out)
		}
	}()
	metric := func(s *server, name string) string {
		_, m := get(t, "http://"+s.httpAt+"/metrics")
		for _, l := range strings.Split(m, "\n") {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				return v
			}
		}
		return ""
	}
	for _, n := range []*server{n1, n2} {
		t0 := time.Now()
		for metric(n, "vestnik_cluster_nodes") != "1" {
			if time.Since(t0) > 10*time.Second {
				t.Fatal("the nodes never saw each other")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	type member struct {
		login string
		node  *server
		cl    *xclient
	}
	senders := []*member{{login: "fedorov", node: n1}, {login: "dave", node: n2}}
	recips := []*member{{login: "alice", node: n1}, {login: "frank", node: n2}}
	var mu sync.Mutex
	got := map[string]map[string]int{}
	var flaps []string
	body := regexp.MustCompile(`<body>(load [^<]*)</body>`)
	for _, m := range append(append([]*member{}, senders...), recips...) {
		m.cl = xdial(t, m.node.c2sAt, m.login+"@example.test", "demo")
		m.cl.send(`<presence xmlns='jabber:client'/>`)
	}
	time.Sleep(300 * time.Millisecond)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for _, r := range recips {
		got[r.login] = map[string]int{}
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case s := <-r.cl.in:
					mu.Lock()
					if m := body.FindStringSubmatch(s); m != nil {
						got[r.login][m[1]]++
					} else if strings.HasPrefix(s, "<presence") && strings.Contains(s, `type="unavailable"`) {
						flaps = append(flaps, r.login+": "+s)
					} else if strings.Contains(s, `id="alive"`) {
						r.cl.seen = append(r.cl.seen, s)
					}
					mu.Unlock()
				case <-stop:
					return
				}
			}
		}()
	}

	const loadFor, restartAt, outage = 16 * time.Second, 3 * time.Second, 10 * time.Second
	var wg sync.WaitGroup
	var sent atomic.Int64
	t0 := time.Now()
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for i := 0; time.Since(t0) < loadFor; i++ {
				<-tick.C
				for _, r := range recips {
					msg := fmt.Sprintf(`<message xmlns='jabber:client' to='%s@example.test' type='chat' id='%s%d'><body>load %s %s %d</body></message>`,
						r.login, s.login, i, s.login, r.login, i)
					if s.cl.trySend(msg) == nil {
						sent.Add(1)
					}
				}
			}
		}()
	}
	// Neither node may take the other for dead.
	var expired atomic.Bool
	go func() {
		for time.Since(t0) < loadFor {
			if metric(n1, "vestnik_cluster_nodes") != "1" || metric(n2, "vestnik_cluster_nodes") != "1" {
				expired.Store(true)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	time.Sleep(restartAt)
	// Stopped (fast: sessions are cut), down for outage, started again.
	r0 := time.Now()
	if err := pg.ctl("stop", "-m", "fast"); err != nil {
		t.Fatalf("pg_ctl stop: %v", err)
	}
	time.Sleep(outage)
	if err := pg.ctl("start", "-l", pg.logFn, "-o", pg.opts(filepath.Dir(pg.data))); err != nil {
		t.Fatalf("pg_ctl start: %v", err)
	}
	down := time.Since(r0)
	wg.Wait()
	time.Sleep(2 * time.Second) // delivery settles
	// Every connection is still up: each answers a ping.
	for _, m := range append(append([]*member{}, senders...), recips...) {
		if err := m.cl.trySend(`<iq xmlns='jabber:client' type='get' id='alive'><ping xmlns='urn:xmpp:ping'/></iq>`); err != nil {
			t.Errorf("%s: connection lost: %v", m.login, err)
		}
	}
	for _, m := range senders {
		m.cl.expect(`id="alive"`)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	readers.Wait()
	for _, m := range recips {
		m.cl.expect(`id="alive"`)
	}

	db, err := migrations.Open(context.Background(), pg.url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	archived := archivedBodies(t, db, "load")
	mu.Lock()
	defer mu.Unlock()
	var lost, dup int
	inArchive := map[string]bool{}
	for _, b := range archived {
		inArchive[b] = true
		f := strings.Fields(b)
		switch n := got[f[2]][b]; {
		case n == 0:
			lost++
		case n > 1:
			dup += n - 1
		}
	}
	for r, m := range got {
		for b := range m {
			if !inArchive[b] {
				t.Errorf("%s got %q, which the archive does not hold", r, b)
			}
		}
	}
	t.Logf("two nodes, PostgreSQL restarted under load (down for %v): %d sent, %d archived, %d lost, %d duplicated, %d presence flaps",
		down, sent.Load(), len(archived), lost, dup, len(flaps))
	if len(archived) < 1000 {
		t.Errorf("only %d messages archived", len(archived))
	}
	if lost != 0 || dup != 0 {
		t.Errorf("%d lost, %d duplicated; want 0 and 0", lost, dup)
	}
	if len(flaps) > 0 {
		t.Errorf("presence flapped: %q", flaps)
	}
	if expired.Load() {
		t.Error("a node took the other for dead while PostgreSQL restarted")
	}
}
