package muc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/muc"
)

// TestThreadSubjectAndTopicSetter: a <subject/> with a <thread/> and no
// body is an ordinary message (XEP-0045 §8.1), archived and replayed in the
// history; a <subject/> alone changes the topic, announced by the subject
// from the occupant who set it — also to those who join later — without a
// 104, while a topic changed outside XMPP comes from the room with a 104.
func TestThreadSubjectAndTopicSetter(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		ivanov, smirnov := w.user(t, "ivanov"), w.user(t, "smirnov")
		c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "Продажи", Type: muc.TypeClosed, OwnerID: ivanov.ID, Members: []int64{smirnov.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := w.chats.RoomJID(c)
		i, s := w.login(t, "ivanov", "a"), w.login(t, "smirnov", "b")
		join(i, room, "Иван")
		join(s, room, "Сергей")

		i.Send(`<message to='` + room + `' type='groupchat' id='t1'><subject>Новая ветка</subject><thread>th-1</thread><store xmlns='urn:xmpp:hints'/></message>`)
		got := s.Expect("from='"+room+"/Иван'", "<subject>Новая ветка</subject>", "<thread>th-1</thread>")
		if strings.Contains(got, "<body") || !strings.Contains(got, "stanza-id") {
			t.Fatalf("thread subject: got %s; want an archived message without a body", got)
		}
		if nc, _ := w.chats.Store().Get(ctx, c.ID); nc.Description != "" {
			t.Fatalf("a subject in a thread changed the topic to %q", nc.Description)
		}

		i.Send(`<message to='` + room + `' type='groupchat'><subject>План на квартал</subject></message>`)
		s.Expect("from='"+room+"/Иван'", "<subject>План на квартал</subject>")
		s.ExpectNone(200*time.Millisecond, "code='104'")
		for _, seen := range s.Seen {
			if strings.Contains(seen, "code='104'") {
				t.Fatalf("a subject change also sent a 104: %s", seen)
			}
		}

		// Rejoining: the thread message is in the history, the topic from Иван.
		s.Send(`<presence to='` + room + `/Сергей' type='unavailable'/>`)
		s.Expect("type='unavailable'", "code='110'")
		join(s, room, "Сергей")
		if h := s.Expect("<thread>th-1</thread>", "urn:xmpp:delay"); !strings.Contains(h, "from='"+room+"/Иван'") {
			t.Fatalf("history: %s", h)
		}
		s.Expect("from='"+room+"/Иван'", "<subject>План на квартал</subject>")

		// From the web: a 104 and the subject from the room itself.
		topic := "С сайта"
		if _, err := w.chats.Update(ctx, ivanov.ID, c.ID, muc.Update{Description: &topic}); err != nil {
			t.Fatal(err)
		}
		s.Expect("code='104'")
		s.Expect("from='"+room+"'", "<subject>С сайта</subject>")
	})
}
