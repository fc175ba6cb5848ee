// Package xmppcore is the XMPP server of Vestnik: stream negotiation
// (STARTTLS, SASL SCRAM from stored keys, resource binding) over any
// Transport (TCP, RFC 7395 WebSocket, in-memory pipes), sessions and the
// router, presence, rosters from the org structure, personal messages with
// archive-before-delivery and offline delivery, and the small services
// (disco, vcard-temp, ping, carbons, last activity, blocking). Other doors
// (the web bridge) attach sessions through Attach, services (MUC) plug in
// as Components, and other packages add IQ handlers with HandleIQ.
package xmppcore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"mellium.im/xmpp/jid"

	"vestnik/xmppcore/mam"
)

// Options tune the server; zero values are the documented defaults.
type Options struct {
	// OnMessage, if set, is told how long handling a client's message
	// with a body took (stored, routed and queued to every recipient's
	// sessions), by its type (chat, groupchat). It must not block.
	OnMessage func(typ string, took time.Duration)
	// OnLogin, if set, is told how long a stream took from its start to a
	// bound session (TLS, SASL, bind). It must not block.
	OnLogin func(took time.Duration)

	Domain    string      // XMPP domain; "localhost" when empty
	TLSConfig *tls.Config // certificate for STARTTLS; without it TCP clients cannot log in
	Logger    *slog.Logger
	// AuthFailureDelay overrides the delay before the first failure
	// answer of a password check, which then doubles (default
	// AuthFailureDelay; negative: none, for tests). See Throttle.
	AuthFailureDelay time.Duration
	// AuthTimeout overrides how long a client may take to log in and
	// bind (default AuthTimeout).
	AuthTimeout time.Duration
	// RateStanzas overrides the per-connection stanza rate (default
	// RateStanzas per second; negative: unlimited, for benchmarks).
	RateStanzas float64
	// EventPollInterval overrides how often change events are polled
	// (default EventPollInterval).
	EventPollInterval time.Duration
	// MaxConnections, MaxConnectionsPerIP, MaxUnauthenticated and
	// MaxUnauthenticatedPerIP override the connection caps of the same
	// names (limits.go); negative: unlimited.
	MaxConnections          int
	MaxConnectionsPerIP     int
	MaxUnauthenticated      int
	MaxUnauthenticatedPerIP int
	// Cluster reaches sessions on other nodes sharing the database
	// (package cluster); nil for a single node.
	Cluster Cluster
	// Files is the file store (package upload): a personal message whose
	// body carries a stored file's URL is archived with that file and
	// gains its out-of-band data (AttachFiles); nil: no file store.
	Files Files
	// ContactAddresses are the service's contact addresses by kind
	// (ContactKinds: "admin", "abuse", …), URIs such as
	// mailto:it@example.com or xmpp:admin@example.com, listed in the
	// server's disco#info (XEP-0157); none: no form.
	ContactAddresses map[string][]string
	// Admins are the logins of the server's admins: they run the
	// XEP-0133 ad-hoc commands (adhoc.go).
	Admins []string
	// ComponentHandshakeTimeout bounds an XEP-0114 component's time from
	// connect to handshake; 0: ComponentHandshakeTimeout.
	ComponentHandshakeTimeout time.Duration
	// SMResumeTimeout overrides how long a resumable XEP-0198 session
	// waits detached for its client (default SMResumeTimeout).
	SMResumeTimeout time.Duration
	// OnNotificationAction, if set, is told each pressed notification
	// button once it is recorded (AnswerNotification): the outgoing event
	// notification.action (package webhook). It must not block long.
	OnNotificationAction func(ctx context.Context, a NotificationAnswer)
}

// Component is a service on a subdomain (MUC at conference.<domain>): the
// router hands it every stanza addressed to its domain or its JIDs. It
// must not block: it answers through Server.Route.
type Component interface {
	HandleStanza(ctx context.Context, from jid.JID, el *Element)
}

// IQHandler answers an IQ get or set addressed to the server or to the
// sender's own account, by payload namespace. It returns the result
// payload (nil for an empty result) or a *StanzaError.
type IQHandler func(ctx context.Context, sess *Session, iq *Element) (*Element, error)

