package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/api"
	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/xmpptest"
)

// chatWorld is every door over one core: the bridge (browsers), the XMPP
// server on TCP with STARTTLS (Jabber clients) and the REST API.
type chatWorld struct {
	*env
	svc    *muc.Service
	c2s    string
	rest   *httptest.Server
	token  string
	domain string
}

func newChatWorld(t *testing.T, db *sqlx.DB) *chatWorld {
	t.Helper()
	const domain = "localhost"
	ctx := context.Background()
	users := roster.NewStore(db)
	users.SetDomain(domain)
	if _, err := users.Import(ctx, roster.DemoSnapshot(), false); err != nil {
		t.Fatalf("demo import: %v", err)
	}
	arch := mam.NewStore(db)
	srv := xmppcore.NewServer(db, users, arch, xmppcore.Options{Domain: domain, TLSConfig: xmpptest.SelfSigned(t, "localhost"), AuthFailureDelay: -1})
	svc := muc.New(muc.NewStore(db), srv, arch, users, muc.Options{Domain: domain})
	svc.Register(srv)
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
	e := newEnv(t, db, XMPP(srv, users, muc.NewStore(db), svc, arch, nil))
	token, err := users.CreateToken(ctx, "portal")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(api.Prefix+"/", api.New(users, svc, srv, api.Options{Archive: arch}).Handler())
	rest := httptest.NewServer(mux)
	t.Cleanup(rest.Close)
	return &chatWorld{env: e, svc: svc, c2s: ln.Addr().String(), rest: rest, token: token, domain: domain}
}

// browser signs login in and says hello.
func (w *chatWorld) browser(login string) *wsConn {
	w.t.Helper()
	ws, _, err := w.dial(w.login(login), w.srv.URL)
	if err != nil {
		w.t.Fatal(err)
	}
	ws.hello(0)
	return ws
}

// jabber logs login in over TCP with initial presence.
func (w *chatWorld) jabber(login, resource string) *xmpptest.Client {
	w.t.Helper()
	c := xmpptest.Dial(w.t, w.c2s, login+"@"+w.domain, resource, roster.DemoPassword)
	c.Send(`<presence/>`)
	c.Send(`<iq type='get' id='ready' to='` + w.domain + `'><ping xmlns='urn:xmpp:ping'/></iq>`)
	c.Expect("id='ready'")
	return c
}

