package mam

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The access rule, in one place. A viewer may read:
//   - a message outside any chat (personal, headline) they sent or received;
//   - a chat message (groupchat or system) when its id lies inside one of the
//     viewer's membership windows of that chat: chat_periods with
//     from_id <= id AND (to_id IS NULL OR id <= to_id). hide_history and
//     leaving/rejoining are expressed by those windows (owner: muc).
//
// readableSQL is that rule over the messages row aliased m. Every query on
// behalf of a user (Query, Search, GetFor, CanRead, and through them MAM,
// the bridge and REST) includes it; nothing else decides access.
//
// It is written as a CASE so that planners treat it as a filter on the rows
// the scope's index found, never as an index condition of its own.
const readableSQL = `(CASE WHEN m.chat_id IS NULL THEN (m.from_id = ? OR m.to_id = ?)
	ELSE EXISTS (SELECT 1 FROM chat_periods p
		WHERE p.chat_id = m.chat_id AND p.user_id = ? AND p.from_id <= m.id
		  AND (p.to_id IS NULL OR m.id <= p.to_id)) END)`

// readable returns the access rule for viewer: an SQL condition and its
// arguments.
func readable(viewer int64) (string, []any) {
	return readableSQL, []any{viewer, viewer, viewer}
}

// Readable is the access rule for viewer as an SQL condition over the
// messages row aliased m, with its arguments, for code outside this
// package that selects messages on a user's behalf (the bridge's list of
// conversations), so that the rule is still written only here.
func Readable(viewer int64) (string, []any) { return readable(viewer) }

// GetFor returns message id if viewer may read it, and ErrNotFound
// otherwise (a message one may not read does not exist for them).
func (s *Store) GetFor(ctx context.Context, viewer, id int64) (*Message, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	if err := s.Settle(ctx); err != nil {
		return nil, fmt.Errorf("mam: get %d for %d: %w", id, viewer, err)
	}
	cond, args := readable(viewer)
	var r msgRow
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT `+msgColumns+` FROM messages m WHERE m.id = ? AND `+cond),
		append([]any{id}, args...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mam: get %d for %d: %w", id, viewer, err)
	}
	m := r.message()
	return &m, nil
}

// CanRead reports whether viewer may read message id.
func (s *Store) CanRead(ctx context.Context, viewer, id int64) (bool, error) {
	_, err := s.GetFor(ctx, viewer, id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// CarriesReadable reports whether viewer may read some message that
// carries file fileID (message_files): the access rule for downloading a
// stored file on someone's behalf (package upload adds the uploader).
func (s *Store) CarriesReadable(ctx context.Context, viewer, fileID int64) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	if err := s.Settle(ctx); err != nil {
		return false, err
	}
	cond, args := readable(viewer)
	var n int
	err := s.db.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM (SELECT 1 FROM message_files f
		JOIN messages m ON m.id = f.message_id
		WHERE f.file_id = ? AND NOT m.deleted AND `+cond+` LIMIT 1) t`), append([]any{fileID}, args...)...)
	if err != nil {
		return false, fmt.Errorf("mam: file %d readable by %d: %w", fileID, viewer, err)
	}
	return n > 0, nil
}