// Server is the XMPP server: listeners, sessions, router and services.
type Server struct {
	db     *sqlx.DB
	dir    Directory
	arch   Archive
	store  *store
	opts   Options
	domain string
	cl     Cluster // nil: a single node
	// clMarks: users whose delivery mark the cluster mark writer stores.
	clMarks clusterMarks
	log     *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
	connID atomic.Uint64

	// Warm readers (conn.go): goroutines that served input and wait for
	// another connection's turn; warmIdle counts them.
	warm     chan *conn
	warmIdle atomic.Int32

	router *router
	users  *userCache
	blocks blockCache
	watch  watchers // who watches presence and chat typing company-wide (watch.go)
	// directOnce makes directCfg, the TLS configuration of ServeC2STLS.
	directOnce sync.Once
	directCfg  *tls.Config

	mu        sync.Mutex // guards listeners, conns
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	smMu      sync.Mutex             // guards resumable and expired (a leaf lock)
	compConns map[*compConn]struct{} // component streams (under mu)
	iqMu      sync.Mutex             // guards iqWait (a leaf lock)
	iqWait    map[string]*pendingIQ  // the server's own IQs awaiting replies
	iqSeq     atomic.Uint64
	iqPrefix  string           // random per server, so ids differ across nodes
	resumable map[string]*conn // XEP-0198 resume id → the session's latest stream
	// expired: resume ids whose session timed out → user and h, for
	// <failed h/> (oldest first in expiredOrder, at most SMExpiredKept).
	expired      map[string]expiredSM
	expiredOrder []string

	extMu           sync.RWMutex // guards components, iqHandlers, features, pep, inviter, photoListener
	components      map[string]Component
	external        map[string]*extComponent // XEP-0114 components by name (component.go)
	unreachedHooks  []func(context.Context, Unreached)
	iqHandlers      map[string]IQHandler
	features        []string
	accountFeatures []string      // disco#info features of every account's bare JID (PEP services)
	capsEl          *Element      // the server's XEP-0115 <c/>, made from features when first asked
	pep             PEP           // nil: no PEP service
	photoListener   PhotoListener // nil: nobody follows XMPP-set photos (vcard.go)
	inviter         DirectInviter // nil: direct invitations are only delivered

	msgs          *mam.Store                                   // edits, retractions, reactions (edits.go); nil from NewServerWith
	chatChanges   ChatChanges                                  // guarded by extMu; nil: no chat service
	keyboardHooks []func(ctx context.Context, p KeyboardPress) // guarded by extMu (rich.go)
	userHooks     []func(userID int64)                         // guarded by extMu (usercache.go)

	caps     capsCache
	avatars  avatarCache // XEP-0153 hashes (avatarhash.go)
	admit    *admission
	throttle *Throttle

	count counters
}

