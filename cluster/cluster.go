// Package cluster lets several vestnik nodes that share one PostgreSQL
// database serve one company as one server. Each process is a node with a
// random id, registered with a heartbeat in the nodes table; the sessions
// it holds are registered in cluster_sessions, mirrored in memory by every
// other node, so a router can apply RFC 6121 rules across nodes. Stanzas
// for a session on another node travel over PostgreSQL LISTEN/NOTIFY, one
// channel per node; payloads too large for a notification go through the
// cluster_spool table and the notification carries the row id.
//
// The package knows nothing of XML: stanzas cross as serialized bytes, and
// the local router is reached through the small Handler interface.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Defaults and limits.
const (
	DefaultHeartbeat = 2 * time.Second  // how often a node proves it is alive
	DefaultMissed    = 3                // missed heartbeats before a node is expired
	DefaultReload    = 30 * time.Second // registry re-read from the table (anti-entropy)
	DefaultQueueLen  = 8192             // outgoing messages waiting for the sender
	// InlineMax is the largest NOTIFY payload sent inline; PostgreSQL's
	// limit is 8000 bytes. Larger messages go through cluster_spool.
	InlineMax = 7000
	// MaxBatch is how many outgoing messages share one transaction.
	MaxBatch = 256
	// queryTimeout bounds every statement the cluster runs.
	queryTimeout = 10 * time.Second
	// sendRetries is how often a failed batch is tried again.
	sendRetries = 3
)

// ErrUnsupported is returned by New for a database that is not PostgreSQL.
var ErrUnsupported = errors.New("cluster: needs PostgreSQL (LISTEN/NOTIFY)")

// Options tune a node; zero values are the documented defaults.
type Options struct {
	NodeID    string        // default: 16 random hex digits; [a-z0-9_]{1,40}
	Heartbeat time.Duration // default DefaultHeartbeat
	Missed    int           // default DefaultMissed
	Reload    time.Duration // default DefaultReload
	QueueLen  int           // default DefaultQueueLen
	// ReconnectMin and ReconnectMax bound the listener's reconnect delay
	// (defaults 100ms and 10s).
	ReconnectMin, ReconnectMax time.Duration
	Logger                     *slog.Logger
}

// Session is one XMPP session as the registry knows it.
type Session struct {
	Node      string
	UserID    int64
	Resource  string
	Priority  int
	Available bool
	Presence  string // the session's last available presence stanza; "" when unavailable
}

// EverySession as a resource in Send or Handler.Stanza means every
// session of the user, whatever its presence (a NUL cannot be part of a
// JID resource).
const EverySession = "\x00every"

// Handler is what the cluster needs from the local router. Its methods are
// called from the cluster's receiver goroutine and must not block.
type Handler interface {
	// Stanza delivers a stanza routed here by another node to the local
	// sessions of userID: resource "" means by RFC 6121 bare-JID rules.
	Stanza(userID int64, resource string, stanza string)
	// Presence tells that a session on another node changed presence;
	// s.Available false means unavailable or gone (stanza may be "").
	Presence(s Session, stanza string)
	// Kick closes the local session (resource "" = every session of the
	// user), e.g. a resource conflict with a session on another node.
	Kick(userID int64, resource string, reason string)
	// Broadcast hands over a stanza another node sent to every node (a
	// MUC room's message, for the occupants joined here).
	Broadcast(stanza string)
}

// Stats are counters since start (plain atomic integers).
type Stats struct {
	Sent, Received        int64 // messages notified / taken from notifications
	Spooled, Unspooled    int64 // large messages written to / read from the spool
	Dropped               int64 // outgoing messages lost to a full queue
	SendErrors            int64 // batches that failed after retries
	Batches               int64 // sender transactions
	Reconnects            int64 // listener reconnections
	Gaps                  int64 // sequence gaps seen (lost or reordered messages)
	NodesExpired          int64 // dead nodes this node removed
	RemoteSessions, Nodes int64 // current sizes of the mirror and the node list
}

type counters struct {
	sent, received, spooled, unspooled, dropped, sendErrors, batches,
	reconnects, gaps, expired atomic.Int64
}

type key struct {
	user int64
	res  string
}

// op is one outgoing message; to "" means every other live node.
type op struct {
	to  string
	msg message
}

