package upload

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

func TestUploadRoundTrip(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		srv := httptest.NewServer(nil)
		defer srv.Close()
		s, err := NewStore(db, t.TempDir(), Options{MaxSize: 1024, PublicURL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		srv.Config.Handler = s.Handler()

		if _, err := s.Request(ctx, 1, "big.bin", 2048, ""); err != ErrTooLarge {
			t.Fatalf("oversized request: got %v, want ErrTooLarge", err)
		}
		if _, err := s.Request(ctx, 1, "", 10, ""); err != ErrBadName {
			t.Fatalf("empty name: got %v, want ErrBadName", err)
		}
		slot, err := s.Request(ctx, 1, "../../etc/отчёт 1.txt", 5, "text/plain")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(slot.PutURL, "/%D0%BE%D1%82%D1%87%D1%91%D1%82%201.txt") {
			t.Fatalf("put url %q: want the base name, escaped", slot.PutURL)
		}
		do := func(method, url, body, ctype string) (int, string) {
			req, _ := http.NewRequest(method, url, strings.NewReader(body))
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if code, _ := do("GET", slot.GetURL, "", ""); code != 404 {
			t.Fatalf("GET before upload: got %d, want 404", code)
		}
		if code, _ := do("PUT", slot.PutURL, "toolong", "text/plain"); code != 400 {
			t.Fatalf("PUT with wrong size: got %d, want 400", code)
		}
		if code, _ := do("PUT", slot.PutURL, "hello", "image/png"); code != 400 {
			t.Fatalf("PUT with wrong type: got %d, want 400", code)
		}
		if code, _ := do("PUT", slot.PutURL, "hello", "text/plain"); code != 201 {
			t.Fatalf("PUT: got %d, want 201", code)
		}
		if code, _ := do("PUT", slot.PutURL, "again", "text/plain"); code != 409 {
			t.Fatalf("second PUT: got %d, want 409", code)
		}
		if code, body := do("GET", slot.GetURL, "", ""); code != 200 || body != "hello" {
			t.Fatalf("GET: got %d %q, want 200 hello", code, body)
		}
		if code, _ := do("GET", srv.URL+"/upload/"+strings.Repeat("0", 32)+"/x", "", ""); code != 404 {
			t.Fatalf("GET unknown: got %d, want 404", code)
		}
	})
}
