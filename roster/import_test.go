package roster

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// testSnapshot is a small company:
//
//	Co (head boss)
//	├── Sales (head ann): ann, sam, sue
//	└── Dev (no head): dan, dora; Dev/QA (head quinn): quinn, dan
func testSnapshot() *Snapshot {
	return &Snapshot{
		Departments: []SnapshotDepartment{
			{ID: "co", Name: "Co", Head: "1"},
			{ID: "sales", Name: "Sales", Parent: "co", Head: "2"},
			{ID: "dev", Name: "Dev", Parent: "co"},
			{ID: "qa", Name: "QA", Parent: "dev", Head: "6"},
		},
		Employees: []SnapshotEmployee{
			{ID: "1", Login: "boss", Name: "Big Boss", Departments: []ExtID{"co"}},
			{ID: "2", Login: "ann", Name: "Анна", Departments: []ExtID{"sales"}},
			{ID: "3", Login: "sam", Name: "Sam", Departments: []ExtID{"sales"}},
			{ID: "4", Login: "sue", Name: "Sue", Title: "Seller", Departments: []ExtID{"sales"}},
			{ID: "5", Login: "dan", Name: "Dan", Departments: []ExtID{"dev", "qa"}},
			{ID: "6", Login: "quinn", Name: "Quinn", Departments: []ExtID{"qa"}},
			{ID: "7", Login: "dora", Name: "Dora", Departments: []ExtID{"dev"}, Manager: "1"},
		},
	}
}

func TestImportLifecycle(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		rep := mustImport(t, s, testSnapshot())
		if rep.Created != 7 || rep.Updated != 0 || rep.Deactivated != 0 || rep.DepartmentsCreated != 4 {
			t.Fatalf("first import: %s", rep)
		}
		// Effective managers (SPEC §3).
		for login, want := range map[string]string{
			"boss": "", "ann": "boss", "sam": "ann", "sue": "ann",
			"dan": "", "quinn": "", "dora": "boss",
		} {
			u, err := s.UserByLogin(ctx, login)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if u.ManagerID != 0 {
				m, _ := s.UserByID(ctx, u.ManagerID)
				got = m.Login
			}
			if got != want {
				t.Errorf("manager of %s: got %q, want %q", login, got, want)
			}
		}
		dan, _ := s.UserByLogin(ctx, "dan")
		if len(dan.Departments) != 2 {
			t.Fatalf("dan's departments: %v", dan.Departments)
		}
		if evs, _ := s.Events(ctx, 0, 100); len(evs) != 0 {
			t.Errorf("first import into an empty database wrote events %v; nobody can be online", evs)
		}

		// The same snapshot again changes nothing.
		last, _ := s.LastEventID(ctx)
		rep = mustImport(t, s, testSnapshot())
		if rep.Changed() || len(rep.Lines) != 0 {
			t.Fatalf("re-import: %s %v", rep, rep.Lines)
		}
		wantEvents(t, eventsSince(t, s, db, last))

		// Sue gets a title, Sam moves to Dev, Dora leaves (missing), Dan
		// is deactivated explicitly.
		snap := testSnapshot()
		snap.Employees[3].Title = "Senior seller"
		snap.Employees[2].Departments = []ExtID{"dev"}
		snap.Employees[4].Active = new(bool)
		snap.Employees = snap.Employees[:6]
		rep = mustImport(t, s, snap)
		if rep.Created != 0 || rep.Updated != 2 || rep.Deactivated != 2 {
			t.Fatalf("update: %s %v", rep, rep.Lines)
		}
		wantEvents(t, eventsSince(t, s, db, last),
			"deactivated dan", "deactivated dora", "user_updated sue",
			"roster_remove ann>sam", "roster_remove sue>sam", "roster_remove sam>ann", "roster_remove sam>sue",
			"roster_remove boss>dora", "roster_remove quinn>dan")
		if u, _ := s.UserByLogin(ctx, "dora"); u.Active {
			t.Error("dora still active")
		}
		if n := count(t, db, "users"); n != 7 {
			t.Errorf("users: %d rows, want 7 (deactivated users are kept)", n)
		}
		wantRoster(t, s, "sam")
		wantRoster(t, s, "ann", "boss:Co", "sue:Sales")

		// Dora comes back.
		last, _ = s.LastEventID(ctx)
		snap = testSnapshot()
		snap.Employees[3].Title = "Senior seller"
		snap.Employees[2].Departments = []ExtID{"dev"}
		snap.Employees[4].Active = new(bool)
		rep = mustImport(t, s, snap)
		if rep.Updated != 1 || rep.Created+rep.Deactivated != 0 {
			t.Fatalf("reactivate: %s %v", rep, rep.Lines)
		}
		wantEvents(t, eventsSince(t, s, db, last), "roster_add boss>dora", "roster_add sam>dora")
		wantRoster(t, s, "dora", "boss:Co", "sam:Dev")
		wantRoster(t, s, "sam", "dora:Dev")
	})
}

