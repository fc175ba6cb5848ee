package bridge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
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

func newPhotoEnv(t *testing.T, db *sqlx.DB) *env {
	t.Helper()
	users := roster.NewStore(db)
	if _, err := users.Import(context.Background(), roster.DemoSnapshot(), false); err != nil {
		t.Fatalf("demo import: %v", err)
	}
	arch := mam.NewStore(db)
	srv := xmppcore.NewServer(db, users, arch, xmppcore.Options{Domain: "localhost"})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	chats := muc.NewStore(db)
	svc := muc.New(chats, srv, arch, users, muc.Options{Domain: "localhost"})
	svc.Register(srv)
	e := newEnv(t, db, XMPP(srv, users, chats, svc, arch, nil))
	e.b.usePhotos(upload.NewPhotos(db, e.users, srv, nil)) // New saw no Photos
	srv.SetPhotoListener(e.b.opts.Photos)
	e.xmpp = srv
	return e
}

// helloAck says hello and returns the ack's data.
func (w *wsConn) helloAck() map[string]any {
	w.t.Helper()
	id := w.send(Frame{"type": "hello", "last_id": 0})
	a := w.expect("ack", id)
	w.expect("synced", "")
	return a["data"].(map[string]any)
}

func (e *env) putPhoto(c *http.Client, origin string, body []byte) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest("PUT", e.srv.URL+"/photo", bytes.NewReader(body))
	req.Header.Set("Content-Type", "image/png")
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

func testPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 400, 300))
	for y := 0; y < 300; y++ {
		for x := 0; x < 400; x++ {
			img.Set(x, y, color.NRGBA{R: uint8(x), G: 120, B: uint8(y), A: 255})
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

func TestPhotosThroughBridge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newPhotoEnv(t, db)
		ivanov := e.user("ivanov")
		ci, cp := e.login("ivanov"), e.login("petrova")
		wp, _, err := e.dial(cp, e.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		wp.helloAck()

		// Refusals change nothing.
		if code, _ := e.putPhoto(ci, "http://evil.example", testPNG(t)); code != http.StatusForbidden {
			t.Fatalf("foreign origin: got %d, want 403", code)
		}
		if code, _ := e.putPhoto(client(), e.srv.URL, testPNG(t)); code != http.StatusUnauthorized {
			t.Fatalf("no session: got %d, want 401", code)
		}
		if code, out := e.putPhoto(ci, e.srv.URL, []byte("<html>not an image</html>")); code != http.StatusUnprocessableEntity {
			t.Fatalf("not an image: got %d %v, want 422", code, out)
		}
		contacts := wp.call(Frame{"type": "contacts"})
		for _, u := range contacts["users"].([]any) {
			if p, ok := u.(map[string]any)["photo"]; ok {
				t.Fatalf("a photo before any upload: %v", p)
			}
		}

		code, out := e.putPhoto(ci, e.srv.URL, testPNG(t))
		url, _ := out["photo"].(string)
		if code != http.StatusOK || !strings.HasPrefix(url, "/avatars/user/") {
			t.Fatalf("upload: got %d %v", code, out)
		}
		ev := wp.expect("photo", "")
		if ev["photo"] != url || int64(ev["user"].(float64)) != ivanov.ID {
			t.Fatalf("photo event: got %v, want user %d photo %s", ev, ivanov.ID, url)
		}
		contacts = wp.call(Frame{"type": "contacts"})
		found := false
		for _, u := range contacts["users"].([]any) {
			m := u.(map[string]any)
			if int64(m["id"].(float64)) == ivanov.ID {
				found = m["photo"] == url
			}
		}
		if !found {
			t.Fatalf("contacts: ivanov's photo is not %s", url)
		}
		resp, err := cp.Get(e.srv.URL + url)
		if err != nil {
			t.Fatal(err)
		}
		img, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
			t.Fatalf("get photo: %d %v", resp.StatusCode, resp.Header)
		}
		if cfg, format, err := image.DecodeConfig(bytes.NewReader(img)); err != nil || format != "jpeg" || cfg.Width != upload.PhotoSide || cfg.Height != upload.PhotoSide {
			t.Fatalf("served photo: %v %s %v", cfg, format, err)
		}
		if resp, _ := client().Get(e.srv.URL + url); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("photo without a session: got %d, want 401", resp.StatusCode)
		}
		if resp, _ := cp.Get(e.srv.URL + upload.PhotoPath(e.user("petrova").ID)); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("no photo: got %d, want 404", resp.StatusCode)
		}

		req, _ := http.NewRequest("DELETE", e.srv.URL+"/photo", nil)
		req.Header.Set("Origin", e.srv.URL)
		if resp, err := ci.Do(req); err != nil || resp.StatusCode != 200 {
			t.Fatalf("delete photo: %v %v", resp, err)
		}
		if ev := wp.expect("photo", ""); ev["photo"] != "" {
			t.Fatalf("photo event after delete: got %v, want an empty photo", ev)
		}
		// A photo a Jabber client sets (a PEP avatar, converted to the vCard
		// by XEP-0398) reaches the browsers too.
		if err := e.xmpp.SetVCardPhoto(context.Background(), "ivanov", "image/png", base64.StdEncoding.EncodeToString(testPNG(t))); err != nil {
			t.Fatal(err)
		}
		if ev := wp.expect("photo", ""); !strings.HasPrefix(ev["photo"].(string), "/avatars/user/") {
			t.Fatalf("photo event after a Jabber client's avatar: got %v", ev)
		}
	})
}

