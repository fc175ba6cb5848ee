// Package webhook is Vestnik's outgoing events: receivers registered by
// integrations (POST /api/v1/webhooks) and bots get signed HTTP posts when
// something happens in the core — a message is created, edited or
// deleted, a reaction added, members added, a keyboard button or a
// notification button pressed.
//
// Events are written to a durable queue in the database (webhook_queue):
// archive changes in the archive's own transaction (mam.Options.OnChange),
// other events right after the core operation commits. A dispatcher sends
// them, each as its own HTTP POST, retrying with exponential backoff, so a
// restart loses none and a receiver that is down gets them later. Within a
// chain (a chat, a pair of users, a user's notifications) only the oldest
// event is tried, so a receiver sees a chat's events in order. Delivery is
// at least once: a receiver that took an event but did not answer 2xx
// before the server stopped gets it again (same id).
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
)

// Event kinds.
const (
	MessageCreated     = "message.created"
	MessageUpdated     = "message.updated"
	MessageDeleted     = "message.deleted"
	ReactionAdded      = "reaction.added"
	ChatMemberAdded    = "chat.member_added"
	KeyboardPressed    = "keyboard.pressed"
	NotificationAction = "notification.action"
	// CommandReceived is a message whose text starts with a command
	// ("/weather Moscow") in a chat or dialog a bot is in.
	CommandReceived = "command.received"
)

// Kinds lists the event kinds a webhook may ask for.
var Kinds = []string{MessageCreated, MessageUpdated, MessageDeleted, ReactionAdded, ChatMemberAdded,
	KeyboardPressed, NotificationAction, CommandReceived}

// Formats of a webhook's deliveries.
const (
	FormatJSON   = "json"   // a JSON body (Event)
	FormatBitrix = "bitrix" // form fields as Bitrix24 posts events to bots (bitrix.go)
)

// Limits and defaults; Options override most.
const (
	SignatureHeader   = "X-Vestnik-Signature" // sha256=<hex HMAC-SHA256 of the body>
	DeliveryHeader    = "X-Vestnik-Delivery"  // the delivery id, the same on every retry
	EventHeader       = "X-Vestnik-Event"
	MaxURL            = 2048
	MaxWebhooks       = 1000             // receivers on one server
	DefaultMaxQueue   = 10000            // pending deliveries per webhook; beyond, new events are dropped and counted
	DefaultMaxBody    = 256 << 10        // bytes of one delivery's data; a larger event is cut to its ids
	DefaultTimeout    = 10 * time.Second // one attempt
	DefaultWorkers    = 8                // attempts in flight on this node
	PerWebhookWorkers = 4                // attempts in flight per webhook (distinct chains)
	DefaultRetryBase  = time.Second      // first retry; doubles to DefaultRetryMax
	DefaultRetryMax   = 10 * time.Minute
	DefaultMaxAge     = 24 * time.Hour // a delivery still failing after this is dropped
	DefaultPoll       = time.Second    // how often the queue is read when not woken
	reloadEvery       = 5 * time.Second
	pickBatch         = 200
)

// ErrNotFound: no such webhook.
var ErrNotFound = errors.New("webhook: not found")

// InvalidError is a request that cannot be accepted, naming the field.
type InvalidError struct{ Field, Code, Message string }

func (e *InvalidError) Error() string { return "webhook: " + e.Field + ": " + e.Message }

// Webhook is a registered receiver.
type Webhook struct {
	ID        int64     `db:"id" json:"id"`
	URL       string    `db:"url" json:"url"`
	Secret    string    `db:"secret" json:"secret,omitempty"`
	Events    []string  `db:"-" json:"events"`
	ChatID    int64     `db:"-" json:"chat_id,omitempty"`
	BotID     int64     `db:"-" json:"-"` // the bot's user id; 0: an integration's webhook
	Format    string    `db:"format" json:"format"`
	CreatedAt time.Time `db:"-" json:"created_at"`
}

func (w *Webhook) wants(kind string) bool { return slices.Contains(w.Events, kind) }

