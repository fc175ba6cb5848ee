package extdisco_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/extdisco"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/xmpptest"
)

const servicesJSON = `[
 {"type": "stun", "transport": "udp", "host": "turn.example.test", "port": 3478},
 {"type": "turn", "transport": "udp", "host": "turn.example.test", "port": 3478, "secret": "s3cret", "ttl": 600},
 {"type": "ftp", "transport": "tcp", "host": "ftp.example.test", "port": 21, "username": "john", "password": "pw"}
]`

func parse(t *testing.T, s string) *xmppcore.Element {
	t.Helper()
	els, err := xmppcore.ParseFragment(s)
	if err != nil || len(els) != 1 {
		t.Fatalf("parse %q: %v", s, err)
	}
	return els[0]
}

// serve starts a c2s server of the demo company (ivanov's password:
// secret) with servicesJSON's services and returns its address.
func serve(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "services.json")
	if err := os.WriteFile(path, []byte(servicesJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	services, err := extdisco.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	db := dbtest.Open(t, "sqlite")
	ctx := context.Background()
	users := roster.NewStore(db)
	users.SetDomain("example.test")
	if _, err := users.Import(ctx, roster.DemoSnapshot(), false); err != nil {
		t.Fatal(err)
	}
	if err := users.SetPassword(ctx, "ivanov", "secret"); err != nil {
		t.Fatal(err)
	}
	srv := xmppcore.NewServer(db, users, mam.NewStore(db), xmppcore.Options{Domain: "example.test", TLSConfig: xmpptest.SelfSigned(t, "example.test")})
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	extdisco.Register(srv, services)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeC2S(ln)
	return ln.Addr().String()
}

// TestExternalServicesOverC2S: a client on a real c2s connection lists the
// services, filters them by type, and gets working TURN credentials.
func TestExternalServicesOverC2S(t *testing.T) {
	cl := xmpptest.Dial(t, serve(t), "ivanov@example.test", "gajim", "secret")

	cl.Send(`<iq type='get' id='d' to='example.test'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	if s := cl.Expect("id='d'"); !strings.Contains(s, extdisco.NS) {
		t.Fatalf("disco#info lacks %s: %s", extdisco.NS, s)
	}

	cl.Send(`<iq type='get' id='all' to='example.test'><services xmlns='urn:xmpp:extdisco:2'/></iq>`)
	all := parse(t, cl.Expect("id='all'")).Child(extdisco.NS, "services")
	if all == nil || len(all.Children) != 3 {
		t.Fatalf("services: got %v; want 3", all)
	}
	stun, turn, ftp := all.Children[0], all.Children[1], all.Children[2]
	if stun.AttrValue("type") != "stun" || stun.HasAttr("restricted") || stun.HasAttr("username") || stun.AttrValue("port") != "3478" {
		t.Fatalf("stun: %s", stun)
	}
	if ftp.AttrValue("restricted") != "1" || ftp.AttrValue("username") != "john" || ftp.AttrValue("password") != "pw" {
		t.Fatalf("ftp: %s", ftp)
	}
	// The TURN REST credentials: expiry:login, HMAC-SHA1 of it with the secret.
	user, pass := turn.AttrValue("username"), turn.AttrValue("password")
	exp, login, _ := strings.Cut(user, ":")
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || login != "ivanov" || turn.AttrValue("restricted") != "1" {
		t.Fatalf("turn: %s", turn)
	}
	if d := time.Until(time.Unix(sec, 0)); d < 590*time.Second || d > 601*time.Second {
		t.Fatalf("turn credentials expire in %v; want the configured 600 s", d)
	}
	m := hmac.New(sha1.New, []byte("s3cret"))
	m.Write([]byte(user))
	if want := base64.StdEncoding.EncodeToString(m.Sum(nil)); pass != want {
		t.Fatalf("turn password %q; want %q", pass, want)
	}

	cl.Send(`<iq type='get' id='ftp' to='example.test'><services xmlns='urn:xmpp:extdisco:2' type='ftp'/></iq>`)
	if got := parse(t, cl.Expect("id='ftp'")).Child(extdisco.NS, "services"); len(got.Children) != 1 || got.Children[0].AttrValue("host") != "ftp.example.test" {
		t.Fatalf("services of type ftp: %s", got)
	}
	cl.Send(`<iq type='get' id='cred' to='example.test'><credentials xmlns='urn:xmpp:extdisco:2'><service host='turn.example.test' type='turn'/></credentials></iq>`)
	if got := parse(t, cl.Expect("id='cred'")).Child(extdisco.NS, "credentials"); len(got.Children) != 1 || got.Children[0].AttrValue("password") == "" {
		t.Fatalf("credentials: %s", got)
	}
	// Credentials without a type: bad-request; for a host with none: item-not-found.
	cl.Send(`<iq type='get' id='bad' to='example.test'><credentials xmlns='urn:xmpp:extdisco:2'><service host='turn.example.test'/></credentials></iq>`)
	if s := cl.Expect("id='bad'"); !strings.Contains(s, "type='error'") || !strings.Contains(s, "bad-request") {
		t.Fatalf("credentials without a type: %s", s)
	}
	cl.Send(`<iq type='get' id='none' to='example.test'><credentials xmlns='urn:xmpp:extdisco:2'><service host='turn.example.test' type='stun'/></credentials></iq>`)
	if s := cl.Expect("id='none'"); !strings.Contains(s, "item-not-found") {
		t.Fatalf("credentials of an open service: %s", s)
	}
	cl.Send(`<iq type='set' id='set' to='example.test'><services xmlns='urn:xmpp:extdisco:2'/></iq>`)
	if s := cl.Expect("id='set'"); !strings.Contains(s, "bad-request") {
		t.Fatalf("set: %s", s)
	}
}

func TestLoadRejectsBadServices(t *testing.T) {
	for _, bad := range []string{
		`[{"host": "a"}]`,
		`[{"type": "turn"}]`,
		`[{"type": "turn", "host": "a", "port": 70000}]`,
		`[{"type": "turn", "host": "a", "transport": "sctp"}]`,
		`[{"type": "turn", "host": "a", "secret": "s", "password": "p"}]`,
		`{"type": "turn"}`,
	} {
		path := filepath.Join(t.TempDir(), "s.json")
		os.WriteFile(path, []byte(bad), 0o600)
		if _, err := extdisco.Load(path); err == nil {
			t.Errorf("Load(%s): no error", bad)
		}
	}
	if _, err := extdisco.Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("Load of a missing file: no error")
	}
}

// TestSlixmppExtDisco runs ../testdata/xeps.py's extdisco part: slixmpp
// lists the services, a type's, and asks for TURN credentials.
func TestSlixmppExtDisco(t *testing.T) {
	host, port, _ := net.SplitHostPort(serve(t))
	xmpptest.RunSlixmpp(t, "../testdata/xeps.py", "extdisco", host, port, "example.test", "secret")
}
