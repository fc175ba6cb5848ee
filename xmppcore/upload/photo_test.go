package upload_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/upload"
)

func photoPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.NRGBA{R: uint8(x), G: uint8(y), B: 90, A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// jpegSide decodes a served photo and returns its size.
func jpegSize(t *testing.T, b []byte) (int, int) {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("served photo is not a JPEG: %v", err)
	}
	return img.Bounds().Dx(), img.Bounds().Dy()
}

func TestOwnPhoto(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		users := roster.NewStore(db)
		users.SetDomain("example.test")
		if _, err := users.Import(ctx, roster.DemoSnapshot(), false); err != nil {
			t.Fatal(err)
		}
		srv := xmppcore.NewServer(db, users, mam.NewStore(db), xmppcore.Options{Domain: "example.test"})
		t.Cleanup(func() { srv.Shutdown(context.Background()) })
		photos := upload.NewPhotos(db, users, srv, nil)
		srv.SetPhotoListener(photos)
		changed := make(chan []string, 1) // the versions OnChange was told, in order
		changed <- nil
		photos.OnChange(func(_ int64, v string) { c := <-changed; changed <- append(c, v) })
		alice, _ := users.UserByLogin(ctx, "alice")

		if _, err := photos.Get(ctx, alice.ID); !errors.Is(err, upload.ErrNoPhoto) {
			t.Fatalf("no photo yet: got %v, want ErrNoPhoto", err)
		}
		// Refused: not an image, too large; nothing changes.
		if _, err := photos.Set(ctx, alice.ID, strings.NewReader("<svg xmlns='http://www.w3.org/2000/svg'/>")); !errors.Is(err, upload.ErrNotImage) {
			t.Fatalf("svg: got %v, want ErrNotImage", err)
		}
		if _, err := photos.Set(ctx, alice.ID, bytes.NewReader(make([]byte, upload.MaxPhotoSize+1))); !errors.Is(err, upload.ErrTooLarge) {
			t.Fatalf("huge: got %v, want ErrTooLarge", err)
		}
		if v, _ := photos.Versions(ctx, activeUsers(t, users)); len(v) != 0 {
			t.Fatalf("versions after refusals: got %v, want none", v)
		}

		ver, err := photos.Set(ctx, alice.ID, bytes.NewReader(photoPNG(t, 800, 600)))
		if err != nil {
			t.Fatal(err)
		}
		p, err := photos.Get(ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		if w, h := jpegSize(t, p.Image); w != upload.PhotoSide || h != upload.PhotoSide || p.Version != ver {
			t.Fatalf("photo: got %dx%d version %q, want %dx%d version %q", w, h, p.Version, upload.PhotoSide, upload.PhotoSide, ver)
		}
		if v, _ := photos.Versions(ctx, activeUsers(t, users)); len(v) != 1 || v[alice.ID] != ver {
			t.Fatalf("versions: got %v, want alice → %s", v, ver)
		}

		// Jabber clients see it as the vCard PHOTO.
		out := make(sink, 16)
		sess, err := srv.Attach(ctx, alice.ID, "test", out)
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		els, _ := xmppcore.ParseFragment(`<iq xmlns='jabber:client' type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>`)
		if err := sess.Handle(ctx, els[0]); err != nil {
			t.Fatal(err)
		}
		res := out.next(t)
		ph := res.Child("vcard-temp", "vCard").Child("", "PHOTO")
		if ph == nil || ph.ChildText("", "TYPE") != "image/jpeg" {
			t.Fatalf("vCard: got %s, want a JPEG PHOTO", res)
		}
		bin, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(ph.ChildText("", "BINVAL")), ""))
		if err != nil || !bytes.Equal(bin, p.Image) {
			t.Fatalf("vCard PHOTO is not the served photo (err %v)", err)
		}

		if err := photos.Remove(ctx, alice.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := photos.Get(ctx, alice.ID); !errors.Is(err, upload.ErrNoPhoto) {
			t.Fatalf("after remove: got %v, want ErrNoPhoto", err)
		}
		if changes := <-changed; len(changes) != 2 || changes[0] != ver || changes[1] != "" {
			t.Fatalf("changes told: got %q, want %q then none", changes, ver)
		}
		changed <- nil

		// A Jabber client's vCard PHOTO becomes the photo here too (a
		// small one is kept small); an unreadable one changes nothing.
		small := base64.StdEncoding.EncodeToString(photoPNG(t, 96, 96))
		els, _ = xmppcore.ParseFragment(`<iq xmlns='jabber:client' type='set' id='v2'><vCard xmlns='vcard-temp'><NICKNAME>Алиса</NICKNAME><PHOTO><TYPE>image/png</TYPE><BINVAL>` + small + `</BINVAL></PHOTO></vCard></iq>`)
		if err := sess.Handle(ctx, els[0]); err != nil {
			t.Fatal(err)
		}
		if res := out.next(t); res.AttrValue("type") != "result" {
			t.Fatalf("vCard set: got %s", res)
		}
		p, err = photos.Get(ctx, alice.ID)
		if err != nil {
			t.Fatalf("after a vCard PHOTO: %v", err)
		}
		if w, h := jpegSize(t, p.Image); w != 96 || h != 96 {
			t.Fatalf("photo from the vCard: got %dx%d, want 96x96", w, h)
		}
		if changes := <-changed; len(changes) != 1 || changes[0] != p.Version {
			t.Fatalf("changes told after the vCard: got %q, want %q", changes, p.Version)
		}
		changed <- nil
		els, _ = xmppcore.ParseFragment(`<iq xmlns='jabber:client' type='set' id='v3'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>bm90IGFuIGltYWdl</BINVAL></PHOTO></vCard></iq>`)
		sess.Handle(ctx, els[0])
		out.next(t)
		if p2, err := photos.Get(ctx, alice.ID); err != nil || p2.Version != p.Version {
			t.Fatalf("after an unreadable vCard PHOTO: got %v %v, want the photo kept", p2, err)
		}
	})
}

