package xmppcore

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// XMPP over BOSH (XEP-0124, XEP-0206) at /http-bind: each BOSH session is
// a Transport to the same stream code as TCP and WebSocket (serveTransport:
// SASL, bind, the session, its limits). HTTP requests carry the client's
// stanzas to the transport's reader as RFC 7395-style framed input
// (<open/>, the stanzas, <close/>); the stanzas the session writes wait in
// a bounded buffer until a held request takes them.
const (
	NSHTTPBind = "http://jabber.org/protocol/httpbind"
	NSXBOSH    = "urn:xmpp:xbosh"
)

// boshHandler serves /http-bind and holds the live BOSH sessions by sid.
type boshHandler struct {
	srv        *Server
	inactivity time.Duration // BOSHInactivity; shorter in tests
	mu         sync.Mutex    // guards sessions
	sessions   map[string]*boshTransport
}

// BOSHHandler serves XMPP over BOSH (XEP-0206); mount it at /http-bind
// (POST, and OPTIONS for cross-origin clients). A session counts as
// secure when its creating request came over TLS. Sessions are under the
// same connection caps as TCP and WebSocket.
func (s *Server) BOSHHandler() http.Handler {
	return &boshHandler{srv: s, inactivity: BOSHInactivity, sessions: make(map[string]*boshTransport)}
}

// boshTransport is one BOSH session as a Transport.
type boshTransport struct {
	h      *boshHandler
	sid    string
	remote string
	secure bool
	wait   time.Duration

	in   chan []byte   // framed input for the reader
	cur  []byte        // what Read has not returned yet of the current input
	done chan struct{} // closed by Close
	once sync.Once

	mu       sync.Mutex // guards the fields below
	deadline time.Time  // the reader's deadline
	out      []byte     // written, not yet sent to the client
	closing  bool       // WriteClose: the next answer terminates
	nextRID  int64      // the rid the next request must carry
	ridMoved chan struct{}
	lastRID  int64  // the rid last answered
	lastResp []byte // and its answer, for a retransmission
	held     []chan struct{}
	notify   chan struct{} // output or state changed (cap 1)
	idle     *time.Timer   // inactivity: ends the session with no request held
}

func (t *boshTransport) Read(p []byte) (int, error) {
	for len(t.cur) == 0 {
		t.mu.Lock()
		d := t.deadline
		t.mu.Unlock()
		var timeout <-chan time.Time
		if !d.IsZero() {
			tm := time.NewTimer(time.Until(d))
			defer tm.Stop()
			timeout = tm.C
		}
		select {
		case b := <-t.in:
			t.cur = b
		case <-t.done:
			return 0, io.EOF
		case <-timeout:
			return 0, os.ErrDeadlineExceeded
		}
	}
	n := copy(p, t.cur)
	t.cur = t.cur[n:]
	return n, nil
}

// feed hands framed input to the reader; false when the session ended or
// its reader does not keep up.
func (t *boshTransport) feed(b []byte) bool {
	select {
	case t.in <- b:
		return true
	case <-t.done:
		return false
	case <-time.After(BOSHFeedTimeout):
		return false
	}
}

func (t *boshTransport) WriteOpen(from, id, lang string) error { return nil }

func (t *boshTransport) WriteClose() error {
	t.mu.Lock()
	t.closing = true
	t.mu.Unlock()
	t.signal()
	return nil
}

func (t *boshTransport) WriteElement(el *Element) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.out) > BOSHMaxPending {
		return errBOSHBacklog
	}
	if el.Name.Space == NSStream {
		// stream:features and stream:error, with the prefix the body
		// declares.
		t.out = append(t.out, "<stream:"+el.Name.Local+">"...)
		for _, c := range el.Children {
			t.out = c.AppendXML(t.out, NSStream)
		}
		t.out = append(t.out, "</stream:"+el.Name.Local+">"...)
		return nil
	}
	t.out = el.AppendXML(t.out, NSHTTPBind)
	return nil
}

var errBOSHBacklog = errors.New("xmppcore: bosh client does not fetch its stanzas")

func (t *boshTransport) Flush() error {
	t.signal()
	return nil
}