// hears reports whether the webhook gets events of kind: those it asked
// for, and for a Bitrix24 bot's command handler also keyboard presses
// (Bitrix24 posts both as ONIMCOMMANDADD).
func (w *Webhook) hears(kind string) bool {
	return w.wants(kind) || w.Format == FormatBitrix && kind == KeyboardPressed && w.wants(CommandReceived)
}

// Options tune the service; zero values are the documented defaults.
type Options struct {
	// DenyHosts are host names, addresses or CIDR ranges webhooks may
	// not point at (vestnik serve --webhook-deny-hosts); empty: any.
	DenyHosts []string
	Timeout   time.Duration // one attempt (DefaultTimeout)
	Workers   int           // attempts in flight (DefaultWorkers)
	MaxQueue  int           // pending deliveries per webhook (DefaultMaxQueue)
	MaxBody   int           // bytes of one event's data (DefaultMaxBody)
	RetryBase time.Duration // DefaultRetryBase
	RetryMax  time.Duration // DefaultRetryMax
	MaxAge    time.Duration // DefaultMaxAge
	Poll      time.Duration // DefaultPoll
	Client    *http.Client  // default: a client with Timeout, no redirects
	Logger    *slog.Logger
	// OnDelivery, if set, is told each attempt's outcome and, for a
	// delivered event, how long it waited since it was queued. It must
	// not block.
	OnDelivery func(ok bool, attempt, queued time.Duration)
}

// Service holds the webhooks and delivers their events.
type Service struct {
	db   *sqlx.DB
	pg   bool
	opts Options
	log  *slog.Logger
	deny []denyRule

	mu       sync.Mutex // guards hooks, loaded, pending, inflight, extIDs
	hooks    []*Webhook
	loaded   time.Time
	pending  map[int64]int   // webhook → queued deliveries (refreshed by the dispatcher)
	inflight map[int64]int   // webhook → attempts in flight here
	busy     map[string]bool // webhook/chain under way here
	extIDs   map[int64]string

	counted time.Time // when run last recounted pending (run's own)
	wake    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	sem     chan struct{}
	start   sync.Once
	dropped int64 // guarded by mu: events dropped for a full queue
}

