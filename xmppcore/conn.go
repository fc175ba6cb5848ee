package xmppcore

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Namespaces of stream negotiation.
const (
	NSTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	NSBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	NSSession = "urn:ietf:params:xml:ns:xmpp-session"
)

// conn is one XML stream. A goroutine runs the negotiation (TLS
// handshake, SASL, bind); the steady-state reader then runs on a fresh
// goroutine, so the deep stack of the handshake is not kept for the life
// of an idle connection. The reader owns the session state. After binding,
// writes go through a bounded queue drained by a writer goroutine that runs
// only while there is something to write. conn is the Sink of its session.
type conn struct {
	srv  *Server
	t    Transport
	id   string
	user string // login once authenticated, for logs
	r    *streamReader
	sess *Session
	lang string

	qmu         sync.Mutex // guards queue, writerOn
	queue       []*Element // stanzas waiting for the writer (bounded: SendQueueLen)
	writerOn    bool       // a writer goroutine is running
	writers     sync.WaitGroup
	done        chan struct{} // closed once by closeWith: the writer finishes
	closeOnce   sync.Once
	closeReason string // why the connection closed: the first reason, set under closeOnce
	finalErr    atomic.Pointer[Element]
	writing     atomic.Bool // writes go through the queue (set at bind)
	slow        atomic.Bool // the queue overflowed: closed as a slow consumer

	smOn bool          // XEP-0198 enabled (reader goroutine)
	smIn atomic.Uint32 // stanzas taken since enable (the h of <a/> unless some are held)
	hd   holds         // stanzas handled but not done (held.go)
	smID string        // resume id (reader goroutine; "" when not resumable)
	// After a resumption the session's stanzas go to the stream that
	// resumed it (next); detached (under qmu): the stream died and the
	// session waits for its client until timer fires; resumed (under
	// qmu): another stream took the session over.
	next     atomic.Pointer[conn]
	detached bool
	resumed  bool
	timer    *time.Timer
	// XEP-0198 outbound state, all under qmu: set once at enable (sm,
	// read by other goroutines, hence atomic), the stanzas sent and not
	// acknowledged (oldest first, bounded by SMMaxUnacked), the h of the
	// last <a/>, and stanzas sent since the last <r/>.
	sm       atomic.Bool
	unacked  []*Element
	smAcked  uint32
	sinceReq int

	limiter  *rate.Limiter // stanzas: Options.RateStanzas per second, bursts of RateBurst; nil: unlimited
	deadline time.Time     // read deadline last set
	idle     idleWaiter    // the transport, when it can wait for input outside the decoder
	tk       *ticket       // its place under the connection caps (nil: uncapped)
	tryLogin string        // the login of the last SASL attempt, for the throttle
}

// serveTransport serves one stream; tk is its place under the connection
// caps, released when it ends.
func (s *Server) serveTransport(t Transport, tk *ticket) {
	c := &conn{srv: s, t: t, id: s.newConnID(), done: make(chan struct{}), tk: tk}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		t.Close()
		tk.release()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	if !c.guard(c.negotiateAndBind) {
		return
	}
	c.t.SetReadDeadline(time.Time{})
	if r := c.srv.opts.RateStanzas; r >= 0 {
		c.limiter = rate.NewLimiter(rate.Limit(r), RateBurst)
	}
	if c.idle, _ = c.t.(idleWaiter); c.idle != nil && !c.r.buffered() && !c.idle.Buffered() {
		c.r.release()
		s.start("reader", c.awaitInput)
		return
	}
	s.start("reader", func() { c.guard(c.serveUntilIdle) })
}

// errIdle is serve's answer when no input is buffered and the transport can
// wait for more outside the decoder.
var errIdle = errors.New("xmppcore: connection idle")

// serveUntilIdle reads and handles stanzas; when the connection goes idle
// it hands over to a new goroutine that waits for input with a minimal
// stack, and this one, whose stack grew under the decoder, TLS and the
// handlers, ends. A burst of stanzas is served by one goroutine; thousands
// of idle connections keep 2 KiB stacks rather than 8 KiB or more.
func (c *conn) serveUntilIdle() bool {
	err := c.serve()
	if err != errIdle {
		c.failed(err)
		return false
	}
	c.r.release()
	c.srv.start("reader", c.awaitInput)
	return true
}

// awaitInput waits, on a goroutine of its own, for input to an idle
// connection (the reader found nothing buffered), then has it served: by a
// warm reader if one is waiting, else here, after which this goroutine
// stays warm for a while.
func (c *conn) awaitInput() {
	if err := c.idle.WaitReadable(); err != nil {
		c.guard(func() bool { c.failed(err); return false })
		return
	}
	select {
	case c.srv.warm <- c:
		return
	default:
	}
	c.guard(c.serveUntilIdle)
	c.srv.stayWarm()
}

