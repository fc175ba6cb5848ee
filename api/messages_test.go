package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
)

// sink is a session attached through the server's Sink API, as the bridge
// attaches; it collects what the router delivers.
type sink struct{ in chan string }

func (s *sink) Deliver(el *xmppcore.Element) bool {
	select {
	case s.in <- el.String():
		return true
	default:
		return false
	}
}
func (s *sink) Close(string) {}

func (s *sink) expect(t *testing.T, parts ...string) string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	var seen []string
	for {
		select {
		case x := <-s.in:
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(x, p)
			}
			if ok {
				return x
			}
			seen = append(seen, x)
		case <-deadline:
			t.Fatalf("no stanza with %q; got %v", parts, seen)
			return ""
		}
	}
}

func (e *env) attach(t *testing.T, ext string) *sink {
	t.Helper()
	s := &sink{in: make(chan string, 100)}
	sess, err := e.xmpp.Attach(context.Background(), uid(t, e.db, ext), "web", s)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Handle(context.Background(), xmppcore.NewElement(xmppcore.NSClient, "presence")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close)
	return s
}

func TestPersonalMessages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		online := e.attach(t, "3")
		st, out := e.do("POST", "/api/v1/messages", `{"from_user_id":2,"to_user_id":"3","message":"Привет из портала"}`)
		if st != 201 {
			t.Fatalf("post: %d %v", st, out)
		}
		id := int64(out["id"].(float64))
		online.expect(t, "Привет из портала", "ivanov@example.test", "type='chat'")
		m, err := mam.NewStore(db).Get(context.Background(), id)
		if err != nil || m.Kind != mam.KindChat || m.FromID != uid(t, db, "2") || m.ToID != uid(t, db, "3") {
			t.Fatalf("archived %+v %v", m, err)
		}
		// An offline recipient finds it in the offline queue.
		st, out = e.do("POST", "/api/v1/messages", `{"from_user_id":"2","to_user_id":"4","message":"потом прочтёшь"}`)
		if st != 201 {
			t.Fatalf("post offline: %d %v", st, out)
		}
		und, err := mam.NewStore(db).Undelivered(context.Background(), uid(t, db, "4"), 10)
		if err != nil || len(und) != 1 || und[0].Body != "потом прочтёшь" {
			t.Fatalf("undelivered %+v %v", und, err)
		}
		for _, tc := range []struct {
			name, body  string
			status      int
			code, field string
		}{
			{"no from", `{"to_user_id":"3","message":"x"}`, 422, "missing_user", "from_user_id"},
			{"unknown to", `{"from_user_id":"2","to_user_id":"999","message":"x"}`, 422, "unknown_user", "to_user_id"},
			{"inactive to", `{"from_user_id":"2","to_user_id":"30","message":"x"}`, 422, "unknown_user", "to_user_id"},
			{"empty", `{"from_user_id":"2","to_user_id":"3","message":""}`, 422, "empty_message", "message"},
			{"bad type", `{"from_user_id":true,"to_user_id":"3","message":"x"}`, 422, "invalid_type", "from_user_id"},
			{"malformed", `{"from_user_id":"2"`, 400, "malformed_json", ""},
			{"too large", `{"message":"` + strings.Repeat("я", MaxBody) + `"}`, 413, "body_too_large", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, out := e.do("POST", "/api/v1/messages", tc.body)
				expectError(t, st, out, tc.status, tc.code, tc.field)
			})
		}
	})
}

func TestNotifications(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db, Options{})
		online := e.attach(t, "5")
		st, out := e.do("POST", "/api/v1/notifications", `{"to_user_id":"5","text":"Заявка одобрена","link":"https://portal.example.test/req/7"}`)
		if st != 201 {
			t.Fatalf("notify: %d %v", st, out)
		}
		got := online.expect(t, "Заявка одобрена", "type='headline'", "from='example.test'")
		if !strings.Contains(got, "jabber:x:oob") || !strings.Contains(got, "https://portal.example.test/req/7") {
			t.Fatalf("headline without the link: %s", got)
		}
		// Offline: stored unread, sent when a session becomes available.
		if st, _ := e.do("POST", "/api/v1/notifications", `{"to_user_id":6,"text":"Вам письмо"}`); st != 201 {
			t.Fatalf("notify offline: %d", st)
		}
		ns, err := e.xmpp.Notifications(context.Background(), uid(t, db, "6"), true, 10)
		if err != nil || len(ns) != 1 || ns[0].Text != "Вам письмо" {
			t.Fatalf("unread %+v %v", ns, err)
		}
		later := &sink{in: make(chan string, 10)}
		sess, err := e.xmpp.Attach(context.Background(), uid(t, db, "6"), "later", later)
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		if err := e.xmpp.SendUnreadNotifications(context.Background(), sess, time.Time{}); err != nil {
			t.Fatal(err)
		}
		later.expect(t, "Вам письмо", "type='headline'", "urn:xmpp:delay")
		if n, err := e.xmpp.MarkNotificationsRead(context.Background(), uid(t, db, "6"), 0); err != nil || n != 1 {
			t.Fatalf("mark read: %d %v", n, err)
		}
		for _, tc := range []struct {
			name, body  string
			status      int
			code, field string
		}{
			{"no text", `{"to_user_id":"5"}`, 422, "empty_text", "text"},
			{"bad link", `{"to_user_id":"5","text":"x","link":"javascript:alert(1)"}`, 422, "invalid_link", "link"},
			{"unknown user", `{"to_user_id":"999","text":"x"}`, 422, "unknown_user", "to_user_id"},
			{"text not string", `{"to_user_id":"5","text":1}`, 422, "invalid_type", "text"},
			{"malformed", `{`, 400, "malformed_json", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, out := e.do("POST", "/api/v1/notifications", tc.body)
				expectError(t, st, out, tc.status, tc.code, tc.field)
			})
		}
		if st, _ := e.do("POST", "/api/v1/notifications", `{"to_user_id":"5","text":"x","link":"/im/chat/1"}`); st != 201 {
			t.Fatalf("relative link refused: %d", st)
		}
	})
}
