package mam

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/stanza"
)

// addUsers creates users 1..n with logins u1..un.
func addUsers(t *testing.T, db *sqlx.DB, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		if _, err := db.Exec(db.Rebind(`INSERT INTO users (id, ext_id, login, name, created_at, updated_at) VALUES (?, ?, ?, ?, 0, 0)`),
			i, fmt.Sprint(100+i), fmt.Sprintf("u%d", i), fmt.Sprintf("User %d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

func addChat(t *testing.T, db *sqlx.DB, id int64, room string) {
	t.Helper()
	if _, err := db.Exec(db.Rebind(`INSERT INTO chats (id, room, title, color, type, owner_id, created_at, updated_at)
		VALUES (?, ?, 'T', 'RED', 'open', 1, 0, 0)`), id, room); err != nil {
		t.Fatal(err)
	}
}

type xResult struct {
	XMLName xml.Name `xml:"jabber:client message"`
	From    string   `xml:"from,attr"`
	To      string   `xml:"to,attr"`
	Result  struct {
		QueryID   string `xml:"queryid,attr"`
		ID        string `xml:"id,attr"`
		Forwarded struct {
			Delay struct {
				Stamp string `xml:"stamp,attr"`
			} `xml:"urn:xmpp:delay delay"`
			Message struct {
				From     string `xml:"from,attr"`
				To       string `xml:"to,attr"`
				Type     string `xml:"type,attr"`
				Body     string `xml:"body"`
				StanzaID struct {
					ID string `xml:"id,attr"`
					By string `xml:"by,attr"`
				} `xml:"urn:xmpp:sid:0 stanza-id"`
			} `xml:"jabber:client message"`
		} `xml:"urn:xmpp:forward:0 forwarded"`
	} `xml:"urn:xmpp:mam:2 result"`
}

type xFin struct {
	XMLName  xml.Name `xml:"urn:xmpp:mam:2 fin"`
	Complete bool     `xml:"complete,attr"`
	Set      struct {
		First string `xml:"first"`
		Last  string `xml:"last"`
		Count string `xml:"count"`
	} `xml:"http://jabber.org/protocol/rsm set"`
}

type mamRun struct {
	results []xResult
	fin     xFin
}

func parse(t *testing.T, s string) *stanza.Element {
	t.Helper()
	el, err := stanza.Parse(s)
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return el
}

func runMAM(t *testing.T, s *Store, dir Directory, viewer, chat int64, archive, query string) (*mamRun, error) {
	t.Helper()
	q, err := stanza.Parse(query)
	if err != nil {
		t.Fatalf("query %s: %v", query, err)
	}
	resp, err := s.HandleQuery(context.Background(), dir, Request{Viewer: viewer, ChatID: chat, ArchiveJID: archive,
		To: fmt.Sprintf("u%d@example.test/res", viewer), Query: q})
	if err != nil {
		return nil, err
	}
	r := &mamRun{}
	for _, x := range resp.Results {
		var xr xResult
		if err := xml.Unmarshal([]byte(x.String()), &xr); err != nil {
			t.Fatalf("result %s: %v", x, err)
		}
		r.results = append(r.results, xr)
	}
	if err := xml.Unmarshal([]byte(resp.Fin.String()), &r.fin); err != nil {
		t.Fatalf("fin %s: %v", resp.Fin, err)
	}
	return r, nil
}

func (r *mamRun) bodies() string {
	var b []string
	for _, x := range r.results {
		b = append(b, x.Result.Forwarded.Message.Body)
	}
	return strings.Join(b, ",")
}

func form(fields ...string) string {
	var b strings.Builder
	b.WriteString(`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>`)
	for i := 0; i+1 < len(fields); i += 2 {
		fmt.Fprintf(&b, `<field var='%s'><value>%s</value></field>`, fields[i], fields[i+1])
	}
	b.WriteString(`</x>`)
	return b.String()
}

func mamQuery(inner string) string {
	return `<query xmlns='urn:xmpp:mam:2' queryid='q1'>` + inner + `</query>`
}

func rsm(inner string) string {
	return `<set xmlns='http://jabber.org/protocol/rsm'>` + inner + `</set>`
}

func isCondition(err error, cond string) bool {
	var e *Error
	return errors.As(err, &e) && e.Condition == cond
}

func TestMAMPersonal(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		s := NewStore(db)
		addUsers(t, db, 4)
		dir := NewDirectory(db, "example.test", "conference.example.test")
		var ms []*Message
		for i := 1; i <= 5; i++ {
			m := personal(1, 2, fmt.Sprintf("m%d", i))
			if i%2 == 0 {
				m = personal(2, 1, fmt.Sprintf("m%d", i))
			}
			m.FromResource = "phone"
			ms = append(ms, mustAppend(t, s, m))
		}
		secret := mustAppend(t, s, personal(1, 3, "secret <b>&</b>"))

		// The last page, then the page before it.
		r, err := runMAM(t, s, dir, 2, 0, "u2@example.test", mamQuery(rsm(`<max>2</max><before/>`)))
		if err != nil {
			t.Fatal(err)
		}
		if r.bodies() != "m4,m5" || r.fin.Complete || r.fin.Set.First != fmt.Sprint(ms[3].ID) || r.fin.Set.Last != fmt.Sprint(ms[4].ID) {
			t.Fatalf("last page = %q fin %+v", r.bodies(), r.fin)
		}
		x := r.results[1]
		if x.From != "u2@example.test" || x.To != "u2@example.test/res" || x.Result.QueryID != "q1" || x.Result.ID != fmt.Sprint(ms[4].ID) ||
			x.Result.Forwarded.Message.From != "u1@example.test/phone" || x.Result.Forwarded.Message.To != "u2@example.test" ||
			x.Result.Forwarded.Message.Type != "chat" || x.Result.Forwarded.Delay.Stamp == "" ||
			x.Result.Forwarded.Message.StanzaID.ID != fmt.Sprint(ms[4].ID) {
			t.Errorf("result = %+v", x)
		}
		r, _ = runMAM(t, s, dir, 2, 0, "u2@example.test", mamQuery(rsm(`<max>2</max><before>`+r.fin.Set.First+`</before>`)))
		if r.bodies() != "m2,m3" || r.fin.Complete {
			t.Errorf("previous page = %q %+v", r.bodies(), r.fin)
		}
		r, _ = runMAM(t, s, dir, 2, 0, "u2@example.test", mamQuery(rsm(`<max>2</max><before>`+r.fin.Set.First+`</before>`)))
		if r.bodies() != "m1" || !r.fin.Complete {
			t.Errorf("first page = %q %+v", r.bodies(), r.fin)
		}
		// Forward with after, and flip-page.
		r, _ = runMAM(t, s, dir, 2, 0, "u2@example.test", mamQuery(rsm(`<max>3</max><after>`+fmt.Sprint(ms[0].ID)+`</after>`)+`<flip-page/>`))
		if r.bodies() != "m4,m3,m2" || r.fin.Complete {
			t.Errorf("flipped = %q %+v", r.bodies(), r.fin)
		}
		// Filters: with, ids, fulltext, before-id/after-id.
		r, _ = runMAM(t, s, dir, 1, 0, "u1@example.test", mamQuery(form("with", "u3@example.test")))
		if r.bodies() != "secret <b>&</b>" || !r.fin.Complete {
			t.Errorf("with u3 = %q", r.bodies())
		}
		r, _ = runMAM(t, s, dir, 1, 0, "u1@example.test", mamQuery(form("with", "nobody@example.test")))
		if len(r.results) != 0 || !r.fin.Complete {
			t.Errorf("unknown with = %q", r.bodies())
		}
		r, _ = runMAM(t, s, dir, 1, 0, "u1@example.test", mamQuery(form("{urn:xmpp:fulltext:0}fulltext", "secret")))
		if r.bodies() != "secret <b>&</b>" {
			t.Errorf("fulltext = %q", r.bodies())
		}
		r, _ = runMAM(t, s, dir, 1, 0, "u1@example.test", mamQuery(form("after-id", fmt.Sprint(ms[1].ID), "before-id", fmt.Sprint(ms[4].ID))))
		if r.bodies() != "m3,m4" {
			t.Errorf("after-id/before-id = %q", r.bodies())
		}
		r, _ = runMAM(t, s, dir, 2, 0, "u2@example.test", mamQuery(`<x xmlns='jabber:x:data' type='submit'><field var='ids'><value>`+
			fmt.Sprint(ms[0].ID)+`</value><value>`+fmt.Sprint(secret.ID)+`</value></field></x>`))
		if r.bodies() != "m1" {
			t.Errorf("ids (one not readable) = %q", r.bodies())
		}
		r, _ = runMAM(t, s, dir, 1, 0, "u1@example.test", mamQuery(rsm(`<max>0</max>`)))
		if len(r.results) != 0 || r.fin.Set.Count != "6" {
			t.Errorf("count = %+v", r.fin)
		}

		// What bob must not read: carol's message, by any filter or RSM id.
		for _, q := range []string{
			mamQuery(form("with", "u3@example.test")),
			mamQuery(form("{urn:xmpp:fulltext:0}fulltext", "secret")),
			mamQuery(form("after-id", fmt.Sprint(ms[4].ID))),
		} {
			r, err := runMAM(t, s, dir, 2, 0, "u2@example.test", q)
			if err != nil || len(r.results) != 0 {
				t.Errorf("bob read %q (%v) with %s", r.bodies(), err, q)
			}
		}
		if _, err := runMAM(t, s, dir, 2, 0, "u2@example.test", mamQuery(rsm(`<after>`+fmt.Sprint(secret.ID)+`</after>`))); !isCondition(err, "item-not-found") {
			t.Errorf("RSM after a foreign id: %v, want item-not-found", err)
		}
		if _, err := runMAM(t, s, dir, 2, 0, "u2@example.test", mamQuery(rsm(`<before>999999</before>`))); !isCondition(err, "item-not-found") {
			t.Errorf("RSM before unknown id: %v, want item-not-found", err)
		}

		// Bad requests.
		bad := map[string]string{
			`<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data'><field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field></x></query>`: "bad-request",
			mamQuery(form("start", "yesterday")):       "bad-request",
			mamQuery(form("color", "red")):             "feature-not-implemented",
			mamQuery(rsm(`<max>-1</max>`)):             "bad-request",
			mamQuery(rsm(`<index>3</index>`)):          "feature-not-implemented",
			`<query xmlns='urn:xmpp:mam:1'/>`:          "bad-request",
			`<query xmlns='urn:xmpp:mam:2' node='n'/>`: "item-not-found",
		}
		for q, cond := range bad {
			if _, err := runMAM(t, s, dir, 1, 0, "u1@example.test", q); !isCondition(err, cond) {
				t.Errorf("%s: err %v, want %s", q, err, cond)
			}
		}
		// Start/end.
		r, _ = runMAM(t, s, dir, 1, 0, "u1@example.test", mamQuery(form("start", "2000-01-01T00:00:00Z", "end", "2001-01-01T00:00:00Z")))
		if len(r.results) != 0 {
			t.Errorf("old range = %q", r.bodies())
		}

		// Prefs: never u3 hides that conversation from u1's MAM.
		out, err := s.HandlePrefs(context.Background(), 1, "set",
			parse(t, `<prefs xmlns='urn:xmpp:mam:2' default='always'><always/><never><jid>u3@example.test</jid></never></prefs>`))
		if err != nil || !strings.Contains(out.String(), "<never><jid>u3@example.test</jid></never>") {
			t.Fatalf("prefs set = %s %v", out, err)
		}
		r, _ = runMAM(t, s, dir, 1, 0, "u1@example.test", mamQuery(rsm(`<max>50</max>`)))
		if strings.Contains(r.bodies(), "secret") || len(r.results) != 5 {
			t.Errorf("never u3: %q", r.bodies())
		}
		out, err = s.HandlePrefs(context.Background(), 1, "set",
			parse(t, `<prefs xmlns='urn:xmpp:mam:2' default='never'><always><jid>u3@example.test</jid></always></prefs>`))
		if err != nil {
			t.Fatal(err)
		}
		r, _ = runMAM(t, s, dir, 1, 0, "u1@example.test", mamQuery(""))
		if r.bodies() != "secret <b>&</b>" {
			t.Errorf("default never, always u3: %q (%s)", r.bodies(), out)
		}
		for _, bad := range []string{`<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>`, `<prefs xmlns='urn:xmpp:mam:1' default='always'/>`} {
			if _, err := s.HandlePrefs(context.Background(), 1, "set", parse(t, bad)); !isCondition(err, "bad-request") {
				t.Errorf("%s: %v, want bad-request", bad, err)
			}
		}
		if out, _ := s.HandlePrefs(context.Background(), 4, "get", nil); out.String() != "<prefs xmlns='urn:xmpp:mam:2' default='always'><always/><never/></prefs>" {
			t.Errorf("default prefs = %s", out)
		}
	})
}

func TestMAMRoom(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		s := NewStore(db)
		addUsers(t, db, 4)
		addChat(t, db, 10, "sales")
		dir := NewDirectory(db, "example.test", "conference.example.test")
		w := buildWorld(t, db, s)
		room := "sales@conference.example.test"
		r, err := runMAM(t, s, dir, 3, 10, room, mamQuery(""))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{w.c2.Body, w.c3.Body, w.c5.Body, w.c6.Body}
		if r.bodies() != strings.Join(want, ",") || !r.fin.Complete {
			t.Errorf("room history for 3 = %q", r.bodies())
		}
		if f := r.results[0].Result.Forwarded.Message; f.From != room+"/u2" || f.Type != "groupchat" {
			t.Errorf("groupchat from = %q type %q", f.From, f.Type)
		}
		if f := r.results[2].Result.Forwarded.Message; f.From != room {
			t.Errorf("system message from = %q", f.From)
		}
		if _, err := runMAM(t, s, dir, 4, 10, room, mamQuery("")); !isCondition(err, "forbidden") {
			t.Errorf("outsider: %v, want forbidden", err)
		}
		// A reader of an open chat (no window) gets an empty, complete archive.
		q, _ := stanza.Parse(mamQuery(""))
		resp, err := s.HandleQuery(context.Background(), dir, Request{Viewer: 4, ChatID: 10, ArchiveJID: room, To: "u4@example.test/res", Query: q, Reader: true})
		if err != nil || len(resp.Results) != 0 || resp.Fin.AttrValue("complete") != "true" {
			t.Errorf("reader: %+v %v, want an empty complete page", resp, err)
		}
		if _, err := runMAM(t, s, dir, 3, 10, room, mamQuery(rsm(`<after>`+fmt.Sprint(w.c1.ID)+`</after>`))); !isCondition(err, "item-not-found") {
			t.Errorf("RSM id outside the window: %v", err)
		}
		r, _ = runMAM(t, s, dir, 3, 10, room, mamQuery(form("withtext", "сообщения")))
		if r.bodies() != w.c2.Body+","+w.c6.Body {
			t.Errorf("room fulltext for 3 = %q", r.bodies())
		}
		r, _ = runMAM(t, s, dir, 1, 10, room, mamQuery(form("with", "u1@example.test")))
		if r.bodies() != w.c1.Body+","+w.c4.Body {
			t.Errorf("room with author = %q", r.bodies())
		}
		nick := &Message{Kind: KindGroupchat, ChatID: 10, FromID: 2, FromResource: "Анна", Body: "с ником"}
		mustAppend(t, s, nick)
		r, _ = runMAM(t, s, dir, 1, 10, room, mamQuery(rsm(`<max>1</max><before/>`)))
		if len(r.results) != 1 || r.results[0].Result.Forwarded.Message.From != room+"/Анна" {
			t.Errorf("nick from FromResource: %+v", r.results)
		}
		r, _ = runMAM(t, s, dir, 1, 10, room, mamQuery(form("with", room+"/Анна")))
		if r.bodies() != "с ником" {
			t.Errorf("with occupant JID = %q", r.bodies())
		}
	})
}
