package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// sender is the one goroutine that writes to the other nodes: it takes
// batches from the bounded queue and sends each batch, with the pending
// registry rows, in one transaction. One sender per node keeps the order
// of messages for every recipient node.
func (c *Cluster) sender() {
	batch := make([]op, 0, MaxBatch)
	for {
		batch = batch[:0]
		stopping := false
		select {
		case <-c.ctx.Done():
			stopping = true
		case o := <-c.out:
			batch = append(batch, o)
		case <-c.dirty:
		}
	fill:
		for len(batch) < MaxBatch {
			select {
			case o := <-c.out:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		if stopping && c.killed.Load() {
			return
		}
		c.flush(batch)
		if stopping && len(c.out) == 0 {
			return
		}
	}
}

type row struct {
	k    key
	s    Session
	live bool
}

type note struct {
	to      string
	payload string
	msg     *message
}

// flush writes the pending registry rows and sends batch.
func (c *Cluster) flush(batch []op) {
	c.mu.Lock()
	rows := make([]row, 0, len(c.pending))
	for k, live := range c.pending {
		s, ok := c.local[k]
		rows = append(rows, row{k: k, s: s, live: live && ok})
	}
	clear(c.pending)
	c.mu.Unlock()
	if len(rows) == 0 && len(batch) == 0 {
		return
	}
	var err error
	for try := 0; try < sendRetries; try++ {
		if try > 0 {
			time.Sleep(time.Duration(try) * 100 * time.Millisecond)
		}
		var sent int
		if sent, err = c.send(rows, batch); err == nil {
			c.c.batches.Add(1)
			c.c.sent.Add(int64(sent))
			return
		}
	}
	c.c.sendErrors.Add(1)
	c.log.Error("send to other nodes", "messages", len(batch), "err", err)
	// The registry rows are written again with the next batch.
	c.mu.Lock()
	for _, r := range rows {
		if _, again := c.pending[r.k]; !again {
			_, ok := c.local[r.k]
			c.pending[r.k] = ok
		}
	}
	c.mu.Unlock()
	c.markDirty()
}

// notes gives every op its recipients (live lists every other node, for
// broadcasts) and sequence number, and encodes it.
func (c *Cluster) notes(batch []op, live []string) []note {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range live {
		c.nodes[n] = true
	}
	var notes []note
	for i := range batch {
		o := &batch[i]
		dests := []string{o.to}
		if o.to == "" {
			dests = live
		}
		for _, d := range dests {
			c.seqOut[d]++
			m := o.msg
			m.Seq = c.seqOut[d]
			m.From = c.id
			notes = append(notes, note{to: d, payload: m.encode(), msg: &m})
		}
	}
	return notes
}

// send runs one batch in one transaction and returns how many messages it
// notified. A batch with a broadcast reads the node list under a SHARE
// lock on nodes: a node that joins (INSERT, ROW EXCLUSIVE) waits for such
// batches to commit and then loads the registry, or is seen by them, so no
// broadcast misses it.
func (c *Cluster) send(rows []row, batch []op) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	tx, err := c.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("cluster: begin: %w", err)
	}
	defer tx.Rollback()
	var live []string
	for _, o := range batch {
		if o.to == "" {
			if _, err := tx.ExecContext(ctx, `LOCK TABLE nodes IN SHARE MODE`); err != nil {
				return 0, fmt.Errorf("cluster: lock nodes: %w", err)
			}
			if err := tx.SelectContext(ctx, &live, `SELECT id FROM nodes WHERE id <> $1`, c.id); err != nil {
				return 0, fmt.Errorf("cluster: list nodes: %w", err)
			}
			if live == nil {
				live = []string{}
			}
			break
		}
	}
	notes := c.notes(batch, live)
	for _, r := range rows {
		if r.live {
			_, err = tx.ExecContext(ctx, `INSERT INTO cluster_sessions
				(user_id, resource, node_id, priority, available, presence, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, `+sqlNow+`)
				ON CONFLICT (user_id, resource) DO UPDATE SET node_id = EXCLUDED.node_id,
				priority = EXCLUDED.priority, available = EXCLUDED.available,
				presence = EXCLUDED.presence, updated_at = EXCLUDED.updated_at`,
				r.k.user, r.k.res, c.id, r.s.Priority, r.s.Available, r.s.Presence)
		} else {
			_, err = tx.ExecContext(ctx, `DELETE FROM cluster_sessions
				WHERE user_id = $1 AND resource = $2 AND node_id = $3`, r.k.user, r.k.res, c.id)
		}
		if err != nil {
			return 0, fmt.Errorf("cluster: write session: %w", err)
		}
	}
	if len(notes) == 0 {
		return 0, tx.Commit()
	}
	chans := make([]string, len(notes))
	payloads := make([]string, len(notes))
	spooled := 0
	for i, n := range notes {
		chans[i] = channelOf(n.to)
		payloads[i] = n.payload
		if len(n.payload) > InlineMax {
			var id int64
			if err := tx.GetContext(ctx, &id, `INSERT INTO cluster_spool (node_id, created_at, payload)
				VALUES ($1, `+sqlNow+`, $2) RETURNING id`, n.to, n.payload); err != nil {
				return 0, fmt.Errorf("cluster: spool: %w", err)
			}
			ref := message{Kind: kindSpool, Seq: n.msg.Seq, From: c.id, UserID: id}
			payloads[i] = ref.encode()
			spooled++
		}
	}
	// unnest keeps the array order: the notifications are queued in it.
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify(ch, pl) FROM unnest($1::text[], $2::text[]) AS t(ch, pl)`,
		pq.Array(chans), pq.Array(payloads)); err != nil {
		return 0, fmt.Errorf("cluster: notify: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("cluster: commit: %w", err)
	}
	c.c.spooled.Add(int64(spooled))
	return len(notes), nil
}
