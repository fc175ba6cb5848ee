package muc_test

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
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
		i.Expect("from='" + room + "/alex'")

		// A nick held by another user is a conflict.
		p := w.login(t, "popov", "c")
		if _, err := w.chats.AddMembers(ctx, 0, c.ID, []int64{popov.ID}, nil, true); err != nil {
			t.Fatal(err)
		}
		p.Send(`<presence to='` + room + `/boss'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		p.Expect("type='error'", "conflict")

		// Nick change: 303 with the new nick, then the new presence.
		s.Send(`<presence to='` + room + `/alexey'/>`)
		i.Expect("from='"+room+"/alex'", "type='unavailable'", "code='303'", "nick='alexey'")
		i.Expect("from='" + room + "/alexey'")
		s.Expect("from='"+room+"/alex'", "type='unavailable'", "code='303'", "code='110'")
		s.Expect("from='"+room+"/alexey'", "code='110'")

		// Private message between occupants, from room/nick.
		s.Send(`<message to='` + room + `/boss' type='chat' id='pm1'><body>лично</body></message>`)
		pm := i.Expect("лично", "from='"+room+"/alexey'")
		if !strings.Contains(pm, "type='chat'") {
			t.Fatalf("pm: %s", pm)
		}

		// The member list for members; a member cannot remove another.
		s.Send(`<iq type='get' id='a1' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query></iq>`)
		list := s.Expect("id='a1'", "type='result'")
		if !strings.Contains(list, "smirnov@"+domain) || !strings.Contains(list, "popov@"+domain) || strings.Contains(list, "ivanov@") {
			t.Fatalf("member list: %s", list)
		}
		s.Send(`<iq type='set' id='a2' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='none' jid='popov@` + domain + `'/></query></iq>`)
		s.Expect("id='a2'", "type='error'", "forbidden")
		// A member changing the subject is refused (only the owner renames).
		s.Send(`<message to='` + room + `' type='groupchat'><subject>Моё</subject></message>`)
		s.Expect("type='error'", "forbidden")

		// The owner removes smirnov by nick: his session is kicked with 321.
		i.Send(`<iq type='set' id='a3' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='none' nick='alexey'/></query></iq>`)
		i.Expect("id='a3'", "type='result'")
		s.Expect("type='unavailable'", "code='321'")
		i.Expect("from='"+room+"/alexey'", "type='unavailable'")
		if ok, _ := w.chats.Store().IsMember(ctx, c.ID, smirnov.ID); ok {
			t.Fatal("still a member")
		}
		// A member leaves by setting their own affiliation to none.
		p.Send(`<iq type='set' id='a4' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='none' jid='popov@` + domain + `'/></query></iq>`)
		p.Expect("id='a4'", "type='result'")
		if ok, _ := w.chats.Store().IsMember(ctx, c.ID, popov.ID); ok {
			t.Fatal("popov could not leave")
		}
		// The owner adds a member by JID.
		i.Send(`<iq type='set' id='a5' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='smirnov@` + domain + `'/></query></iq>`)
		i.Expect("id='a5'", "type='result'")
		if ok, _ := w.chats.Store().IsMember(ctx, c.ID, smirnov.ID); !ok {
			t.Fatal("owner could not add a member")
		}
	})
}

var pngPixel = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")

func TestRoomAvatar(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		ivanov := w.user(t, "ivanov")
		c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "С аватаром", Description: "описание", OwnerID: ivanov.ID,
			Avatar: "data:image/png;base64," + base64.StdEncoding.EncodeToString(pngPixel)})
		if err != nil {
			t.Fatal(err)
		}
		room := w.chats.RoomJID(c)
		i := w.login(t, "ivanov", "a")
		i.Send(`<iq type='get' id='v1' to='` + room + `'><vCard xmlns='vcard-temp'/></iq>`)
		v := i.Expect("id='v1'", "type='result'")
		if !strings.Contains(v, "<TYPE>image/png</TYPE>") || !strings.Contains(v, base64.StdEncoding.EncodeToString(pngPixel)) || !strings.Contains(v, "<FN>С аватаром</FN>") {
			t.Fatalf("room vcard: %s", v)
		}
		sum := sha1.Sum(pngPixel)
		i.Send(`<iq type='get' id='v2' to='` + room + `'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		i.Expect("id='v2'", "muc#roominfo_avatarhash", hex.EncodeToString(sum[:]))
	})
}

