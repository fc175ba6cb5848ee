// Package cluster lets several vestnik nodes that share one PostgreSQL
// database serve one company as one server. Each process is a node that
// embeds a NATS server (routes to the other nodes' NATS servers, found
// through the nodes table) and talks to it with a nats.go client over
// loopback, or joins an existing NATS cluster by URL.
//
// NATS carries routing only; the database stays the source of truth.
// Subjects:
//
//   - <prefix>.u.<user id>: stanzas and kicks for a user; a node subscribes
//     while it holds a session of the user, so a message goes exactly to
//     the nodes that can deliver it.
//   - <prefix>.presence: one ordered stream per node of its session
//     changes (bound, presence, gone) and heartbeats, from which every node
//     keeps a mirror of the others' sessions and notices a dead node.
//   - <prefix>.c.<chat id>: a chat's traffic (room messages, occupant
//     notices, chat events, typing), to the nodes watching the chat (they
//     have occupants or followers of it).
//   - <prefix>.all: what is for every node whatever its sessions (a
//     changed blocklist or photo, an announcement).
//   - <prefix>.snap.<node id>: request/reply for a node's session snapshot,
//     asked by a node that joins or sees a gap in a stream.
//   - <prefix>.n.<node id>: questions to one node (Ask) and the answers
//     to them.
//
// The package knows nothing of XML: stanzas cross as serialized bytes, and
// the local router is reached through the small Handler interface.
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Defaults and limits.
const (
	// DefaultHeartbeat is how often a node says it is alive on the
	// presence stream; DefaultMissed heartbeats missed and it is taken for
	// dead (a dead node is noticed within Heartbeat*(Missed+0.5)).
	DefaultHeartbeat = 400 * time.Millisecond
	DefaultMissed    = 3
	// DefaultDiscovery is how often a node refreshes its row in nodes and
	// reads the other nodes' route addresses (not used for liveness: a
	// database outage changes nothing in routing).
	DefaultDiscovery = 2 * time.Second
	// DefaultInbox is how many received messages wait for the receiver
	// goroutine; over it NATS drops (counted as Dropped).
	DefaultInbox = 1 << 16
	// DefaultListen is the route listen address of the embedded server.
	DefaultListen = "127.0.0.1:0"
	// DefaultPrefix starts every subject.
	DefaultPrefix = "vestnik"
	// staleRoute is how long a node's row stays a route to try after its
	// last discovery refresh.
	staleRoute = 30 * time.Second
	// snapshotTimeout bounds a session snapshot request.
	snapshotTimeout = 2 * time.Second
	// maxBuffered bounds a stream's messages held while its snapshot is
	// asked; over it they are dropped and the snapshot asked again.
	maxBuffered = 100000
	// queryTimeout bounds every statement the cluster runs.
	queryTimeout = 5 * time.Second
	// routeUser is the user name of the route credential.
	routeUser = "vestnik"
	// maxPayload is the largest message between nodes.
	maxPayload = 8 << 20
)

// ErrUnsupported is returned by New for a database that is not PostgreSQL.
var ErrUnsupported = errors.New("cluster: needs PostgreSQL")

// Options tune a node; zero values are the documented defaults.
type Options struct {
	NodeID string // default: 16 random hex digits; [a-z0-9_]{1,40}
	// Listen is the embedded NATS server's route address (host:port; port
	// 0 picks a free one), default DefaultListen. Advertise is the address
	// recorded for the other nodes (default: Listen with the port chosen).
	Listen, Advertise string
	// Secret is the route credential every node presents; default: the
	// one kept in the database (made by the first node).
	Secret string
	// TLS, when set, is required on routes (both directions: give it
	// Certificates, RootCAs and ClientCAs with ClientAuth set).
	TLS *tls.Config
	// NATSURL joins an existing NATS cluster instead of embedding a
	// server (Listen, Advertise, Secret and TLS are then not used; put
	// credentials in the URL).
	NATSURL string
	// Prefix starts every subject (default DefaultPrefix): several
	// installations can share one NATS cluster.
	Prefix    string
	Heartbeat time.Duration // default DefaultHeartbeat
	Missed    int           // default DefaultMissed
	Discovery time.Duration // default DefaultDiscovery
	Inbox     int           // default DefaultInbox
	Logger    *slog.Logger
	// DropRouted, when set, is asked about every stanza routed here with
	// a delivery sequence; true drops it on arrival (a test hook: a
	// NATS message lost in transit).
	DropRouted func(userID, seq int64) bool
}

