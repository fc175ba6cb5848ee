// Package push is XEP-0357 push notifications: an account's clients
// register app servers (<enable/>, <disable/>), kept in the database, and
// the server publishes a summary to each registration when a personal
// message or a notification comes for the user while none of the user's
// clients is connected — the core's decision (xmppcore.Server.OnUnreached),
// taken once per message across the nodes. The app server is a JID this
// server reaches: an external component (XEP-0114) or an account.
package push

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
	"mellium.im/xmpp/jid"

	"vestnik/xmppcore"
	"vestnik/xmppcore/stanza"
)

// Namespaces of XEP-0357.
const (
	NS             = "urn:xmpp:push:0"
	NSSummary      = "urn:xmpp:push:summary"
	nsPubsub       = "http://jabber.org/protocol/pubsub"
	publishOptions = "http://jabber.org/protocol/pubsub#publish-options"
)

// Limits and defaults.
const (
	// MaxRegistrations is how many registrations one account may hold
	// (one per device and app, in practice).
	MaxRegistrations = 20
	// MaxOptions bounds a serialized publish-options form; MaxNode a node.
	MaxOptions = 4 << 10
	MaxNode    = 1024
	// MaxBody bounds last-message-body, in characters.
	MaxBody = 256
	// DefaultBurst pushes go to one registration at once, then one per
	// DefaultEvery; what comes between is summed up in the next push.
	DefaultBurst = 3
	DefaultEvery = 5 * time.Second
	// ReplyTimeout is how long a publish waits for the app server.
	ReplyTimeout = 30 * time.Second
	// NoneTTL is how long a user found without registrations is taken to
	// have none: a registration made on another node of a cluster is
	// used at most this late.
	NoneTTL = 10 * time.Second
	// maxTracked bounds the per-registration and per-user state kept in
	// memory; beyond it the state is forgotten whole (a burst may then
	// push again at once).
	maxTracked = 100000
)

// ErrTooMany refuses a registration beyond MaxRegistrations.
var ErrTooMany = errors.New("push: too many registrations")

// Options tunes the service; zero values are the defaults.
type Options struct {
	// Body puts the message's text into the notification
	// (last-message-body). Off by default: the text then travels through
	// the app server and the phone vendor's push service.
	Body bool
	// Burst and Every: the rate limit per registration (DefaultBurst,
	// DefaultEvery).
	Burst int
	Every time.Duration
	// ReplyTimeout: ReplyTimeout when zero.
	ReplyTimeout time.Duration
	Logger       *slog.Logger
}

// Service is the XEP-0357 service of a server.
type Service struct {
	store *Store
	srv   *xmppcore.Server
	opts  Options
	log   *slog.Logger

	mu     sync.Mutex // guards regs, counts and none (maps only, no I/O under it)
	regs   map[regKey]*regState
	counts map[int64]int // unreached messages per user since the user was last online
	// none: users found without registrations, until when (NoneTTL), so
	// that messages to offline users who never enabled push cost no query
	// each; enabling on this node forgets the entry at once.
	none map[int64]time.Time

	// published, if set, is told about every publish sent (tests).
	published func(Registration)
}

type regKey struct {
	user      int64
	jid, node string
}

// regState is a registration's rate limit and, while it is over it, the
// push waiting for its turn.
type regState struct {
	lim     *rate.Limiter
	pending *summary // sent by timer
	timer   *time.Timer
}

type summary struct {
	count      int
	from, body string
	msgID      int64 // the archive id of the message from and body are of (0: a notification)
}

// New returns the service.
func New(store *Store, srv *xmppcore.Server, opts Options) *Service {
	if opts.Burst <= 0 {
		opts.Burst = DefaultBurst
	}
	if opts.Every <= 0 {
		opts.Every = DefaultEvery
	}
	if opts.ReplyTimeout <= 0 {
		opts.ReplyTimeout = ReplyTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, srv: srv, opts: opts, log: opts.Logger.With("component", "push"),
		regs: map[regKey]*regState{}, counts: map[int64]int{}, none: map[int64]time.Time{}}
}

// Register installs the service on srv: the <enable/> and <disable/>
// IQs, urn:xmpp:push:0 on every account, and the core's unreached hook.
func (s *Service) Register(srv *xmppcore.Server) {
	srv.HandleIQ(NS, s.iq)
	srv.AddAccountFeature(NS)
	srv.OnUnreached(s.unreached)
	srv.OnPresence(func(ev xmppcore.PresenceEvent) {
		if ev.Show != "offline" {
			s.mu.Lock()
			delete(s.counts, ev.UserID)
			s.mu.Unlock()
		}
	})
}

