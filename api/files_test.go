package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/upload"
)

// newFilesEnv is newEnv with a file store wired into the core, the chat
// service and the API, as `vestnik serve` wires it.
func newFilesEnv(t *testing.T, db *sqlx.DB, opts upload.Options) (*env, *upload.Store) {
	t.Helper()
	ctx := context.Background()
	users := roster.NewStore(db)
	users.SetDomain("example.test")
	snap := roster.DemoSnapshot()
	for i := range snap.Employees {
		snap.Employees[i].Password = ""
	}
	if _, err := users.Import(ctx, snap, false); err != nil {
		t.Fatal(err)
	}
	token, err := users.CreateToken(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	archive := mam.NewStore(db)
	web := httptest.NewServer(nil)
	t.Cleanup(web.Close)
	opts.PublicURL = web.URL
	files, err := upload.NewStore(db, t.TempDir(), archive, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := xmppcore.NewServer(db, users, archive, xmppcore.Options{Domain: "example.test", AuthFailureDelay: -1, Files: files})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	chats := muc.New(muc.NewStore(db), srv, archive, users, muc.Options{Domain: "example.test", Files: files})
	chats.Register(srv)
	a := New(users, chats, srv, Options{Archive: archive, Files: files})
	mux := http.NewServeMux()
	mux.Handle(Prefix+"/", a.Handler())
	mux.Handle("/upload/", files.Handler())
	web.Config.Handler = mux
	return &env{t: t, db: db, srv: web, api: a, chats: chats, xmpp: srv, users: users, token: token}, files
}

// upload posts a multipart form; fields are name/value pairs, the file
// goes where "file" stands.
func (e *env) upload(filename string, content []byte, fields ...string) (int, map[string]any) {
	e.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i] == "file" {
			w, _ := mw.CreateFormFile("file", filename)
			w.Write(content)
			continue
		}
		mw.WriteField(fields[i], fields[i+1])
	}
	mw.Close()
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/files", &b)
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode >= 500 {
		e.t.Fatalf("upload: got %d %v", resp.StatusCode, out)
	}
	return resp.StatusCode, out
}

