package cluster

import (
	"context"
	"fmt"
	"sort"

	"github.com/lib/pq"
)

// receiver is the one goroutine that takes notifications from the
// listener and hands them to the local router. It also owns changes to
// the mirror of remote sessions made from the registry (reloads, dropped
// nodes), which the heartbeat asks for through tasks.
func (c *Cluster) receiver() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case f := <-c.tasks:
			f()
		case n := <-c.ln.Notify:
			if n == nil {
				// The listener reconnected: notifications sent meanwhile
				// are lost, but spooled messages wait in the table.
				c.c.reconnects.Add(1)
				c.log.Info("listener reconnected")
				c.unspoolAll()
				if err := c.reload(c.ctx, true); err != nil && c.ctx.Err() == nil {
					c.log.Warn("reload registry", "err", err)
				}
				continue
			}
			c.handle(n.Extra)
		}
	}
}

func (c *Cluster) listenerEvent(ev pq.ListenerEventType, err error) {
	switch ev {
	case pq.ListenerEventDisconnected:
		c.log.Warn("listener disconnected", "err", err)
	case pq.ListenerEventConnectionAttemptFailed:
		c.log.Warn("listener connection attempt failed", "err", err)
	}
}

// handle processes one notification payload.
func (c *Cluster) handle(payload string) {
	m, err := decode(payload)
	if err != nil {
		c.log.Warn("bad notification", "err", err)
		return
	}
	if m.From == c.id {
		return
	}
	c.mu.Lock()
	if last := c.seqIn[m.From]; last != 0 && m.Seq != last+1 {
		c.c.gaps.Add(1)
	}
	c.seqIn[m.From] = m.Seq
	c.mu.Unlock()
	if m.Kind == kindSpool {
		m = c.unspool(m.UserID)
		if m == nil {
			return
		}
	}
	c.dispatch(m)
}

// unspool takes spool row id (nil when another path already took it).
func (c *Cluster) unspool(id int64) *message {
	ctx, cancel := context.WithTimeout(c.ctx, queryTimeout)
	defer cancel()
	var payload string
	err := c.db.GetContext(ctx, &payload, `DELETE FROM cluster_spool WHERE id = $1 AND node_id = $2 RETURNING payload`, id, c.id)
	if err != nil {
		if ctx.Err() == nil && !isNoRows(err) {
			c.log.Warn("read spool", "id", id, "err", err)
		}
		return nil
	}
	m, err := decode(payload)
	if err != nil {
		c.log.Warn("bad spooled message", "id", id, "err", err)
		return nil
	}
	c.c.unspooled.Add(1)
	return m
}

// unspoolAll delivers, in order, every spooled message waiting for this
// node (after a reconnect, when their notifications may have been lost).
func (c *Cluster) unspoolAll() {
	ctx, cancel := context.WithTimeout(c.ctx, queryTimeout)
	defer cancel()
	var rows []struct {
		ID      int64  `db:"id"`
		Payload string `db:"payload"`
	}
	if err := c.db.SelectContext(ctx, &rows, `DELETE FROM cluster_spool WHERE node_id = $1 RETURNING id, payload`, c.id); err != nil {
		if ctx.Err() == nil {
			c.log.Warn("read spool", "err", err)
		}
		return
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	for _, r := range rows {
		m, err := decode(r.Payload)
		if err != nil {
			c.log.Warn("bad spooled message", "id", r.ID, "err", err)
			continue
		}
		c.c.unspooled.Add(1)
		c.dispatch(m)
	}
}

func (c *Cluster) dispatch(m *message) {
	c.c.received.Add(1)
	switch m.Kind {
	case kindStanza:
		c.h.Stanza(m.UserID, m.Resource, m.Body)
	case kindBound, kindPresence:
		s := Session{Node: m.From, UserID: m.UserID, Resource: m.Resource, Priority: m.Priority, Available: m.Available}
		if m.Available {
			s.Presence = m.Body
		}
		gone := m.Kind == kindPresence && !m.Available && m.Body == ""
		c.mu.Lock()
		c.nodes[m.From] = true
		if _, mine := c.local[key{m.UserID, m.Resource}]; mine {
			// The resource was bound here since (the old session on
			// the other node is being kicked): ours is the session.
			c.mu.Unlock()
			return
		}
		old, had := c.remote[m.UserID][m.Resource]
		if gone {
			if had && old.Node == m.From {
				delete(c.remote[m.UserID], m.Resource)
				if len(c.remote[m.UserID]) == 0 {
					delete(c.remote, m.UserID)
				}
			}
		} else if !(m.Kind == kindBound && had && old.Node == m.From) {
			// A bind notice never overwrites what a reload already
			// read for the same session (it may be older).
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
	case kindKick:
		c.h.Kick(m.UserID, m.Resource, m.Body)
	case kindAll:
		c.h.Broadcast(m.Body)
	case kindHello:
		c.mu.Lock()
		c.nodes[m.From] = true
		c.mu.Unlock()
		if err := c.reload(c.ctx, true); err != nil && c.ctx.Err() == nil {
			c.log.Warn("reload registry", "err", err)
		}
	case kindBye:
		c.dropNode(m.From)
	default:
		c.log.Warn("unknown message kind", "kind", string(m.Kind), "from", m.From)
	}
}

// dropNode forgets a node that left or died, and tells the router its
// available sessions are gone.
func (c *Cluster) dropNode(node string) {
	var gone []Session
	c.mu.Lock()
	delete(c.nodes, node)
	delete(c.seqIn, node)
	delete(c.seqOut, node)
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

// reload replaces the mirror with the registry table; with emit, the
// router hears about sessions that appeared, changed or vanished.
func (c *Cluster) reload(ctx context.Context, emit bool) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var rows []struct {
		Node      string `db:"node_id"`
		UserID    int64  `db:"user_id"`
		Resource  string `db:"resource"`
		Priority  int    `db:"priority"`
		Available bool   `db:"available"`
		Presence  string `db:"presence"`
	}
	if err := c.db.SelectContext(ctx, &rows, `SELECT s.node_id, s.user_id, s.resource, s.priority, s.available, s.presence
		FROM cluster_sessions s JOIN nodes n ON n.id = s.node_id WHERE s.node_id <> $1`, c.id); err != nil {
		return fmt.Errorf("cluster: load sessions: %w", err)
	}
	next := make(map[int64]map[string]Session, len(rows))
	for _, r := range rows {
		m := next[r.UserID]
		if m == nil {
			m = map[string]Session{}
			next[r.UserID] = m
		}
		m[r.Resource] = Session{Node: r.Node, UserID: r.UserID, Resource: r.Resource, Priority: r.Priority, Available: r.Available, Presence: r.Presence}
	}
	c.mu.Lock()
	prev := c.remote
	c.remote = next
	c.mu.Unlock()
	if !emit {
		return nil
	}
	for u, m := range prev {
		for r, s := range m {
			n, ok := next[u][r]
			if s.Available && (!ok || !n.Available) {
				s.Available, s.Presence = false, ""
				if ok {
					s = n
				}
				c.h.Presence(s, "")
			}
		}
	}
	for u, m := range next {
		for r, s := range m {
			p, ok := prev[u][r]
			if s.Available && (!ok || !p.Available || p.Presence != s.Presence) {
				c.h.Presence(s, s.Presence)
			}
		}
	}
	return nil
}
