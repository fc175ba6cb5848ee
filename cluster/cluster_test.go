package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// event is what a recorder saw, as one line: "stanza 7/res <body>",
// "presence 7/res@node avail=true <stanza>", "kick 7/res reason".
type recorder struct {
	mu     sync.Mutex
	events []string
	ch     chan string
}

func newRecorder() *recorder { return &recorder{ch: make(chan string, 100000)} }

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
	r.ch <- s
}

func (r *recorder) Stanza(userID int64, resource string, stanza string) {
	r.add(fmt.Sprintf("stanza %d/%s %s", userID, resource, stanza))
}

func (r *recorder) Presence(s Session, stanza string) {
	r.add(fmt.Sprintf("presence %d/%s@%s avail=%v %s", s.UserID, s.Resource, s.Node, s.Available, stanza))
}

func (r *recorder) Broadcast(stanza string) { r.add("broadcast " + stanza) }

func (r *recorder) Kick(userID int64, resource, reason string) {
	r.add(fmt.Sprintf("kick %d/%s %s", userID, resource, reason))
}

// expect waits for an event starting with prefix, skipping others.
func (r *recorder) expect(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-r.ch:
			if strings.HasPrefix(e, prefix) {
				return e
			}
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("no event %q; saw %q", prefix, r.events)
			return ""
		}
	}
}

type testDB struct {
	db  *sqlx.DB
	url string
}

// pg gives a fresh migrated PostgreSQL schema (skipped without
// VESTNIK_TEST_PG; a failure under VESTNIK_REQUIRE_ALL=1).
func pg(t *testing.T) testDB { return pgB(t) }

func pgB(t testing.TB) testDB {
	t.Helper()
	u := dbtest.URL(t, migrations.Postgres)
	db, err := migrations.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := migrations.Up(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return testDB{db, u}
}

func fastOpts() Options {
	return Options{Heartbeat: 100 * time.Millisecond, Missed: 3, Reload: time.Hour,
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}
}

func startNode(t *testing.T, d testDB, opts Options) (*Cluster, *recorder) {
	t.Helper()
	r := newRecorder()
	c, err := New(d.db, d.url, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Shutdown(ctx)
	})
	return c, r
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hasSession(c *Cluster, user int64, res string, avail bool) bool {
	for _, s := range c.Sessions(user) {
		if s.Resource == res && s.Available == avail {
			return true
		}
	}
	return false
}

func TestWireRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    message
	}{
		{"stanza", message{Kind: kindStanza, Seq: 1, From: "abc", UserID: 42, Resource: "phone", Body: "<message to='a@b'><body>hi\nthere</body></message>"}},
		{"resource with spaces", message{Kind: kindPresence, Seq: 9, From: "n_1", UserID: 7, Priority: -5, Available: true, Resource: "my laptop\n+ % ü", Body: "<presence/>"}},
		{"empty body", message{Kind: kindBye, Seq: 3, From: "z"}},
		{"every session", message{Kind: kindStanza, Seq: 4, From: "z", UserID: 1, Resource: EverySession, Body: "<x/>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(tt.m.encode())
			if err != nil {
				t.Fatal(err)
			}
			if *got != tt.m {
				t.Errorf("got %+v, want %+v", *got, tt.m)
			}
		})
	}
	for _, bad := range []string{"", "m 1 abc 1 0 0 r", "m x abc 1 0 0 r\n", "mm 1 abc 1 0 0 r\n", "m 1 ABC 1 0 0 r\n", "m 1 abc 1 0 0 %zz\n", "m 1 abc 1 0\n"} {
		if _, err := decode(bad); !errors.Is(err, errBadMessage) {
			t.Errorf("decode(%q): got %v, want errBadMessage", bad, err)
		}
	}
}

func TestNeedsPostgres(t *testing.T) {
	db := dbtest.Open(t, migrations.SQLite)
	if _, err := New(db, "sqlite:x", Options{}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("got %v, want ErrUnsupported", err)
	}
}

