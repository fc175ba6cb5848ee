package muc_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore"
	"vestnik/xmppcore/muc"
)

// chanSink is a session attached through the Sink API, as the bridge does.
type chanSink chan string

func (s chanSink) Deliver(el *xmppcore.Element) bool {
	select {
	case s <- el.String():
		return true
	default:
		return false
	}
}
func (s chanSink) Close(string) {}

func (s chanSink) expect(t *testing.T, parts ...string) string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	var seen []string
	for {
		select {
		case x := <-s:
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

func (s chanSink) expectNone(t *testing.T, d time.Duration, part string) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case x := <-s:
			if strings.Contains(x, part) {
				t.Fatalf("unexpected %s", x)
			}
		case <-deadline:
			return
		}
	}
}

func TestFollowForBridgeSessions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		ivanov, popov := w.user(t, "ivanov"), w.user(t, "popov")
		a, _ := w.chats.Create(ctx, 0, muc.NewChat{Title: "A", Type: muc.TypeClosed, OwnerID: ivanov.ID, Members: []int64{popov.ID}})
		b, _ := w.chats.Create(ctx, 0, muc.NewChat{Title: "B", Type: muc.TypeClosed, OwnerID: ivanov.ID})

		sink := make(chanSink, 100)
		sess, err := w.srv.Attach(ctx, popov.ID, "web", sink)
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		if err := w.chats.Follow(ctx, popov.ID, sess.JID().String()); err != nil {
			t.Fatal(err)
		}
		id, err := w.chats.PostMessageOrigin(ctx, a.ID, ivanov.ID, "в чат A", "web-1", false)
		if err != nil {
			t.Fatal(err)
		}
		got := sink.expect(t, "в чат A", "type='groupchat'", "from='"+w.chats.RoomJID(a)+"/ivanov'")
		if !strings.Contains(got, "urn:vestnik:chat:0") || !strings.Contains(got, "origin-id") || !strings.Contains(got, "id='"+strconv.FormatInt(id, 10)+"'") {
			t.Fatalf("follower stanza: %s", got)
		}
		// Not a member of B: nothing; added: B's messages arrive too.
		w.chats.PostMessage(ctx, b.ID, ivanov.ID, "в чат B до", false)
		sink.expectNone(t, 200*time.Millisecond, "в чат B до")
		if _, err := w.chats.AddMembers(ctx, 0, b.ID, []int64{popov.ID}, nil, true); err != nil {
			t.Fatal(err)
		}
		w.chats.PostMessage(ctx, b.ID, ivanov.ID, "в чат B после", false)
		sink.expect(t, "в чат B после")
		// Removed: no more.
		if err := w.chats.RemoveMember(ctx, 0, b.ID, popov.ID); err != nil {
			t.Fatal(err)
		}
		w.chats.PostMessage(ctx, b.ID, ivanov.ID, "в чат B без него", false)
		sink.expectNone(t, 200*time.Millisecond, "в чат B без него")
		// Unfollowed: no more either.
		w.chats.Unfollow(popov.ID, sess.JID().String())
		w.chats.PostMessage(ctx, a.ID, ivanov.ID, "после отписки", false)
		sink.expectNone(t, 200*time.Millisecond, "после отписки")
	})
}