// Session is one XMPP session as the other nodes know it.
type Session struct {
	Node      string
	UserID    int64
	Resource  string
	Priority  int
	Available bool
	Presence  string // the session's last available presence stanza; "" when unavailable
}

// EverySession as a resource in SendUser or Handler.Stanza means every
// session of the user, whatever its presence (a NUL cannot be part of a
// JID resource).
const EverySession = "\x00every"

// Handler is what the cluster needs from the local router. Its methods are
// called from the cluster's receiver goroutine and must not block.
type Handler interface {
	// Stanza delivers a stanza routed here by another node to the local
	// sessions of userID: resource "" means by RFC 6121 bare-JID rules;
	// seq is the archived message's delivery sequence to the user (0: none
	// or not known).
	Stanza(userID int64, resource string, seq int64, stanza string)
	// Presence tells that a session on another node changed presence;
	// s.Available false means unavailable or gone (stanza may be "").
	Presence(s Session, stanza string)
	// Kick closes the local session (resource "" = every session of the
	// user), e.g. a resource conflict with a session on another node.
	Kick(userID int64, resource string, reason string)
	// Broadcast hands over a stanza another node sent to this node: to
	// every node (Cluster.Broadcast), to the nodes watching a chat
	// (SendChat), to those holding a session of a user (NotifyUser), or
	// an answer to this node's question (Ask).
	Broadcast(stanza string)
}

// Answerer is a Handler that answers other nodes' questions (Ask). Answer
// runs on the receiver goroutine and must not block; what it returns goes
// back to the asking node's Handler.Broadcast, one stanza at a time.
type Answerer interface {
	Answer(question string) []string
}

// Stats are counters since start (plain atomic integers).
type Stats struct {
	Sent, Received        int64 // messages published / taken from NATS
	Stream                int64 // of Received: the other nodes' presence streams (sessions, heartbeats)
	Dropped               int64 // publish errors and NATS slow-consumer events (the inbox was full)
	Gaps                  int64 // gaps seen in a node's presence stream (repaired by a snapshot)
	Snapshots             int64 // session snapshots taken from other nodes
	NodesExpired          int64 // nodes taken for dead (heartbeats missed)
	Reconnects            int64 // NATS client reconnections
	Routes                int64 // current NATS routes of the embedded server
	RemoteSessions, Nodes int64 // current sizes of the mirror and the node list
}

type counters struct {
	sent, received, stream, dropped, gaps, snapshots, expired, reconnects atomic.Int64
}

type key struct {
	user int64
	res  string
}

// peer is what this node knows of another node's presence stream.
type peer struct {
	seen   time.Time // its last message on the presence stream
	seq    uint64    // its last session change applied to the mirror
	synced bool      // the mirror holds its snapshot and every change since
	asked  bool      // a snapshot request is under way
	buf    []*message
}

// Cluster is this process's node.
type Cluster struct {
	db   *sqlx.DB
	h    Handler
	opts Options
	id   string
	log  *slog.Logger
	c    counters

	ns    *server.Server  // the embedded NATS server; nil with NATSURL
	sopts *server.Options // its options
	nc    *nats.Conn
	route string // this node's route URL as recorded in nodes
	in    chan *nats.Msg
	tasks chan func() // work for the receiver goroutine
	out   *outbox     // what this node publishes, for the publisher goroutine

	subjPresence, subjAll, subjSelf string
	askSeq                          atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	killed atomic.Bool

	// pubMu orders this node's presence stream: a session change, its
	// sequence number and its publication happen under it, and a snapshot
	// reads the sessions and the number under it. Lock order: pubMu, mu.
	pubMu sync.Mutex
	seq   uint64

	mu     sync.Mutex // guards the maps below; never held across I/O
	local  map[key]Session
	subs   map[int64]*nats.Subscription // user subjects subscribed to
	chats  map[int64]*nats.Subscription // chat subjects watched (nil until Start)
	remote map[int64]map[string]Session
	peers  map[string]*peer
	asks   map[uint64]*question // questions of this node waiting for answers
}