// Serving input takes a deep stack (TLS, the XML decoder, the archive's
// SQLite): a goroutine started for each burst of input grows its stack
// from the minimum every time, which cost about a tenth of the server's
// CPU under the tsung chat load. So a goroutine that has served input
// waits warmReaderIdle for another idle connection's input before it
// ends; at most warmReaders wait at once, so idle connections still
// hold no stack beyond the small one waiting for their input.
const (
	warmReaders    = 32
	warmReaderIdle = time.Second
)

// stayWarm serves other connections' input until none comes for
// warmReaderIdle, or returns at once when enough readers are warm.
func (s *Server) stayWarm() {
	if s.warmIdle.Add(1) > warmReaders {
		s.warmIdle.Add(-1)
		return
	}
	t := time.NewTimer(warmReaderIdle)
	defer t.Stop()
	for {
		select {
		case c := <-s.warm:
			s.warmIdle.Add(-1)
			c.guard(c.serveUntilIdle)
			if s.warmIdle.Add(1) > warmReaders {
				s.warmIdle.Add(-1)
				return
			}
			t.Reset(warmReaderIdle)
		case <-t.C:
			s.warmIdle.Add(-1)
			return
		case <-s.ctx.Done():
			s.warmIdle.Add(-1)
			return
		}
	}
}

// logger returns a logger for the connection, made when something is
// logged (idle connections keep no logger).
func (c *conn) logger() *slog.Logger {
	l := c.srv.log.With("conn", c.id, "remote", c.t.RemoteAddr())
	if c.user != "" {
		l = l.With("user", c.user)
	}
	return l
}

// guard runs a phase of the connection; when it returns false (or
// panics) the connection is torn down.
func (c *conn) guard(f func() bool) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			c.logger().Error("connection panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.closeFromReader(closeProtocol, streamError("internal-server-error", ""))
			ok = false
		}
		if !ok {
			c.finish()
		}
	}()
	return f()
}

// finish tears the connection down: the session leaves the router (with
// unavailable presence), the writer finishes, the transport is closed.
func (c *conn) finish() {
	// closeWith is a no-op when the connection was closed already; after
	// it closeReason holds the first reason given.
	c.closeWith(closeIO, nil)
	if c.sess != nil && !c.detach() {
		c.forget()
		c.sess.end(c.closeReason)
		c.releaseUnacked()
	}
	c.writers.Wait()
	c.t.Close()
	c.tk.release()
	c.srv.mu.Lock()
	delete(c.srv.conns, c)
	c.srv.mu.Unlock()
}

// negotiateAndBind runs the negotiation; false when the stream ended.
func (c *conn) negotiateAndBind() bool {
	start := time.Now()
	c.t.SetReadDeadline(start.Add(c.srv.opts.AuthTimeout))
	c.r = newStreamReader(c.t, c.t.Framed())
	sess, err := c.negotiate()
	if err != nil {
		c.failed(err)
		return false
	}
	c.sess = sess
	c.tk.authenticated()
	if on := c.srv.opts.OnLogin; on != nil {
		on(time.Since(start))
	}
	return true
}

// failed ends the stream for err (nil: a clean close by the peer).
func (c *conn) failed(err error) {
	var cond, reason string
	var tooHigh *handledTooHigh
	var syn *xml.SyntaxError
	if errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &syn) && syn.Msg == "unexpected EOF") {
		// The transport ended inside the stream: a lost connection (a
		// resumable XEP-0198 session waits for its client).
		c.closeFromReader(closeIO, nil)
		return
	}
	switch {
	case err == nil || errors.Is(err, errStreamClosed):
		c.closeFromReader(closeNormal, nil)
		return
	case errors.Is(err, errTooLarge):
		cond, reason = "policy-violation", closeProtocol
	case errors.Is(err, errTooDeep):
		cond, reason = "policy-violation", closeProtocol
	case errors.Is(err, errRestrictedXML):
		cond, reason = "restricted-xml", closeProtocol
	case errors.Is(err, errBadStreamHeader):
		cond, reason = "invalid-namespace", closeProtocol
	case errors.As(err, &tooHigh):
		e := streamError("undefined-condition", "")
		e.AddChild(NewElement(NSSM, "handled-count-too-high", "h", strconv.FormatUint(uint64(tooHigh.h), 10), "send-count", strconv.FormatUint(uint64(tooHigh.sent), 10)))
		c.closeFromReader(closeProtocol, e)
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		cond, reason = "connection-timeout", closeTimeout
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrClosedPipe):
		c.closeFromReader(closeIO, nil)
		return
	default:
		var nwf *notWellFormed
		var se *streamErr
		switch {
		case errors.As(err, &nwf):
			cond, reason = "not-well-formed", closeProtocol
		case errors.As(err, &se):
			c.closeFromReader(closeProtocol, streamError(se.cond, se.text))
			return
		default:
			c.logger().Debug("connection error", "err", err)
			c.closeFromReader(closeIO, nil)
			return
		}
	}
	c.logger().Debug("stream error", "condition", cond, "err", err)
	c.closeFromReader(reason, streamError(cond, ""))
}

