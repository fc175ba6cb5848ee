package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"vestnik/roster"
	"vestnik/xmppcore"
)

// createSession starts a web session (the core's, roster/websessions.go)
// and returns its secret.
func (b *Bridge) createSession(ctx context.Context, userID int64) (string, error) {
	secret, _, err := b.users.CreateWebSession(ctx, userID, "", SessionLifetime)
	return secret, err
}

// sessionUser returns the active user of the request's session cookie.
func (b *Bridge) sessionUser(r *http.Request) (*roster.User, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return nil, ErrNotFound
	}
	uid, _, err := b.users.WebSession(r.Context(), c.Value, "")
	if errors.Is(err, roster.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	u, err := b.users.UserByID(r.Context(), uid)
	if errors.Is(err, roster.ErrNotFound) || (err == nil && !u.Active) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("bridge: session user: %w", err)
	}
	return u, nil
}

func (b *Bridge) setCookie(w http.ResponseWriter, secret string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: secret, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: b.opts.SecureCookie, SameSite: http.SameSiteLaxMode,
	})
}

// sameOrigin reports whether the request's Origin (if any) is this host.
// Browsers always send Origin on POST and on WebSocket handshakes, so a
// foreign page cannot log a user in or out or open /ws with their cookie.
func sameOrigin(r *http.Request, required bool) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return !required
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]apiError{"error": {Code: code, Message: msg}})
}

// userJSON is a colleague as the client sees them.
type userJSON struct {
	ID          int64   `json:"id"`
	ExtID       string  `json:"ext_id"`
	Login       string  `json:"login"`
	Name        string  `json:"name"`
	Email       string  `json:"email,omitempty"`
	Title       string  `json:"title,omitempty"`
	ManagerID   int64   `json:"manager_id,omitempty"`
	Departments []int64 `json:"departments"`
	JID         string  `json:"jid,omitempty"`
	Photo       string  `json:"photo,omitempty"` // versioned URL of the photo (photos.go)
}

func toUserJSON(u *roster.User) userJSON {
	d := u.Departments
	if d == nil {
		d = []int64{}
	}
	return userJSON{ID: u.ID, ExtID: u.ExtID, Login: u.Login, Name: u.Name, Email: u.Email, Title: u.Title, ManagerID: u.ManagerID, Departments: d}
}

