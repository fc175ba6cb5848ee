package xmppcore

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Transport carries one XML stream: TCP with STARTTLS, RFC 7395 WebSocket,
// or an in-memory pipe. The session code never knows which it has.
//
// Reading is done by one goroutine (the connection's reader); WriteElement,
// WriteRaw and Flush by one goroutine at a time (during negotiation the
// reader, afterwards the writer goroutine).
type Transport interface {
	io.Reader
	// WriteOpen writes the stream opening: a stream header, or <open/>.
	WriteOpen(from, id, lang string) error
	// WriteClose writes the end of the stream: </stream:stream> or <close/>.
	WriteClose() error
	// WriteElement queues one top-level element for the next Flush.
	WriteElement(el *Element) error
	// Flush sends what is queued.
	Flush() error
	// StartTLS upgrades the connection; errNoTLS when the transport cannot.
	StartTLS(cfg *tls.Config) error
	// Secure reports whether the connection is confidential (TLS).
	Secure() bool
	// Framed reports RFC 7395 framing: a stream restart needs no new header
	// from the peer's side of the reader to be reset.
	Framed() bool
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	RemoteAddr() string
	Close() error
}

var errNoTLS = errors.New("xmppcore: transport cannot start tls")

// bufPool holds write buffers: a connection takes one only while it has
// something to write, so idle connections keep none.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// idleWaiter is implemented by transports whose reader can wait for input
// outside the XML decoder. An idle connection then keeps a goroutine with
// the smallest stack instead of one blocked under the decoder, TLS and
// netpoll frames (8 KiB or more each, with thousands of idle clients).
type idleWaiter interface {
	// Buffered reports whether input is waiting above the socket (in
	// TLS) or the transport cannot tell: then the reader must not park.
	Buffered() bool
	// WaitReadable blocks until the socket has input, ended or failed, or
	// the read deadline passed.
	WaitReadable() error
}

var errNoWait = errors.New("xmppcore: transport cannot wait for input")

// streamTransport is RFC 6120 over a net.Conn: TCP (STARTTLS capable) or
// an in-memory pipe.
type streamTransport struct {
	conn   net.Conn
	secure bool
	canTLS bool
	buf    *bytes.Buffer

	raw      syscall.RawConn // the TCP socket, for WaitReadable (nil: cannot wait)
	deadline time.Time       // the read deadline last set
	pending  []byte          // read by Buffered's probe, not yet by Read
	perr     error           // an error met by the probe, returned by Read
}

// NewTCPTransport wraps an accepted TCP connection; STARTTLS is offered.
func NewTCPTransport(c net.Conn) Transport {
	t := &streamTransport{conn: c, canTLS: true}
	if tc, ok := c.(*net.TCPConn); ok {
		t.raw = socketWaiter(tc)
		t.conn = quickAck(tc)
	}
	return t
}

// NewPipeTransport wraps an in-memory connection (net.Pipe) that is
// trusted as confidential, without STARTTLS: for tests and benchmarks.
func NewPipeTransport(c net.Conn) Transport {
	return &streamTransport{conn: c, secure: true}
}

func (t *streamTransport) Read(p []byte) (int, error) {
	if len(t.pending) > 0 {
		n := copy(p, t.pending)
		if t.pending = t.pending[n:]; len(t.pending) == 0 {
			t.pending = nil
		}
		return n, nil
	}
	if t.perr != nil {
		err := t.perr
		t.perr = nil
		return 0, err
	}
	return t.conn.Read(p)
}

// probeSize bounds what one probe takes from TLS's buffer.
const probeSize = 512

// Buffered reports input waiting above the socket. Plain TCP keeps none
// (the stream reader's own buffer is checked by the caller); TLS may hold
// decrypted or whole undecrypted records, which a read with an expired
// deadline takes without touching the socket. TLS treats that timeout as
// temporary: the connection stays usable.
func (t *streamTransport) Buffered() bool {
	if t.raw == nil || len(t.pending) > 0 || t.perr != nil {
		return true
	}
	tc, ok := t.conn.(*tls.Conn)
	if !ok {
		return false
	}
	tc.SetReadDeadline(expired)
	var p [probeSize]byte
	n, err := tc.Read(p[:])
	tc.SetReadDeadline(t.deadline)
	if n > 0 {
		t.pending = append([]byte(nil), p[:n]...)
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.perr = err
	}
	return n > 0 || t.perr != nil
}