// streamErr is a stream error decided during negotiation.
type streamErr struct{ cond, text string }

func (e *streamErr) Error() string { return "xmppcore: stream error " + e.cond }

// closeWith ends the stream: the writer writes errEl if any and the
// stream close, then closes the transport. Before the writer runs, only
// the transport is closed (the reader goroutine uses closeFromReader to
// write the error itself). Idempotent; safe from any goroutine.
func (c *conn) closeWith(reason string, errEl *Element) {
	c.closeOnce.Do(func() {
		c.closeReason = reason
		if errEl != nil {
			c.finalErr.Store(errEl)
		}
		close(c.done)
		if !c.writing.Load() {
			c.t.Close()
			return
		}
		c.kickWriter()
	})
}

// closeFromReader is closeWith for the reader goroutine, which may write
// the final error itself while no writer runs.
func (c *conn) closeFromReader(reason string, errEl *Element) {
	if c.writing.Load() {
		c.closeWith(reason, errEl)
		return
	}
	c.closeOnce.Do(func() {
		c.closeReason = reason
		close(c.done)
		if reason != closeNormal && reason != closeIO {
			c.logger().Debug("closing connection", "reason", reason)
		}
		c.t.SetWriteDeadline(time.Now().Add(time.Second))
		if errEl != nil {
			c.t.WriteElement(errEl)
		}
		c.t.WriteClose()
		c.t.Close()
	})
}

// write sends an element from the reader goroutine: directly during
// negotiation, through the writer once it runs.
func (c *conn) write(el *Element) error {
	if c.writing.Load() {
		c.Deliver(el)
		return nil
	}
	c.t.WriteElement(el)
	return c.t.Flush()
}

// startWriter hands all further writing to the writer goroutine.
func (c *conn) startWriter() { c.writing.Store(true) }

// Deliver queues el for the writer; a full queue closes the connection.
func (c *conn) Deliver(el *Element) bool {
	if n := c.next.Load(); n != nil {
		return n.Deliver(el)
	}
	select {
	case <-c.done:
		return c.deliverDetached(el)
	default:
	}
	c.qmu.Lock()
	if n := c.next.Load(); n != nil {
		// Resumed by another stream while this one was still open.
		c.qmu.Unlock()
		return n.Deliver(el)
	}
	sm := c.sm.Load()
	if len(c.queue) >= SendQueueLen || (sm && len(c.unacked) >= SMMaxUnacked) {
		c.qmu.Unlock()
		c.slow.Store(true)
		c.closeWith(closeSlowConsumer, streamError("policy-violation", "too slow"))
		// The writer is stuck on a peer that does not read: closing the
		// transport unblocks it at once instead of after WriteTimeout.
		c.t.Close()
		return false
	}
	c.queue = append(c.queue, el)
	if sm {
		c.unacked = append(c.unacked, el)
		c.sinceReq++
		if c.sinceReq >= SMRequestEvery {
			c.queue = append(c.queue, smRequest)
			c.sinceReq = 0
		}
	}
	if !c.writerOn {
		c.writerOn = true
		c.writers.Add(1)
		c.srv.start("writer", c.writer)
	}
	c.qmu.Unlock()
	return true
}

// deliverDetached keeps a stanza for a resumable session whose stream
// died, to be sent when the client resumes (bounded by SMMaxUnacked).
func (c *conn) deliverDetached(el *Element) bool {
	c.qmu.Lock()
	if n := c.next.Load(); n != nil {
		c.qmu.Unlock()
		return n.Deliver(el)
	}
	if !c.detached || len(c.unacked) >= SMMaxUnacked {
		c.qmu.Unlock()
		return false
	}
	c.unacked = append(c.unacked, el)
	c.qmu.Unlock()
	return true
}

// deliverNonza queues a stream-management or other element that is not a
// stanza: it is not counted or kept for acknowledgement.
func (c *conn) deliverNonza(el *Element) { c.deliverNonzaThen(el, nil) }

// deliverNonzaThen is deliverNonza that also runs then (when not nil)
// under the queue's lock, right after el is queued.
func (c *conn) deliverNonzaThen(el *Element, then func()) {
	select {
	case <-c.done:
		return
	default:
	}
	c.qmu.Lock()
	c.queue = append(c.queue, el)
	if then != nil {
		then()
	}
	if !c.writerOn {
		c.writerOn = true
		c.writers.Add(1)
		c.srv.start("writer", c.writer)
	}
	c.qmu.Unlock()
}

// smRequest is the server's ack request (shared, never mutated).
var smRequest = NewElement(NSSM, "r")

