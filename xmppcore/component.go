package xmppcore

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"
)

// NSComponent is the stream namespace of XEP-0114 external components.
const NSComponent = "jabber:component:accept"

// errComponentName refuses a component name that is not a domain of its
// own beside the server's.
var errComponentName = errors.New("xmppcore: a component name must be a domain other than the server's and its services'")

// AddExternalComponent configures a XEP-0114 component: name (a domain,
// e.g. push.example.com) connects to ServeComponents with secret, and
// from then on every stanza to name, *@name and name/* goes to its
// stream. Call it before serving; a name already served is refused.
func (s *Server) AddExternalComponent(name, secret string) error {
	j, err := jid.Parse(name)
	if err != nil || j.Localpart() != "" || j.Resourcepart() != "" || j.Domainpart() == s.domain {
		return fmt.Errorf("%w: %q", errComponentName, name)
	}
	if secret == "" {
		return fmt.Errorf("xmppcore: component %s: empty secret", name)
	}
	name = j.Domainpart()
	s.extMu.Lock()
	defer s.extMu.Unlock()
	if _, ok := s.components[name]; ok {
		return fmt.Errorf("%w: %q is served already", errComponentName, name)
	}
	ec := &extComponent{srv: s, name: name, secret: secret}
	s.components[name] = ec
	if s.external == nil {
		s.external = map[string]*extComponent{}
	}
	s.external[name] = ec
	return nil
}

// externalComponent returns the configured component name, or nil.
func (s *Server) externalComponent(name string) *extComponent {
	s.extMu.RLock()
	defer s.extMu.RUnlock()
	return s.external[name]
}

// extComponent is a configured external component: the Component the
// router hands stanzas for its domain, and its one stream while one is
// connected to this node.
type extComponent struct {
	srv    *Server
	name   string
	secret string

	mu  sync.Mutex // guards cur only
	cur *compConn
}

// compConn is one authenticated component stream: its reader goroutine
// (ServeComponents' per-connection goroutine) owns the reading, a writer
// goroutine drains out.
type compConn struct {
	nc     net.Conn
	out    chan []byte
	done   chan struct{}
	once   sync.Once
	log    *slog.Logger
	reason atomic.Value // string: why it closed, logged once
}

func (cc *compConn) close(reason string, streamErr *Element) {
	cc.once.Do(func() {
		cc.reason.Store(reason)
		if streamErr != nil {
			cc.nc.SetWriteDeadline(time.Now().Add(time.Second))
			cc.nc.Write(append(appendStreamElement(nil, streamErr), "</stream:stream>"...))
		}
		close(cc.done)
		cc.nc.Close()
	})
}

// send queues b for the writer; a full queue closes the stream (the
// router never waits on a component).
func (cc *compConn) send(b []byte) bool {
	select {
	case <-cc.done:
		return false
	default:
	}
	select {
	case cc.out <- b:
		return true
	default:
		cc.close("slow consumer", streamError("policy-violation", "too slow"))
		return false
	}
}

func (cc *compConn) writer() {
	for {
		select {
		case <-cc.done:
			return
		case b := <-cc.out:
			cc.nc.SetWriteDeadline(time.Now().Add(WriteTimeout))
			if _, err := cc.nc.Write(b); err != nil {
				cc.close("write failed", nil)
				return
			}
		}
	}
}

// HandleStanza sends a stanza for the component to its stream: on this
// node when it is connected here, else (in a cluster) to the node that
// holds it, else it bounces with service-unavailable.
func (ec *extComponent) HandleStanza(ctx context.Context, from jid.JID, el *Element) {
	if el.AttrValue("from") == "" {
		el = el.ShallowCopy()
		el.SetAttr("from", from.String())
	}
	if ec.deliver(el) {
		return
	}
	s := ec.srv
	if s.clustered() {
		w := NewElement(nsCluster, "component", "name", ec.name)
		w.AddChild(el)
		s.cl.Broadcast(w.String())
		return
	}
	if t := el.AttrValue("type"); el.Name.Local != "presence" && t != "error" && t != "result" {
		s.routeError(ctx, el, ErrServiceUnavailable())
	}
}

