// Package xmpptest is a scripted XMPP client for tests: a real mellium
// client session over TCP with STARTTLS and SCRAM, with Send and Expect on
// the raw XML of stanzas.
package xmpptest

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// Client is a real XMPP client (mellium) over TCP with STARTTLS and SCRAM,
// scripted with Send and Expect. Received stanzas arrive on In as XML text
// (attribute values in single quotes); Seen holds those that an Expect
// skipped, which later Expects look at first.
type Client struct {
	T    testing.TB
	Sess *xmpp.Session
	JID  jid.JID
	In   chan string
	Seen []string
	conn net.Conn
}

// ioTimeout bounds the login and each Send. It is set on the connection
// itself: mellium turns a context's deadline into a goroutine that may
// fire after the call returned (when the caller cancels its context) and
// set a deadline in the past under a later write or read.
const ioTimeout = 10 * time.Second

// Dial logs bare/resource in at addr with password, and closes the session
// when the test ends. VESTNIK_TEST_DEBUG=1 prints the traffic.
func Dial(t testing.TB, addr, bare, resource, password string) *Client {
	t.Helper()
	j := jid.MustParse(bare + "/" + resource)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(ioTimeout))
	var rw io.ReadWriter = conn
	if os.Getenv("VESTNIK_TEST_DEBUG") != "" {
		rw = debugConn{conn}
	}
	sess, err := xmpp.NewClientSession(context.Background(), j, rw,
		xmpp.StartTLS(&tls.Config{InsecureSkipVerify: true, ServerName: j.Domainpart()}),
		xmpp.SASL("", password, sasl.ScramSha256, sasl.ScramSha1),
		xmpp.BindResource(),
	)
	if err != nil {
		conn.Close()
		t.Fatalf("login %s: %v", bare, err)
	}
	conn.SetDeadline(time.Time{})
	c := &Client{T: t, Sess: sess, JID: sess.LocalAddr(), In: make(chan string, 1000), conn: conn}
	go func() {
		err := sess.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			raw, err := serialize(r, start)
			if os.Getenv("VESTNIK_TEST_DEBUG") != "" {
				fmt.Fprintf(os.Stderr, "GOT %s %v\n", raw, err)
			}
			if err != nil {
				return err
			}
			select {
			case c.In <- raw:
			default:
			}
			return nil
		}))
		if os.Getenv("VESTNIK_TEST_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "SERVE END %v\n", err)
		}
	}()
	t.Cleanup(func() { sess.Close(); conn.Close() })
	return c
}

type debugConn struct{ net.Conn }

func (d debugConn) Read(b []byte) (int, error) {
	n, err := d.Conn.Read(b)
	fmt.Fprintf(os.Stderr, "RECV %q\n", b[:n])
	return n, err
}

func (d debugConn) Write(b []byte) (int, error) {
	fmt.Fprintf(os.Stderr, "SEND %q\n", b)
	return d.Conn.Write(b)
}

// serialize writes the element read from r (its start already read) as
// XML text, with attribute values in single quotes for easy matching.
func serialize(r xml.TokenReader, start *xml.StartElement) (string, error) {
	var b strings.Builder
	spaces := []string{"jabber:client"}
	writeStart := func(se xml.StartElement) {
		b.WriteString("<" + se.Name.Local)
		if se.Name.Space != spaces[len(spaces)-1] {
			b.WriteString(" xmlns='" + se.Name.Space + "'")
		}
		spaces = append(spaces, se.Name.Space)
		for _, a := range se.Attr {
			if a.Name.Local == "xmlns" || a.Name.Space == "xmlns" {
				continue
			}
			b.WriteString(" " + a.Name.Local + "='")
			xml.EscapeText(&b, []byte(a.Value))
			b.WriteString("'")
		}
		b.WriteString(">")
	}
	writeStart(*start)
	depth := 1
	for depth > 0 {
		tok, err := r.Token()
		if err == io.EOF && depth == 1 {
			b.WriteString("</" + start.Name.Local + ">")
			break
		}
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			writeStart(t)
		case xml.EndElement:
			depth--
			spaces = spaces[:len(spaces)-1]
		case xml.CharData:
			xml.EscapeText(&b, t)
		}
		if e, ok := tok.(xml.EndElement); ok {
			b.WriteString("</" + e.Name.Local + ">")
		}
	}
	return b.String(), nil
}

// Send writes raw XML (a stanza in jabber:client).
func (c *Client) Send(raw string) {
	c.T.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	defer c.conn.SetWriteDeadline(time.Time{})
	if i := strings.IndexAny(raw, " />"); i > 0 && !strings.Contains(raw[:strings.Index(raw, ">")], "xmlns=") {
		raw = raw[:i] + " xmlns='jabber:client'" + raw[i:]
	}
	if err := c.Sess.Send(context.Background(), xml.NewDecoder(strings.NewReader(raw))); err != nil {
		c.T.Fatalf("send %s: %v", raw, err)
	}
}

// Next returns the next stanza, in order: first those an Expect skipped,
// then new ones (waiting 5 s).
func (c *Client) Next() string {
	c.T.Helper()
	if len(c.Seen) > 0 {
		s := c.Seen[0]
		c.Seen = c.Seen[1:]
		return s
	}
	select {
	case s := <-c.In:
		return s
	case <-time.After(5 * time.Second):
		c.T.Fatalf("%s: no stanza", c.JID)
		return ""
	}
}

// Expect waits (5 s) for a stanza containing every part, skipping others,
// and returns it.
func (c *Client) Expect(parts ...string) string {
	c.T.Helper()
	match := func(s string) bool {
		for _, p := range parts {
			if !strings.Contains(s, p) {
				return false
			}
		}
		return true
	}
	for i, s := range c.Seen {
		if match(s) {
			c.Seen = append(c.Seen[:i], c.Seen[i+1:]...)
			return s
		}
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case s := <-c.In:
			if match(s) {
				return s
			}
			c.Seen = append(c.Seen, s)
		case <-deadline:
			c.T.Fatalf("%s: no stanza with %q; got:\n%s", c.JID, parts, strings.Join(c.Seen, "\n"))
			return ""
		}
	}
}

// ExpectNone checks that no stanza containing every part arrives within d.
func (c *Client) ExpectNone(d time.Duration, parts ...string) {
	c.T.Helper()
	deadline := time.After(d)
	for {
		select {
		case s := <-c.In:
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(s, p)
			}
			if ok {
				c.T.Fatalf("%s: unexpected %s", c.JID, s)
			}
			c.Seen = append(c.Seen, s)
		case <-deadline:
			return
		}
	}
}
