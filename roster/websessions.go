package roster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Web sign-in: the sessions a browser holds after a password login (a
// cookie), the credentials a widget holds for one origin, and one-time
// login links. What is stored is the SHA-256 of each secret, never the
// secret; the caller hands the secret to the browser once. endSessions
// (sessions.go) ends them all when a password changes, an account is
// deactivated or the user is logged out.

// newSecret returns 32 random bytes, base64url.
func newSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// SecretKey is the stored form of a session or login secret: the key a
// session is found by, and the name a door may keep for a live connection
// instead of the secret.
func SecretKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateWebSession starts a session for userID that lasts lifetime and
// returns its secret. origin is "" for the web client's own cookie, else
// the widget origin the credential is issued to (it works from there only).
func (s *Store) CreateWebSession(ctx context.Context, userID int64, origin string, lifetime time.Duration) (secret string, expires time.Time, err error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	secret = newSecret()
	now := time.Now()
	expires = now.Add(lifetime)
	_, err = s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO web_sessions (hash, user_id, created_at, seen_at, expires_at, origin) VALUES (?, ?, ?, ?, ?, ?)`),
		SecretKey(secret), userID, now.UnixMicro(), now.UnixMicro(), expires.UnixMicro(), origin)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("roster: create web session: %w", err)
	}
	return secret, expires, nil
}

// WebSession returns the user and expiry of an unexpired session issued
// to origin ("" for the web client's cookie); ErrNotFound when the secret
// is unknown, expired or issued to another origin. Whether the user is
// still active is the caller's check (UserByID).
func (s *Store) WebSession(ctx context.Context, secret, origin string) (userID int64, expires time.Time, err error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var row struct {
		UserID  int64 `db:"user_id"`
		Expires int64 `db:"expires_at"`
	}
	err = s.db.GetContext(ctx, &row, s.db.Rebind(`SELECT user_id, expires_at FROM web_sessions WHERE hash = ? AND origin = ? AND expires_at > ?`),
		SecretKey(secret), origin, time.Now().UnixMicro())
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, ErrNotFound
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("roster: web session: %w", err)
	}
	return row.UserID, time.UnixMicro(row.Expires), nil
}

// EndWebSession ends the session with this secret (the web client's
// sign-out: whatever its origin).
func (s *Store) EndWebSession(ctx context.Context, secret string) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM web_sessions WHERE hash = ?`), SecretKey(secret)); err != nil {
		return fmt.Errorf("roster: end web session: %w", err)
	}
	return nil
}

// EndWidgetSession ends the credential with this secret if it was issued
// to origin (a widget signs out only its own credential).
func (s *Store) EndWidgetSession(ctx context.Context, secret, origin string) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM web_sessions WHERE hash = ? AND origin = ?`), SecretKey(secret), origin); err != nil {
		return fmt.Errorf("roster: end widget session: %w", err)
	}
	return nil
}

// CreateLoginToken makes a one-time login link secret for userID, valid
// for ttl, and drops expired ones.
func (s *Store) CreateLoginToken(ctx context.Context, userID int64, ttl time.Duration) (secret string, expires time.Time, err error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	secret = newSecret()
	now := time.Now()
	expires = now.Add(ttl)
	err = s.withTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM login_tokens WHERE expires_at < ?`), now.UnixMicro()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO login_tokens (hash, user_id, expires_at) VALUES (?, ?, ?)`), SecretKey(secret), userID, expires.UnixMicro())
		return err
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("roster: create login token: %w", err)
	}
	return secret, expires, nil
}

// ConsumeLoginToken returns the user of a one-time login link and deletes
// it in the same statement, so it works once; ErrNotFound when it is
// unknown, used or expired.
func (s *Store) ConsumeLoginToken(ctx context.Context, secret string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var uid int64
	err := s.db.GetContext(ctx, &uid, s.db.Rebind(`DELETE FROM login_tokens WHERE hash = ? AND expires_at > ? RETURNING user_id`),
		SecretKey(secret), time.Now().UnixMicro())
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("roster: consume login token: %w", err)
	}
	return uid, nil
}
