package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// sqlNow is the database clock in unix microseconds: every node measures
// row ages by the same clock.
const sqlNow = `(extract(epoch from clock_timestamp()) * 1000000)::bigint`

// loadSecret returns the route credential kept in the database, made by
// the first node that asks.
func (c *Cluster) loadSecret(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var b [24]byte
	rand.Read(b[:])
	if _, err := c.db.ExecContext(ctx, `INSERT INTO cluster_secret (id, secret) VALUES (1, $1)
		ON CONFLICT (id) DO NOTHING`, hex.EncodeToString(b[:])); err != nil {
		return "", fmt.Errorf("cluster: route credential: %w", err)
	}
	var secret string
	if err := c.db.GetContext(ctx, &secret, `SELECT secret FROM cluster_secret WHERE id = 1`); err != nil {
		return "", fmt.Errorf("cluster: route credential: %w", err)
	}
	return secret, nil
}

func (c *Cluster) insertNode(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	if _, err := c.db.ExecContext(ctx, `INSERT INTO nodes (id, started_at, heartbeat_at, route)
		VALUES ($1, `+sqlNow+`, `+sqlNow+`, $2)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at, route = EXCLUDED.route`, c.id, c.route); err != nil {
		return fmt.Errorf("cluster: register node: %w", err)
	}
	return nil
}

// deleteNode removes the node's row.
func (c *Cluster) deleteNode(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), queryTimeout)
	defer cancel()
	if _, err := c.db.ExecContext(ctx, `DELETE FROM nodes WHERE id = $1`, c.id); err != nil {
		return fmt.Errorf("cluster: unregister node: %w", err)
	}
	return nil
}

// routeRows returns the route addresses of the other nodes whose row was
// refreshed recently.
func (c *Cluster) routeRows(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var routes []string
	if err := c.db.SelectContext(ctx, &routes, `SELECT route FROM nodes
		WHERE id <> $1 AND route <> '' AND heartbeat_at >= `+sqlNow+` - $2
		ORDER BY route`, c.id, staleRoute.Microseconds()); err != nil {
		return nil, fmt.Errorf("cluster: list nodes: %w", err)
	}
	return routes, nil
}

// liveRows returns the ids of the other nodes whose row was refreshed
// within two discovery periods.
func (c *Cluster) liveRows(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var ids []string
	if err := c.db.SelectContext(ctx, &ids, `SELECT id FROM nodes WHERE id <> $1 AND heartbeat_at >= `+sqlNow+` - $2`,
		c.id, (2 * c.opts.Discovery).Microseconds()); err != nil {
		return nil, fmt.Errorf("cluster: list nodes: %w", err)
	}
	return ids, nil
}

// discovery refreshes this node's row (so nodes that start later route to
// it) and deletes rows of nodes long gone. It is the only goroutine that
// waits on the database; liveness does not depend on
// it, so a database outage changes nothing for routing.
func (c *Cluster) discovery() {
	t := time.NewTicker(c.opts.Discovery)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if err := c.discover(c.ctx); err != nil && c.ctx.Err() == nil {
			c.log.Debug("discovery", "err", err)
		}
	}
}

func (c *Cluster) discover(ctx context.Context) error {
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	res, err := c.db.ExecContext(qctx, `UPDATE nodes SET heartbeat_at = `+sqlNow+`, route = $2 WHERE id = $1`, c.id, c.route)
	if err != nil {
		return fmt.Errorf("cluster: refresh node: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if err := c.insertNode(ctx); err != nil {
			return err
		}
	}
	if _, err := c.db.ExecContext(qctx, `DELETE FROM nodes WHERE heartbeat_at < `+sqlNow+` - $1`,
		(2 * staleRoute).Microseconds()); err != nil {
		return fmt.Errorf("cluster: prune nodes: %w", err)
	}
	return nil
}

// heartbeat says on the presence stream that this node is alive, and
// has the receiver expire the nodes that stopped saying so.
func (c *Cluster) heartbeat() {
	t := time.NewTicker(c.opts.Heartbeat / 2)
	defer t.Stop()
	last := time.Time{}
	for {
		if time.Since(last) >= c.opts.Heartbeat-c.opts.Heartbeat/4 {
			last = time.Now()
			c.pubMu.Lock()
			c.publish(c.subjPresence, &message{Kind: kindHeartbeat, Seq: c.seq})
			c.pubMu.Unlock()
		}
		c.task(c.expire)
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// task hands f to the receiver goroutine, waiting for room unless the
// node stops.
func (c *Cluster) task(f func()) {
	select {
	case c.tasks <- f:
	case <-c.ctx.Done():
	}
}
