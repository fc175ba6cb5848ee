package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats-server/v2/server"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// recorder is a Handler that keeps what it saw, one line per event:
// "stanza 7/res <body>", "presence 7/res@node avail=true <stanza>",
// "kick 7/res reason", "broadcast <stanza>".
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

func (r *recorder) Stanza(userID int64, resource string, seq int64, stanza string) {
	if seq != 0 {
		r.add(fmt.Sprintf("stanza %d/%s #%d %s", userID, resource, seq, stanza))
		return
	}
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

// expectNone fails if an event starting with prefix comes within d.
func (r *recorder) expectNone(t *testing.T, d time.Duration, prefix string) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-r.ch:
			if strings.HasPrefix(e, prefix) {
				t.Fatalf("unexpected event %q", e)
			}
		case <-deadline:
			return
		}
	}
}

// pg gives a fresh migrated PostgreSQL schema (skipped without
// VESTNIK_TEST_PG; a failure under VESTNIK_REQUIRE_ALL=1).
func pg(t testing.TB) *sqlx.DB {
	t.Helper()
	return openPG(t, dbtest.URL(t, migrations.Postgres), true)
}

// openPG opens the database at u (migrated with up), closed at cleanup.
func openPG(t testing.TB, u string, up bool) *sqlx.DB {
	t.Helper()
	db, err := migrations.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if up {
		if _, err := migrations.Up(context.Background(), db); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func fastOpts() Options {
	return Options{Heartbeat: 100 * time.Millisecond, Missed: 10, Discovery: 200 * time.Millisecond}
}

func startNode(t testing.TB, db *sqlx.DB, opts Options, h Handler) *Cluster {
	t.Helper()
	c, err := New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Shutdown(ctx)
	})
	return c
}

func startRec(t *testing.T, db *sqlx.DB, opts Options) (*Cluster, *recorder) {
	t.Helper()
	r := newRecorder()
	return startNode(t, db, opts, r), r
}

// waitFor polls cond until it holds.
func waitFor(t testing.TB, what string, cond func() bool) {
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
		{"stanza", message{Kind: kindStanza, From: "abc", UserID: 42, Resource: "phone", Body: "<message to='a@b'><body>hi\nthere</body></message>"}},
		{"resource with spaces", message{Kind: kindPresence, Seq: 9, From: "n_1", UserID: 7, Priority: -5, Available: true, Resource: "my laptop\n+ % ü", Body: "<presence/>"}},
		{"empty body", message{Kind: kindBye, Seq: 3, From: "z"}},
		{"every session", message{Kind: kindStanza, From: "z", UserID: 1, Resource: EverySession, Body: "<x/>"}},
		{"delivery sequence", message{Kind: kindStanza, Seq: 1 << 40, From: "z", UserID: 3, Body: "<message/>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(string(tt.m.encode()))
			if err != nil {
				t.Fatal(err)
			}
			if *got != tt.m {
				t.Errorf("got %+v, want %+v", *got, tt.m)
			}
		})
	}
	for _, bad := range []string{"", "m 1 abc 1 0 0 r", "m x abc 1 0 0 r\n", "mm 1 abc 1 0 0 r\n", "m 1 ABC 1 0 0 r\n", "m 1 abc 1 0 0 %zz\n", "m 1 abc 1 0\n", "m 1 abc 1 0 0 r x\n"} {
		if _, err := decode(bad); !errors.Is(err, errBadMessage) {
			t.Errorf("decode(%q): got %v, want errBadMessage", bad, err)
		}
	}
}

func TestNeedsPostgres(t *testing.T) {
	db := dbtest.Open(t, migrations.SQLite)
	if _, err := New(db, Options{}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("got %v, want ErrUnsupported", err)
	}
}

func TestBadOptions(t *testing.T) {
	db := pg(t)
	if _, err := New(db, Options{NodeID: "Bad-Id"}); err == nil {
		t.Error("got no error for a bad node id")
	}
	for _, listen := range []string{"nonsense", "127.0.0.1:99999", "0.0.0.0:0"} {
		c, err := New(db, Options{Listen: listen})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(context.Background(), newRecorder()); err == nil {
			c.Shutdown(context.Background())
			t.Errorf("listen %q: got no error", listen)
		}
	}
	var n int
	db.Get(&n, `SELECT count(*) FROM nodes`)
	if n != 0 {
		t.Errorf("got %d node rows after failed starts, want 0", n)
	}
}