func TestRosterGeneration(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		s.SetDomain("example.test")
		mustImport(t, s, testSnapshot())
		wantRoster(t, s, "boss", "ann:Sales", "dora:Dev")
		wantRoster(t, s, "ann", "boss:Co", "sam:Sales", "sue:Sales")
		wantRoster(t, s, "dan", "dora:Dev", "quinn:QA")
		wantRoster(t, s, "quinn", "dan:QA")
		// A colleague in two shared departments is in two groups.
		snap := testSnapshot()
		snap.Employees[5].Departments = []ExtID{"qa", "dev"}
		mustImport(t, s, snap)
		wantRoster(t, s, "dan", "dora:Dev", "quinn:Dev|QA")

		// Personal contacts appear on both sides, once.
		sam, quinn := uid(t, s, "sam"), uid(t, s, "quinn")
		for i, want := range []bool{true, false} {
			added, err := s.AddPersonalContact(ctx, sam, quinn)
			if err != nil || added != want {
				t.Fatalf("add personal contact #%d: got %v, %v; want %v", i, added, err, want)
			}
		}
		wantRoster(t, s, "sam", "ann:Sales", "quinn:QA", "sue:Sales")
		wantRoster(t, s, "quinn", "dan:Dev|QA", "dora:Dev", "sam:Sales")

		// Overrides: rename and regroup a generated item.
		ann := uid(t, s, "ann")
		if err := s.SetItem(ctx, ann, Item{Login: "sam", Name: "Sammy", Groups: []string{"Friends", " "}}); err != nil {
			t.Fatal(err)
		}
		items, _ := s.Roster(ctx, ann)
		var got *Item
		for i := range items {
			if items[i].Login == "sam" {
				got = &items[i]
			}
		}
		if got == nil || got.Name != "Sammy" || !slices.Equal(got.Groups, []string{"Friends"}) || !got.Generated || got.Subscription != SubBoth {
			t.Fatalf("renamed item: %+v", got)
		}
		// Hand-added: an employee outside the org relation and a foreign JID.
		if err := s.SetItem(ctx, ann, Item{JID: "quinn@example.test", Groups: []string{"QA folks"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetItem(ctx, ann, Item{JID: "Friend@Other.example", Name: "Friend", Subscription: SubTo, Ask: true}); err != nil {
			t.Fatal(err)
		}
		wantRoster(t, s, "ann", "boss:Co", "sam:Friends", "sue:Sales", "quinn:QA folks", "friend@other.example:")
		items, _ = s.Roster(ctx, ann)
		for _, it := range items {
			switch {
			case it.Login == "quinn" && (it.Generated || it.Subscription != SubNone || it.Name != "" || it.JID != "quinn@example.test"):
				t.Errorf("hand-added employee: %+v", it)
			case it.JID == "friend@other.example" && (it.Subscription != SubTo || !it.Ask || it.ContactID != 0):
				t.Errorf("foreign item: %+v", it)
			}
		}
		// Removing: hand-added items go, generated ones hide.
		for _, j := range []string{"friend@other.example", "quinn@example.test", "sue", "sam@example.test"} {
			if err := s.RemoveItem(ctx, ann, j); err != nil {
				t.Fatalf("remove %s: %v", j, err)
			}
		}
		wantRoster(t, s, "ann", "boss:Co")
		// Re-import of the same structure keeps them hidden...
		mustImport(t, s, snap)
		wantRoster(t, s, "ann", "boss:Co")
		// ...until the org structure adds them anew: Sue leaves Sales and
		// comes back.
		moved := testSnapshot()
		moved.Employees[5].Departments = []ExtID{"qa", "dev"}
		moved.Employees[3].Departments = []ExtID{"dev"}
		mustImport(t, s, moved)
		mustImport(t, s, snap)
		wantRoster(t, s, "ann", "boss:Co", "sue:Sales")
		// Setting a hidden generated item brings it back too.
		if err := s.SetItem(ctx, ann, Item{ContactID: uid(t, s, "sam")}); err != nil {
			t.Fatal(err)
		}
		wantRoster(t, s, "ann", "boss:Co", "sam:Sales", "sue:Sales")
		// A deactivated colleague disappears from every roster.
		gone := testSnapshot()
		gone.Employees[5].Departments = []ExtID{"qa", "dev"}
		gone.Employees[2].Active = new(bool)
		mustImport(t, s, gone)
		wantRoster(t, s, "ann", "boss:Co", "sue:Sales")
		wantRoster(t, s, "quinn", "dan:Dev|QA", "dora:Dev")
		if err := s.SetItem(ctx, ann, Item{Login: "nobody"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown login: got %v, want ErrNotFound", err)
		}
		// A JID on the domain that is no employee's is kept as written
		// (RFC 6121 allows any JID in a roster), and removed again.
		if err := s.SetItem(ctx, ann, Item{JID: "Nobody@example.test", Groups: []string{"Guests"}}); err != nil {
			t.Fatalf("a JID on the domain without an employee: %v", err)
		}
		wantRoster(t, s, "ann", "boss:Co", "nobody@example.test:Guests", "sue:Sales")
		if err := s.RemoveItem(ctx, ann, "nobody@example.test"); err != nil {
			t.Fatal(err)
		}
		wantRoster(t, s, "ann", "boss:Co", "sue:Sales")
		if err := s.SetItem(ctx, ann, Item{JID: "x@y.example", Subscription: "maybe"}); err == nil {
			t.Error("bad subscription accepted")
		}
	})
}

func TestRosterGroupRename(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		mustImport(t, s, testSnapshot())
		last, _ := s.LastEventID(ctx)
		snap := testSnapshot()
		snap.Departments[3].Name = "Quality"
		rep := mustImport(t, s, snap)
		if rep.DepartmentsUpdated != 1 || rep.Updated != 0 {
			t.Fatalf("rename: %s", rep)
		}
		wantRoster(t, s, "dan", "dora:Dev", "quinn:Quality")
		wantEvents(t, eventsSince(t, s, db, last), "roster_add dan>quinn", "roster_add quinn>dan")

		// A new name is pushed to everyone who has the employee.
		last, _ = s.LastEventID(ctx)
		snap.Employees[1].Name = "Anna"
		rep = mustImport(t, s, snap)
		if rep.Updated != 1 {
			t.Fatalf("rename: %s", rep)
		}
		wantEvents(t, eventsSince(t, s, db, last), "user_updated ann", "roster_add boss>ann", "roster_add sam>ann", "roster_add sue>ann")
	})
}

