package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/rich"
)

type postMessageReq struct {
	FromUserID userID  `json:"from_user_id"`
	ToUserID   userID  `json:"to_user_id"`
	Message    *string `json:"message"`
	Files      []int64 `json:"files"`
	// ReplyTo is the id of the message this one answers (XEP-0461).
	ReplyTo int64 `json:"reply_to"`
	// Attach and Keyboard make a rich message (package rich).
	Attach   *rich.Attach  `json:"attach"`
	Keyboard []rich.Button `json:"keyboard"`
}

// RichSender sends a personal message with rich content: BB-coded text,
// an attachment, a keyboard (xmppcore.Server implements it).
type RichSender interface {
	SendPersonalRich(ctx context.Context, fromUserID, toUserID int64, c *rich.Content, replyTo int64) (int64, error)
}

// isRich reports whether a request carries an attachment or a keyboard
// (then its message text may be empty).
func isRich(a *rich.Attach, kb []rich.Button) bool { return a != nil || len(kb) > 0 }

// Replier sends a personal message answering another one
// (xmppcore.Server implements it, beside Messenger).
type Replier interface {
	SendPersonalReply(ctx context.Context, fromUserID, toUserID int64, body string, replyTo int64) (int64, error)
}

// postMessage sends a personal message on behalf of a user, through the
// same path as a message from an XMPP client.
func (a *API) postMessage(w http.ResponseWriter, r *http.Request) {
	var req postMessageReq
	if !decode(w, r, &req) {
		return
	}
	from, err := a.resolve(r, "from_user_id", req.FromUserID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	to, err := a.resolve(r, "to_user_id", req.ToUserID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	body, err := a.withFiles(r, from.ID, req.Message, req.Files, isRich(req.Attach, req.Keyboard))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var id int64
	if rs, ok := a.msgr.(RichSender); ok {
		id, err = rs.SendPersonalRich(r.Context(), from.ID, to.ID, &rich.Content{Text: body, Attach: req.Attach, Keyboard: req.Keyboard}, req.ReplyTo)
	} else if isRich(req.Attach, req.Keyboard) {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "rich messages are not available on this server")
		return
	} else if req.ReplyTo != 0 {
		rp, ok := a.msgr.(Replier)
		if !ok {
			writeError(w, http.StatusServiceUnavailable, "unavailable", "replies are not available on this server")
			return
		}
		id, err = rp.SendPersonalReply(r.Context(), from.ID, to.ID, body, req.ReplyTo)
	} else {
		id, err = a.msgr.SendPersonal(r.Context(), from.ID, to.ID, body)
	}
	if errors.Is(err, xmppcore.ErrBadReply) {
		writeFieldError(w, "reply_to", "unknown_reply", "no such message in this conversation to reply to")
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]int64{"id": id})
}

type postNotificationReq struct {
	ToUserID userID  `json:"to_user_id"`
	Text     *string `json:"text"`
	Link     string  `json:"link"`
	// Tag, sender and buttons: notifications with actions (api/webhooks.go).
	Tag      string                        `json:"tag"`
	SenderID userID                        `json:"sender_id"`
	Buttons  []xmppcore.NotificationButton `json:"buttons"`
}

// postNotification stores a notification and shows it to the user's
// online sessions at once (the rest on their next login).
func (a *API) postNotification(w http.ResponseWriter, r *http.Request) {
	var req postNotificationReq
	if !decode(w, r, &req) {
		return
	}
	if err := checkText("text", req.Text); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := checkLink(req.Link); err != nil {
		a.fail(w, r, err)
		return
	}
	to, err := a.resolve(r, "to_user_id", req.ToUserID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var id int64
	if req.Tag != "" || req.SenderID != "" || len(req.Buttons) > 0 {
		id, err = a.notifyWith(r, to.ID, req)
	} else {
		id, err = a.msgr.Notify(r.Context(), to.ID, *req.Text, req.Link)
	}
	var ne *xmppcore.NotifyError
	if errors.As(err, &ne) {
		writeFieldError(w, ne.Field, ne.Code, ne.Message)
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]int64{"id": id})
}

