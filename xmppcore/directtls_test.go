package xmppcore

import (
	"context"
	"crypto/tls"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// TestDirectTLS: XEP-0368. A connection that opens with TLS (ALPN
// xmpp-client) gets no STARTTLS offer and logs in with PLAIN; a client
// that speaks plain XML to the TLS port gets nothing and is closed; the
// listener is refused without a certificate. slixmpp connects over it too.
func TestDirectTLS(t *testing.T) {
	e := newEnv(t, dbtest.Open(t, migrations.SQLite))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.srv.ServeC2STLS(ln)

	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: testDomain, NextProtos: []string{"xmpp-client"}})
	if err != nil {
		t.Fatalf("direct tls: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if got := c.ConnectionState().NegotiatedProtocol; got != "xmpp-client" {
		t.Errorf("ALPN: got %q, want xmpp-client", got)
	}
	r := &rawConn{t: t, c: c, name: "direct"}
	r.open()
	features := r.expect(`<stream:features>.*?</stream:features>`)[0]
	if strings.Contains(features, "starttls") || !strings.Contains(features, "<mechanism>PLAIN</mechanism>") {
		t.Fatalf("features over direct TLS: %s", features)
	}
	r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth("alice", "secret"))
	r.expect(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`)
	r.open()
	r.send(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>tls</resource></bind></iq>`)
	r.expect(`<jid>alice@example.test/tls</jid>`)

	// Plain XML on the TLS port: no stream, the connection ends.
	p, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Write([]byte(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0'>`))
	p.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, _ := p.Read(buf)
	if strings.Contains(string(buf[:n]), "<stream:") {
		t.Errorf("a plain stream on the TLS port was answered: %q", buf[:n])
	}

	bare := NewServer(e.db, e.rs, e.arch, Options{Domain: testDomain})
	defer bare.Shutdown(context.Background())
	if err := bare.ServeC2STLS(ln); err == nil {
		t.Error("direct TLS without a certificate accepted")
	}

	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import slixmpp").Run(); err != nil {
		t.Logf("slixmpp part skipped: %v", err)
		return
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", slixDirectTLS, port).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("slixmpp over direct TLS: %v\n%s", err, out)
	}
}

// slixDirectTLS logs bob in with slixmpp's direct TLS (use_ssl) and pings
// the server.
const slixDirectTLS = `
import asyncio, ssl, sys, slixmpp
c = slixmpp.ClientXMPP("bob@example.test/slix", "secret")
c.ssl_context.check_hostname = False
c.ssl_context.verify_mode = ssl.CERT_NONE
c.register_plugin("xep_0199")
done = asyncio.Event()
async def start(_):
    await c["xep_0199"].ping("example.test", timeout=5)
    print("OK", flush=True)
    done.set()
c.add_event_handler("session_start", start)
c.connect(("127.0.0.1", int(sys.argv[1])), use_ssl=True)
asyncio.get_event_loop().run_until_complete(asyncio.wait_for(done.wait(), 15))
`
