package webhook

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
)

// Bitrix24 bots (imbot.register) get their events as Bitrix24 posts them:
// form fields event=ONIMBOTMESSAGEADD (or ONIMCOMMANDADD, ONIMBOTJOINCHAT,
// ONIMBOTMESSAGEUPDATE, ONIMBOTMESSAGEDELETE), data[PARAMS][…],
// data[BOT][<id>][…], data[USER][…], ts and auth[application_token] (the
// webhook's secret, which Bitrix24 integrations compare). The body is also
// signed like every delivery.

// bitrixEvent is the Bitrix24 name of an event kind ("" : none).
func bitrixEvent(kind string) string {
	switch kind {
	case MessageCreated:
		return "ONIMBOTMESSAGEADD"
	case MessageUpdated:
		return "ONIMBOTMESSAGEUPDATE"
	case MessageDeleted:
		return "ONIMBOTMESSAGEDELETE"
	case CommandReceived, KeyboardPressed:
		return "ONIMCOMMANDADD"
	case ChatMemberAdded:
		return "ONIMBOTJOINCHAT"
	}
	return ""
}

// bitrixBody renders a queued event as Bitrix24's form.
func bitrixBody(h *Webhook, r queued, botExt string) ([]byte, error) {
	var d struct {
		Message map[string]any `json:"message"`
		Command string         `json:"command"`
		Params  string         `json:"params"`
		ChatID  int64          `json:"chat_id"`
		Users   []string       `json:"users"`
		Actor   *string        `json:"actor"`
		// keyboard.pressed
		MessageID int64  `json:"message_id"`
		UserID    string `json:"user_id"`
		ToUserID  string `json:"to_user_id"`
	}
	if err := json.Unmarshal([]byte(r.Data), &d); err != nil {
		return nil, err
	}
	v := url.Values{}
	name := bitrixEvent(r.Kind)
	if name == "" {
		name = r.Kind
	}
	v.Set("event", name)
	v.Set("ts", strconv.FormatInt(r.CreatedAt/1e6, 10))
	v.Set("auth[application_token]", h.Secret)
	v.Set("auth[domain]", "")
	bot := botExt
	str := func(x any) string {
		switch t := x.(type) {
		case string:
			return t
		case float64:
			return strconv.FormatInt(int64(t), 10)
		case bool:
			if t {
				return "Y"
			}
			return "N"
		}
		return ""
	}
	if m := d.Message; m != nil {
		from := str(m["from_user_id"])
		v.Set("data[PARAMS][MESSAGE_ID]", str(m["id"]))
		v.Set("data[PARAMS][MESSAGE]", str(m["text"]))
		v.Set("data[PARAMS][FROM_USER_ID]", from)
		v.Set("data[PARAMS][AUTHOR_ID]", from)
		v.Set("data[PARAMS][SYSTEM]", str(m["system"]))
		if c := str(m["chat_id"]); c != "" {
			v.Set("data[PARAMS][DIALOG_ID]", "chat"+c)
			v.Set("data[PARAMS][CHAT_ID]", c)
			v.Set("data[PARAMS][TO_CHAT_ID]", c)
			v.Set("data[PARAMS][MESSAGE_TYPE]", "C")
			v.Set("data[PARAMS][CHAT_TYPE]", "C")
		} else {
			v.Set("data[PARAMS][DIALOG_ID]", from)
			v.Set("data[PARAMS][TO_USER_ID]", str(m["to_user_id"]))
			v.Set("data[PARAMS][MESSAGE_TYPE]", "P")
			v.Set("data[PARAMS][CHAT_TYPE]", "P")
		}
		v.Set("data[USER][ID]", from)
	}
	if r.Kind == ChatMemberAdded {
		v.Set("data[PARAMS][DIALOG_ID]", "chat"+strconv.FormatInt(d.ChatID, 10))
		v.Set("data[PARAMS][CHAT_ID]", strconv.FormatInt(d.ChatID, 10))
		v.Set("data[PARAMS][CHAT_TYPE]", "C")
		if d.Actor != nil {
			v.Set("data[PARAMS][USER_ID]", *d.Actor)
			v.Set("data[USER][ID]", *d.Actor)
		}
	}
	if r.Kind == KeyboardPressed {
		// A button of the bot's keyboard: the message is the bot's, the
		// "author" of the command is who pressed.
		v.Set("data[PARAMS][MESSAGE_ID]", strconv.FormatInt(d.MessageID, 10))
		v.Set("data[PARAMS][FROM_USER_ID]", d.UserID)
		v.Set("data[PARAMS][AUTHOR_ID]", d.UserID)
		v.Set("data[USER][ID]", d.UserID)
		if d.ChatID != 0 {
			v.Set("data[PARAMS][DIALOG_ID]", "chat"+strconv.FormatInt(d.ChatID, 10))
			v.Set("data[PARAMS][CHAT_ID]", strconv.FormatInt(d.ChatID, 10))
			v.Set("data[PARAMS][MESSAGE_TYPE]", "C")
		} else {
			v.Set("data[PARAMS][DIALOG_ID]", d.UserID)
			v.Set("data[PARAMS][TO_USER_ID]", d.ToUserID)
			v.Set("data[PARAMS][MESSAGE_TYPE]", "P")
		}
	}
	if r.Kind == CommandReceived || r.Kind == KeyboardPressed {
		p := "data[COMMAND][" + bot + "]"
		v.Set(p+"[BOT_ID]", bot)
		v.Set(p+"[COMMAND]", strings.TrimPrefix(d.Command, "/"))
		v.Set(p+"[COMMAND_PARAMS]", d.Params)
		if r.Kind == KeyboardPressed {
			v.Set(p+"[COMMAND_CONTEXT]", "KEYBOARD")
			v.Set(p+"[MESSAGE_ID]", strconv.FormatInt(d.MessageID, 10))
		} else {
			v.Set(p+"[COMMAND_CONTEXT]", "TEXTAREA")
		}
		if d.Message != nil {
			v.Set(p+"[MESSAGE_ID]", str(d.Message["id"]))
		}
		v.Set(p+"[application_token]", h.Secret)
	} else {
		p := "data[BOT][" + bot + "]"
		v.Set(p+"[BOT_ID]", bot)
		v.Set(p+"[application_token]", h.Secret)
	}
	return []byte(v.Encode()), nil
}
