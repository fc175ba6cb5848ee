package upload

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
)

func newStore(t *testing.T, db *sqlx.DB, opts Options) (*Store, *httptest.Server) {
	t.Helper()
	web := httptest.NewServer(nil)
	t.Cleanup(web.Close)
	opts.PublicURL = web.URL
	if opts.DiskReserve == 0 {
		opts.DiskReserve = -1 // tests do not depend on the machine's free disk
	}
	s, err := NewStore(db, t.TempDir(), mam.NewStore(db), opts)
	if err != nil {
		t.Fatal(err)
	}
	web.Config.Handler = s.Handler()
	return s, web
}

func do(t *testing.T, method, url, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.NRGBA{R: uint8(x), G: uint8(y), B: 200, A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// leftovers lists files in the store's directory other than stored files
// and thumbnails (temporary files must not stay behind).
func leftovers(t *testing.T, s *Store) []string {
	t.Helper()
	ents, _ := os.ReadDir(s.dir)
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "part-") {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestSlotRoundTrip(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s, web := newStore(t, db, Options{MaxSize: 1024})

		if _, err := s.Request(ctx, 1, "big.bin", 2048, ""); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("oversized request: got %v, want ErrTooLarge", err)
		}
		if _, err := s.Request(ctx, 1, "", 10, ""); !errors.Is(err, ErrBadName) {
			t.Fatalf("empty name: got %v, want ErrBadName", err)
		}
		for _, name := range []string{"../../etc/passwd", "invalid/filename.dat", `C:\\x.txt`, ".."} {
			if _, err := s.Request(ctx, 1, name, 10, ""); !errors.Is(err, ErrBadName) {
				t.Fatalf("name %q: got %v, want ErrBadName", name, err)
			}
		}
		slot, err := s.Request(ctx, 1, "отчёт 1.txt", 5, "")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(slot.PutURL, "/%D0%BE%D1%82%D1%87%D1%91%D1%82%201.txt") || len(slot.Token) != 64 {
			t.Fatalf("put url %q: want a 64-digit token and the base name, escaped", slot.PutURL)
		}
		if resp, _ := do(t, "GET", slot.GetURL, ""); resp.StatusCode != 404 {
			t.Fatalf("GET before upload: got %d, want 404", resp.StatusCode)
		}
		// Without the slot's Authorization header, or with another, the URL alone does not upload.
		if resp, _ := do(t, "PUT", slot.PutURL, "hello"); resp.StatusCode != 403 {
			t.Fatalf("PUT without Authorization: got %d, want 403", resp.StatusCode)
		}
		if resp, _ := do(t, "PUT", slot.PutURL, "hello", "Authorization", slot.Authorization+"0"); resp.StatusCode != 403 {
			t.Fatalf("PUT with a wrong Authorization: got %d, want 403", resp.StatusCode)
		}
		if resp, _ := do(t, "PUT", slot.PutURL, "toolong", "Authorization", slot.Authorization); resp.StatusCode != 400 {
			t.Fatalf("PUT with wrong size: got %d, want 400", resp.StatusCode)
		}
		// The client's Content-Type does not matter: the type is sniffed.
		if resp, _ := do(t, "PUT", slot.PutURL, "hello", "Content-Type", "image/png", "Authorization", slot.Authorization); resp.StatusCode != 201 {
			t.Fatalf("PUT: got %d, want 201", resp.StatusCode)
		}
		if resp, _ := do(t, "PUT", slot.PutURL, "again", "Authorization", slot.Authorization); resp.StatusCode != 409 {
			t.Fatalf("second PUT: got %d, want 409", resp.StatusCode)
		}
		resp, body := do(t, "GET", slot.GetURL, "")
		if resp.StatusCode != 200 || body != "hello" {
			t.Fatalf("GET: got %d %q, want 200 hello", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("Content-Type: got %q, want the sniffed text/plain; charset=utf-8", ct)
		}
		if resp, _ := do(t, "GET", web.URL+"/upload/"+strings.Repeat("0", 64)+"/x", ""); resp.StatusCode != 404 {
			t.Fatalf("GET unknown: got %d, want 404", resp.StatusCode)
		}
		refs, err := s.FilesIn(ctx, "see "+slot.GetURL+" and "+web.URL+"/upload/"+strings.Repeat("0", 64)+"/x")
		if err != nil || len(refs) != 1 || refs[0].URL != slot.GetURL || refs[0].Size != 5 {
			t.Fatalf("FilesIn: got %+v, %v; want the one stored file", refs, err)
		}
		if l := leftovers(t, s); len(l) != 0 {
			t.Errorf("temporary files left: %v", l)
		}
	})
}

func TestSizeLimitAndQuota(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db, Options{MaxSize: 150, Quota: 200})
		if _, err := s.Save(ctx, 1, "big.bin", strings.NewReader(strings.Repeat("x", 151))); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("151 bytes over a 150-byte limit: got %v, want ErrTooLarge", err)
		}
		if _, err := s.Save(ctx, 1, "empty.txt", strings.NewReader("")); !errors.Is(err, ErrEmpty) {
			t.Fatalf("empty file: got %v, want ErrEmpty", err)
		}
		for i := 0; i < 2; i++ {
			if _, err := s.Save(ctx, 1, "a.txt", strings.NewReader(strings.Repeat("a", 100))); err != nil {
				t.Fatalf("file %d within the quota: %v", i, err)
			}
		}
		if _, err := s.Save(ctx, 1, "b.txt", strings.NewReader("b")); !errors.Is(err, ErrQuota) {
			t.Fatalf("over quota: got %v, want ErrQuota", err)
		}
		if _, err := s.Request(ctx, 1, "c.txt", 10, ""); !errors.Is(err, ErrQuota) {
			t.Fatalf("slot over quota: got %v, want ErrQuota", err)
		}
		// Known only after reading (REST form with the user last): the
		// quota still holds when the file is recorded.
		rec, err := s.Receive("d.txt", strings.NewReader("d"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Commit(ctx, 1, rec); !errors.Is(err, ErrQuota) {
			t.Fatalf("late commit over quota: got %v, want ErrQuota", err)
		}
		if used, _ := s.Used(ctx, 1); used != 200 {
			t.Errorf("used: got %d, want 200", used)
		}
		// Another user has a quota of their own.
		if _, err := s.Save(ctx, 2, "e.txt", strings.NewReader("e")); err != nil {
			t.Fatalf("another user's upload: %v", err)
		}
		if l := leftovers(t, s); len(l) != 0 {
			t.Errorf("temporary files left: %v", l)
		}
	})
}