func TestStanzasAcrossNodes(t *testing.T) {
	db := pg(t)
	a, _ := startRec(t, db, fastOpts())
	b, rb := startRec(t, db, fastOpts())
	c, rc := startRec(t, db, fastOpts())
	if a.Route() == "" || a.Route() == b.Route() {
		t.Fatalf("routes: a %q, b %q", a.Route(), b.Route())
	}
	var routes []string
	db.Select(&routes, `SELECT route FROM nodes ORDER BY id`)
	if len(routes) != 3 {
		t.Fatalf("got routes %q in nodes, want 3", routes)
	}

	b.Register(Session{UserID: 1, Resource: "desk"})
	c.Register(Session{UserID: 1, Resource: "phone"})
	waitFor(t, "a to see user 1 on two nodes", func() bool { return len(a.Sessions(1)) == 2 })

	// Bare: every node holding the user gets it once.
	a.SendUser(1, "", "<message>hello</message>")
	rb.expect(t, "stanza 1/ <message>hello</message>")
	rc.expect(t, "stanza 1/ <message>hello</message>")
	// Full JID: only the node with that resource.
	a.SendUser(1, "phone", "<message>p</message>")
	rc.expect(t, "stanza 1/phone <message>p</message>")
	// Every session: every node holding one.
	a.SendUser(1, EverySession, "<message>all</message>")
	rb.expect(t, "stanza 1/"+EverySession)
	rc.expect(t, "stanza 1/"+EverySession)
	// A user with no session on b or c: neither gets it.
	a.SendUser(99, "", "<message>nobody</message>")
	rb.expectNone(t, 100*time.Millisecond, "stanza 99/")
	rc.expectNone(t, 0, "stanza 99/")
	rb.expectNone(t, 0, "stanza 1/phone")

	// Order from one sender, and large stanzas (over the old 8000-byte
	// NOTIFY limit) in line.
	const N = 2000
	big := strings.Repeat("я", 200000)
	for i := 0; i < N; i++ {
		body := ""
		if i%500 == 0 {
			body = big
		}
		if !a.SendUser(1, "desk", fmt.Sprintf("<m n='%d'>%s</m>", i, body)) {
			t.Fatal("publish failed")
		}
	}
	for i := 0; i < N; i++ {
		e := rb.expect(t, fmt.Sprintf("stanza 1/desk <m n='%d'>", i))
		if i%500 == 0 && !strings.Contains(e, big) {
			t.Fatalf("stanza %d: got %d bytes, want the big body", i, len(e))
		}
	}
	rc.expectNone(t, 50*time.Millisecond, "stanza 1/desk")

	// A delivery sequence crosses in the header.
	a.SendSeq(1, "", 41, "<message>numbered</message>")
	rb.expect(t, "stanza 1/ #41 <message>numbered</message>")
	rc.expect(t, "stanza 1/ #41 <message>numbered</message>")

	// The subject is left with the user's last session there.
	b.Unregister(1, "desk")
	waitFor(t, "desk to leave a's mirror", func() bool { return len(a.Sessions(1)) == 1 })
	a.SendUser(1, "", "<message>after</message>")
	rc.expect(t, "stanza 1/ <message>after</message>")
	rb.expectNone(t, 100*time.Millisecond, "stanza 1/ <message>after")
	if s := b.Stats(); s.Dropped != 0 || s.Gaps != 0 {
		t.Errorf("b stats %+v: want no drops, no gaps", s)
	}
}

