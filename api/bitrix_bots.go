package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/webhook"
)

// The facade's chat bots (imbot.*), on the same core operations as POST
// /api/v1/bots: a bot account with a webhook in Bitrix24's form (the
// events ONIMBOTMESSAGEADD, ONIMBOTMESSAGEUPDATE, ONIMBOTMESSAGEDELETE,
// ONIMCOMMANDADD and ONIMBOTJOINCHAT posted form-encoded; package
// webhook, bitrix.go). BOT_ID is the bot's portal id, bot_<code>.

// botEvents are what a Bitrix24 bot's EVENT_MESSAGE_ADD handler hears.
var bxBotEvents = []string{webhook.MessageCreated, webhook.MessageUpdated, webhook.MessageDeleted}

// prop is a key of a keyed parameter (PROPERTIES[NAME]).
func (c *bxCall) prop(name, key string) (string, error) {
	v, ok := c.p[name]
	if !ok {
		return "", nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return "", bxInvalid(name, "must be keyed: "+name+"["+key+"]=…")
	}
	s, _ := m[key].(string)
	return strings.TrimSpace(s), nil
}

// hookURL checks an event handler's URL parameter.
func (c *bxCall) hookURL(name string, required bool) (string, error) {
	s, err := c.p.str(name)
	if err != nil {
		return "", err
	}
	s = strings.TrimSpace(s)
	if s == "" && !required {
		return "", nil
	}
	if err := c.a.opts.Webhooks.CheckURL(c.ctx, s); err != nil {
		var ie *webhook.InvalidError
		if errors.As(err, &ie) {
			return "", &bxError{http.StatusBadRequest, name + "_ERROR", name + ": " + ie.Message}
		}
		return "", err
	}
	return s, nil
}

func (c *bxCall) webhooksOn() error {
	if c.a.opts.Webhooks == nil {
		return &bxError{http.StatusServiceUnavailable, "BOTS_UNAVAILABLE", "bots are not enabled on this server"}
	}
	return nil
}

// botRegister: imbot.register (CODE, TYPE, EVENT_MESSAGE_ADD,
// EVENT_WELCOME_MESSAGE, EVENT_BOT_DELETE, PROPERTIES[NAME],
// PROPERTIES[LAST_NAME]); the result is BOT_ID.
func (c *bxCall) botRegister() (any, error) {
	if err := c.webhooksOn(); err != nil {
		return nil, err
	}
	if err := c.refuse("open lines are not part of Vestnik", "OPENLINE"); err != nil {
		return nil, err
	}
	code, err := c.p.required("CODE")
	if err != nil {
		return nil, err
	}
	typ, err := c.p.str("TYPE")
	if err != nil {
		return nil, err
	}
	switch strings.ToUpper(strings.TrimSpace(typ)) {
	case "", "B", "H", "S":
	default:
		return nil, bxInvalid("TYPE", "must be B, H or S (open-line bots are not supported)")
	}
	msgURL, err := c.hookURL("EVENT_MESSAGE_ADD", true)
	if err != nil {
		return nil, err
	}
	welcomeURL, err := c.hookURL("EVENT_WELCOME_MESSAGE", false)
	if err != nil {
		return nil, err
	}
	if _, err := c.hookURL("EVENT_BOT_DELETE", false); err != nil {
		return nil, err
	}
	name, err := c.prop("PROPERTIES", "NAME")
	if err != nil {
		return nil, err
	}
	last, _ := c.prop("PROPERTIES", "LAST_NAME")
	if name == "" {
		return nil, &bxError{http.StatusBadRequest, "NAME_ERROR", "PROPERTIES[NAME] is required"}
	}
	if last != "" {
		name += " " + last
	}
	bc, err := c.a.createBot(c.ctx, strings.ToLower(strings.TrimSpace(code)), name, msgURL, bxBotEvents, webhook.FormatBitrix)
	var be *roster.BotError
	switch {
	case errors.Is(err, roster.ErrBotExists):
		return nil, &bxError{http.StatusBadRequest, "CODE_ERROR", "a bot with this CODE exists"}
	case errors.As(err, &be):
		return nil, &bxError{http.StatusBadRequest, strings.ToUpper(be.Field) + "_ERROR", strings.ToUpper(be.Field) + ": " + be.Message}
	case err != nil:
		return nil, err
	}
	if welcomeURL != "" {
		if _, err := c.a.opts.Webhooks.Create(c.ctx, webhook.NewWebhook{URL: welcomeURL, Events: []string{webhook.ChatMemberAdded},
			BotID: bc.userID, Format: webhook.FormatBitrix}); err != nil {
			return nil, err
		}
	}
	return bxID(bc.ID), nil
}

