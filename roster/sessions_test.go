package roster

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

func TestSessionsEnd(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		mustImport(t, s, testSnapshot())
		// Each user has a web session and a login link.
		logins := []string{"boss", "ann", "sam", "sue", "dan"}
		for _, l := range logins {
			id := uid(t, s, l)
			for _, q := range []string{
				`INSERT INTO web_sessions (hash, user_id, created_at, seen_at, expires_at) VALUES (?, ?, 1, 1, 9999999999999999)`,
				`INSERT INTO login_tokens (hash, user_id, expires_at) VALUES (?, ?, 9999999999999999)`,
			} {
				if _, err := db.Exec(db.Rebind(q), "h-"+l, id); err != nil {
					t.Fatal(err)
				}
			}
		}
		has := func(login string) (sessions, links int) {
			t.Helper()
			id := uid(t, s, login)
			db.Get(&sessions, db.Rebind(`SELECT COUNT(*) FROM web_sessions WHERE user_id = ?`), id)
			db.Get(&links, db.Rebind(`SELECT COUNT(*) FROM login_tokens WHERE user_id = ?`), id)
			return
		}
		if err := s.SetPassword(ctx, "ann", "new one"); err != nil {
			t.Fatal(err)
		}
		if err := s.Logout(ctx, "sam"); err != nil {
			t.Fatal(err)
		}
		if err := s.Logout(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Logout(nobody): %v, want ErrNotFound", err)
		}
		// sue is deactivated by an import, then reactivated: her old
		// session stays gone.
		snap := testSnapshot()
		snap.Employees[3].Active = new(bool)
		mustImport(t, s, snap)
		mustImport(t, s, testSnapshot())
		for _, l := range logins {
			want := 1
			if l == "ann" || l == "sam" || l == "sue" {
				want = 0
			}
			if ses, links := has(l); ses != want || links != want {
				t.Errorf("%s: %d web sessions, %d login links; want %d of each", l, ses, links, want)
			}
		}
		evs := eventsSince(t, s, db, 0)
		if !slices.Contains(evs, "logout sam") || !slices.Contains(evs, "password ann") || !slices.Contains(evs, "deactivated sue") {
			t.Errorf("events %v: want logout sam, password ann, deactivated sue", evs)
		}
	})
}