// kickWriter makes sure a writer runs (to write the end of the stream).
func (c *conn) kickWriter() {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if !c.writerOn {
		c.writerOn = true
		c.writers.Add(1)
		c.srv.start("writer", c.writer)
	}
}

// Close implements Sink: the session is being closed by the server.
func (c *conn) Close(reason string) {
	if n := c.next.Load(); n != nil {
		n.Close(reason)
		return
	}
	cond := ""
	switch reason {
	case closeConflict:
		cond = "conflict"
	case closeDeactivated, closeRevoked:
		cond = "not-authorized"
	case closeShutdown:
		cond = "system-shutdown"
	case closeSlowConsumer:
		cond = "policy-violation"
	}
	if cond != "" {
		c.closeWith(reason, streamError(cond, ""))
	} else {
		c.closeWith(reason, nil)
	}
}

// writer drains the queue, batching what is queued into one flush, and
// exits when the queue is empty (an idle connection has no writer). When
// the connection is closing it writes the final error and the stream
// close and closes the transport.
func (c *conn) writer() {
	defer c.writers.Done()
	var batch []*Element
	for {
		select {
		case <-c.done:
			c.qmu.Lock()
			c.queue = nil
			c.qmu.Unlock()
			c.t.SetWriteDeadline(time.Now().Add(time.Second))
			if e := c.finalErr.Load(); e != nil {
				c.t.WriteElement(e)
			}
			c.t.WriteClose()
			c.t.Close()
			return // writerOn stays true: no writer starts again
		default:
		}
		c.qmu.Lock()
		if len(c.queue) == 0 && c.sinceReq > 0 {
			// The end of a burst: ask the client what it has handled.
			c.queue = append(c.queue, smRequest)
			c.sinceReq = 0
		}
		batch, c.queue = c.queue, batch[:0]
		if len(batch) == 0 {
			c.queue = nil
			select {
			case <-c.done:
				c.qmu.Unlock()
				continue
			default:
			}
			c.writerOn = false
			c.qmu.Unlock()
			return
		}
		c.qmu.Unlock()
		c.t.SetWriteDeadline(time.Now().Add(WriteTimeout))
		for i, el := range batch {
			c.t.WriteElement(el)
			batch[i] = nil
		}
		if err := c.t.Flush(); err != nil {
			c.closeWith(closeIO, nil)
		}
		if cap(batch) > 64 {
			batch = nil
		}
	}
}

// --- negotiation -----------------------------------------------------------