func TestThumbnailAndSniffing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db, Options{})
		// A PNG named .txt is an image: the bytes decide.
		f, err := s.Save(ctx, 1, "photo.txt", bytes.NewReader(pngBytes(t, 1000, 500)))
		if err != nil {
			t.Fatal(err)
		}
		if f.ContentType != "image/png" || !f.Thumb {
			t.Fatalf("got type %q thumb %v, want image/png with a thumbnail", f.ContentType, f.Thumb)
		}
		th, err := os.Open(filepath.Join(s.dir, f.Token+".thumb"))
		if err != nil {
			t.Fatal(err)
		}
		defer th.Close()
		img, err := jpeg.Decode(th)
		if err != nil {
			t.Fatalf("thumbnail is not a JPEG: %v", err)
		}
		if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 160 {
			t.Errorf("thumbnail size: got %dx%d, want 320x160", b.Dx(), b.Dy())
		}
		// HTML is never served as a page, and gets no thumbnail.
		h, err := s.Save(ctx, 1, "x.png", strings.NewReader("<html><script>alert(1)</script></html>"))
		if err != nil {
			t.Fatal(err)
		}
		if h.ContentType != "text/html; charset=utf-8" || h.Thumb {
			t.Errorf("html: got %q thumb %v", h.ContentType, h.Thumb)
		}
		// An office document sniffs as zip; its extension names it.
		d, err := s.Save(ctx, 1, "report.docx", strings.NewReader("PK\x03\x04"+strings.Repeat("\x00", 100)))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(d.ContentType, "wordprocessingml") {
			t.Errorf("docx: got %q", d.ContentType)
		}
	})
}

func TestDownloadAccess(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db, Options{})
		f, err := s.Save(ctx, 1, "plan.txt", strings.NewReader("the plan"))
		if err != nil {
			t.Fatal(err)
		}
		can := func(viewer int64) bool {
			ok, err := s.CanDownload(ctx, viewer, f)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !can(1) || can(2) || can(3) {
			t.Fatalf("before sharing: uploader %v, others %v %v; want only the uploader", can(1), can(2), can(3))
		}
		if _, _, err := s.Compose(ctx, 2, "", []int64{f.ID}); !errors.Is(err, ErrUnknownFile) {
			t.Fatalf("user 2 sharing user 1's file: got %v, want ErrUnknownFile", err)
		}
		body, files, err := s.Compose(ctx, 1, "look", []int64{f.ID, f.ID})
		if err != nil || body != "look\n"+s.URL(f) || len(files) != 1 {
			t.Fatalf("Compose: got %q %v %v", body, files, err)
		}
		m := &mam.Message{Kind: mam.KindChat, FromID: 1, ToID: 2, Body: body, Files: []int64{f.ID}}
		if _, err := s.arch.Append(ctx, m); err != nil {
			t.Fatal(err)
		}
		if !can(2) || can(3) {
			t.Fatalf("after a message 1→2: recipient %v, stranger %v; want true, false", can(2), can(3))
		}
		// The recipient may pass it on; the stranger still may not.
		if _, _, err := s.Compose(ctx, 2, "", []int64{f.ID}); err != nil {
			t.Fatalf("recipient sharing the file on: %v", err)
		}
		if _, err := s.arch.Retract(ctx, 1, m.ID); err != nil {
			t.Fatal(err)
		}
		if can(2) {
			t.Error("a retracted message still shares its file")
		}
	})
}

func TestCORS(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db, Options{Origins: []string{"https://portal.example.com"}})
		slot, err := s.Request(ctx, 1, "a.txt", 2, "")
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := do(t, "OPTIONS", slot.PutURL, "", "Origin", "https://portal.example.com",
			"Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "content-type")
		h := resp.Header
		if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "https://portal.example.com" ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "PUT") ||
			!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "content-type") {
			t.Fatalf("preflight: got %d %v", resp.StatusCode, h)
		}
		if resp, _ := do(t, "OPTIONS", slot.PutURL, "", "Origin", "https://evil.example.net", "Access-Control-Request-Method", "PUT"); resp.StatusCode != 403 ||
			resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight from another origin: got %d %v", resp.StatusCode, resp.Header)
		}
		resp, _ = do(t, "PUT", slot.PutURL, "hi", "Origin", "https://portal.example.com", "Content-Type", "text/plain", "Authorization", slot.Authorization)
		if resp.StatusCode != 201 || resp.Header.Get("Access-Control-Allow-Origin") != "https://portal.example.com" {
			t.Fatalf("PUT with Origin: got %d %v", resp.StatusCode, resp.Header)
		}
		resp, body := do(t, "GET", slot.GetURL, "", "Origin", "https://portal.example.com")
		if body != "hi" || resp.Header.Get("Access-Control-Allow-Origin") != "https://portal.example.com" {
			t.Fatalf("GET with Origin: got %q %v", body, resp.Header)
		}
	})
}
