package pubsub

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Store errors.
var (
	ErrNotFound = errors.New("pubsub: not found")
	ErrConflict = errors.New("pubsub: conflict")
)

const queryTimeout = 10 * time.Second

// Store keeps nodes, items, subscriptions and affiliations.
type Store struct{ db *sqlx.DB }

// NewStore returns a store over db.
func NewStore(db *sqlx.DB) *Store { return &Store{db: db} }

// Node is a pubsub node: Service is the bare JID of a PEP owner or the
// pubsub service's domain.
type Node struct {
	ID      int64
	Service string
	Name    string
	Config  Config
}

// Item is a published item; Payload is its child XML ("" for none).
type Item struct {
	ID        string `db:"item_id"`
	Publisher string `db:"publisher"`
	Payload   string `db:"payload"`
	Seq       int64  `db:"seq"`
}

type nodeRow struct {
	ID      int64  `db:"id"`
	Service string `db:"service"`
	Node    string `db:"node"`
	Config  string `db:"config"`
}

func (r *nodeRow) node() (*Node, error) {
	n := &Node{ID: r.ID, Service: r.Service, Name: r.Node, Config: DefaultConfig()}
	if err := json.Unmarshal([]byte(r.Config), &n.Config); err != nil {
		return nil, fmt.Errorf("pubsub: node %d config: %w", r.ID, err)
	}
	return n, nil
}

func (s *Store) withTx(ctx context.Context, f func(tx *sqlx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("pubsub: begin: %w", err)
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Node returns a node by service and name.
func (s *Store) Node(ctx context.Context, service, name string) (*Node, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var r nodeRow
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT id, service, node, config FROM pubsub_nodes WHERE service = ? AND node = ?`), service, name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("pubsub: node %q: %w", name, err)
	}
	return r.node()
}

// Nodes lists a service's nodes by name.
func (s *Store) Nodes(ctx context.Context, service string) ([]Node, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var rows []nodeRow
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT id, service, node, config FROM pubsub_nodes WHERE service = ? ORDER BY node`), service); err != nil {
		return nil, fmt.Errorf("pubsub: nodes: %w", err)
	}
	out := make([]Node, 0, len(rows))
	for i := range rows {
		n, err := rows[i].node()
		if err != nil {
			return nil, err
		}
		out = append(out, *n)
	}
	return out, nil
}

// ErrTooMany: the service has as many nodes as it may.
var ErrTooMany = errors.New("pubsub: too many nodes")

// Create makes a node with owner as its owner; ErrConflict if it exists,
// ErrTooMany if the service already has limit nodes (limit <= 0: no
// limit).
func (s *Store) Create(ctx context.Context, service, name string, cfg Config, owner string, limit int) (*Node, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("pubsub: create: %w", err)
	}
	n := &Node{Service: service, Name: name, Config: cfg}
	err = s.withTx(ctx, func(tx *sqlx.Tx) error {
		var exists int
		if err := tx.GetContext(ctx, &exists, tx.Rebind(`SELECT COUNT(*) FROM pubsub_nodes WHERE service = ? AND node = ?`), service, name); err != nil {
			return fmt.Errorf("pubsub: create: %w", err)
		}
		if exists > 0 {
			return ErrConflict
		}
		if limit > 0 {
			var count int
			if err := tx.GetContext(ctx, &count, tx.Rebind(`SELECT COUNT(*) FROM pubsub_nodes WHERE service = ?`), service); err != nil {
				return fmt.Errorf("pubsub: create: %w", err)
			}
			if count >= limit {
				return ErrTooMany
			}
		}
		if err := tx.GetContext(ctx, &n.ID, tx.Rebind(`INSERT INTO pubsub_nodes (service, node, config, created_at) VALUES (?, ?, ?, ?) RETURNING id`),
			service, name, string(raw), time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("pubsub: create: %w", err)
		}
		if owner != "" {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO pubsub_affiliations (node_id, jid, affiliation) VALUES (?, ?, 'owner')`), n.ID, owner); err != nil {
				return fmt.Errorf("pubsub: create: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		// A concurrent create of the same node loses on the unique key.
		if _, gerr := s.Node(ctx, service, name); gerr == nil && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrTooMany) {
			return nil, ErrConflict
		}
		return nil, err
	}
	return n, nil
}

// Configure replaces a node's configuration and trims its items to the
// new max_items.
func (s *Store) Configure(ctx context.Context, n *Node, cfg Config) error {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("pubsub: configure: %w", err)
	}
	return s.withTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE pubsub_nodes SET config = ? WHERE id = ?`), string(raw), n.ID)
		if err != nil {
			return fmt.Errorf("pubsub: configure: %w", err)
		}
		if c, _ := res.RowsAffected(); c == 0 {
			return ErrNotFound
		}
		n.Config = cfg
		_, err = trim(ctx, tx, n.ID, cfg.itemLimit())
		return err
	})
}