func (t *boshTransport) signal() {
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

func (t *boshTransport) StartTLS(*tls.Config) error { return errNoTLS }
func (t *boshTransport) Secure() bool               { return t.secure }
func (t *boshTransport) Framed() bool               { return true }
func (t *boshTransport) SetReadDeadline(d time.Time) error {
	t.mu.Lock()
	t.deadline = d
	t.mu.Unlock()
	return nil
}
func (t *boshTransport) SetWriteDeadline(time.Time) error { return nil }
func (t *boshTransport) RemoteAddr() string               { return t.remote }

func (t *boshTransport) Close() error {
	t.once.Do(func() {
		close(t.done)
		t.h.mu.Lock()
		delete(t.h.sessions, t.sid)
		t.h.mu.Unlock()
		t.mu.Lock()
		if t.idle != nil {
			t.idle.Stop()
		}
		t.mu.Unlock()
	})
	return nil
}

func (h *boshHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Web clients are served from other origins; the stream authenticates
	// with SASL, no cookie (as at /xmpp-websocket).
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
	w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, "XMPP over BOSH (XEP-0206): POST a <body/>", http.StatusMethodNotAllowed)
		return
	}
	// A held request outlives the server's write timeout for ordinary
	// answers.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(BOSHMaxWait + BOSHFeedTimeout + 5*time.Second))
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, BOSHMaxRequest))
	if err != nil {
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return
	}
	data = bytes.TrimSpace(data)
	if bytes.HasPrefix(data, []byte("<?xml")) {
		if i := bytes.Index(data, []byte("?>")); i > 0 {
			data = data[i+2:]
		}
	}
	els, err := ParseFragment(string(data))
	if err != nil || len(els) != 1 || els[0].Name.Space != NSHTTPBind || els[0].Name.Local != "body" {
		http.Error(w, "a BOSH <body/> expected", http.StatusBadRequest)
		return
	}
	body := els[0]
	rid, err := strconv.ParseInt(body.AttrValue("rid"), 10, 64)
	if err != nil || rid <= 0 {
		writeBody(w, terminate("bad-request"))
		return
	}
	if sid := body.AttrValue("sid"); sid != "" {
		h.mu.Lock()
		t := h.sessions[sid]
		h.mu.Unlock()
		if t == nil {
			writeBody(w, terminate("item-not-found"))
			return
		}
		t.request(w, r, body, rid)
		return
	}
	h.create(w, r, body, rid)
}

// create starts a session (XEP-0124 §7.1, XEP-0206 §4) and answers with
// its parameters and the stream features.
func (h *boshHandler) create(w http.ResponseWriter, r *http.Request, body *Element, rid int64) {
	s := h.srv
	if to := body.AttrValue("to"); to != s.domain {
		writeBody(w, terminate("host-unknown"))
		return
	}
	if v := xboshAttr(body, "version"); v != "" && v != "1.0" {
		writeBody(w, terminate("undefined-condition"))
		return
	}
	wait := BOSHMaxWait
	if n, err := strconv.Atoi(body.AttrValue("wait")); err == nil && n >= 0 && time.Duration(n)*time.Second < wait {
		wait = time.Duration(n) * time.Second
	}
	tk := s.admit.admit(r.RemoteAddr, true)
	if tk == nil {
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	var raw [15]byte
	rand.Read(raw[:])
	t := &boshTransport{h: h, sid: base64.RawURLEncoding.EncodeToString(raw[:]), remote: r.RemoteAddr, secure: r.TLS != nil,
		wait: wait, in: make(chan []byte, 4), done: make(chan struct{}), nextRID: rid, ridMoved: make(chan struct{}),
		notify: make(chan struct{}, 1)}
	h.mu.Lock()
	h.sessions[t.sid] = t
	h.mu.Unlock()
	s.start("bosh", func() { s.serveTransport(t, tk) })
	lang := ""
	for _, a := range body.Attr {
		if a.Name.Local == "lang" && a.Name.Space != "" {
			lang = a.Value
		}
	}
	open := NewElement(NSFraming, "open", "to", s.domain, "version", "1.0")
	if lang != "" {
		open.Attr = append(open.Attr, xmlLangAttr(lang))
	}
	attrs := []string{"sid", t.sid, "wait", strconv.Itoa(int(wait / time.Second)), "hold", "1",
		"requests", strconv.Itoa(BOSHRequests), "inactivity", strconv.Itoa(int(h.inactivity / time.Second)),
		"polling", "1", "maxpause", "0", "ver", "1.11", "from", s.domain, "xmpp:version", "1.0",
		"xmlns:xmpp", NSXBOSH, "xmlns:stream", NSStream}
	t.serve(w, r, rid, open.String(), attrs)
}

// request handles a request of a live session: it is answered in rid
// order (a retransmission of the last one gets its answer again).
func (t *boshTransport) request(w http.ResponseWriter, r *http.Request, body *Element, rid int64) {
	t.mu.Lock()
	for rid > t.nextRID && rid <= t.nextRID+BOSHRequests {
		// A request overtook its predecessor on another connection.
		moved := t.ridMoved
		t.mu.Unlock()
		select {
		case <-moved:
		case <-t.done:
			writeBody(w, terminate("item-not-found"))
			return
		case <-time.After(BOSHFeedTimeout):
			t.Close()
			writeBody(w, terminate("item-not-found"))
			return
		}
		t.mu.Lock()
	}
	if rid == t.lastRID && t.lastResp != nil {
		resp := t.lastResp
		t.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.Write(resp)
		return
	}
	t.mu.Unlock()
	if rid != t.nextRIDValue() {
		t.Close()
		writeBody(w, terminate("item-not-found"))
		return
	}
	var in bytes.Buffer
	for _, c := range body.Children {
		toClientNS(c) // a stanza written without its namespace
		in.Write(c.AppendXML(nil, ""))
	}
	if xboshAttr(body, "restart") == "true" {
		in.WriteString(NewElement(NSFraming, "open", "to", t.h.srv.domain, "version", "1.0").String())
	}
	if body.AttrValue("type") == "terminate" {
		in.WriteString(NewElement(NSFraming, "close").String())
	}
	t.serve(w, r, rid, in.String(), nil)
}

func (t *boshTransport) nextRIDValue() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nextRID
}

