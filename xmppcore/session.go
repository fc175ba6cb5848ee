package xmppcore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"vestnik/xmppcore/mam"
)

// Sink receives the stanzas of a session that is not an XML stream (the
// web bridge). Deliver must not block: false means the consumer is too
// slow and the session gets closed.
type Sink interface {
	Deliver(el *Element) bool
	Close(reason string)
}

// Close reasons, logged once per session and counted in /metrics (as
// label values, hence no spaces).
const (
	closeNormal       = "normal"
	closeConflict     = "conflict"
	closeSlowConsumer = "slow-consumer"
	closeDeactivated  = "deactivated"
	closeShutdown     = "shutdown"
	closeTimeout      = "timeout"
	closeProtocol     = "protocol-error"
	closeIO           = "connection-lost"
	closeRevoked      = "revoked" // password changed or logged out everywhere
)

// Close reasons other doors act on (the bridge tells its browsers to sign
// in again).
const (
	ReasonDeactivated = closeDeactivated
	ReasonRevoked     = closeRevoked
)

// Session is one bound resource of a user: an XMPP stream or an attached
// sink (the bridge). Its presence state is read by the router from other
// goroutines, hence atomics; everything else belongs to the goroutine
// that calls Handle.
type Session struct {
	srv      *Server
	user     *userEntry
	userID   int64
	login    string
	resource string
	jid      jid.JID
	jidStr   string
	bareStr  string
	sink     Sink
	lang     string // the stream's default xml:lang ("" when not a stream, or none)

	available  atomic.Bool
	priority   atomic.Int32
	presence   atomic.Pointer[Element] // last available presence broadcast
	presenceAt atomic.Int64            // unix microseconds when presence was set
	carbons    atomic.Bool
	rosterReq  atomic.Bool // requested the roster: gets roster pushes
	ended      atomic.Bool
	lastActive atomic.Int64           // unix seconds of the last stanza from the client
	capsVer    atomic.Pointer[string] // XEP-0115 ver of the last available presence

	mu       sync.Mutex          // guards directed, after
	directed map[string]struct{} // full JIDs sent directed available presence
	after    []func()            // run after the current IQ's reply

	capsIQ *Element // a caps request to send before the presence broadcast (reader goroutine)

	// XEP-0352: while inactive, presence and chat states are held back
	// (coalesced per sender and kind) and flushed on <active/>.
	inactive atomic.Bool
	heldMu   sync.Mutex // guards held, heldAt
	held     []*Element
	heldAt   map[string]int // sender and kind → index in held
}

// NSChatStates is XEP-0085 chat state notifications.
const NSChatStates = "http://jabber.org/protocol/chatstates"

// setInactive records the client's state (XEP-0352); becoming active
// flushes what was held back, in order.
func (sess *Session) setInactive(on bool) {
	sess.inactive.Store(on)
	if on {
		return
	}
	sess.flushHeld()
}

func (sess *Session) flushHeld() {
	sess.heldMu.Lock()
	held := sess.held
	sess.held, sess.heldAt = nil, nil
	sess.heldMu.Unlock()
	for _, el := range held {
		if el != nil && !sess.deliverNow(el) {
			return
		}
	}
}

// holdKey tells whether an inactive session may hold el back: presence
// (available or unavailable) and messages that carry only a chat state.
// The key coalesces by sender and kind.
func holdKey(el *Element) string {
	switch el.Name.Local {
	case "presence":
		if t := el.AttrValue("type"); t != "" && t != "unavailable" {
			return ""
		}
		return "p " + el.AttrValue("from")
	case "message":
		if el.Child(NSClient, "body") != nil || el.AttrValue("type") == "error" {
			return ""
		}
		for _, ch := range el.Children {
			if ch.Name.Space == NSChatStates {
				return "c " + el.AttrValue("from")
			}
		}
	}
	return ""
}

// hold keeps el back while the session is inactive; false when it must
// go at once. A message with a body drops the sender's held chat state
// (it is stale once the message arrives).
func (sess *Session) hold(el *Element) bool {
	key := holdKey(el)
	sess.heldMu.Lock()
	if key == "" {
		if el.Name.Local == "message" && sess.heldAt != nil {
			ck := "c " + el.AttrValue("from")
			if i, ok := sess.heldAt[ck]; ok {
				sess.held[i] = nil
				delete(sess.heldAt, ck)
			}
		}
		sess.heldMu.Unlock()
		return false
	}
	if i, ok := sess.heldAt[key]; ok {
		sess.held[i] = nil
	}
	if sess.heldAt == nil {
		sess.heldAt = map[string]int{}
	}
	sess.heldAt[key] = len(sess.held)
	sess.held = append(sess.held, el)
	full := len(sess.held) >= CSIMaxHeld
	sess.heldMu.Unlock()
	if full {
		sess.flushHeld()
	}
	return true
}

