package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"vestnik/roster"
	"vestnik/xmppcore"
)

// Frame is one JSON object on the wire: {"type": …, "id": …, …}.
type Frame map[string]any

// Close reasons, logged once per connection.
const (
	closeClient   = "client closed"
	closeSlow     = "slow consumer"
	closeShutdown = "server shutdown"
	closeRate     = "rate limit"
	closeCore     = "closed by server"
	closeAuth     = "session ended"
)

// WebSocket close codes the client understands (docs/bridge.md).
const (
	CodeUnauthorized = 4001
	CodeRateLimited  = 4008
)

type conn struct {
	b    *Bridge
	ws   *websocket.Conn
	user *roster.User
	link Link
	out  chan Frame
	quit chan struct{}
	once sync.Once
	why  string
	// release gives back its place under the connection caps.
	release func()
	// A widget connection (widget.go): the hash of its credential, the
	// timer that ends it when the credential expires, and the server's
	// base URL for login links.
	cred   string
	expiry *time.Timer
	base   string

	// Message ids already sent to the browser: the resume replay and the
	// live path (offline flush, routing) may race; each message goes once.
	sentMu  sync.Mutex
	sentIDs map[int64]struct{}
	sentLo  int64 // ids at or below this were pruned from sentIDs: treat as sent

	// reader-goroutine state
	ready        atomic.Bool // hello done: broadcasts may reach it
	show, status string
	limiter      *rate.Limiter // client frames: RatePerSecond, bursts of RateBurst
	hello        bool
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	// Only pages of this very host may open /ws with the user's cookie.
	CheckOrigin: func(r *http.Request) bool { return sameOrigin(r, true) },
}

func (b *Bridge) handleWS(w http.ResponseWriter, r *http.Request) {
	origin, widget := b.widgetOrigin(r)
	if !widget && !sameOrigin(r, true) {
		writeError(w, http.StatusForbidden, "bad_origin", "WebSocket from another site is not allowed")
		return
	}
	var u *roster.User
	var err error
	var expires time.Time
	up := upgrader
	if widget {
		// A portal page (Options.WidgetOrigins): no cookie, the widget
		// credential issued to that very origin comes as a subprotocol.
		u, expires, err = b.widgetUser(r.Context(), widgetCredential(r), origin)
		up.CheckOrigin = func(*http.Request) bool { return true } // checked above
		up.Subprotocols = []string{WidgetProtocol}
	} else {
		u, err = b.sessionUser(r)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		b.log.Error("ws session", "err", err)
	}
	release := func() {}
	if b.opts.Admit != nil && u != nil {
		var ok bool
		if release, ok = b.opts.Admit(r.RemoteAddr); !ok {
			w.Header().Set("Retry-After", "10")
			writeError(w, http.StatusServiceUnavailable, "too_many_connections", "the server has too many connections; try again later")
			return
		}
	}
	ws, uerr := up.Upgrade(w, r, nil)
	if uerr != nil {
		release()
		return // the upgrader answered already
	}
	if u == nil {
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CodeUnauthorized, "not signed in"), time.Now().Add(time.Second))
		ws.Close()
		return
	}
	ws.SetReadLimit(MaxFrame)
	c := &conn{b: b, ws: ws, user: u, out: make(chan Frame, SendQueue), quit: make(chan struct{}), limiter: rate.NewLimiter(RatePerSecond, RateBurst)}
	if widget {
		c.cred, c.base = roster.SecretKey(widgetCredential(r)), b.baseURL(r)
	}
	b.mu.Lock()
	select {
	case <-b.done:
		b.mu.Unlock()
		ws.Close()
		release()
		return
	default:
	}
	c.release = release
	b.conns[c] = struct{}{}
	if widget {
		// The credential's end ends the connection (revocation closes it
		// through the core or DELETE /widget/session).
		c.expiry = time.AfterFunc(time.Until(expires), func() { c.close(closeAuth) })
	}
	// Started under b.mu, after the done check: Shutdown's wg.Wait then
	// comes after these wg.Adds (a WaitGroup must not grow from zero
	// while it is being waited on).
	b.goSafe("ws writer", c.writeLoop)
	b.goSafe("ws reader", c.readLoop)
	b.mu.Unlock()
}