func TestHRPhoto(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		var hits atomic.Int32
		img := photoPNG(t, 300, 400)
		hr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			switch r.URL.Path {
			case "/ok.png":
				w.Write(img)
			case "/text":
				w.Write([]byte("not an image"))
			default:
				http.NotFound(w, r)
			}
		}))
		defer hr.Close()
		users := roster.NewStore(db)
		snap := roster.DemoSnapshot()
		for i := range snap.Employees {
			switch snap.Employees[i].Login {
			case "alice":
				snap.Employees[i].Photo = hr.URL + "/ok.png"
			case "bob":
				snap.Employees[i].Photo = hr.URL + "/text"
			}
		}
		if _, err := users.Import(ctx, snap, false); err != nil {
			t.Fatal(err)
		}
		photos := upload.NewPhotos(db, users, nil, nil)
		alice, _ := users.UserByLogin(ctx, "alice")
		bob, _ := users.UserByLogin(ctx, "bob")
		v, err := photos.Versions(ctx, activeUsers(t, users))
		if err != nil {
			t.Fatal(err)
		}
		if v[alice.ID] == "" || v[bob.ID] == "" || len(v) != 2 {
			t.Fatalf("versions before any fetch: got %v, want alice and bob", v)
		}
		p, err := photos.Get(ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		if w, h := jpegSize(t, p.Image); w != upload.PhotoSide || h != upload.PhotoSide {
			t.Fatalf("hr photo: got %dx%d", w, h)
		}
		if _, err := photos.Get(ctx, alice.ID); err != nil || hits.Load() != 1 {
			t.Fatalf("second get: err %v, %d fetches; want the cached photo, 1 fetch", err, hits.Load())
		}
		// Not an image: no photo, remembered (no second fetch).
		if _, err := photos.Get(ctx, bob.ID); !errors.Is(err, upload.ErrNoPhoto) {
			t.Fatalf("bad hr photo: got %v, want ErrNoPhoto", err)
		}
		if _, err := photos.Get(ctx, bob.ID); !errors.Is(err, upload.ErrNoPhoto) || hits.Load() != 2 {
			t.Fatalf("bad hr photo again: got %v with %d fetches, want ErrNoPhoto and 2", err, hits.Load())
		}
		v, _ = photos.Versions(ctx, activeUsers(t, users))
		if v[alice.ID] != p.Version || v[bob.ID] != "" {
			t.Fatalf("versions after fetches: got %v", v)
		}
		// The own photo wins over the HR one.
		own, err := photos.Set(ctx, alice.ID, bytes.NewReader(photoPNG(t, 50, 50)))
		if err != nil {
			t.Fatal(err)
		}
		if p2, _ := photos.Get(ctx, alice.ID); p2 == nil || p2.Version != own || own == p.Version {
			t.Fatalf("own over hr: got %+v, want version %s", p2, own)
		}
		if w, _ := jpegSize(t, mustGet(t, photos, alice.ID)); w != 50 {
			t.Fatalf("a small photo is not enlarged: got width %d, want 50", w)
		}
		if err := photos.Remove(ctx, alice.ID); err != nil {
			t.Fatal(err)
		}
		if p3, _ := photos.Get(ctx, alice.ID); p3 == nil || p3.Version != p.Version {
			t.Fatalf("after removing the own photo: got %+v, want the hr one back", p3)
		}
	})
}

