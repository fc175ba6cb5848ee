package cluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// sqlNow is the database clock in unix microseconds: every node measures
// heartbeats by the same clock.
const sqlNow = `(extract(epoch from clock_timestamp()) * 1000000)::bigint`

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

func (c *Cluster) insertNode(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	if _, err := c.db.ExecContext(ctx, `INSERT INTO nodes (id, started_at, heartbeat_at)
		VALUES ($1, `+sqlNow+`, `+sqlNow+`)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at`, c.id); err != nil {
		return fmt.Errorf("cluster: register node: %w", err)
	}
	return nil
}

// deleteNode removes the node and everything registered for it.
func (c *Cluster) deleteNode(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), queryTimeout)
	defer cancel()
	tx, err := c.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cluster: unregister node: %w", err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		`DELETE FROM cluster_sessions WHERE node_id = $1`,
		`DELETE FROM cluster_spool WHERE node_id = $1`,
		`DELETE FROM nodes WHERE id = $1`,
	} {
		if _, err := tx.ExecContext(ctx, q, c.id); err != nil {
			return fmt.Errorf("cluster: unregister node: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cluster: unregister node: %w", err)
	}
	return nil
}

// heartbeat proves the node alive, expires dead nodes, follows the node
// list and asks the receiver for periodic registry reloads.
func (c *Cluster) heartbeat() {
	t := time.NewTicker(c.opts.Heartbeat)
	defer t.Stop()
	lastReload := time.Now()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if err := c.beat(c.ctx); err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.log.Warn("heartbeat", "err", err)
			continue
		}
		if time.Since(lastReload) >= c.opts.Reload {
			lastReload = time.Now()
			c.task(func() {
				if err := c.reload(c.ctx, true); err != nil && c.ctx.Err() == nil {
					c.log.Warn("reload registry", "err", err)
				}
			})
		}
	}
}

// task hands f to the receiver goroutine; a full task queue drops it
// (the next heartbeat asks again).
func (c *Cluster) task(f func()) {
	select {
	case c.tasks <- f:
	default:
	}
}

func (c *Cluster) beat(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	res, err := c.db.ExecContext(ctx, `UPDATE nodes SET heartbeat_at = `+sqlNow+` WHERE id = $1`, c.id)
	if err != nil {
		return fmt.Errorf("cluster: heartbeat: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// Another node took this one for dead (a long pause): come back
		// and register every local session again.
		c.log.Warn("node was expired by another node; rejoining")
		if err := c.insertNode(ctx); err != nil {
			return err
		}
		c.mu.Lock()
		for k := range c.local {
			c.pending[k] = true
		}
		c.mu.Unlock()
		c.markDirty()
		c.enqueue(op{msg: message{Kind: kindHello}})
	}
	limit := int64(c.opts.Missed) * c.opts.Heartbeat.Microseconds()
	var expired []string
	if err := c.db.SelectContext(ctx, &expired, `DELETE FROM nodes WHERE heartbeat_at < `+sqlNow+` - $1 RETURNING id`, limit); err != nil {
		return fmt.Errorf("cluster: expire nodes: %w", err)
	}
	if len(expired) > 0 {
		c.c.expired.Add(int64(len(expired)))
		c.log.Warn("expired dead nodes", "nodes", expired)
		for _, q := range []string{
			`DELETE FROM cluster_sessions WHERE node_id NOT IN (SELECT id FROM nodes)`,
			`DELETE FROM cluster_spool WHERE node_id NOT IN (SELECT id FROM nodes)`,
		} {
			if _, err := c.db.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("cluster: expire nodes: %w", err)
			}
		}
	}
	return c.refreshNodes(ctx)
}

// refreshNodes follows the nodes table: new nodes join the broadcast list,
// vanished ones are dropped (their sessions leave the mirror).
func (c *Cluster) refreshNodes(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var ids []string
	if err := c.db.SelectContext(ctx, &ids, `SELECT id FROM nodes WHERE id <> $1`, c.id); err != nil {
		return fmt.Errorf("cluster: list nodes: %w", err)
	}
	live := make(map[string]bool, len(ids))
	for _, id := range ids {
		live[id] = true
	}
	var gone []string
	c.mu.Lock()
	for n := range c.nodes {
		if !live[n] {
			gone = append(gone, n)
		}
	}
	for n := range live {
		c.nodes[n] = true
	}
	c.mu.Unlock()
	for _, n := range gone {
		c.task(func() { c.dropNode(n) })
	}
	return nil
}