// Event implements Events: queue a frame for the browser without blocking.
func (c *conn) Event(f Frame) bool {
	select {
	case <-c.quit:
		return false
	default:
	}
	if f["type"] == "message" {
		if m, ok := f["message"].(Message); ok && !c.firstTime(m.ID) {
			return true
		}
	}
	select {
	case c.out <- f:
		return true
	default:
		c.close(closeSlow)
		return false
	}
}

// firstTime records that message id goes to the browser and reports
// whether it had not gone before.
func (c *conn) firstTime(id int64) bool {
	c.sentMu.Lock()
	defer c.sentMu.Unlock()
	if c.sentIDs == nil {
		c.sentIDs = map[int64]struct{}{}
	}
	if _, dup := c.sentIDs[id]; dup || id <= c.sentLo {
		return false
	}
	c.sentIDs[id] = struct{}{}
	if len(c.sentIDs) > 2*ReplayLimit {
		// Forget the older half; a message older than those is not
		// delivered live again anyway.
		ids := make([]int64, 0, len(c.sentIDs))
		for k := range c.sentIDs {
			ids = append(ids, k)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, k := range ids[:len(ids)/2] {
			delete(c.sentIDs, k)
		}
		c.sentLo = ids[len(ids)/2-1]
	}
	return true
}

// Close implements Events: the core ends the session.
func (c *conn) Close(reason string) {
	if reason == xmppcore.ReasonDeactivated || reason == xmppcore.ReasonRevoked {
		// The account may no longer be signed in here: the browser is told
		// to sign in again (its cookie is gone).
		c.close(closeAuth)
		return
	}
	c.close(closeCore + ": " + reason)
}

func (c *conn) close(why string) {
	c.once.Do(func() {
		c.why = why
		close(c.quit)
		c.ws.SetReadDeadline(time.Now())
	})
}

func (c *conn) writeLoop() {
	ping := time.NewTicker(PingInterval)
	defer ping.Stop()
	defer c.ws.Close()
	for {
		select {
		case f := <-c.out:
			c.ws.SetWriteDeadline(time.Now().Add(WriteTimeout))
			if err := c.ws.WriteJSON(f); err != nil {
				c.close(closeClient)
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(WriteTimeout)); err != nil {
				c.close(closeClient)
				return
			}
		case <-c.quit:
			code := websocket.CloseNormalClosure
			switch {
			case c.why == closeRate:
				code = CodeRateLimited
			case c.why == closeAuth:
				code = CodeUnauthorized
			case c.why == closeShutdown:
				code = websocket.CloseGoingAway
			}
			c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, c.why), time.Now().Add(time.Second))
			return
		}
	}
}

func (c *conn) readLoop() {
	log := c.b.log.With("user", c.user.Login)
	defer func() {
		c.close(closeClient)
		if c.expiry != nil {
			c.expiry.Stop()
		}
		if c.link != nil {
			c.link.Close()
		}
		c.b.mu.Lock()
		delete(c.b.conns, c)
		c.b.mu.Unlock()
		c.release()
		if c.why == closeSlow || c.why == closeRate {
			log.Warn("ws closed", "reason", c.why)
		} else {
			log.Debug("ws closed", "reason", c.why)
		}
	}()
	c.ws.SetReadDeadline(time.Now().Add(PongTimeout))
	c.ws.SetPongHandler(func(string) error { c.ws.SetReadDeadline(time.Now().Add(PongTimeout)); return nil })
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseMessageTooBig, "frame too large"), time.Now().Add(time.Second))
			}
			return
		}
		c.ws.SetReadDeadline(time.Now().Add(PongTimeout))
		if !c.allow() {
			c.Event(errFrame("", "rate_limited", "too many frames; slow down"))
			c.close(closeRate)
			return
		}
		if typ != websocket.TextMessage {
			c.Event(errFrame("", "bad_frame", "frames are JSON text"))
			continue
		}
		c.handle(data)
	}
}

// allow takes a token from the connection's bucket: RateBurst frames,
// refilled at RatePerSecond (golang.org/x/time/rate).
func (c *conn) allow() bool { return c.limiter.Allow() }

