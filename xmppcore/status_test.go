package xmppcore

import (
	"context"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// TestRememberedPresence: a user's chosen show and status are kept; a bad
// show or an oversized status is refused and changes nothing.
func TestRememberedPresence(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		alice, err := e.rs.UserByLogin(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		check := func(wantShow, wantStatus string) {
			t.Helper()
			show, status, err := e.srv.RememberedPresence(ctx, alice.ID)
			if err != nil || show != wantShow || status != wantStatus {
				t.Fatalf("remembered: got %q %q %v, want %q %q", show, status, err, wantShow, wantStatus)
			}
		}
		check("online", "")
		if err := e.srv.RememberPresence(ctx, alice.ID, "dnd", "на встрече до 15:00"); err != nil {
			t.Fatal(err)
		}
		check("dnd", "на встрече до 15:00")
		for _, bad := range []struct{ show, status string }{{"chat", ""}, {"xa", ""}, {"", ""}, {"dnd", string(make([]byte, MaxStatusLen+1))}} {
			if err := e.srv.RememberPresence(ctx, alice.ID, bad.show, bad.status); err == nil {
				t.Errorf("show %q, status of %d bytes: accepted", bad.show, len(bad.status))
			}
		}
		check("dnd", "на встрече до 15:00")
		if err := e.srv.RememberPresence(ctx, alice.ID, "online", ""); err != nil {
			t.Fatal(err)
		}
		check("online", "")
	})
}