// TestDropRouted: the test hook loses a numbered stanza on arrival (as a
// NATS message lost in transit would be) and counts it; others pass.
func TestDropRouted(t *testing.T) {
	db := pg(t)
	a, _ := startRec(t, db, fastOpts())
	ob := fastOpts()
	ob.DropRouted = func(userID, seq int64) bool { return userID == 1 && seq == 2 }
	b, rb := startRec(t, db, ob)
	b.Register(Session{UserID: 1, Resource: "desk"})
	waitFor(t, "a to see user 1", func() bool { return len(a.Sessions(1)) == 1 })
	for seq := int64(1); seq <= 3; seq++ {
		a.SendSeq(1, "", seq, fmt.Sprintf("<message n='%d'/>", seq))
	}
	rb.expect(t, "stanza 1/ #1 ")
	rb.expect(t, "stanza 1/ #3 ")
	rb.mu.Lock()
	for _, e := range rb.events {
		if strings.HasPrefix(e, "stanza 1/ #2 ") {
			t.Errorf("got %q, want it dropped", e)
		}
	}
	rb.mu.Unlock()
	if s := b.Stats(); s.Dropped != 1 {
		t.Errorf("got %d dropped, want 1", s.Dropped)
	}
}

func TestPresenceAndKick(t *testing.T) {
	db := pg(t)
	a, ra := startRec(t, db, fastOpts())
	b, rb := startRec(t, db, fastOpts())
	c, rc := startRec(t, db, fastOpts())

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
	// A node that starts later gets the sessions by snapshot, presence
	// included, before Start returns.
	late, rl := startRec(t, db, fastOpts())
	if !hasSession(late, 3, "r", true) {
		t.Errorf("late node mirror: got %+v", late.Sessions(3))
	}
	rl.expect(t, want)
	b.SetPresence(3, "r", 0, false, "<presence type='unavailable'/>")
	ra.expect(t, "presence 3/r@"+b.NodeID()+" avail=false <presence type='unavailable'/>")
	if !hasSession(a, 3, "r", false) {
		t.Errorf("after unavailable: got %+v", a.Sessions(3))
	}

	// Resource conflict: the new session wins, the old node kicks its own.
	a.Register(Session{UserID: 3, Resource: "r"})
	rb.expect(t, "kick 3/r conflict")
	// Deactivation: every node holding the user closes its sessions.
	c.Register(Session{UserID: 3, Resource: "other"})
	waitFor(t, "a to see 3/other", func() bool { return hasSession(a, 3, "other", false) })
	a.Kick(3, "", "deactivated")
	rb.expect(t, "kick 3/ deactivated")
	rc.expect(t, "kick 3/ deactivated")
	// A broadcast reaches every other node, not the sender.
	a.Broadcast("<message type='groupchat'/>")
	rb.expect(t, "broadcast <message type='groupchat'/>")
	rc.expect(t, "broadcast <message type='groupchat'/>")
	ra.expectNone(t, 50*time.Millisecond, "broadcast")

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
	if s := a.Stats(); s.NodesExpired != 0 {
		t.Errorf("a stats %+v: the goodbye was missed, the node expired", s)
	}
	var n int
	db.Get(&n, `SELECT count(*) FROM nodes WHERE id = $1`, c.NodeID())
	if n != 0 {
		t.Errorf("node row left after shutdown")
	}
}

// A node killed without a goodbye is noticed by its missing heartbeats,
// with the defaults within 2 s.
func TestDeadNodeNoticed(t *testing.T) {
	db := pg(t)
	_, ra := startRec(t, db, Options{})
	b, err := New(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background(), newRecorder()); err != nil {
		t.Fatal(err)
	}
	b.Register(Session{UserID: 8, Resource: "r"})
	b.SetPresence(8, "r", 0, true, "<presence/>")
	ra.expect(t, "presence 8/r@"+b.NodeID()+" avail=true")

	t0 := time.Now()
	b.kill() // no goodbye
	ra.expect(t, "presence 8/r@"+b.NodeID()+" avail=false")
	took := time.Since(t0)
	t.Logf("dead node noticed after %v", took)
	if took > 2*time.Second {
		t.Errorf("dead node noticed after %v, want within 2s", took)
	}
}

