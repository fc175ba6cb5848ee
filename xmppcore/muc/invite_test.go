package muc_test

import (
	"context"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/muc"
)

// isMember reports whether userID is a member of chat id.
func isMember(t *testing.T, w *world, userID, chatID int64) bool {
	t.Helper()
	cs, err := w.chats.ChatsOf(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == chatID {
			return true
		}
	}
	return false
}

// A XEP-0249 invitation in a personal message from a member makes the
// colleague a member and is delivered; one from a non-member is only
// delivered.
func TestDirectInvitation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		ivanov, smirnov, popov := w.user(t, "ivanov"), w.user(t, "smirnov"), w.user(t, "popov")
		c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "Отдел", Type: muc.TypeClosed, OwnerID: ivanov.ID, Members: []int64{smirnov.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := w.chats.RoomJID(c)
		p := w.login(t, "popov", "pc")
		s := w.login(t, "smirnov", "pc")
		if isMember(t, w, popov.ID, c.ID) {
			t.Fatal("popov is a member before the invitation")
		}
		s.Send(`<message type='chat' id='inv1' to='popov@` + domain + `'><body>join us</body><x xmlns='jabber:x:conference' jid='` + room + `' reason='hi'/></message>`)
		p.Expect("id='inv1'", "join us", "jabber:x:conference", room)
		if !isMember(t, w, popov.ID, c.ID) {
			t.Fatal("invitee not added")
		}

		// popov (now a member) may not invite into a room he is not in;
		// a non-member's invitation is delivered but changes nothing.
		other, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "Другой", Type: muc.TypeClosed, OwnerID: ivanov.ID})
		if err != nil {
			t.Fatal(err)
		}
		p.Send(`<message id='inv2' to='smirnov@` + domain + `'><x xmlns='jabber:x:conference' jid='` + w.chats.RoomJID(other) + `'/></message>`)
		s.Expect("id='inv2'", "jabber:x:conference")
		if isMember(t, w, smirnov.ID, other.ID) {
			t.Fatal("a non-member's invitation added a member")
		}
	})
}
