package muc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/muc"
)

// TestRoomMessageLang: a groupchat message keeps the xml:lang its client
// gave, live, in the history a later joiner gets and in the room's MAM;
// a message posted by another door (REST) has none. (The xml:lang the
// core adds from the stream is tested in xmppcore.)
func TestRoomMessageLang(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		ivanov, smirnov := w.user(t, "ivanov"), w.user(t, "smirnov")
		c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "Lang", Type: muc.TypeClosed, OwnerID: ivanov.ID, Members: []int64{smirnov.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := w.chats.RoomJID(c)
		a := w.login(t, "ivanov", "gajim")
		join(a, room, "Иван")
		a.Expect("<subject")
		a.Send(`<message to='` + room + `' type='groupchat' id='g1' xml:lang='de'><body>Guten Tag</body></message>`)
		if live := a.Expect("id='g1'", "Guten Tag"); !strings.Contains(live, "lang='de'") {
			t.Errorf("live groupchat: got %s, want lang='de'", live)
		}
		if _, err := w.chats.PostMessage(ctx, c.ID, ivanov.ID, "from REST", false); err != nil {
			t.Fatal(err)
		}
		if live := a.Expect("from REST"); strings.Contains(live, "lang=") {
			t.Errorf("REST message: got %s, want no xml:lang", live)
		}

		s := w.login(t, "smirnov", "dino")
		join(s, room, "Алексей")
		if h := s.Expect("Guten Tag", "urn:xmpp:delay"); !strings.Contains(h, "lang='de'") {
			t.Errorf("history: got %s, want lang='de'", h)
		}
		s.Expect("from REST", "urn:xmpp:delay")
		s.Send(`<iq type='set' id='q1' to='` + room + `'><query xmlns='urn:xmpp:mam:2' queryid='f1'/></iq>`)
		if r := s.Expect("queryid='f1'", "Guten Tag"); !strings.Contains(r, "lang='de'") {
			t.Errorf("room MAM: got %s, want lang='de'", r)
		}
		if r := s.Expect("queryid='f1'", "from REST"); strings.Contains(r, "lang=") {
			t.Errorf("room MAM of a REST message: got %s, want no xml:lang", r)
		}
		s.Expect("id='q1'", "type='result'")
	})
}