// do calls the REST API; it answers the status and the decoded body.
func (w *chatWorld) do(method, path, body string) (int, map[string]any) {
	w.t.Helper()
	req, _ := http.NewRequest(method, w.rest.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+w.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// chatChanged waits for a chat_changed event of the chat with the change
// (about users, when given).
func chatChanged(w *wsConn, chat int64, change string, users ...int64) map[string]any {
	w.t.Helper()
	f := w.take(func(f map[string]any) bool {
		c, _ := f["chat"].(map[string]any)
		if f["type"] != "chat_changed" || f["change"] != change || c == nil || c["id"] != float64(chat) {
			return false
		}
		got, _ := f["users"].([]any)
		for _, u := range users {
			if !slices.Contains(got, any(float64(u))) {
				return false
			}
		}
		return true
	}, "chat_changed "+change)
	return f["chat"].(map[string]any)
}

func errCode(w *wsConn, f Frame) map[string]any {
	w.t.Helper()
	return w.expect("error", w.send(f))
}

// TestChatLifecycleAcrossDoors: a chat made in the browser, renamed over
// REST, left and rejoined from a Jabber client, with every change seen at
// once by the members' browsers and Jabber clients, and every door
// applying the same rule of who may do what.
func TestChatLifecycleAcrossDoors(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newChatWorld(t, db)
		ivanov, petrova, smirnov := w.user("ivanov"), w.user("petrova"), w.user("smirnov")
		bi, bp := w.browser("ivanov"), w.browser("petrova")

		// Created in the browser: the owner's ack has the members with roles,
		// the other member's browser learns of it at once.
		d := bi.call(Frame{"type": "chat_create", "title": "Продажи", "chat_type": "closed", "color": "GREEN",
			"users": []int64{petrova.ID, smirnov.ID}})
		chat := d["chat"].(map[string]any)
		id := int64(chat["id"].(float64))
		list := chat["member_list"].([]any)
		if chat["owner"] != float64(ivanov.ID) || chat["members"] != float64(3) || len(list) != 3 ||
			list[0].(map[string]any)["user"] != float64(ivanov.ID) || list[0].(map[string]any)["role"] != "owner" ||
			list[1].(map[string]any)["role"] != "member" {
			t.Fatalf("created: got %v", chat)
		}
		if c := chatChanged(bp, id, "created"); c["title"] != "Продажи" || c["member"] != true {
			t.Fatalf("petrova's event: got %v", c)
		}
		room := chat["jid"].(string)
		if room != fmt.Sprintf("chat%d@conference.%s", id, w.domain) {
			t.Fatalf("jid: got %v", room)
		}

		// Smirnov's Jabber client has it as a bookmark and joins the room.
		js := w.jabber("smirnov", "gajim")
		js.Send(`<iq type='get' id='bm1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>`)
		js.Expect("id='bm1'", "type='result'", "id='"+room+"'")
		js.Send(`<presence to='` + room + `/Алексей'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		js.Expect("from='"+room+"/Алексей'", "code='110'")
		js.Expect("<subject")

		// Renamed over REST: the browsers get chat_changed, the occupant a
		// configuration change (104) and a bookmark with the new name, but
		// no new subject (the subject is the topic, not the title).
		st, out := w.do("PATCH", fmt.Sprintf("/api/v1/chats/%d", id), `{"title":"Продажи 2027"}`)
		if st != 200 || out["title"] != "Продажи 2027" {
			t.Fatalf("PATCH: %d %v", st, out)
		}
		for _, b := range []*wsConn{bi, bp} {
			if c := chatChanged(b, id, "edited"); c["title"] != "Продажи 2027" || c["members"] != float64(3) {
				t.Fatalf("renamed: got %v", c)
			}
		}
		js.Expect("from='"+room+"'", "code='104'")
		js.Expect("urn:xmpp:bookmarks:1", "name='Продажи 2027'")
		js.ExpectNone(200*time.Millisecond, "<subject")
		st, out = w.do("GET", fmt.Sprintf("/api/v1/chats/%d", id), "")
		ms, _ := out["members"].([]any)
		if st != 200 || out["title"] != "Продажи 2027" || len(ms) != 3 || ms[0].(map[string]any)["role"] != "owner" ||
			ms[0].(map[string]any)["user_id"] != ivanov.ExtID {
			t.Fatalf("GET: %d %v", st, out)
		}
		// Neither bookmark pushes nor renames reach the browser as (empty)
		// notifications.
		for _, f := range append(bp.skipped, bi.skipped...) {
			if f["type"] == "notification" {
				t.Fatalf("a chat change as a notification: %v", f)
			}
		}

		// Only the owner edits, at every door.
		if st, out := w.do("PATCH", fmt.Sprintf("/api/v1/chats/%d", id), fmt.Sprintf(`{"from_user_id":%q,"title":"x"}`, petrova.ExtID)); st != 403 {
			t.Fatalf("PATCH by a member: %d %v", st, out)
		}
		if f := errCode(bp, Frame{"type": "chat_edit", "chat": id, "title": "x"}); f["code"] != "forbidden" {
			t.Fatalf("chat_edit by a member: %v", f)
		}
		js.Send(`<message to='` + room + `' type='groupchat' id='s1'><subject>x</subject></message>`)
		js.Expect("id='s1'", "type='error'", "forbidden")
		js.Send(`<iq type='get' id='cf' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>`)
		js.Expect("id='cf'", "type='error'", "forbidden")
		if c, _ := w.svc.Get(context.Background(), 0, id); c.Title != "Продажи 2027" || c.Description != "" {
			t.Fatalf("refused edits changed the chat: %+v", c)
		}
		// Bad input is named and changes nothing.
		if f := errCode(bi, Frame{"type": "chat_edit", "chat": id, "color": "NAVY"}); f["code"] != "unknown_color" || f["field"] != "color" {
			t.Fatalf("bad color: %v", f)
		}
		if st, out := w.do("PATCH", fmt.Sprintf("/api/v1/chats/%d", id), `{"owner_id":"30000"}`); st != 422 {
			t.Fatalf("PATCH unknown owner: %d %v", st, out)
		}
		popov := w.user("popov")
		st, out = w.do("PATCH", fmt.Sprintf("/api/v1/chats/%d", id), fmt.Sprintf(`{"owner_id":%q}`, popov.ExtID))
		if e, _ := out["error"].(map[string]any); st != 422 || e["code"] != "not_member" || e["field"] != "owner_id" {
			t.Fatalf("PATCH owner not a member: %d %v", st, out)
		}
		if st, _ := w.do("PATCH", "/api/v1/chats/999999", `{"title":"x"}`); st != 404 {
			t.Fatalf("PATCH unknown chat: %d", st)
		}

		// The owner sets the topic from the browser: the occupant gets it as
		// the subject.
		bi.call(Frame{"type": "chat_edit", "chat": id, "description": "План на квартал"})
		js.Expect("from='"+room+"'", "<subject>План на квартал</subject>")
		chatChanged(bp, id, "edited")

		// /getChatId from the browser: answered to that browser alone, not stored.
		before := w.chatMessages(t, ivanov.ID, id)
		d = bi.call(Frame{"type": "send", "to": Frame{"chat": id}, "body": "/getChatId"})
		if d["command"] != true || d["message"] != nil {
			t.Fatalf("getChatId ack: %v", d)
		}
		ans := bi.expect("command_answer", "")
		if ans["chat_id"] != float64(id) || !strings.Contains(ans["text"].(string), fmt.Sprint(id)) {
			t.Fatalf("getChatId answer: %v", ans)
		}
		if after := w.chatMessages(t, ivanov.ID, id); after != before {
			t.Fatalf("/getChatId was stored: %d messages, had %d", after, before)
		}
		js.ExpectNone(200*time.Millisecond, "getChatId")

		// Leaving the room (unavailable presence, as on disconnect) is not
		// leaving the chat.
		js.Send(`<presence to='` + room + `/Алексей' type='unavailable'/>`)
		js.Expect("from='"+room+"/Алексей'", "type='unavailable'")
		if ok, _ := w.svc.Store().IsMember(context.Background(), id, smirnov.ID); !ok {
			t.Fatal("leaving the room ended the membership")
		}
		// Retracting the bookmark (XEP-0402) is leaving: the browsers learn
		// of it, and the chat is gone from the bookmarks at the next login.
		js.Send(`<iq type='set' id='rt'><pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='urn:xmpp:bookmarks:1'><item id='` + room + `'/></retract></pubsub></iq>`)
		js.Expect("id='rt'", "type='result'")
		if c := chatChanged(bi, id, "member_removed", smirnov.ID); c["members"] != float64(2) || c["member"] != true {
			t.Fatalf("owner's view of the leave: %v", c)
		}
		if ok, _ := w.svc.Store().IsMember(context.Background(), id, smirnov.ID); ok {
			t.Fatal("the retract did not end the membership")
		}
		js2 := w.jabber("smirnov", "dino")
		js2.Send(`<iq type='get' id='bm2'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>`)
		if got := js2.Expect("id='bm2'", "type='result'"); strings.Contains(got, room) {
			t.Fatalf("a left chat is still bookmarked: %s", got)
		}
		js2.Send(`<iq type='get' id='ps1'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>`)
		if got := js2.Expect("id='ps1'", "type='result'"); strings.Contains(got, room) {
			t.Fatalf("a left chat is still in private storage: %s", got)
		}

		// Added back from the browser; then private storage (XEP-0048)
		// saved without the room ends the membership too.
		d = bi.call(Frame{"type": "chat_add", "chat": id, "users": []int64{smirnov.ID}, "skip_message": true})
		if added := d["added"].([]any); len(added) != 1 || added[0] != float64(smirnov.ID) {
			t.Fatalf("chat_add: %v", d)
		}
		js2.Expect("urn:xmpp:bookmarks:1", "id='"+room+"'")
		chatChanged(bp, id, "members_added")
		js2.Send(`<iq type='set' id='ps2'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>`)
		js2.Expect("id='ps2'", "type='result'")
		js2.Expect("urn:xmpp:bookmarks:1", "<retract id='"+room+"'")
		chatChanged(bi, id, "member_removed", smirnov.ID)
		if ok, _ := w.svc.Store().IsMember(context.Background(), id, smirnov.ID); ok {
			t.Fatal("private storage without the room did not end the membership")
		}

		// Dino leaves a room by parting and publishing its bookmark with
		// autojoin='false': that is leaving the chat too.
		bi.call(Frame{"type": "chat_add", "chat": id, "users": []int64{smirnov.ID}, "skip_message": true})
		js2.Expect("urn:xmpp:bookmarks:1", "id='"+room+"'")
		js2.Send(`<iq type='set' id='pub'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:bookmarks:1'><item id='` + room +
			`'><conference xmlns='urn:xmpp:bookmarks:1' name='Продажи 2027' autojoin='false'><nick>Алексей</nick></conference></item></publish></pubsub></iq>`)
		js2.Expect("id='pub'", "type='result'")
		chatChanged(bi, id, "member_removed", smirnov.ID)
		if ok, _ := w.svc.Store().IsMember(context.Background(), id, smirnov.ID); ok {
			t.Fatal("a bookmark with autojoin false did not end the membership")
		}

		// The owner removes a member over REST: only the owner may; the
		// member's browser is told at once that the chat is no longer theirs.
		path := fmt.Sprintf("/api/v1/chats/%d/users/%s", id, ivanov.ExtID)
		if st, out := w.do("DELETE", path+"?from_user_id="+petrova.ExtID, ""); st != 403 {
			t.Fatalf("member removes the owner: %d %v", st, out)
		}
		path = fmt.Sprintf("/api/v1/chats/%d/users/%s", id, petrova.ExtID)
		if st, out := w.do("DELETE", path+"?from_user_id="+ivanov.ExtID, ""); st != 204 {
			t.Fatalf("owner removes a member: %d %v", st, out)
		}
		if c := chatChanged(bp, id, "member_removed", petrova.ID); c["member"] != false {
			t.Fatalf("removed member's event: %v", c)
		}
		if st, _ := w.do("DELETE", path, ""); st != 404 {
			t.Fatalf("removing a non-member: %d", st)
		}
		// Petrova's browser no longer sees the closed chat.
		if f := errCode(bp, Frame{"type": "chat_info", "chat": id}); f["code"] != "not_found" {
			t.Fatalf("chat_info after removal: %v", f)
		}
	})
}

// chatMessages counts the chat's archived messages viewer may read.
func (w *chatWorld) chatMessages(t *testing.T, viewer, chat int64) int {
	t.Helper()
	page, err := w.arch.Query(context.Background(), mam.Query{Viewer: viewer, ChatID: chat, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Messages)
}

// TestOpenChatsAndOwnership: open chats are found and joined from the
// browser; the owner hands the chat over; when the owner leaves, the
// longest-standing member owns it.
func TestOpenChatsAndOwnership(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newChatWorld(t, db)
		ivanov, petrova, smirnov := w.user("ivanov"), w.user("petrova"), w.user("smirnov")
		st, out := w.do("POST", "/api/v1/chats", fmt.Sprintf(`{"title":"Кофейня","type":"open","owner_id":%q,"users":[%q]}`, ivanov.ExtID, smirnov.ExtID))
		if st != 201 {
			t.Fatalf("POST: %d %v", st, out)
		}
		id := int64(out["id"].(float64))
		w.do("POST", "/api/v1/chats", fmt.Sprintf(`{"title":"Кофе закрытый","type":"closed","owner_id":%q}`, ivanov.ExtID))
		bi, bp := w.browser("ivanov"), w.browser("petrova")

		d := bp.call(Frame{"type": "chats_find", "text": "КОФ"})
		found := d["chats"].([]any)
		if len(found) != 1 || found[0].(map[string]any)["id"] != float64(id) || found[0].(map[string]any)["member"] != false {
			t.Fatalf("chats_find: %v", d)
		}
		d = bp.call(Frame{"type": "chat_join", "chat": id})
		if c := d["chat"].(map[string]any); c["member"] != true || c["members"] != float64(3) {
			t.Fatalf("chat_join: %v", d)
		}
		if c := chatChanged(bi, id, "members_added"); c["members"] != float64(3) {
			t.Fatalf("owner's view of the join: %v", c)
		}

		// Handing over: only to a member; roles follow.
		if f := errCode(bi, Frame{"type": "chat_edit", "chat": id, "owner": 99999}); f["code"] != "not_member" || f["field"] != "owner_id" {
			t.Fatalf("owner not a member: %v", f)
		}
		st, out = w.do("PATCH", fmt.Sprintf("/api/v1/chats/%d", id), fmt.Sprintf(`{"from_user_id":%q,"owner_id":%q}`, ivanov.ExtID, petrova.ExtID))
		if st != 200 || out["owner_id"] != petrova.ExtID {
			t.Fatalf("PATCH owner: %d %v", st, out)
		}
		if c := chatChanged(bp, id, "edited"); c["owner"] != float64(petrova.ID) {
			t.Fatalf("new owner event: %v", c)
		}
		d = bi.call(Frame{"type": "chat_info", "chat": id})
		roles := map[float64]string{}
		for _, m := range d["chat"].(map[string]any)["member_list"].([]any) {
			roles[m.(map[string]any)["user"].(float64)] = m.(map[string]any)["role"].(string)
		}
		if roles[float64(petrova.ID)] != "owner" || roles[float64(ivanov.ID)] != "member" || roles[float64(smirnov.ID)] != "member" {
			t.Fatalf("roles after handing over: %v", roles)
		}
		// The old owner may no longer edit.
		if f := errCode(bi, Frame{"type": "chat_edit", "chat": id, "title": "x"}); f["code"] != "forbidden" {
			t.Fatalf("old owner edits: %v", f)
		}
		// The owner leaves: Ivanov (member longest) owns the chat.
		bp.call(Frame{"type": "chat_leave", "chat": id})
		if c := chatChanged(bi, id, "member_removed"); c["owner"] != float64(ivanov.ID) {
			t.Fatalf("after the owner left: %v", c)
		}
		if c := chatChanged(bp, id, "member_removed"); c["member"] != false {
			t.Fatalf("leaver's event: %v", c)
		}
	})
}