// question is one Ask waiting for the nodes in want.
type question struct {
	want map[string]bool
	done chan struct{} // closed when want is empty
}

// New makes a node over db (which must be PostgreSQL: it holds the node
// list, the route addresses and the route credential). Start makes it live.
func New(db *sqlx.DB, opts Options) (*Cluster, error) {
	if db.DriverName() != "postgres" {
		return nil, ErrUnsupported
	}
	if opts.NodeID == "" {
		var b [8]byte
		rand.Read(b[:])
		opts.NodeID = hex.EncodeToString(b[:])
	}
	if !validNodeID(opts.NodeID) {
		return nil, fmt.Errorf("cluster: bad node id %q (want [a-z0-9_]{1,40})", opts.NodeID)
	}
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.Missed <= 0 {
		opts.Missed = DefaultMissed
	}
	if opts.Discovery <= 0 {
		opts.Discovery = DefaultDiscovery
	}
	if opts.Inbox <= 0 {
		opts.Inbox = DefaultInbox
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Cluster{
		db: db, opts: opts, id: opts.NodeID,
		log:          opts.Logger.With("component", "cluster", "node", opts.NodeID),
		in:           make(chan *nats.Msg, opts.Inbox),
		tasks:        make(chan func(), 256),
		out:          newOutbox(),
		subjPresence: opts.Prefix + ".presence",
		subjAll:      opts.Prefix + ".all",
		subjSelf:     opts.Prefix + ".n." + opts.NodeID,
		local:        map[key]Session{},
		subs:         map[int64]*nats.Subscription{},
		chats:        map[int64]*nats.Subscription{},
		remote:       map[int64]map[string]Session{},
		peers:        map[string]*peer{},
		asks:         map[uint64]*question{},
	}, nil
}

// NodeID returns this node's id.
func (c *Cluster) NodeID() string { return c.id }

// Route returns the route URL this node recorded ("" when it joined an
// existing NATS cluster).
func (c *Cluster) Route() string { return c.route }

func (c *Cluster) subjUser(userID int64) string {
	return c.opts.Prefix + ".u." + strconv.FormatInt(userID, 10)
}

func (c *Cluster) subjChat(chatID int64) string {
	return c.opts.Prefix + ".c." + strconv.FormatInt(chatID, 10)
}

func (c *Cluster) subjSnap(node string) string { return c.opts.Prefix + ".snap." + node }

func (c *Cluster) subjNode(node string) string { return c.opts.Prefix + ".n." + node }

// Start starts or joins NATS, records the node and its route address,
// subscribes, and waits (at most Heartbeat*Missed) until it has heard the
// nodes the table lists as alive and holds their sessions; h receives what
// the other nodes send.
func (c *Cluster) Start(ctx context.Context, h Handler) error {
	c.h = h
	c.ctx, c.cancel = context.WithCancel(context.Background())
	fail := func(err error) error {
		c.cancel()
		c.closeNATS()
		c.deleteNode(ctx)
		return err
	}
	if err := c.connect(ctx); err != nil {
		return fail(err)
	}
	for _, s := range []string{c.subjPresence, c.subjAll, c.subjSelf} {
		if _, err := c.nc.ChanSubscribe(s, c.in); err != nil {
			return fail(fmt.Errorf("cluster: subscribe %s: %w", s, err))
		}
	}
	if _, err := c.nc.Subscribe(c.subjSnap(c.id), c.answerSnapshot); err != nil {
		return fail(fmt.Errorf("cluster: subscribe snapshots: %w", err))
	}
	c.mu.Lock()
	for k := range c.local {
		if c.subs[k.user] == nil {
			sub, err := c.nc.ChanSubscribe(c.subjUser(k.user), c.in)
			if err != nil {
				c.mu.Unlock()
				return fail(fmt.Errorf("cluster: subscribe user: %w", err))
			}
			c.subs[k.user] = sub
		}
	}
	for id, sub := range c.chats {
		if sub == nil {
			sub, err := c.nc.ChanSubscribe(c.subjChat(id), c.in)
			if err != nil {
				c.mu.Unlock()
				return fail(fmt.Errorf("cluster: subscribe chat: %w", err))
			}
			c.chats[id] = sub
		}
	}
	c.mu.Unlock()
	if err := c.nc.Flush(); err != nil {
		return fail(fmt.Errorf("cluster: nats: %w", err))
	}
	c.go_("receiver", c.receiver)
	c.go_("publisher", c.publisher)
	c.go_("heartbeat", c.heartbeat)
	c.go_("discovery", c.discovery)
	c.waitPeers(ctx)
	c.log.Info("cluster node started", "route", c.route, "nodes", len(c.Nodes()))
	return nil
}

// waitPeers waits until every node the table lists as recently alive has
// been heard and its snapshot applied, at most Heartbeat*Missed.
func (c *Cluster) waitPeers(ctx context.Context) {
	want, err := c.liveRows(ctx)
	if err != nil || len(want) == 0 {
		return
	}
	deadline := time.Now().Add(c.opts.Heartbeat * time.Duration(c.opts.Missed))
	for time.Now().Before(deadline) {
		c.mu.Lock()
		ok := true
		for _, n := range want {
			if p := c.peers[n]; p == nil || !p.synced {
				ok = false
			}
		}
		c.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *Cluster) go_(name string, f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				c.log.Error("goroutine panic", "goroutine", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			}
		}()
		f()
	}()
}

