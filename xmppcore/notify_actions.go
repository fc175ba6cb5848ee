package xmppcore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// Notifications with actions: a notification may carry a tag (a new one
// with the same tag for the same user replaces the old), a sender (a
// user), and buttons. Pressing a button (the bridge, REST) records the
// answer once and is told to Options.OnNotificationAction (the outgoing
// event notification.action). XMPP clients see the buttons' titles in
// the headline's text and as <button/> children of the <notification/>
// mark.

// Notification action limits.
const (
	MaxNotificationTag     = 255
	MaxNotificationButtons = 5
	MaxButtonTitle         = 100
	MaxButtonValue         = 255
)

// NotificationButton is one button of a notification.
type NotificationButton struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// NotifyRequest is a notification with its optional parts.
type NotifyRequest struct {
	UserID     int64
	Text, Link string
	Tag        string
	SenderID   int64 // 0: none (the portal)
	Buttons    []NotificationButton
	// ChatID and MessageID name the chat message the notification is
	// about (a mention), so clients open it without matching text.
	ChatID, MessageID int64
}

// NotificationExtra is what a notification carries besides text and link.
type NotificationExtra struct {
	Tag        string               `json:"tag,omitempty"`
	SenderID   int64                `json:"-"`
	Buttons    []NotificationButton `json:"buttons,omitempty"`
	Answer     string               `json:"answer,omitempty"`
	AnsweredAt *time.Time           `json:"answered_at,omitempty"`
	ChatID     int64                `json:"-"`
	MessageID  int64                `json:"-"`
}

// NotificationAnswer is a pressed button, as Options.OnNotificationAction
// is told.
type NotificationAnswer struct {
	ID, UserID, SenderID int64
	Tag, Value, Link     string
}

// NotifyError is a notification refused for a field.
type NotifyError struct{ Field, Code, Message string }

func (e *NotifyError) Error() string { return "xmppcore: notify: " + e.Field + ": " + e.Message }

// Errors of AnswerNotification.
var (
	ErrNotificationAnswered = errors.New("xmppcore: the notification was answered already")
	ErrNoSuchButton         = errors.New("xmppcore: the notification has no such button")
)

func (r *NotifyRequest) check() error {
	if strings.TrimSpace(r.Text) == "" || len(r.Text) > MaxNotificationText || !utf8.ValidString(r.Text) {
		return &NotifyError{"text", "invalid_text", "text must be 1 to 64 KiB of UTF-8"}
	}
	if len(r.Link) > MaxNotificationLink {
		return &NotifyError{"link", "link_too_long", "link too long"}
	}
	if len(r.Tag) > MaxNotificationTag || !utf8.ValidString(r.Tag) {
		return &NotifyError{"tag", "invalid_tag", fmt.Sprintf("tag must be at most %d bytes of UTF-8", MaxNotificationTag)}
	}
	if len(r.Buttons) > MaxNotificationButtons {
		return &NotifyError{"buttons", "too_many_buttons", fmt.Sprintf("at most %d buttons", MaxNotificationButtons)}
	}
	seen := map[string]bool{}
	for _, b := range r.Buttons {
		switch {
		case strings.TrimSpace(b.Title) == "" || len(b.Title) > MaxButtonTitle:
			return &NotifyError{"buttons", "invalid_button", fmt.Sprintf("each button needs a title of 1 to %d bytes", MaxButtonTitle)}
		case b.Value == "" || len(b.Value) > MaxButtonValue:
			return &NotifyError{"buttons", "invalid_button", fmt.Sprintf("each button needs a value of 1 to %d bytes", MaxButtonValue)}
		case seen[b.Value]:
			return &NotifyError{"buttons", "duplicate_button", "button values must differ: " + strconv.Quote(b.Value)}
		}
		seen[b.Value] = true
	}
	return nil
}