func TestBadNodeID(t *testing.T) {
	d := pg(t)
	if _, err := New(d.db, d.url, Options{NodeID: "Bad-Id"}); err == nil {
		t.Fatal("got no error for a bad node id")
	}
}

// A full queue drops instead of blocking the router.
func TestQueueNeverBlocks(t *testing.T) {
	d := pg(t)
	c, err := New(d.db, d.url, Options{QueueLen: 4})
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	start := time.Now()
	for i := 0; i < 10; i++ {
		if c.Send("x", 1, "", "<message/>") {
			ok++
		}
	}
	if ok != 4 || c.Stats().Dropped != 6 {
		t.Errorf("got %d queued, %d dropped; want 4, 6", ok, c.Stats().Dropped)
	}
	if time.Since(start) > time.Second {
		t.Errorf("Send blocked")
	}
}

func TestStanzasAcrossNodes(t *testing.T) {
	d := pg(t)
	a, _ := startNode(t, d, fastOpts())
	b, rb := startNode(t, d, fastOpts())
	c, rc := startNode(t, d, fastOpts())

	b.Register(Session{UserID: 1, Resource: "desk"})
	c.Register(Session{UserID: 1, Resource: "phone"})
	waitFor(t, "a to see user 1 on two nodes", func() bool { return len(a.Sessions(1)) == 2 })

	// Bare: every node holding the user gets it once.
	if n := a.SendUser(1, "", "<message>hello</message>"); n != 2 {
		t.Fatalf("SendUser reached %d nodes, want 2", n)
	}
	rb.expect(t, "stanza 1/ <message>hello</message>")
	rc.expect(t, "stanza 1/ <message>hello</message>")
	// Full JID: only the node with that resource.
	if n := a.SendUser(1, "phone", "<message>p</message>"); n != 1 {
		t.Fatalf("SendUser(full) reached %d nodes, want 1", n)
	}
	rc.expect(t, "stanza 1/phone <message>p</message>")
	// Unknown user: nowhere.
	if n := a.SendUser(99, "", "<message/>"); n != 0 {
		t.Fatalf("SendUser(unknown) reached %d nodes, want 0", n)
	}

	// Order per sender→recipient pair, across many batches.
	const N = 500
	for i := 0; i < N; i++ {
		if !a.Send(b.NodeID(), 1, "desk", fmt.Sprintf("<m n='%d'/>", i)) {
			t.Fatal("queue full")
		}
	}
	for i := 0; i < N; i++ {
		rb.expect(t, fmt.Sprintf("stanza 1/desk <m n='%d'/>", i))
	}
	if g := b.Stats().Gaps; g != 0 {
		t.Errorf("got %d sequence gaps, want 0", g)
	}
	// Counters are raised after the commit, so they may trail delivery.
	waitFor(t, "sent counter", func() bool { return a.Stats().Sent >= N })
	if s := a.Stats(); s.Batches == 0 || s.Batches > s.Sent {
		t.Errorf("stats %+v: want 0 < Batches <= Sent", s)
	}
	// The registry table holds both sessions.
	var n int
	d.db.Get(&n, `SELECT count(*) FROM cluster_sessions WHERE user_id = 1`)
	if n != 2 {
		t.Errorf("got %d registry rows, want 2", n)
	}
	b.Unregister(1, "desk")
	waitFor(t, "desk to leave a's mirror", func() bool { return len(a.Sessions(1)) == 1 })
	d.db.Get(&n, `SELECT count(*) FROM cluster_sessions WHERE user_id = 1`)
	if n != 1 {
		t.Errorf("got %d registry rows after unregister, want 1", n)
	}
}

