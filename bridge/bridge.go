// Package bridge is the web client's door into the server: HTTP login with
// a session cookie, one-time login links for the portal, and a typed
// JSON-over-WebSocket protocol (docs/bridge.md) at /ws.
//
// A bridge connection is a session in the XMPP router like any other
// resource: it attaches through Core, and what the browser sends takes the
// same path as a stanza from a Jabber client, while what the router
// delivers is translated into JSON events. The bridge keeps no business
// logic of its own beyond login and the shape of its frames.
package bridge

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/upload"
)

// Limits and timeouts of the bridge.
const (
	MaxFrame          = 64 << 10 // bytes in one client frame
	MaxBody           = 16 << 10 // bytes in one message body
	SendQueue         = 256      // frames queued to one browser before it counts as slow
	WriteTimeout      = 10 * time.Second
	PingInterval      = 25 * time.Second
	PongTimeout       = 60 * time.Second
	RateBurst         = 40  // client frames allowed in a burst
	RatePerSecond     = 10  // sustained client frames per second
	MaxHistory        = 100 // messages in one history page
	ReplayLimit       = 2000
	SessionLifetime   = 30 * 24 * time.Hour
	LoginTokenTTL     = 5 * time.Minute
	MaxLoginBody      = 4 << 10
	LoginFailureDelay = 400 * time.Millisecond
	CookieName        = "vestnik_session"
)

// Options tunes the bridge. Zero values are the documented defaults.
type Options struct {
	Logger *slog.Logger
	// SecureCookie marks the session cookie Secure; set it when users reach
	// the server over HTTPS (directly or through a proxy).
	SecureCookie bool
	// WidgetOrigins are the portal origins whose pages may include
	// /widget.js: they may exchange a one-time login link for a widget
	// credential (POST /widget/session), open /ws with it, and read
	// /widget/state with the cookie (same-site portals only).
	WidgetOrigins []string
	// PublicURL is the base of login links (e.g. https://chat.example.com);
	// by default the request's own scheme and host.
	PublicURL string
	// Files is the file store: POST /files, GET /files/{id} and files[]
	// in send (without it they answer "unavailable").
	Files *upload.Store
	// Photos are users' photos: GET /avatars/user/{id}, PUT and DELETE
	// /photo, and photo in users (without it nobody has one).
	Photos *upload.Photos
	// Admit takes a place for a WebSocket from a remote address under the
	// server's connection caps (xmppcore.Server.Admit); false refuses it
	// with 503. Nil: no cap.
	Admit func(remote string) (release func(), ok bool)
	// Guard throttles password guessing at POST /login, shared with the
	// XMPP door (xmppcore.Server.Throttle). Nil: a fixed
	// LoginFailureDelay and nothing refused.
	Guard Guard
}

// Guard is the password-guessing throttle the login asks (xmppcore.Throttle).
type Guard interface {
	// Check: > 0 refuses the attempt unchecked for that long.
	Check(door, remote, login string) time.Duration
	// Failed records a wrong password and returns the delay of the answer.
	Failed(door, remote, login string) time.Duration
	Succeeded(remote, login string)
}

// Bridge serves /login, /logout, /session, /login/token/{token},
// /widget/state and /ws.
type Bridge struct {
	users   *roster.Store
	chats   *muc.Store
	core    Core
	archive Archive
	notes   *xmppcore.NotificationStore
	opts    Options
	log     *slog.Logger

	mu    sync.Mutex
	conns map[*conn]struct{}
	wg    sync.WaitGroup
	done  chan struct{}
	once  sync.Once
}

// New makes a bridge. core and archive may be nil while the server runs
// without them; commands that need them then answer "unavailable".
func New(db *sqlx.DB, users *roster.Store, chats *muc.Store, core Core, archive Archive, opts Options) *Bridge {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bridge{users: users, chats: chats, core: core, archive: archive, notes: xmppcore.NewNotificationStore(db), opts: opts,
		log: log.With("component", "bridge"), conns: map[*conn]struct{}{}, done: make(chan struct{})}
	if core != nil {
		core.Watch(b.presenceEvent, b.typingEvent)
	}
	if opts.Photos != nil {
		b.usePhotos(opts.Photos)
	}
	return b
}