// deliver writes el to the component's stream if it is connected here.
func (ec *extComponent) deliver(el *Element) bool {
	ec.mu.Lock()
	cc := ec.cur
	ec.mu.Unlock()
	if cc == nil {
		return false
	}
	return cc.send(retag(el, NSClient, NSComponent).AppendXML(nil, NSComponent))
}

// clusterComponent delivers a stanza another node routed to component
// name, if its stream is here (every node hears it; one holds it).
func (s *Server) clusterComponent(w *Element) {
	ec := s.externalComponent(w.AttrValue("name"))
	if ec == nil || len(w.Children) != 1 {
		return
	}
	ec.deliver(w.Children[0])
}

// retag returns a copy of el with every element in namespace from moved
// to namespace to (jabber:client and jabber:component:accept name the
// same stanzas).
func retag(el *Element, from, to string) *Element {
	c := *el
	if c.Name.Space == from {
		c.Name.Space = to
	}
	if len(el.Children) > 0 {
		c.Children = make([]*Element, len(el.Children))
		for i, ch := range el.Children {
			c.Children[i] = retag(ch, from, to)
		}
	}
	return &c
}

// ServeComponents accepts XEP-0114 component streams on ln until
// Shutdown. Each names a component configured with AddExternalComponent
// in its stream header and proves the secret with the handshake
// (hex SHA-1 of the stream id and the secret) within
// ComponentHandshakeTimeout; at most MaxComponentPending connections may
// be in the handshake at once, and one stream per component is served
// (a second one is refused with <conflict/> while the first lives).
func (s *Server) ServeComponents(ln net.Listener) error {
	forget, err := s.trackListener(ln)
	if err != nil {
		return err
	}
	defer forget()
	var pending atomic.Int32
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closed.Load() {
				return errServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("xmppcore: accept component: %w", err)
			}
			s.log.Warn("accept component failed", "err", err)
			select {
			case <-time.After(AcceptBackoffMax):
			case <-s.ctx.Done():
			}
			continue
		}
		if pending.Add(1) > MaxComponentPending {
			pending.Add(-1)
			c.Close()
			continue
		}
		s.start("component", func() { s.serveComponent(c, &pending) })
	}
}

