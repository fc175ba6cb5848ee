package roster

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"vestnik/migrations/dbtest"
)

// syntheticCompany builds a company of n employees in depts departments:
// a root, 20 divisions under it and the rest as teams under the divisions.
// Every department has a head; about 5% of the employees are also in a
// second team; a few have an explicit manager.
func syntheticCompany(n, depts int, seed uint64) *Snapshot {
	r := rand.New(rand.NewPCG(seed, 1))
	snap := &Snapshot{}
	for i := 0; i < depts; i++ {
		d := SnapshotDepartment{ID: ExtID(fmt.Sprintf("d%d", i)), Name: fmt.Sprintf("Отдел %d", i)}
		switch {
		case i == 0:
		case i <= 20:
			d.Parent = "d0"
		default:
			d.Parent = ExtID(fmt.Sprintf("d%d", 1+i%20))
		}
		snap.Departments = append(snap.Departments, d)
	}
	for i := 0; i < n; i++ {
		e := SnapshotEmployee{
			ID: ExtID(fmt.Sprint(i + 1)), Login: fmt.Sprintf("user%d", i+1),
			Name: fmt.Sprintf("Сотрудник %d", i+1), Email: fmt.Sprintf("user%d@example.test", i+1),
			Title: "Инженер",
		}
		d := i % depts
		if i < depts {
			snap.Departments[d].Head = e.ID // the first employee of each department heads it
		}
		e.Departments = []ExtID{ExtID(fmt.Sprintf("d%d", d))}
		if r.IntN(20) == 0 {
			if d2 := 21 + r.IntN(depts-21); d2 != d {
				e.Departments = append(e.Departments, ExtID(fmt.Sprintf("d%d", d2)))
			}
		}
		if i >= depts && r.IntN(50) == 0 {
			e.Manager = ExtID(fmt.Sprint(1 + r.IntN(depts)))
		}
		snap.Employees = append(snap.Employees, e)
	}
	return snap
}

// changeOnePercent returns a copy of snap with 1% of the employees changed:
// 0.5% move to another department, 0.3% get a new title, 0.2% leave.
func changeOnePercent(snap *Snapshot, seed uint64) *Snapshot {
	r := rand.New(rand.NewPCG(seed, 2))
	c := &Snapshot{Departments: snap.Departments, Employees: make([]SnapshotEmployee, 0, len(snap.Employees))}
	n := len(snap.Employees)
	changes := map[int]int{}
	for len(changes) < n/100 {
		i := len(snap.Departments) + r.IntN(n-len(snap.Departments)) // not a head
		changes[i] = len(changes)
	}
	for i, e := range snap.Employees {
		k, ok := changes[i]
		switch {
		case !ok:
		case k < n/200:
			e.Departments = []ExtID{ExtID(fmt.Sprintf("d%d", 21+r.IntN(len(snap.Departments)-21)))}
		case k < n/200+n*3/1000:
			e.Title = "Старший инженер"
		default:
			continue // left the company
		}
		c.Employees = append(c.Employees, e)
	}
	return c
}

func BenchmarkImport10k(b *testing.B) {
	snap := syntheticCompany(10000, 500, 1)
	for _, backend := range dbtest.Backends(b) {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				b.StopTimer()
				s := NewStore(dbtest.Open(b, backend))
				b.StartTimer()
				rep, err := s.Import(ctx, snap, false)
				if err != nil {
					b.Fatal(err)
				}
				if rep.Created != 10000 {
					b.Fatalf("created %d", rep.Created)
				}
			}
		})
	}
}

func BenchmarkReimport1pct(b *testing.B) {
	base := syntheticCompany(10000, 500, 1)
	changed := changeOnePercent(base, 7)
	for _, backend := range dbtest.Backends(b) {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			s := NewStore(dbtest.Open(b, backend))
			if _, err := s.Import(ctx, base, false); err != nil {
				b.Fatal(err)
			}
			events := 0
			i := 0
			for b.Loop() {
				next := changed
				if i%2 == 1 {
					next = base
				}
				i++
				rep, err := s.Import(ctx, next, false)
				if err != nil {
					b.Fatal(err)
				}
				if rep.Created+rep.Updated+rep.Deactivated != 100 {
					b.Fatalf("re-import changed %s", rep)
				}
				events += rep.Events
			}
			b.ReportMetric(float64(events)/float64(b.N), "events/op")
		})
	}
}

func BenchmarkRoster(b *testing.B) {
	snap := syntheticCompany(10000, 500, 1)
	for _, backend := range dbtest.Backends(b) {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			s := NewStore(dbtest.Open(b, backend))
			if _, err := s.Import(ctx, snap, false); err != nil {
				b.Fatal(err)
			}
			// Everyone also has a few personal contacts.
			r := rand.New(rand.NewPCG(3, 3))
			seen := map[[2]int64]bool{}
			var rows [][]any
			for len(seen) < 40000 {
				a, c := 1+r.Int64N(10000), 1+r.Int64N(10000)
				if a == c || seen[[2]int64{a, c}] {
					continue
				}
				seen[[2]int64{a, c}], seen[[2]int64{c, a}] = true, true
				rows = append(rows, []any{a, c}, []any{c, a})
			}
			tx := s.db.MustBegin()
			if err := insertRows(ctx, tx, "personal_contacts", []string{"user_id", "contact_id"}, rows); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			// Autovacuum would analyze the bulk-loaded table shortly.
			s.db.MustExec(`ANALYZE personal_contacts`)
			items := 0
			for b.Loop() {
				it, err := s.Roster(ctx, 1+r.Int64N(10000))
				if err != nil {
					b.Fatal(err)
				}
				items += len(it)
			}
			b.ReportMetric(float64(items)/float64(b.N), "items/op")
		})
	}
}

// TestWriteSyntheticOrg writes the synthetic 10k company as JSON to the
// file named by VESTNIK_WRITE_ORG, for measuring a CLI import with
// /usr/bin/time -v (docs/performance.md). It skips otherwise.
func TestWriteSyntheticOrg(t *testing.T) {
	path := os.Getenv("VESTNIK_WRITE_ORG")
	if path == "" {
		t.Skip("VESTNIK_WRITE_ORG not set")
	}
	b, err := json.Marshal(syntheticCompany(10000, 500, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSyntheticCompanyIsValid(t *testing.T) {
	snap := syntheticCompany(2000, 100, 1)
	if err := snap.Validate(); err != nil {
		t.Fatal(err)
	}
	c := changeOnePercent(snap, 7)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(snap.Employees)-len(c.Employees) != 4 {
		t.Fatalf("changeOnePercent dropped %d of 2000, want 4", len(snap.Employees)-len(c.Employees))
	}
}
