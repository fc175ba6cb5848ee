package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/webhook"
)

// Outgoing events and bots (owner: hooks): webhooks (admin scope), bots
// (admin scope) and notification answers. The rules
// live in the core (package webhook, roster's bots, xmppcore's
// AnswerNotification); these handlers translate.

// Notifier is what notifications with actions need from the core
// (xmppcore.Server implements it, beside Messenger).
type Notifier interface {
	NotifyWith(ctx context.Context, r xmppcore.NotifyRequest) (int64, error)
	AnswerNotification(ctx context.Context, userID, id int64, value string) (*xmppcore.NotificationAnswer, error)
}

// DefaultBotEvents are what a bot's webhook hears unless it asks.
var DefaultBotEvents = []string{webhook.MessageCreated, webhook.CommandReceived, webhook.KeyboardPressed,
	webhook.ChatMemberAdded, webhook.NotificationAction}

func (a *API) hooks(w http.ResponseWriter) (*webhook.Service, bool) {
	if a.opts.Webhooks == nil {
		writeError(w, http.StatusNotFound, "not_found", "webhooks are not enabled on this server")
		return nil, false
	}
	return a.opts.Webhooks, true
}

// failHook maps the webhook service's errors.
func (a *API) failHook(w http.ResponseWriter, r *http.Request, err error) {
	var ie *webhook.InvalidError
	var be *roster.BotError
	switch {
	case errors.As(err, &ie):
		writeFieldError(w, ie.Field, ie.Code, ie.Message)
	case errors.As(err, &be):
		writeFieldError(w, be.Field, "invalid_"+be.Field, be.Message)
	case errors.Is(err, webhook.ErrNotFound), errors.Is(err, roster.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such webhook or bot")
	case errors.Is(err, roster.ErrBotExists):
		writeFieldError(w, "code", "bot_exists", "a bot with this code exists")
	default:
		a.fail(w, r, err)
	}
}

type postWebhookReq struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	ChatID int64    `json:"chat_id"`
}

// postWebhook registers a receiver; the answer carries its secret (shown
// only here).
func (a *API) postWebhook(w http.ResponseWriter, r *http.Request) {
	hs, ok := a.hooks(w)
	if !ok {
		return
	}
	var req postWebhookReq
	if !decode(w, r, &req) {
		return
	}
	if req.ChatID != 0 {
		if _, err := a.chats.Get(r.Context(), 0, req.ChatID); err != nil {
			if errors.Is(err, muc.ErrNotFound) {
				writeFieldError(w, "chat_id", "unknown_chat", "no such chat")
				return
			}
			a.fail(w, r, err)
			return
		}
	}
	h, err := hs.Create(r.Context(), webhook.NewWebhook{URL: strings.TrimSpace(req.URL), Events: req.Events, ChatID: req.ChatID})
	if err != nil {
		a.failHook(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, h)
}

func (a *API) getWebhooks(w http.ResponseWriter, r *http.Request) {
	hs, ok := a.hooks(w)
	if !ok {
		return
	}
	list, err := hs.List(r.Context(), 0)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if list == nil {
		list = []*webhook.Webhook{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": list})
}

func (a *API) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	hs, ok := a.hooks(w)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, "not_found", "no such webhook")
		return
	}
	if err := hs.Delete(r.Context(), id, 0); err != nil {
		a.failHook(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type postBotReq struct {
	Code   string   `json:"code"`
	Name   string   `json:"name"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

// BotCreated is the answer to POST /bots (and imbot.register).
type BotCreated struct {
	ID      string           `json:"id"` // the bot's portal id
	Login   string           `json:"login"`
	Name    string           `json:"name"`
	Token   string           `json:"token"` // acts as the bot only (post, read)
	Webhook *webhook.Webhook `json:"webhook"`
	userID  int64
}

// createBot makes a bot account, its token and its webhook (format: json
// or bitrix); the account is removed again if the webhook is refused.
func (a *API) createBot(ctx context.Context, code, name, url string, events []string, format string) (*BotCreated, error) {
	hs := a.opts.Webhooks
	if len(events) == 0 {
		events = DefaultBotEvents
	}
	if err := hs.CheckURL(ctx, url); err != nil {
		return nil, err
	}
	b, err := a.users.CreateBot(ctx, code, name)
	if err != nil {
		return nil, err
	}
	h, err := hs.Create(ctx, webhook.NewWebhook{URL: url, Events: events, BotID: b.UserID, Format: format})
	if err != nil {
		a.users.DeleteBot(ctx, b.UserID)
		return nil, err
	}
	tok, err := a.users.CreateScopedToken(ctx, "bot "+b.Code, []string{roster.ScopePost, roster.ScopeRead}, b.UserID)
	if err != nil {
		return nil, err
	}
	return &BotCreated{ID: b.ExtID, Login: b.Login, Name: b.Name, Token: tok, Webhook: h, userID: b.UserID}, nil
}

func (a *API) postBot(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.hooks(w); !ok {
		return
	}
	var req postBotReq
	if !decode(w, r, &req) {
		return
	}
	bc, err := a.createBot(r.Context(), req.Code, req.Name, strings.TrimSpace(req.URL), req.Events, webhook.FormatJSON)
	if err != nil {
		a.failHook(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, bc)
}

func (a *API) deleteBot(w http.ResponseWriter, r *http.Request) {
	hs, ok := a.hooks(w)
	if !ok {
		return
	}
	u, ok := a.pathUser(w, r)
	if !ok {
		return
	}
	if err := a.removeBot(r.Context(), hs, u.ID); err != nil {
		a.failHook(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) removeBot(ctx context.Context, hs *webhook.Service, userID int64) error {
	if _, err := a.users.BotByUserID(ctx, userID); err != nil {
		return err
	}
	if err := hs.DeleteBot(ctx, userID); err != nil {
		return err
	}
	return a.users.DeleteBot(ctx, userID)
}

type postActionReq struct {
	UserID userID `json:"user_id"`
	Value  string `json:"value"`
}

// postNotificationAction presses a button of notification id on behalf
// of its recipient user_id.
func (a *API) postNotificationAction(w http.ResponseWriter, r *http.Request) {
	n, ok := a.msgr.(Notifier)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "notification actions are not available on this server")
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, "not_found", "no such notification")
		return
	}
	var req postActionReq
	if !decode(w, r, &req) {
		return
	}
	u, err := a.resolve(r, "user_id", req.UserID)
	if err == nil {
		err = checkActing(r, u.ID)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ans, err := n.AnswerNotification(r.Context(), u.ID, id, req.Value)
	switch {
	case errors.Is(err, xmppcore.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such notification for this user")
	case errors.Is(err, xmppcore.ErrNoSuchButton):
		writeFieldError(w, "value", "unknown_button", "the notification has no button with this value")
	case errors.Is(err, xmppcore.ErrNotificationAnswered):
		writeError(w, http.StatusConflict, "answered", "the notification was answered already")
	case err != nil:
		a.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"id": ans.ID, "answer": ans.Value})
	}
}