// Cluster is this process's node.
type Cluster struct {
	db    *sqlx.DB
	dbURL string
	h     Handler
	opts  Options
	id    string
	log   *slog.Logger
	c     counters

	out   chan op
	dirty chan struct{} // signal: registry rows to write
	tasks chan func()   // work for the receiver goroutine (mirror changes)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ln     *pq.Listener
	killed atomic.Bool

	mu      sync.Mutex // guards the maps below; never held across I/O
	local   map[key]Session
	pending map[key]bool // local registry rows to write (true) or delete (false)
	remote  map[int64]map[string]Session
	nodes   map[string]bool // other live nodes
	seqOut  map[string]uint64
	seqIn   map[string]uint64
}

// New makes a node over db (which must be PostgreSQL); dbURL is the same
// database's URL, for the listener's own connection. Start makes it live.
func New(db *sqlx.DB, dbURL string, opts Options) (*Cluster, error) {
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
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.Missed <= 0 {
		opts.Missed = DefaultMissed
	}
	if opts.Reload <= 0 {
		opts.Reload = DefaultReload
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = DefaultQueueLen
	}
	if opts.ReconnectMin <= 0 {
		opts.ReconnectMin = 100 * time.Millisecond
	}
	if opts.ReconnectMax <= 0 {
		opts.ReconnectMax = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return nil, fmt.Errorf("cluster: database url: %w", err)
	}
	q := u.Query()
	q.Set("application_name", "vestnik-cluster-"+opts.NodeID)
	u.RawQuery = q.Encode()
	return &Cluster{
		db: db, dbURL: u.String(), opts: opts, id: opts.NodeID,
		log:     opts.Logger.With("component", "cluster", "node", opts.NodeID),
		out:     make(chan op, opts.QueueLen),
		dirty:   make(chan struct{}, 1),
		tasks:   make(chan func(), 64),
		local:   map[key]Session{},
		pending: map[key]bool{},
		remote:  map[int64]map[string]Session{},
		nodes:   map[string]bool{},
		seqOut:  map[string]uint64{},
		seqIn:   map[string]uint64{},
	}, nil
}

// NodeID returns this node's id.
func (c *Cluster) NodeID() string { return c.id }