// negotiate runs STARTTLS, SASL and resource binding; it returns the
// bound session.
func (c *conn) negotiate() (*Session, error) {
	var acc *Account
	failures := 0
	for {
		ev, err := c.r.next()
		if err != nil {
			return nil, err
		}
		if ev.open == nil {
			if ev.close {
				return nil, errStreamClosed
			}
			return nil, &streamErr{cond: "invalid-namespace"}
		}
		if err := c.openStream(ev.open); err != nil {
			return nil, err
		}
		features := NewElement(NSStream, "features")
		features.AddChild(c.srv.serverCaps()) // XEP-0115 server capabilities
		needTLS := !c.t.Secure() && c.srv.opts.TLSConfig != nil && !c.t.Framed()
		switch {
		case needTLS:
			st := NewElement(NSTLS, "starttls")
			st.AddChild(NewElement(NSTLS, "required"))
			features.AddChild(st)
		case acc == nil:
			mechs := NewElement(NSSASL, "mechanisms")
			for _, m := range c.mechanisms() {
				mechs.AddText(NSSASL, "mechanism", m)
			}
			features.AddChild(mechs)
		default:
			features.AddChild(NewElement(NSBind, "bind"))
			features.AddChild(NewElement(NSSM, "sm"))
			features.AddChild(NewElement(NSCSI, "csi"))
			features.AddChild(NewElement(NSRosterVer, "ver"))   // XEP-0237
			features.AddChild(NewElement(NSPreApproval, "sub")) // RFC 6121 §3.4
			sess := NewElement(NSSession, "session")
			sess.AddChild(NewElement(NSSession, "optional"))
			features.AddChild(sess)
		}
		c.t.WriteElement(features)
		if err := c.t.Flush(); err != nil {
			return nil, err
		}
	stanzas:
		for {
			ev, err := c.r.next()
			if err != nil {
				return nil, err
			}
			if ev.close {
				return nil, errStreamClosed
			}
			if ev.open != nil {
				// A framed client may restart at any point; treat as restart.
				if err := c.openStream(ev.open); err != nil {
					return nil, err
				}
				c.t.WriteElement(features)
				c.t.Flush()
				continue
			}
			el := ev.el
			switch {
			case needTLS:
				if el.Name.Space == NSSASL && el.Name.Local == "auth" {
					c.saslFailure(errSASLEncrypt)
					continue
				}
				if el.Name.Space != NSTLS || el.Name.Local != "starttls" {
					return nil, &streamErr{cond: "policy-violation", text: "STARTTLS required"}
				}
				c.t.WriteElement(NewElement(NSTLS, "proceed"))
				if err := c.t.Flush(); err != nil {
					return nil, err
				}
				if err := c.t.StartTLS(c.srv.opts.TLSConfig); err != nil {
					return nil, fmt.Errorf("xmppcore: tls handshake: %w", err)
				}
				c.r.reset(c.t)
				break stanzas
			case acc == nil:
				if el.Name.Space != NSSASL || el.Name.Local != "auth" {
					if el.Name.Local == "iq" || el.Name.Local == "message" || el.Name.Local == "presence" {
						return nil, &streamErr{cond: "not-authorized"}
					}
					return nil, &streamErr{cond: "policy-violation"}
				}
				a, err := c.authenticate(el)
				if err != nil {
					var f *saslFailure
					if !errors.As(err, &f) {
						return nil, err
					}
					failures++
					c.srv.count.authFailures.Add(1)
					if f == errSASLNotAuth {
						// A wrong password (or unknown login): the answer
						// waits longer with each failure (Throttle).
						t := time.NewTimer(c.srv.throttle.Failed(DoorXMPP, c.t.RemoteAddr(), c.tryLogin))
						select {
						case <-t.C:
						case <-c.srv.ctx.Done():
							t.Stop()
						}
					}
					c.saslFailure(f)
					if failures >= MaxAuthFailures {
						return nil, &streamErr{cond: "policy-violation", text: "too many authentication failures"}
					}
					continue
				}
				acc = a
				c.user = acc.Login
				if !c.t.Framed() {
					c.r.reset(c.t)
				}
				break stanzas
			default:
				if (el.Name.Local != "iq" || el.Name.Space != NSClient) && el.Name.Space != NSSM {
					return nil, &streamErr{cond: "not-authorized"}
				}
				if el.Name.Space == NSSM && el.Name.Local == "resume" {
					sess, err := c.resume(acc, el)
					if err != nil {
						return nil, err
					}
					if sess != nil {
						return sess, nil
					}
					continue
				}
				switch {
				case el.Child(NSBind, "bind") != nil && el.AttrValue("type") == "set":
					res := el.Child(NSBind, "bind").ChildText(NSBind, "resource")
					// From here on the writer goroutine writes: the session
					// can receive stanzas (or a conflict) as soon as it is bound.
					c.startWriter()
					sess, err := c.srv.bind(acc, res, c)
					if errors.Is(err, errBadResource) {
						c.write(ErrorReply(el, ErrBadRequest("")))
						continue
					} else if err != nil {
						return nil, &streamErr{cond: "system-shutdown"}
					}
					r := NewElement(NSClient, "iq", "type", "result", "id", el.AttrValue("id"))
					b := NewElement(NSBind, "bind")
					b.AddText(NSBind, "jid", sess.jidStr)
					r.AddChild(b)
					c.Deliver(r)
					return sess, nil
				case el.Child(NSSession, "session") != nil:
					c.write(NewElement(NSClient, "iq", "type", "result", "id", el.AttrValue("id")))
				default:
					c.write(ErrorReply(el, &StanzaError{Type: ErrTypeAuth, Condition: "not-authorized"}))
				}
			}
		}
	}
}

func (c *conn) mechanisms() []string {
	m := append([]string(nil), saslMechanisms...)
	if c.t.Secure() {
		m = append(m, "PLAIN")
	}
	return m
}

// openStream checks a stream header and answers with ours.
func (c *conn) openStream(h *Element) error {
	if l := h.AttrNS(nsXML, "lang"); l != "" && len(l) < 36 {
		c.lang = l
	}
	to := h.AttrValue("to")
	c.t.WriteOpen(c.srv.domain, randomID(12), "en")
	if to != c.srv.domain {
		if to == "" {
			return &streamErr{cond: "host-unknown", text: "missing to"}
		}
		return &streamErr{cond: "host-unknown"}
	}
	if v := h.AttrValue("version"); v == "" || v[0] < '1' {
		return &streamErr{cond: "unsupported-version"}
	}
	return nil
}

func (c *conn) saslFailure(f *saslFailure) {
	el := NewElement(NSSASL, "failure")
	el.AddChild(NewElement(NSSASL, f.cond))
	if f.text != "" {
		el.AddText(NSSASL, "text", f.text)
	}
	c.t.WriteElement(el)
	c.t.Flush()
}

