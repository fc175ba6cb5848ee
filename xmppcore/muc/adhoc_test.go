package muc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/muc"
)

// TestAdminDestroyRoomsCommand: the MUC service's ad-hoc command destroys
// rooms for admins as the owner's <destroy/> does; others are refused and
// see no commands; an unknown room refuses the whole command.
func TestAdminDestroyRoomsCommand(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorldWith(t, db, muc.Options{Domain: domain, Admins: []string{"petrova"}})
		ivanov, smirnov := w.user(t, "ivanov"), w.user(t, "smirnov")
		c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "Doomed", Type: muc.TypeOpen, OwnerID: ivanov.ID, Members: []int64{smirnov.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := w.chats.RoomJID(c)
		service := "conference." + domain
		const cmd = `<command xmlns='http://jabber.org/protocol/commands' node='http://prosody.im/protocol/muc#destroy'`

		s := w.login(t, "smirnov", "pc")
		join(s, room, "Алексей")
		s.Expect("<subject")
		s.Send(`<iq type='get' id='i1' to='` + service + `'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>`)
		if got := s.Expect("id='i1'", "type='result'"); strings.Contains(got, "muc#destroy") {
			t.Errorf("commands listed to a non-admin: %s", got)
		}
		s.Send(`<iq type='set' id='x1' to='` + service + `'>` + cmd + `><x xmlns='jabber:x:data' type='submit'><field var='rooms'><value>` + room + `</value></field></x></command></iq>`)
		s.Expect("id='x1'", "type='error'", "forbidden")

		a := w.login(t, "petrova", "pc")
		a.Send(`<iq type='get' id='i2' to='` + service + `'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>`)
		a.Expect("id='i2'", "node='http://prosody.im/protocol/muc#destroy'")
		a.Send(`<iq type='set' id='x2' to='` + service + `'>` + cmd + `/></iq>`)
		a.Expect("id='x2'", "status='executing'", "var='rooms'", "jid-multi")

		// An unknown room refuses the whole command: nothing destroyed.
		a.Send(`<iq type='set' id='x3' to='` + service + `'>` + cmd + `><x xmlns='jabber:x:data' type='submit'><field var='rooms'><value>` +
			room + `</value><value>nowhere@` + service + `</value></field></x></command></iq>`)
		a.Expect("id='x3'", "type='error'", "not-acceptable", "nowhere@")
		if got, err := w.chats.Get(ctx, 0, c.ID); err != nil || len(got.Members) == 0 {
			t.Fatalf("refused command changed the chat: %+v %v", got, err)
		}

		// A form without a type, as Prosody's admin tools send it.
		a.Send(`<iq type='set' id='x4' to='` + service + `'>` + cmd + `><x xmlns='jabber:x:data'><field var='rooms'><value>` + room + `</value></field></x></command></iq>`)
		gone := s.Expect("from='"+room+"/Алексей'", "type='unavailable'", "<destroy", "code='110'")
		if !strings.Contains(gone, "role='none'") {
			t.Errorf("occupant's unavailable presence: %s", gone)
		}
		done := a.Expect("id='x4'", "type='result'", "status='completed'")
		if !strings.Contains(done, "The following rooms were destroyed:\n"+room) && !strings.Contains(done, "The following rooms were destroyed:&#xA;"+room) {
			t.Errorf("completed note: got %s, want the destroyed room listed", done)
		}
		got, err := w.chats.Get(ctx, 0, c.ID)
		if err != nil || got.Type != muc.TypeClosed || len(got.Members) != 0 {
			t.Fatalf("destroyed chat: %+v %v", got, err)
		}
	})
}