func errFrame(id, code, msg string) Frame {
	f := Frame{"type": "error", "code": code, "message": msg}
	if id != "" {
		f["id"] = id
	}
	return f
}

func ack(id string, data any) Frame {
	f := Frame{"type": "ack", "id": id}
	if data != nil {
		f["data"] = data
	}
	return f
}

// request is every field a client command may carry.
type request struct {
	Type     string  `json:"type"`
	ID       string  `json:"id"`
	LastID   int64   `json:"last_id"`
	To       Target  `json:"to"`
	With     Target  `json:"with"`
	Body     *string `json:"body"`
	OriginID string  `json:"origin_id"`
	State    string  `json:"state"`
	UpTo     int64   `json:"up_to"`
	Message  int64   `json:"message_id"`
	BeforeID int64   `json:"before_id"`
	Limit    int     `json:"limit"`
	Text     string  `json:"text"`
	Show     string  `json:"show"`
	Status   *string `json:"status"`
	Auto     bool    `json:"auto"` // presence: an automatic state (idle), not remembered
	User     int64   `json:"user"`
	IDs      []int64 `json:"ids"`
	All      bool    `json:"all"`
	// A notification's pressed button (notification_action, notify.go).
	NotificationID int64   `json:"notification_id"`
	Answer         string  `json:"answer"`
	Files          []int64 `json:"files"`
	// chat commands (chats.go)
	Chat        int64   `json:"chat"`
	Title       *string `json:"title"`
	Description *string `json:"description"`
	Color       *string `json:"color"`
	ChatType    *string `json:"chat_type"`
	Avatar      *string `json:"avatar"`
	Owner       *int64  `json:"owner"`
	Users       []int64 `json:"users"`
	HideHistory *bool   `json:"hide_history"`
	SkipMessage bool    `json:"skip_message"`
	// Reactions is the whole set of the user's reactions (react).
	Reactions []string `json:"reactions"`
	// ReplyTo is the message a sent one answers (send).
	ReplyTo int64 `json:"reply_to"`
	// Button is the index of a keyboard button (press).
	Button *int `json:"button"`
}

// cmdError is a refusal the browser sees with its code; field names the
// command's field at fault, when one is.
type cmdError struct{ code, msg, field string }

func (e *cmdError) Error() string { return e.code + ": " + e.msg }

func bad(code, msg string) error { return &cmdError{code: code, msg: msg} }

