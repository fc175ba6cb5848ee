package roster

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

func TestImportPhotoURL(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		snap := testSnapshot()
		snap.Employees[1].Photo = "https://hr.example.test/photos/2.jpg"
		mustImport(t, s, snap)
		ann, err := s.UserByLogin(ctx, "ann")
		if err != nil {
			t.Fatal(err)
		}
		if ann.PhotoURL != "https://hr.example.test/photos/2.jpg" {
			t.Fatalf("photo url: got %q", ann.PhotoURL)
		}
		// A changed URL is an update (and a user_updated event).
		snap = testSnapshot()
		snap.Employees[1].Photo = "https://hr.example.test/photos/2b.jpg"
		rep := mustImport(t, s, snap)
		if rep.Updated != 1 || !strings.Contains(strings.Join(rep.Lines, "\n"), "photo") {
			t.Fatalf("second import: %s", rep)
		}
		ann, _ = s.UserByLogin(ctx, "ann")
		if ann.PhotoURL != "https://hr.example.test/photos/2b.jpg" {
			t.Fatalf("photo url: got %q", ann.PhotoURL)
		}
		// Left out: removed.
		mustImport(t, s, testSnapshot())
		ann, _ = s.UserByLogin(ctx, "ann")
		if ann.PhotoURL != "" {
			t.Fatalf("photo url after removal: got %q", ann.PhotoURL)
		}
	})
}

func TestImportPhotoURLInvalid(t *testing.T) {
	for name, bad := range map[string]string{
		"scheme":   "ftp://hr.example.test/a.jpg",
		"relative": "/photos/a.jpg",
		"file":     "file:///etc/passwd",
		"userinfo": "https://u:p@hr.example.test/a.jpg",
		"long":     "https://hr.example.test/" + strings.Repeat("a", MaxPhotoURLLen),
	} {
		t.Run(name, func(t *testing.T) {
			body := `{"departments":[{"id":"1","name":"Co"}],"employees":[{"id":"1","login":"a","name":"A","departments":["1"],"photo":"` + bad + `"}]}`
			_, err := ParseJSON(strings.NewReader(body))
			var ie *ImportError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), "photo") {
				t.Fatalf("got %v, want an import error naming photo", err)
			}
		})
	}
	csv := "id,login,name,department,photo\n1,a,A,Co,http://hr.example.test/a.png\n"
	snap, err := ParseCSV(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	if snap.Employees[0].Photo != "http://hr.example.test/a.png" {
		t.Fatalf("csv photo: got %q", snap.Employees[0].Photo)
	}
}
