package xmppcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// Notifications from the portal (REST POST /notifications) are stored in
// the notifications table and shown to XMPP clients as headline messages
// from the domain; the web client lists them in its bell. A user who is
// offline gets the unread ones (at most MaxPendingNotifications, oldest
// first, with delay stamps) when a session of theirs becomes available:
// SendUnreadNotifications, called on the initial presence of XMPP streams. Reading is marked
// with MarkNotificationsRead (the bridge's bell).

// Notification limits.
const (
	MaxNotificationText     = 64 << 10
	MaxNotificationLink     = 2048
	MaxPendingNotifications = 50
)

// NSNotify marks a headline as a Vestnik notification: <notification
// xmlns='urn:vestnik:notify:0' id='…' link='…'/>.
const NSNotify = "urn:vestnik:notify:0"

// NSOOB is XEP-0066 out-of-band data, carrying the link to XMPP clients.
const NSOOB = "jabber:x:oob"

// Notification is a stored notification.
type Notification struct {
	ID        int64      `db:"id" json:"id"`
	UserID    int64      `db:"user_id" json:"-"`
	Text      string     `db:"text" json:"text"`
	Link      string     `db:"link" json:"link,omitempty"`
	CreatedAt time.Time  `db:"-" json:"created_at"`
	ReadAt    *time.Time `db:"-" json:"read_at,omitempty"`
}

// Notify stores a notification for the user and sends it at once to their
// online sessions (XMPP clients get a headline from the domain, the link
// as XEP-0066 out-of-band data). It returns the notification id.
func (s *Server) Notify(ctx context.Context, userID int64, text, link string) (int64, error) {
	if strings.TrimSpace(text) == "" || len(text) > MaxNotificationText || !utf8.ValidString(text) {
		return 0, errors.New("xmppcore: notify: text must be 1 to 64 KiB of UTF-8")
	}
	if len(link) > MaxNotificationLink {
		return 0, errors.New("xmppcore: notify: link too long")
	}
	now := time.Now()
	var id int64
	err := s.db.GetContext(ctx, &id, s.db.Rebind(`INSERT INTO notifications (user_id, text, link, created_at) VALUES (?, ?, ?, ?) RETURNING id`),
		userID, text, link, now.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("xmppcore: notify %d: %w", userID, err)
	}
	s.SendToUser(userID, s.notificationElement(Notification{ID: id, UserID: userID, Text: text, Link: link, CreatedAt: now}, false))
	s.notifyUnreached(ctx, userID, 0, text, id)
	return id, nil
}

// notificationElement is the headline message of a notification.
func (s *Server) notificationElement(n Notification, delayed bool) *Element {
	body := n.Text
	if n.Link != "" {
		body += "\n" + n.Link
	}
	msg := NewElement(NSClient, "message", "from", s.Domain(), "type", "headline", "id", "notify-"+strconv.FormatInt(n.ID, 10))
	msg.AddText(NSClient, "body", body)
	mark := NewElement(NSNotify, "notification", "id", strconv.FormatInt(n.ID, 10))
	if n.Link != "" {
		mark.SetAttr("link", n.Link)
		oob := NewElement(NSOOB, "x")
		oob.AddText(NSOOB, "url", n.Link)
		msg.AddChild(oob)
	}
	msg.AddChild(mark)
	if delayed {
		msg.AddChild(NewElement("urn:xmpp:delay", "delay", "from", s.Domain(), "stamp", n.CreatedAt.UTC().Format(time.RFC3339Nano)))
	}
	return msg
}

type notificationRow struct {
	ID        int64         `db:"id"`
	UserID    int64         `db:"user_id"`
	Text      string        `db:"text"`
	Link      string        `db:"link"`
	CreatedAt int64         `db:"created_at"`
	ReadAt    sql.NullInt64 `db:"read_at"`
}

func (r notificationRow) notification() Notification {
	n := Notification{ID: r.ID, UserID: r.UserID, Text: r.Text, Link: r.Link, CreatedAt: time.UnixMicro(r.CreatedAt).UTC()}
	if r.ReadAt.Valid {
		t := time.UnixMicro(r.ReadAt.Int64).UTC()
		n.ReadAt = &t
	}
	return n
}

// Notifications returns the user's latest notifications (unreadOnly: only
// those not read), newest first, at most limit (1…500, default 50).
func (s *Server) Notifications(ctx context.Context, userID int64, unreadOnly bool, limit int) ([]Notification, error) {
	return NewNotificationStore(s.db).List(ctx, userID, 0, limit, unreadOnly)
}

// MarkNotificationsRead marks the user's notifications up to upToID (0:
// all) as read and returns how many changed.
func (s *Server) MarkNotificationsRead(ctx context.Context, userID, upToID int64) (int64, error) {
	return NewNotificationStore(s.db).MarkRead(ctx, userID, upToID, nil)
}

// Notification returns the user's notification id (ErrNotFound when it
// is not theirs).
func (s *Server) Notification(ctx context.Context, userID, id int64) (*Notification, error) {
	return NewNotificationStore(s.db).Get(ctx, userID, id)
}

