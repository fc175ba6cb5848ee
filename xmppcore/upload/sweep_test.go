package upload

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
)

// Files live while a live message carries them: one never sent, one whose
// message was retracted and one whose message retention removed are
// deleted (row, bytes, thumbnail) once older than OrphanAfter; a sent one
// stays.
func TestSweep(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db, Options{OrphanAfter: time.Hour})
		save := func(name string, body []byte) *File {
			t.Helper()
			f, err := s.Save(ctx, 1, name, strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
		send := func(f *File) *mam.Message {
			t.Helper()
			m := &mam.Message{Kind: mam.KindChat, FromID: 1, ToID: 2, Body: s.URL(f), Files: []int64{f.ID}}
			if _, err := s.arch.Append(ctx, m); err != nil {
				t.Fatal(err)
			}
			return m
		}
		unsent := save("unsent.txt", []byte("never sent"))
		kept := save("kept.png", pngBytes(t, 40, 30))
		retracted := save("retracted.txt", []byte("taken back"))
		old := save("old.txt", []byte("from long ago"))
		send(kept)
		mr := send(retracted)
		mo := send(old)
		if _, err := s.arch.Retract(ctx, 1, mr.ID); err != nil {
			t.Fatal(err)
		}
		// Retention removes the old message (everything before "now").
		db.MustExec(db.Rebind(`UPDATE messages SET created_at = ? WHERE id = ?`), time.Now().Add(-48*time.Hour).UnixMicro(), mo.ID)
		if _, err := s.arch.DeleteOlderThan(ctx, time.Now().Add(-24*time.Hour), 100); err != nil {
			t.Fatal(err)
		}

		// Young files are left alone whatever carries them.
		if n, err := s.Sweep(ctx, time.Now()); err != nil || n != 0 {
			t.Fatalf("sweep of young files: %d %v, want 0", n, err)
		}
		n, err := s.Sweep(ctx, time.Now().Add(2*time.Hour))
		if err != nil || n != 3 {
			t.Fatalf("sweep: %d %v, want 3", n, err)
		}
		for _, f := range []*File{unsent, retracted, old} {
			if _, err := s.Get(ctx, f.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: record %v, want gone", f.Name, err)
			}
			if _, err := os.Stat(filepath.Join(s.dir, f.Token)); !os.IsNotExist(err) {
				t.Errorf("%s: bytes still on disk (%v)", f.Name, err)
			}
		}
		if _, err := s.Get(ctx, kept.ID); err != nil {
			t.Errorf("a sent file was deleted: %v", err)
		}
		for _, p := range []string{kept.Token, kept.Token + ".thumb"} {
			if _, err := os.Stat(filepath.Join(s.dir, p)); err != nil {
				t.Errorf("kept file: %v", err)
			}
		}
		if used, _ := s.Used(ctx, 1); used != kept.Size {
			t.Errorf("quota use after the sweep: %d, want %d", used, kept.Size)
		}
	})
}

// The total cap and the disk reserve refuse files with ErrFull, leaving
// nothing behind; the user's quota stays ErrQuota.
func TestStorageFull(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db, Options{Total: 100, Quota: 80})
		if _, err := s.Save(ctx, 1, "a.txt", strings.NewReader(strings.Repeat("a", 60))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Save(ctx, 1, "b.txt", strings.NewReader(strings.Repeat("b", 30))); !errors.Is(err, ErrQuota) {
			t.Fatalf("over the user's quota: got %v, want ErrQuota", err)
		}
		if _, err := s.Save(ctx, 2, "c.txt", strings.NewReader(strings.Repeat("c", 50))); !errors.Is(err, ErrFull) {
			t.Fatalf("over the total: got %v, want ErrFull", err)
		}
		if _, err := s.Request(ctx, 2, "d.txt", 50, ""); !errors.Is(err, ErrFull) {
			t.Fatalf("slot over the total: got %v, want ErrFull", err)
		}
		if _, err := s.Save(ctx, 2, "e.txt", strings.NewReader(strings.Repeat("e", 40))); err != nil {
			t.Fatalf("within the total: %v", err)
		}
		free := diskFree(s.dir)
		if free < 0 {
			t.Skip("free disk space is unknown here")
		}
		tight, _ := newStore(t, db, Options{DiskReserve: free + 1<<40})
		if _, err := tight.Save(ctx, 3, "f.txt", strings.NewReader("f")); !errors.Is(err, ErrFull) {
			t.Fatalf("under the disk reserve: got %v, want ErrFull", err)
		}
		if l := leftovers(t, tight); len(l) != 0 {
			t.Errorf("left behind: %v", l)
		}
		if ents, _ := os.ReadDir(tight.dir); len(ents) != 0 {
			t.Errorf("a refused file stayed on disk: %v", ents)
		}
	})
}