// NewServerWith returns a server over the given directory and archive.
// Background jobs (the change-event poller) start at once.
func NewServerWith(db *sqlx.DB, dir Directory, arch Archive, opts Options) *Server {
	if opts.Domain == "" {
		opts.Domain = "localhost"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.AuthFailureDelay == 0 {
		opts.AuthFailureDelay = AuthFailureDelay
	}
	if opts.RateStanzas == 0 {
		opts.RateStanzas = RateStanzas
	}
	if opts.SMResumeTimeout <= 0 {
		opts.SMResumeTimeout = SMResumeTimeout
	}
	if opts.AuthTimeout == 0 {
		opts.AuthTimeout = AuthTimeout
	}
	if opts.ComponentHandshakeTimeout <= 0 {
		opts.ComponentHandshakeTimeout = ComponentHandshakeTimeout
	}
	if opts.EventPollInterval == 0 {
		opts.EventPollInterval = EventPollInterval
	}
	for _, l := range []struct {
		v   *int
		def int
	}{{&opts.MaxConnections, MaxConnections}, {&opts.MaxConnectionsPerIP, MaxConnectionsPerIP},
		{&opts.MaxUnauthenticated, MaxUnauthenticated}, {&opts.MaxUnauthenticatedPerIP, MaxUnauthenticatedPerIP}} {
		if *l.v == 0 {
			*l.v = l.def
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		db: db, dir: dir, arch: arch, opts: opts,
		store:      &store{db: db},
		domain:     opts.Domain,
		cl:         opts.Cluster,
		log:        opts.Logger.With("component", "xmpp"),
		ctx:        ctx,
		cancel:     cancel,
		router:     newRouter(),
		warm:       make(chan *conn),
		listeners:  map[net.Listener]struct{}{},
		conns:      map[*conn]struct{}{},
		compConns:  map[*compConn]struct{}{},
		iqPrefix:   "v" + componentStreamID()[:8] + "-",
		resumable:  map[string]*conn{},
		components: map[string]Component{},
		iqHandlers: map[string]IQHandler{},
	}
	s.admit = newAdmission(opts)
	s.throttle = NewThrottle(ThrottleOptions{BaseDelay: opts.AuthFailureDelay})
	s.users = newUserCache(dir)
	s.count.init()
	s.blocks.lists = map[int64]map[string]struct{}{}
	s.registerBuiltins()
	// The event cursor is taken now, so changes made right after NewServer
	// returns are seen; on error the poller retries.
	lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
	after, err := dir.LastEventID(lctx)
	lcancel()
	s.start("events", func() { s.pollEvents(after, err == nil) })
	s.start("marks", s.markLoop)
	if s.cl != nil {
		s.clMarks.wake = make(chan struct{}, 1)
		s.start("cluster marks", s.clusterMarkLoop)
	}
	return s
}

// Domain returns the XMPP domain served.
func (s *Server) Domain() string { return s.domain }

// start runs f in a goroutine tied to the server's WaitGroup; a panic is
// logged with its stack and ends only that goroutine.
func (s *Server) start(name string, f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("goroutine panic", "goroutine", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			}
		}()
		f()
	}()
}

// ServeC2S accepts XMPP client connections (RFC 6120, STARTTLS required)
// on ln until Shutdown.
func (s *Server) ServeC2S(ln net.Listener) error { return s.serveC2S(ln, false) }

// ServeC2STLS accepts XMPP client connections that open with TLS at once
// (XEP-0368 direct TLS) on ln until Shutdown: the same streams, caps and
// limits as ServeC2S, with no STARTTLS step. It needs Options.TLSConfig.
func (s *Server) ServeC2STLS(ln net.Listener) error {
	if s.opts.TLSConfig == nil {
		return errors.New("xmppcore: direct TLS without a certificate")
	}
	return s.serveC2S(ln, true)
}

// directTLS is the certificate configuration of direct TLS, announcing
// the "xmpp-client" ALPN protocol (XEP-0368 §3).
func (s *Server) directTLS() *tls.Config {
	s.directOnce.Do(func() {
		s.directCfg = s.opts.TLSConfig.Clone()
		s.directCfg.NextProtos = []string{"xmpp-client"}
	})
	return s.directCfg
}

// trackListener records ln so that Shutdown closes it; forget removes
// it again. A server already shut down refuses it.
func (s *Server) trackListener(ln net.Listener) (forget func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, errServerClosed
	}
	s.listeners[ln] = struct{}{}
	return func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}, nil
}

func (s *Server) serveC2S(ln net.Listener, direct bool) error {
	forget, err := s.trackListener(ln)
	if err != nil {
		return err
	}
	defer forget()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closed.Load() {
				return errServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("xmppcore: accept: %w", err)
			}
			// Out of descriptors (EMFILE, ENFILE), a connection reset
			// before accept, a timeout: wait and try again, as net/http
			// does. The connections already open go on; the kernel keeps
			// new ones in the backlog meanwhile.
			if delay == 0 {
				s.log.Warn("accept failed; retrying", "err", err)
			}
			s.count.acceptErrors.Add(1)
			delay = min(max(2*delay, AcceptBackoffMin), AcceptBackoffMax)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
			}
			continue
		}
		delay = 0
		tk := s.admit.admit(c.RemoteAddr().String(), true)
		if tk == nil {
			// Over a cap: refused without a word, before any TLS or XML.
			c.Close()
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetKeepAlive(true)
			tc.SetNoDelay(true)
		}
		if !direct {
			s.start("conn", func() { s.serveTransport(NewTCPTransport(c), tk) })
			continue
		}
		s.start("conn", func() {
			// The handshake runs here, not in the accept loop, bounded by
			// AuthTimeout like STARTTLS's.
			t := NewTCPTransport(c)
			if err := t.(*streamTransport).StartTLS(s.directTLS()); err != nil {
				s.log.Debug("direct tls handshake failed", "remote", c.RemoteAddr().String(), "err", err)
				t.Close()
				tk.release()
				return
			}
			s.serveTransport(t, tk)
		})
	}
}