func mustGet(t *testing.T, p *upload.Photos, id int64) []byte {
	t.Helper()
	ph, err := p.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ph.Image
}

func activeUsers(t *testing.T, users *roster.Store) []roster.User {
	t.Helper()
	us, err := users.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return us
}

// TestHRPhotoInVCard: Jabber clients get the HR import's photo as the
// vCard PHOTO of a user with no own photo (fetched once, then cached); an
// own photo replaces it, and removing that brings the HR one back.
func TestHRPhotoInVCard(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		var hits atomic.Int32
		img := photoPNG(t, 300, 400)
		hr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.Write(img)
		}))
		defer hr.Close()
		users := roster.NewStore(db)
		users.SetDomain("example.test")
		snap := roster.DemoSnapshot()
		for i := range snap.Employees {
			if snap.Employees[i].Login == "alice" {
				snap.Employees[i].Photo = hr.URL + "/alice.png"
			}
		}
		if _, err := users.Import(ctx, snap, false); err != nil {
			t.Fatal(err)
		}
		srv := xmppcore.NewServer(db, users, mam.NewStore(db), xmppcore.Options{Domain: "example.test"})
		t.Cleanup(func() { srv.Shutdown(context.Background()) })
		photos := upload.NewPhotos(db, users, srv, nil)
		srv.SetPhotoListener(photos)
		alice, _ := users.UserByLogin(ctx, "alice")
		bob, _ := users.UserByLogin(ctx, "bob")
		out := make(sink, 16)
		sess, err := srv.Attach(ctx, bob.ID, "test", out)
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		photoOf := func(login string) []byte {
			t.Helper()
			els, _ := xmppcore.ParseFragment(`<iq xmlns='jabber:client' type='get' id='v' to='` + login + `@example.test'><vCard xmlns='vcard-temp'/></iq>`)
			if err := sess.Handle(ctx, els[0]); err != nil {
				t.Fatal(err)
			}
			res := out.next(t)
			ph := res.Child("vcard-temp", "vCard").Child("", "PHOTO")
			if ph == nil {
				return nil
			}
			if ph.ChildText("", "TYPE") != "image/jpeg" {
				t.Fatalf("vCard PHOTO of %s: got %s, want a JPEG", login, res)
			}
			bin, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(ph.ChildText("", "BINVAL")), ""))
			if err != nil {
				t.Fatal(err)
			}
			return bin
		}
		// XEP-0153's hash of the HR photo: unknown until it is fetched
		// (the hash never fetches), then the SHA-1 of the vCard's image.
		if h, known := photos.FallbackPhotoHash(ctx, alice.ID); known || h != "" {
			t.Fatalf("hash of an HR photo not fetched: got %q %v, want unknown", h, known)
		}
		got := photoOf("alice")
		if got == nil || !bytes.Equal(got, mustGet(t, photos, alice.ID)) {
			t.Fatal("alice's vCard has no PHOTO, want the HR photo")
		}
		sum := sha1.Sum(got)
		if h, known := photos.FallbackPhotoHash(ctx, alice.ID); !known || h != hex.EncodeToString(sum[:]) {
			t.Fatalf("hash of the HR photo: got %q %v, want %x", h, known, sum)
		}
		carol, _ := users.UserByLogin(ctx, "carol")
		if h, known := photos.FallbackPhotoHash(ctx, carol.ID); !known || h != "" {
			t.Fatalf("hash for a user without a photo: got %q %v, want \"\" known", h, known)
		}
		if photoOf("alice"); hits.Load() != 1 {
			t.Fatalf("HR fetches: got %d, want 1 (cached)", hits.Load())
		}
		if photoOf("carol") != nil {
			t.Fatal("a user without any photo got a PHOTO")
		}
		if _, err := photos.Set(ctx, alice.ID, bytes.NewReader(photoPNG(t, 60, 60))); err != nil {
			t.Fatal(err)
		}
		if own := photoOf("alice"); own == nil || bytes.Equal(own, got) {
			t.Fatal("an own photo does not replace the HR one in the vCard")
		}
		if h, known := photos.FallbackPhotoHash(ctx, alice.ID); !known || h != "" {
			t.Fatalf("fallback hash with an own photo: got %q %v, want none (the vCard's own PHOTO counts)", h, known)
		}
		if err := photos.Remove(ctx, alice.ID); err != nil {
			t.Fatal(err)
		}
		if back := photoOf("alice"); !bytes.Equal(back, got) {
			t.Fatal("after removing the own photo the vCard lacks the HR one")
		}
	})
}