// Delete removes a node with its items, subscriptions and affiliations,
// returning the subscribers it had.
func (s *Store) Delete(ctx context.Context, n *Node) ([]string, error) {
	var subs []string
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.SelectContext(ctx, &subs, tx.Rebind(`SELECT jid FROM pubsub_subscriptions WHERE node_id = ? ORDER BY jid`), n.ID); err != nil {
			return fmt.Errorf("pubsub: delete: %w", err)
		}
		for _, t := range []string{"pubsub_items", "pubsub_subscriptions", "pubsub_affiliations"} {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM `+t+` WHERE node_id = ?`), n.ID); err != nil {
				return fmt.Errorf("pubsub: delete: %w", err)
			}
		}
		res, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM pubsub_nodes WHERE id = ?`), n.ID)
		if err != nil {
			return fmt.Errorf("pubsub: delete: %w", err)
		}
		if c, _ := res.RowsAffected(); c == 0 {
			return ErrNotFound
		}
		return nil
	})
	return subs, err
}

// Publish stores (or replaces) an item and trims the node to max_items,
// returning the ids of the items that were dropped.
func (s *Store) Publish(ctx context.Context, n *Node, it Item) ([]string, error) {
	var dropped []string
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		var seq int64
		if err := tx.GetContext(ctx, &seq, tx.Rebind(`SELECT COALESCE(MAX(seq), 0) + 1 FROM pubsub_items WHERE node_id = ?`), n.ID); err != nil {
			return fmt.Errorf("pubsub: publish: %w", err)
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM pubsub_items WHERE node_id = ? AND item_id = ?`), n.ID, it.ID); err != nil {
			return fmt.Errorf("pubsub: publish: %w", err)
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO pubsub_items (node_id, item_id, publisher, payload, seq, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
			n.ID, it.ID, it.Publisher, it.Payload, seq, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("pubsub: publish: %w", err)
		}
		var err error
		dropped, err = trim(ctx, tx, n.ID, n.Config.itemLimit())
		return err
	})
	return dropped, err
}

// trim keeps the newest limit items of a node (limit < 0: all).
func trim(ctx context.Context, tx *sqlx.Tx, nodeID int64, limit int) ([]string, error) {
	if limit < 0 {
		return nil, nil
	}
	var all []string
	if err := tx.SelectContext(ctx, &all, tx.Rebind(`SELECT item_id FROM pubsub_items WHERE node_id = ? ORDER BY seq DESC`), nodeID); err != nil {
		return nil, fmt.Errorf("pubsub: trim: %w", err)
	}
	if len(all) <= limit {
		return nil, nil
	}
	old := all[limit:]
	for _, id := range old {
		if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM pubsub_items WHERE node_id = ? AND item_id = ?`), nodeID, id); err != nil {
			return nil, fmt.Errorf("pubsub: trim: %w", err)
		}
	}
	return old, nil
}

// Retract deletes an item; ErrNotFound if there is none.
func (s *Store) Retract(ctx context.Context, n *Node, itemID string) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM pubsub_items WHERE node_id = ? AND item_id = ?`), n.ID, itemID)
	if err != nil {
		return fmt.Errorf("pubsub: retract: %w", err)
	}
	if c, _ := res.RowsAffected(); c == 0 {
		return ErrNotFound
	}
	return nil
}

// Purge deletes every item of a node.
func (s *Store) Purge(ctx context.Context, n *Node) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM pubsub_items WHERE node_id = ?`), n.ID); err != nil {
		return fmt.Errorf("pubsub: purge: %w", err)
	}
	return nil
}

// Items returns a node's items, newest first: the given ids, or the
// newest max (max <= 0: all).
func (s *Store) Items(ctx context.Context, n *Node, ids []string, max int) ([]Item, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var out []Item
	q := `SELECT item_id, publisher, payload, seq FROM pubsub_items WHERE node_id = ?`
	args := []any{n.ID}
	if len(ids) > 0 {
		in, inArgs, err := sqlx.In(` AND item_id IN (?)`, ids)
		if err != nil {
			return nil, fmt.Errorf("pubsub: items: %w", err)
		}
		q += in
		args = append(args, inArgs...)
	}
	q += ` ORDER BY seq DESC`
	if max > 0 {
		q += fmt.Sprintf(` LIMIT %d`, max)
	}
	if err := s.db.SelectContext(ctx, &out, s.db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("pubsub: items: %w", err)
	}
	return out, nil
}

