// Package api is the REST API for portal integrations under /api/v1: HR
// sync, chats, messages and notifications (SPEC §6). It is one
// http.ServeMux; every route but the public avatars goes through one
// middleware that checks the bearer token, the per-token rate and the
// body size. Errors are {"error":{"code","message"}} with the status
// codes of SPEC §6, never a 500 for bad input.
package api

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"vestnik/roster"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/upload"
	"vestnik/xmppcore/webhook"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// Limits.
const (
	MaxBody      = 1 << 20  // bytes of a request body (an avatar fits: 256 KiB as base64)
	MaxOrgBody   = 64 << 20 // bytes of a PUT /org body (roster.MaxImportBytes)
	MaxMessage   = 64 << 10 // bytes of a message or notification text
	MaxLink      = 2048     // bytes of a notification link
	DefaultRate  = 1000     // requests per second per token
	tokenCacheMS = 10_000   // how long a verified token is trusted without asking the database
)

// Messenger is what the API needs from the XMPP server: personal messages
// and notifications take the same path as from any other door.
// xmppcore.Server implements it.
type Messenger interface {
	SendPersonal(ctx context.Context, fromUserID, toUserID int64, body string) (int64, error)
	Notify(ctx context.Context, userID int64, text, link string) (int64, error)
}

// Options tune the API; zero values are the documented defaults.
type Options struct {
	// Rate is how many requests per second one token may make (default
	// DefaultRate; negative: unlimited), with bursts of twice that.
	Rate   float64
	Logger *slog.Logger
	// Archive serves GET /users/{id}/history and /users/{id}/search
	// (without it they answer 503).
	Archive *mam.Store
	// LoginToken serves POST /users/{id}/login-token (bridge.LoginTokenHandler);
	// without it the route answers 404.
	LoginToken http.HandlerFunc
	// Files serves POST /files and GET /files/{id}, and files[] in
	// messages (without it they answer 404 / 422).
	Files *upload.Store
	// MaxDeactivatedShare is the share of active employees PUT /org may
	// deactivate without ?force=true (default roster.MaxDeactivatedShare).
	MaxDeactivatedShare float64
	// Webhooks serves /webhooks and /bots (api/webhooks.go); without it
	// they answer 404.
	Webhooks *webhook.Service
}

// API serves /api/v1.
type API struct {
	users *roster.Store
	chats *muc.Service
	msgr  Messenger
	opts  Options
	log   *slog.Logger
	mux   *http.ServeMux

	routes []string // "METHOD /api/v1/path", for the OpenAPI check

	mu      sync.Mutex // guards buckets, tokens, used and byExt
	buckets map[int64]*rate.Limiter
	tokens  map[string]cachedToken
	used    map[int64]time.Time // when a token's last use was last written
	byExt   map[string]cachedUser
}

type cachedUser struct {
	u       *roster.User
	expires time.Time
}

// userTTL is how long a user looked up by portal id is trusted (an HR
// import that deactivates someone takes effect within it).
const userTTL = 5 * time.Second

// userByExtID is roster.UserByExtID with a short cache for busy
// integrations posting as the same few users.
func (a *API) userByExtID(ctx context.Context, ext string) (*roster.User, error) {
	now := time.Now()
	a.mu.Lock()
	c, ok := a.byExt[ext]
	a.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.u, nil
	}
	u, err := a.users.UserByExtID(ctx, ext)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if len(a.byExt) > 100000 {
		clear(a.byExt)
	}
	a.byExt[ext] = cachedUser{u: u, expires: now.Add(userTTL)}
	a.mu.Unlock()
	return u, nil
}

type cachedToken struct {
	tok     *roster.Token
	expires time.Time
}

// tokenUseEvery is how often a token's last use is written down.
const tokenUseEvery = time.Minute

// tokenKey is the request context key of the verified token.
type tokenKey struct{}

// requestToken is the token that authenticated r.
func requestToken(r *http.Request) *roster.Token {
	t, _ := r.Context().Value(tokenKey{}).(*roster.Token)
	return t
}

// routeScope is the token scope a route needs: replacing the org
// structure and minting login links have their own, reads need read and
// every other change needs post.
func routeScope(method, path string) string {
	switch {
	case method == "PUT" && path == "/org":
		return roster.ScopeOrg
	case strings.HasSuffix(path, "/login-token"):
		return roster.ScopeLogin
	case strings.HasPrefix(path, "/webhooks") || strings.HasPrefix(path, "/bots"):
		return roster.ScopeAdmin
	case method == "GET":
		return roster.ScopeRead
	}
	return roster.ScopePost
}