// Start registers the node, listens on its channel, loads the registry of
// the other nodes and starts the sender, receiver and heartbeat goroutines;
// h receives what the other nodes send. Register and the other calls may
// come before Start: they wait in the queue.
func (c *Cluster) Start(ctx context.Context, h Handler) error {
	c.h = h
	// Listen first, then appear in nodes: whoever sees this node can
	// reach it.
	c.ln = pq.NewListener(c.dbURL, c.opts.ReconnectMin, c.opts.ReconnectMax, c.listenerEvent)
	lctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- c.ln.Listen(channelOf(c.id)) }()
	select {
	case err := <-errc:
		if err != nil {
			c.ln.Close()
			return fmt.Errorf("cluster: listen: %w", err)
		}
	case <-lctx.Done():
		c.ln.Close()
		return fmt.Errorf("cluster: listen: %w", lctx.Err())
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	fail := func(err error) error {
		c.cancel()
		c.ln.Close()
		c.deleteNode(context.Background())
		return err
	}
	if err := c.insertNode(ctx); err != nil {
		return fail(err)
	}
	if err := c.refreshNodes(ctx); err != nil {
		return fail(err)
	}
	if err := c.reload(ctx, false); err != nil {
		return fail(err)
	}
	c.enqueue(op{msg: message{Kind: kindHello}})
	c.go_("sender", c.sender)
	c.go_("receiver", c.receiver)
	c.go_("heartbeat", c.heartbeat)
	c.log.Info("cluster node started")
	return nil
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

// Shutdown sends what is queued, tells the other nodes this node is
// leaving, removes its rows and stops the goroutines.
func (c *Cluster) Shutdown(ctx context.Context) error {
	if c.cancel == nil {
		return nil
	}
	c.enqueue(op{msg: message{Kind: kindBye}})
	c.cancel() // the sender drains the queue before it returns
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.ln.Close()
	if derr := c.deleteNode(ctx); err == nil {
		err = derr
	}
	return err
}

// kill stops the node as a crash would: no goodbye, rows stay behind
// (tests use it to simulate a dead node).
func (c *Cluster) kill() {
	c.killed.Store(true)
	c.cancel()
	c.wg.Wait()
	c.ln.Close()
}

// Register records a local session (at resource binding). A session of
// the same user and resource on another node is kicked there (RFC 6120
// 7.7.2.2: the new session wins).
func (c *Cluster) Register(s Session) {
	s.Node = c.id
	k := key{s.UserID, s.Resource}
	c.mu.Lock()
	c.local[k] = s
	c.pending[k] = true
	var conflict string
	if r, ok := c.remote[s.UserID][s.Resource]; ok {
		conflict = r.Node
	}
	c.mu.Unlock()
	c.markDirty()
	c.enqueue(op{msg: message{Kind: kindBound, UserID: s.UserID, Resource: s.Resource, Priority: s.Priority}})
	if conflict != "" {
		c.enqueue(op{to: conflict, msg: message{Kind: kindKick, UserID: s.UserID, Resource: s.Resource, Body: "conflict"}})
	}
}

// SetPresence records a local session's presence and broadcasts it to the
// other nodes; stanza is the serialized presence (for unavailable too).
func (c *Cluster) SetPresence(userID int64, resource string, priority int, available bool, stanza string) {
	k := key{userID, resource}
	c.mu.Lock()
	s, ok := c.local[k]
	if ok {
		s.Priority, s.Available, s.Presence = priority, available, ""
		if available {
			s.Presence = stanza
		}
		c.local[k] = s
		c.pending[k] = true
	}
	c.mu.Unlock()
	if !ok {
		return
	}
	c.markDirty()
	c.enqueue(op{msg: message{Kind: kindPresence, UserID: userID, Resource: resource, Priority: priority, Available: available, Body: stanza}})
}

// Unregister forgets a local session (it ended); other nodes are told it
// is gone.
func (c *Cluster) Unregister(userID int64, resource string) {
	k := key{userID, resource}
	c.mu.Lock()
	_, ok := c.local[k]
	if ok {
		delete(c.local, k)
		c.pending[k] = false
	}
	c.mu.Unlock()
	if !ok {
		return
	}
	c.markDirty()
	c.enqueue(op{msg: message{Kind: kindPresence, UserID: userID, Resource: resource}})
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

// Send queues a stanza for userID's sessions on node (resource "" = by
// bare-JID rules there). It never blocks: false means the queue is full
// and the stanza was dropped.
func (c *Cluster) Send(node string, userID int64, resource, stanza string) bool {
	return c.enqueue(op{to: node, msg: message{Kind: kindStanza, UserID: userID, Resource: resource, Body: stanza}})
}

// SendUser queues a stanza for userID on every other node where the user
// has a session (resource "" = by bare-JID rules on each node; a resource
// goes to the node holding it). It returns how many nodes it was sent to.
func (c *Cluster) SendUser(userID int64, resource, stanza string) int {
	c.mu.Lock()
	var targets []string
	if resource != "" {
		if s, ok := c.remote[userID][resource]; ok {
			targets = append(targets, s.Node)
		}
	} else {
		seen := map[string]bool{}
		for _, s := range c.remote[userID] {
			if !seen[s.Node] {
				seen[s.Node] = true
				targets = append(targets, s.Node)
			}
		}
	}
	c.mu.Unlock()
	n := 0
	for _, node := range targets {
		if c.Send(node, userID, resource, stanza) {
			n++
		}
	}
	return n
}

// Broadcast queues a stanza for every other node's Handler.Broadcast. It
// never blocks: false means the queue is full.
func (c *Cluster) Broadcast(stanza string) bool {
	return c.enqueue(op{msg: message{Kind: kindAll, Body: stanza}})
}

// Kick asks every other node to close userID's sessions (resource "" =
// all of them).
func (c *Cluster) Kick(userID int64, resource, reason string) {
	c.enqueue(op{msg: message{Kind: kindKick, UserID: userID, Resource: resource, Body: reason}})
}

// Nodes returns the ids of the other live nodes.
func (c *Cluster) Nodes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.nodes))
	for n := range c.nodes {
		out = append(out, n)
	}
	return out
}

// Stats returns the counters.
func (c *Cluster) Stats() Stats {
	c.mu.Lock()
	rs, nn := 0, len(c.nodes)
	for _, m := range c.remote {
		rs += len(m)
	}
	c.mu.Unlock()
	return Stats{
		Sent: c.c.sent.Load(), Received: c.c.received.Load(),
		Spooled: c.c.spooled.Load(), Unspooled: c.c.unspooled.Load(),
		Dropped: c.c.dropped.Load(), SendErrors: c.c.sendErrors.Load(),
		Batches: c.c.batches.Load(), Reconnects: c.c.reconnects.Load(),
		Gaps: c.c.gaps.Load(), NodesExpired: c.c.expired.Load(),
		RemoteSessions: int64(rs), Nodes: int64(nn),
	}
}

func (c *Cluster) enqueue(o op) bool {
	select {
	case c.out <- o:
		return true
	default:
		c.c.dropped.Add(1)
		return false
	}
}

func (c *Cluster) markDirty() {
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}
