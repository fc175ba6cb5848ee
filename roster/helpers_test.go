package roster

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
)

func mustImport(t *testing.T, s *Store, snap *Snapshot) *Report {
	t.Helper()
	rep, err := s.Import(context.Background(), snap, false)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return rep
}

func uid(t *testing.T, s *Store, login string) int64 {
	t.Helper()
	u, err := s.UserByLogin(context.Background(), login)
	if err != nil {
		t.Fatalf("user %s: %v", login, err)
	}
	return u.ID
}

// rosterOf renders a roster as "login:Group1|Group2" entries, sorted.
func rosterOf(t *testing.T, s *Store, login string) []string {
	t.Helper()
	items, err := s.Roster(context.Background(), uid(t, s, login))
	if err != nil {
		t.Fatalf("roster of %s: %v", login, err)
	}
	var out []string
	for _, it := range items {
		who := it.Login
		if it.ContactID == 0 {
			who = it.JID
		}
		out = append(out, who+":"+strings.Join(it.Groups, "|"))
	}
	sort.Strings(out)
	return out
}

func wantRoster(t *testing.T, s *Store, login string, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := rosterOf(t, s, login); !slices.Equal(got, want) {
		t.Errorf("roster of %s: got %v, want %v", login, got, want)
	}
}

// eventsSince renders events after id as "kind user>contact" with logins.
func eventsSince(t *testing.T, s *Store, db *sqlx.DB, after int64) []string {
	t.Helper()
	evs, err := s.Events(context.Background(), after, 1000)
	if err != nil {
		t.Fatal(err)
	}
	login := func(id int64) string {
		var l string
		if err := db.Get(&l, db.Rebind(`SELECT login FROM users WHERE id = ?`), id); err != nil {
			return fmt.Sprint(id)
		}
		return l
	}
	var out []string
	for _, e := range evs {
		x := e.Kind + " " + login(e.UserID)
		if e.ContactID != 0 {
			x += ">" + login(e.ContactID)
		}
		out = append(out, x)
	}
	sort.Strings(out)
	return out
}

func wantEvents(t *testing.T, got []string, want ...string) {
	t.Helper()
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("events:\n got %v\nwant %v", got, want)
	}
}

func count(t *testing.T, db *sqlx.DB, table string) int {
	t.Helper()
	var n int
	if err := db.Get(&n, `SELECT COUNT(*) FROM `+table); err != nil {
		t.Fatal(err)
	}
	return n
}