func TestImportDryRun(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		mustImport(t, s, testSnapshot())
		snap := testSnapshot()
		snap.Employees = snap.Employees[1:]
		snap.Employees[0].Name = "Anna"
		snap.Employees[5].Manager = ""
		snap.Employees = append(snap.Employees, SnapshotEmployee{ID: "8", Login: "newbie", Name: "New", Departments: []ExtID{"qa"}, Password: "pw"})
		snap.Departments[0].Head = ""
		last, _ := s.LastEventID(ctx)
		dry, err := s.Import(ctx, snap, true)
		if err != nil {
			t.Fatal(err)
		}
		if dry.Created != 1 || dry.Updated != 2 || dry.Deactivated != 1 || !dry.DryRun {
			t.Fatalf("dry run: %s %v", dry, dry.Lines)
		}
		if _, err := s.UserByLogin(ctx, "newbie"); !errors.Is(err, ErrNotFound) {
			t.Fatal("dry run created a user")
		}
		if u, _ := s.UserByLogin(ctx, "boss"); !u.Active {
			t.Fatal("dry run deactivated a user")
		}
		wantEvents(t, eventsSince(t, s, db, last))
		real, err := s.Import(ctx, snap, false)
		if err != nil {
			t.Fatal(err)
		}
		real.DryRun = true
		if real.String() != dry.String() || !slices.Equal(real.Lines, dry.Lines) {
			t.Fatalf("dry run and real import differ:\n%s %v\n%s %v", dry, dry.Lines, real, real.Lines)
		}
		if _, err := s.CheckPassword(ctx, "newbie", "pw"); err != nil {
			t.Fatalf("new account's password: %v", err)
		}
	})
}

func TestImportPasswordOnlyForNewAccounts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		snap := testSnapshot()
		snap.Employees[1].Password = "one"
		mustImport(t, s, snap)
		snap.Employees[1].Password = "two"
		mustImport(t, s, snap)
		if _, err := s.CheckPassword(ctx, "ann", "one"); err != nil {
			t.Fatalf("re-import changed the password of an existing account: %v", err)
		}
	})
}

func TestImportLoginRename(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		mustImport(t, s, testSnapshot())
		// Two employees swap logins in one import.
		snap := testSnapshot()
		snap.Employees[2].Login, snap.Employees[3].Login = "sue", "sam"
		rep := mustImport(t, s, snap)
		if rep.Updated != 2 {
			t.Fatalf("swap: %s", rep)
		}
		u, _ := s.UserByLogin(ctx, "sam")
		if u.ExtID != "4" {
			t.Fatalf("sam is now ext id %s, want 4", u.ExtID)
		}
		// A login held by an employee missing from the import is refused.
		snap = testSnapshot()
		snap.Employees = snap.Employees[:6]
		mustImport(t, s, snap)
		snap.Employees = append(snap.Employees, SnapshotEmployee{ID: "99", Login: "dora", Name: "Other Dora"})
		_, err := s.Import(ctx, snap, false)
		var ie *ImportError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), "employees[6] (id 99): login:") {
			t.Fatalf("got %v, want a login problem for employees[6]", err)
		}
	})
}