// NotificationStore lists a user's notifications and marks them read:
// the one copy of those rules, for the XMPP core and the bridge's bell.
type NotificationStore struct{ db *sqlx.DB }

// NewNotificationStore returns the notification store over db.
func NewNotificationStore(db *sqlx.DB) *NotificationStore { return &NotificationStore{db: db} }

const notificationCols = `id, user_id, text, link, created_at, read_at`

// List returns the user's notifications older than beforeID (0: the
// latest; unreadOnly: only those not read), newest first, at most limit
// (1…500, default MaxPendingNotifications).
func (n *NotificationStore) List(ctx context.Context, userID, beforeID int64, limit int, unreadOnly bool) ([]Notification, error) {
	if limit <= 0 || limit > 500 {
		limit = MaxPendingNotifications
	}
	q := `SELECT ` + notificationCols + ` FROM notifications WHERE user_id = ?`
	args := []any{userID}
	if beforeID > 0 {
		q += ` AND id < ?`
		args = append(args, beforeID)
	}
	if unreadOnly {
		q += ` AND read_at IS NULL`
	}
	q += ` ORDER BY id DESC LIMIT ?`
	var rows []notificationRow
	if err := n.db.SelectContext(ctx, &rows, n.db.Rebind(q), append(args, limit)...); err != nil {
		return nil, fmt.Errorf("xmppcore: notifications of %d: %w", userID, err)
	}
	out := make([]Notification, len(rows))
	for i, r := range rows {
		out[i] = r.notification()
	}
	return out, nil
}

// Get returns the user's notification id (ErrNotFound when it is not
// theirs or does not exist).
func (n *NotificationStore) Get(ctx context.Context, userID, id int64) (*Notification, error) {
	var r notificationRow
	err := n.db.GetContext(ctx, &r, n.db.Rebind(`SELECT `+notificationCols+` FROM notifications WHERE user_id = ? AND id = ?`), userID, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("xmppcore: notification %d of %d: %w", id, userID, err)
	}
	no := r.notification()
	return &no, nil
}

// Unread is how many of the user's notifications are not read.
func (n *NotificationStore) Unread(ctx context.Context, userID int64) (int, error) {
	var c int
	if err := n.db.GetContext(ctx, &c, n.db.Rebind(`SELECT COUNT(*) FROM notifications WHERE user_id = ? AND read_at IS NULL`), userID); err != nil {
		return 0, fmt.Errorf("xmppcore: unread notifications of %d: %w", userID, err)
	}
	return c, nil
}

// MarkRead marks the user's notifications read: those named by ids when
// given, else those up to upToID (0: all). It returns how many changed;
// ids that are not the user's change nothing.
func (n *NotificationStore) MarkRead(ctx context.Context, userID, upToID int64, ids []int64) (int64, error) {
	now := time.Now().UnixMicro()
	if len(ids) > 0 {
		q, args, err := sqlx.In(`UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL AND id IN (?)`, now, userID, ids)
		if err != nil {
			return 0, fmt.Errorf("xmppcore: mark notifications of %d: %w", userID, err)
		}
		res, err := n.db.ExecContext(ctx, n.db.Rebind(q), args...)
		if err != nil {
			return 0, fmt.Errorf("xmppcore: mark notifications of %d: %w", userID, err)
		}
		c, _ := res.RowsAffected()
		return c, nil
	}
	q := `UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL`
	args := []any{now, userID}
	if upToID > 0 {
		q += ` AND id <= ?`
		args = append(args, upToID)
	}
	res, err := n.db.ExecContext(ctx, n.db.Rebind(q), args...)
	if err != nil {
		return 0, fmt.Errorf("xmppcore: mark notifications of %d: %w", userID, err)
	}
	c, _ := res.RowsAffected()
	return c, nil
}

// SendUnreadNotifications sends the session the user's unread
// notifications created after since (zero: all), oldest first, with
// delay stamps. The core calls it on the initial presence of an XMPP
// stream with the user's previous last-seen time; notifications stay
// unread until the user marks them.
func (s *Server) SendUnreadNotifications(ctx context.Context, sess *Session, since time.Time) error {
	ns, err := s.Notifications(ctx, sess.UserID(), true, MaxPendingNotifications)
	if err != nil {
		return err
	}
	to := sess.JID().String()
	for i := len(ns) - 1; i >= 0; i-- {
		if !ns[i].CreatedAt.After(since) {
			continue
		}
		el := s.notificationElement(ns[i], true)
		el.SetAttr("to", to)
		sess.deliver(el)
	}
	return nil
}

// notificationsOnLogin sends an XMPP client coming online the unread
// notifications that came while the user was away (since they were last
// seen), so it is not sent the same ones at every login. Bridge sessions
// get none: the web client lists notifications itself.
func (s *Server) notificationsOnLogin(ctx context.Context, sess *Session) {
	if _, stream := sess.sink.(*conn); !stream {
		return
	}
	since, _, err := s.store.lastSeen(ctx, sess.userID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		sess.logger().Warn("notifications on login", "err", err)
		return
	}
	if err := s.SendUnreadNotifications(ctx, sess, since); err != nil {
		sess.logger().Warn("notifications on login", "err", err)
	}
}
