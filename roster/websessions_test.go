package roster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

func TestWebSessions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		mustImport(t, s, testSnapshot())
		ann, sam := uid(t, s, "ann"), uid(t, s, "sam")

		// A cookie session is found under origin "" only.
		cookie, exp, err := s.CreateWebSession(ctx, ann, "", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Until(exp); d < 59*time.Minute || d > time.Hour {
			t.Fatalf("expires in %v, want an hour", d)
		}
		if u, _, err := s.WebSession(ctx, cookie, ""); err != nil || u != ann {
			t.Fatalf("cookie session: got %d, %v, want %d", u, err, ann)
		}
		if _, _, err := s.WebSession(ctx, cookie, "http://portal.example"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("cookie used as a widget credential: %v", err)
		}
		// The secret is not what is stored.
		var n int
		if err := db.Get(&n, db.Rebind(`SELECT COUNT(*) FROM web_sessions WHERE hash = ?`), cookie); err != nil || n != 0 {
			t.Fatalf("secret stored in clear: %d, %v", n, err)
		}

		// A widget credential works from its origin only and a widget
		// signs out only its own.
		cred, _, err := s.CreateWebSession(ctx, sam, "http://portal.example", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if u, _, err := s.WebSession(ctx, cred, "http://portal.example"); err != nil || u != sam {
			t.Fatalf("widget session: got %d, %v", u, err)
		}
		for _, origin := range []string{"", "http://intranet.example"} {
			if _, _, err := s.WebSession(ctx, cred, origin); !errors.Is(err, ErrNotFound) {
				t.Fatalf("credential from %q: %v", origin, err)
			}
		}
		if err := s.EndWidgetSession(ctx, cred, "http://intranet.example"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.WebSession(ctx, cred, "http://portal.example"); err != nil {
			t.Fatalf("another origin ended the credential: %v", err)
		}
		if err := s.EndWidgetSession(ctx, cred, "http://portal.example"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.WebSession(ctx, cred, "http://portal.example"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("ended credential: %v", err)
		}

		// Sign-out, expiry, unknown secrets.
		if err := s.EndWebSession(ctx, cookie); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.WebSession(ctx, cookie, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("signed-out session: %v", err)
		}
		old, _, err := s.CreateWebSession(ctx, ann, "", -time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.WebSession(ctx, old, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired session: %v", err)
		}
		if _, _, err := s.WebSession(ctx, "nonsense", ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown session: %v", err)
		}
	})
}

func TestLoginTokens(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		mustImport(t, s, testSnapshot())
		ann := uid(t, s, "ann")

		expired, _, err := s.CreateLoginToken(ctx, ann, -time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ConsumeLoginToken(ctx, expired); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired token: %v", err)
		}
		tok, _, err := s.CreateLoginToken(ctx, ann, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		// Making a token drops expired ones.
		var n int
		if err := db.Get(&n, `SELECT COUNT(*) FROM login_tokens`); err != nil || n != 1 {
			t.Fatalf("tokens stored: %d, %v, want 1", n, err)
		}
		if u, err := s.ConsumeLoginToken(ctx, tok); err != nil || u != ann {
			t.Fatalf("consume: got %d, %v, want %d", u, err, ann)
		}
		if _, err := s.ConsumeLoginToken(ctx, tok); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second use: %v", err)
		}
	})
}
