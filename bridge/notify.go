package bridge

import (
	"context"
	"errors"

	"vestnik/xmppcore"
)

// Notifications with actions in the browser: the notification center
// lists each notification with its tag, sender, buttons and answer (from
// the core: xmppcore.NotificationExtras), and the frame
// {"type":"notification_action","notification_id":…,"answer":"accept"}
// presses a button (xmppcore.AnswerNotification), which the core turns
// into the webhook event notification.action.

// NotificationActions is what the notification center needs from the
// core; *xmppcore.Server implements it.
type NotificationActions interface {
	NotificationExtras(ctx context.Context, userID int64, ids []int64) (map[int64]xmppcore.NotificationExtra, error)
	AnswerNotification(ctx context.Context, userID, id int64, value string) (*xmppcore.NotificationAnswer, error)
}

// notificationView is a notification as the browser gets it.
type notificationView struct {
	Notification
	Tag      string                        `json:"tag,omitempty"`
	SenderID int64                         `json:"sender,omitempty"` // a user id (the client knows names and photos)
	Buttons  []xmppcore.NotificationButton `json:"buttons,omitempty"`
	Answer   string                        `json:"answer,omitempty"`
	// Chat and MessageID name the chat message a mention is about.
	Chat      int64 `json:"chat,omitempty"`
	MessageID int64 `json:"message_id,omitempty"`
}

// notificationCore is the core behind a link, when it has notification
// actions.
func notificationCore(l Link) NotificationActions {
	if x, ok := l.(*xmppLink); ok {
		return x.x.srv
	}
	if na, ok := l.(NotificationActions); ok {
		return na
	}
	return nil
}

// withExtras adds tag, sender, buttons, answer and the chat message (of a
// mention) to notifications.
func withExtras(ctx context.Context, na NotificationActions, userID int64, ns []Notification) ([]notificationView, error) {
	out := make([]notificationView, len(ns))
	ids := make([]int64, 0, len(ns))
	for i, n := range ns {
		out[i].Notification = n
		if n.ID != 0 {
			ids = append(ids, n.ID)
		}
	}
	if na == nil || len(ids) == 0 {
		return out, nil
	}
	ex, err := na.NotificationExtras(ctx, userID, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if e, ok := ex[out[i].ID]; ok {
			out[i].Tag, out[i].SenderID, out[i].Buttons, out[i].Answer = e.Tag, e.SenderID, e.Buttons, e.Answer
			out[i].Chat, out[i].MessageID = e.ChatID, e.MessageID
		}
	}
	return out, nil
}

// notificationAction presses a button of the user's notification.
func notificationAction(ctx context.Context, na NotificationActions, userID int64, r request) (any, error) {
	if na == nil {
		return nil, bad("unavailable", "notification buttons are not available")
	}
	if r.NotificationID <= 0 || r.Answer == "" {
		return nil, bad("bad_frame", "give notification_id and answer")
	}
	_, err := na.AnswerNotification(ctx, userID, r.NotificationID, r.Answer)
	switch {
	case errors.Is(err, xmppcore.ErrNotFound):
		return nil, bad("not_found", "no such notification")
	case errors.Is(err, xmppcore.ErrNoSuchButton):
		return nil, bad("bad_answer", "the notification has no such button")
	case errors.Is(err, xmppcore.ErrNotificationAnswered):
		return nil, bad("answered", "the notification was answered already")
	case err != nil:
		return nil, err
	}
	return map[string]any{"notification_id": r.NotificationID, "answer": r.Answer}, nil
}