func TestLargeStanzaGoesThroughSpool(t *testing.T) {
	d := pg(t)
	a, _ := startNode(t, d, fastOpts())
	b, rb := startNode(t, d, fastOpts())
	big := "<message><body>" + strings.Repeat("я", 20000) + "</body></message>"
	a.Send(b.NodeID(), 5, "", "<small n='1'/>")
	a.Send(b.NodeID(), 5, "", big)
	a.Send(b.NodeID(), 5, "", "<small n='2'/>")
	rb.expect(t, "stanza 5/ <small n='1'/>")
	if e := rb.expect(t, "stanza 5/ "); e != "stanza 5/ "+big {
		t.Fatalf("got %d bytes, want the big stanza (%d bytes) second", len(e), len(big))
	}
	rb.expect(t, "stanza 5/ <small n='2'/>")
	waitFor(t, "spooled counter", func() bool { return a.Stats().Spooled == 1 })
	if s := b.Stats(); s.Unspooled != 1 {
		t.Errorf("receiver unspooled %d, want 1", s.Unspooled)
	}
	var n int
	d.db.Get(&n, `SELECT count(*) FROM cluster_spool`)
	if n != 0 {
		t.Errorf("got %d spool rows after delivery, want 0", n)
	}
}

func TestPresenceAndKick(t *testing.T) {
	d := pg(t)
	a, ra := startNode(t, d, fastOpts())
	b, rb := startNode(t, d, fastOpts())
	c, rc := startNode(t, d, fastOpts())

	b.Register(Session{UserID: 3, Resource: "r"})
	b.SetPresence(3, "r", 5, true, "<presence><show>away</show></presence>")
	want := "presence 3/r@" + b.NodeID() + " avail=true <presence><show>away</show></presence>"
	if e := ra.expect(t, "presence 3/r"); e != want {
		t.Errorf("got %q, want %q", e, want)
	}
	rc.expect(t, want)
	s := a.Sessions(3)
	if len(s) != 1 || s[0].Priority != 5 || !s[0].Available || s[0].Presence == "" {
		t.Errorf("a's mirror: got %+v", s)
	}
	// A node that starts later loads the registry, presence included.
	late, _ := startNode(t, d, fastOpts())
	if !hasSession(late, 3, "r", true) {
		t.Errorf("late node mirror: got %+v", late.Sessions(3))
	}
	b.SetPresence(3, "r", 0, false, "<presence type='unavailable'/>")
	ra.expect(t, "presence 3/r@"+b.NodeID()+" avail=false <presence type='unavailable'/>")
	if !hasSession(a, 3, "r", false) {
		t.Errorf("after unavailable: got %+v", a.Sessions(3))
	}

	// Resource conflict: the new session wins, the old node kicks its own.
	a.Register(Session{UserID: 3, Resource: "r"})
	rb.expect(t, "kick 3/r conflict")
	// Deactivation: every node closes the user's sessions.
	a.Kick(3, "", "deactivated")
	rb.expect(t, "kick 3/ deactivated")
	rc.expect(t, "kick 3/ deactivated")
	// A broadcast reaches every other node, not the sender.
	a.Broadcast("<message type='groupchat'/>")
	rb.expect(t, "broadcast <message type='groupchat'/>")
	rc.expect(t, "broadcast <message type='groupchat'/>")

	// A clean shutdown removes the node's sessions from the others at once.
	c.Register(Session{UserID: 4, Resource: "x"})
	c.SetPresence(4, "x", 0, true, "<presence/>")
	ra.expect(t, "presence 4/x@"+c.NodeID()+" avail=true")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ra.expect(t, "presence 4/x@"+c.NodeID()+" avail=false")
	var n int
	d.db.Get(&n, `SELECT count(*) FROM nodes WHERE id = $1`, c.NodeID())
	if n != 0 {
		t.Errorf("node row left after shutdown")
	}
}

