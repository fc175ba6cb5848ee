package muc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/muc"
)

// TestKickVoiceBan: the owner kicks (307, membership kept), revokes and
// grants voice, and bans (301, outcast list with the reason, no rejoin,
// no re-adding by members; the owner adding back lifts it); occupants
// carry a stable occupant-id (XEP-0421) in presence and messages.
func TestKickVoiceBan(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		ivanov, smirnov, petrova := w.user(t, "ivanov"), w.user(t, "smirnov"), w.user(t, "petrova")
		c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "Модерация", Type: muc.TypeOpen, OwnerID: ivanov.ID, Members: []int64{smirnov.ID, petrova.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := w.chats.RoomJID(c)
		i, s, p := w.login(t, "ivanov", "a"), w.login(t, "smirnov", "b"), w.login(t, "petrova", "c")
		join(i, room, "boss")
		self := join(s, room, "alex")
		join(p, room, "maria")
		i.Expect("from='"+room+"/alex'", "urn:xmpp:occupant-id:0")
		i.Expect("from='" + room + "/maria'")
		occID := func(stanza string) string {
			_, rest, ok := strings.Cut(stanza, "<occupant-id xmlns='urn:xmpp:occupant-id:0' id='")
			if !ok {
				t.Fatalf("no occupant-id: %s", stanza)
			}
			id, _, _ := strings.Cut(rest, "'")
			return id
		}
		alexID := occID(self)

		// A message carries the author's occupant-id, not a forged one.
		s.Send(`<message to='` + room + `' type='groupchat' id='m1'><body>привет</body><occupant-id xmlns='urn:xmpp:occupant-id:0' id='forged'/></message>`)
		msg := i.Expect("привет", "from='"+room+"/alex'")
		if occID(msg) != alexID || strings.Contains(msg, "forged") {
			t.Fatalf("message occupant-id: %s (want %s)", msg, alexID)
		}

		// A member cannot kick.
		s.Send(`<iq type='set' id='k0' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='maria' role='none'/></query></iq>`)
		s.Expect("id='k0'", "type='error'", "forbidden")
		// Voice: revoked, the occupant cannot post; granted back.
		i.Send(`<iq type='set' id='v1' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='alex' role='visitor'/></query></iq>`)
		i.Expect("id='v1'", "type='result'")
		s.Expect("from='"+room+"/alex'", "role='visitor'")
		s.Send(`<message to='` + room + `' type='groupchat' id='m2'><body>молчу?</body></message>`)
		s.Expect("id='m2'", "type='error'", "forbidden")
		i.Send(`<iq type='set' id='v2' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='alex' role='participant'/></query></iq>`)
		i.Expect("id='v2'", "type='result'")
		s.Expect("from='"+room+"/alex'", "role='participant'")

		// Kick: 307 with the reason, still a member, may rejoin.
		i.Send(`<iq type='set' id='k1' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='alex' role='none'><reason>остынь</reason></item></query></iq>`)
		i.Expect("id='k1'", "type='result'")
		s.Expect("from='"+room+"/alex'", "type='unavailable'", "code='307'", "code='110'", "остынь", "role='none'")
		p.Expect("from='"+room+"/alex'", "type='unavailable'", "code='307'")
		if ok, _ := w.chats.Store().IsMember(ctx, c.ID, smirnov.ID); !ok {
			t.Fatal("a kick removed the membership")
		}
		join(s, room, "alex")

		// Ban: 301 with the reason, membership gone, listed as outcast.
		i.Send(`<iq type='set' id='b1' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item jid='smirnov@` + domain + `' affiliation='outcast'><reason>спам</reason></item></query></iq>`)
		i.Expect("id='b1'", "type='result'")
		s.Expect("from='"+room+"/alex'", "type='unavailable'", "code='301'", "affiliation='outcast'", "спам")
		p.Expect("from='"+room+"/alex'", "code='301'")
		if ok, _ := w.chats.Store().IsMember(ctx, c.ID, smirnov.ID); ok {
			t.Fatal("banned user is still a member")
		}
		i.Send(`<iq type='get' id='o1' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast'/></query></iq>`)
		if got := i.Expect("id='o1'", "type='result'"); !strings.Contains(got, "jid='smirnov@"+domain+"'") || !strings.Contains(got, "<reason>спам</reason>") {
			t.Fatalf("outcast list: %s", got)
		}
		// The open chat refuses the rejoin; a member cannot add them back.
		s.Send(`<presence to='` + room + `/alex'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		s.Expect("from='"+room+"/alex'", "type='error'", "forbidden")
		if _, err := w.chats.AddMembers(ctx, petrova.ID, c.ID, []int64{smirnov.ID}, nil, true); !errors.Is(err, muc.ErrForbidden) {
			t.Fatalf("a member re-adds a banned user: got %v, want forbidden", err)
		}
		// The owner cannot be banned; the owner adding back lifts the ban.
		if err := w.chats.Ban(ctx, ivanov.ID, c.ID, ivanov.ID, ""); !errors.Is(err, muc.ErrForbidden) {
			t.Fatalf("banning the owner: got %v", err)
		}
		if _, err := w.chats.AddMembers(ctx, ivanov.ID, c.ID, []int64{smirnov.ID}, nil, true); err != nil {
			t.Fatal(err)
		}
		if outs, _ := w.chats.Store().Outcasts(ctx, c.ID); len(outs) != 0 {
			t.Fatalf("ban not lifted: %+v", outs)
		}
		// Banned while in the room, he left with a 301 presence: no extra notice.
		for _, seen := range i.Seen {
			if strings.Contains(seen, "id='aff-") && strings.Contains(seen, "affiliation='outcast'") {
				t.Fatalf("a ban of an occupant also sent an affiliation message: %s", seen)
			}
		}
		// Banned while not in the room: the owner's occupant is told, 301
		// first, with the reason (XEP-0045 §9.1), before the result.
		i.Send(`<iq type='set' id='b2' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item jid='smirnov@` + domain + `' affiliation='outcast'><reason>снова</reason></item></query></iq>`)
		note := i.Expect("id='aff-", "affiliation='outcast'")
		want := `<x xmlns='http://jabber.org/protocol/muc#user'><status code='301'></status><item jid='smirnov@` + domain + `' affiliation='outcast'><reason>снова</reason></item></x>`
		if !strings.Contains(note, "from='"+room+"'") || !strings.Contains(note, want) {
			t.Fatalf("ban of a non-occupant: got %s; want %s", note, want)
		}
		i.Expect("id='b2'", "type='result'")
		p.ExpectNone(200*time.Millisecond, "id='aff-", "affiliation='outcast'")
	})
}

// TestJoinHistoryAndRateLimit: <history maxchars='0'/>, maxstanzas,
// seconds and since are honoured on join; posting faster than the
// chat's rate is refused with policy-violation.
func TestJoinHistoryAndRateLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorldWith(t, db, muc.Options{Domain: domain, MessageRate: 0.001, MessageBurst: 3})
		ivanov, smirnov := w.user(t, "ivanov"), w.user(t, "smirnov")
		c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "История", Type: muc.TypeClosed, OwnerID: ivanov.ID, Members: []int64{smirnov.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := w.chats.RoomJID(c)
		for n := 1; n <= 3; n++ {
			if _, err := w.chats.PostMessage(ctx, c.ID, smirnov.ID, fmt.Sprintf("старое %d", n), false); err != nil {
				t.Fatal(err)
			}
		}
		// The fourth message of the same author is over the burst.
		if _, err := w.chats.PostMessage(ctx, c.ID, smirnov.ID, "лишнее", false); !errors.Is(err, muc.ErrRateLimited) {
			t.Fatalf("over the rate: got %v, want ErrRateLimited", err)
		}
		cases := []struct {
			name, history string
			want, not     []string
		}{
			{"maxchars 0", `<history maxchars='0'/>`, nil, []string{"старое"}},
			{"maxstanzas 1", `<history maxstanzas='1'/>`, []string{"старое 3"}, []string{"старое 2"}},
			{"seconds", `<history seconds='3600'/>`, []string{"старое 1", "старое 3"}, nil},
			{"since future", `<history since='` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `'/>`, nil, []string{"старое"}},
			{"since past", `<history since='2000-01-01T00:00:00Z'/>`, []string{"старое 1"}, nil},
		}
		for n, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				a := w.login(t, "ivanov", fmt.Sprintf("h%d", n))
				a.Send(`<presence to='` + room + `/boss'><x xmlns='http://jabber.org/protocol/muc'>` + tc.history + `</x></presence>`)
				var seen []string
				for {
					st := a.Next()
					seen = append(seen, st)
					if strings.Contains(st, "<subject") {
						break
					}
				}
				all := strings.Join(seen, "\n")
				for _, w := range tc.want {
					if !strings.Contains(all, w) {
						t.Errorf("history lacks %q:\n%s", w, all)
					}
				}
				for _, w := range tc.not {
					if strings.Contains(all, w) {
						t.Errorf("history has %q:\n%s", w, all)
					}
				}
			})
		}
		// Over XMPP the refusal is policy-violation, type wait.
		i := w.login(t, "ivanov", "rate")
		join(i, room, "boss2")
		for n := 0; n < 3; n++ {
			i.Send(fmt.Sprintf(`<message to='%s' type='groupchat' id='r%d'><body>быстро %d</body></message>`, room, n, n))
			i.Expect(fmt.Sprintf("id='r%d'", n), "быстро")
		}
		i.Send(`<message to='` + room + `' type='groupchat' id='r3'><body>слишком</body></message>`)
		i.Expect("id='r3'", "type='error'", "policy-violation", "type='wait'")
	})
}