// serveComponent runs one component connection: header, handshake, then
// its stanzas into the router.
func (s *Server) serveComponent(nc net.Conn, pending *atomic.Int32) {
	log := s.log.With("remote", nc.RemoteAddr().String())
	counted := true
	defer func() {
		if counted {
			pending.Add(-1)
		}
	}()
	fail := func(cond, text string) {
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		nc.Write(append(appendStreamElement(nil, streamError(cond, text)), "</stream:stream>"...))
		nc.Close()
		log.Info("component refused", "reason", cond)
	}
	nc.SetDeadline(time.Now().Add(s.opts.ComponentHandshakeTimeout))
	sr := newStreamReader(nc, false)
	defer sr.release()
	ev, err := sr.next()
	if err != nil || ev.open == nil {
		nc.Write([]byte(streamHeaderComponent(s.domain, "")))
		fail("invalid-xml", "")
		return
	}
	name := ev.open.AttrValue("to")
	ec := s.externalComponent(name)
	id := componentStreamID()
	nc.Write([]byte(streamHeaderComponent(name, id)))
	if ec == nil {
		fail("host-unknown", "")
		return
	}
	ev, err = sr.next()
	if err != nil || ev.el == nil || ev.el.Name.Space != NSComponent || ev.el.Name.Local != "handshake" {
		fail("not-authorized", "")
		return
	}
	sum := sha1.Sum([]byte(id + ec.secret))
	want := hex.EncodeToString(sum[:])
	got := strings.ToLower(strings.TrimSpace(ev.el.Text))
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		fail("not-authorized", "")
		return
	}
	cc := &compConn{nc: nc, out: make(chan []byte, ComponentQueue), done: make(chan struct{}),
		log: log.With("component", ec.name)}
	ec.mu.Lock()
	busy := ec.cur != nil
	if !busy {
		ec.cur = cc
	}
	ec.mu.Unlock()
	if busy {
		fail("conflict", "the component is connected already")
		return
	}
	pending.Add(-1)
	counted = false
	s.mu.Lock()
	closed := s.closed.Load()
	if !closed {
		s.compConns[cc] = struct{}{}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.compConns, cc)
		s.mu.Unlock()
		ec.mu.Lock()
		if ec.cur == cc {
			ec.cur = nil
		}
		ec.mu.Unlock()
		r, _ := cc.reason.Load().(string)
		cc.log.Info("component disconnected", "reason", r)
	}()
	if closed {
		cc.close("server shutdown", streamError("system-shutdown", ""))
		return
	}
	nc.SetDeadline(time.Time{})
	s.start("component writer", cc.writer)
	cc.send([]byte("<handshake/>"))
	cc.log.Info("component connected")
	for {
		ev, err := sr.next()
		if err != nil {
			switch {
			case errors.Is(err, errTooLarge):
				cc.close("stanza too large", streamError("policy-violation", "stanza too large"))
			case errors.As(err, new(*notWellFormed)):
				cc.close("not well-formed", streamError("not-well-formed", ""))
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
				cc.close("closed", nil)
			default:
				cc.close("read failed", nil)
			}
			return
		}
		if ev.close {
			cc.send([]byte("</stream:stream>"))
			cc.close("closed by component", nil)
			return
		}
		if ev.el == nil {
			continue
		}
		if ev.el.Name.Space != NSComponent {
			cc.close("bad namespace", streamError("invalid-namespace", ""))
			return
		}
		el := retag(ev.el, NSComponent, NSClient)
		switch el.Name.Local {
		case "message", "presence", "iq":
		default:
			cc.close("unsupported stanza", streamError("unsupported-stanza-type", ""))
			return
		}
		from, err := jid.Parse(el.AttrValue("from"))
		if err != nil || from.Domainpart() != ec.name {
			cc.close("invalid from", streamError("invalid-from", "the 'from' must be in the component's domain"))
			return
		}
		s.fromComponent(s.ctx, ec, el)
	}
}

// fromComponent routes a stanza the component sent: answers to the
// server's own requests, pings and disco#info of the server, and the
// rest by its 'to' like any service's stanza (Route).
func (s *Server) fromComponent(ctx context.Context, ec *extComponent, el *Element) {
	to, err := jid.Parse(el.AttrValue("to"))
	if err != nil {
		if t := el.AttrValue("type"); t != "error" && t != "result" {
			ec.deliver(ErrorReply(el, ErrJIDMalformed()))
		}
		return
	}
	typ := el.AttrValue("type")
	if to.Localpart() == "" && to.Resourcepart() == "" && to.Domainpart() == s.domain {
		if el.Name.Local != "iq" {
			return
		}
		switch typ {
		case "result", "error":
			s.answered(el)
			return
		}
		var res *Element
		var e *StanzaError
		p := el.FirstChild()
		switch {
		case p == nil || len(el.Children) != 1:
			e = ErrBadRequest("")
		case p.Name.Space == NSPing && typ == "get":
		case p.Name.Space == NSDiscoInfo && typ == "get" && p.AttrValue("node") == "":
			res = s.serverInfo()
		default:
			e = ErrServiceUnavailable()
		}
		if e != nil {
			ec.deliver(ErrorReply(el, e))
			return
		}
		r := NewElement(NSClient, "iq", "type", "result", "id", el.AttrValue("id"), "from", s.domain, "to", el.AttrValue("from"))
		if res != nil {
			r.AddChild(res)
		}
		ec.deliver(r)
		return
	}
	if to.Domainpart() == s.domain && to.Localpart() != "" {
		// A user who blocked the component (or a JID of it) gets
		// nothing from it (XEP-0191), as from a colleague.
		if acc, err := s.users.byLogin(ctx, to.Localpart()); err == nil && s.isBlocked(ctx, acc.ID, el.AttrValue("from")) {
			if typ == "get" || typ == "set" {
				ec.deliver(ErrorReply(el, ErrServiceUnavailable()))
			}
			return
		}
	}
	if to.Domainpart() != s.domain && s.component(to.Domainpart()) == nil {
		if typ != "error" && typ != "result" && el.Name.Local != "presence" {
			ec.deliver(ErrorReply(el, ErrRemoteServerNotFound()))
		}
		return
	}
	s.Route(ctx, el)
}