// authenticate runs one SASL exchange started by <auth/>.
func (c *conn) authenticate(auth *Element) (*Account, error) {
	ctx, cancel := context.WithTimeout(c.srv.ctx, AuthTimeout)
	defer cancel()
	var mech saslStep
	switch auth.AttrValue("mechanism") {
	case "SCRAM-SHA-256":
		mech = &scramServer{dir: c.srv.dir, domain: c.srv.domain, newHash: sha256.New, sha256: true}
	case "SCRAM-SHA-1":
		mech = &scramServer{dir: c.srv.dir, domain: c.srv.domain, newHash: sha1.New}
	case "PLAIN":
		if !c.t.Secure() {
			return nil, errSASLEncrypt
		}
		mech = &plainServer{dir: c.srv.dir, domain: c.srv.domain}
	default:
		return nil, errSASLMech
	}
	remote := c.t.RemoteAddr()
	c.tryLogin = ""
	if c.srv.throttle.Check(DoorXMPP, remote, "") > 0 {
		return nil, errSASLThrottled
	}
	in, err := decodeSASL(auth.Text)
	if err != nil {
		return nil, err
	}
	for {
		out, done, err := mech.step(ctx, in)
		c.tryLogin = mech.login()
		if (done || err == errSASLNotAuth) && c.tryLogin != "" && c.srv.throttle.Check(DoorXMPP, remote, c.tryLogin) > 0 {
			// Refused for this account from this address, right password
			// or not: the answer must not tell.
			return nil, errSASLThrottled
		}
		if err != nil {
			return nil, err
		}
		if done {
			acc, err := c.srv.users.byLogin(ctx, mech.login())
			if err != nil || !acc.Active {
				return nil, errSASLNotAuth
			}
			c.srv.throttle.Succeeded(remote, acc.Login)
			succ := NewElement(NSSASL, "success")
			if len(out) > 0 {
				succ.Text = base64.StdEncoding.EncodeToString(out)
			}
			c.t.WriteElement(succ)
			if err := c.t.Flush(); err != nil {
				return nil, err
			}
			return acc, nil
		}
		ch := NewElement(NSSASL, "challenge")
		ch.Text = base64.StdEncoding.EncodeToString(out)
		c.t.WriteElement(ch)
		if err := c.t.Flush(); err != nil {
			return nil, err
		}
		ev, err := c.r.next()
		if err != nil {
			return nil, err
		}
		if ev.el == nil {
			return nil, errStreamClosed
		}
		switch {
		case ev.el.Name.Space == NSSASL && ev.el.Name.Local == "response":
			if in, err = decodeSASL(ev.el.Text); err != nil {
				return nil, err
			}
		case ev.el.Name.Space == NSSASL && ev.el.Name.Local == "abort":
			return nil, errSASLAborted
		default:
			return nil, &streamErr{cond: "policy-violation"}
		}
	}
}

func decodeSASL(s string) ([]byte, error) {
	if s == "=" || s == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, &saslFailure{cond: "incorrect-encoding"}
	}
	return b, nil
}

// --- after binding -----------------------------------------------------------

// serve reads stanzas until the stream ends (nil or the error that ended
// it) or no input is left to read (errIdle, with a transport that can wait).
func (c *conn) serve() error {
	ctx := c.srv.ctx
	for {
		c.touchDeadline()
		ev, err := c.r.next()
		if err != nil {
			return err
		}
		if ev.close {
			return nil
		}
		if ev.open != nil {
			return &streamErr{cond: "policy-violation", text: "unexpected stream restart"}
		}
		c.limitRate()
		c.srv.count.stanzasIn.Add(1)
		el := ev.el
		switch {
		case el.Name.Space == NSSM:
			if err := c.streamManagement(el); err != nil {
				return err
			}
		case el.Name.Space == NSCSI:
			c.clientState(el)
		case el.Name.Space != NSClient:
			return &streamErr{cond: "unsupported-stanza-type"}
		default:
			if c.smOn {
				c.smIn.Add(1)
			}
			if err := c.sess.Handle(ctx, el); err != nil {
				if errors.Is(err, errSessionEnded) {
					return nil
				}
				return &streamErr{cond: "unsupported-stanza-type"}
			}
		}
		if c.idle != nil && !c.r.buffered() && !c.idle.Buffered() {
			return errIdle
		}
	}
}

// touchDeadline keeps the idle read deadline ahead, resetting it only
// now and then (it costs a timer update).
func (c *conn) touchDeadline() {
	now := time.Now()
	if now.Add(IdleTimeout - IdleTimeout/8).After(c.deadline) {
		c.deadline = now.Add(IdleTimeout)
		c.t.SetReadDeadline(c.deadline)
	}
}

// limitRate takes a token from the connection's bucket, sleeping when it
// is empty (the kernel's buffers then push back on the client).
func (c *conn) limitRate() {
	if c.limiter == nil {
		return
	}
	if d := c.limiter.Reserve().Delay(); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.done:
		}
	}
}

