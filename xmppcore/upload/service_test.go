package upload_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/upload"
)

// sink collects what the router delivers to an attached session.
type sink chan *xmppcore.Element

func (s sink) Deliver(el *xmppcore.Element) bool {
	select {
	case s <- el:
		return true
	default:
		return false
	}
}
func (s sink) Close(string) {}

func (s sink) next(t *testing.T) *xmppcore.Element {
	t.Helper()
	select {
	case el := <-s:
		return el
	case <-time.After(5 * time.Second):
		t.Fatal("no stanza within 5 s")
		return nil
	}
}

func TestSlotOverXMPP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		users := roster.NewStore(db)
		users.SetDomain("example.test")
		if _, err := users.Import(ctx, roster.DemoSnapshot(), false); err != nil {
			t.Fatal(err)
		}
		srv := xmppcore.NewServer(db, users, mam.NewStore(db), xmppcore.Options{Domain: "example.test"})
		t.Cleanup(func() { srv.Shutdown(context.Background()) })
		web := httptest.NewServer(nil)
		defer web.Close()
		store, err := upload.NewStore(db, t.TempDir(), mam.NewStore(db), upload.Options{MaxSize: 100, Quota: 150, PublicURL: web.URL,
			AllowedTypes: []string{"text/plain", "image/*"}})
		if err != nil {
			t.Fatal(err)
		}
		web.Config.Handler = store.Handler()
		upload.NewService(store, users, nil).Register(srv)

		alice, _ := users.UserByLogin(ctx, "alice")
		out := make(sink, 16)
		sess, err := srv.Attach(ctx, alice.ID, "test", out)
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()

		send := func(xml string) *xmppcore.Element {
			t.Helper()
			els, err := xmppcore.ParseFragment(xml)
			if err != nil {
				t.Fatal(err)
			}
			if err := sess.Handle(ctx, els[0]); err != nil {
				t.Fatal(err)
			}
			return out.next(t)
		}

		info := send(`<iq xmlns='jabber:client' type='get' id='d1' to='upload.example.test'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		x := info.Child("http://jabber.org/protocol/disco#info", "query").Child("jabber:x:data", "x")
		if x == nil {
			t.Fatalf("disco#info: got %s; want a data form", info)
		}
		fields := map[string]string{}
		for _, f := range x.Children {
			if f.Name.Local != "field" {
				t.Fatalf("disco#info form: got a <%s> child, want only fields: %s", f.Name.Local, info)
			}
			fields[f.AttrValue("var")] = f.ChildText("jabber:x:data", "value")
		}
		if fields["FORM_TYPE"] != upload.NS || fields["max-file-size"] != "100" {
			t.Fatalf("disco#info form: got %v; want FORM_TYPE %s and max-file-size 100", fields, upload.NS)
		}
		big := send(`<iq xmlns='jabber:client' type='get' id='r0' to='upload.example.test'><request xmlns='urn:xmpp:http:upload:0' filename='a.bin' size='1000'/></iq>`)
		if big.AttrValue("type") != "error" || !strings.Contains(big.String(), "not-acceptable") ||
			!strings.Contains(big.String(), `<file-too-large xmlns='urn:xmpp:http:upload:0'><max-file-size>100</max-file-size></file-too-large>`) {
			t.Fatalf("oversized request: got %s; want not-acceptable with file-too-large", big)
		}
		// The refusals carry plain texts (those of Prosody's scansion suite).
		for _, tc := range []struct{ req, cond, text string }{
			{`filename='a.bin' size='1000'`, "not-acceptable", "File too large"},
			{`filename='a.bin' size='-5'`, "bad-request", "File size must be positive integer"},
			{`filename='invalid/a.bin' size='10'`, "bad-request", "Invalid filename"},
			{`filename='evil.exe' size='10' content-type='application/x-executable'`, "not-acceptable", "File type not allowed"},
		} {
			r := send(`<iq xmlns='jabber:client' type='get' id='rx' to='upload.example.test'><request xmlns='urn:xmpp:http:upload:0' ` + tc.req + `/></iq>`)
			if r.AttrValue("type") != "error" || !strings.Contains(r.String(), "<"+tc.cond+" ") ||
				!strings.Contains(r.String(), ">"+tc.text+"</text>") {
				t.Errorf("request %s: got %s; want %s with %q", tc.req, r, tc.cond, tc.text)
			}
		}
		res := send(`<iq xmlns='jabber:client' type='get' id='r1' to='upload.example.test'><request xmlns='urn:xmpp:http:upload:0' filename='note.txt' size='5' content-type='text/plain'/></iq>`)
		slot := res.Child(upload.NS, "slot")
		if res.AttrValue("type") != "result" || res.AttrValue("id") != "r1" || slot == nil {
			t.Fatalf("slot request: got %s", res)
		}
		auth := ""
		for _, h := range slot.Child(upload.NS, "put").Children {
			if n := h.AttrValue("name"); n != "Authorization" && n != "Cookie" && n != "Expires" {
				t.Fatalf("slot header %q: XEP-0363 allows only Authorization, Cookie, Expires", n)
			}
			if h.AttrValue("name") == "Authorization" {
				auth = h.Text
			}
		}
		if !strings.HasPrefix(auth, "Bearer ") {
			t.Fatalf("slot: got %s; want an Authorization header for the PUT", slot)
		}
		putURL := slot.Child(upload.NS, "put").AttrValue("url")
		getURL := slot.Child(upload.NS, "get").AttrValue("url")
		req, _ := http.NewRequest("PUT", putURL, strings.NewReader("hello"))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("PUT: %v %v", resp, err)
		}
		resp.Body.Close()
		resp, err = http.Get(getURL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "hello" {
			t.Fatalf("GET: got %q, want hello", b)
		}
		// 5 of 150 bytes used: a 100-byte slot fits, a second does not.
		if r := send(`<iq xmlns='jabber:client' type='get' id='r2' to='upload.example.test'><request xmlns='urn:xmpp:http:upload:0' filename='a' size='100'/></iq>`); r.AttrValue("type") != "result" {
			t.Fatalf("slot within the quota: got %s", r)
		}
		if _, err := store.Save(ctx, alice.ID, "b", strings.NewReader(strings.Repeat("b", 100))); err != nil {
			t.Fatal(err)
		}
		over := send(`<iq xmlns='jabber:client' type='get' id='r3' to='upload.example.test'><request xmlns='urn:xmpp:http:upload:0' filename='c' size='50'/></iq>`)
		if over.AttrValue("type") != "error" || !strings.Contains(over.String(), "resource-constraint") || !strings.Contains(over.String(), `type='wait'`) {
			t.Fatalf("slot over the quota: got %s; want a wait resource-constraint", over)
		}
	})
}
