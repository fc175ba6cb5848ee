package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// TestServeXMPPDoors: `serve --c2s-tls` listens with direct TLS (XEP-0368)
// and /http-bind answers BOSH (XEP-0206), both on the same stream code as
// port 5222 (the features offer SASL, no STARTTLS).
func TestServeXMPPDoors(t *testing.T) {
	bin := buildBinary(t)
	tlsAt := freeAddr(t)
	s := startServer(t, bin, dbtest.URL(t, migrations.SQLite), "--demo", "on", "--c2s-tls", tlsAt)

	c, err := tls.Dial("tcp", tlsAt, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"xmpp-client"}})
	if err != nil {
		t.Fatalf("direct tls: %v", err)
	}
	defer c.Close()
	io.WriteString(c, `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0'>`)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(got.String(), "</stream:features>") {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("features over direct TLS: %v; got %q", err, got.String())
		}
	}
	if f := got.String(); strings.Contains(f, "starttls") || !strings.Contains(f, "<mechanism>PLAIN</mechanism>") {
		t.Errorf("features over direct TLS: %s", f)
	}

	resp, err := http.Post("http://"+s.httpAt+"/http-bind", "text/xml",
		strings.NewReader(`<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' rid='1' to='example.test' wait='1' hold='1' xmpp:version='1.0'/>`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "sid='") || !strings.Contains(string(b), "<mechanisms") {
		t.Errorf("BOSH session creation: %d %s", resp.StatusCode, b)
	}
}
