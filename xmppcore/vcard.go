package xmppcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// MaxVCardSize bounds a vCard a user publishes, serialized, in bytes.
const MaxVCardSize = 64 << 10

// setVCard stores the user's own vCard (migration 0090).
func (st *store) setVCard(ctx context.Context, userID int64, vcard string) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	_, err := st.db.ExecContext(ctx, st.db.Rebind(`INSERT INTO xmpp_vcards (user_id, vcard, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET vcard = excluded.vcard, updated_at = excluded.updated_at`), userID, vcard, time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("xmppcore: store vcard of %d: %w", userID, err)
	}
	return nil
}

// vCard returns the vCard the user published, ErrNotFound if none.
func (st *store) vCard(ctx context.Context, userID int64) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var v string
	err := st.db.GetContext(ctx, &v, st.db.Rebind(`SELECT vcard FROM xmpp_vcards WHERE user_id = ?`), userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	} else if err != nil {
		return "", fmt.Errorf("xmppcore: vcard of %d: %w", userID, err)
	}
	return v, nil
}

// publishVCard handles a vcard-temp set: the user's own card, bounded.
func (s *Server) publishVCard(ctx context.Context, sess *Session, iq *Element) (*Element, error) {
	if to := iq.AttrValue("to"); to != "" && to != sess.bareStr {
		return nil, ErrForbidden("")
	}
	v := iq.Children[0]
	if v.Name.Local != "vCard" {
		return nil, ErrBadRequest("expected vCard")
	}
	raw := v.String()
	if len(raw) > MaxVCardSize {
		return nil, ErrNotAcceptable("vCard too large")
	}
	if err := s.store.setVCard(ctx, sess.userID, raw); err != nil {
		return nil, err
	}
	return nil, nil
}

// storedVCard returns the vCard the user published, nil if none.
func (s *Server) storedVCard(ctx context.Context, userID int64) (*Element, error) {
	raw, err := s.store.vCard(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	els, err := ParseFragment(raw)
	if err != nil || len(els) != 1 {
		return nil, fmt.Errorf("xmppcore: stored vcard of %d: %v", userID, err)
	}
	return els[0], nil
}