// iq answers <enable/> and <disable/> from the account's own clients.
func (s *Service) iq(ctx context.Context, sess *xmppcore.Session, iq *xmppcore.Element) (*xmppcore.Element, error) {
	if iq.AttrValue("type") != "set" {
		return nil, xmppcore.ErrBadRequest("")
	}
	if to := iq.AttrValue("to"); to != "" && to != sess.JID().Bare().String() {
		return nil, xmppcore.ErrForbidden("push is enabled on one's own account")
	}
	p := iq.Children[0]
	j, err := jid.Parse(p.AttrValue("jid"))
	if p.AttrValue("jid") == "" || err != nil {
		return nil, xmppcore.ErrBadRequest("a 'jid' of the app server is required")
	}
	node := p.AttrValue("node")
	if len(node) > MaxNode {
		return nil, xmppcore.ErrBadRequest("node too long")
	}
	switch p.Name.Local {
	case "enable":
		if node == "" {
			return nil, xmppcore.ErrBadRequest("a 'node' is required")
		}
		if !s.srv.Serves(j.Domainpart()) {
			e := xmppcore.ErrRemoteServerNotFound()
			e.Text = "the app server must be a component of this server (no federation)"
			return nil, e
		}
		opts := ""
		if x := p.Child(stanza.NSData, "x"); x != nil {
			if x.AttrValue("type") != "submit" || stanza.FormType(x) != publishOptions {
				return nil, xmppcore.ErrBadRequest("the form must be a submitted " + publishOptions + " form")
			}
			opts = x.String()
			if len(opts) > MaxOptions {
				return nil, xmppcore.ErrBadRequest("publish options too large")
			}
		}
		s.mu.Lock()
		delete(s.none, sess.UserID())
		s.mu.Unlock()
		err := s.store.Enable(ctx, Registration{UserID: sess.UserID(), JID: j.String(), Node: node, Options: opts})
		if errors.Is(err, ErrTooMany) {
			e := xmppcore.ErrResourceConstraint()
			e.Text = "at most " + strconv.Itoa(MaxRegistrations) + " push registrations per account"
			return nil, e
		}
		return nil, err
	case "disable":
		if _, err := s.store.Disable(ctx, sess.UserID(), j.String(), node); err != nil {
			return nil, err
		}
		s.forget(sess.UserID(), j.String(), node)
		return nil, nil
	}
	return nil, xmppcore.ErrBadRequest("")
}

// forget drops the rate state of disabled registrations.
func (s *Service) forget(user int64, jid, node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, st := range s.regs {
		if k.user == user && k.jid == jid && (node == "" || k.node == node) {
			if st.timer != nil {
				st.timer.Stop()
			}
			delete(s.regs, k)
		}
	}
}

// unreached publishes to each of the user's registrations (the core's
// hook; it runs on the delivering goroutine, so it reads the
// registrations and queues, and the replies come back asynchronously).
func (s *Service) unreached(ctx context.Context, u xmppcore.Unreached) {
	s.mu.Lock()
	until, known := s.none[u.UserID]
	s.mu.Unlock()
	if known && time.Now().Before(until) {
		return
	}
	regs, err := s.store.List(ctx, u.UserID)
	if err != nil {
		s.log.Warn("push registrations", "user", u.UserID, "err", err)
		return
	}
	if len(regs) == 0 {
		s.mu.Lock()
		if len(s.none) >= maxTracked {
			clear(s.none)
		}
		s.none[u.UserID] = time.Now().Add(NoneTTL)
		s.mu.Unlock()
		return
	}
	body := ""
	if s.opts.Body {
		body = u.Body
		if utf8.RuneCountInString(body) > MaxBody {
			body = string([]rune(body)[:MaxBody]) + "…"
		}
	}
	s.mu.Lock()
	if len(s.counts) >= maxTracked {
		clear(s.counts)
	}
	s.counts[u.UserID]++
	sum := summary{count: s.counts[u.UserID], from: u.From, body: body}
	if u.Kind == "message" {
		sum.msgID = u.ID
	}
	var now []Registration
	for _, r := range regs {
		k := regKey{r.UserID, r.JID, r.Node}
		st := s.regs[k]
		if st == nil {
			if len(s.regs) >= maxTracked {
				for _, o := range s.regs {
					if o.timer != nil {
						o.timer.Stop()
					}
				}
				clear(s.regs)
			}
			st = &regState{lim: rate.NewLimiter(rate.Every(s.opts.Every), s.opts.Burst)}
			s.regs[k] = st
		}
		if st.pending != nil {
			// The waiting push says the latest: messages stored together
			// may be told here in any order.
			p := sum
			if p.msgID != 0 && st.pending.msgID > p.msgID {
				p.from, p.body, p.msgID = st.pending.from, st.pending.body, st.pending.msgID
			}
			st.pending = &p
			continue
		}
		res := st.lim.Reserve()
		if d := res.Delay(); d > 0 {
			st.pending = &sum
			r := r
			st.timer = time.AfterFunc(d, func() { s.late(r, k) })
			continue
		}
		now = append(now, r)
	}
	s.mu.Unlock()
	for _, r := range now {
		s.publish(r, sum)
	}
}