// With the database unreachable for 10 s, routing and presence go on: no node is
// taken for dead, nothing flaps.
func TestDatabaseOutageNoFlap(t *testing.T) {
	u := dbtest.URL(t, migrations.Postgres)
	dbA, dbB := openPG(t, u, true), openPG(t, u, false)
	a, ra := startRec(t, dbA, Options{Discovery: 100 * time.Millisecond})
	b, rb := startRec(t, dbB, Options{Discovery: 100 * time.Millisecond})
	a.Register(Session{UserID: 1, Resource: "a"})
	a.SetPresence(1, "a", 0, true, "<presence/>")
	b.Register(Session{UserID: 2, Resource: "b"})
	b.SetPresence(2, "b", 0, true, "<presence/>")
	rb.expect(t, "presence 1/a@")
	ra.expect(t, "presence 2/b@")

	dbA.Close() // every query of node a now fails
	dbB.Close()
	rb.expectNone(t, 10*time.Second, "presence 1/a@"+a.NodeID()+" avail=false")
	ra.expectNone(t, 0, "presence 2/b@"+b.NodeID()+" avail=false")
	a.SendUser(2, "", "<message>still here</message>")
	rb.expect(t, "stanza 2/ <message>still here</message>")
	if s := a.Stats(); s.NodesExpired != 0 || s.Nodes != 1 {
		t.Errorf("a stats %+v: want 1 node, none expired", s)
	}
}

// A lost message in a node's session stream is noticed by the sequence
// gap and repaired by a snapshot.
func TestGapRepairedBySnapshot(t *testing.T) {
	db := pg(t)
	a, ra := startRec(t, db, fastOpts())
	b, _ := startRec(t, db, fastOpts())
	b.Register(Session{UserID: 5, Resource: "lost"})
	waitFor(t, "a to see 5/lost", func() bool { return len(a.Sessions(5)) == 1 })
	// A change that never reaches a: made under pubMu without publishing.
	b.pubMu.Lock()
	b.mu.Lock()
	b.local[key{6, "quiet"}] = Session{Node: b.id, UserID: 6, Resource: "quiet", Available: true, Presence: "<presence/>"}
	b.mu.Unlock()
	b.seq++
	b.pubMu.Unlock()
	// The next heartbeat shows the gap; the snapshot brings the session.
	ra.expect(t, "presence 6/quiet@"+b.NodeID()+" avail=true")
	waitFor(t, "a's mirror to hold 6/quiet", func() bool { return hasSession(a, 6, "quiet", true) })
	if s := a.Stats(); s.Gaps != 1 || s.Snapshots != 2 {
		t.Errorf("a stats %+v: want 1 gap, 2 snapshots", s)
	}
	// The stream goes on from the snapshot.
	b.SetPresence(5, "lost", 0, true, "<presence/>")
	ra.expect(t, "presence 5/lost@"+b.NodeID()+" avail=true")
	if s := a.Stats(); s.Gaps != 1 {
		t.Errorf("a stats %+v after the repair: want still 1 gap", s)
	}
}

