package xmppcore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// A notification with a tag, a sender and buttons reaches an online
// session as a headline whose text lists the buttons and whose mark
// carries them; a second one with the tag replaces the first; pressing a
// button is recorded once and told to the hook.
func TestNotificationActions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		var told []NotificationAnswer
		e := newEnvWith(t, db, testOrg, func(o *Options) {
			o.OnNotificationAction = func(_ context.Context, a NotificationAnswer) { told = append(told, a) }
		})
		alice, err := e.rs.UserByLogin(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		bob, err := e.rs.UserByLogin(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		sink := &recSink{}
		bs, err := e.srv.Attach(ctx, alice.ID, "web", sink)
		if err != nil {
			t.Fatal(err)
		}
		defer bs.Close()
		if err := bs.Handle(ctx, NewElement(NSClient, "presence")); err != nil {
			t.Fatal(err)
		}
		req := NotifyRequest{UserID: alice.ID, Text: "Leave 1–14 July", Tag: "leave-7", SenderID: bob.ID,
			Buttons: []NotificationButton{{Title: "Accept", Value: "accept"}, {Title: "Decline", Value: "decline"}}}
		first, err := e.srv.NotifyWith(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		second, err := e.srv.NotifyWith(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		sink.mu.Lock()
		last := sink.got[len(sink.got)-1]
		sink.mu.Unlock()
		for _, want := range []string{"Leave 1–14 July\n[Accept] [Decline]", "tag='leave-7'", "sender='bob@", "replaces='" + strconv.FormatInt(first, 10) + "'",
			"<button value='accept' title='Accept'/>", "type='headline'"} {
			if !strings.Contains(last, want) {
				t.Errorf("headline %s: no %q", last, want)
			}
		}
		ns, err := e.srv.Notifications(ctx, alice.ID, false, 10)
		if err != nil || len(ns) != 1 || ns[0].ID != second {
			t.Fatalf("got %+v %v, want the second notification alone", ns, err)
		}
		if _, err := e.srv.AnswerNotification(ctx, bob.ID, second, "accept"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("someone else's answer: got %v, want ErrNotFound", err)
		}
		if _, err := e.srv.AnswerNotification(ctx, alice.ID, second, "maybe"); !errors.Is(err, ErrNoSuchButton) {
			t.Fatalf("unknown value: got %v, want ErrNoSuchButton", err)
		}
		if _, err := e.srv.AnswerNotification(ctx, alice.ID, second, "decline"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.srv.AnswerNotification(ctx, alice.ID, second, "accept"); !errors.Is(err, ErrNotificationAnswered) {
			t.Fatalf("second answer: got %v, want ErrNotificationAnswered", err)
		}
		if len(told) != 1 || told[0].Value != "decline" || told[0].SenderID != bob.ID || told[0].Tag != "leave-7" {
			t.Fatalf("hook told %+v", told)
		}
		if unread, _ := e.srv.Notifications(ctx, alice.ID, true, 10); len(unread) != 0 {
			t.Fatalf("an answered notification stays unread: %+v", unread)
		}
		for _, bad := range []NotifyRequest{
			{UserID: alice.ID, Text: " "},
			{UserID: alice.ID, Text: "x", Tag: strings.Repeat("t", MaxNotificationTag+1)},
			{UserID: alice.ID, Text: "x", Buttons: []NotificationButton{{Title: "a", Value: ""}}},
		} {
			var ne *NotifyError
			if _, err := e.srv.NotifyWith(ctx, bad); !errors.As(err, &ne) {
				t.Errorf("%+v: got %v, want a NotifyError", bad, err)
			}
		}
	})
}
