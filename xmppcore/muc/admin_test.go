package muc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/muc"
)

func TestAdminNicksAndPrivateMessages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		ivanov, smirnov, popov := w.user(t, "ivanov"), w.user(t, "smirnov"), w.user(t, "popov")
		c, _ := w.chats.Create(ctx, 0, muc.NewChat{Title: "Отдел", Type: muc.TypeClosed, OwnerID: ivanov.ID, Members: []int64{smirnov.ID}})
		room := w.chats.RoomJID(c)
		i := w.login(t, "ivanov", "a")
		s := w.login(t, "smirnov", "b")
		join(i, room, "boss")
		join(s, room, "alex")
		i.expect("from='" + room + "/alex'")

		// A nick held by another user is a conflict.
		p := w.login(t, "popov", "c")
		if _, err := w.chats.AddMembers(ctx, 0, c.ID, []int64{popov.ID}, nil, true); err != nil {
			t.Fatal(err)
		}
		p.send(`<presence to='` + room + `/boss'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		p.expect("type='error'", "conflict")

		// Nick change: 303 with the new nick, then the new presence.
		s.send(`<presence to='` + room + `/alexey'/>`)
		i.expect("from='"+room+"/alex'", "type='unavailable'", "code='303'", "nick='alexey'")
		i.expect("from='" + room + "/alexey'")

		// Private message between occupants, from room/nick.
		s.send(`<message to='` + room + `/boss' type='chat' id='pm1'><body>лично</body></message>`)
		pm := i.expect("лично", "from='"+room+"/alexey'")
		if !strings.Contains(pm, "type='chat'") {
			t.Fatalf("pm: %s", pm)
		}

		// The member list for members; a member cannot remove another.
		s.send(`<iq type='get' id='a1' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query></iq>`)
		list := s.expect("id='a1'", "type='result'")
		if !strings.Contains(list, "smirnov@"+domain) || !strings.Contains(list, "popov@"+domain) || strings.Contains(list, "ivanov@") {
			t.Fatalf("member list: %s", list)
		}
		s.send(`<iq type='set' id='a2' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='none' jid='popov@` + domain + `'/></query></iq>`)
		s.expect("id='a2'", "type='error'", "forbidden")
		// A member changing the subject is refused (only the owner renames).
		s.send(`<message to='` + room + `' type='groupchat'><subject>Моё</subject></message>`)
		s.expect("type='error'", "forbidden")

		// The owner removes smirnov by nick: his session is kicked with 321.
		i.send(`<iq type='set' id='a3' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='none' nick='alexey'/></query></iq>`)
		i.expect("id='a3'", "type='result'")
		s.expect("type='unavailable'", "code='321'")
		i.expect("from='"+room+"/alexey'", "type='unavailable'")
		if ok, _ := w.chats.Store().IsMember(ctx, c.ID, smirnov.ID); ok {
			t.Fatal("still a member")
		}
		// A member leaves by setting their own affiliation to none.
		p.send(`<iq type='set' id='a4' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='none' jid='popov@` + domain + `'/></query></iq>`)
		p.expect("id='a4'", "type='result'")
		if ok, _ := w.chats.Store().IsMember(ctx, c.ID, popov.ID); ok {
			t.Fatal("popov could not leave")
		}
		// The owner adds a member by JID.
		i.send(`<iq type='set' id='a5' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='smirnov@` + domain + `'/></query></iq>`)
		i.expect("id='a5'", "type='result'")
		if ok, _ := w.chats.Store().IsMember(ctx, c.ID, smirnov.ID); !ok {
			t.Fatal("owner could not add a member")
		}
	})
}
