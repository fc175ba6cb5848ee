package roster

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Event kinds.
const (
	EventRosterAdd    = "roster_add"    // UserID's roster gained (or changed) ContactID
	EventRosterRemove = "roster_remove" // UserID's roster lost ContactID
	EventDeactivated  = "deactivated"   // UserID can no longer log in: close sessions
	EventPassword     = "password"      // UserID's password changed: close sessions
	EventLogout       = "logout"        // UserID was logged out everywhere: close sessions
	EventUserUpdated  = "user_updated"  // UserID's name or title changed
)

// EventRetention is how long events are kept; Import and Prune drop older ones.
const EventRetention = 24 * time.Hour

// Event is a change a running server reacts to.
type Event struct {
	ID        int64  `db:"id"`
	Kind      string `db:"kind"`
	UserID    int64  `db:"user_id"`
	ContactID int64  `db:"contact_id"` // 0 when the kind has no contact
}

// Events returns up to limit events with id > afterID, oldest first. It
// reads the primary key only, so polling it every few seconds is cheap.
func (s *Store) Events(ctx context.Context, afterID int64, limit int) ([]Event, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	var evs []Event
	if err := s.db.SelectContext(ctx, &evs, s.db.Rebind(
		`SELECT id, kind, user_id, COALESCE(contact_id, 0) AS contact_id FROM events WHERE id > ? ORDER BY id LIMIT ?`),
		afterID, limit); err != nil {
		return nil, fmt.Errorf("roster: events: %w", err)
	}
	return evs, nil
}

// LastEventID returns the id of the newest event, 0 when there is none; a
// server starting up polls Events from here.
func (s *Store) LastEventID(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var id int64
	if err := s.db.GetContext(ctx, &id, `SELECT COALESCE(MAX(id), 0) FROM events`); err != nil {
		return 0, fmt.Errorf("roster: last event: %w", err)
	}
	return id, nil
}

// Prune deletes events older than EventRetention and returns how many.
func (s *Store) Prune(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	n, err := prune(ctx, s.db)
	if err != nil {
		return 0, fmt.Errorf("roster: prune events: %w", err)
	}
	return n, nil
}

func prune(ctx context.Context, q sqlx.ExtContext) (int64, error) {
	res, err := q.ExecContext(ctx, q.Rebind(`DELETE FROM events WHERE created_at < ?`),
		time.Now().Add(-EventRetention).UnixMicro())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// insertEvents writes events in batches.
func insertEvents(ctx context.Context, tx sqlx.ExtContext, evs []Event) error {
	t := now()
	return batch(len(evs), 4, func(lo, hi int) error {
		var sb []byte
		args := make([]any, 0, (hi-lo)*4)
		sb = append(sb, "INSERT INTO events (kind, user_id, contact_id, created_at) VALUES "...)
		for i := lo; i < hi; i++ {
			if i > lo {
				sb = append(sb, ',')
			}
			sb = append(sb, "(?,?,?,?)"...)
			var c any
			if evs[i].ContactID != 0 {
				c = evs[i].ContactID
			}
			args = append(args, evs[i].Kind, evs[i].UserID, c, t)
		}
		_, err := tx.ExecContext(ctx, tx.Rebind(string(sb)), args...)
		return err
	})
}

// maxParams keeps multi-row statements under both SQLite's and
// PostgreSQL's limit on bound parameters.
const maxParams = 30000

// batch calls f over [lo,hi) slices of n items so that each call binds at
// most maxParams parameters (perRow per item).
func batch(n, perRow int, f func(lo, hi int) error) error {
	step := maxParams / perRow
	if step > 1000 {
		step = 1000
	}
	for lo := 0; lo < n; lo += step {
		hi := min(lo+step, n)
		if err := f(lo, hi); err != nil {
			return err
		}
	}
	return nil
}