// Nodes that start at the same moment (neither in the table when the
// other read it) find each other by the next discovery.
func TestSimultaneousStart(t *testing.T) {
	db := pg(t)
	var wg sync.WaitGroup
	nodes := make([]*Cluster, 3)
	for i := range nodes {
		c, err := New(db, fastOpts())
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = c
		t.Cleanup(func() { c.Shutdown(context.Background()) })
	}
	for _, c := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Start(context.Background(), newRecorder()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, c := range nodes {
		waitFor(t, "every node to see the two others", func() bool { return len(c.Nodes()) == 2 })
	}
}

// Routes need the shared credential: a node with another one stays alone.
func TestRouteCredential(t *testing.T) {
	db := pg(t)
	a, _ := startRec(t, db, fastOpts())
	var secret string
	db.Get(&secret, `SELECT secret FROM cluster_secret`)
	if len(secret) < 32 {
		t.Fatalf("got route secret %q, want a long random one", secret)
	}
	opts := fastOpts()
	opts.Secret = "wrong"
	b, _ := startRec(t, db, opts)
	time.Sleep(time.Second)
	if n := len(a.Nodes()) + len(b.Nodes()); n != 0 {
		t.Errorf("a node with a wrong credential joined: a sees %v, b sees %v", a.Nodes(), b.Nodes())
	}
	c, _ := startRec(t, db, fastOpts())
	waitFor(t, "a and c to meet", func() bool { return len(a.Nodes()) == 1 && len(c.Nodes()) == 1 })
}

// testCA is a self-signed certificate for 127.0.0.1 used as its own CA, so
// that routes verify each other both ways.
func testCA(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vestnik cluster"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs: pool, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
}

func TestRoutesOverTLS(t *testing.T) {
	db := pg(t)
	opts := fastOpts()
	opts.TLS = testCA(t)
	a, _ := startRec(t, db, opts)
	b, rb := startRec(t, db, opts)
	if !strings.HasPrefix(a.Route(), "tls://") {
		t.Errorf("got route %q, want tls://", a.Route())
	}
	waitFor(t, "a to see b", func() bool { return len(a.Nodes()) == 1 })
	b.Register(Session{UserID: 1, Resource: "r"})
	waitFor(t, "a to see 1/r", func() bool { return len(a.Sessions(1)) == 1 })
	a.SendUser(1, "", "<message>over tls</message>")
	rb.expect(t, "stanza 1/ <message>over tls</message>")
	// A node without TLS cannot join.
	plain, _ := startRec(t, db, fastOpts())
	time.Sleep(500 * time.Millisecond)
	if len(plain.Nodes()) != 0 {
		t.Errorf("a node without TLS joined: it sees %v", plain.Nodes())
	}
}

// Nodes can instead join an existing NATS cluster by URL.
func TestJoinNATSURL(t *testing.T) {
	db := pg(t)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats server not ready")
	}
	opts := fastOpts()
	opts.NATSURL = ns.ClientURL()
	a, _ := startRec(t, db, opts)
	b, rb := startRec(t, db, opts)
	if a.Route() != "" {
		t.Errorf("got route %q for a node without an embedded server", a.Route())
	}
	b.Register(Session{UserID: 1, Resource: "r"})
	waitFor(t, "a to see 1/r", func() bool { return len(a.Sessions(1)) == 1 })
	a.SendUser(1, "r", "<message>via url</message>")
	rb.expect(t, "stanza 1/r <message>via url</message>")
	bad := opts
	bad.NATSURL = "nats://127.0.0.1:1"
	c, _ := New(db, bad)
	if err := c.Start(context.Background(), newRecorder()); err == nil {
		c.Shutdown(context.Background())
		t.Error("got no error for an unreachable NATS URL")
	}
}

// answerer is a recorder that answers questions (Ask) with its answers
// and the question, after sending a chat's notice it was told to.
type answerer struct {
	*recorder
	c       *Cluster
	answers []string
	chat    int64 // published on before answering, when not 0
}

func (a *answerer) Answer(q string) []string {
	if a.chat != 0 {
		a.c.SendChat(a.chat, "<before "+q+"/>")
	}
	return append(append([]string(nil), a.answers...), "<re "+q+"/>")
}

