package roster

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"hash"

	"github.com/jmoiron/sqlx"
	"golang.org/x/text/secure/precis"
)

// ErrBadPassword is returned by CheckPassword for a wrong password.
var ErrBadPassword = errors.New("roster: bad password")

// SCRAM parameters for new credentials.
const (
	ScramIterations = 4096 // RFC 7677 minimum; clients are told it in the challenge
	saltLen         = 16
	// MaxPasswordLen bounds what SetPassword and CheckPassword accept.
	MaxPasswordLen = 1024
)

// Credentials are what SCRAM needs to authenticate a user without knowing
// the password (RFC 5802, RFC 7677). Neither the password nor SaltedPassword
// is stored.
type Credentials struct {
	UserID       int64  `db:"user_id"`
	Salt         []byte `db:"salt"`
	Iterations   int    `db:"iterations"`
	SHA1Stored   []byte `db:"sha1_stored"`
	SHA1Server   []byte `db:"sha1_server"`
	SHA256Stored []byte `db:"sha256_stored"`
	SHA256Server []byte `db:"sha256_server"`
}

// NormalizePassword prepares a password as SCRAM requires (SASLprep's
// successor, the PRECIS OpaqueString profile, RFC 8265). A password the
// profile rejects is used as it is, so that any byte string still works
// the same way on both sides.
func NormalizePassword(password string) string {
	if p, err := precis.OpaqueString.String(password); err == nil {
		return p
	}
	return password
}

// ScramKeys derives StoredKey and ServerKey for one hash (RFC 5802 §3):
// SaltedPassword = Hi(Normalize(password), salt, i), ClientKey =
// HMAC(SaltedPassword, "Client Key"), StoredKey = H(ClientKey), ServerKey =
// HMAC(SaltedPassword, "Server Key").
func ScramKeys[H hash.Hash](h func() H, password string, salt []byte, iterations int) (stored, server []byte, err error) {
	var size int
	{
		x := h()
		size = x.Size()
	}
	salted, err := pbkdf2.Key(h, NormalizePassword(password), salt, iterations, size)
	if err != nil {
		return nil, nil, err
	}
	mac := hmac.New(func() hash.Hash { return h() }, salted)
	mac.Write([]byte("Client Key"))
	clientKey := mac.Sum(nil)
	hh := h()
	hh.Write(clientKey)
	stored = hh.Sum(nil)
	mac = hmac.New(func() hash.Hash { return h() }, salted)
	mac.Write([]byte("Server Key"))
	server = mac.Sum(nil)
	clear(salted)
	return stored, server, nil
}

// newCredentials derives fresh credentials with a random salt.
func newCredentials(password string) (*Credentials, error) {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	c := &Credentials{Salt: salt, Iterations: ScramIterations}
	var err error
	if c.SHA1Stored, c.SHA1Server, err = ScramKeys(sha1.New, password, salt, ScramIterations); err != nil {
		return nil, err
	}
	if c.SHA256Stored, c.SHA256Server, err = ScramKeys(sha256.New, password, salt, ScramIterations); err != nil {
		return nil, err
	}
	return c, nil
}

func checkPassword(password string) error {
	if password == "" {
		return errors.New("empty password")
	}
	if len(password) > MaxPasswordLen {
		return fmt.Errorf("password longer than %d bytes", MaxPasswordLen)
	}
	return nil
}

// Credentials returns the SCRAM credentials of an active user; ErrNotFound
// when there is no such active user or they have no password.
func (s *Store) Credentials(ctx context.Context, login string) (*Credentials, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var c Credentials
	err := s.db.GetContext(ctx, &c, s.db.Rebind(`SELECT c.user_id, c.salt, c.iterations, c.sha1_stored, c.sha1_server,
		c.sha256_stored, c.sha256_server FROM credentials c JOIN users u ON u.id = c.user_id
		WHERE u.login = ? AND u.active`), normLogin(login))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("roster: credentials of %q: %w", login, err)
	}
	return &c, nil
}

// SetPassword replaces the user's credentials (active or not), ends the
// user's web sessions and login links, and writes a "password" event so
// that running servers close the user's streams and connections.
func (s *Store) SetPassword(ctx context.Context, login, password string) error {
	if err := checkPassword(password); err != nil {
		return fmt.Errorf("roster: set password of %q: %w", login, err)
	}
	c, err := newCredentials(password)
	if err != nil {
		return fmt.Errorf("roster: set password of %q: %w", login, err)
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	err = s.withTx(ctx, func(tx *sqlx.Tx) error {
		var id int64
		err := tx.GetContext(ctx, &id, tx.Rebind(`SELECT id FROM users WHERE login = ?`), normLogin(login))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		c.UserID = id
		if err := putCredentials(ctx, tx, c); err != nil {
			return err
		}
		if err := endSessions(ctx, tx, []int64{id}); err != nil {
			return err
		}
		return insertEvents(ctx, tx, []Event{{Kind: EventPassword, UserID: id}})
	})
	if errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("roster: set password of %q: %w", login, err)
	}
	return nil
}

func putCredentials(ctx context.Context, tx sqlx.ExtContext, c *Credentials) error {
	if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM credentials WHERE user_id = ?`), c.UserID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO credentials (user_id, salt, iterations, sha1_stored, sha1_server,
		sha256_stored, sha256_server, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		c.UserID, c.Salt, c.Iterations, c.SHA1Stored, c.SHA1Server, c.SHA256Stored, c.SHA256Server, now())
	return err
}

// dummySalt makes CheckPassword spend the same time on unknown logins.
var dummySalt = make([]byte, saltLen)

// CheckPassword verifies a plain password (SASL PLAIN, web login) against
// the stored SCRAM-SHA-256 keys of an active user, in constant time. It
// returns ErrNotFound for an unknown or deactivated login or one without a
// password, ErrBadPassword for a wrong password.
func (s *Store) CheckPassword(ctx context.Context, login, password string) (*User, error) {
	c, err := s.Credentials(ctx, login)
	if errors.Is(err, ErrNotFound) {
		ScramKeys(sha256.New, password, dummySalt, ScramIterations)
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if len(password) > MaxPasswordLen {
		return nil, ErrBadPassword
	}
	stored, _, err := ScramKeys(sha256.New, password, c.Salt, c.Iterations)
	if err != nil {
		return nil, fmt.Errorf("roster: check password: %w", err)
	}
	if subtle.ConstantTimeCompare(stored, c.SHA256Stored) != 1 {
		return nil, ErrBadPassword
	}
	return s.UserByID(ctx, c.UserID)
}