func (c *conn) handle(data []byte) {
	var req request
	if err := json.Unmarshal(data, &req); err != nil {
		c.Event(errFrame("", "bad_frame", "the frame is not a JSON object of the protocol"))
		return
	}
	if req.Type == "" {
		c.Event(errFrame(req.ID, "bad_frame", "the frame has no type"))
		return
	}
	if len(req.ID) > 64 {
		c.Event(errFrame("", "bad_frame", "id is longer than 64 characters"))
		return
	}
	if c.cred != "" && !widgetCommands[req.Type] {
		c.Event(errFrame(req.ID, "forbidden", "the widget may not use "+truncate(req.Type, 40)))
		return
	}
	if !c.hello && req.Type != "hello" {
		c.Event(errFrame(req.ID, "hello_required", "say hello first"))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	data2, err := c.dispatch(ctx, &req)
	if err != nil {
		var ce *cmdError
		switch {
		case errors.As(err, &ce):
			f := errFrame(req.ID, ce.code, ce.msg)
			if ce.field != "" {
				f["field"] = ce.field
			}
			c.Event(f)
		case errors.Is(err, ErrForbidden):
			c.Event(errFrame(req.ID, "forbidden", "you may not do that"))
		case errors.Is(err, ErrNotFound):
			c.Event(errFrame(req.ID, "not_found", "no such thing"))
		default:
			c.b.log.Error("command", "type", req.Type, "user", c.user.Login, "err", err)
			c.Event(errFrame(req.ID, "internal", "the server could not do that"))
		}
		return
	}
	if req.Type == "typing" && req.ID == "" {
		return
	}
	if req.Type == "hello" {
		return // hello answers itself (ack, replay, synced)
	}
	c.Event(ack(req.ID, data2))
}

func randomResource() string {
	var b [6]byte
	rand.Read(b[:])
	return "web-" + hex.EncodeToString(b[:])
}

func (c *conn) needLink() error {
	if c.link == nil {
		return bad("unavailable", "messaging is not available on this server")
	}
	return nil
}

func checkBody(s *string) (string, error) {
	if s == nil || strings.TrimSpace(*s) == "" {
		return "", bad("empty_body", "the message is empty")
	}
	if len(*s) > MaxBody {
		return "", bad("too_large", "the message is longer than 16 KiB")
	}
	if !utf8.ValidString(*s) {
		return "", bad("bad_frame", "the message is not valid UTF-8")
	}
	return *s, nil
}

func (c *conn) dispatch(ctx context.Context, r *request) (any, error) {
	b := c.b
	me := c.user.ID
	switch r.Type {
	case "hello":
		return nil, c.doHello(ctx, r)
	case "send":
		if err := c.needLink(); err != nil {
			return nil, err
		}
		if !r.To.valid() {
			return nil, bad("bad_target", "to must name one user or one chat")
		}
		var body string
		var err error
		if len(r.Files) == 0 || r.Body != nil && *r.Body != "" {
			if body, err = checkBody(r.Body); err != nil {
				return nil, err
			}
		}
		if len(r.OriginID) > 64 {
			return nil, bad("bad_frame", "origin_id is longer than 64 characters")
		}
		var files []File
		if len(r.Files) > 0 {
			if body, files, err = c.withFiles(ctx, body, r.Files); err != nil {
				return nil, err
			}
		}
		m, err := c.link.Send(ctx, r.To, body, r.OriginID, r.ReplyTo)
		if err != nil {
			return nil, err
		}
		if m == nil {
			// A command: answered by a command_answer event, not stored.
			return map[string]any{"message": nil, "command": true}, nil
		}
		m.Files = files
		return map[string]any{"message": m}, nil
	case "edit":
		if err := c.needLink(); err != nil {
			return nil, err
		}
		body, err := checkBody(r.Body)
		if err != nil {
			return nil, err
		}
		m, err := c.link.Edit(ctx, r.Message, body)
		if err != nil {
			return nil, err
		}
		return map[string]any{"message": m}, nil
	case "delete":
		if err := c.needLink(); err != nil {
			return nil, err
		}
		m, err := c.link.Retract(ctx, r.Message)
		if err != nil {
			return nil, err
		}
		return map[string]any{"message": m}, nil
	case "react":
		if err := c.needLink(); err != nil {
			return nil, err
		}
		if r.Message <= 0 {
			return nil, bad("bad_frame", "message_id names the message")
		}
		if r.Reactions == nil {
			r.Reactions = []string{}
		}
		rs, err := c.link.React(ctx, r.Message, r.Reactions)
		if err != nil {
			return nil, err
		}
		return map[string]any{"message_id": r.Message, "reactions": rs}, nil
	case "press":
		if err := c.needLink(); err != nil {
			return nil, err
		}
		if r.Message <= 0 || r.Button == nil {
			return nil, bad("bad_frame", "message_id and button name the button")
		}
		if err := c.link.Press(ctx, r.Message, *r.Button); err != nil {
			return nil, err
		}
		return map[string]any{"message_id": r.Message, "button": *r.Button}, nil
	case "typing":
		if err := c.needLink(); err != nil {
			return nil, err
		}
		if !r.To.valid() {
			return nil, bad("bad_target", "to must name one user or one chat")
		}
		if r.State != "composing" && r.State != "paused" {
			return nil, bad("bad_state", "state is composing or paused")
		}
		if r.To.Chat > 0 {
			// Chat states in a chat go to the members' browsers (the MUC
			// service does not relay them to non-occupants).
			return nil, b.chatTyping(ctx, me, r.To.Chat, r.State)
		}
		return nil, c.link.Typing(ctx, r.To, r.State)
	case "read":
		if !r.With.valid() || r.UpTo <= 0 {
			return nil, bad("bad_target", "with must name one user or one chat, up_to a message id")
		}
		// The core's operation (xmppcore/read.go); without the core only
		// the mark is stored, as there are no sessions to tell.
		switch {
		case c.link != nil:
			return nil, c.link.MarkRead(ctx, r.With, r.UpTo)
		case b.archive != nil:
			return nil, b.archive.MarkRead(ctx, me, r.With, r.UpTo)
		}
		return nil, bad("unavailable", "read marks are not available on this server")
	case "seen_by":
		if b.archive == nil {
			return nil, bad("unavailable", "read marks are not available on this server")
		}
		if r.Chat <= 0 || r.Message <= 0 {
			return nil, bad("bad_target", "chat names the chat, message_id the message")
		}
		users, err := b.archive.SeenBy(ctx, me, r.Chat, r.Message)
		if err != nil {
			return nil, err
		}
		return map[string]any{"chat": r.Chat, "message_id": r.Message, "users": users}, nil
	case "history":
		if b.archive == nil {
			return nil, bad("unavailable", "history is not available on this server")
		}
		if !r.With.valid() {
			return nil, bad("bad_target", "with must name one user or one chat")
		}
		limit := r.Limit
		if limit <= 0 || limit > MaxHistory {
			limit = MaxHistory
		}
		msgs, complete, err := b.archive.History(ctx, me, r.With, r.BeforeID, limit)
		if err != nil {
			return nil, err
		}
		res := map[string]any{"messages": nonNil(msgs), "complete": complete}
		if r.With.User > 0 {
			pr, err := b.archive.ReadMark(ctx, r.With.User, Target{User: me})
			if err != nil {
				return nil, err
			}
			res["peer_read"] = pr
		} else if r.BeforeID == 0 {
			// How far the other members have read ("seen by"); kept
			// current by seen events.
			marks, err := b.archive.ChatReadMarks(ctx, me, r.With.Chat)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return nil, err
			}
			if marks != nil {
				res["read_marks"] = marks
			}
		}
		return res, nil
	case "search":
		if b.archive == nil {
			return nil, bad("unavailable", "search is not available on this server")
		}
		text := strings.TrimSpace(r.Text)
		if text == "" || len(text) > 200 {
			return nil, bad("bad_query", "text must be 1 to 200 bytes")
		}
		limit := r.Limit
		if limit <= 0 || limit > 50 {
			limit = 50
		}
		hits, err := b.archive.Search(ctx, me, text, limit)
		if err != nil {
			return nil, err
		}
		return map[string]any{"hits": nonNil(hits)}, nil
	case "presence":
		if err := c.needLink(); err != nil {
			return nil, err
		}
		switch r.Show {
		case "online", "away", "dnd":
		default:
			return nil, bad("bad_show", "show is online, away or dnd")
		}
		status := ""
		if r.Status != nil {
			status = *r.Status
		}
		if len(status) > 200 {
			return nil, bad("too_large", "status is longer than 200 bytes")
		}
		// What the user chose is remembered for their next sessions; an
		// automatic state (auto: idle away) is not.
		if err := c.link.SetPresence(ctx, r.Show, status, !r.Auto); err != nil {
			return nil, err
		}
		c.show, c.status = r.Show, status
		return nil, nil
	case "contacts":
		return c.contacts(ctx)
	case "conversations":
		chats, err := b.chats.ChatsOf(ctx, me)
		if err != nil {
			return nil, err
		}
		ids := make([]int64, len(chats))
		cj := make([]chatJSON, len(chats))
		for i, ch := range chats {
			ids[i] = ch.ID
			cj[i] = toChatJSON(ch, true)
		}
		if b.archive == nil {
			return nil, bad("unavailable", "history is not available on this server")
		}
		convs, err := b.archive.Conversations(ctx, me, ids)
		if err != nil {
			return nil, err
		}
		return map[string]any{"conversations": nonNil(convs), "chats": cj}, nil
	case "profile":
		u, err := b.users.UserByID(ctx, r.User)
		if errors.Is(err, roster.ErrNotFound) {
			return nil, bad("not_found", "no such user")
		}
		if err != nil {
			return nil, err
		}
		res := map[string]any{"user": b.withPhoto(ctx, toUserJSON(u))}
		if c.link != nil {
			p, err := c.link.PresenceOf(ctx, u.ID)
			if err != nil {
				return nil, err
			}
			res["presence"] = p
		}
		return res, nil
	case "notifications":
		limit := r.Limit
		if limit <= 0 || limit > 100 {
			limit = 100
		}
		ns, unread, err := b.notifications(ctx, me, r.BeforeID, limit, false)
		if err != nil {
			return nil, err
		}
		views, err := withExtras(ctx, notificationCore(c.link), me, ns)
		if err != nil {
			return nil, err
		}
		return map[string]any{"notifications": views, "unread": unread}, nil
	case "notification_action":
		return notificationAction(ctx, notificationCore(c.link), me, *r)
	case "notifications_read":
		if !r.All && len(r.IDs) == 0 {
			return nil, bad("bad_frame", "give ids or all: true")
		}
		if len(r.IDs) > 500 {
			return nil, bad("too_large", "at most 500 ids")
		}
		ids := r.IDs
		if r.All {
			ids = nil
		}
		if _, err := b.notes.MarkRead(ctx, me, 0, ids); err != nil {
			return nil, err
		}
		unread, err := b.notes.Unread(ctx, me)
		if err != nil {
			return nil, err
		}
		return map[string]any{"unread": unread}, nil
	case "chat_create", "chat_edit", "chat_add", "chat_join", "chat_remove", "chat_leave", "chat_info", "chats_find":
		return c.chatCommand(ctx, r)
	case "ping":
		return map[string]any{"time": time.Now().UnixMilli()}, nil
	case "widget_state":
		return b.widgetState(ctx, c.user, notificationCore(c.link))
	case "login_link":
		if c.cred == "" {
			return nil, bad("forbidden", "login links are for the widget")
		}
		return c.loginLink(ctx)
	default:
		return nil, bad("unknown_type", "unknown frame type "+truncate(r.Type, 40))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// doHello attaches the session (first hello only), then replays what the
// client missed after last_id and says "synced".
func (c *conn) doHello(ctx context.Context, r *request) error {
	b := c.b
	if c.hello {
		return bad("bad_frame", "hello was already said")
	}
	if r.LastID > 0 {
		// The browser has everything up to last_id: neither the offline
		// flush of the attach nor a live race sends those again.
		c.sentMu.Lock()
		c.sentLo = max(c.sentLo, r.LastID)
		c.sentMu.Unlock()
		if b.core != nil {
			if err := b.core.ConfirmDelivered(ctx, c.user.ID, r.LastID); err != nil {
				return err
			}
		}
	}
	if b.core != nil {
		link, err := b.core.Attach(ctx, c.user.ID, randomResource(), c)
		if err != nil {
			return err
		}
		c.link = link
		c.show, c.status = link.Own()
	}
	c.hello = true
	c.ready.Store(true)
	// head: the newest message id now; a client starting from nothing
	// resumes from here next time (older messages are history).
	var head int64
	if b.archive != nil {
		var err error
		if head, err = b.archive.Head(ctx); err != nil {
			return err
		}
	}
	c.Event(ack(r.ID, map[string]any{"user": b.withPhoto(ctx, toUserJSON(c.user)), "server_time": time.Now().UnixMilli(), "head": head,
		"presence": map[string]string{"show": c.show, "status": c.status}}))
	if b.archive != nil && r.LastID > 0 {
		after, sent := r.LastID, 0
		for sent < ReplayLimit {
			msgs, err := b.archive.Since(ctx, c.user.ID, after, 200)
			if err != nil {
				return err
			}
			for i := range msgs {
				if !c.Event(Frame{"type": "message", "message": msgs[i], "replay": true}) {
					return nil
				}
				after = msgs[i].ID
				sent++
			}
			if len(msgs) < 200 {
				break
			}
		}
	}
	c.Event(Frame{"type": "synced", "last_id": r.LastID})
	return nil
}

type chatJSON struct {
	ID          int64  `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Color       string `json:"color"`
	Type        string `json:"type"`
	Members     int    `json:"members,omitempty"`
	Member      bool   `json:"member"`
	JID         string `json:"jid,omitempty"`
}
