package xmppcore

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// TestServerDiscovery: the stream features carry the server's XEP-0115
// caps, whose ver is the hash of the server's disco#info, which lists the
// XEP-0157 contact addresses.
func TestServerDiscovery(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnvWith(t, db, testOrg, func(o *Options) {
			o.ContactAddresses = map[string][]string{"admin": {"mailto:it@example.test", "xmpp:admin@example.test"}, "abuse": {"mailto:abuse@example.test"}}
		})
		r := e.dial("alice")
		r.starttls()
		ver := r.expect(`<stream:features><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='[^']+' ver='([^']+)'/>`)[1]
		r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth("alice", "secret"))
		r.expect(`<success`)
		r.open()
		r.expect(`<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>`)
		r.send(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`)
		r.expect(`<jid>`)
		r.send(`<iq type='get' id='d1' to='example.test'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		info := r.expect(`<iq type='result' id='d1'[^>]*>(.*?)</iq>`)[1]
		for _, want := range []string{"<field type='hidden' var='FORM_TYPE'><value>http://jabber.org/network/serverinfo</value></field>" +
			"<field type='list-multi' var='abuse-addresses'><value>mailto:abuse@example.test</value></field>" +
			"<field type='list-multi' var='admin-addresses'><value>mailto:it@example.test</value><value>xmpp:admin@example.test</value></field>" +
			"<field type='list-multi' var='feedback-addresses'/>",
			"<value>mailto:it@example.test</value>", "<value>xmpp:admin@example.test</value>"} {
			if !strings.Contains(info, want) {
				t.Errorf("disco#info lacks %s: %s", want, info)
			}
		}
		els, err := ParseFragment(info)
		if err != nil || len(els) != 1 {
			t.Fatalf("parse disco#info: %v", err)
		}
		if got := capsVer(els[0]); got != ver {
			t.Errorf("caps ver %s, disco#info hashes to %s", ver, got)
		}
	})
}

// TestHostMeta: XEP-0156 XRD and JSON point at the WebSocket endpoint
// of the public URL, or of the request's host without one.
func TestHostMeta(t *testing.T) {
	get := func(h http.Handler, target string, hdr map[string]string) (*http.Response, string) {
		req := httptest.NewRequest("GET", target, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		res := rec.Result()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	res, body := get(HostMetaHandler("https://chat.example.com/"), "http://chat.example.com/.well-known/host-meta", nil)
	if ct := res.Header.Get("Content-Type"); ct != "application/xrd+xml" || !strings.Contains(body, "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>") ||
		!strings.Contains(body, "rel='urn:xmpp:alt-connections:websocket' href='wss://chat.example.com/xmpp-websocket'") {
		t.Errorf("host-meta: %s %s", ct, body)
	}
	res, body = get(HostMetaHandler(""), "http://localhost:8080/.well-known/host-meta.json", map[string]string{"X-Forwarded-Proto": "http"})
	var doc struct {
		Links []struct{ Rel, Href string }
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || len(doc.Links) != 1 || doc.Links[0].Rel != "urn:xmpp:alt-connections:websocket" ||
		doc.Links[0].Href != "ws://localhost:8080/xmpp-websocket" || res.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("host-meta.json: %v %s", err, body)
	}
	_, body = get(HostMetaHandler(""), "http://chat.example.com/.well-known/host-meta.json", map[string]string{"X-Forwarded-Proto": "https"})
	if !strings.Contains(body, "wss://chat.example.com/xmpp-websocket") {
		t.Errorf("behind a TLS proxy: %s", body)
	}
}
