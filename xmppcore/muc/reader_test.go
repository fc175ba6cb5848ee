package muc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
)

// Reading is not joining: who enters an open chat's room without being a
// member reads it (affiliation none, live messages only, no membership);
// their first message, a bookmark with autojoin or the owner's grant makes
// them a member, announced by their presence before anything else.
func TestReadingIsNotJoining(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		ivanov, smirnov, petrova, popov := w.user(t, "ivanov"), w.user(t, "smirnov"), w.user(t, "petrova"), w.user(t, "popov")
		c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "Курилка", Type: muc.TypeOpen, OwnerID: ivanov.ID, Members: []int64{smirnov.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := w.chats.RoomJID(c)
		if _, err := w.chats.PostMessage(ctx, c.ID, smirnov.ID, "до читателя", false); err != nil {
			t.Fatal(err)
		}
		i := w.login(t, "ivanov", "gajim")
		join(i, room, "Иван")
		s := w.login(t, "smirnov", "dino")
		join(s, room, "Алексей")

		// petrova enters: a reader, affiliation none, no history.
		p := w.login(t, "petrova", "x")
		p.Send(`<presence to='` + room + `/Мария'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		self := p.Expect("from='"+room+"/Мария'", "code='110'")
		if !strings.Contains(self, "affiliation='none'") || !strings.Contains(self, "role='participant'") {
			t.Fatalf("reader's self-presence: %s", self)
		}
		p.Expect("<subject")
		if seen := strings.Join(p.Seen, "\n"); strings.Contains(seen, "до читателя") {
			t.Fatalf("a reader got the history: %s", seen)
		}
		if got := i.Expect("from='"+room+"/Мария'", "muc#user"); !strings.Contains(got, "affiliation='none'") {
			t.Fatalf("the owner sees the reader as: %s", got)
		}
		if ok, _ := w.chats.Store().IsMember(ctx, c.ID, petrova.ID); ok {
			t.Fatal("entering made a member")
		}
		got, err := w.chats.Get(ctx, 0, c.ID)
		if err != nil || got.IsMember(petrova.ID) || len(got.Members) != 2 {
			t.Fatalf("members after a reader entered: %+v %v", got, err)
		}
		i.Send(`<iq type='get' id='ml' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query></iq>`)
		if list := i.Expect("id='ml'", "type='result'"); strings.Contains(list, "petrova@") || !strings.Contains(list, "smirnov@") {
			t.Fatalf("member list: %s", list)
		}
		// The room's archive is empty to a reader (not an error).
		p.Send(`<iq type='set' id='mam' to='` + room + `'><query xmlns='urn:xmpp:mam:2'/></iq>`)
		if fin := p.Expect("id='mam'"); !strings.Contains(fin, "type='result'") || !strings.Contains(fin, "complete='true'") {
			t.Fatalf("a reader's archive query: %s", fin)
		}
		if seen := strings.Join(p.Seen, "\n"); strings.Contains(seen, "до читателя") {
			t.Fatalf("a reader got archived messages: %s", seen)
		}

		// Live messages reach the reader; a membership notice does not
		// (XMPP says it natively), a plain system message does.
		s.Send(`<message to='` + room + `' type='groupchat' id='s1'><body>для всех</body></message>`)
		p.Expect("для всех", "from='"+room+"/Алексей'")
		if _, err := w.chats.AddMembers(ctx, 0, c.ID, []int64{popov.ID}, nil, false); err != nil {
			t.Fatal(err)
		}
		if _, err := w.chats.PostMessage(ctx, c.ID, 0, "Системное", true); err != nil {
			t.Fatal(err)
		}
		p.Expect("Системное", "system='true'")
		i.Expect("Системное")
		s.Expect("Системное")
		for _, who := range []*client{p, i, s} {
			if seen := strings.Join(who.Seen, "\n"); strings.Contains(seen, "joined the chat") {
				t.Fatalf("an occupant got the joined notice: %s", seen)
			}
		}
		if page, err := w.archive.Query(ctx, mam.Query{Viewer: ivanov.ID, ChatID: c.ID, Limit: 10}); err != nil || !archived(page, "joined the chat") {
			t.Fatalf("the notice is not archived: %+v %v", page, err)
		}

		// After leaving the reader gets nothing: no copies, no archive.
		p.Send(`<presence type='unavailable' to='` + room + `/Мария'/>`)
		p.Expect("type='unavailable'", "code='110'")
		s.Send(`<message to='` + room + `' type='groupchat' id='s2'><body>без читателя</body></message>`)
		i.Expect("без читателя")
		p.ExpectNone(300*time.Millisecond, "без читателя")
		if page, err := w.archive.Query(ctx, mam.Query{Viewer: petrova.ID, ChatID: c.ID, Limit: 10}); err != nil || len(page.Messages) != 0 {
			t.Fatalf("a reader's archive: %+v %v", page, err)
		}

		// Back in, her first message makes her a member: her presence
		// says so first, to her (110) and to the others, then the message.
		join(p, room, "Мария")
		p.Expect("<subject")
		i.Expect("from='"+room+"/Мария'", "affiliation='none'", "role='participant'")
		p.Seen, i.Seen = nil, nil
		p.Send(`<message to='` + room + `' type='groupchat' id='p1'><body>теперь я с вами</body></message>`)
		if first := p.Next(); !strings.Contains(first, "affiliation='member'") || !strings.Contains(first, "code='110'") {
			t.Fatalf("first stanza after the first message: %s", first)
		}
		p.Expect("теперь я с вами", "id='p1'")
		if first := i.Next(); !strings.Contains(first, "from='"+room+"/Мария'") || !strings.Contains(first, "affiliation='member'") || strings.Contains(first, "code='110'") {
			t.Fatalf("the owner's first stanza: %s", first)
		}
		i.Expect("теперь я с вами")
		if ok, _ := w.chats.Store().IsMember(ctx, c.ID, petrova.ID); !ok {
			t.Fatal("the first message did not make a member")
		}

		// kozlov reads, then bookmarks the room with autojoin: a member.
		k := w.login(t, "kozlov", "x")
		join(k, room, "Козлов")
		k.Expect("<subject")
		k.Seen = nil
		k.Send(`<iq type='set' id='bm'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:bookmarks:1'><item id='` + room + `'>
			<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'><nick>Козлов</nick></conference></item></publish></pubsub></iq>`)
		k.Expect("from='"+room+"/Козлов'", "affiliation='member'", "code='110'")
		k.Expect("id='bm'", "type='result'")
		i.Expect("from='"+room+"/Козлов'", "affiliation='member'")
		if ok, _ := w.chats.Store().IsMember(ctx, c.ID, w.user(t, "kozlov").ID); !ok {
			t.Fatal("a bookmark with autojoin did not make a member")
		}

		// novikova reads; the owner grants her membership: the presence
		// names him (nick; his address only to moderators), before the result.
		n := w.login(t, "novikova", "x")
		join(n, room, "Новикова")
		i.Expect("from='"+room+"/Новикова'", "affiliation='none'")
		i.Seen = nil
		i.Send(`<iq type='set' id='grant' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' nick='Новикова'/></query></iq>`)
		if first := i.Next(); !strings.Contains(first, "from='"+room+"/Новикова'") || !strings.Contains(first, "affiliation='member'") ||
			!strings.Contains(first, "<actor") || !strings.Contains(first, "nick='Иван'") || !strings.Contains(first, "jid='ivanov@") {
			t.Fatalf("the owner's first stanza after a grant: %s", first)
		}
		i.Expect("id='grant'", "type='result'")
		got2 := n.Expect("from='"+room+"/Новикова'", "affiliation='member'", "code='110'")
		if !strings.Contains(got2, "<actor nick='Иван'") || strings.Contains(got2, "jid='ivanov@") {
			t.Fatalf("the grantee's presence: %s", got2)
		}
		if ok, _ := w.chats.Store().IsMember(ctx, c.ID, w.user(t, "novikova").ID); !ok {
			t.Fatal("the grant did not make a member")
		}
		// Granting it again re-announces it.
		i.Send(`<iq type='set' id='grant2' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' nick='Новикова'/></query></iq>`)
		i.Expect("from='"+room+"/Новикова'", "affiliation='member'", "<actor")
		i.Expect("id='grant2'", "type='result'")

		// The chat turns closed: the readers left are taken out (322).
		r := w.login(t, "fedorov", "x")
		join(r, room, "Фёдор")
		submitConfig(i, room, "close", `<field var='muc#roomconfig_membersonly'><value>1</value></field>`)
		out := r.Expect("type='unavailable'", "code='322'")
		if !strings.Contains(out, "affiliation='none'") || !strings.Contains(out, "role='none'") || !strings.Contains(out, "code='110'") {
			t.Fatalf("a reader of a chat that closed: %s", out)
		}
		n.Expect("from='"+room+"/Фёдор'", "code='322'")
		if occ := w.chats.Occupants(c.ID); len(occ) != 5 {
			t.Fatalf("occupants after the chat closed: %v", occ)
		}
	})
}

