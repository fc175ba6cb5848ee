package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"vestnik/roster"
)

// The widget (/widget.js) on a portal page of another origin signs in
// without third-party cookies: the portal hands it a one-time login link,
// POST /widget/session exchanges the link for a widget credential bound to
// the portal's origin, and the widget presents that credential in the
// WebSocket handshake as a subprotocol (docs/bridge.md).
const (
	// WidgetProtocol is the WebSocket subprotocol of a widget connection.
	WidgetProtocol = "vestnik.widget"
	// WidgetTokenProtocol prefixes the credential among the offered
	// subprotocols: "vestnik.token.<credential>".
	WidgetTokenProtocol = "vestnik.token."
	// WidgetSessionLifetime is how long a widget credential works.
	WidgetSessionLifetime = 7 * 24 * time.Hour
)

// widgetCommands are the commands a widget connection may use: enough to
// show counts and pop-ups, answer a colleague or a notification's
// buttons, and open the messenger.
// A credential kept in a portal page's storage gets no more than that.
var widgetCommands = map[string]bool{
	"hello": true, "ping": true, "send": true, "read": true, "typing": true,
	"profile": true, "notifications": true, "notifications_read": true,
	"widget_state": true, "login_link": true, "notification_action": true,
}

// widgetOrigin returns the request's Origin when it is one of
// Options.WidgetOrigins (and not this host itself).
func (b *Bridge) widgetOrigin(r *http.Request) (string, bool) {
	o := r.Header.Get("Origin")
	if o == "" || sameOrigin(r, true) {
		return "", false
	}
	for _, a := range b.opts.WidgetOrigins {
		if strings.EqualFold(strings.TrimRight(strings.TrimSpace(a), "/"), o) {
			return o, true
		}
	}
	return "", false
}

// widgetCORS answers a widget origin's CORS headers, or 403 for any other
// foreign origin. It reports whether the request may go on.
func (b *Bridge) widgetCORS(w http.ResponseWriter, r *http.Request) (string, bool) {
	o, ok := b.widgetOrigin(r)
	if !ok {
		writeError(w, http.StatusForbidden, "bad_origin", "this origin may not use the widget (vestnik serve --widget-origins)")
		return "", false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", o)
	h.Add("Vary", "Origin")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "POST, DELETE")
		h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return "", false
	}
	return o, true
}

// consumeLoginToken uses a one-time login link (the core's,
// roster/websessions.go); ErrNotFound when it is unknown, used or expired.
func (b *Bridge) consumeLoginToken(ctx context.Context, secret string) (int64, error) {
	uid, err := b.users.ConsumeLoginToken(ctx, secret)
	if errors.Is(err, roster.ErrNotFound) {
		return 0, ErrNotFound
	}
	return uid, err
}

// handleWidgetSession answers POST /widget/session: {"login": the
// one-time link (or its token)} from a widget origin becomes a widget
// credential for that origin.
func (b *Bridge) handleWidgetSession(w http.ResponseWriter, r *http.Request) {
	origin, ok := b.widgetCORS(w, r)
	if !ok {
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "json_required", "send the request as application/json")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxLoginBody+1))
	if err != nil || len(body) > MaxLoginBody {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "the request is too large")
		return
	}
	var req struct {
		Login string `json:"login"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed", "the body is not valid JSON")
		return
	}
	secret := strings.TrimSpace(req.Login)
	if i := strings.LastIndex(secret, "/login/token/"); i >= 0 {
		secret = secret[i+len("/login/token/"):]
	}
	if secret == "" || len(secret) > 100 || strings.ContainsAny(secret, "/?#") {
		writeError(w, http.StatusUnprocessableEntity, "missing_login", "login must be a one-time login link from POST /api/v1/users/{id}/login-token")
		return
	}
	uid, err := b.consumeLoginToken(r.Context(), secret)
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusUnauthorized, "bad_login", "the login link is invalid, used or expired")
		return
	}
	if err != nil {
		b.log.Error("widget session", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not sign in")
		return
	}
	u, err := b.users.UserByID(r.Context(), uid)
	if err != nil || !u.Active {
		writeError(w, http.StatusUnauthorized, "bad_login", "the login link is invalid, used or expired")
		return
	}
	cred, exp, err := b.users.CreateWebSession(r.Context(), u.ID, origin, WidgetSessionLifetime)
	if err != nil {
		b.log.Error("widget session", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not sign in")
		return
	}
	b.log.Info("widget login", "user", u.Login, "origin", origin, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusCreated, map[string]any{
		"token":      cred,
		"user":       map[string]any{"id": u.ID, "name": u.Name},
		"expires_at": exp.UTC().Format(time.RFC3339),
	})
}

// handleWidgetLogout answers DELETE /widget/session with the credential
// as a bearer token: it stops working at once and its sockets close 4001.
func (b *Bridge) handleWidgetLogout(w http.ResponseWriter, r *http.Request) {
	origin, ok := b.widgetCORS(w, r)
	if !ok {
		return
	}
	cred, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found || cred == "" || len(cred) > 100 {
		writeError(w, http.StatusUnauthorized, "no_session", "give the widget credential as a bearer token")
		return
	}
	h := roster.SecretKey(cred)
	if err := b.users.EndWidgetSession(r.Context(), cred, origin); err != nil {
		b.log.Error("widget logout", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not sign out")
		return
	}
	b.mu.Lock()
	var ended []*conn
	for c := range b.conns {
		if c.cred == h {
			ended = append(ended, c)
		}
	}
	b.mu.Unlock()
	for _, c := range ended {
		c.close(closeAuth)
	}
	w.WriteHeader(http.StatusNoContent)
}

// widgetCredential is the credential a widget offers among its
// WebSocket subprotocols.
func widgetCredential(r *http.Request) string {
	for _, p := range strings.Split(r.Header.Get("Sec-WebSocket-Protocol"), ",") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(p), WidgetTokenProtocol); ok && len(s) <= 100 {
			return s
		}
	}
	return ""
}

// widgetUser returns the active user of a widget credential issued to
// origin, and when the credential expires.
func (b *Bridge) widgetUser(ctx context.Context, cred, origin string) (*roster.User, time.Time, error) {
	if cred == "" {
		return nil, time.Time{}, ErrNotFound
	}
	uid, expires, err := b.users.WebSession(ctx, cred, origin)
	if errors.Is(err, roster.ErrNotFound) {
		return nil, time.Time{}, ErrNotFound
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	u, err := b.users.UserByID(ctx, uid)
	if errors.Is(err, roster.ErrNotFound) || (err == nil && !u.Active) {
		return nil, time.Time{}, ErrNotFound
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("bridge: widget session user: %w", err)
	}
	return u, expires, nil
}

// loginLink makes a one-time link that opens the full messenger signed
// in, for the widget's "open the messenger".
func (c *conn) loginLink(ctx context.Context) (any, error) {
	secret, exp, err := c.b.CreateLoginToken(ctx, c.user.ID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"url": c.base + "/login/token/" + url.PathEscape(secret), "expires_at": exp.UTC().Format(time.RFC3339)}, nil
}
