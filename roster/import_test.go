package roster

import (
	"context"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

func TestDemoSmoke(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		rep, err := s.Import(ctx, DemoSnapshot(), false)
		if err != nil {
			t.Fatal(err)
		}
		t.Log(rep)
		u, err := s.UserByLogin(ctx, "ivanov")
		if err != nil {
			t.Fatal(err)
		}
		items, err := s.Roster(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			t.Logf("%+v", it)
		}
		if _, err := s.CheckPassword(ctx, "ivanov", "demo"); err != nil {
			t.Fatal(err)
		}
		rep, err = s.Import(ctx, DemoSnapshot(), false)
		if err != nil {
			t.Fatal(err)
		}
		t.Log(rep, rep.Lines)
	})
}

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