// Register adds the bridge's routes to mux.
func (b *Bridge) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /login", b.handleLogin)
	mux.HandleFunc("POST /logout", b.handleLogout)
	mux.HandleFunc("GET /session", b.handleSession)
	mux.HandleFunc("GET /login/token/{token}", b.handleTokenLogin)
	mux.HandleFunc("GET /widget/state", b.handleWidgetState)
	mux.HandleFunc("OPTIONS /widget/state", b.handleWidgetState)
	mux.HandleFunc("GET /ws", b.handleWS)
	mux.HandleFunc("POST /widget/session", b.handleWidgetSession) // widget.go
	mux.HandleFunc("DELETE /widget/session", b.handleWidgetLogout)
	mux.HandleFunc("OPTIONS /widget/session", func(w http.ResponseWriter, r *http.Request) { b.widgetCORS(w, r) })
	mux.HandleFunc("POST /files", b.handleUpload) // files.go
	mux.HandleFunc("GET /files/{id}", b.handleFile)
	mux.HandleFunc("GET /files/{id}/thumb", b.handleThumb)
	mux.HandleFunc("GET /avatars/user/{id}", b.handlePhoto) // photos.go
	mux.HandleFunc("PUT /photo", b.handleSetPhoto)
	mux.HandleFunc("DELETE /photo", b.handleSetPhoto)
}

// go runs f in a goroutine that Shutdown waits for; a panic closes only
// what f served.
func (b *Bridge) goSafe(name string, f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				b.log.Error("panic", "goroutine", name, "panic", r)
			}
		}()
		f()
	}()
}

// Shutdown closes every connection and waits for their goroutines.
func (b *Bridge) Shutdown(ctx context.Context) error {
	b.once.Do(func() { close(b.done) })
	b.mu.Lock()
	for c := range b.conns {
		c.close(closeShutdown)
	}
	b.mu.Unlock()
	ch := make(chan struct{})
	go func() { b.wg.Wait(); close(ch) }()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// broadcast sends an event to every connection that has said hello.
func (b *Bridge) broadcast(f Frame) {
	b.mu.Lock()
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	for _, c := range conns {
		if c.ready.Load() {
			c.Event(f)
		}
	}
}

// chatTyping tells the other members' browsers, on every node, that
// userID is typing in a chat; only a member may.
func (b *Bridge) chatTyping(ctx context.Context, userID, chatID int64, state string) error {
	members, err := b.chats.Members(ctx, chatID)
	if err != nil {
		return err
	}
	ids := make([]int64, 0, len(members))
	in := false
	for _, m := range members {
		ids = append(ids, m.UserID)
		in = in || m.UserID == userID
	}
	if !in {
		return ErrForbidden
	}
	b.core.ChatTyping(chatID, userID, state, ids)
	return nil
}

// presenceEvent tells every browser here what a user shows now (presence
// is visible company-wide, SPEC §4); the core reports changes from every
// door and every node.
func (b *Bridge) presenceEvent(p Presence) {
	f := Frame{"type": "presence", "user": p.User, "show": p.Show, "status": p.Status}
	if p.Show == "offline" {
		f["last_seen"] = time.Now().UnixMilli()
	}
	b.broadcast(f)
}

// typingEvent tells the browsers here of the chat's other members that a
// user is typing in it.
func (b *Bridge) typingEvent(chatID, userID int64, state string, members []int64) {
	in := make(map[int64]bool, len(members))
	for _, m := range members {
		in[m] = true
	}
	f := Frame{"type": "typing", "chat": chatID, "user": userID, "state": state}
	b.mu.Lock()
	var to []*conn
	for c := range b.conns {
		if in[c.user.ID] && c.user.ID != userID && c.ready.Load() {
			to = append(to, c)
		}
	}
	b.mu.Unlock()
	for _, c := range to {
		c.Event(f)
	}
}

// Connections is the number of open WebSocket connections.
func (b *Bridge) Connections() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}