func (e *env) download(path string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	if strings.HasPrefix(path, Prefix) {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestFiles(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e, files := newFilesEnv(t, db, upload.Options{MaxSize: 1000, Quota: 1500})
		content := []byte("квартальный отчёт\n" + strings.Repeat("данные ", 20))

		// Uploader named after the file: the quota is checked when recorded.
		st, out := e.upload("отчёт.txt", content, "file", "", "from_user_id", "2")
		if st != 201 {
			t.Fatalf("upload: got %d %v", st, out)
		}
		id := int64(out["id"].(float64))
		url, _ := out["url"].(string)
		if out["name"] != "отчёт.txt" || int(out["size"].(float64)) != len(content) ||
			out["content_type"] != "text/plain; charset=utf-8" || !strings.Contains(url, "/upload/") {
			t.Fatalf("upload answer: %v", out)
		}
		// The capability URL serves the bytes without credentials.
		if st, body := e.download(strings.TrimPrefix(url, e.srv.URL)); st != 200 || body != string(content) {
			t.Fatalf("capability URL: got %d %q", st, body)
		}

		// A closed chat of 1 and 2; 5 is not a member.
		chat := e.createChat(`{"title":"files","owner_id":"1","type":"closed","users":["2"]}`)
		member := e.attach(t, "1")
		if err := e.chats.Follow(context.Background(), uid(t, db, "1"), "director@example.test/web"); err != nil {
			t.Fatal(err)
		}
		st, out = e.do("POST", fmt.Sprintf("/api/v1/chats/%d/messages", chat), fmt.Sprintf(`{"from_user_id":"2","files":[%d]}`, id))
		if st != 201 {
			t.Fatalf("post with a file: got %d %v", st, out)
		}
		msgID := int64(out["id"].(float64))
		// XMPP clients get the URL as the body and an out-of-band element.
		live := member.expect(t, "<message", "<body>"+url+"</body>", "<x xmlns='jabber:x:oob'><url>"+url+"</url></x>")
		if !strings.Contains(live, "<file xmlns='urn:vestnik:file:0' id='"+fmt.Sprint(id)+"'") {
			t.Errorf("live chat message without the file element: %s", live)
		}
		m, err := mam.NewStore(db).Get(context.Background(), msgID)
		if err != nil || m.Body != url || !strings.Contains(m.Payload, "jabber:x:oob") {
			t.Fatalf("archived %+v %v", m, err)
		}

		path := fmt.Sprintf("/api/v1/files/%d", id)
		for _, tc := range []struct {
			user string
			want int
		}{{"2", 200}, {"1", 200}, {"5", 403}} {
			st, body := e.download(path + "?user_id=" + tc.user)
			if st != tc.want || (st == 200 && body != string(content)) {
				t.Errorf("download as %s: got %d, want %d", tc.user, st, tc.want)
			}
		}
		if st, _ := e.download(fmt.Sprintf("/api/v1/files/%d/thumb?user_id=2", id)); st != 404 {
			t.Errorf("thumbnail of a text file: got %d, want 404", st)
		}

		// A personal message with text and a file: body = text, then URL.
		st, out = e.upload("b.bin", []byte{0, 1, 2, 3}, "from_user_id", "3", "file", "")
		if st != 201 {
			t.Fatalf("second upload: %d %v", st, out)
		}
		id2 := int64(out["id"].(float64))
		url2 := out["url"].(string)
		st, out = e.do("POST", "/api/v1/messages", fmt.Sprintf(`{"from_user_id":"3","to_user_id":"4","message":"вот","files":[%d]}`, id2))
		if st != 201 {
			t.Fatalf("personal with a file: %d %v", st, out)
		}
		if m, _ := mam.NewStore(db).Get(context.Background(), int64(out["id"].(float64))); m.Body != "вот\n"+url2 {
			t.Errorf("personal body: got %q", m.Body)
		}
		if st, _ := e.download(fmt.Sprintf("/api/v1/files/%d?user_id=4", id2)); st != 200 {
			t.Errorf("recipient download: got %d", st)
		}
		if st, _ := e.download(fmt.Sprintf("/api/v1/files/%d?user_id=2", id2)); st != 403 {
			t.Errorf("stranger download: got %d, want 403", st)
		}

		before := count(t, db, `SELECT COUNT(*) FROM messages`)
		chatPath := fmt.Sprintf("/api/v1/chats/%d/messages", chat)
		for _, tc := range []struct {
			name, path, body string
			status           int
			code, field      string
		}{
			{"unknown file", chatPath, `{"from_user_id":"2","files":[424242]}`, 422, "unknown_file", "files"},
			{"foreign file", chatPath, fmt.Sprintf(`{"from_user_id":"2","files":[%d]}`, id2), 422, "unknown_file", "files"},
			{"files not ids", chatPath, `{"from_user_id":"2","files":["x"]}`, 422, "invalid_type", "files"},
			{"system without author", chatPath, fmt.Sprintf(`{"system":true,"files":[%d]}`, id), 422, "missing_user", "files"},
			{"foreign personal", "/api/v1/messages", fmt.Sprintf(`{"from_user_id":"5","to_user_id":"4","files":[%d]}`, id), 422, "unknown_file", "files"},
			{"non-member posts a file", chatPath, fmt.Sprintf(`{"from_user_id":"3","files":[%d]}`, id2), 403, "forbidden", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, out := e.do("POST", tc.path, tc.body)
				expectError(t, st, out, tc.status, tc.code, tc.field)
			})
		}
		if after := count(t, db, `SELECT COUNT(*) FROM messages`); after != before {
			t.Errorf("refused messages were stored: %d → %d", before, after)
		}

		// Limits: over the size limit, over the quota, no file, no user.
		st, out = e.upload("big.bin", bytes.Repeat([]byte("x"), 1001), "from_user_id", "2", "file", "")
		expectError(t, st, out, 413, "file_too_large", "")
		st, out = e.upload("big.bin", bytes.Repeat([]byte("x"), 1001), "file", "", "from_user_id", "2")
		expectError(t, st, out, 413, "file_too_large", "")
		if st, out = e.upload("c.bin", bytes.Repeat([]byte("c"), 900), "from_user_id", "2", "file", ""); st != 201 {
			t.Fatalf("within the quota: %d %v", st, out)
		}
		st, out = e.upload("d.bin", bytes.Repeat([]byte("d"), 600), "from_user_id", "2", "file", "")
		expectError(t, st, out, 413, "quota_exceeded", "")
		st, out = e.upload("d.bin", bytes.Repeat([]byte("d"), 600), "file", "", "from_user_id", "2")
		expectError(t, st, out, 413, "quota_exceeded", "")
		st, out = e.upload("", nil, "from_user_id", "2")
		expectError(t, st, out, 422, "missing_file", "file")
		st, out = e.upload("e.txt", []byte("e"), "file", "")
		expectError(t, st, out, 422, "missing_user", "from_user_id")
		st, out = e.do("POST", "/api/v1/files", `{"file":"x"}`)
		expectError(t, st, out, 400, "malformed_body", "")
		if used, _ := files.Used(context.Background(), uid(t, db, "2")); used != int64(len(content))+900 {
			t.Errorf("quota use: got %d, want %d", used, len(content)+900)
		}
	})
}

// TestLargeRESTUploadFlatMemory streams 100 MB through POST /files as
// multipart/form-data: the server's heap must not grow with the file.
func TestLargeRESTUploadFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100 MB")
	}
	const size = 100 << 20
	e, _ := newFilesEnv(t, dbtest.Open(t, "sqlite"), upload.Options{MaxSize: size})
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		mw.WriteField("from_user_id", "2")
		w, _ := mw.CreateFormFile("file", "big.bin")
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
		for n := 0; n < size; n += len(chunk) {
			w.Write(chunk)
		}
		mw.Close()
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/files", pr)
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if resp.StatusCode != 201 || int64(out["size"].(float64)) != size {
		t.Fatalf("upload: got %d %v", resp.StatusCode, out)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("100 MB multipart POST in %v (%.0f MB/s); allocated %d KiB in all (client and server)",
		elapsed.Round(time.Millisecond), float64(size)/(1<<20)/elapsed.Seconds(), allocated>>10)
	if allocated > 32<<20 {
		t.Errorf("%d MiB allocated during a 100 MiB upload: something copies it into memory", allocated>>20)
	}
}