// archiveID is the archive id of a personal message delivered to the
// session (its stanza-id by the user's bare JID), or of a XEP-0313 result
// from the user's own archive (a MAM catch-up: acknowledged, it confirms
// the message like a delivery), or 0.
func (sess *Session) archiveID(el *Element) int64 {
	if el.Name.Local != "message" {
		return 0
	}
	if r := el.Child(mam.NS, "result"); r != nil && el.AttrValue("from") == sess.bareStr {
		id, _ := strconv.ParseInt(r.AttrValue("id"), 10, 64)
		return id
	}
	sid := el.Child(NSStanzaID, "stanza-id")
	if sid == nil || sid.AttrValue("by") != sess.bareStr {
		return 0
	}
	id, _ := strconv.ParseInt(sid.AttrValue("id"), 10, 64)
	return id
}

// defersMark reports whether a delivery to the session raises the
// delivery mark only once the client acknowledges it (XEP-0198).
func (sess *Session) defersMark() bool {
	c, ok := sess.sink.(*conn)
	return ok && c.sm.Load()
}

// logger returns a logger for the session, made when something is logged
// (idle sessions keep no logger).
func (sess *Session) logger() *slog.Logger { return sess.srv.log.With("jid", sess.jidStr) }

// JID returns the session's full JID.
func (sess *Session) JID() jid.JID { return sess.jid }

// UserID returns the employee id of the session's account.
func (sess *Session) UserID() int64 { return sess.userID }

// Login returns the account's login (the JID localpart).
func (sess *Session) Login() string { return sess.login }

// Server returns the server the session belongs to.
func (sess *Session) Server() *Server { return sess.srv }

// Available reports whether the session has sent available presence.
func (sess *Session) Available() bool { return sess.available.Load() }

// Attach binds a session for a door that is not an XML stream (the web
// bridge): like resource binding, with the same conflict rule (an older
// session with the same resource is closed). It sends nothing until the
// caller sends presence through Handle. An empty resource gets a
// server-chosen one.
func (s *Server) Attach(ctx context.Context, userID int64, resource string, sink Sink) (*Session, error) {
	acc, err := s.users.byID(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("xmppcore: attach user %d: %w", userID, err)
	}
	if !acc.Active {
		return nil, fmt.Errorf("xmppcore: attach user %d: %w", userID, ErrNotFound)
	}
	return s.bind(acc, resource, sink)
}

var errBadResource = errors.New("xmppcore: bad resource")

// bind creates and registers a session for acc.
func (s *Server) bind(acc *Account, resource string, sink Sink) (*Session, error) {
	if s.closed.Load() {
		return nil, errServerClosed
	}
	if resource == "" {
		resource = "vestnik-" + randomID(6)
	}
	if len(resource) > MaxResourceLen {
		return nil, errBadResource
	}
	j, err := jid.New(acc.Login, s.domain, resource)
	if err != nil {
		return nil, errBadResource
	}
	sess := &Session{
		srv: s, userID: acc.ID, login: acc.Login, resource: j.Resourcepart(),
		jid: j, jidStr: j.String(), bareStr: j.Bare().String(), sink: sink,
	}
	if c, ok := sink.(*conn); ok {
		sess.lang = c.lang
	}
	sess.lastActive.Store(time.Now().Unix())
	if old := s.router.bind(sess); old != nil {
		old.kill(closeConflict)
	}
	s.clusterBind(sess)
	return sess, nil
}

// Close ends the session: unavailable presence is broadcast, the session
// leaves the router and the sink is closed. Idempotent.
func (sess *Session) Close() { sess.kill(closeNormal) }

// kill ends the session and closes its sink with reason.
func (sess *Session) kill(reason string) {
	sess.end(reason)
	sess.sink.Close(reason)
}