// notifyWith sends a notification with a tag, a sender or buttons.
func (a *API) notifyWith(r *http.Request, to int64, req postNotificationReq) (int64, error) {
	n, ok := a.msgr.(Notifier)
	if !ok {
		return 0, badField("buttons", "unsupported", "notifications with actions are not available on this server")
	}
	nr := xmppcore.NotifyRequest{UserID: to, Text: *req.Text, Link: req.Link, Tag: req.Tag, Buttons: req.Buttons}
	if req.SenderID != "" {
		u, err := a.resolve(r, "sender_id", req.SenderID)
		if err != nil {
			return 0, err
		}
		nr.SenderID = u.ID
	}
	return n.NotifyWith(r.Context(), nr)
}

// checkLink accepts an absolute http(s) URL or a path on this server.
func checkLink(link string) error {
	if link == "" {
		return nil
	}
	if len(link) > MaxLink {
		return badField("link", "link_too_long", "must be at most %d bytes", MaxLink)
	}
	u, err := url.Parse(link)
	if err != nil || strings.ContainsAny(link, " \t\r\n") {
		return badField("link", "invalid_link", "must be an http(s) URL or a path")
	}
	if u.Scheme == "" && u.Host == "" && strings.HasPrefix(link, "/") && !strings.HasPrefix(link, "//") {
		return nil
	}
	if (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return nil
	}
	return badField("link", "invalid_link", "must be an http(s) URL or a path")
}

// putOrg is the HR sync: the whole org as SPEC §3 JSON. ?dry_run=true
// reports without changing anything.
func (a *API) putOrg(w http.ResponseWriter, r *http.Request) {
	dry := r.URL.Query().Get("dry_run")
	if dry != "" && dry != "true" && dry != "false" && dry != "1" && dry != "0" {
		writeFieldError(w, "dry_run", "invalid_dry_run", "dry_run must be true or false")
		return
	}
	force := r.URL.Query().Get("force")
	if force != "" && force != "true" && force != "false" && force != "1" && force != "0" {
		writeFieldError(w, "force", "invalid_force", "force must be true or false")
		return
	}
	snap, err := roster.ParseJSON(r.Body)
	var ie *roster.ImportError
	switch {
	case isTooLarge(err):
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the import is larger than the limit")
		return
	case errors.As(err, &ie) && len(ie.Problems) == 1 && ie.Problems[0].Message == roster.NotUTF8:
		writeInvalidUTF8(w, ie.Problems[0].Field)
		return
	case errors.As(err, &ie):
		status, code := http.StatusUnprocessableEntity, "invalid_import"
		details := make([]string, 0, len(ie.Problems))
		for _, p := range ie.Problems {
			details = append(details, p.String())
			if strings.HasPrefix(p.Place, "json") && p.Field == "" {
				status, code = http.StatusBadRequest, "malformed_json"
			} else if p.Place == "input" {
				status, code = http.StatusRequestEntityTooLarge, "body_too_large"
			}
		}
		msg := "the import has problems; nothing was applied"
		field := ""
		if len(ie.Problems) > 0 {
			msg = ie.Problems[0].String()
			if len(ie.Problems) > 1 || ie.More > 0 {
				msg += " (and more: see details)"
			}
			field = ie.Problems[0].Field
		}
		writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg, Field: field, Details: details}})
		return
	case err != nil:
		if strings.Contains(err.Error(), "request body too large") {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the import is larger than the limit")
			return
		}
		a.internal(w, r, err)
		return
	}
	rep, err := a.users.ImportWith(r.Context(), snap, roster.ImportOptions{DryRun: dry == "true" || dry == "1",
		Force: force == "true" || force == "1", MaxDeactivatedShare: a.opts.MaxDeactivatedShare})
	if errors.Is(err, roster.ErrMassDeactivation) {
		writeError(w, http.StatusUnprocessableEntity, "mass_deactivation", strings.TrimPrefix(err.Error(), "roster: ")+" (?force=true)")
		return
	}
	if errors.As(err, &ie) {
		details := make([]string, 0, len(ie.Problems))
		for _, p := range ie.Problems {
			details = append(details, p.String())
		}
		writeJSON(w, http.StatusUnprocessableEntity, errorBody{Error: errorDetail{Code: "invalid_import", Message: ie.Error(), Details: details}})
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"created": rep.Created, "updated": rep.Updated, "deactivated": rep.Deactivated,
		"dry_run": rep.DryRun, "changes": rep.Lines})
}
