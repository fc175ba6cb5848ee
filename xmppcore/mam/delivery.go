package mam

import (
	"context"
	"fmt"
)

// Offline delivery (XEP-0160) is a query over the archive: the personal
// messages to a user above the user's delivery mark.

// MaxUndelivered bounds one Undelivered call.
const MaxUndelivered = 1000

// Undelivered returns personal messages to userID with an id above the
// user's delivery mark, oldest first, at most limit (MaxUndelivered when
// limit <= 0 or larger). Retracted messages are left out.
func (s *Store) Undelivered(ctx context.Context, userID int64, limit int) ([]Message, error) {
	if limit <= 0 || limit > MaxUndelivered {
		limit = MaxUndelivered
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	var rows []msgRow
	err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT `+msgColumns+` FROM messages m
		WHERE m.to_id = ? AND m.kind = 'chat' AND NOT m.deleted
		  AND m.id > COALESCE((SELECT d.last_id FROM deliveries d WHERE d.user_id = ?), 0)
		ORDER BY m.id LIMIT ?`), userID, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("mam: undelivered for %d: %w", userID, err)
	}
	return messages(rows), nil
}

// MarkDelivered records that userID has received every personal message up
// to upToID. The mark never goes down.
func (s *Store) MarkDelivered(ctx context.Context, userID, upToID int64) error {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO deliveries (user_id, last_id) VALUES (?, ?)
		ON CONFLICT (user_id) DO UPDATE SET last_id =
			CASE WHEN excluded.last_id > deliveries.last_id THEN excluded.last_id ELSE deliveries.last_id END`),
		userID, upToID)
	if err != nil {
		return fmt.Errorf("mam: mark delivered for %d: %w", userID, err)
	}
	return nil
}

// MarkDeliveredMany raises the marks of many users (user id → archive id)
// in one transaction: the periodic write of every online user's mark is one
// commit, not one per user.
func (s *Store) MarkDeliveredMany(ctx context.Context, marks map[int64]int64) error {
	if len(marks) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("mam: mark delivered: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PreparexContext(ctx, tx.Rebind(`INSERT INTO deliveries (user_id, last_id) VALUES (?, ?)
		ON CONFLICT (user_id) DO UPDATE SET last_id =
			CASE WHEN excluded.last_id > deliveries.last_id THEN excluded.last_id ELSE deliveries.last_id END`))
	if err != nil {
		return fmt.Errorf("mam: mark delivered: %w", err)
	}
	defer st.Close()
	for user, id := range marks {
		if _, err := st.ExecContext(ctx, user, id); err != nil {
			return fmt.Errorf("mam: mark delivered for %d: %w", user, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("mam: mark delivered: %w", err)
	}
	return nil
}

// DeliveryMark returns the user's delivery mark (0 when none).
func (s *Store) DeliveryMark(ctx context.Context, userID int64) (int64, error) {
	var ids []int64
	err := s.db.SelectContext(ctx, &ids, s.db.Rebind(`SELECT last_id FROM deliveries WHERE user_id = ?`), userID)
	if err != nil {
		return 0, fmt.Errorf("mam: delivery mark for %d: %w", userID, err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	return ids[0], nil
}