// Shutdown tells the other nodes this node is leaving (they drop its
// sessions at once), removes its row and stops NATS and the goroutines.
func (c *Cluster) Shutdown(ctx context.Context) error {
	if c.cancel == nil {
		return nil
	}
	c.cancel() // no heartbeat after the goodbye
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.pubMu.Lock()
	c.publish(c.subjPresence, &message{Kind: kindBye, Seq: c.seq})
	c.pubMu.Unlock()
	c.flushOut()
	if c.nc != nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		c.nc.FlushWithContext(fctx)
		cancel()
	}
	c.closeNATS()
	if derr := c.deleteNode(ctx); err == nil {
		err = derr
	}
	return err
}

// kill stops the node as a crash would: no goodbye, its row stays behind
// (tests use it to simulate a dead node).
func (c *Cluster) kill() {
	c.killed.Store(true)
	c.cancel()
	c.closeNATS()
	c.wg.Wait()
	c.out.discard()
}

// publish queues m for subject (stamped with this node's id) in the
// outbox, for the publisher goroutine; it never waits. A full outbox
// drops it (counted); a failure to publish is counted and logged.
func (c *Cluster) publish(subject string, m *message) bool {
	if c.nc == nil || c.killed.Load() {
		return false
	}
	m.From = c.id
	if !c.out.add(subject, m) {
		c.c.dropped.Add(1)
		return false
	}
	c.c.sent.Add(1)
	return true
}

// publisher hands the outbox to NATS whenever something is in it.
func (c *Cluster) publisher() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.out.wake:
			c.flushOut()
		}
	}
}

// flushOut publishes what the outbox holds.
func (c *Cluster) flushOut() {
	if c.nc == nil || c.killed.Load() {
		return
	}
	if n := c.out.drain(c.nc.Publish); n > 0 {
		c.c.dropped.Add(int64(n))
		c.log.Debug("publish failed", "messages", n)
	}
}

// change publishes one session change on the presence stream; the caller
// holds pubMu.
func (c *Cluster) change(m *message) {
	c.seq++
	m.Seq = c.seq
	c.publish(c.subjPresence, m)
}

// Register records a local session (at resource binding) and subscribes to
// its user's subject. A session of the same user and resource on another
// node is kicked there (RFC 6120 7.7.2.2: the new session wins).
func (c *Cluster) Register(s Session) {
	s.Node = c.id
	k := key{s.UserID, s.Resource}
	c.pubMu.Lock()
	c.mu.Lock()
	c.local[k] = s
	var conflict bool
	if r, ok := c.remote[s.UserID][s.Resource]; ok && r.Node != c.id {
		conflict = true
	}
	subscribe := c.subs[s.UserID] == nil && c.nc != nil
	c.mu.Unlock()
	if subscribe {
		c.subscribeUser(s.UserID)
	}
	c.change(&message{Kind: kindBound, UserID: s.UserID, Resource: s.Resource, Priority: s.Priority})
	c.pubMu.Unlock()
	if conflict {
		c.publish(c.subjUser(s.UserID), &message{Kind: kindKick, UserID: s.UserID, Resource: s.Resource, Body: "conflict"})
	}
}