// Registration reserves a member's nick (XEP-0045 §7.10): the presence is
// re-announced before the result, the nick is in the member list and in
// x-roomuser-item, and nobody else may take it; a reader may not
// register (registration-required, as Prosody by default).
func TestRoomRegistrationReservesNick(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		ivanov, smirnov := w.user(t, "ivanov"), w.user(t, "smirnov")
		c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "Ники", Type: muc.TypeOpen, OwnerID: ivanov.ID, Members: []int64{smirnov.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := w.chats.RoomJID(c)
		i := w.login(t, "ivanov", "x")
		join(i, room, "Иван")
		s := w.login(t, "smirnov", "x")
		join(s, room, "Лёша")
		s.Expect("<subject")
		s.Seen = nil
		s.Send(`<iq type='set' id='reg' to='` + room + `'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>
			<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>
			<field var='muc#register_roomnick'><value>Алексей</value></field></x></query></iq>`)
		if first := s.Next(); !strings.Contains(first, "<presence") || !strings.Contains(first, "affiliation='member'") || !strings.Contains(first, "code='110'") {
			t.Fatalf("first stanza after registering: %s", first)
		}
		s.Expect("id='reg'", "type='result'")
		s.Send(`<iq type='get' id='nick' to='` + room + `'><query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/></iq>`)
		s.Expect("id='nick'", "name='Алексей'")
		i.Send(`<iq type='get' id='ml' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query></iq>`)
		i.Expect("id='ml'", "nick='Алексей'")

		// Someone else may not take the reserved nick.
		p := w.login(t, "petrova", "x")
		p.Send(`<presence to='` + room + `/Алексей'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		p.Expect("type='error'", "conflict")
		// A reader may not register.
		join(p, room, "Мария")
		p.Send(`<iq type='get' id='rg' to='` + room + `'><query xmlns='jabber:iq:register'/></iq>`)
		p.Expect("id='rg'", "type='error'", "registration-required")
		// The owner reserving her nick for another kicks whoever uses it.
		i.Send(`<iq type='set' id='res' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='kozlov@` + domain + `' nick='Мария'/></query></iq>`)
		out := p.Expect("type='unavailable'", "code='307'")
		if !strings.Contains(out, "This nickname is reserved") {
			t.Fatalf("evicted presence: %s", out)
		}
		i.Expect("id='res'", "type='result'")
		// An absent member with a reserved nick answers a probe.
		i.Send(`<presence type='probe' to='` + room + `/Мария'/>`)
		if pr := i.Expect("from='"+room+"/Мария'", "type='unavailable'", "role='none' nick='Мария'"); !strings.Contains(pr, "affiliation='member'") || !strings.Contains(pr, "jid='kozlov@") {
			t.Fatalf("probe of an absent member: %s", pr)
		}
	})
}

func archived(page *mam.Page, body string) bool {
	for _, m := range page.Messages {
		if strings.Contains(m.Body, body) {
			return true
		}
	}
	return false
}

// In a cluster a reader's own node announces their membership when
// another node made it: petrova reads through node A, joins through node
// B (REST, the web client); the owner on B and she on A see her presence
// with affiliation member. A chat closed or a member removed on node B
// takes the reader (322) and the member (321) out on node A.
func TestReaderJoinsOnAnotherNode(t *testing.T) {
	db := dbtest.Open(t, migrations.Postgres)
	ctx := context.Background()
	a := newClusterWorld(t, db, "rd_a")
	b := newClusterWorld(t, db, "rd_b")
	ivanov, petrova := a.user(t, "ivanov"), a.user(t, "petrova")
	c, err := a.chats.Create(ctx, 0, muc.NewChat{Title: "Общий", Type: muc.TypeOpen, OwnerID: ivanov.ID})
	if err != nil {
		t.Fatal(err)
	}
	room := a.chats.RoomJID(c)
	i := b.login(t, "ivanov", "pc")
	join(i, room, "Иван")
	p := a.login(t, "petrova", "pc")
	if self := join(p, room, "Мария"); !strings.Contains(self, "affiliation='none'") {
		t.Fatalf("reader's self-presence: %s", self)
	}
	i.Expect("from='"+room+"/Мария'", "affiliation='none'")
	if _, err := b.chats.Join(ctx, petrova.ID, c.ID, ""); err != nil {
		t.Fatal(err)
	}
	p.Expect("from='"+room+"/Мария'", "affiliation='member'", "code='110'")
	i.Expect("from='"+room+"/Мария'", "affiliation='member'")
	i.ExpectNone(300*time.Millisecond, "<message id='aff-")

	// Node B closes the chat: the reader on node A is taken out (322);
	// node B removes petrova: she leaves the room on node A (321).
	k := a.login(t, "kozlov", "pc")
	join(k, room, "Козлов")
	i.Expect("from='"+room+"/Козлов'", "affiliation='none'")
	closed := muc.TypeClosed
	if _, err := b.chats.Update(ctx, ivanov.ID, c.ID, muc.Update{Type: &closed}); err != nil {
		t.Fatal(err)
	}
	k.Expect("type='unavailable'", "code='322'", "code='110'")
	if err := b.chats.RemoveMember(ctx, ivanov.ID, c.ID, petrova.ID); err != nil {
		t.Fatal(err)
	}
	p.Expect("type='unavailable'", "code='321'", "code='110'")
	deadline := time.Now().Add(3 * time.Second)
	for len(a.chats.Occupants(c.ID)) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if occ := a.chats.Occupants(c.ID); len(occ) != 0 {
		t.Fatalf("node A's occupants of the closed chat: %v", occ)
	}
}

// A room created by joining is semi-anonymous unless its form says
// whois anyone: real JIDs in presence reach the owner only; several
// sessions under one nick are one presence listing each; with
// presencebroadcast "none" a joiner sees the absent members by their
// reserved nick; a description change reaches occupants as the subject,
// not also as a notice.
func TestSemiAnonymousRoomAndAbsentMembers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		o := w.login(t, "petrova", "pc")
		room := "porch@conference." + domain
		join(o, room, "Owner")
		submitConfig(o, room, "cfg", `<field var='muc#roomconfig_presencebroadcast'><value>moderator</value><value>participant</value><value>none</value></field>`)
		o.Send(`<iq type='get' id='info' to='` + room + `'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		if info := o.Expect("id='info'", "type='result'"); !strings.Contains(info, "muc_semianonymous") {
			t.Fatalf("disco#info of a room created by joining: %s", info)
		}
		s := w.login(t, "smirnov", "pc")
		join(s, room, "Лёша")
		if own := o.Expect("from='"+room+"/Лёша'", "muc#user"); !strings.Contains(own, "jid='smirnov@") {
			t.Fatalf("the owner sees: %s", own)
		}
		k := w.login(t, "kozlov", "pc")
		join(k, room, "Козлов")
		for _, st := range k.Seen {
			if strings.Contains(st, "from='"+room+"/Owner'") && strings.Contains(st, "jid=") {
				t.Fatalf("a participant saw the owner's JID: %s", st)
			}
		}
		// A second session of smirnov under his nick: one presence, both items.
		s2 := w.login(t, "smirnov", "phone")
		// The new session gets no presence of its own nick's other
		// session: its self-presence lists both.
		if self2 := join(s2, room, "Лёша"); strings.Count(self2, "<item") != 2 {
			t.Fatalf("self-presence of a second session: %s", self2)
		}
		for _, st := range s2.Seen {
			if strings.Contains(st, "from='"+room+"/Лёша'") {
				t.Fatalf("a second session got its nick's presence before its own: %s", st)
			}
		}
		both := o.Expect("from='"+room+"/Лёша'", "muc#user", "</item><item")
		if strings.Count(both, "jid='smirnov@") != 2 {
			t.Fatalf("one nick, two sessions: %s", both)
		}
		// smirnov becomes a member and reserves his nick, then leaves: a
		// joiner gets his absent presence (unavailable, role none).
		speak(s, room, "Лёша")
		s.Send(`<iq type='set' id='reg' to='` + room + `'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>
			<field var='muc#register_roomnick'><value>Лёша</value></field></x></query></iq>`)
		s.Expect("id='reg'", "type='result'")
		for _, cl := range []*client{s, s2} {
			cl.Send(`<presence type='unavailable' to='` + room + `/Лёша'/>`)
			cl.Expect("type='unavailable'", "code='110'")
		}
		n := w.login(t, "novikova", "pc")
		join(n, room, "Нина")
		absent := ""
		for _, st := range n.Seen {
			if strings.Contains(st, "from='"+room+"/Лёша'") {
				absent = st
			}
		}
		if !strings.Contains(absent, "type='unavailable'") || !strings.Contains(absent, "affiliation='member'") ||
			!strings.Contains(absent, "role='none'") || strings.Contains(absent, "jid=") {
			t.Fatalf("absent member to a participant: %q", absent)
		}
		// Coming back, he is not told of himself as absent.
		join(s, room, "Лёша")
		for _, st := range s.Seen {
			if strings.Contains(st, "from='"+room+"/Лёша'") && strings.Contains(st, "type='unavailable'") {
				t.Fatalf("a member was told he is absent: %s", st)
			}
		}
		// The description: the subject, and no notice body.
		o.Send(`<message to='` + room + `' type='groupchat'><subject>Новая тема</subject></message>`)
		n.Expect("<subject>Новая тема</subject>")
		n.ExpectNone(300*time.Millisecond, "changed the chat")
	})
}