// TestAskAndNotices: a question reaches every other node and Ask returns
// once each has answered, its answers (and what it published on a chat
// the asker watches, before answering) already handed to the asker's
// Handler; a node that does not answer is waited for only until the
// timeout; a user's notice reaches only the nodes holding a session of
// the user.
func TestAskAndNotices(t *testing.T) {
	db := pg(t)
	a, ra := startRec(t, db, fastOpts())
	hb := &answerer{recorder: newRecorder(), answers: []string{"<one/>", "<two/>"}, chat: 7}
	b := startNode(t, db, fastOpts(), hb)
	hb.c = b
	hc := &answerer{recorder: newRecorder()}
	c := startNode(t, db, fastOpts(), hc)
	hc.c = c
	waitFor(t, "three nodes", func() bool { return len(a.Nodes()) == 2 && len(b.Nodes()) == 2 && len(c.Nodes()) == 2 })
	a.WatchChat(7, true)
	if missing := a.Ask("q1", 2*time.Second); missing != 0 {
		t.Fatalf("Ask: %d nodes did not answer", missing)
	}
	// Everything is there when Ask returns.
	ra.mu.Lock()
	got := strings.Join(ra.events, "\n")
	ra.mu.Unlock()
	for _, want := range []string{"broadcast <before q1/>", "broadcast <one/>", "broadcast <two/>"} {
		if strings.Count(got, want) != 1 {
			t.Errorf("after Ask, a saw %q once? events:\n%s", want, got)
		}
	}
	if strings.Count(got, "broadcast <re q1/>") != 2 {
		t.Errorf("after Ask, want the two nodes' answers; events:\n%s", got)
	}
	if i, j := strings.Index(got, "<before q1/>"), strings.Index(got, "<one/>"); i < 0 || i > j {
		t.Errorf("the chat notice b sent before answering came after its answer:\n%s", got)
	}
	// A node that never answers (stopped): Ask gives up at the timeout
	// and says so; once it is taken for dead it is not waited for.
	c.kill() // as a crash: no goodbye
	t0 := time.Now()
	if missing := a.Ask("q2", 300*time.Millisecond); missing != 1 {
		t.Errorf("Ask with a silent node: %d missing, want 1", missing)
	}
	if d := time.Since(t0); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("Ask with a silent node returned after %v, want about the 300 ms timeout", d)
	}
	waitFor(t, "c taken for dead", func() bool { return len(a.Nodes()) == 1 })
	if missing := a.Ask("q3", 2*time.Second); missing != 0 {
		t.Errorf("Ask after c died: %d missing, want 0", missing)
	}

	// A user's notice: only b holds a session of user 5.
	b.Register(Session{UserID: 5, Resource: "r"})
	waitFor(t, "a to see user 5", func() bool { return len(a.Sessions(5)) == 1 })
	a.NotifyUser(5, "<notice/>")
	a.NotifyUser(6, "<nobody/>")
	hb.expect(t, "broadcast <notice/>")
	hb.expectNone(t, 200*time.Millisecond, "broadcast <nobody/>")
}

// TestOutboxRuns: the outbox keeps the order of everything published,
// sends a run of one subject as one payload (split at maxRun), and the
// receiving side reads each record back; a truncated payload is refused.
func TestOutboxRuns(t *testing.T) {
	o := newOutbox()
	big := strings.Repeat("x", maxRun/2)
	adds := []struct{ subj, body string }{
		{"u.1", "a"}, {"u.1", "b"}, {"c.7", "c"}, {"u.1", "d"}, {"u.1", big}, {"u.1", big}, {"u.1", "e"},
	}
	for _, a := range adds {
		if !o.add(a.subj, &message{Kind: kindStanza, From: "n", UserID: 1, Body: a.body}) {
			t.Fatal("add refused")
		}
	}
	var subjects []string
	var bodies []string
	o.drain(func(subj string, payload []byte) error {
		n := 0
		if !records(payload, func(rec []byte) {
			m, err := decode(string(rec))
			if err != nil {
				t.Fatal(err)
			}
			bodies = append(bodies, m.Body)
			n++
		}) {
			t.Fatalf("malformed payload on %s", subj)
		}
		subjects = append(subjects, fmt.Sprintf("%s×%d", subj, n))
		return nil
	})
	if got, want := strings.Join(subjects, " "), "u.1×2 c.7×1 u.1×2 u.1×2"; got != want {
		t.Errorf("payloads %q, want %q", got, want)
	}
	var want []string
	for _, a := range adds {
		want = append(want, a.body)
	}
	if strings.Join(bodies, ",") != strings.Join(want, ",") {
		t.Errorf("records out of order: %d records", len(bodies))
	}
	// Drained: nothing more; the buffers are reused.
	calls := 0
	o.drain(func(string, []byte) error { calls++; return nil })
	if calls != 0 {
		t.Errorf("a second drain published %d payloads", calls)
	}
	for _, bad := range [][]byte{{0, 0}, {0, 0, 0, 9, 'm'}} {
		if records(bad, func([]byte) {}) {
			t.Errorf("records(%v) accepted a truncated payload", bad)
		}
	}
}
