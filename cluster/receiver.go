package cluster

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
)

// receiver is the one goroutine that takes messages from NATS (user
// subjects, the presence stream, broadcasts: one channel, in arrival
// order) and hands them to the local router. It alone changes the mirror
// of remote sessions and the peers' stream state; the heartbeat and
// snapshot requests reach it through tasks.
func (c *Cluster) receiver() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case f := <-c.tasks:
			f()
		case msg := <-c.in:
			if !records(msg.Data, c.handle) {
				c.log.Warn("malformed payload from another node", "subject", msg.Subject)
			}
		}
	}
}

// handle processes one message from another node.
func (c *Cluster) handle(data []byte) {
	m, err := decode(string(data))
	if err != nil {
		c.log.Warn("bad message from another node", "err", err)
		return
	}
	if m.From == c.id {
		return
	}
	c.c.received.Add(1)
	switch m.Kind {
	case kindStanza:
		if c.holds(m.UserID, m.Resource) {
			seq := int64(m.Seq)
			if seq > 0 && c.opts.DropRouted != nil && c.opts.DropRouted(m.UserID, seq) {
				c.c.dropped.Add(1)
				return
			}
			c.h.Stanza(m.UserID, m.Resource, seq, m.Body)
		}
	case kindKick:
		if c.holds(m.UserID, m.Resource) {
			c.h.Kick(m.UserID, m.Resource, m.Body)
		}
	case kindAll:
		c.h.Broadcast(m.Body)
	case kindAsk:
		if a, ok := c.h.(Answerer); ok {
			for _, ans := range a.Answer(m.Body) {
				c.publish(c.subjNode(m.From), &message{Kind: kindAll, Body: ans})
			}
		}
		c.publish(c.subjNode(m.From), &message{Kind: kindAnswered, Seq: m.Seq})
	case kindAnswered:
		c.mu.Lock()
		c.answeredLocked(m.Seq, m.From)
		c.mu.Unlock()
	case kindBound, kindPresence, kindHeartbeat, kindBye:
		c.c.stream.Add(1)
		c.stream(m)
	default:
		c.log.Warn("unknown message kind", "kind", string(m.Kind), "from", m.From)
	}
}

// holds reports whether a message for the user's resource is for this
// node: "" and EverySession are for every node subscribed to the user; a
// resource only for the node holding it.
func (c *Cluster) holds(userID int64, resource string) bool {
	if resource == "" || resource == EverySession {
		return true
	}
	c.mu.Lock()
	_, ok := c.local[key{userID, resource}]
	c.mu.Unlock()
	return ok
}

// stream applies one message of a node's presence stream. A node not
// known yet, or a gap in its sequence, asks for its snapshot; what comes
// meanwhile waits in the peer's buffer.
func (c *Cluster) stream(m *message) {
	if m.Kind == kindBye {
		c.dropNode(m.From)
		return
	}
	c.mu.Lock()
	p := c.peers[m.From]
	if p == nil {
		p = &peer{}
		c.peers[m.From] = p
		c.log.Info("node joined", "peer", m.From)
	}
	p.seen = time.Now()
	if !p.synced {
		c.bufferLocked(p, m)
		c.mu.Unlock()
		c.askSnapshot(m.From, p)
		return
	}
	c.mu.Unlock()
	c.apply(m.From, p, m)
}

// bufferLocked keeps m until the peer's snapshot comes (c.mu held).
func (c *Cluster) bufferLocked(p *peer, m *message) {
	if len(p.buf) >= maxBuffered {
		p.buf = nil
	}
	p.buf = append(p.buf, m)
}

// apply applies the next message of a synced peer's stream, or notices a
// gap (a lost message) and asks for a snapshot.
func (c *Cluster) apply(node string, p *peer, m *message) {
	gap := false
	c.mu.Lock()
	switch {
	case m.Kind == kindHeartbeat:
		gap = m.Seq != p.seq
	case m.Seq != p.seq+1:
		gap = true
	default:
		p.seq = m.Seq
	}
	if gap {
		p.synced = false
		c.bufferLocked(p, m)
	}
	c.mu.Unlock()
	if gap {
		c.c.gaps.Add(1)
		c.log.Info("gap in a node's session stream; asking its snapshot", "peer", node, "seq", m.Seq)
		c.askSnapshot(node, p)
		return
	}
	if m.Kind != kindHeartbeat {
		c.session(m)
	}
}

// session applies a bound or presence message to the mirror and tells the
// router.
func (c *Cluster) session(m *message) {
	s := Session{Node: m.From, UserID: m.UserID, Resource: m.Resource, Priority: m.Priority, Available: m.Available}
	if m.Available {
		s.Presence = m.Body
	}
	gone := m.Kind == kindPresence && !m.Available && m.Body == ""
	c.mu.Lock()
	if _, mine := c.local[key{m.UserID, m.Resource}]; mine {
		// The resource was bound here since (the old session on the
		// other node is being kicked): ours is the session.
		c.mu.Unlock()
		return
	}
	old, had := c.remote[m.UserID][m.Resource]
	if gone {
		if had && old.Node == m.From {
			c.forgetLocked(m.UserID, m.Resource)
		}
	} else {
		if c.remote[m.UserID] == nil {
			c.remote[m.UserID] = map[string]Session{}
		}
		c.remote[m.UserID][m.Resource] = s
	}
	c.mu.Unlock()
	switch {
	case m.Kind == kindBound:
	case gone:
		if had && old.Available && old.Node == m.From {
			c.h.Presence(s, "")
		}
	default:
		c.h.Presence(s, m.Body)
	}
}