// In a moderated room a reader enters without voice (visitor) and cannot
// post; a nick change keeps the role and names the new nick in the item;
// being made a member gives voice.
func TestModeratedRoomReaders(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		o := w.login(t, "petrova", "pc")
		room := "stage@conference." + domain
		join(o, room, "Owner")
		submitConfig(o, room, "cfg", `<field var='muc#roomconfig_moderatedroom'><value>1</value></field>`)
		k := w.login(t, "kozlov", "pc")
		if self := join(k, room, "Козлов"); !strings.Contains(self, "role='visitor'") || !strings.Contains(self, "affiliation='none'") {
			t.Fatalf("a reader of a moderated room: %s", self)
		}
		k.Send(`<message to='` + room + `' type='groupchat' id='m1'><body>можно?</body></message>`)
		k.Expect("id='m1'", "type='error'", "forbidden")
		k.Send(`<presence to='` + room + `/Коля'/>`)
		if gone := k.Expect("from='"+room+"/Козлов'", "type='unavailable'", "code='303'"); !strings.Contains(gone, "<item affiliation='none' role='visitor'") ||
			!strings.Contains(gone, "nick='Коля'></item>") || strings.Contains(gone, "code='303' nick=") {
			t.Fatalf("nick change of a visitor: %s", gone)
		}
		k.Expect("from='"+room+"/Коля'", "code='110'", "role='visitor'")
		o.Send(`<iq type='set' id='grant' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='kozlov@` + domain + `'/></query></iq>`)
		k.Expect("from='"+room+"/Коля'", "affiliation='member'", "role='participant'", "code='110'")
		o.Expect("id='grant'", "type='result'")
		k.Send(`<message to='` + room + `' type='groupchat' id='m2'><body>спасибо</body></message>`)
		k.Expect("id='m2'", "спасибо")
	})
}