// New returns the API. Mount Handler() at Prefix+"/" and AvatarHandler()
// at "GET /avatars/chat/{id}".
func New(users *roster.Store, chats *muc.Service, msgr Messenger, opts Options) *API {
	if opts.Rate == 0 {
		opts.Rate = DefaultRate
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &API{users: users, chats: chats, msgr: msgr, opts: opts, log: opts.Logger.With("component", "api"),
		mux: http.NewServeMux(), buckets: make(map[int64]*rate.Limiter), tokens: make(map[string]cachedToken), used: make(map[int64]time.Time),
		byExt: make(map[string]cachedUser)}

	// The route table; other owners add their rows here (the web owner:
	// POST /users/{id}/login-token). Every route must be documented in
	// docs/openapi.yaml: TestOpenAPIMatchesRoutes checks both ways.
	a.route("PUT /org", MaxOrgBody, a.putOrg)
	a.route("GET /colors", 0, a.getColors)
	a.route("POST /chats", MaxBody, a.postChat)
	a.route("GET /chats", 0, a.findChats)
	a.route("GET /chats/{id}", 0, a.getChat)
	a.route("PATCH /chats/{id}", MaxBody, a.patchChat)
	a.route("GET /chats/{id}/avatar", 0, a.getAvatar)
	a.route("POST /chats/{id}/users", MaxBody, a.postChatUsers)
	a.route("DELETE /chats/{id}/users/{user_id}", 0, a.deleteChatUser)
	a.route("POST /chats/{id}/messages", MaxBody, a.postChatMessage)
	a.route("POST /messages", MaxBody, a.postMessage)
	a.route("POST /notifications", MaxBody, a.postNotification)
	a.route("GET /chats/{id}/messages", 0, a.getChatMessages) // api/conversations.go
	a.route("GET /users/{id}/recent", 0, a.getRecent)         // api/conversations.go
	a.route("POST /users/{id}/read", MaxBody, a.postRead)     // api/read.go
	a.route("GET /users/{id}/history", 0, a.getHistory)       // api/archive.go
	a.route("GET /users/{id}/search", 0, a.searchArchive)     // api/archive.go
	a.route("POST /users/{id}/login-token", 0, a.loginToken)  // the bridge, via Options.LoginToken
	fileBody := int64(upload.DefaultMaxSize)
	if opts.Files != nil {
		fileBody = opts.Files.MaxSize()
	}
	a.route("POST /files", fileBody+64<<10, a.postFile) // api/files.go
	a.route("GET /files/{id}", 0, a.getFile)
	a.route("GET /files/{id}/thumb", 0, a.getFileThumb)

	// Edits, retractions and reactions (api/edits.go).
	a.route("PATCH /messages/{id}", MaxBody, a.patchMessage)
	a.route("DELETE /messages/{id}", MaxBody, a.deleteMessage)
	a.route("POST /messages/{id}/reactions", MaxBody, a.postReaction)
	a.route("DELETE /messages/{id}/reactions", MaxBody, a.deleteReaction)
	a.route("POST /messages/{id}/keyboard", MaxBody, a.postPress) // api/rich.go

	// Outgoing events, bots, keyboards, notification actions (api/webhooks.go).
	a.route("POST /webhooks", MaxBody, a.postWebhook)
	a.route("GET /webhooks", 0, a.getWebhooks)
	a.route("DELETE /webhooks/{id}", 0, a.deleteWebhook)
	a.route("POST /bots", MaxBody, a.postBot)
	a.route("DELETE /bots/{id}", 0, a.deleteBot)
	a.route("POST /notifications/{id}/action", MaxBody, a.postNotificationAction)

	a.mux.HandleFunc(Prefix+"/", a.noRoute)
	a.mux.HandleFunc(BitrixPrefix+"{user_id}/{token}/{method}", a.bitrix) // the Bitrix24 facade, api/bitrix.go
	a.mux.HandleFunc(BitrixPrefix, a.bitrixNoRoute)
	return a
}

func (a *API) loginToken(w http.ResponseWriter, r *http.Request) {
	if a.opts.LoginToken == nil {
		writeError(w, http.StatusNotFound, "not_found", "login links are not enabled on this server")
		return
	}
	if tok := requestToken(r); tok != nil && tok.AsUser != 0 {
		if _, ok := a.pathUser(w, r); !ok { // a user's token links only that user
			return
		}
	}
	a.opts.LoginToken(w, r)
}

// noRoute answers requests no route takes: 405 with Allow when the path
// exists for other methods, else 404, in the error model.
func (a *API) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := a.mux.Handler(probe); pattern != "" && pattern != Prefix+"/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here; use "+strings.Join(allow, " or "))
		return
	}
	writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
}

