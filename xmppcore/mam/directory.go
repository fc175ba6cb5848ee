package mam

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Directory turns archive ids into JIDs and back for MAM. The server may
// supply its own; NewDirectory reads users.login and chats.room.
type Directory interface {
	// UserJID is the bare JID of a user.
	UserJID(ctx context.Context, userID int64) (string, error)
	// UserByJID is the user of a bare or full JID of this domain
	// (ErrNotFound otherwise).
	UserByJID(ctx context.Context, jid string) (int64, error)
	// Occupant is the JID a chat message appears from: room@service/nick
	// of the author, or the room's bare JID for userID 0 (system).
	Occupant(ctx context.Context, chatID, userID int64) (string, error)
}

type sqlDirectory struct {
	db                *sqlx.DB
	domain, mucDomain string
}

// NewDirectory returns a Directory over the users and chats tables: a user
// is login@domain, a room is room@mucDomain, an author's nick is their
// login.
func NewDirectory(db *sqlx.DB, domain, mucDomain string) Directory {
	return &sqlDirectory{db: db, domain: domain, mucDomain: mucDomain}
}

func (d *sqlDirectory) UserJID(ctx context.Context, userID int64) (string, error) {
	var login string
	err := d.db.GetContext(ctx, &login, d.db.Rebind(`SELECT login FROM users WHERE id = ?`), userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("mam: user %d: %w", userID, err)
	}
	return login + "@" + d.domain, nil
}

func (d *sqlDirectory) UserByJID(ctx context.Context, jid string) (int64, error) {
	bare, _, _ := strings.Cut(jid, "/")
	local, domain, ok := strings.Cut(bare, "@")
	if !ok || !strings.EqualFold(domain, d.domain) || local == "" {
		return 0, ErrNotFound
	}
	var id int64
	err := d.db.GetContext(ctx, &id, d.db.Rebind(`SELECT id FROM users WHERE login = ?`), strings.ToLower(local))
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("mam: user %q: %w", jid, err)
	}
	return id, nil
}

func (d *sqlDirectory) Occupant(ctx context.Context, chatID, userID int64) (string, error) {
	var room string
	err := d.db.GetContext(ctx, &room, d.db.Rebind(`SELECT room FROM chats WHERE id = ?`), chatID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("mam: chat %d: %w", chatID, err)
	}
	j := room + "@" + d.mucDomain
	if userID == 0 {
		return j, nil
	}
	var login string
	err = d.db.GetContext(ctx, &login, d.db.Rebind(`SELECT login FROM users WHERE id = ?`), userID)
	if errors.Is(err, sql.ErrNoRows) {
		return j, nil
	}
	if err != nil {
		return "", fmt.Errorf("mam: user %d: %w", userID, err)
	}
	return j + "/" + login, nil
}