// bot resolves BOT_ID to a bot the call may act for: a token bound to a
// user acts for that bot only.
func (c *bxCall) bot() (*roster.Bot, error) {
	ext, err := c.p.required("BOT_ID")
	if err != nil {
		return nil, err
	}
	u, err := c.a.userByExtID(c.ctx, strings.TrimSpace(ext))
	if err != nil && !errors.Is(err, roster.ErrNotFound) {
		return nil, err
	}
	var b *roster.Bot
	if err == nil {
		b, err = c.a.users.BotByUserID(c.ctx, u.ID)
	}
	if errors.Is(err, roster.ErrNotFound) {
		return nil, &bxError{http.StatusBadRequest, "BOT_ID_ERROR", "no such bot: " + ext}
	}
	if err != nil {
		return nil, err
	}
	if c.tok.AsUser != 0 && c.tok.AsUser != b.UserID {
		return nil, &bxError{http.StatusForbidden, "ACCESS_DENIED", "this token may not act for this bot"}
	}
	return b, nil
}

// botUnregister: imbot.unregister (BOT_ID).
func (c *bxCall) botUnregister() (any, error) {
	if err := c.webhooksOn(); err != nil {
		return nil, err
	}
	b, err := c.bot()
	if err != nil {
		return nil, err
	}
	if err := c.a.removeBot(c.ctx, c.a.opts.Webhooks, b.UserID); err != nil {
		return nil, err
	}
	return true, nil
}

// botMessageAdd: imbot.message.add (BOT_ID, DIALOG_ID, MESSAGE, SYSTEM):
// im.message.add as the bot.
func (c *bxCall) botMessageAdd() (any, error) {
	b, err := c.bot()
	if err != nil {
		return nil, err
	}
	u, err := c.a.users.UserByID(c.ctx, b.UserID)
	if err != nil {
		return nil, err
	}
	as := *c
	as.user = u
	return as.messageAdd()
}

// botCommandRegister: imbot.command.register (BOT_ID, COMMAND,
// EVENT_COMMAND_ADD, COMMON, HIDDEN, LANG): ONIMCOMMANDADD then reaches
// EVENT_COMMAND_ADD when a member writes "/COMMAND params" in a chat or
// dialog the bot is in. The result is COMMAND_ID.
func (c *bxCall) botCommandRegister() (any, error) {
	if err := c.webhooksOn(); err != nil {
		return nil, err
	}
	b, err := c.bot()
	if err != nil {
		return nil, err
	}
	cmd, err := c.p.required("COMMAND")
	if err != nil {
		return nil, err
	}
	url, err := c.hookURL("EVENT_COMMAND_ADD", true)
	if err != nil {
		return nil, err
	}
	common, err := c.p.yn("COMMON", false)
	if err != nil {
		return nil, err
	}
	if common {
		return nil, bxUnsupported("COMMON", "commands work in the chats and dialogs of their bot only")
	}
	var be *roster.BotError
	if err := c.a.users.AddBotCommand(c.ctx, b.UserID, cmd); errors.As(err, &be) {
		return nil, &bxError{http.StatusBadRequest, "COMMAND_ERROR", "COMMAND: " + be.Message}
	} else if err != nil {
		return nil, err
	}
	hooks, err := c.a.opts.Webhooks.List(c.ctx, b.UserID)
	if err != nil {
		return nil, err
	}
	have := slices.ContainsFunc(hooks, func(h *webhook.Webhook) bool {
		return h.URL == url && slices.Contains(h.Events, webhook.CommandReceived)
	})
	if !have {
		if _, err := c.a.opts.Webhooks.Create(c.ctx, webhook.NewWebhook{URL: url, Events: []string{webhook.CommandReceived},
			BotID: b.UserID, Format: webhook.FormatBitrix}); err != nil {
			return nil, err
		}
	}
	nb, err := c.a.users.BotByUserID(c.ctx, b.UserID)
	if err != nil {
		return nil, err
	}
	return slices.Index(nb.Commands, strings.TrimPrefix(strings.TrimSpace(cmd), "/")) + 1, nil
}

