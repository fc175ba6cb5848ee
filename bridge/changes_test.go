package bridge

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/xmpptest"
)

// tcpEnv is newXMPPEnv with the XMPP server also listening on TCP, so
// that real Jabber clients (xmpptest: mellium over STARTTLS and SCRAM)
// and browsers meet in one server.
type tcpEnv struct {
	*env
	svc  *muc.Service
	addr string
	xs   *xmppcore.Server
}

func newTCPEnv(t *testing.T, db *sqlx.DB) *tcpEnv {
	t.Helper()
	users := roster.NewStore(db)
	if _, err := users.Import(context.Background(), roster.DemoSnapshot(), false); err != nil {
		t.Fatalf("demo import: %v", err)
	}
	arch := mam.NewStore(db)
	srv := xmppcore.NewServer(db, users, arch, xmppcore.Options{Domain: "localhost", TLSConfig: xmpptest.SelfSigned(t, "localhost"), AuthFailureDelay: -1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeC2S(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	chats := muc.NewStore(db)
	svc := muc.New(chats, srv, arch, users, muc.Options{Domain: "localhost"})
	svc.Register(srv)
	return &tcpEnv{env: newEnv(t, db, XMPP(srv, users, chats, svc, arch, nil)), svc: svc, addr: ln.Addr().String(), xs: srv}
}

// jabber logs a Jabber client in as login@localhost/resource, available.
func (e *tcpEnv) jabber(login, resource string) *xmpptest.Client {
	e.t.Helper()
	c := xmpptest.Dial(e.t, e.addr, login+"@localhost", resource, roster.DemoPassword)
	c.Send(`<presence/>`)
	c.Send(`<iq type='get' id='ready' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`)
	c.Expect("id='ready'")
	return c
}

// browser signs login in to the web client and says hello.
func (e *tcpEnv) browser(login string) *wsConn {
	e.t.Helper()
	w, _, err := e.dial(e.login(login), e.srv.URL)
	if err != nil {
		e.t.Fatal(err)
	}
	w.hello(0)
	return w
}

func frameOf(typ string, id float64) func(map[string]any) bool {
	return func(f map[string]any) bool {
		m, _ := f["message"].(map[string]any)
		return f["type"] == typ && m != nil && m["id"] == id
	}
}

// TestCorrectionFromJabber: what Dino, Gajim and Conversations send — a
// XEP-0308 correction naming the original by its stanza id, then a
// XEP-0424 retraction with its fallback body — changes the archived
// message (no new one is stored), reaches the browsers of both parties
// and the other Jabber client live, and MAM shows the current state.
func TestCorrectionFromJabber(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newTCPEnv(t, db)
		ctx := context.Background()
		ivanov, petrova := e.user("ivanov"), e.user("petrova")
		dino := e.jabber("ivanov", "dino")
		gajim := e.jabber("petrova", "gajim")
		wp := e.browser("petrova")
		wi := e.browser("ivanov")

		dino.Send(`<message to='petrova@localhost' type='chat' id='dino-1'><body>Встреча в 15:00</body><origin-id xmlns='urn:xmpp:sid:0' id='dino-1'/><request xmlns='urn:xmpp:receipts'/></message>`)
		id := wp.expectMsg("Встреча в 15:00")["id"].(float64)
		gajim.Expect("id='dino-1'", "Встреча в 15:00")

		dino.Send(`<message to='petrova@localhost' type='chat' id='dino-2'><body>Встреча в 16:00</body><replace xmlns='urn:xmpp:message-correct:0' id='dino-1'/><origin-id xmlns='urn:xmpp:sid:0' id='dino-2'/></message>`)
		ed := wp.expectFrame(frameOf("edited", id), "edited in petrova's browser")["message"].(map[string]any)
		if ed["body"] != "Встреча в 16:00" || ed["edited"] != true || ed["from"] != float64(ivanov.ID) {
			t.Fatalf("edited frame: got %v", ed)
		}
		// The author's own browser hears of it (a carbon of what Dino sent).
		wi.expectFrame(frameOf("edited", id), "edited in ivanov's browser")
		got := gajim.Expect("<replace xmlns='urn:xmpp:message-correct:0' id='dino-1'>", "Встреча в 16:00")
		if !strings.Contains(got, "from='"+dino.JID.String()+"'") {
			t.Fatalf("correction to gajim: got %s", got)
		}
		m, err := e.arch.Get(ctx, int64(id))
		if err != nil || m.Body != "Встреча в 16:00" || m.EditedAt == nil {
			t.Fatalf("archive after the correction: %+v %v", m, err)
		}
		if n := countMessages(t, db, ivanov.ID, petrova.ID); n != 1 {
			t.Fatalf("the correction was archived as a message: %d messages, want 1", n)
		}
		// MAM gives the current body, marked edited.
		gajim.Send(`<iq type='set' id='q1'><query xmlns='urn:xmpp:mam:2' queryid='q1'/></iq>`)
		res := gajim.Expect("queryid='q1'")
		if !strings.Contains(res, "Встреча в 16:00") || !strings.Contains(res, "<edited xmlns='urn:vestnik:message:0'") {
			t.Fatalf("MAM after the correction: got %s", res)
		}
		gajim.Expect("id='q1'", "<fin")

		// Petrova cannot correct Ivanov's message, from any door.
		gajim.Send(`<message to='ivanov@localhost' type='chat' id='g-1'><body>взлом</body><replace xmlns='urn:xmpp:message-correct:0' id='dino-1'/></message>`)
		gajim.Expect("type='error'", "id='g-1'", "item-not-found")
		fid := wp.send(Frame{"type": "edit", "message_id": id, "body": "взлом"})
		if f := wp.expect("error", fid); f["code"] != "forbidden" {
			t.Fatalf("browser edit of another's message: got %v", f)
		}
		if m, _ := e.arch.Get(ctx, int64(id)); m.Body != "Встреча в 16:00" {
			t.Fatalf("refused edits changed the message: %q", m.Body)
		}

		// XEP-0424 retraction, as Gajim and Conversations send it.
		dino.Send(`<message to='petrova@localhost' type='chat' id='dino-3'><body>(retracted)</body><retract xmlns='urn:xmpp:message-retract:1' id='dino-1'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/><store xmlns='urn:xmpp:hints'/></message>`)
		del := wp.expectFrame(frameOf("deleted", id), "deleted in petrova's browser")["message"].(map[string]any)
		if del["deleted"] != true || del["body"] != "" {
			t.Fatalf("deleted frame: got %v", del)
		}
		gajim.Expect("<retract xmlns='urn:xmpp:message-retract:1' id='dino-1'>")
		m, err = e.arch.Get(ctx, int64(id))
		if err != nil || !m.Deleted || m.Body != "" {
			t.Fatalf("archive after the retraction: %+v %v", m, err)
		}
		if n := countMessages(t, db, ivanov.ID, petrova.ID); n != 1 {
			t.Fatalf("the retraction was archived as a message: %d messages, want 1", n)
		}
		gajim.Send(`<iq type='set' id='q2'><query xmlns='urn:xmpp:mam:2' queryid='q2'/></iq>`)
		res = gajim.Expect("queryid='q2'")
		if !strings.Contains(res, "<retracted xmlns='urn:xmpp:message-retract:1'") || strings.Contains(res, "Встреча") {
			t.Fatalf("MAM after the retraction: got %s", res)
		}
		// A retracted message stays retracted.
		dino.Send(`<message to='petrova@localhost' type='chat' id='dino-4'><body>снова</body><replace xmlns='urn:xmpp:message-correct:0' id='dino-1'/></message>`)
		dino.Expect("type='error'", "id='dino-4'", "not-allowed")
	})
}

// TestCorrectionInChat: the same from a Jabber client in a room: the
// correction names the original by the id the room gave it, reaches the
// members' browsers, and only the author may send it.
func TestCorrectionInChat(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newTCPEnv(t, db)
		ctx := context.Background()
		ivanov, petrova := e.user("ivanov"), e.user("petrova")
		chat, err := e.svc.Create(ctx, ivanov.ID, muc.NewChat{Title: "Продажи", Color: "GREEN", Type: "closed", Members: []int64{petrova.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := chat.Room + "@conference.localhost"
		dino := e.jabber("ivanov", "dino")
		dino.Send(`<presence to='` + room + `/Иван'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		dino.Expect("<subject")
		conv := e.jabber("petrova", "conversations")
		conv.Send(`<presence to='` + room + `/Петрова'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		conv.Expect("<subject")
		wp := e.browser("petrova")
		// The room tells clients it keeps retractions and bounds reactions.
		dino.Send(`<iq type='get' id='di' to='` + room + `'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		di := dino.Expect("id='di'")
		if !strings.Contains(di, "var='urn:xmpp:message-retract:1'") || !regexp.MustCompile(`urn:xmpp:reactions:0:restrictions.*var='max_reactions_per_user'[^>]*><value>10</value>`).MatchString(di) {
			t.Fatalf("room disco#info: got %s", di)
		}

		dino.Send(`<message to='` + room + `' type='groupchat' id='m-1'><body>План на неделю</body><origin-id xmlns='urn:xmpp:sid:0' id='m-1'/></message>`)
		id := wp.expectMsg("План на неделю")["id"].(float64)
		conv.Expect("id='m-1'", "План на неделю")
		dino.Send(`<message to='` + room + `' type='groupchat' id='m-2'><body>План на месяц</body><replace xmlns='urn:xmpp:message-correct:0' id='m-1'/></message>`)
		ed := wp.expectFrame(frameOf("edited", id), "edited in the chat")["message"].(map[string]any)
		if ed["body"] != "План на месяц" || ed["chat"] != float64(chat.ID) {
			t.Fatalf("edited frame: got %v", ed)
		}
		got := conv.Expect("<replace xmlns='urn:xmpp:message-correct:0' id='m-1'>")
		if !strings.Contains(got, "from='"+room+"/Иван'") || !strings.Contains(got, "План на месяц") {
			t.Fatalf("correction in the room: got %s", got)
		}
		// Dino gets its own correction back, as rooms reflect messages.
		dino.Expect("id='m-2'", "<replace")
		// Petrova may not correct it, nor retract it by the room's id.
		conv.Send(`<message to='` + room + `' type='groupchat' id='p-1'><body>нет</body><replace xmlns='urn:xmpp:message-correct:0' id='m-1'/></message>`)
		conv.Expect("type='error'", "id='p-1'")
		conv.Send(fmt.Sprintf(`<message to='%s' type='groupchat' id='p-2'><retract xmlns='urn:xmpp:message-retract:1' id='%d'/></message>`, room, int64(id)))
		conv.Expect("type='error'", "id='p-2'")
		// The author retracts it by the room's stanza-id (XEP-0424 in rooms).
		dino.Send(fmt.Sprintf(`<message to='%s' type='groupchat' id='m-3'><body>.</body><retract xmlns='urn:xmpp:message-retract:1' id='%d'/></message>`, room, int64(id)))
		wp.expectFrame(frameOf("deleted", id), "deleted in the chat")
		conv.Expect(fmt.Sprintf("<retract xmlns='urn:xmpp:message-retract:1' id='%d'>", int64(id)))
		if m, err := e.arch.Get(ctx, int64(id)); err != nil || !m.Deleted || m.Body != "" {
			t.Fatalf("archive after the retraction: %+v %v", m, err)
		}
		var n int
		if err := db.Get(&n, db.Rebind(`SELECT COUNT(*) FROM messages WHERE chat_id = ? AND kind = 'groupchat'`), chat.ID); err != nil || n != 1 {
			t.Fatalf("chat messages archived: %d %v, want 1", n, err)
		}
	})
}

// TestReactionsAcrossDoors: a reaction from the browser is seen live by
// Jabber clients (personal and in a room) and by the other browser, one
// from a Jabber client by the browsers, and history after a reconnect
// carries them; someone who cannot read the message cannot react.
func TestReactionsAcrossDoors(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newTCPEnv(t, db)
		ctx := context.Background()
		ivanov, petrova := e.user("ivanov"), e.user("petrova")
		chat, err := e.svc.Create(ctx, ivanov.ID, muc.NewChat{Title: "Обед", Color: "GREEN", Type: "closed", Members: []int64{petrova.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := chat.Room + "@conference.localhost"
		conv := e.jabber("petrova", "conversations")
		conv.Send(`<presence to='` + room + `/Петрова'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		conv.Expect("<subject")
		wi := e.browser("ivanov")
		wp := e.browser("petrova")

		// Personal: Petrova's Jabber client sends, Ivanov reacts in the browser.
		conv.Send(`<message to='ivanov@localhost' type='chat' id='c-1'><body>Пицца?</body><origin-id xmlns='urn:xmpp:sid:0' id='c-1'/></message>`)
		pid := wi.expectMsg("Пицца?")["id"].(float64)
		d := wi.call(Frame{"type": "react", "message_id": pid, "reactions": []string{"👍"}})
		if fmt.Sprint(d["reactions"]) != fmt.Sprintf("[map[emoji:👍 users:[%d]]]", ivanov.ID) {
			t.Fatalf("react ack: got %v", d)
		}
		got := conv.Expect("<reactions xmlns='urn:xmpp:reactions:0' id='c-1'>")
		if !strings.Contains(got, "<reaction>👍</reaction>") || !strings.Contains(got, "from='ivanov@localhost/") {
			t.Fatalf("reaction to the Jabber client: got %s", got)
		}
		// Petrova's browser sees it too (a carbon of the routed message).
		wp.expectFrame(func(f map[string]any) bool { return f["type"] == "reactions" && f["message_id"] == pid }, "reactions in petrova's browser")

		// In the chat: Ivanov's browser posts and reacts, the occupant sees it.
		cid := wi.call(Frame{"type": "send", "to": Frame{"chat": chat.ID}, "body": "Кто идёт?"})["message"].(map[string]any)["id"].(float64)
		conv.Expect("Кто идёт?")
		wi.call(Frame{"type": "react", "message_id": cid, "reactions": []string{"🍕", "👍"}})
		got = conv.Expect(fmt.Sprintf("<reactions xmlns='urn:xmpp:reactions:0' id='%d'>", int64(cid)))
		if !strings.Contains(got, "<reaction>🍕</reaction><reaction>👍</reaction>") || !strings.Contains(got, "from='"+room+"/") {
			t.Fatalf("reaction in the room: got %s", got)
		}
		// The occupant reacts (XEP-0444 names room messages by stanza-id).
		conv.Send(fmt.Sprintf(`<message to='%s' type='groupchat' id='r-1'><reactions xmlns='urn:xmpp:reactions:0' id='%d'><reaction>👍</reaction></reactions><store xmlns='urn:xmpp:hints'/></message>`, room, int64(cid)))
		f := wi.expectFrame(func(f map[string]any) bool {
			return f["type"] == "reactions" && f["message_id"] == cid && strings.Contains(fmt.Sprint(f["reactions"]), fmt.Sprint(petrova.ID))
		}, "petrova's reaction in ivanov's browser")
		want := fmt.Sprintf("[map[emoji:🍕 users:[%d]] map[emoji:👍 users:[%d %d]]]", ivanov.ID, ivanov.ID, petrova.ID)
		if fmt.Sprint(f["reactions"]) != want || f["chat"] != float64(chat.ID) {
			t.Fatalf("reactions frame: got %v, want %s", f, want)
		}

		// After a reconnect, history carries them.
		wi.ws.Close()
		wi2 := e.browser("ivanov")
		h := wi2.call(Frame{"type": "history", "with": Frame{"chat": chat.ID}})
		msgs := h["messages"].([]any)
		last := msgs[len(msgs)-1].(map[string]any)
		if last["id"] != cid || fmt.Sprint(last["reactions"]) != want {
			t.Fatalf("history after reconnect: got %v, want reactions %s", last, want)
		}
		h = wi2.call(Frame{"type": "history", "with": Frame{"user": petrova.ID}})
		pm := h["messages"].([]any)[0].(map[string]any)
		if fmt.Sprint(pm["reactions"]) != fmt.Sprintf("[map[emoji:👍 users:[%d]]]", ivanov.ID) {
			t.Fatalf("personal history: got %v", pm)
		}

		// Someone outside the chat cannot react, from the browser or XMPP.
		wa := e.browser("alice")
		fid := wa.send(Frame{"type": "react", "message_id": cid, "reactions": []string{"👎"}})
		if f := wa.expect("error", fid); f["code"] != "not_found" {
			t.Fatalf("non-member reaction: got %v", f)
		}
		alice := e.jabber("alice", "gajim")
		alice.Send(fmt.Sprintf(`<message to='ivanov@localhost' type='chat' id='a-1'><reactions xmlns='urn:xmpp:reactions:0' id='%d'><reaction>👎</reaction></reactions></message>`, int64(pid)))
		alice.Expect("type='error'", "id='a-1'", "item-not-found")
		// Too many reactions are refused and change nothing.
		fid = wi2.send(Frame{"type": "react", "message_id": cid, "reactions": strings.Split("1 2 3 4 5 6 7 8 9 A B", " ")})
		if f := wi2.expect("error", fid); f["code"] != "invalid" {
			t.Fatalf("eleven reactions: got %v", f)
		}
		rs, err := e.arch.Reactions(ctx, []int64{int64(cid)})
		if err != nil || len(rs[int64(cid)]) != 2 {
			t.Fatalf("stored reactions: got %v %v", rs, err)
		}
	})
}

func countMessages(t *testing.T, db *sqlx.DB, a, b int64) int {
	t.Helper()
	var n int
	if err := db.Get(&n, db.Rebind(`SELECT COUNT(*) FROM messages WHERE pair_lo = ? AND pair_hi = ?`), min(a, b), max(a, b)); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRepliesAcrossDoors: XEP-0461 replies from Jabber clients (with the
// quote fallback Conversations puts in the body) reach the browser as
// reply_to with the quote taken off, and the browser's replies reach
// Jabber clients as <reply/> naming the message the way they know it; a
// reply to a message one cannot see is refused.
func TestRepliesAcrossDoors(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newTCPEnv(t, db)
		ctx := context.Background()
		ivanov, petrova := e.user("ivanov"), e.user("petrova")
		chat, err := e.svc.Create(ctx, ivanov.ID, muc.NewChat{Title: "Планёрка", Color: "GREEN", Type: "closed", Members: []int64{petrova.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := chat.Room + "@conference.localhost"
		dino := e.jabber("ivanov", "dino")
		conv := e.jabber("petrova", "conversations")
		conv.Send(`<presence to='` + room + `/Петрова'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		conv.Expect("<subject")
		wi := e.browser("ivanov")

		// Personal: Ivanov's Dino asks, Petrova's Conversations answers with a quote.
		dino.Send(`<message to='petrova@localhost' type='chat' id='d-1'><body>Когда встреча?</body></message>`)
		q := wi.expectMsg("Когда встреча?")["id"].(float64)
		conv.Expect("id='d-1'")
		quote := "> Когда встреча?\n"
		conv.Send(fmt.Sprintf(`<message to='ivanov@localhost' type='chat' id='c-1'><body>%sВ три</body><reply xmlns='urn:xmpp:reply:0' to='ivanov@localhost' id='d-1'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='%d'/></fallback></message>`,
			quote, len([]rune(quote))))
		got := wi.expectMsg("В три")
		if got["reply_to"] != q {
			t.Fatalf("reply in the browser: got %v, want reply_to %v", got, q)
		}
		answer := got["id"].(float64)
		dino.Expect("id='c-1'", "<reply xmlns='urn:xmpp:reply:0' to='ivanov@localhost' id='d-1'>", fmt.Sprintf("<reply-to xmlns='urn:vestnik:message:0' id='%d'>", int64(q)))
		// The browser answers the answer; Conversations sees whom.
		d := wi.call(Frame{"type": "send", "to": Frame{"user": petrova.ID}, "body": "Договорились", "reply_to": answer})
		if d["message"].(map[string]any)["reply_to"] != answer {
			t.Fatalf("send ack: got %v", d)
		}
		conv.Expect("Договорились", "<reply xmlns='urn:xmpp:reply:0' to='petrova@localhost' id='c-1'>")
		if m, err := e.arch.Get(ctx, int64(answer)); err != nil || m.ReplyTo != int64(q) {
			t.Fatalf("archived reply: %+v %v", m, err)
		}

		// In the room: the browser posts, the occupant replies by stanza-id, the browser replies back.
		x := wi.call(Frame{"type": "send", "to": Frame{"chat": chat.ID}, "body": "Повестка?"})["message"].(map[string]any)["id"].(float64)
		conv.Expect("Повестка?")
		conv.Send(fmt.Sprintf(`<message to='%s' type='groupchat' id='c-2'><body>Бюджет</body><reply xmlns='urn:xmpp:reply:0' to='%s/Иванов' id='%d'/></message>`, room, room, int64(x)))
		got = wi.expectMsg("Бюджет")
		if got["reply_to"] != x || got["chat"] != float64(chat.ID) {
			t.Fatalf("room reply in the browser: got %v, want reply_to %v", got, x)
		}
		wi.call(Frame{"type": "send", "to": Frame{"chat": chat.ID}, "body": "Принято", "reply_to": got["id"]})
		conv.Expect("Принято", fmt.Sprintf("<reply xmlns='urn:xmpp:reply:0' to='%s/Петрова' id='%d'>", room, int64(got["id"].(float64))))

		// After a reconnect, history keeps the replies, without the quote.
		wi.ws.Close()
		wi2 := e.browser("ivanov")
		h := wi2.call(Frame{"type": "history", "with": Frame{"user": petrova.ID}})
		var found bool
		for _, x := range h["messages"].([]any) {
			m := x.(map[string]any)
			if m["id"] == answer {
				found = m["body"] == "В три" && m["reply_to"] == q
			}
		}
		if !found {
			t.Fatalf("history: no reply %v with its quote taken off in %v", answer, h["messages"])
		}

		// One cannot answer what one cannot see.
		wa := e.browser("alice")
		fid := wa.send(Frame{"type": "send", "to": Frame{"user": ivanov.ID}, "body": "и я", "reply_to": q})
		if f := wa.expect("error", fid); f["code"] != "bad_reply" {
			t.Fatalf("reply to another conversation's message: got %v", f)
		}
		fid = wa.send(Frame{"type": "send", "to": Frame{"chat": chat.ID}, "body": "и я", "reply_to": x})
		if f := wa.expect("error", fid); f["code"] != "forbidden" && f["code"] != "invalid" {
			t.Fatalf("reply in a closed chat by a non-member: got %v", f)
		}
		conv.Send(`<message to='ivanov@localhost' type='chat' id='c-9'><body>?</body><reply xmlns='urn:xmpp:reply:0' to='ivanov@localhost' id='no-such-id'/></message>`)
		conv.Expect("type='error'", "id='c-9'", "not-acceptable")
		conv.Send(`<message to='` + room + `' type='groupchat' id='c-10'><body>?</body><reply xmlns='urn:xmpp:reply:0' id='999999'/></message>`)
		conv.Expect("type='error'", "id='c-10'", "not-acceptable")
	})
}

// TestMentionsInChat: @Full Name and @login in a browser's chat message
// notify those members and reach Jabber clients as XEP-0372 references;
// a Jabber client's reference notifies the browser user; naming an
// employee who left is refused.
func TestMentionsInChat(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newTCPEnv(t, db)
		ctx := context.Background()
		ivanov, petrova, alice := e.user("ivanov"), e.user("petrova"), e.user("alice")
		chat, err := e.svc.Create(ctx, ivanov.ID, muc.NewChat{Title: "Отчёты", Color: "GREEN", Type: "closed", Members: []int64{petrova.ID, alice.ID}})
		if err != nil {
			t.Fatal(err)
		}
		room := chat.Room + "@conference.localhost"
		conv := e.jabber("petrova", "conversations")
		conv.Send(`<presence to='` + room + `/Петрова'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		conv.Expect("<subject")
		wi, wp, wa := e.browser("ivanov"), e.browser("petrova"), e.browser("alice")
		notified := func(w *wsConn, text string) {
			t.Helper()
			w.expectFrame(func(f map[string]any) bool {
				n, _ := f["notification"].(map[string]any)
				// The notification names itself: the bridge finds it by id.
				return f["type"] == "notification" && n != nil && strings.Contains(n["text"].(string), text) && n["id"].(float64) > 0
			}, "notification "+text)
		}

		body := "@мария петрова, посмотри отчёт; @alice тоже"
		id := wi.call(Frame{"type": "send", "to": Frame{"chat": chat.ID}, "body": body})["message"].(map[string]any)["id"].(float64)
		notified(wp, "Иван Иванов mentioned you in «Отчёты»: @мария петрова, посмотри отчёт")
		notified(wa, "Иван Иванов mentioned you")
		at := len([]rune(body[:strings.Index(body, "@alice")]))
		got := conv.Expect("посмотри отчёт")
		for _, want := range []string{
			"<reference xmlns='urn:xmpp:reference:0' type='mention' uri='xmpp:petrova@localhost' begin='0' end='14'>",
			fmt.Sprintf("<reference xmlns='urn:xmpp:reference:0' type='mention' uri='xmpp:alice@localhost' begin='%d' end='%d'>", at, at+6),
		} {
			if !strings.Contains(got, want) {
				t.Fatalf("room message: got %s, want %s", got, want)
			}
		}
		if m, err := e.arch.Get(ctx, int64(id)); err != nil || !strings.Contains(m.Payload, "xmpp:petrova@localhost") {
			t.Fatalf("archived without its references: %+v %v", m, err)
		}

		// A Jabber client's XEP-0372 reference.
		conv.Send(`<message to='` + room + `' type='groupchat' id='c-1'><body>Иван, готово</body><reference xmlns='urn:xmpp:reference:0' type='mention' uri='xmpp:ivanov@localhost' begin='0' end='4'/></message>`)
		notified(wi, "Мария Петрова mentioned you in «Отчёты»: Иван, готово")
		// Someone who left the company cannot be named.
		conv.Send(`<message to='` + room + `' type='groupchat' id='c-2'><body>Пётр?</body><reference xmlns='urn:xmpp:reference:0' type='mention' uri='xmpp:sidorov@localhost' begin='0' end='4'/></message>`)
		conv.Expect("type='error'", "id='c-2'", "not-acceptable", "no longer an active employee")
		// An e-mail address is not a mention, nor is naming oneself.
		wi.call(Frame{"type": "send", "to": Frame{"chat": chat.ID}, "body": "почта: petrova@localhost, а я @ivanov"})
		conv.Expect("почта: petrova@localhost")
		// The author is not told of their own message: Ivanov has one
		// notification (Petrova's), Petrova one (Ivanov's).
		for _, u := range []*roster.User{ivanov, petrova} {
			var n int
			if err := db.Get(&n, db.Rebind(`SELECT COUNT(*) FROM notifications WHERE user_id = ?`), u.ID); err != nil || n != 1 {
				t.Fatalf("notifications of %s: %d %v, want 1", u.Login, n, err)
			}
		}
	})
}