// serve passes input to the reader, then holds the request until there
// is output, the wait is over, a newer request comes, or the session ends.
func (t *boshTransport) serve(w http.ResponseWriter, r *http.Request, rid int64, input string, attrs []string) {
	kick := make(chan struct{})
	t.mu.Lock()
	t.nextRID = rid + 1
	close(t.ridMoved)
	t.ridMoved = make(chan struct{})
	if t.idle != nil {
		t.idle.Stop()
	}
	// hold='1': a newer request releases the one held before it.
	for len(t.held) >= 1 {
		close(t.held[0])
		t.held = t.held[1:]
	}
	t.held = append(t.held, kick)
	t.mu.Unlock()
	if input != "" && !t.feed([]byte(input)) {
		t.Close()
	}
	timer := time.NewTimer(t.wait)
	defer timer.Stop()
	for {
		t.mu.Lock()
		out, closing := t.out, t.closing
		ended := false
		select {
		case <-t.done:
			ended = true
		default:
		}
		if len(out) > 0 || closing || ended {
			t.out = nil
		}
		t.mu.Unlock()
		if len(out) > 0 || closing || ended {
			var typ []string
			if closing || ended {
				typ = []string{"type", "terminate"}
			}
			t.answer(w, rid, kick, append(attrs, typ...), out)
			if closing || ended {
				t.Close()
			}
			return
		}
		select {
		case <-t.notify:
		case <-t.done:
		case <-kick:
			t.answer(w, rid, kick, attrs, nil)
			return
		case <-timer.C:
			t.answer(w, rid, kick, attrs, nil)
			return
		case <-r.Context().Done():
			t.answer(w, rid, kick, attrs, nil)
			return
		}
	}
}

// answer writes the response body, remembers it for a retransmission and
// arms the inactivity timer when no request is left held.
func (t *boshTransport) answer(w http.ResponseWriter, rid int64, kick chan struct{}, attrs []string, payload []byte) {
	b := bodyXML(attrs, payload)
	t.mu.Lock()
	for i, k := range t.held {
		if k == kick {
			t.held = append(t.held[:i:i], t.held[i+1:]...)
			break
		}
	}
	if rid > t.lastRID {
		t.lastRID, t.lastResp = rid, b
	}
	if len(t.held) == 0 {
		if t.idle == nil {
			t.idle = time.AfterFunc(t.h.inactivity, t.expire)
		} else {
			t.idle.Reset(t.h.inactivity)
		}
	}
	t.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(b)
}

// expire ends a session whose client sent no request for BOSHInactivity.
func (t *boshTransport) expire() {
	t.mu.Lock()
	idle := len(t.held) == 0
	t.mu.Unlock()
	if idle {
		t.Close()
	}
}

func bodyXML(attrs []string, payload []byte) []byte {
	b := []byte("<body xmlns='" + NSHTTPBind + "'")
	for i := 0; i+1 < len(attrs); i += 2 {
		b = append(b, ' ')
		b = append(b, attrs[i]...)
		b = append(b, "='"...)
		b = appendEscaped(b, attrs[i+1], true)
		b = append(b, '\'')
	}
	if len(payload) == 0 {
		return append(b, "/>"...)
	}
	if !bytes.Contains(b, []byte("xmlns:stream=")) {
		b = append(b, " xmlns:stream='"+NSStream+"'"...)
	}
	b = append(b, '>')
	b = append(b, payload...)
	return append(b, "</body>"...)
}

func terminate(condition string) []byte {
	return bodyXML([]string{"type", "terminate", "condition", condition}, nil)
}

func writeBody(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(b)
}

// toClientNS puts the elements that inherited the body's namespace in
// jabber:client.
func toClientNS(e *Element) {
	if e.Name.Space != NSHTTPBind {
		return
	}
	e.Name.Space = NSClient
	for _, c := range e.Children {
		toClientNS(c)
	}
}

// xboshAttr returns the body's attribute in the urn:xmpp:xbosh namespace.
func xboshAttr(body *Element, local string) string {
	for _, a := range body.Attr {
		if a.Name.Local == local && a.Name.Space == NSXBOSH {
			return a.Value
		}
	}
	return ""
}