// TestChatEventsAcrossNodes: two nodes on one PostgreSQL database. A
// browser on node B learns at once of a chat made, renamed and left on
// node A, and starts and stops getting its messages accordingly.
func TestChatEventsAcrossNodes(t *testing.T) {
	node := clusterNodes(t)
	_, svcA := node("chats_a")
	eb, _ := node("chats_b")
	ivanov, petrova := eb.user("ivanov"), eb.user("petrova")
	wp, _, err := eb.dial(eb.login("petrova"), eb.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	wp.hello(0)

	ctx := context.Background()
	c, err := svcA.Create(ctx, ivanov.ID, muc.NewChat{Title: "Через узлы", Type: muc.TypeClosed, Members: []int64{petrova.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if got := chatChanged(wp, c.ID, "created"); got["title"] != "Через узлы" || got["member"] != true {
		t.Fatalf("created on A, seen on B: %v", got)
	}
	// B's follow list took the new chat: its messages reach the browser.
	if _, err := svcA.PostMessage(ctx, c.ID, ivanov.ID, "привет с узла A", false); err != nil {
		t.Fatal(err)
	}
	wp.expectMsg("привет с узла A")
	title := "Новое имя"
	if _, err := svcA.Update(ctx, ivanov.ID, c.ID, muc.Update{Title: &title}); err != nil {
		t.Fatal(err)
	}
	if got := chatChanged(wp, c.ID, "edited"); got["title"] != title {
		t.Fatalf("renamed on A, seen on B: %v", got)
	}
	if err := svcA.RemoveMember(ctx, ivanov.ID, c.ID, petrova.ID); err != nil {
		t.Fatal(err)
	}
	if got := chatChanged(wp, c.ID, "member_removed", petrova.ID); got["member"] != false {
		t.Fatalf("removed on A, seen on B: %v", got)
	}
	// And B's follow list dropped it.
	if _, err := svcA.PostMessage(ctx, c.ID, ivanov.ID, "уже без тебя", false); err != nil {
		t.Fatal(err)
	}
	wp.ws.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	for {
		var f map[string]any
		if err := wp.ws.ReadJSON(&f); err != nil {
			break
		}
		if m, ok := f["message"].(map[string]any); ok && m["body"] == "уже без тебя" {
			t.Fatalf("a removed member's browser on another node still gets the chat: %v", f)
		}
	}
}