// NSSM is stream management (XEP-0198). Vestnik acknowledges what it
// received (<r/> → <a h=…/>), keeps what it sent until the client
// acknowledges it, and asks for acks (<r/> after each burst written and
// every SMRequestEvery stanzas). A personal message delivered to an SM
// stream raises the delivery mark only once acknowledged, so what a
// stream that died had not acknowledged comes again as offline messages.
// A resumable session (<enable resume='true'/>) whose stream dies waits
// detached for SMResumeTimeout (detach, resume, expire).
const NSSM = "urn:xmpp:sm:3"

// NSCSI is client state indication (XEP-0352).
const NSCSI = "urn:xmpp:csi:0"

func (c *conn) streamManagement(el *Element) error {
	switch el.Name.Local {
	case "enable":
		if c.smOn {
			c.deliverNonza(smFailed("unexpected-request"))
			return nil
		}
		c.smOn = true
		en := NewElement(NSSM, "enabled")
		if r := el.AttrValue("resume"); r == "true" || r == "1" {
			c.smID = randomID(18)
			en.SetAttr("id", c.smID)
			en.SetAttr("resume", "true")
			en.SetAttr("max", strconv.Itoa(int(c.srv.opts.SMResumeTimeout/time.Second)))
			c.srv.smMu.Lock()
			c.srv.resumable[c.smID] = c
			c.srv.smMu.Unlock()
		}
		// <enabled/> and the counting start together under the queue's
		// lock: a stanza delivered meanwhile is either before <enabled/>
		// and uncounted, or after it and counted, as the client counts.
		c.deliverNonzaThen(en, func() { c.sm.Store(true) })
	case "r":
		if c.smOn {
			c.deliverNonza(NewElement(NSSM, "a", "h", strconv.FormatUint(uint64(c.handled()), 10)))
		}
	case "a":
		if !c.smOn {
			return nil
		}
		h, err := strconv.ParseUint(el.AttrValue("h"), 10, 32)
		if err != nil {
			return &streamErr{cond: "invalid-xml"}
		}
		return c.acked(uint32(h))
	case "resume":
		c.deliverNonza(smFailed("unexpected-request"))
	default:
		c.deliverNonza(smFailed("feature-not-implemented"))
	}
	return nil
}

// acked drops what the client acknowledged with <a h/> (h counts modulo
// 2^32) and confirms the archived personal messages among them (the
// delivery mark moves over what is contiguous).
func (c *conn) acked(h uint32) error {
	c.qmu.Lock()
	n := h - c.smAcked
	if uint64(n) > uint64(len(c.unacked)) {
		e := &handledTooHigh{h: h, sent: c.smAcked + uint32(len(c.unacked))}
		c.qmu.Unlock()
		return e
	}
	var ids []int64
	for i, el := range c.unacked[:n] {
		if id := c.sess.archiveID(el); id > 0 {
			ids = append(ids, id)
		}
		c.unacked[i] = nil
	}
	c.unacked = c.unacked[n:]
	if len(c.unacked) == 0 {
		c.unacked = nil
	}
	c.smAcked = h
	c.qmu.Unlock()
	c.srv.ackedIDs(c.sess.user, ids)
	return nil
}

// releaseUnacked: the stream ended for good (not resumed, not waiting
// to be); the archived messages it held unacknowledged go again by
// offline delivery (Server.released).
func (c *conn) releaseUnacked() {
	c.qmu.Lock()
	var ids []int64
	for _, el := range c.unacked {
		if id := c.sess.archiveID(el); id > 0 {
			ids = append(ids, id)
		}
	}
	c.unacked = nil
	c.qmu.Unlock()
	c.srv.released(c.sess.user, ids)
}

// handledTooHigh: the client acknowledged more than was sent (a stream
// error undefined-condition with <handled-count-too-high/>).
type handledTooHigh struct{ h, sent uint32 }

func (e *handledTooHigh) Error() string { return "xmppcore: handled count too high" }

func smFailed(cond string) *Element {
	f := NewElement(NSSM, "failed")
	f.AddChild(NewElement(NSStanzas, cond))
	return f
}

// clientState handles <inactive/> and <active/> (XEP-0352).
func (c *conn) clientState(el *Element) {
	switch el.Name.Local {
	case "inactive":
		c.sess.setInactive(true)
	case "active":
		c.sess.setInactive(false)
	}
}

// detach keeps a resumable session in the router when its stream died
// without closing (a lost connection, the idle deadline): it waits
// detached for SMResumeTimeout, its stanzas kept for the resumption.
// True when the session must not end now (also when another stream
// resumed it).
func (c *conn) detach() bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.resumed {
		return true
	}
	if c.smID == "" || (c.closeReason != closeIO && c.closeReason != closeTimeout) || c.sess.ended.Load() || c.srv.closed.Load() {
		return false
	}
	c.detached = true
	c.timer = time.AfterFunc(c.srv.opts.SMResumeTimeout, func() {
		if !c.srv.closed.Load() {
			c.srv.start("sm-expire", c.expire)
		}
	})
	return true
}