var errServerClosed = errors.New("xmppcore: server closed")

// ServeTransport runs one XML stream over t until it ends (used for
// in-memory pipes in tests; ServeC2S and the WebSocket handler call it).
// It is under no connection cap.
func (s *Server) ServeTransport(t Transport) { s.serveTransport(t, nil) }

// Shutdown stops accepting, closes every session with system-shutdown and
// waits for the goroutines to end (or ctx).
func (s *Server) Shutdown(ctx context.Context) error {
	s.closed.Store(true)
	s.mu.Lock()
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeWith(closeShutdown, streamError("system-shutdown", ""))
	}
	s.closeComponents()
	for _, sess := range s.router.all() {
		sess.kill(closeShutdown)
	}
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RegisterComponent routes every stanza to domain (and its JIDs) to c.
func (s *Server) RegisterComponent(domain string, c Component) {
	s.extMu.Lock()
	s.components[domain] = c
	s.extMu.Unlock()
}

func (s *Server) component(domain string) Component {
	s.extMu.RLock()
	c := s.components[domain]
	s.extMu.RUnlock()
	return c
}

// HandleIQ registers h for IQ get/set with a payload in namespace space,
// addressed to the server or the sender's own bare JID. The namespace is
// also listed as a disco#info feature of the server.
func (s *Server) HandleIQ(space string, h IQHandler) {
	s.extMu.Lock()
	s.iqHandlers[space] = h
	s.extMu.Unlock()
	s.AddFeature(space)
}

// AddFeature adds a disco#info feature of the server.
func (s *Server) AddFeature(f string) {
	s.extMu.Lock()
	defer s.extMu.Unlock()
	s.features = addSorted(s.features, f)
	s.capsEl = nil
}

// AddAccountFeature adds a disco#info feature of every account's bare
// JID, where a client looks for what its PEP service offers (XEP-0402
// urn:xmpp:bookmarks:1#compat, for instance), not on the domain.
func (s *Server) AddAccountFeature(f string) {
	s.extMu.Lock()
	defer s.extMu.Unlock()
	s.accountFeatures = addSorted(s.accountFeatures, f)
}

func addSorted(list []string, f string) []string {
	for _, x := range list {
		if x == f {
			return list
		}
	}
	list = append(list, f)
	sort.Strings(list)
	return list
}

func (s *Server) iqHandler(space string) IQHandler {
	s.extMu.RLock()
	h := s.iqHandlers[space]
	s.extMu.RUnlock()
	return h
}

// Online reports whether the user has a session (bound or attached), on
// this node or, in a cluster, on another.
func (s *Server) Online(userID int64) bool {
	if len(s.router.sessions(userID)) > 0 {
		return true
	}
	return s.cl != nil && len(s.cl.Sessions(userID)) > 0
}

// SendToUser delivers el to every session of the user (bridge included),
// setting 'to' to each session's full JID; in a cluster, also on the
// other nodes. It never blocks.
func (s *Server) SendToUser(userID int64, el *Element) {
	s.sendToLocalUser(userID, el)
	s.sendRemoteEvery(userID, el)
}

func (s *Server) sendToLocalUser(userID int64, el *Element) {
	for _, sess := range s.router.sessions(userID) {
		c := el.ShallowCopy()
		c.SetAttr("to", sess.jidStr)
		sess.deliver(c)
	}
}

func (s *Server) newConnID() string {
	return strconv.FormatUint(s.connID.Add(1), 10)
}

// bareJID returns login@domain.
func (s *Server) bareJID(login string) string { return login + "@" + s.domain }