func TestEventsAndPrune(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		mustImport(t, s, testSnapshot())
		if id, err := s.LastEventID(ctx); err != nil || id != 0 {
			t.Fatalf("last event id of an empty table: %d, %v", id, err)
		}
		db.MustExec(db.Rebind(`INSERT INTO events (kind, user_id, created_at) VALUES ('password', 1, ?)`), time.Now().Add(-48*time.Hour).UnixMicro())
		if err := s.SetPassword(ctx, "ann", "x"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPassword(ctx, "sam", "x"); err != nil {
			t.Fatal(err)
		}
		evs, err := s.Events(ctx, 0, 2)
		if err != nil || len(evs) != 2 || evs[0].ID >= evs[1].ID {
			t.Fatalf("events with limit 2: %+v, %v", evs, err)
		}
		last, _ := s.LastEventID(ctx)
		if evs, _ := s.Events(ctx, last, 10); len(evs) != 0 {
			t.Fatalf("events after the last: %+v", evs)
		}
		n, err := s.Prune(ctx)
		if err != nil || n != 1 {
			t.Fatalf("prune: %d, %v; want 1 old event deleted", n, err)
		}
		if got := count(t, db, "events"); got != 2 {
			t.Fatalf("events left: %d, want 2", got)
		}
	})
}

func TestLookups(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		snap := testSnapshot()
		snap.Employees[6].Active = new(bool)
		mustImport(t, s, snap)
		us, err := s.Users(ctx)
		if err != nil || len(us) != 6 {
			t.Fatalf("users: %d, %v; want 6 active", len(us), err)
		}
		u, err := s.UserByExtID(ctx, "5")
		if err != nil || u.Login != "dan" || len(u.Departments) != 2 {
			t.Fatalf("by ext id: %+v, %v", u, err)
		}
		if _, err := s.UserByExtID(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown ext id: %v", err)
		}
		if _, err := s.UserByID(ctx, 12345); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
		if u, err := s.UserByLogin(ctx, "DAN"); err != nil || u.ExtID != "5" {
			t.Fatalf("login is case-insensitive: %+v, %v", u, err)
		}
		ds, err := s.Departments(ctx)
		if err != nil || len(ds) != 4 || ds[0].ExtID != "co" || ds[0].ParentID != 0 || ds[3].ExtID != "qa" {
			t.Fatalf("departments: %+v, %v", ds, err)
		}
	})
}

func TestImportRefusesMassDeactivation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		mustImport(t, s, testSnapshot())
		keep := func(n int) *Snapshot {
			snap := testSnapshot()
			snap.Employees = snap.Employees[:n]
			for i := range snap.Departments {
				snap.Departments[i].Head = ""
			}
			return snap
		}
		// 3 of 7 (43%) go: applied. Then 3 of the 4 left (75%): refused,
		// also as a dry run, and an empty snapshot too.
		if rep := mustImport(t, s, keep(4)); rep.Deactivated != 3 {
			t.Fatalf("4 kept: %s", rep)
		}
		events := count(t, db, "events")
		for _, tc := range []struct {
			name string
			snap *Snapshot
			o    ImportOptions
		}{
			{"75%", keep(1), ImportOptions{}},
			{"75% dry run", keep(1), ImportOptions{DryRun: true}},
			{"empty", &Snapshot{}, ImportOptions{}},
			{"over a lower share", keep(3), ImportOptions{MaxDeactivatedShare: 0.2}},
		} {
			_, err := s.ImportWith(ctx, tc.snap, tc.o)
			if !errors.Is(err, ErrMassDeactivation) || !strings.Contains(err.Error(), "of 4 active employees") {
				t.Errorf("%s: got %v, want ErrMassDeactivation with the figures", tc.name, err)
			}
		}
		if active := activeLogins(t, s); len(active) != 4 || count(t, db, "events") != events {
			t.Fatalf("refused imports changed something: active %v", active)
		}
		rep, err := s.ImportWith(ctx, keep(1), ImportOptions{Force: true})
		if err != nil || rep.Deactivated != 3 {
			t.Fatalf("forced: %v %v", rep, err)
		}
	})
}

// activeLogins lists the active users.
func activeLogins(t *testing.T, s *Store) []string {
	t.Helper()
	us, err := s.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range us {
		out = append(out, u.Login)
	}
	return out
}