func (c *Cluster) subscribeUser(userID int64) {
	sub, err := c.nc.ChanSubscribe(c.subjUser(userID), c.in)
	if err != nil {
		c.log.Warn("subscribe user", "user", userID, "err", err)
		return
	}
	c.mu.Lock()
	c.subs[userID] = sub
	c.mu.Unlock()
}

// SetPresence records a local session's presence and tells the other
// nodes; stanza is the serialized presence (for unavailable too).
func (c *Cluster) SetPresence(userID int64, resource string, priority int, available bool, stanza string) {
	k := key{userID, resource}
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	c.mu.Lock()
	s, ok := c.local[k]
	if ok {
		s.Priority, s.Available, s.Presence = priority, available, ""
		if available {
			s.Presence = stanza
		}
		c.local[k] = s
	}
	c.mu.Unlock()
	if ok {
		c.change(&message{Kind: kindPresence, UserID: userID, Resource: resource, Priority: priority, Available: available, Body: stanza})
	}
}

// Unregister forgets a local session (it ended); other nodes are told it
// is gone. The user's subject is left with the user's last local session.
func (c *Cluster) Unregister(userID int64, resource string) {
	k := key{userID, resource}
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	c.mu.Lock()
	_, ok := c.local[k]
	var sub *nats.Subscription
	if ok {
		delete(c.local, k)
		last := true
		for l := range c.local {
			if l.user == userID {
				last = false
				break
			}
		}
		if last {
			sub = c.subs[userID]
			delete(c.subs, userID)
		}
	}
	c.mu.Unlock()
	if !ok {
		return
	}
	if sub != nil {
		sub.Unsubscribe()
	}
	c.change(&message{Kind: kindPresence, UserID: userID, Resource: resource})
}

// Sessions returns the user's sessions on other nodes (a copy).
func (c *Cluster) Sessions(userID int64) []Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.remote[userID]
	if len(m) == 0 {
		return nil
	}
	out := make([]Session, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	return out
}

// SendUser publishes a stanza on userID's subject: every other node
// holding a session of the user gets it (resource "" = by bare-JID rules
// on each node; a resource: only the node holding it acts; EverySession:
// every session). It never blocks; false means it could not be published.
func (c *Cluster) SendUser(userID int64, resource, stanza string) bool {
	return c.SendSeq(userID, resource, 0, stanza)
}

// SendSeq is SendUser for an archived message whose delivery sequence to
// the user is seq: it crosses in the header, so the receiving node needs
// no database lookup to confirm the message or to see a gap before it.
func (c *Cluster) SendSeq(userID int64, resource string, seq int64, stanza string) bool {
	return c.publish(c.subjUser(userID), &message{Kind: kindStanza, Seq: uint64(max(seq, 0)), UserID: userID, Resource: resource, Body: stanza})
}

// WatchChat subscribes this node to chat chatID's subject (on) or
// unsubscribes it: a node watches a chat while it has occupants or
// followers of it, and gets what SendChat publishes for it.
func (c *Cluster) WatchChat(chatID int64, on bool) {
	c.mu.Lock()
	sub, watched := c.chats[chatID]
	switch {
	case on && !watched:
		c.chats[chatID] = nil
		if c.nc != nil {
			var err error
			if sub, err = c.nc.ChanSubscribe(c.subjChat(chatID), c.in); err != nil {
				c.log.Warn("subscribe chat", "chat", chatID, "err", err)
				delete(c.chats, chatID)
			} else {
				c.chats[chatID] = sub
			}
		}
		c.mu.Unlock()
	case !on && watched:
		delete(c.chats, chatID)
		c.mu.Unlock()
		if sub != nil {
			sub.Unsubscribe()
		}
	default:
		c.mu.Unlock()
	}
}

