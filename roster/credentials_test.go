package roster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// TestScramVectors checks the derived keys against the exchanges of
// RFC 5802 §5 (SCRAM-SHA-1) and RFC 7677 §3 (SCRAM-SHA-256): a server
// holding only StoredKey and ServerKey must accept the RFC's client proof
// and produce the RFC's server signature.
func TestScramVectors(t *testing.T) {
	tests := []struct {
		name                   string
		h                      func() hash.Hash
		salt, auth, proof, sig string
	}{
		{
			name:  "SCRAM-SHA-1",
			h:     sha1.New,
			salt:  "QSXCR+Q6sek8bf92",
			auth:  "n=user,r=fyko+d2lbbFgONRv9qkxdawL,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
			proof: "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
			sig:   "rmF9pqV8S7suAoZWja4dJRkFsKQ=",
		},
		{
			name:  "SCRAM-SHA-256",
			h:     sha256.New,
			salt:  "W22ZaJ0SNY7soEsUEjb6gQ==",
			auth:  "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
			proof: "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			sig:   "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			salt, _ := base64.StdEncoding.DecodeString(tt.salt)
			stored, server, err := ScramKeys(tt.h, "pencil", salt, 4096)
			if err != nil {
				t.Fatal(err)
			}
			mac := hmac.New(tt.h, stored)
			mac.Write([]byte(tt.auth))
			clientSig := mac.Sum(nil)
			proof, _ := base64.StdEncoding.DecodeString(tt.proof)
			clientKey := make([]byte, len(proof))
			for i := range proof {
				clientKey[i] = proof[i] ^ clientSig[i]
			}
			h := tt.h()
			h.Write(clientKey)
			if !bytes.Equal(h.Sum(nil), stored) {
				t.Errorf("the RFC's client proof does not verify against StoredKey %x", stored)
			}
			mac = hmac.New(tt.h, server)
			mac.Write([]byte(tt.auth))
			if got := base64.StdEncoding.EncodeToString(mac.Sum(nil)); got != tt.sig {
				t.Errorf("server signature: got %s, want %s", got, tt.sig)
			}
		})
	}
}

func TestPasswords(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		snap := testSnapshot()
		snap.Employees[0].Password = "first"
		if _, err := s.Import(ctx, snap, false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CheckPassword(ctx, "boss", "first"); err != nil {
			t.Fatalf("initial password: %v", err)
		}
		if _, err := s.Credentials(ctx, "ann"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("credentials of a user without a password: got %v, want ErrNotFound", err)
		}
		last, _ := s.LastEventID(ctx)
		if err := s.SetPassword(ctx, "ann", "Пароль secret"); err != nil {
			t.Fatal(err)
		}
		u, err := s.CheckPassword(ctx, "Ann", "Пароль secret")
		if err != nil || u.Login != "ann" {
			t.Fatalf("check: got %v, %v", u, err)
		}
		if _, err := s.CheckPassword(ctx, "ann", "wrong"); !errors.Is(err, ErrBadPassword) {
			t.Fatalf("wrong password: got %v, want ErrBadPassword", err)
		}
		if _, err := s.CheckPassword(ctx, "nobody", "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown login: got %v, want ErrNotFound", err)
		}
		if err := s.SetPassword(ctx, "nobody", "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("passwd of unknown login: got %v, want ErrNotFound", err)
		}
		if err := s.SetPassword(ctx, "ann", ""); err == nil {
			t.Fatal("empty password accepted")
		}
		evs, err := s.Events(ctx, last, 10)
		if err != nil || len(evs) != 1 || evs[0].Kind != EventPassword || evs[0].UserID != u.ID {
			t.Fatalf("events: got %+v, %v; want one password event for %d", evs, err, u.ID)
		}
		c, err := s.Credentials(ctx, "ann")
		if err != nil {
			t.Fatal(err)
		}
		if c.Iterations != ScramIterations || len(c.Salt) < 16 || len(c.SHA1Stored) != 20 || len(c.SHA256Stored) != 32 {
			t.Fatalf("credentials: %+v", c)
		}
		// The stored keys are those of the password: SCRAM clients will
		// derive the same.
		st, sv, _ := ScramKeys(sha1.New, "Пароль secret", c.Salt, c.Iterations)
		if !bytes.Equal(st, c.SHA1Stored) || !bytes.Equal(sv, c.SHA1Server) {
			t.Fatal("SHA-1 keys do not match the password")
		}
		// No column holds the password or the salted password.
		var blob []byte
		db.Get(&blob, db.Rebind(`SELECT sha256_stored FROM credentials WHERE user_id = ?`), u.ID)
		if bytes.Contains(blob, []byte("secret")) {
			t.Fatal("password stored")
		}
		// A deactivated user has no credentials for login.
		snap.Employees[1].Active = new(bool)
		if _, err := s.Import(ctx, snap, false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CheckPassword(ctx, "ann", "Пароль secret"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deactivated user: got %v, want ErrNotFound", err)
		}
	})
}

func TestTokens(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		tok, err := s.CreateToken(ctx, "portal")
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) < 40 {
			t.Fatalf("token %q too short", tok)
		}
		id, err := s.VerifyToken(ctx, tok)
		if err != nil || id == 0 {
			t.Fatalf("verify: %d, %v", id, err)
		}
		if _, err := s.VerifyToken(ctx, tok+"x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("wrong token: got %v, want ErrNotFound", err)
		}
		var n int
		db.Get(&n, db.Rebind(`SELECT COUNT(*) FROM api_tokens WHERE hash = ?`), tok)
		if n != 0 {
			t.Fatal("token stored in clear")
		}
		if _, err := s.CreateToken(ctx, " "); err == nil {
			t.Fatal("empty name accepted")
		}
	})
}
