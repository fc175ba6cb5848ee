package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// TestClusterThreeNodes runs three `vestnik serve` processes on one
// PostgreSQL database, each started only with --cluster, --node-id and
// --cluster-listen: they find each other through the database. Clients
// are spread over the nodes; REST on one node reaches a recipient on
// another; a chat's members on three nodes talk; then, under load, one
// node is killed with SIGKILL and its clients reconnect to another. Every
// message the archive holds is counted at its recipient: lost and
// duplicated.
func TestClusterThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	u := dbtest.URL(t, migrations.Postgres)
	start := func(id, demo string) *server {
		return startServer(t, bin, u, "--demo", demo, "--cluster", "--node-id", id, "--cluster-listen", freeAddr(t))
	}
	n1 := start("n1", "on")
	n2 := start("n2", "off")
	n3 := start("n3", "off")
	defer func() {
		if t.Failed() {
			for i, n := range []*server{n1, n2, n3} {
				t.Logf("node %d:\n%s", i+1, n.out)
			}
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
	waitNodes := func(s *server, want string) time.Duration {
		t.Helper()
		t0 := time.Now()
		for metric(s, "vestnik_cluster_nodes") != want {
			if time.Since(t0) > 10*time.Second {
				t.Fatalf("node at %s: vestnik_cluster_nodes never %s", s.httpAt, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(t0)
	}
	for _, n := range []*server{n1, n2, n3} {
		waitNodes(n, "2")
	}

	// REST on node 1 reaches carol on node 3.
	carol := xdial(t, n3.c2sAt, "carol@example.test", "demo")
	carol.send(`<presence xmlns='jabber:client'/>`)
	tok, err := exec.Command(bin, "token", "create", "cluster3", "--db", u).Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	token := strings.TrimSpace(string(tok))
	post := func(s *server, path, body string) string {
		return postJSON(t, "http://"+s.httpAt+"/api/v1"+path, token, body)
	}
	post(n1, "/messages", `{"from_user_id": "5", "to_user_id": "14", "message": "через три узла"}`)
	carol.expect("<message", `from="bob@example.test`, "через три узла")

	// A chat with members on three nodes.
	bob := xdial(t, n1.c2sAt, "bob@example.test", "demo")
	bob.send(`<presence xmlns='jabber:client'/>`)
	sok := xdial(t, n2.c2sAt, "sokolova@example.test", "demo")
	sok.send(`<presence xmlns='jabber:client'/>`)
	resp := post(n2, "/chats", `{"title": "Три узла", "color": "GREEN", "type": "closed", "owner_id": "5", "users": ["5", "14", "8"]}`)
	var chat struct {
		JID string `json:"jid"`
	}
	if err := json.Unmarshal([]byte(resp), &chat); err != nil || chat.JID == "" {
		t.Fatalf("create chat: %q, %v", resp, err)
	}
	for _, m := range []struct {
		c    *xclient
		nick string
	}{{bob, "Bob"}, {carol, "Carol"}, {sok, "Sokolova"}} {
		m.c.send(`<presence xmlns='jabber:client' to='` + chat.JID + `/` + m.nick + `'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		m.c.expect("<presence", `from="`+chat.JID+`/`+m.nick+`"`)
	}
	// One occupant list: each sees the others, whatever node they joined through.
	bob.expect("<presence", `from="`+chat.JID+`/Carol"`)
	bob.expect("<presence", `from="`+chat.JID+`/Sokolova"`)
	carol.expect("<presence", `from="`+chat.JID+`/Bob"`)
	carol.expect("<presence", `from="`+chat.JID+`/Sokolova"`)
	sok.expect("<presence", `from="`+chat.JID+`/Bob"`)
	sok.expect("<presence", `from="`+chat.JID+`/Carol"`)
	// A nick held on another node is refused.
	sok.send(`<presence xmlns='jabber:client' to='` + chat.JID + `/Bob'/>`)
	sok.expect("<presence", `type="error"`, "conflict")
	bob.send(`<message xmlns='jabber:client' to='` + chat.JID + `' type='groupchat' id='g1'><body>от первого узла</body></message>`)
	carol.expect("<message", `type="groupchat"`, `from="`+chat.JID+`/Bob"`, "от первого узла")
	sok.expect("<message", `type="groupchat"`, `from="`+chat.JID+`/Bob"`, "от первого узла")
	sok.send(`<message xmlns='jabber:client' to='` + chat.JID + `' type='groupchat' id='g2'><body>от второго узла</body></message>`)
	bob.expect("<message", `type="groupchat"`, "от второго узла")
	carol.expect("<message", `type="groupchat"`, "от второго узла")
	// Leaving is seen on the other nodes.
	carol.send(`<presence xmlns='jabber:client' type='unavailable' to='` + chat.JID + `/Carol'/>`)
	bob.expect("<presence", `from="`+chat.JID+`/Carol"`, `type="unavailable"`)
	sok.expect("<presence", `from="`+chat.JID+`/Carol"`, `type="unavailable"`)

	// Load (issue 13): 500 messages/s for 20 s; six senders, two per
	// node, each sending to three recipients (one per node) 83
	// messages/s (a connection's messages are handled one after another,
	// each stored before the next: one sender could not carry 167/s on a
	// loaded machine); node 3 is killed after 10 s and its senders and
	// recipient reconnect to node 1.
	type member struct {
		login string
		node  *server
		cl    atomic.Pointer[xclient]
	}
	senders := []*member{{login: "fedorov", node: n1}, {login: "dave", node: n2}, {login: "eve", node: n3},
		{login: "orlova", node: n1}, {login: "zaitsev", node: n2}, {login: "pavlova", node: n3}}
	recips := []*member{{login: "alice", node: n1}, {login: "frank", node: n2}, {login: "kozlov", node: n3}}
	var mu sync.Mutex
	got := map[string]map[string]int{}     // recipient → body → times received
	sids := map[string]map[string]string{} // recipient → body → stanza-id it came with
	var otherSID int                       // a body received again under another stanza-id (or none)
	body := regexp.MustCompile(`<body>(load [^<]*)</body>`)
	sidRe := regexp.MustCompile(`<stanza-id[^>]*\sid="([^"]+)"`)
	collect := func(login string, c *xclient) {
		for s := range c.in {
			if m := body.FindStringSubmatch(s); m != nil {
				sid := ""
				if x := sidRe.FindStringSubmatch(s); x != nil {
					sid = x[1]
				}
				mu.Lock()
				got[login][m[1]]++
				if old, ok := sids[login][m[1]]; ok && (old != sid || sid == "") {
					otherSID++
				}
				sids[login][m[1]] = sid
				mu.Unlock()
			}
		}
	}
	dial := func(m *member, at string) {
		c := xdial(t, at, m.login+"@example.test", "demo")
		c.send(`<presence xmlns='jabber:client'/>`)
		m.cl.Store(c)
	}
	for _, r := range recips {
		got[r.login] = map[string]int{}
		sids[r.login] = map[string]string{}
		dial(r, r.node.c2sAt)
		go collect(r.login, r.cl.Load())
	}
	for _, s := range senders {
		dial(s, s.node.c2sAt)
	}
	time.Sleep(300 * time.Millisecond)
	const loadFor, killAt, rate = 20 * time.Second, 10 * time.Second, 500
	// Each sender sends a message to each recipient every period; a
	// sender behind its schedule catches up at once.
	period := time.Duration(len(senders)*len(recips)) * time.Second / rate
	var wg sync.WaitGroup
	var sent atomic.Int64
	t0 := time.Now()
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Since(t0) < loadFor; i++ {
				if d := time.Until(t0.Add(time.Duration(i) * period)); d > 0 {
					time.Sleep(d)
				}
				for _, r := range recips {
					msg := fmt.Sprintf(`<message xmlns='jabber:client' to='%s@example.test' type='chat' id='%s%d'><body>load %s %s %d</body></message>`,
						r.login, s.login, i, s.login, r.login, i)
					if s.cl.Load().trySend(msg) == nil {
						sent.Add(1)
					}
				}
			}
		}()
	}
	time.Sleep(killAt)
	n3.cmd.Process.Kill() // SIGKILL: no goodbye
	killed := time.Now()
	notice := make(chan time.Duration, 1)
	go func() {
		for metric(n1, "vestnik_cluster_nodes") != "1" && time.Since(killed) < 10*time.Second {
			time.Sleep(20 * time.Millisecond)
		}
		notice <- time.Since(killed)
	}()
	<-n3.done
	dial(senders[2], n1.c2sAt)
	dial(senders[5], n1.c2sAt)
	dial(recips[2], n1.c2sAt)
	go collect(recips[2].login, recips[2].cl.Load())
	reconnected := time.Since(killed)
	noticed := <-notice
	waitNodes(n2, "1")
	wg.Wait()
	loadTook := time.Since(t0)
	db, err := migrations.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Delivery settles: the archive stops growing (what the nodes had
	// read but not stored yet), then a moment for the last deliveries.
	count := func() (n int) {
		db.Get(&n, `SELECT count(*) FROM messages WHERE body LIKE 'load %'`)
		return n
	}
	for last, n := -1, count(); n != last && time.Since(t0) < loadFor+15*time.Second; last, n = n, count() {
		time.Sleep(500 * time.Millisecond)
	}
	drained := time.Since(t0)
	time.Sleep(time.Second)

	// Every message the archive holds, by recipient; senders on n1 and n2
	// to recipients on n1 and n2 never touched the killed node.
	// What the recipients had before the archive is read: each of those
	// must be archived (a message delivered while the query runs is
	// archived too, but would not be in its result).
	mu.Lock()
	before := map[string][]string{}
	for r, m := range got {
		for b := range m {
			before[r] = append(before[r], b)
		}
	}
	mu.Unlock()
	archived := archivedBodies(t, db, "load")
	mu.Lock()
	defer mu.Unlock()
	var lost, dup, lostSafe, dupSafe int
	inArchive := map[string]bool{}
	for _, b := range archived {
		inArchive[b] = true
		f := strings.Fields(b) // load sender recipient i
		safe := f[1] != "eve" && f[1] != "pavlova" && f[2] != "kozlov"
		switch n := got[f[2]][b]; {
		case n == 0:
			lost++
			if safe {
				lostSafe++
			}
		case n > 1:
			dup += n - 1
			if safe {
				dupSafe += n - 1
			}
		}
	}
	for r, bodies := range before {
		for _, b := range bodies {
			if !inArchive[b] {
				t.Errorf("%s got %q, which the archive does not hold", r, b)
			}
		}
	}
	sentRate := float64(sent.Load()) / loadTook.Seconds()
	bySender := map[string]int{}
	for _, b := range archived {
		bySender[strings.Fields(b)[1]]++
	}
	t.Logf("three nodes, SIGKILL of one under load: %d sent in %v (%.0f msg/s), %d archived by %v (%.0f/s; by sender %v), %d lost, %d duplicated, %d of them with another stanza-id (%d lost, %d duplicated between the surviving nodes); dead node noticed after %v, clients reconnected after %v",
		sent.Load(), loadTook.Round(time.Millisecond), sentRate, len(archived), drained.Round(time.Millisecond), float64(len(archived))/drained.Seconds(), bySender,
		lost, dup, otherSID, lostSafe, dupSafe, noticed, reconnected)
	if sentRate < 0.9*rate || len(archived) < int(0.9*rate*loadFor.Seconds()) {
		t.Errorf("sent %.0f msg/s, archived %d: want about %d msg/s for %v", sentRate, len(archived), rate, loadFor)
	}
	// Exactly once: nothing lost; nothing again between the surviving
	// nodes; to the killed node's recipient a copy only where
	// doc/architecture.md says one is unavoidable (a crash loses the
	// confirmations of its last MarkInterval), with the same stanza-id,
	// which clients drop.
	if lost != 0 || dupSafe != 0 || otherSID != 0 {
		t.Errorf("%d lost, %d duplicated between the surviving nodes, %d received again under another stanza-id; want 0, 0, 0", lost, dupSafe, otherSID)
	}
	if noticed > 2*time.Second+200*time.Millisecond { // metrics are polled every 20 ms
		t.Errorf("dead node noticed after %v, want within 2 s", noticed)
	}
}

// rss is a process's resident memory in KiB (Linux).
func rss(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// TestClusterStalledNode stops one of three nodes (SIGSTOP) for 5 s under
// load: the others' memory stays bounded, messages between the others are
// neither lost nor doubled, and the stalled node comes back when resumed
// (its recipient reconnects for what it missed).
func TestClusterStalledNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	u := dbtest.URL(t, migrations.Postgres)
	start := func(id, demo string) *server {
		return startServer(t, bin, u, "--demo", demo, "--cluster", "--node-id", id, "--cluster-listen", freeAddr(t))
	}
	n1, n2, n3 := start("s1", "on"), start("s2", "off"), start("s3", "off")
	defer func() {
		if t.Failed() {
			for i, n := range []*server{n1, n2, n3} {
				t.Logf("node %d:\n%s", i+1, n.out)
			}
		}
	}()
	nodes := func(s *server) string {
		_, m := get(t, "http://"+s.httpAt+"/metrics")
		for _, l := range strings.Split(m, "\n") {
			if v, ok := strings.CutPrefix(l, "vestnik_cluster_nodes "); ok {
				return v
			}
		}
		return ""
	}
	waitNodes := func(s *server, want string, within time.Duration) time.Duration {
		t.Helper()
		t0 := time.Now()
		for nodes(s) != want {
			if time.Since(t0) > within {
				t.Fatalf("node at %s: vestnik_cluster_nodes never %s", s.httpAt, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(t0)
	}
	for _, n := range []*server{n1, n2, n3} {
		waitNodes(n, "2", 10*time.Second)
	}
	var mu sync.Mutex
	got := map[string]map[string]int{"frank": {}, "kozlov": {}}
	body := regexp.MustCompile(`<body>(stall [^<]*)</body>`)
	collect := func(login string, c *xclient) {
		for s := range c.in {
			if m := body.FindStringSubmatch(s); m != nil {
				mu.Lock()
				got[login][m[1]]++
				mu.Unlock()
			}
		}
	}
	frank := xdial(t, n2.c2sAt, "frank@example.test", "demo")
	frank.send(`<presence xmlns='jabber:client'/>`)
	go collect("frank", frank)
	kozlov := xdial(t, n3.c2sAt, "kozlov@example.test", "demo")
	kozlov.send(`<presence xmlns='jabber:client'/>`)
	go collect("kozlov", kozlov)
	sender := xdial(t, n1.c2sAt, "fedorov@example.test", "demo")
	time.Sleep(300 * time.Millisecond)

	const loadFor, stallAt, stallFor = 12 * time.Second, 3 * time.Second, 5 * time.Second
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i, t0 := 0, time.Now(); time.Since(t0) < loadFor; i++ {
			<-tick.C
			for _, r := range []string{"frank", "kozlov"} {
				sender.trySend(fmt.Sprintf(`<message xmlns='jabber:client' to='%s@example.test' type='chat' id='s%d'><body>stall %s %d</body></message>`, r, i, r, i))
			}
		}
	}()
	time.Sleep(stallAt)
	before := rss(t, n1.cmd.Process.Pid)
	n3.cmd.Process.Signal(syscall.SIGSTOP)
	peak := before
	for t0 := time.Now(); time.Since(t0) < stallFor; time.Sleep(100 * time.Millisecond) {
		peak = max(peak, rss(t, n1.cmd.Process.Pid))
	}
	n3.cmd.Process.Signal(syscall.SIGCONT)
	back := waitNodes(n1, "2", 10*time.Second)
	<-done
	time.Sleep(2 * time.Second)
	mu.Lock()
	live := len(got["kozlov"])
	mu.Unlock()
	// The stalled node's recipient logs in again (here, on node 1) for
	// what it missed: the offline flush from the archive.
	kozlov.close()
	kozlov2 := xdial(t, n1.c2sAt, "kozlov@example.test", "demo")
	kozlov2.send(`<presence xmlns='jabber:client'/>`)
	go collect("kozlov", kozlov2)
	time.Sleep(2 * time.Second)

	db, err := migrations.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	archived := archivedBodies(t, db, "stall")
	mu.Lock()
	defer mu.Unlock()
	lost, dup := map[string]int{}, map[string]int{}
	for _, b := range archived {
		r := strings.Fields(b)[1]
		switch n := got[r][b]; {
		case n == 0:
			lost[r]++
		case n > 1:
			dup[r] += n - 1
		}
	}
	t.Logf("SIGSTOP of one node for %v under load: %d archived; between the running nodes %d lost, %d duplicated; to the stalled node's recipient %d received before it logged in again, then %d lost, %d duplicated; node 1 memory %d → peak %d KiB during the stall; the stalled node seen again %v after SIGCONT",
		stallFor, len(archived), lost["frank"], dup["frank"], live, lost["kozlov"], dup["kozlov"], before, peak, back)
	if lost["frank"] != 0 || dup["frank"] != 0 {
		t.Errorf("between the running nodes: %d lost, %d duplicated; want 0 and 0", lost["frank"], dup["frank"])
	}
	if peak-before > 64<<10 {
		t.Errorf("node 1 grew by %d KiB while another node was stalled", peak-before)
	}
}

// archivedBodies returns the bodies of the archived messages that start
// with prefix and a space (the load tests' messages).
func archivedBodies(t *testing.T, db *sqlx.DB, prefix string) []string {
	t.Helper()
	var bodies []string
	if err := db.Select(&bodies, db.Rebind(`SELECT body FROM messages WHERE body LIKE ?`), prefix+" %"); err != nil {
		t.Fatal(err)
	}
	return bodies
}
