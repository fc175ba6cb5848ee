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
	"strings"
)

// tokenBytes is the entropy of a REST API token.
const tokenBytes = 32

// CreateToken makes a new REST API token named name and returns it; only its
// SHA-256 is stored, so this is the one time it can be seen.
func (s *Store) CreateToken(ctx context.Context, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return "", errors.New("roster: create token: name must be 1-200 bytes")
	}
	b := make([]byte, tokenBytes)
	rand.Read(b)
	token := base64.RawURLEncoding.EncodeToString(b)
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO api_tokens (name, hash, created_at) VALUES (?, ?, ?)`),
		name, hashToken(token), now()); err != nil {
		return "", fmt.Errorf("roster: create token: %w", err)
	}
	return token, nil
}

// VerifyToken returns the id of the token; ErrNotFound when it is unknown.
func (s *Store) VerifyToken(ctx context.Context, token string) (int64, error) {
	if token == "" || len(token) > 256 {
		return 0, ErrNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var id int64
	err := s.db.GetContext(ctx, &id, s.db.Rebind(`SELECT id FROM api_tokens WHERE hash = ?`), hashToken(token))
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("roster: verify token: %w", err)
	}
	return id, nil
}

func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}