// expired is a read deadline in the past.
var expired = time.Unix(1, 0)

func (t *streamTransport) WaitReadable() error {
	if t.raw == nil {
		return errNoWait
	}
	return waitReadable(t.raw)
}

func (t *streamTransport) WriteOpen(from, id, lang string) error {
	b := t.buffer()
	b.WriteString("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='")
	b.WriteString(escapeString(from))
	b.WriteString("' id='")
	b.WriteString(escapeString(id))
	if lang != "" {
		b.WriteString("' xml:lang='")
		b.WriteString(escapeString(lang))
	}
	b.WriteString("'>")
	return nil
}

func (t *streamTransport) WriteClose() error {
	t.buffer().WriteString("</stream:stream>")
	return t.Flush()
}

func (t *streamTransport) buffer() *bytes.Buffer {
	if t.buf == nil {
		t.buf = bufPool.Get().(*bytes.Buffer)
	}
	return t.buf
}

func (t *streamTransport) WriteElement(el *Element) error {
	b := t.buffer()
	// Serialized straight into the pooled buffer's free space: an idle
	// connection keeps no buffer of its own.
	if el.Name.Space == NSStream {
		// stream:features and stream:error carry the stream prefix.
		b.Write(appendStreamElement(b.AvailableBuffer(), el))
	} else {
		b.Write(el.AppendXML(b.AvailableBuffer(), NSClient))
	}
	return nil
}

// appendStreamElement writes an element of the streams namespace with the
// stream: prefix, as RFC 6120 streams declare it.
func appendStreamElement(b []byte, el *Element) []byte {
	b = append(b, "<stream:"...)
	b = append(b, el.Name.Local...)
	for _, a := range el.Attr {
		b = append(b, ' ')
		b = append(b, a.Name.Local...)
		b = append(b, "='"...)
		b = appendEscaped(b, a.Value, true)
		b = append(b, '\'')
	}
	if len(el.Children) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	for _, c := range el.Children {
		b = c.AppendXML(b, NSStream)
	}
	b = append(b, "</stream:"...)
	b = append(b, el.Name.Local...)
	return append(b, '>')
}

func (t *streamTransport) Flush() error {
	if t.buf == nil {
		return nil
	}
	_, err := t.conn.Write(t.buf.Bytes())
	t.buf.Reset()
	if t.buf.Cap() <= 64<<10 {
		bufPool.Put(t.buf)
	}
	t.buf = nil
	return err
}

func (t *streamTransport) StartTLS(cfg *tls.Config) error {
	if !t.canTLS || t.secure || cfg == nil {
		return errNoTLS
	}
	tc := tls.Server(t.conn, cfg)
	tc.SetDeadline(time.Now().Add(AuthTimeout))
	if err := tc.Handshake(); err != nil {
		return err
	}
	// The handshake's own deadline goes; the negotiation's read deadline
	// (the auth timeout) stays.
	tc.SetWriteDeadline(time.Time{})
	tc.SetReadDeadline(t.deadline)
	t.conn = tc
	t.secure = true
	return nil
}

func (t *streamTransport) Secure() bool { return t.secure }
func (t *streamTransport) Framed() bool { return false }
func (t *streamTransport) SetReadDeadline(d time.Time) error {
	t.deadline = d
	return t.conn.SetReadDeadline(d)
}
func (t *streamTransport) SetWriteDeadline(d time.Time) error { return t.conn.SetWriteDeadline(d) }
func (t *streamTransport) RemoteAddr() string {
	if a := t.conn.RemoteAddr(); a != nil {
		return a.String()
	}
	return "pipe"
}
func (t *streamTransport) Close() error { return t.conn.Close() }