func TestDoNotDisturbSurvivesReconnect(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newPhotoEnv(t, db)
		ivanov := e.user("ivanov")
		ci, cp := e.login("ivanov"), e.login("petrova")
		wp, _, _ := e.dial(cp, e.srv.URL)
		wp.helloAck()
		wi, _, _ := e.dial(ci, e.srv.URL)
		if p := wi.helloAck()["presence"].(map[string]any); p["show"] != "online" {
			t.Fatalf("first hello: presence %v, want online", p)
		}
		isIvanov := func(show string) func(map[string]any) bool {
			return func(f map[string]any) bool {
				return f["type"] == "presence" && int64(f["user"].(float64)) == ivanov.ID && f["show"] == show
			}
		}
		wi.send(Frame{"type": "presence", "show": "dnd", "status": "в фокусе"})
		wp.take(isIvanov("dnd"), "ivanov dnd")
		wi.ws.Close()
		wp.take(isIvanov("offline"), "ivanov offline")

		wi2, _, _ := e.dial(ci, e.srv.URL)
		p := wi2.helloAck()["presence"].(map[string]any)
		if p["show"] != "dnd" || p["status"] != "в фокусе" {
			t.Fatalf("after reconnect: presence %v, want dnd в фокусе", p)
		}
		wp.take(isIvanov("dnd"), "ivanov dnd again")
		// An automatic away is shown but not remembered.
		wi2.send(Frame{"type": "presence", "show": "away", "auto": true})
		wp.take(isIvanov("away"), "ivanov away")
		wi2.ws.Close()
		wp.take(isIvanov("offline"), "ivanov offline")
		wi3, _, _ := e.dial(ci, e.srv.URL)
		if p := wi3.helloAck()["presence"].(map[string]any); p["show"] != "dnd" {
			t.Fatalf("after an automatic away: presence %v, want dnd still", p)
		}
		wi3.send(Frame{"type": "presence", "show": "online"})
		wp.take(isIvanov("online"), "ivanov online")
		wi3.ws.Close()
		wp.take(isIvanov("offline"), "ivanov offline")
		wi4, _, _ := e.dial(ci, e.srv.URL)
		if p := wi4.helloAck()["presence"].(map[string]any); p["show"] != "online" {
			t.Fatalf("after choosing online: presence %v, want online", p)
		}
	})
}