func TestDeadNodeExpires(t *testing.T) {
	d := pg(t)
	a, ra := startNode(t, d, fastOpts())
	r := newRecorder()
	b, err := New(d.db, d.url, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	b.Register(Session{UserID: 8, Resource: "r"})
	b.SetPresence(8, "r", 0, true, "<presence/>")
	ra.expect(t, "presence 8/r@"+b.NodeID()+" avail=true")

	b.kill() // no heartbeats, no goodbye: rows stay until expired
	ra.expect(t, "presence 8/r@"+b.NodeID()+" avail=false")
	if len(a.Sessions(8)) != 0 {
		t.Errorf("dead node's session still mirrored: %+v", a.Sessions(8))
	}
	var n int
	d.db.Get(&n, `SELECT count(*) FROM cluster_sessions WHERE node_id = $1`, b.NodeID())
	if n != 0 {
		t.Errorf("got %d registry rows of the dead node, want 0", n)
	}
	if a.Stats().NodesExpired != 1 {
		t.Errorf("got %d nodes expired, want 1", a.Stats().NodesExpired)
	}
}

func TestListenerReconnect(t *testing.T) {
	d := pg(t)
	a, _ := startNode(t, d, fastOpts())
	b, rb := startNode(t, d, fastOpts())
	// A spooled message whose notification is lost (sent while b's
	// listener is away) waits in the table.
	m := message{Kind: kindStanza, Seq: 1, From: a.NodeID(), UserID: 2, Body: "<lost/>"}
	if _, err := d.db.Exec(`INSERT INTO cluster_spool (node_id, created_at, payload) VALUES ($1, 0, $2)`, b.NodeID(), m.encode()); err != nil {
		t.Fatal(err)
	}
	var killed int
	if err := d.db.Get(&killed, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1) t`, "vestnik-cluster-"+b.NodeID()); err != nil || killed != 1 {
		t.Fatalf("terminate listener: %d, %v", killed, err)
	}
	rb.expect(t, "stanza 2/ <lost/>")
	waitFor(t, "reconnect counted", func() bool { return b.Stats().Reconnects == 1 })
	// Live traffic flows again.
	a.Send(b.NodeID(), 2, "", "<after/>")
	rb.expect(t, "stanza 2/ <after/>")
}

// A node taken for dead (its row deleted, as after a long pause) comes
// back on its next heartbeat with all its sessions.
func TestExpiredNodeRejoins(t *testing.T) {
	d := pg(t)
	// a looks often, b beats slowly: a sees the gap before b is back.
	oa, ob := fastOpts(), fastOpts()
	oa.Heartbeat, oa.Missed = 50*time.Millisecond, 40
	ob.Heartbeat = 500 * time.Millisecond
	a, ra := startNode(t, d, oa)
	b, _ := startNode(t, d, ob)
	b.Register(Session{UserID: 6, Resource: "r"})
	b.SetPresence(6, "r", 1, true, "<presence/>")
	ra.expect(t, "presence 6/r@"+b.NodeID()+" avail=true")
	if _, err := d.db.Exec(`DELETE FROM nodes WHERE id = $1`, b.NodeID()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.db.Exec(`DELETE FROM cluster_sessions WHERE node_id = $1`, b.NodeID()); err != nil {
		t.Fatal(err)
	}
	rows := func() int {
		var n int
		d.db.Get(&n, `SELECT count(*) FROM cluster_sessions s JOIN nodes n ON n.id = s.node_id WHERE s.node_id = $1`, b.NodeID())
		return n
	}
	ra.expect(t, "presence 6/r@"+b.NodeID()+" avail=false")
	if len(a.Sessions(6)) != 0 {
		t.Errorf("vanished node's session still mirrored: %+v", a.Sessions(6))
	}
	ra.expect(t, "presence 6/r@"+b.NodeID()+" avail=true <presence/>")
	waitFor(t, "b to register again", func() bool { return rows() == 1 })
	if !hasSession(a, 6, "r", true) {
		t.Errorf("rejoined session not mirrored: %+v", a.Sessions(6))
	}
}