// NotifyWith stores a notification with its optional parts (replacing the
// user's earlier ones of the same tag) and sends it at once to the user's
// online sessions. It returns the notification id.
func (s *Server) NotifyWith(ctx context.Context, r NotifyRequest) (int64, error) {
	if err := r.check(); err != nil {
		return 0, err
	}
	buttons := ""
	if len(r.Buttons) > 0 {
		b, _ := json.Marshal(r.Buttons)
		buttons = string(b)
	}
	now := time.Now()
	var id int64
	var replaced []int64
	err := withTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if r.Tag != "" {
			if err := tx.SelectContext(ctx, &replaced, tx.Rebind(`SELECT id FROM notifications WHERE user_id = ? AND tag = ?`), r.UserID, r.Tag); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM notifications WHERE user_id = ? AND tag = ?`), r.UserID, r.Tag); err != nil {
				return err
			}
		}
		return tx.GetContext(ctx, &id, tx.Rebind(`INSERT INTO notifications (user_id, text, link, created_at, tag, sender_id, buttons, chat_id, message_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`), r.UserID, r.Text, r.Link, now.UnixMicro(), r.Tag,
			sql.NullInt64{Int64: r.SenderID, Valid: r.SenderID != 0}, buttons,
			sql.NullInt64{Int64: r.ChatID, Valid: r.ChatID != 0}, sql.NullInt64{Int64: r.MessageID, Valid: r.MessageID != 0})
	})
	if err != nil {
		return 0, fmt.Errorf("xmppcore: notify %d: %w", r.UserID, err)
	}
	el := s.notificationElement(Notification{ID: id, UserID: r.UserID, Text: r.Text, Link: r.Link, CreatedAt: now}, false)
	s.decorateNotification(ctx, el, r.Tag, r.SenderID, r.Buttons, replaced)
	if mark := el.Child(NSNotify, "notification"); mark != nil && r.ChatID != 0 {
		mark.SetAttr("chat", strconv.FormatInt(r.ChatID, 10))
		if r.MessageID != 0 {
			mark.SetAttr("message", strconv.FormatInt(r.MessageID, 10))
		}
	}
	s.SendToUser(r.UserID, el)
	s.notifyUnreached(ctx, r.UserID, r.SenderID, r.Text, id)
	return id, nil
}

// decorateNotification adds tag, sender, replaced ids and buttons to a
// notification's headline.
func (s *Server) decorateNotification(ctx context.Context, msg *Element, tag string, sender int64, buttons []NotificationButton, replaced []int64) {
	mark := msg.Child(NSNotify, "notification")
	if mark == nil {
		return
	}
	if tag != "" {
		mark.SetAttr("tag", tag)
	}
	if sender != 0 {
		if acc, err := s.users.byID(ctx, sender); err == nil {
			mark.SetAttr("sender", s.bareJID(acc.Login))
			mark.SetAttr("sender-name", acc.Name)
		}
	}
	if len(replaced) > 0 {
		ids := make([]string, len(replaced))
		for i, r := range replaced {
			ids[i] = strconv.FormatInt(r, 10)
		}
		mark.SetAttr("replaces", strings.Join(ids, " "))
	}
	if len(buttons) > 0 {
		titles := make([]string, len(buttons))
		for i, b := range buttons {
			mark.AddChild(NewElement(NSNotify, "button", "value", b.Value, "title", b.Title))
			titles[i] = "[" + b.Title + "]"
		}
		if body := msg.Child(NSClient, "body"); body != nil {
			text := body.Text + "\n" + strings.Join(titles, " ")
			msg.RemoveChildren(NSClient, "body")
			msg.AddText(NSClient, "body", text)
		}
	}
}

type extraRow struct {
	ID         int64         `db:"id"`
	Tag        string        `db:"tag"`
	SenderID   sql.NullInt64 `db:"sender_id"`
	Buttons    string        `db:"buttons"`
	Answer     string        `db:"answer"`
	AnsweredAt sql.NullInt64 `db:"answered_at"`
	ChatID     sql.NullInt64 `db:"chat_id"`
	MessageID  sql.NullInt64 `db:"message_id"`
}

func (r extraRow) extra() NotificationExtra {
	e := NotificationExtra{Tag: r.Tag, SenderID: r.SenderID.Int64, Answer: r.Answer, ChatID: r.ChatID.Int64, MessageID: r.MessageID.Int64}
	if r.Buttons != "" {
		json.Unmarshal([]byte(r.Buttons), &e.Buttons)
	}
	if r.AnsweredAt.Valid {
		t := time.UnixMicro(r.AnsweredAt.Int64).UTC()
		e.AnsweredAt = &t
	}
	return e
}

// NotificationExtras returns tag, sender, buttons and answer of the user's
// notifications ids that have any, for the doors that list notifications.
func (s *Server) NotificationExtras(ctx context.Context, userID int64, ids []int64) (map[int64]NotificationExtra, error) {
	out := map[int64]NotificationExtra{}
	if len(ids) == 0 {
		return out, nil
	}
	q, args, err := sqlx.In(`SELECT id, tag, sender_id, buttons, answer, answered_at, chat_id, message_id FROM notifications
		WHERE user_id = ? AND id IN (?) AND (tag <> '' OR sender_id IS NOT NULL OR buttons <> '' OR chat_id IS NOT NULL)`, userID, ids)
	if err != nil {
		return nil, err
	}
	var rows []extraRow
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("xmppcore: notification extras of %d: %w", userID, err)
	}
	for _, r := range rows {
		out[r.ID] = r.extra()
	}
	return out, nil
}

// AnswerNotification records that userID pressed the button value of
// their notification id (and marks it read), then tells
// Options.OnNotificationAction. ErrNotFound: no such notification of
// theirs; ErrNoSuchButton; ErrNotificationAnswered: answered before.
func (s *Server) AnswerNotification(ctx context.Context, userID, id int64, value string) (*NotificationAnswer, error) {
	var a *NotificationAnswer
	err := withTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var r struct {
			extraRow
			Link string `db:"link"`
		}
		err := tx.GetContext(ctx, &r, tx.Rebind(`SELECT id, tag, sender_id, buttons, answer, answered_at, chat_id, message_id, link FROM notifications
			WHERE id = ? AND user_id = ?`), id, userID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		e := r.extra()
		if e.AnsweredAt != nil {
			return ErrNotificationAnswered
		}
		found := false
		for _, b := range e.Buttons {
			found = found || b.Value == value
		}
		if !found {
			return ErrNoSuchButton
		}
		now := time.Now().UnixMicro()
		res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE notifications SET answer = ?, answered_at = ?, read_at = COALESCE(read_at, ?)
			WHERE id = ? AND answered_at IS NULL`), value, now, now, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNotificationAnswered
		}
		a = &NotificationAnswer{ID: id, UserID: userID, SenderID: e.SenderID, Tag: e.Tag, Value: value, Link: r.Link}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrNoSuchButton) || errors.Is(err, ErrNotificationAnswered) {
			return nil, err
		}
		return nil, fmt.Errorf("xmppcore: answer notification %d: %w", id, err)
	}
	if f := s.opts.OnNotificationAction; f != nil {
		f(context.WithoutCancel(ctx), *a)
	}
	return a, nil
}

func withTx(ctx context.Context, db *sqlx.DB, f func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}