// TestServerDefaultHideHistory: with Options.HideHistory, a request that
// does not say hides earlier messages; an explicit false shows them.
func TestServerDefaultHideHistory(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		svc := muc.New(muc.NewStore(db), w.srv, w.archive, w.users, muc.Options{Domain: domain, HideHistory: true})
		ivanov, smirnov, popov := w.user(t, "ivanov"), w.user(t, "smirnov"), w.user(t, "popov")
		c, _ := svc.Create(ctx, 0, muc.NewChat{Title: "t", OwnerID: ivanov.ID})
		first, err := svc.PostMessage(ctx, c.ID, ivanov.ID, "раньше", false)
		if err != nil {
			t.Fatal(err)
		}
		show := false
		if _, err := svc.AddMembers(ctx, 0, c.ID, []int64{smirnov.ID}, nil, true); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.AddMembers(ctx, 0, c.ID, []int64{popov.ID}, &show, true); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			user int64
			sees bool
		}{{smirnov.ID, false}, {popov.ID, true}} {
			page, err := w.archive.Query(ctx, mam.Query{Viewer: tc.user, ChatID: c.ID, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			sees := false // past the chat's created notice
			for _, m := range page.Messages {
				sees = sees || m.ID == first
			}
			if sees != tc.sees {
				t.Fatalf("user %d sees earlier history: %v, want %v", tc.user, sees, tc.sees)
			}
		}
	})
}

// Handing a chat over, from any door, re-announces both owners'
// occupants with their new affiliation; when the owner leaves, the
// longest-standing member becomes the owner and the room says so.
func TestOwnerHandoverPresence(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		ivanov, smirnov, petrova := w.user(t, "ivanov"), w.user(t, "smirnov"), w.user(t, "petrova")
		c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "t", Type: muc.TypeClosed, OwnerID: ivanov.ID, Members: []int64{smirnov.ID, petrova.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := w.chats.RoomJID(c)
		i, s := w.login(t, "ivanov", "a"), w.login(t, "smirnov", "b")
		join(i, room, "boss")
		join(s, room, "alex")
		// Only the owner hands over, and only to a member.
		outsider := w.user(t, "popov").ID
		if _, err := w.chats.Update(ctx, smirnov.ID, c.ID, muc.Update{OwnerID: &smirnov.ID}); !errors.Is(err, muc.ErrForbidden) {
			t.Fatalf("a member takes the chat: got %v, want forbidden", err)
		}
		var ie *muc.InvalidError
		if _, err := w.chats.Update(ctx, ivanov.ID, c.ID, muc.Update{OwnerID: &outsider}); !errors.As(err, &ie) || ie.Code != "not_member" {
			t.Fatalf("handing to a non-member: got %v", err)
		}
		if _, err := w.chats.Update(ctx, ivanov.ID, c.ID, muc.Update{OwnerID: &smirnov.ID}); err != nil {
			t.Fatal(err)
		}
		s.Expect("from='"+room+"/boss'", "affiliation='member'", "role='participant'")
		s.Expect("from='"+room+"/alex'", "affiliation='owner'", "role='moderator'")
		i.Expect("from='"+room+"/alex'", "affiliation='owner'")
		got, _ := w.chats.Get(ctx, 0, c.ID)
		if got.OwnerID != smirnov.ID || got.Members[0].UserID != smirnov.ID || got.Members[0].Role != muc.RoleOwner {
			t.Fatalf("after handing over: %+v", got)
		}
		// The new owner leaves: Ivanov, a member since the start, owns it.
		if err := w.chats.RemoveMember(ctx, smirnov.ID, c.ID, smirnov.ID); err != nil {
			t.Fatal(err)
		}
		i.Expect("from='"+room+"/boss'", "affiliation='owner'", "role='moderator'")
		if got, _ = w.chats.Get(ctx, 0, c.ID); got.OwnerID != ivanov.ID {
			t.Fatalf("after the owner left: %+v", got)
		}
	})
}