// end takes the session out of the router and tells its contacts it is
// gone; the sink is left to its owner. Idempotent.
func (sess *Session) end(reason string) {
	if sess.ended.Swap(true) {
		return
	}
	s := sess.srv
	s.count.sessionClosed(reason)
	wasAvailable := sess.available.Load()
	if wasAvailable {
		// Last seen first, so a probe answered after the broadcast has it.
		s.setLastStatus(context.Background(), sess, "")
		sess.available.Store(false)
		unavail := NewElement(NSClient, "presence", "from", sess.jidStr, "type", "unavailable")
		s.broadcastPresence(sess, unavail)
		sess.sendDirectedUnavailable()
		if !s.anyAvailable(sess.userID) {
			s.router.unwatch(sess.userID)
		}
	}
	if u := sess.user; u != nil && len(s.router.sessions(sess.userID)) == 1 {
		// The last session: store the delivery mark before the user
		// leaves the router.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		u.deliverMu.Lock()
		if err := s.writeMark(ctx, u); err != nil {
			sess.logger().Warn("mark delivered", "err", err)
		}
		u.deliverMu.Unlock()
		cancel()
	}
	last := s.router.unbind(sess)
	s.clusterUnbind(sess)
	if last && !wasAvailable {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.store.setLastSeen(ctx, sess.userID, time.Now(), ""); err != nil {
			sess.logger().Warn("store last seen", "err", err)
		}
		cancel()
	}
	sess.logger().Debug("session ended", "reason", reason)
}

// deliver hands el to the session's sink; a slow consumer is closed.
func (sess *Session) deliver(el *Element) bool {
	if sess.ended.Load() {
		return false
	}
	if sess.inactive.Load() && sess.hold(el) {
		return true
	}
	return sess.deliverNow(el)
}

func (sess *Session) deliverNow(el *Element) bool {
	if sess.ended.Load() {
		return false
	}
	if sess.sink.Deliver(el) {
		return true
	}
	if c, ok := sess.sink.(*conn); ok && !c.slow.Load() {
		// The stream refused the stanza because it is closing (a clean
		// logout, a lost connection): its reader ends the session with the
		// reason it closed for. Killing it here as a slow consumer raced
		// with that and miscounted clean logouts.
		return false
	}
	sess.srv.start("kill", func() { sess.kill(closeSlowConsumer) })
	return false
}

// Handle processes a stanza from the client exactly as if it came from
// its XML stream: message, presence or iq in jabber:client. The 'from' is
// set to the session's full JID whatever the client wrote.
func (sess *Session) Handle(ctx context.Context, el *Element) error {
	if sess.ended.Load() {
		return errSessionEnded
	}
	if el.Name.Space != NSClient && el.Name.Space != "" {
		return errNotStanza
	}
	el.SetAttr("from", sess.jidStr)
	sess.lastActive.Store(time.Now().Unix())
	switch el.Name.Local {
	case "message":
		if !sess.stampLang(el) {
			return nil
		}
		if on := sess.srv.opts.OnMessage; on != nil && el.Child(NSClient, "body") != nil {
			start := time.Now()
			sess.srv.handleMessage(ctx, sess, el)
			typ := el.AttrValue("type")
			if typ != "groupchat" {
				typ = "chat"
			}
			on(typ, time.Since(start))
			break
		}
		sess.srv.handleMessage(ctx, sess, el)
	case "presence":
		if el.AttrValue("type") == "" {
			sess.srv.stampAvatar(ctx, sess, el)
		}
		sess.srv.handlePresence(ctx, sess, el)
	case "iq":
		sess.srv.handleIQ(ctx, sess, el)
	default:
		return errNotStanza
	}
	return nil
}

// stampLang gives a message without xml:lang the stream's default
// language (RFC 6120 §4.7.4), so every copy — live, carbons, archived,
// a room's — says the language the client wrote in. A language tag
// longer than mam.MaxLang is refused (bad-request) and false returned.
func (sess *Session) stampLang(el *Element) bool {
	switch l := el.Lang(); {
	case len(l) > mam.MaxLang:
		sess.replyError(el, ErrBadRequest("xml:lang too long"))
		return false
	case l == "" && sess.lang != "":
		el.Attr = append(el.Attr, xmlLangAttr(sess.lang))
	}
	return true
}

var (
	errSessionEnded = errors.New("xmppcore: session ended")
	errNotStanza    = errors.New("xmppcore: not a stanza")
)

// replyError answers stanza el with a stanza error (never for errors).
func (sess *Session) replyError(el *Element, e *StanzaError) {
	if el.AttrValue("type") == "error" {
		return
	}
	r := ErrorReply(el, e)
	r.SetAttr("to", sess.jidStr)
	sess.deliver(r)
}
