package mam

import (
	"context"
	"fmt"
)

// MaxRecent bounds Recent.
const MaxRecent = 500

// Recent returns the newest message the viewer may read of each of their
// conversations, newest first, at most limit (MaxRecent when 0 or more):
// one per personal correspondence (messages of kind chat sent or
// received) and one per chat they are a member of now (the newest message
// of their current membership window). Chats whose current window holds
// no message yet are not listed; the caller has the member list for them.
func (s *Store) Recent(ctx context.Context, viewer int64, limit int) ([]Message, error) {
	if err := s.Settle(ctx); err != nil {
		return nil, err
	}
	if viewer == 0 {
		return nil, fmt.Errorf("%w: recent without a viewer", ErrInvalid)
	}
	if limit <= 0 || limit > MaxRecent {
		limit = MaxRecent
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	cond, args := readable(viewer)
	q := `SELECT ` + msgColumns + ` FROM messages m WHERE m.id IN (
		SELECT MAX(id) FROM messages WHERE chat_id IS NULL AND kind = 'chat' AND from_id = ? GROUP BY pair_lo, pair_hi
		UNION SELECT MAX(id) FROM messages WHERE chat_id IS NULL AND kind = 'chat' AND to_id = ? GROUP BY pair_lo, pair_hi
		UNION SELECT (SELECT MAX(x.id) FROM messages x WHERE x.chat_id = p.chat_id AND x.id >= p.from_id)
			FROM chat_periods p WHERE p.user_id = ? AND p.to_id IS NULL
	) AND ` + cond + ` ORDER BY m.id DESC`
	var rows []msgRow
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(q), append([]any{viewer, viewer, viewer}, args...)...); err != nil {
		return nil, fmt.Errorf("mam: recent of %d: %w", viewer, err)
	}
	// A correspondence appears once from each direction: keep the newest.
	seen := make(map[[2]int64]bool, len(rows))
	out := make([]Message, 0, min(len(rows), limit))
	for _, m := range messages(rows) {
		key := [2]int64{0, m.ChatID}
		if m.ChatID == 0 {
			key = [2]int64{min(m.FromID, m.ToID), max(m.FromID, m.ToID)}
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, m)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}