func (b *Bridge) handleLogin(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r, false) {
		writeError(w, http.StatusForbidden, "bad_origin", "login from another site is not allowed")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		// A form post from a foreign page cannot set this content type
		// without a CORS preflight, which we never grant.
		writeError(w, http.StatusUnsupportedMediaType, "json_required", "send the login as application/json")
		return
	}
	var req struct {
		Login    string `json:"login"`
		Password string `json:"password"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxLoginBody+1))
	if err != nil || len(body) > MaxLoginBody {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "the login request is too large")
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed", "the body is not valid JSON")
		return
	}
	req.Login = strings.ToLower(strings.TrimSpace(req.Login))
	if req.Login == "" || req.Password == "" {
		writeError(w, http.StatusUnprocessableEntity, "missing_credentials", "login and password are required")
		return
	}
	if g := b.opts.Guard; g != nil {
		if wait := g.Check(xmppcore.DoorWeb, r.RemoteAddr, req.Login); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			writeError(w, http.StatusTooManyRequests, "too_many_attempts", "too many failed sign-in attempts; try again later")
			return
		}
	}
	u, err := b.users.CheckPassword(r.Context(), req.Login, req.Password)
	if errors.Is(err, roster.ErrBadPassword) || errors.Is(err, roster.ErrNotFound) {
		b.log.Info("login failed", "login", req.Login, "remote", r.RemoteAddr)
		delay := LoginFailureDelay
		if g := b.opts.Guard; g != nil {
			delay = g.Failed(xmppcore.DoorWeb, r.RemoteAddr, req.Login)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
		writeError(w, http.StatusUnauthorized, "bad_credentials", "wrong login or password")
		return
	}
	if err != nil {
		b.log.Error("login", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not sign in")
		return
	}
	if g := b.opts.Guard; g != nil {
		g.Succeeded(r.RemoteAddr, req.Login)
	}
	b.startSession(w, r, u)
}

func (b *Bridge) startSession(w http.ResponseWriter, r *http.Request, u *roster.User) {
	secret, err := b.createSession(r.Context(), u.ID)
	if err != nil {
		b.log.Error("login", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not sign in")
		return
	}
	b.setCookie(w, secret, int(SessionLifetime/time.Second))
	b.log.Info("login", "user", u.Login, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"user": b.withPhoto(r.Context(), toUserJSON(u))})
}

func (b *Bridge) handleLogout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r, true) {
		writeError(w, http.StatusForbidden, "bad_origin", "logout from another site is not allowed")
		return
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		if err := b.users.EndWebSession(r.Context(), c.Value); err != nil {
			b.log.Error("logout", "err", err)
		}
	}
	b.setCookie(w, "", -1)
	w.WriteHeader(http.StatusNoContent)
}

func (b *Bridge) handleSession(w http.ResponseWriter, r *http.Request) {
	u, err := b.sessionUser(r)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			b.log.Error("session", "err", err)
		}
		// Not an error: the page asks on every visit whether it is
		// signed in, and an error status would log one in its console.
		writeJSON(w, http.StatusOK, map[string]any{"user": nil})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": b.withPhoto(r.Context(), toUserJSON(u))})
}

// CreateLoginToken makes a one-time login link secret for a user, valid
// for LoginTokenTTL.
func (b *Bridge) CreateLoginToken(ctx context.Context, userID int64) (string, time.Time, error) {
	return b.users.CreateLoginToken(ctx, userID, LoginTokenTTL)
}

// LoginTokenHandler answers POST /api/v1/users/{id}/login-token. It must be
// mounted behind the REST API's bearer authentication; {id} is the portal's
// user id (ext_id). The answer is {"url": …, "expires_at": …}.
func (b *Bridge) LoginTokenHandler(w http.ResponseWriter, r *http.Request) {
	ext := r.PathValue("id")
	u, err := b.users.UserByExtID(r.Context(), ext)
	if errors.Is(err, roster.ErrNotFound) || (err == nil && !u.Active) {
		writeError(w, http.StatusNotFound, "user_not_found", "no active user with id "+strconv.Quote(ext))
		return
	}
	if err != nil {
		b.log.Error("login token", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not create a login link")
		return
	}
	secret, exp, err := b.CreateLoginToken(r.Context(), u.ID)
	if err != nil {
		b.log.Error("login token", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not create a login link")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"url": b.baseURL(r) + "/login/token/" + secret, "expires_at": exp.UTC().Format(time.RFC3339)})
}

func (b *Bridge) baseURL(r *http.Request) string {
	if b.opts.PublicURL != "" {
		return strings.TrimRight(b.opts.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || b.opts.SecureCookie {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// handleTokenLogin consumes a one-time link: the token is deleted in the
// same statement that reads it, so it works once.
func (b *Bridge) handleTokenLogin(w http.ResponseWriter, r *http.Request) {
	secret := r.PathValue("token")
	uid, err := b.consumeLoginToken(r.Context(), secret)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			b.log.Error("token login", "err", err)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `<!doctype html><meta charset="utf-8"><title>Vestnik</title><p>This login link is invalid or has expired. <a href="/">Sign in</a></p>`)
		return
	}
	u, err := b.users.UserByID(r.Context(), uid)
	if err != nil || !u.Active {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s, err := b.createSession(r.Context(), u.ID)
	if err != nil {
		b.log.Error("token login", "err", err)
		http.Error(w, "could not sign in", http.StatusInternalServerError)
		return
	}
	b.setCookie(w, s, int(SessionLifetime/time.Second))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// handleWidgetState answers /widget.js: the signed-in user, unread counts
// and the latest unread notifications. Cross-origin reads are allowed
// only for Options.WidgetOrigins.
func (b *Bridge) handleWidgetState(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(r, true) {
		allowed := false
		for _, a := range b.opts.WidgetOrigins {
			if strings.EqualFold(strings.TrimRight(a, "/"), o) {
				allowed = true
			}
		}
		if !allowed {
			writeError(w, http.StatusForbidden, "bad_origin", "this origin may not read the widget state")
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", o)
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	u, err := b.sessionUser(r)
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"user": nil})
		return
	}
	na, _ := b.core.(NotificationActions)
	if x, ok := b.core.(*xmppCore); ok {
		na = x.srv
	}
	st, err := b.widgetState(r.Context(), u, na)
	if err != nil {
		b.log.Error("widget state", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not load the state")
		return
	}
	writeJSON(w, http.StatusOK, st)
}