// New returns the service over db. Call Start to deliver.
func New(db *sqlx.DB, opts Options) (*Service, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.MaxQueue <= 0 {
		opts.MaxQueue = DefaultMaxQueue
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = DefaultRetryBase
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = DefaultRetryMax
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	deny, err := parseDeny(opts.DenyHosts)
	if err != nil {
		return nil, err
	}
	if opts.Client == nil {
		// The deny list holds at connect time too: a name that resolved
		// elsewhere when the webhook was registered cannot lead into a
		// denied range later.
		d := &net.Dialer{Timeout: opts.Timeout, Control: func(_, address string, _ syscall.RawConn) error {
			host, _, _ := net.SplitHostPort(address)
			if ip := net.ParseIP(host); ip != nil && deniedIP(deny, ip) {
				return fmt.Errorf("webhook: %s is on the deny list", host)
			}
			return nil
		}}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = d.DialContext
		tr.Proxy = nil
		tr.MaxIdleConnsPerHost = PerWebhookWorkers
		opts.Client = &http.Client{Timeout: opts.Timeout, Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{db: db, pg: db.DriverName() == "postgres", opts: opts, log: opts.Logger.With("component", "webhook"), deny: deny,
		pending: map[int64]int{}, inflight: map[int64]int{}, busy: map[string]bool{}, extIDs: map[int64]string{},
		wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, sem: make(chan struct{}, opts.Workers)}, nil
}

// denyRule is one entry of the deny list: a network or a host name.
type denyRule struct {
	net  *net.IPNet
	host string
}

func parseDeny(list []string) ([]denyRule, error) {
	var out []denyRule
	for _, h := range list {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		if _, n, err := net.ParseCIDR(h); err == nil {
			out = append(out, denyRule{net: n})
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			bits := 32
			if ip.To4() == nil {
				bits = 128
			}
			out = append(out, denyRule{net: &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}})
			continue
		}
		if strings.ContainsAny(h, "/ :") {
			return nil, fmt.Errorf("webhook: deny list: %q is not a host, address or CIDR range", h)
		}
		out = append(out, denyRule{host: strings.TrimSuffix(h, ".")})
	}
	return out, nil
}

// denied reports whether host (a name or an address) is on the deny list:
// a name matches itself and its subdomains; an address, its ranges. A name
// is also resolved, so a name pointing into a denied range is denied.
func (s *Service) denied(ctx context.Context, host string) bool {
	if len(s.deny) == 0 {
		return false
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		ips = nil
		for _, r := range s.deny {
			if r.host != "" && (host == r.host || strings.HasSuffix(host, "."+r.host)) {
				return true
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		addrs, _ := net.DefaultResolver.LookupIPAddr(rctx, host)
		cancel()
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	for _, ip := range ips {
		if deniedIP(s.deny, ip) {
			return true
		}
	}
	return false
}

// deniedIP reports whether ip is in a denied range.
func deniedIP(deny []denyRule, ip net.IP) bool {
	for _, r := range deny {
		if r.net != nil && r.net.Contains(ip) {
			return true
		}
	}
	return false
}

// CheckURL checks a receiver's URL: absolute http or https with a host
// that is not on the deny list.
func (s *Service) CheckURL(ctx context.Context, raw string) error {
	if raw == "" {
		return &InvalidError{"url", "missing_url", "url is required"}
	}
	if len(raw) > MaxURL {
		return &InvalidError{"url", "url_too_long", fmt.Sprintf("url must be at most %d bytes", MaxURL)}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return &InvalidError{"url", "invalid_url", "url must be an absolute http:// or https:// URL"}
	}
	if u.User != nil {
		return &InvalidError{"url", "invalid_url", "url must not carry a user name or password"}
	}
	if s.denied(ctx, u.Hostname()) {
		return &InvalidError{"url", "denied_host", "the operator does not allow webhooks to " + u.Hostname()}
	}
	return nil
}

// NewWebhook is what Create needs.
type NewWebhook struct {
	URL    string
	Events []string
	ChatID int64
	BotID  int64
	Format string // FormatJSON when empty
}

// Create registers a receiver and returns it with its secret.
func (s *Service) Create(ctx context.Context, n NewWebhook) (*Webhook, error) {
	if err := s.CheckURL(ctx, n.URL); err != nil {
		return nil, err
	}
	if len(n.Events) == 0 {
		return nil, &InvalidError{"events", "missing_events", "events must name at least one event: " + strings.Join(Kinds, ", ")}
	}
	var evs []string
	for _, e := range n.Events {
		if !slices.Contains(Kinds, e) {
			return nil, &InvalidError{"events", "unknown_event", fmt.Sprintf("unknown event %q (known: %s)", e, strings.Join(Kinds, ", "))}
		}
		if !slices.Contains(evs, e) {
			evs = append(evs, e)
		}
	}
	if n.Format == "" {
		n.Format = FormatJSON
	}
	if n.Format != FormatJSON && n.Format != FormatBitrix {
		return nil, &InvalidError{"format", "invalid_format", "format must be json or bitrix"}
	}
	if n.ChatID < 0 {
		return nil, &InvalidError{"chat_id", "invalid_chat", "chat_id must be a chat id"}
	}
	var count int
	if err := s.db.GetContext(ctx, &count, `SELECT COUNT(*) FROM webhooks`); err != nil {
		return nil, fmt.Errorf("webhook: count: %w", err)
	}
	if count >= MaxWebhooks {
		return nil, &InvalidError{"url", "too_many_webhooks", fmt.Sprintf("a server holds at most %d webhooks", MaxWebhooks)}
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	w := &Webhook{URL: n.URL, Secret: hex.EncodeToString(secret), Events: evs, ChatID: n.ChatID, BotID: n.BotID, Format: n.Format,
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	err := s.db.GetContext(ctx, &w.ID, s.db.Rebind(`INSERT INTO webhooks (url, secret, events, chat_id, bot_id, format, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`), w.URL, w.Secret, strings.Join(evs, " "), nullID(w.ChatID), nullID(w.BotID), w.Format, w.CreatedAt.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("webhook: create: %w", err)
	}
	s.invalidate()
	return w, nil
}

type webhookRow struct {
	ID        int64         `db:"id"`
	URL       string        `db:"url"`
	Secret    string        `db:"secret"`
	Events    string        `db:"events"`
	ChatID    sql.NullInt64 `db:"chat_id"`
	BotID     sql.NullInt64 `db:"bot_id"`
	Format    string        `db:"format"`
	CreatedAt int64         `db:"created_at"`
}

func (r webhookRow) webhook() *Webhook {
	return &Webhook{ID: r.ID, URL: r.URL, Secret: r.Secret, Events: strings.Fields(r.Events), ChatID: r.ChatID.Int64,
		BotID: r.BotID.Int64, Format: r.Format, CreatedAt: time.UnixMicro(r.CreatedAt).UTC()}
}

const webhookCols = `id, url, secret, events, chat_id, bot_id, format, created_at`

// List returns the webhooks (botID 0: the integrations'; else that bot's),
// oldest first, without their secrets.
func (s *Service) List(ctx context.Context, botID int64) ([]*Webhook, error) {
	q, args := `SELECT `+webhookCols+` FROM webhooks WHERE bot_id IS NULL ORDER BY id`, []any{}
	if botID != 0 {
		q, args = `SELECT `+webhookCols+` FROM webhooks WHERE bot_id = ? ORDER BY id`, []any{botID}
	}
	var rows []webhookRow
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("webhook: list: %w", err)
	}
	out := make([]*Webhook, len(rows))
	for i, r := range rows {
		out[i] = r.webhook()
		out[i].Secret = ""
	}
	return out, nil
}

// Delete removes a webhook (botID: of that bot only; 0: an integration's)
// and its pending deliveries.
func (s *Service) Delete(ctx context.Context, id, botID int64) error {
	q, args := `DELETE FROM webhooks WHERE id = ? AND bot_id IS NULL`, []any{id}
	if botID != 0 {
		q, args = `DELETE FROM webhooks WHERE id = ? AND bot_id = ?`, []any{id, botID}
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("webhook: delete %d: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, tx.Rebind(q), args...)
	if err != nil {
		return fmt.Errorf("webhook: delete %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM webhook_queue WHERE webhook_id = ?`), id); err != nil {
		return fmt.Errorf("webhook: delete %d: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("webhook: delete %d: %w", id, err)
	}
	s.invalidate()
	return nil
}

// DeleteBot removes every webhook of a bot.
func (s *Service) DeleteBot(ctx context.Context, botID int64) error {
	hooks, err := s.List(ctx, botID)
	if err != nil {
		return err
	}
	for _, h := range hooks {
		if err := s.Delete(ctx, h.ID, botID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

func (s *Service) invalidate() {
	s.mu.Lock()
	s.loaded = time.Time{}
	s.mu.Unlock()
}

// webhooks returns the registered webhooks, read again every few seconds
// (other nodes register too).
func (s *Service) webhooks(ctx context.Context, q sqlx.QueryerContext) ([]*Webhook, error) {
	s.mu.Lock()
	if time.Since(s.loaded) < reloadEvery {
		hs := s.hooks
		s.mu.Unlock()
		return hs, nil
	}
	s.mu.Unlock()
	var rows []webhookRow
	if err := sqlx.SelectContext(ctx, q, &rows, `SELECT `+webhookCols+` FROM webhooks ORDER BY id`); err != nil {
		return nil, fmt.Errorf("webhook: load: %w", err)
	}
	hs := make([]*Webhook, len(rows))
	for i, r := range rows {
		hs[i] = r.webhook()
	}
	s.mu.Lock()
	s.hooks, s.loaded = hs, time.Now()
	s.mu.Unlock()
	return hs, nil
}

func (s *Service) byID(ctx context.Context, id int64) *Webhook {
	hs, err := s.webhooks(ctx, s.db)
	if err != nil {
		return nil
	}
	for _, h := range hs {
		if h.ID == id {
			return h
		}
	}
	// Registered on another node since the last load.
	s.invalidate()
	hs, _ = s.webhooks(ctx, s.db)
	for _, h := range hs {
		if h.ID == id {
			return h
		}
	}
	return nil
}

// Sign is the value of the signature header for body: sha256= and the
// hex HMAC-SHA256 of the body keyed with the webhook's secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header against body in constant time.
func Verify(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