// SendChat publishes a stanza for the Handler.Broadcast of every other
// node watching chat chatID. It never blocks.
func (c *Cluster) SendChat(chatID int64, stanza string) bool {
	return c.publish(c.subjChat(chatID), &message{Kind: kindAll, Body: stanza})
}

// Broadcast publishes a stanza for every other node's Handler.Broadcast
// (only what concerns every node whatever its sessions: the rest goes on
// a chat's or a user's subject). It never blocks.
func (c *Cluster) Broadcast(stanza string) bool {
	return c.publish(c.subjAll, &message{Kind: kindAll, Body: stanza})
}

// NotifyUser publishes a stanza for the Handler.Broadcast of every other
// node holding a session of the user (a notice about the user for those
// nodes, not a stanza to deliver). It never blocks.
func (c *Cluster) NotifyUser(userID int64, stanza string) bool {
	return c.publish(c.subjUser(userID), &message{Kind: kindAll, UserID: userID, Body: stanza})
}

// Ask sends question q to every other live node and waits, at most timeout,
// until each has answered: the stanzas each node's Handler (an Answerer)
// returned have gone through this node's Handler.Broadcast when Ask
// returns, in order with what that node published before answering (so a
// node that subscribed to a chat, then asks, misses nothing of the
// chat). A node that dies meanwhile is not waited for. It returns the
// number of nodes that did not answer in time. It must not be called from
// the Handler (the answers come through the receiver goroutine).
func (c *Cluster) Ask(q string, timeout time.Duration) (missing int) {
	if c.nc == nil || c.killed.Load() || c.ctx == nil {
		return 0
	}
	w := &question{want: map[string]bool{}, done: make(chan struct{})}
	id := c.askSeq.Add(1)
	c.mu.Lock()
	for n := range c.peers {
		w.want[n] = true
	}
	nodes := make([]string, 0, len(w.want))
	for n := range w.want {
		nodes = append(nodes, n)
	}
	if len(nodes) > 0 {
		c.asks[id] = w
	}
	c.mu.Unlock()
	if len(nodes) == 0 {
		return 0
	}
	for _, n := range nodes {
		c.publish(c.subjNode(n), &message{Kind: kindAsk, Seq: id, Body: q})
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
	case <-c.ctx.Done():
	}
	c.mu.Lock()
	missing = len(w.want)
	delete(c.asks, id)
	c.mu.Unlock()
	return missing
}

// answeredLocked takes node off question id's list (c.mu held).
func (c *Cluster) answeredLocked(id uint64, node string) {
	q := c.asks[id]
	if q == nil || !q.want[node] {
		return
	}
	delete(q.want, node)
	if len(q.want) == 0 {
		delete(c.asks, id)
		close(q.done)
	}
}

// Kick asks the other nodes to close userID's sessions (resource "" =
// all of them).
func (c *Cluster) Kick(userID int64, resource, reason string) {
	c.publish(c.subjUser(userID), &message{Kind: kindKick, UserID: userID, Resource: resource, Body: reason})
}

// Users returns the ids of the users with a session on another node (from
// the mirror, which the presence streams and snapshots keep).
func (c *Cluster) Users() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int64, 0, len(c.remote))
	for u := range c.remote {
		out = append(out, u)
	}
	return out
}

// Nodes returns the ids of the other live nodes.
func (c *Cluster) Nodes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.peers))
	for n := range c.peers {
		out = append(out, n)
	}
	return out
}

// Stats returns the counters.
func (c *Cluster) Stats() Stats {
	c.mu.Lock()
	rs, nn := 0, len(c.peers)
	for _, m := range c.remote {
		rs += len(m)
	}
	c.mu.Unlock()
	var routes int64
	if c.ns != nil {
		routes = int64(c.ns.NumRoutes())
	}
	return Stats{
		Sent: c.c.sent.Load(), Received: c.c.received.Load(), Stream: c.c.stream.Load(),
		Dropped: c.c.dropped.Load(), Gaps: c.c.gaps.Load(),
		Snapshots: c.c.snapshots.Load(), NodesExpired: c.c.expired.Load(),
		Reconnects: c.c.reconnects.Load(), Routes: routes,
		RemoteSessions: int64(rs), Nodes: int64(nn),
	}
}