// Subscribe records a subscription (idempotent) and returns its subid.
func (s *Store) Subscribe(ctx context.Context, n *Node, jid, subid string) (string, error) {
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		var cur []string
		if err := tx.SelectContext(ctx, &cur, tx.Rebind(`SELECT subid FROM pubsub_subscriptions WHERE node_id = ? AND jid = ?`), n.ID, jid); err != nil {
			return fmt.Errorf("pubsub: subscribe: %w", err)
		}
		if len(cur) > 0 {
			subid = cur[0]
			return nil
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO pubsub_subscriptions (node_id, jid, subid) VALUES (?, ?, ?)`), n.ID, jid, subid); err != nil {
			return fmt.Errorf("pubsub: subscribe: %w", err)
		}
		return nil
	})
	return subid, err
}

// Unsubscribe removes a subscription; ErrNotFound if there was none.
func (s *Store) Unsubscribe(ctx context.Context, n *Node, jid string) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM pubsub_subscriptions WHERE node_id = ? AND jid = ?`), n.ID, jid)
	if err != nil {
		return fmt.Errorf("pubsub: unsubscribe: %w", err)
	}
	if c, _ := res.RowsAffected(); c == 0 {
		return ErrNotFound
	}
	return nil
}

// Subscription is one subscriber of a node.
type Subscription struct {
	Node  string `db:"node"`
	JID   string `db:"jid"`
	SubID string `db:"subid"`
}

// Subscribers lists a node's subscriptions.
func (s *Store) Subscribers(ctx context.Context, n *Node) ([]Subscription, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var out []Subscription
	if err := s.db.SelectContext(ctx, &out, s.db.Rebind(`SELECT ? AS node, jid, subid FROM pubsub_subscriptions WHERE node_id = ? ORDER BY jid`), n.Name, n.ID); err != nil {
		return nil, fmt.Errorf("pubsub: subscribers: %w", err)
	}
	return out, nil
}

// SubscriptionsOf lists a JID's subscriptions (bare or full JIDs starting
// with bare) on a service.
func (s *Store) SubscriptionsOf(ctx context.Context, service, bare string) ([]Subscription, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var out []Subscription
	err := s.db.SelectContext(ctx, &out, s.db.Rebind(`SELECT n.node, s.jid, s.subid FROM pubsub_subscriptions s JOIN pubsub_nodes n ON n.id = s.node_id
		WHERE n.service = ? AND (s.jid = ? OR s.jid LIKE ?) ORDER BY n.node, s.jid`), service, bare, bare+"/%")
	if err != nil {
		return nil, fmt.Errorf("pubsub: subscriptions: %w", err)
	}
	return out, nil
}

// Affiliation of a JID with a node.
type Affiliation struct {
	JID         string `db:"jid"`
	Affiliation string `db:"affiliation"`
}

// Affiliations lists a node's affiliations.
func (s *Store) Affiliations(ctx context.Context, n *Node) ([]Affiliation, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var out []Affiliation
	if err := s.db.SelectContext(ctx, &out, s.db.Rebind(`SELECT jid, affiliation FROM pubsub_affiliations WHERE node_id = ? ORDER BY jid`), n.ID); err != nil {
		return nil, fmt.Errorf("pubsub: affiliations: %w", err)
	}
	return out, nil
}

// AffiliationOf returns bare's affiliation with the node ("none").
func (s *Store) AffiliationOf(ctx context.Context, n *Node, bare string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var a []string
	if err := s.db.SelectContext(ctx, &a, s.db.Rebind(`SELECT affiliation FROM pubsub_affiliations WHERE node_id = ? AND jid = ?`), n.ID, bare); err != nil {
		return "", fmt.Errorf("pubsub: affiliation: %w", err)
	}
	if len(a) == 0 {
		return "none", nil
	}
	return a[0], nil
}

// SetAffiliation sets (or, with "none", removes) an affiliation.
func (s *Store) SetAffiliation(ctx context.Context, n *Node, bare, aff string) error {
	return s.withTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM pubsub_affiliations WHERE node_id = ? AND jid = ?`), n.ID, bare); err != nil {
			return fmt.Errorf("pubsub: affiliation: %w", err)
		}
		if aff == "none" {
			return nil
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO pubsub_affiliations (node_id, jid, affiliation) VALUES (?, ?, ?)`), n.ID, bare, aff); err != nil {
			return fmt.Errorf("pubsub: affiliation: %w", err)
		}
		return nil
	})
}
