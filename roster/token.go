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
	"slices"
	"strconv"
	"strings"
	"time"
)

// tokenBytes is the entropy of a REST API token.
const tokenBytes = 32

// Token scopes: what a REST token may do. ScopeAdmin holds every other.
const (
	ScopePost  = "post"  // send messages and notifications, create and change chats, upload files
	ScopeRead  = "read"  // read chats, history and search
	ScopeOrg   = "org"   // replace the org structure (PUT /org)
	ScopeLogin = "login" // mint one-time login links for users
	ScopeAdmin = "admin" // all of the above
)

// Scopes lists the valid scopes.
var Scopes = []string{ScopePost, ScopeRead, ScopeOrg, ScopeLogin, ScopeAdmin}

// Token is a REST API token as the operator sees it (never its secret).
type Token struct {
	ID       int64
	Name     string
	Scopes   []string
	AsUser   int64  // 0: may act as any user
	AsLogin  string // AsUser's login
	Created  time.Time
	LastUsed *time.Time
	Revoked  *time.Time
}

// Allows reports whether the token holds scope.
func (t *Token) Allows(scope string) bool {
	for _, s := range t.Scopes {
		if s == scope || s == ScopeAdmin {
			return true
		}
	}
	return false
}

// ParseScopes checks a comma-separated scope list ("" = every scope).
func ParseScopes(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return []string{ScopeAdmin}, nil
	}
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(Scopes, s) {
			return nil, fmt.Errorf("unknown scope %q (want some of %s)", s, strings.Join(Scopes, ", "))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// CreateToken makes a new REST API token with every scope; see
// CreateScopedToken.
func (s *Store) CreateToken(ctx context.Context, name string) (string, error) {
	return s.CreateScopedToken(ctx, name, []string{ScopeAdmin}, 0)
}

// CreateScopedToken makes a new REST API token named name holding scopes,
// acting only as user asUser when that is not 0, and returns it; only its
// SHA-256 is stored, so this is the one time it can be seen.
func (s *Store) CreateScopedToken(ctx context.Context, name string, scopes []string, asUser int64) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return "", errors.New("roster: create token: name must be 1-200 bytes")
	}
	if len(scopes) == 0 {
		return "", errors.New("roster: create token: no scope")
	}
	for _, sc := range scopes {
		if !slices.Contains(Scopes, sc) {
			return "", fmt.Errorf("roster: create token: unknown scope %q", sc)
		}
	}
	b := make([]byte, tokenBytes)
	rand.Read(b)
	token := base64.RawURLEncoding.EncodeToString(b)
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO api_tokens (name, hash, created_at, scopes, as_user) VALUES (?, ?, ?, ?, ?)`),
		name, hashToken(token), now(), strings.Join(scopes, ","), sql.NullInt64{Int64: asUser, Valid: asUser != 0}); err != nil {
		return "", fmt.Errorf("roster: create token: %w", err)
	}
	return token, nil
}

type tokenRow struct {
	ID       int64          `db:"id"`
	Name     string         `db:"name"`
	Scopes   string         `db:"scopes"`
	AsUser   sql.NullInt64  `db:"as_user"`
	AsLogin  sql.NullString `db:"login"`
	Created  int64          `db:"created_at"`
	LastUsed sql.NullInt64  `db:"last_used_at"`
	Revoked  sql.NullInt64  `db:"revoked_at"`
}

const tokenColumns = `t.id, t.name, t.scopes, t.as_user, u.login, t.created_at, t.last_used_at, t.revoked_at
	FROM api_tokens t LEFT JOIN users u ON u.id = t.as_user`

func (r tokenRow) token() *Token {
	t := &Token{ID: r.ID, Name: r.Name, Scopes: strings.Split(r.Scopes, ","), AsUser: r.AsUser.Int64,
		AsLogin: r.AsLogin.String, Created: time.UnixMicro(r.Created).UTC()}
	if r.LastUsed.Valid {
		lu := time.UnixMicro(r.LastUsed.Int64).UTC()
		t.LastUsed = &lu
	}
	if r.Revoked.Valid {
		rv := time.UnixMicro(r.Revoked.Int64).UTC()
		t.Revoked = &rv
	}
	return t
}

// VerifyToken returns the id of the token; ErrNotFound when it is unknown
// or revoked.
func (s *Store) VerifyToken(ctx context.Context, token string) (int64, error) {
	t, err := s.TokenBySecret(ctx, token)
	if err != nil {
		return 0, err
	}
	return t.ID, nil
}

// TokenBySecret returns the live token whose secret is token; ErrNotFound
// when it is unknown or revoked.
func (s *Store) TokenBySecret(ctx context.Context, token string) (*Token, error) {
	if token == "" || len(token) > 256 {
		return nil, ErrNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var r tokenRow
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT `+tokenColumns+` WHERE t.hash = ? AND t.revoked_at IS NULL`), hashToken(token))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("roster: verify token: %w", err)
	}
	return r.token(), nil
}

// Tokens lists every token, revoked ones included, oldest first.
func (s *Store) Tokens(ctx context.Context) ([]*Token, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var rows []tokenRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+tokenColumns+` ORDER BY t.id`); err != nil {
		return nil, fmt.Errorf("roster: list tokens: %w", err)
	}
	out := make([]*Token, len(rows))
	for i, r := range rows {
		out[i] = r.token()
	}
	return out, nil
}

// RevokeToken ends the token with this id or, when ref is not a number,
// this name (which must then name exactly one live token). Running servers
// stop accepting it within their token cache time.
func (s *Store) RevokeToken(ctx context.Context, ref string) (*Token, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var rows []tokenRow
	q := `SELECT ` + tokenColumns + ` WHERE t.revoked_at IS NULL AND t.name = ?`
	arg := any(ref)
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		q, arg = `SELECT `+tokenColumns+` WHERE t.revoked_at IS NULL AND t.id = ?`, id
	}
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(q), arg); err != nil {
		return nil, fmt.Errorf("roster: revoke token: %w", err)
	}
	switch len(rows) {
	case 0:
		return nil, ErrNotFound
	case 1:
	default:
		return nil, fmt.Errorf("roster: revoke token: %d live tokens are named %q; give the id (vestnik token list)", len(rows), ref)
	}
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE api_tokens SET revoked_at = ? WHERE id = ?`), now(), rows[0].ID); err != nil {
		return nil, fmt.Errorf("roster: revoke token: %w", err)
	}
	return rows[0].token(), nil
}

// TokenUsed records that token id was used at t.
func (s *Store) TokenUsed(ctx context.Context, id int64, t time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE api_tokens SET last_used_at = ? WHERE id = ?`), t.UnixMicro(), id); err != nil {
		return fmt.Errorf("roster: token used: %w", err)
	}
	return nil
}

func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}