// late sends the push that waited for its turn.
func (s *Service) late(r Registration, k regKey) {
	s.mu.Lock()
	st := s.regs[k]
	var sum *summary
	if st != nil {
		sum, st.pending, st.timer = st.pending, nil, nil
	}
	s.mu.Unlock()
	if sum != nil {
		s.publish(r, *sum)
	}
}

// publish sends one notification to r's app server. An error answer that
// says the registration is gone disables it.
func (s *Service) publish(r Registration, sum summary) {
	acc, err := s.srv.UserByID(context.Background(), r.UserID)
	if err != nil {
		return
	}
	user := acc.Login + "@" + s.srv.Domain()
	fields := []*xmppcore.Element{stanza.FormField("", "message-count", "", strconv.Itoa(sum.count))}
	if sum.from != "" {
		fields = append(fields, stanza.FormField("", "last-message-sender", "", sum.from))
	}
	if sum.body != "" {
		fields = append(fields, stanza.FormField("", "last-message-body", "", sum.body))
	}
	item := xmppcore.NewElement(nsPubsub, "item").AddChild(
		xmppcore.NewElement(NS, "notification").AddChild(stanza.NewForm("submit", NSSummary, fields...)))
	ps := xmppcore.NewElement(nsPubsub, "pubsub").AddChild(xmppcore.NewElement(nsPubsub, "publish", "node", r.Node).AddChild(item))
	if r.Options != "" {
		if kids, err := xmppcore.ParseFragment(r.Options); err == nil && len(kids) == 1 {
			ps.AddChild(xmppcore.NewElement(nsPubsub, "publish-options").AddChild(kids[0]))
		}
	}
	iq := xmppcore.NewElement(xmppcore.NSClient, "iq", "type", "set", "from", user, "to", r.JID).AddChild(ps)
	if s.published != nil {
		s.published(r)
	}
	s.srv.SendIQ(context.Background(), iq, s.opts.ReplyTimeout, func(reply *xmppcore.Element) {
		if reply == nil || reply.AttrValue("type") != "error" {
			return
		}
		if !gone(reply) {
			s.log.Info("push refused for now", "user", r.UserID, "app_server", r.JID)
			return
		}
		s.log.Info("push registration disabled by the app server's error", "user", r.UserID, "app_server", r.JID)
		// The reply's goroutine must not wait on the database: a
		// goroutine of its own, bounded by the few errors there are.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := s.store.Disable(ctx, r.UserID, r.JID, r.Node); err != nil {
				s.log.Warn("disable push registration", "err", err)
			}
			s.forget(r.UserID, r.JID, r.Node)
		}()
	})
}

// gone reports whether an app server's error ends the registration
// (XEP-0357 §7: the server may disable it on an error): any error but a
// temporary one (type wait) and those this server makes itself when the
// app server is not reachable now (a component not connected).
func gone(reply *xmppcore.Element) bool {
	e := reply.Child(xmppcore.NSClient, "error")
	if e == nil {
		return false
	}
	if e.AttrValue("type") == "wait" {
		return false
	}
	for _, c := range e.Children {
		switch c.Name.Local {
		case "service-unavailable", "remote-server-not-found", "remote-server-timeout", "recipient-unavailable", "internal-server-error":
			return false
		}
	}
	return true
}
