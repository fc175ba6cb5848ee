package upload

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
)

// elf is the start of an executable: it sniffs as application/octet-stream.
var elf = "\x7fELF\x02\x01\x01\x00" + strings.Repeat("\x00", 56)

func TestTypeAllowed(t *testing.T) {
	s := &Store{opts: Options{AllowedTypes: []string{"text/plain", "image/*"}}}
	for ct, want := range map[string]bool{
		"text/plain": true, "text/plain; charset=utf-8": true, "TEXT/Plain": true, "image/png": true, "image/svg+xml": true,
		"text/html": false, "application/x-executable": false, "application/octet-stream": false, "": false, "imagefoo/png": false,
	} {
		if got := s.TypeAllowed(ct); got != want {
			t.Errorf("%q: got %v, want %v", ct, got, want)
		}
	}
	if !(&Store{}).TypeAllowed("application/x-executable") {
		t.Error("no list: every type is allowed")
	}
	for _, bad := range []string{"text", "*/plain", "text/plain; charset=utf-8", "/x", "image/"} {
		if _, err := NewStore(nil, t.TempDir(), nil, Options{AllowedTypes: []string{bad}}); err == nil {
			t.Errorf("allowed type %q: no error", bad)
		}
	}
}

// TestAllowedTypesEveryDoor: with text/plain and image/* allowed, a slot
// for a declared executable is refused; a slot declared text/plain whose
// bytes are an executable is refused at the PUT (415, nothing stored, the
// slot free again); the REST and web client path (Save) refuses the same
// bytes; text and images pass.
func TestAllowedTypesEveryDoor(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db, Options{MaxSize: 1 << 20, AllowedTypes: []string{"text/plain", "image/*"}})
		if _, err := s.Request(ctx, 1, "evil.exe", 1000, "application/x-executable"); !errors.Is(err, ErrType) {
			t.Fatalf("declared executable: got %v, want ErrType", err)
		}
		slot, err := s.Request(ctx, 1, "notes.txt", int64(len(elf)), "text/plain")
		if err != nil {
			t.Fatal(err)
		}
		if resp, body := do(t, "PUT", slot.PutURL, elf, "Authorization", slot.Authorization); resp.StatusCode != 415 || !strings.Contains(body, "File type not allowed") {
			t.Fatalf("PUT of an executable as text: got %d %q, want 415", resp.StatusCode, body)
		}
		if used, _ := s.Used(ctx, 1); used != 0 {
			t.Fatalf("a refused PUT stored %d bytes", used)
		}
		text := strings.Repeat("a", len(elf))
		if resp, _ := do(t, "PUT", slot.PutURL, text, "Authorization", slot.Authorization); resp.StatusCode != 201 {
			t.Fatalf("PUT of text after the refusal: got %d, want 201 (the slot is free again)", resp.StatusCode)
		}
		if _, err := s.Save(ctx, 1, "notes.txt", strings.NewReader(elf)); !errors.Is(err, ErrType) {
			t.Fatalf("Save of an executable: got %v, want ErrType", err)
		}
		if _, err := s.Save(ctx, 1, "notes.txt", strings.NewReader("plain words")); err != nil {
			t.Fatalf("Save of text: %v", err)
		}
		if _, err := s.Save(ctx, 1, "p.png", strings.NewReader(string(pngBytes(t, 4, 4)))); err != nil {
			t.Fatalf("Save of a PNG: %v", err)
		}
		if l := leftovers(t, s); len(l) != 0 {
			t.Errorf("temporary files left: %v", l)
		}
	})
}

// TestAllTypesByDefault: without a list an executable is stored as before.
func TestAllTypesByDefault(t *testing.T) {
	db := dbtest.Open(t, migrations.SQLite)
	s, err := NewStore(db, t.TempDir(), mam.NewStore(db), Options{DiskReserve: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(context.Background(), 1, "tool", strings.NewReader(elf)); err != nil {
		t.Fatalf("Save without a list: %v", err)
	}
}
