package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
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

// newFilesEnv is newXMPPEnv with the file store wired into the core, the
// chat service and the bridge, as `vestnik serve` wires it.
func newFilesEnv(t *testing.T, db *sqlx.DB) (*env, *muc.Service) {
	t.Helper()
	users := roster.NewStore(db)
	if _, err := users.Import(context.Background(), roster.DemoSnapshot(), false); err != nil {
		t.Fatalf("demo import: %v", err)
	}
	arch := mam.NewStore(db)
	files, err := upload.NewStore(db, t.TempDir(), arch, upload.Options{PublicURL: "http://files.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	srv := xmppcore.NewServer(db, users, arch, xmppcore.Options{Domain: "localhost", Files: files})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	chats := muc.NewStore(db)
	svc := muc.New(chats, srv, arch, users, muc.Options{Domain: "localhost", Files: files})
	svc.Register(srv)
	e := newEnv(t, db, XMPP(srv, users, chats, svc, arch, nil))
	e.b.opts.Files = files
	return e, svc
}

// uploadFile posts a file to /files as the web client does.
func (e *env) uploadFile(c *http.Client, origin, name string, data []byte) (int, map[string]any) {
	e.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	w, _ := mw.CreateFormFile("file", name)
	w.Write(data)
	mw.Close()
	req, _ := http.NewRequest("POST", e.srv.URL+"/files", &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (e *env) getFile(c *http.Client, path string) (int, string, string) {
	e.t.Helper()
	resp, err := c.Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func TestFilesThroughBridge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e, svc := newFilesEnv(t, db)
		ivanov, petrova := e.user("ivanov"), e.user("petrova")
		chat, err := svc.Create(context.Background(), ivanov.ID, muc.NewChat{Title: "Макеты", Color: "GREEN", Type: "closed", Members: []int64{petrova.ID}})
		if err != nil {
			t.Fatal(err)
		}
		ci, cp, ca := e.login("ivanov"), e.login("petrova"), e.login("alice")
		img := image.NewRGBA(image.Rect(0, 0, 640, 480))
		for i := range img.Pix {
			img.Pix[i] = byte(i)
		}
		img.Set(0, 0, color.White)
		var pic bytes.Buffer
		png.Encode(&pic, img)

		// Upload over HTTP with the session cookie only.
		if st, _ := e.uploadFile(client(), e.srv.URL, "a.png", pic.Bytes()); st != 401 {
			t.Fatalf("upload without a session: got %d, want 401", st)
		}
		if st, _ := e.uploadFile(ci, "https://evil.example.net", "a.png", pic.Bytes()); st != 403 {
			t.Fatalf("cross-site upload: got %d, want 403", st)
		}
		st, out := e.uploadFile(ci, e.srv.URL, "макет.png", pic.Bytes())
		if st != 201 {
			t.Fatalf("upload: got %d %v", st, out)
		}
		f := out["file"].(map[string]any)
		fid := int64(f["id"].(float64))
		if f["name"] != "макет.png" || f["content_type"] != "image/png" || f["url"] != fmt.Sprintf("/files/%d", fid) ||
			f["thumb_url"] != fmt.Sprintf("/files/%d/thumb", fid) || int(f["size"].(float64)) != pic.Len() {
			t.Fatalf("uploaded file: %v", f)
		}

		wi, _, _ := e.dial(ci, e.srv.URL)
		wi.hello(0)
		wp, _, _ := e.dial(cp, e.srv.URL)
		wp.hello(0)
		wa, _, _ := e.dial(ca, e.srv.URL)
		wa.hello(0)
		// Someone else's file cannot be sent.
		id := wa.send(Frame{"type": "send", "to": Frame{"user": ivanov.ID}, "files": []int64{fid}})
		if fr := wa.expect("error", id); fr["code"] != "bad_files" {
			t.Fatalf("sending a foreign file: got %v", fr)
		}
		d := wi.call(Frame{"type": "send", "to": Frame{"chat": chat.ID}, "body": "новый макет", "files": []int64{fid}})
		sent := d["message"].(map[string]any)
		if fs, _ := sent["files"].([]any); len(fs) != 1 || fs[0].(map[string]any)["id"] != float64(fid) {
			t.Fatalf("ack without the file: %v", sent)
		}
		// The other member's browser gets the message with its file.
		m := wp.take(func(fr map[string]any) bool {
			m, ok := fr["message"].(map[string]any)
			return fr["type"] == "message" && ok && m["id"] == sent["id"]
		}, "the chat message with a file")["message"].(map[string]any)
		fs, _ := m["files"].([]any)
		if len(fs) != 1 || fs[0].(map[string]any)["url"] != fmt.Sprintf("/files/%d", fid) || fs[0].(map[string]any)["name"] != "макет.png" {
			t.Fatalf("live chat message files: %v", m)
		}
		// Download: members yes, the outsider no.
		if st, ct, body := e.getFile(cp, fmt.Sprintf("/files/%d", fid)); st != 200 || ct != "image/png" || body != pic.String() {
			t.Fatalf("member download: got %d %s (%d bytes)", st, ct, len(body))
		}
		if st, ct, _ := e.getFile(cp, fmt.Sprintf("/files/%d/thumb", fid)); st != 200 || ct != "image/jpeg" {
			t.Fatalf("member thumbnail: got %d %s", st, ct)
		}
		if st, _, _ := e.getFile(ca, fmt.Sprintf("/files/%d", fid)); st != 403 {
			t.Fatalf("outsider download: got %d, want 403", st)
		}
		if st, _, _ := e.getFile(client(), fmt.Sprintf("/files/%d", fid)); st != 401 {
			t.Fatalf("download without a session: got %d, want 401", st)
		}
		// History carries the files too.
		h := wp.call(Frame{"type": "history", "with": Frame{"chat": chat.ID}})
		msgs := h["messages"].([]any)
		last := msgs[len(msgs)-1].(map[string]any)
		if fs, _ := last["files"].([]any); len(fs) != 1 || fs[0].(map[string]any)["thumb_url"] != fmt.Sprintf("/files/%d/thumb", fid) {
			t.Fatalf("history without the file: %v", last)
		}

		// A personal message with a file alone (no text).
		st, out = e.uploadFile(cp, e.srv.URL, "notes.txt", []byte("заметки"))
		if st != 201 {
			t.Fatalf("second upload: %d %v", st, out)
		}
		fid2 := int64(out["file"].(map[string]any)["id"].(float64))
		wp.call(Frame{"type": "send", "to": Frame{"user": ivanov.ID}, "files": []int64{fid2}})
		pm := wi.take(func(fr map[string]any) bool {
			m, ok := fr["message"].(map[string]any)
			return fr["type"] == "message" && ok && m["kind"] == "chat" && m["from"] == float64(petrova.ID)
		}, "the personal message with a file")["message"].(map[string]any)
		if fs, _ := pm["files"].([]any); len(fs) != 1 || fs[0].(map[string]any)["id"] != float64(fid2) || fs[0].(map[string]any)["thumb_url"] != nil {
			t.Fatalf("personal message files: %v", pm)
		}
		if st, _, body := e.getFile(ci, fmt.Sprintf("/files/%d", fid2)); st != 200 || body != "заметки" {
			t.Fatalf("recipient download: %d %q", st, body)
		}
		if st, _, _ := e.getFile(ca, fmt.Sprintf("/files/%d", fid2)); st != 403 {
			t.Fatalf("outsider download of a personal file: %d", st)
		}
	})
}