func (c *Cluster) forgetLocked(userID int64, resource string) {
	delete(c.remote[userID], resource)
	if len(c.remote[userID]) == 0 {
		delete(c.remote, userID)
	}
}

// snapshot is a node's answer to a snapshot request: its sessions as of
// its session change Seq.
type snapshot struct {
	Seq      uint64    `json:"seq"`
	Sessions []Session `json:"sessions"`
}

// answerSnapshot replies to another node's request with this node's
// sessions (on the NATS client's goroutine for the snapshot subject).
func (c *Cluster) answerSnapshot(msg *nats.Msg) {
	c.pubMu.Lock()
	c.mu.Lock()
	snap := snapshot{Seq: c.seq, Sessions: make([]Session, 0, len(c.local))}
	for _, s := range c.local {
		snap.Sessions = append(snap.Sessions, s)
	}
	c.mu.Unlock()
	c.pubMu.Unlock()
	b, err := json.Marshal(snap)
	if err != nil {
		return
	}
	if err := msg.Respond(b); err != nil {
		c.log.Debug("answer snapshot", "err", err)
	}
}

// askSnapshot requests the node's snapshot on a goroutine of its own,
// unless a request is under way; the answer is applied on the receiver.
func (c *Cluster) askSnapshot(node string, p *peer) {
	c.mu.Lock()
	if p.asked {
		c.mu.Unlock()
		return
	}
	p.asked = true
	c.mu.Unlock()
	c.go_("snapshot", func() {
		var snap snapshot
		msg, err := c.nc.Request(c.subjSnap(node), nil, snapshotTimeout)
		if err == nil {
			err = json.Unmarshal(msg.Data, &snap)
		}
		c.task(func() { c.applySnapshot(node, p, &snap, err) })
	})
}

// applySnapshot replaces the node's part of the mirror with its snapshot,
// tells the router what changed, then applies the buffered stream after
// the snapshot's sequence number.
func (c *Cluster) applySnapshot(node string, p *peer, snap *snapshot, err error) {
	c.mu.Lock()
	p.asked = false
	if c.peers[node] != p || p.synced {
		c.mu.Unlock()
		return
	}
	if err != nil {
		// Asked again with the node's next heartbeat (or dropped with it).
		c.mu.Unlock()
		c.log.Info("session snapshot", "peer", node, "err", err)
		return
	}
	c.c.snapshots.Add(1)
	prev := map[key]Session{}
	for u, m := range c.remote {
		for r, s := range m {
			if s.Node == node {
				prev[key{u, r}] = s
				c.forgetLocked(u, r)
			}
		}
	}
	var appeared []Session
	for _, s := range snap.Sessions {
		s.Node = node
		k := key{s.UserID, s.Resource}
		if _, mine := c.local[k]; mine {
			continue
		}
		if c.remote[s.UserID] == nil {
			c.remote[s.UserID] = map[string]Session{}
		}
		c.remote[s.UserID][s.Resource] = s
		if o, ok := prev[k]; !ok || o.Available != s.Available || o.Presence != s.Presence {
			if s.Available {
				appeared = append(appeared, s)
			}
		}
		delete(prev, k)
	}
	var vanished []Session
	for _, s := range prev {
		if s.Available {
			vanished = append(vanished, s)
		}
	}
	p.seq, p.synced = snap.Seq, true
	buf := p.buf
	p.buf = nil
	c.mu.Unlock()
	for _, s := range vanished {
		s.Available, s.Presence = false, ""
		c.h.Presence(s, "")
	}
	for _, s := range appeared {
		c.h.Presence(s, s.Presence)
	}
	for i, m := range buf {
		if m.Seq <= snap.Seq && m.Kind != kindHeartbeat || m.Kind == kindHeartbeat && m.Seq < snap.Seq {
			continue
		}
		c.mu.Lock()
		synced := p.synced
		if !synced {
			for _, rest := range buf[i:] {
				c.bufferLocked(p, rest)
			}
		}
		c.mu.Unlock()
		if !synced {
			return
		}
		c.apply(node, p, m)
	}
}

// expire drops the nodes not heard for Heartbeat*Missed.
func (c *Cluster) expire() {
	limit := c.opts.Heartbeat * time.Duration(c.opts.Missed)
	var dead []string
	c.mu.Lock()
	for n, p := range c.peers {
		if time.Since(p.seen) > limit {
			dead = append(dead, n)
		}
	}
	c.mu.Unlock()
	for _, n := range dead {
		c.c.expired.Add(1)
		c.log.Warn("node silent; taken for dead", "peer", n, "silent_for", limit)
		c.dropNode(n)
	}
}

// dropNode forgets a node that left or died, and tells the router its
// available sessions are gone.
func (c *Cluster) dropNode(node string) {
	var gone []Session
	c.mu.Lock()
	if _, ok := c.peers[node]; ok {
		c.log.Info("node left", "peer", node)
	}
	delete(c.peers, node)
	for id := range c.asks {
		c.answeredLocked(id, node)
	}
	for u, m := range c.remote {
		for r, s := range m {
			if s.Node == node {
				delete(m, r)
				if s.Available {
					gone = append(gone, s)
				}
			}
		}
		if len(m) == 0 {
			delete(c.remote, u)
		}
	}
	c.mu.Unlock()
	for _, s := range gone {
		s.Available, s.Presence = false, ""
		c.h.Presence(s, "")
	}
}