// streamHeaderComponent is the server's stream header to a component.
func streamHeaderComponent(from, id string) string {
	var b strings.Builder
	b.WriteString("<?xml version='1.0'?><stream:stream xmlns:stream='")
	b.WriteString(NSStream)
	b.WriteString("' xmlns='")
	b.WriteString(NSComponent)
	b.WriteString("' from='")
	b.WriteString(escapeString(from))
	if id != "" {
		b.WriteString("' id='")
		b.WriteString(id)
	}
	b.WriteString("'>")
	return b.String()
}

// componentStreamID is a fresh stream id (the handshake hashes it).
func componentStreamID() string {
	var b [12]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// closeComponents ends every component stream (Shutdown).
func (s *Server) closeComponents() {
	s.mu.Lock()
	ccs := make([]*compConn, 0, len(s.compConns))
	for cc := range s.compConns {
		ccs = append(ccs, cc)
	}
	s.mu.Unlock()
	for _, cc := range ccs {
		cc.close("server shutdown", streamError("system-shutdown", ""))
	}
}

// pendingIQ is a request the server sent (to a component) and waits on.
type pendingIQ struct {
	to, from string
	done     func(reply *Element) // the result or error; nil on timeout
	timer    *time.Timer
}

// SendIQ sends an IQ get or set from the server — from the domain, or
// from the bare JID of an account when iq has that 'from' (XEP-0357
// publishes for the user) — with an id of its own, and calls done with
// the reply (a result or an error stanza), or with nil after timeout.
// done runs on the goroutine that handles the reply (or a timer's); it
// must not block.
func (s *Server) SendIQ(ctx context.Context, iq *Element, timeout time.Duration, done func(reply *Element)) {
	id := s.iqPrefix + strconv.FormatUint(s.iqSeq.Add(1), 36)
	iq.SetAttr("id", id)
	if iq.AttrValue("from") == "" {
		iq.SetAttr("from", s.domain)
	}
	p := &pendingIQ{to: iq.AttrValue("to"), from: iq.AttrValue("from"), done: done}
	s.iqMu.Lock()
	if s.iqWait == nil {
		s.iqWait = map[string]*pendingIQ{}
	}
	s.iqWait[id] = p
	p.timer = time.AfterFunc(timeout, func() {
		if s.takePending(id) != nil {
			done(nil)
		}
	})
	s.iqMu.Unlock()
	s.Route(ctx, iq)
}

func (s *Server) takePending(id string) *pendingIQ {
	s.iqMu.Lock()
	defer s.iqMu.Unlock()
	p := s.iqWait[id]
	delete(s.iqWait, id)
	return p
}

// answered hands a reply to the server's own request to its waiter: on
// this node, else (in a cluster: the request may have come from another
// node) to the other nodes.
func (s *Server) answered(el *Element) {
	if !s.answeredHere(el) && s.clustered() {
		w := NewElement(nsCluster, "answer")
		w.AddChild(el)
		s.cl.Broadcast(w.String())
	}
}

// answeredHere hands a reply to a request of this node to its waiter; an
// answer from another address than the one asked is not one.
func (s *Server) answeredHere(el *Element) bool {
	id := el.AttrValue("id")
	s.iqMu.Lock()
	p := s.iqWait[id]
	if p == nil || p.to != el.AttrValue("from") || p.from != el.AttrValue("to") {
		s.iqMu.Unlock()
		return false
	}
	delete(s.iqWait, id)
	s.iqMu.Unlock()
	p.timer.Stop()
	p.done(el)
	return true
}

// connected reports whether the component's stream is on this node.
func (ec *extComponent) connected() bool {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	return ec.cur != nil
}

// Serves reports whether stanzas to domain reach something here: the
// server's own domain, a service or a configured component.
func (s *Server) Serves(domain string) bool {
	return domain == s.domain || s.component(domain) != nil
}
