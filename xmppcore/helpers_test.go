package xmppcore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/roster"
	"vestnik/xmppcore/mam"
)

const testDomain = "example.test"

// testOrg is a small company: sales (alice head, bob), dev (carol head,
// dave), and erin, who is deactivated by some tests.
const testOrg = `{
 "departments": [
  {"id": "1", "name": "Company", "parent": null, "head": "1"},
  {"id": "2", "name": "Sales", "parent": "1", "head": "1"},
  {"id": "3", "name": "Development", "parent": "1", "head": "3"}
 ],
 "employees": [
  {"id": "1", "login": "alice", "name": "Alice Smith", "email": "alice@example.test", "title": "Head of sales", "departments": ["2"], "password": "secret"},
  {"id": "2", "login": "bob", "name": "Боб Иванов", "title": "Sales", "departments": ["2"], "password": "secret"},
  {"id": "3", "login": "carol", "name": "Carol", "departments": ["3"], "password": "secret"},
  {"id": "4", "login": "dave", "name": "Dave", "departments": ["3"], "password": "secret"},
  {"id": "5", "login": "erin", "name": "Erin", "departments": ["3"], "password": "secret"}
 ]
}`

var (
	certOnce sync.Once
	testCert tls.Certificate
)

func testTLS(t testing.TB) *tls.Config {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: testDomain},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			DNSNames: []string{testDomain}, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		testCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return &tls.Config{Certificates: []tls.Certificate{testCert}, MinVersion: tls.VersionTLS12}
}

type testEnv struct {
	t    testing.TB
	db   *sqlx.DB
	rs   *roster.Store
	arch *mam.Store
	srv  *Server
	addr string
}

// newEnv starts a server over db with the test org imported, listening on
// a loopback TCP port.
func newEnv(t testing.TB, db *sqlx.DB) *testEnv {
	t.Helper()
	return newEnvOrg(t, db, testOrg)
}

// newEnvOrg is newEnv with another HR snapshot.
func newEnvOrg(t testing.TB, db *sqlx.DB, org string) *testEnv {
	t.Helper()
	return newEnvWith(t, db, org, nil)
}

// newEnvWith is newEnvOrg with options changed by tune (nil: none).
func newEnvWith(t testing.TB, db *sqlx.DB, org string, tune func(*Options)) *testEnv {
	t.Helper()
	ctx := context.Background()
	rs := roster.NewStore(db)
	snap, err := roster.ParseJSON(strings.NewReader(org))
	if err != nil {
		t.Fatalf("parse org: %v", err)
	}
	if _, err := rs.Import(ctx, snap, false); err != nil {
		t.Fatalf("import org: %v", err)
	}
	arch := mam.NewStore(db)
	var logger *slog.Logger
	if os.Getenv("VESTNIK_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	opts := Options{Domain: testDomain, TLSConfig: testTLS(t), Logger: logger,
		AuthFailureDelay: -1, EventPollInterval: 100 * time.Millisecond}
	if tune != nil {
		tune(&opts)
	}
	srv := NewServer(db, rs, arch, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeC2S(ln)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &testEnv{t: t, db: db, rs: rs, arch: arch, srv: srv, addr: ln.Addr().String()}
}

// rawConn is a scripted XML session: send text, expect a pattern.
type rawConn struct {
	t    testing.TB
	c    net.Conn
	buf  []byte
	name string
	lang string // the stream header's xml:lang ("": none)
}

func (e *testEnv) dial(name string) *rawConn {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return &rawConn{t: e.t, c: c, name: name}
}

// pipe connects a raw session over an in-memory pipe (trusted, no TLS).
func (e *testEnv) pipe(name string) *rawConn {
	a, b := net.Pipe()
	go e.srv.ServeTransport(NewPipeTransport(b))
	e.t.Cleanup(func() { a.Close() })
	return &rawConn{t: e.t, c: a, name: name}
}

func (r *rawConn) send(format string, args ...any) {
	r.t.Helper()
	s := format
	if len(args) > 0 {
		s = fmt.Sprintf(format, args...)
	}
	r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.c.Write([]byte(s)); err != nil {
		r.t.Fatalf("%s: send %q: %v", r.name, s, err)
	}
}

// expect reads until pattern matches what has arrived, consumes through
// the match and returns its submatches.
func (r *rawConn) expect(pattern string) []string {
	r.t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(5 * time.Second)
	tmp := make([]byte, 4096)
	for {
		if m := re.FindSubmatchIndex(r.buf); m != nil {
			out := make([]string, len(m)/2)
			for i := range out {
				if m[2*i] >= 0 {
					out[i] = string(r.buf[m[2*i]:m[2*i+1]])
				}
			}
			r.buf = r.buf[m[1]:]
			return out
		}
		r.c.SetReadDeadline(deadline)
		n, err := r.c.Read(tmp)
		r.buf = append(r.buf, tmp[:n]...)
		if err != nil {
			r.t.Fatalf("%s: expect %q: %v; got %q", r.name, pattern, err, clip(r.buf))
		}
	}
}

// expectClosed reads until the server closes the connection.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	tmp := make([]byte, 4096)
	for {
		n, err := r.c.Read(tmp)
		r.buf = append(r.buf, tmp[:n]...)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				r.t.Fatalf("%s: connection not closed; got %q", r.name, clip(r.buf))
			}
			return
		}
	}
}

func (r *rawConn) open() {
	r.t.Helper()
	lang := ""
	if r.lang != "" {
		lang = " xml:lang='" + r.lang + "'"
	}
	r.send(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'%s>`, testDomain, lang)
	r.expect(`<stream:stream [^>]*from='` + testDomain + `'[^>]*>`)
}

// starttls negotiates TLS and reopens the stream.
func (r *rawConn) starttls() {
	r.t.Helper()
	r.open()
	r.expect(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>`)
	r.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	r.expect(`<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	tc := tls.Client(r.c, &tls.Config{InsecureSkipVerify: true, ServerName: testDomain})
	if err := tc.Handshake(); err != nil {
		r.t.Fatalf("tls: %v", err)
	}
	r.c = tc
	r.buf = nil
	r.open()
}

func plainAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

// login runs STARTTLS (TCP) or nothing (pipe), SASL PLAIN, bind; returns
// the bound JID.
func (r *rawConn) login(user, resource string, tls bool) string {
	r.t.Helper()
	if tls {
		r.starttls()
	} else {
		r.open()
	}
	r.expect(`<mechanism>PLAIN</mechanism>.*</stream:features>`)
	r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth(user, "secret"))
	r.expect(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`)
	r.open()
	r.expect(`<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>`)
	if resource != "" {
		r.send(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>`, resource)
	} else {
		r.send(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`)
	}
	return r.expect(`<jid>([^<]+)</jid>`)[1]
}

// clip shortens what a failing test prints.
func clip(b []byte) string {
	if len(b) > 2000 {
		return string(b[:1000]) + "…" + string(b[len(b)-1000:])
	}
	return string(b)
}

// reSub returns the first submatch of pattern in s, failing the test
// when there is none.
func (r *rawConn) reSub(s, pattern string) string {
	r.t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(s)
	if m == nil {
		r.t.Fatalf("%s: %q not in %s", r.name, pattern, clip([]byte(s)))
	}
	return m[1]
}

func itoa(n int64) string { return fmt.Sprint(n) }