// expire ends a detached session its client did not resume in time:
// unavailable presence goes out, and the personal messages it had not
// acknowledged stay above the delivery mark (offline delivery).
func (c *conn) expire() {
	c.qmu.Lock()
	if c.resumed || !c.detached {
		c.qmu.Unlock()
		return
	}
	c.detached = false
	c.qmu.Unlock()
	c.forget()
	c.waitHeld()
	c.srv.rememberExpired(c.smID, c.sess.userID, c.handled())
	c.sess.end(closeTimeout)
	c.releaseUnacked()
}

// expiredSM is what a server remembers of a timed-out resumable session.
type expiredSM struct {
	userID int64
	h      uint32 // the client's stanzas the server handled
}

// rememberExpired keeps a timed-out resume id, so a late <resume/> gets
// <failed h/>: the client learns which of its stanzas arrived and resends
// only the others.
func (s *Server) rememberExpired(id string, userID int64, h uint32) {
	if id == "" {
		return
	}
	s.smMu.Lock()
	defer s.smMu.Unlock()
	if s.expired == nil {
		s.expired = map[string]expiredSM{}
	}
	if _, ok := s.expired[id]; !ok {
		s.expiredOrder = append(s.expiredOrder, id)
	}
	s.expired[id] = expiredSM{userID: userID, h: h}
	for len(s.expiredOrder) > SMExpiredKept {
		delete(s.expired, s.expiredOrder[0])
		s.expiredOrder = s.expiredOrder[1:]
	}
}

// forget drops the stream's resume id.
func (c *conn) forget() {
	if c.smID == "" {
		return
	}
	c.srv.smMu.Lock()
	if c.srv.resumable[c.smID] == c {
		delete(c.srv.resumable, c.smID)
	}
	c.srv.smMu.Unlock()
}

// resume takes over the session named by <resume previd h/> for an
// authenticated stream: <resumed/>, then what the client had not
// acknowledged and what queued while detached, in order; the old stream
// (if still open) is closed. An unknown, expired or other user's id
// gets <failed/> (nil session, nil error) and the client may bind.
func (c *conn) resume(acc *Account, el *Element) (*Session, error) {
	id := el.AttrValue("previd")
	h, err := strconv.ParseUint(el.AttrValue("h"), 10, 32)
	c.srv.smMu.Lock()
	old := c.srv.resumable[id]
	gone, expired := c.srv.expired[id]
	c.srv.smMu.Unlock()
	if err != nil || old == nil || old.sess.userID != acc.ID || old.sess.ended.Load() {
		f := smFailed("item-not-found")
		if old == nil && expired && gone.userID == acc.ID {
			// Timed out: say how many of the client's stanzas were handled.
			f.SetAttr("h", strconv.FormatUint(uint64(gone.h), 10))
		}
		c.t.WriteElement(f)
		return nil, c.t.Flush()
	}
	old.waitHeld() // its messages are stored or refused: h is final
	old.qmu.Lock()
	if old.resumed || old.sess.ended.Load() {
		old.qmu.Unlock()
		c.t.WriteElement(smFailed("item-not-found"))
		return nil, c.t.Flush()
	}
	n := uint32(h) - old.smAcked
	if uint64(n) > uint64(len(old.unacked)) {
		e := &handledTooHigh{h: uint32(h), sent: old.smAcked + uint32(len(old.unacked))}
		old.qmu.Unlock()
		return nil, e
	}
	var ids []int64
	for _, x := range old.unacked[:n] {
		if a := old.sess.archiveID(x); a > 0 {
			ids = append(ids, a)
		}
	}
	rest := append([]*Element(nil), old.unacked[n:]...)
	sess := old.sess
	c.sess = sess
	c.smOn = true
	c.smID = id
	c.smIn.Store(old.handled())
	c.startWriter()
	c.qmu.Lock()
	c.smAcked = uint32(h)
	c.unacked = rest
	c.sm.Store(true)
	c.queue = append(c.queue, NewElement(NSSM, "resumed", "previd", id, "h", strconv.FormatUint(uint64(c.smIn.Load()), 10)))
	c.queue = append(c.queue, rest...)
	c.sinceReq = len(rest)
	c.qmu.Unlock()
	c.kickWriter()
	old.resumed = true
	old.detached = false
	old.unacked = nil
	if old.timer != nil {
		old.timer.Stop()
	}
	old.next.Store(c)
	old.qmu.Unlock()
	c.srv.smMu.Lock()
	c.srv.resumable[id] = c
	c.srv.smMu.Unlock()
	old.closeWith(closeIO, nil) // the old stream, if still open
	c.srv.ackedIDs(sess.user, ids)
	return sess, nil
}