// Route registers an authenticated handler for "METHOD /path" (the path
// relative to Prefix) with a body limit (0: no body expected, a small
// limit applies). Other packages' files in api use it.
func (a *API) route(pattern string, maxBody int64, h http.HandlerFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	full := method + " " + Prefix + path
	a.routes = append(a.routes, full)
	if maxBody == 0 {
		maxBody = 64 << 10
	}
	a.mux.Handle(full, a.auth(routeScope(method, path), maxBody, h))
}

// Routes lists the registered routes as "METHOD /api/v1/path", sorted.
func (a *API) Routes() []string {
	out := append([]string(nil), a.routes...)
	sort.Strings(out)
	return out
}

// Handler serves everything under Prefix.
func (a *API) Handler() http.Handler { return a.mux }

// AvatarHandler serves chat avatars without a token (the web client and
// XMPP clients show them): GET /avatars/chat/{id}.
func (a *API) AvatarHandler() http.Handler { return http.HandlerFunc(a.getAvatar) }

// auth is the one place that checks the bearer token, the rate and the
// body size.
func (a *API) auth(scope string, maxBody int64, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || strings.TrimSpace(token) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vestnik"`)
			writeError(w, http.StatusUnauthorized, "missing_token", "send Authorization: Bearer <token> (vestnik token create)")
			return
		}
		tok, err := a.verify(r.Context(), strings.TrimSpace(token))
		if err != nil {
			if err == roster.ErrNotFound {
				w.Header().Set("WWW-Authenticate", `Bearer realm="vestnik", error="invalid_token"`)
				writeError(w, http.StatusUnauthorized, "invalid_token", "the token is not valid")
				return
			}
			a.internal(w, r, err)
			return
		}
		if !a.allow(tok.ID) {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "rate_limited", "too many requests for this token; slow down")
			return
		}
		if !tok.Allows(scope) {
			writeError(w, http.StatusForbidden, "insufficient_scope", "this token lacks the "+strconv.Quote(scope)+" scope (vestnik token create --scope)")
			return
		}
		a.recordUse(r.Context(), tok.ID)
		r = r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok))
		if r.ContentLength > maxBody {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the request body is larger than the limit for this endpoint")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h(w, r)
	})
}

// verify checks a token, trusting a recent answer for a few seconds (so a
// revoked token stops working within tokenCacheMS).
func (a *API) verify(ctx context.Context, token string) (*roster.Token, error) {
	now := time.Now()
	a.mu.Lock()
	c, ok := a.tokens[token]
	a.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.tok, nil
	}
	tok, err := a.users.TokenBySecret(ctx, token)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if len(a.tokens) > 10000 {
		clear(a.tokens)
	}
	a.tokens[token] = cachedToken{tok: tok, expires: now.Add(tokenCacheMS * time.Millisecond)}
	a.mu.Unlock()
	return tok, nil
}

// recordUse writes down a token's use at most once per tokenUseEvery.
func (a *API) recordUse(ctx context.Context, id int64) {
	now := time.Now()
	a.mu.Lock()
	due := now.Sub(a.used[id]) >= tokenUseEvery
	if due {
		a.used[id] = now
	}
	a.mu.Unlock()
	if due {
		if err := a.users.TokenUsed(ctx, id, now); err != nil {
			a.log.Warn("record token use", "token", id, "err", err)
		}
	}
}

// allow takes a token from tokenID's bucket (golang.org/x/time/rate:
// opts.Rate per second, bursts of twice that).
func (a *API) allow(tokenID int64) bool {
	if a.opts.Rate < 0 {
		return true
	}
	a.mu.Lock()
	l := a.buckets[tokenID]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(a.opts.Rate), max(1, int(math.Ceil(2*a.opts.Rate))))
		a.buckets[tokenID] = l
	}
	a.mu.Unlock()
	return l.Allow()
}