// notifyTagged sends im.notify.personal.add (from the calling user) or
// im.notify.system.add (from nobody), with TAG: a new notification with
// the same tag replaces the user's earlier one.
func (c *bxCall) notifyTagged(to int64, text string) (int64, error) {
	tag, err := c.p.str("TAG")
	if err != nil {
		return 0, err
	}
	n, ok := c.a.msgr.(Notifier)
	personal := strings.HasSuffix(strings.ToLower(c.r.PathValue("method")), "personal.add") ||
		strings.HasSuffix(strings.ToLower(c.r.PathValue("method")), "personal.add.json")
	if !ok || (tag == "" && !personal) {
		return c.a.msgr.Notify(c.ctx, to, text, "")
	}
	req := xmppcore.NotifyRequest{UserID: to, Text: text, Tag: strings.TrimSpace(tag)}
	if personal {
		req.SenderID = c.user.ID
	}
	id, err := n.NotifyWith(c.ctx, req)
	var ne *xmppcore.NotifyError
	if errors.As(err, &ne) {
		name := strings.ToUpper(ne.Field)
		return 0, &bxError{http.StatusBadRequest, name + "_ERROR", name + ": " + ne.Message}
	}
	return id, err
}

// notifyConfirm: im.notify.confirm (NOTIFY_ID or ID, NOTIFY_VALUE): the
// calling user presses a button of their notification; the webhook event
// notification.action follows.
func (c *bxCall) notifyConfirm() (any, error) {
	n, ok := c.a.msgr.(Notifier)
	if !ok {
		return nil, &bxError{http.StatusServiceUnavailable, "UNAVAILABLE", "notification buttons are not available"}
	}
	name := "NOTIFY_ID"
	if !c.p.has(name) {
		name = "ID"
	}
	id, err := c.p.id(name)
	if err != nil || id == 0 {
		return nil, &bxError{http.StatusBadRequest, "ID_ERROR", "NOTIFY_ID must be a notification id"}
	}
	value, err := c.p.str("NOTIFY_VALUE")
	if err != nil || strings.TrimSpace(value) == "" {
		return nil, &bxError{http.StatusBadRequest, "NOTIFY_VALUE_ERROR", "NOTIFY_VALUE is required"}
	}
	_, err = n.AnswerNotification(c.ctx, c.user.ID, id, value)
	switch {
	case errors.Is(err, xmppcore.ErrNotFound):
		return nil, &bxError{http.StatusBadRequest, "ID_ERROR", "no such notification of this user"}
	case errors.Is(err, xmppcore.ErrNoSuchButton):
		return nil, &bxError{http.StatusBadRequest, "NOTIFY_VALUE_ERROR", "the notification has no button with this value"}
	case errors.Is(err, xmppcore.ErrNotificationAnswered):
		return nil, &bxError{http.StatusBadRequest, "NOTIFY_ANSWERED", "the notification was answered already"}
	case err != nil:
		return nil, err
	}
	return true, nil
}
