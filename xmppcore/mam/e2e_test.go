package mam_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
)

// sink is a session's outbox, as the bridge would receive it.
type sink struct {
	mu  sync.Mutex
	out []string
	ch  chan struct{}
}

func newSink() *sink { return &sink{ch: make(chan struct{}, 1000)} }

func (s *sink) Deliver(el *xmppcore.Element) bool {
	s.mu.Lock()
	s.out = append(s.out, el.String())
	s.mu.Unlock()
	s.ch <- struct{}{}
	return true
}

func (s *sink) Close(string) {}

// waitFor returns everything delivered until an element containing all of
// want, and that element last.
func (s *sink) waitFor(t *testing.T, want ...string) []string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	seen := 0
	for {
		s.mu.Lock()
		for ; seen < len(s.out); seen++ {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(s.out[seen], w)
			}
			if ok {
				got := append([]string(nil), s.out[:seen+1]...)
				s.out = s.out[seen+1:]
				s.mu.Unlock()
				return got
			}
		}
		s.mu.Unlock()
		select {
		case <-s.ch:
		case <-deadline:
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("no element with %q; got %q", want, s.out)
		}
	}
}

type e2e struct {
	srv     *xmppcore.Server
	users   *roster.Store
	archive *mam.Store
}

func newE2E(t *testing.T, db *sqlx.DB) *e2e {
	t.Helper()
	ctx := context.Background()
	users := roster.NewStore(db)
	if _, err := users.Import(ctx, roster.DemoSnapshot(), false); err != nil {
		t.Fatal(err)
	}
	users.SetDomain("example.test")
	archive := mam.NewStore(db)
	srv := xmppcore.NewServer(db, users, archive, xmppcore.Options{Domain: "example.test", AuthFailureDelay: -1})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &e2e{srv: srv, users: users, archive: archive}
}

func (e *e2e) user(t *testing.T, ext string) *roster.User {
	t.Helper()
	u, err := e.users.UserByExtID(context.Background(), ext)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (e *e2e) attach(t *testing.T, u *roster.User) (*xmppcore.Session, *sink) {
	t.Helper()
	s := newSink()
	sess, err := e.srv.Attach(context.Background(), u.ID, "test", s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close)
	return sess, s
}

func send(t *testing.T, sess *xmppcore.Session, xml string) {
	t.Helper()
	els, err := xmppcore.ParseFragment(xml)
	if err != nil || len(els) != 1 {
		t.Fatalf("parse %s: %v", xml, err)
	}
	if err := sess.Handle(context.Background(), els[0]); err != nil {
		t.Fatal(err)
	}
}

// TestMAMOverXMPP reads the personal archive through the XMPP door: a
// session of the server sends MAM IQs and gets forwarded results and fin.
func TestMAMOverXMPP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		e := newE2E(t, db)
		a, b, c := e.user(t, "1"), e.user(t, "2"), e.user(t, "3")
		for i := 1; i <= 3; i++ {
			if _, err := e.srv.SendPersonal(ctx, a.ID, b.ID, fmt.Sprintf("сообщение номер %d", i)); err != nil {
				t.Fatal(err)
			}
		}
		secret, err := e.srv.SendPersonal(ctx, a.ID, c.ID, "секретное сообщение")
		if err != nil {
			t.Fatal(err)
		}
		sess, out := e.attach(t, b)
		bJID := b.Login + "@example.test"

		send(t, sess, `<iq type='set' id='m1'><query xmlns='urn:xmpp:mam:2' queryid='q1'><set xmlns='http://jabber.org/protocol/rsm'><max>2</max><before/></set></query></iq>`)
		got := out.waitFor(t, "id='m1'", "type='result'")
		all := strings.Join(got, "\n")
		if strings.Count(all, "<result xmlns='urn:xmpp:mam:2'") != 2 || !strings.Contains(all, "сообщение номер 2") ||
			!strings.Contains(all, "сообщение номер 3") || strings.Contains(all, "номер 1") ||
			!strings.Contains(got[len(got)-1], "complete='false'") || !strings.Contains(all, "from='"+bJID+"'") ||
			!strings.Contains(all, "urn:xmpp:delay") {
			t.Fatalf("last page over XMPP:\n%s", all)
		}

		// Full text, through the form.
		send(t, sess, `<iq type='set' id='m2'><query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>
			<field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field><field var='{urn:xmpp:fulltext:0}fulltext'><value>сообщения</value></field></x></query></iq>`)
		got = out.waitFor(t, "id='m2'", "type='result'")
		all = strings.Join(got, "\n")
		if strings.Count(all, "<result ") != 3 || strings.Contains(all, "секрет") || !strings.Contains(got[len(got)-1], "complete='true'") {
			t.Fatalf("fulltext over XMPP:\n%s", all)
		}

		// The doors that must stay shut: RSM past a foreign message,
		// ids of a foreign message, and another user's archive.
		send(t, sess, fmt.Sprintf(`<iq type='set' id='m3'><query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><after>%d</after></set></query></iq>`, secret))
		got = out.waitFor(t, "id='m3'")
		if last := got[len(got)-1]; !strings.Contains(last, "type='error'") || !strings.Contains(last, "item-not-found") {
			t.Errorf("RSM after a foreign id: %s", last)
		}
		send(t, sess, fmt.Sprintf(`<iq type='set' id='m4'><query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='ids'><value>%d</value></field></x></query></iq>`, secret))
		got = out.waitFor(t, "id='m4'")
		if strings.Contains(strings.Join(got, ""), "секрет") {
			t.Errorf("ids of a foreign message leaked: %q", got)
		}
		send(t, sess, `<iq type='set' id='m5' to='`+c.Login+`@example.test'><query xmlns='urn:xmpp:mam:2'/></iq>`)
		got = out.waitFor(t, "id='m5'")
		if last := got[len(got)-1]; !strings.Contains(last, "type='error'") || strings.Contains(strings.Join(got, ""), "секрет") {
			t.Errorf("another user's archive: %q", got)
		}

		// Prefs round trip.
		send(t, sess, `<iq type='set' id='p1'><prefs xmlns='urn:xmpp:mam:2' default='roster'><always/><never/></prefs></iq>`)
		if got := out.waitFor(t, "id='p1'"); !strings.Contains(got[len(got)-1], "default='roster'") {
			t.Errorf("prefs set: %q", got)
		}
	})
}

// TestMAMFormAndOriginID: an empty <query/> get answers the search form
// (XEP-0313 §4.1.1) and runs no query; an archived message a client sent
// with an origin-id carries it once.
func TestMAMFormAndOriginID(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newE2E(t, db)
		a, b := e.user(t, "1"), e.user(t, "2")
		sa, _ := e.attach(t, a)
		sb, out := e.attach(t, b)
		send(t, sb, `<presence/>`)
		send(t, sa, `<message type='chat' id='o1' to='`+b.Login+`@example.test'><body>с origin-id</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>`)
		out.waitFor(t, "с origin-id")

		send(t, sb, `<iq type='get' id='f1'><query xmlns='urn:xmpp:mam:2'/></iq>`)
		got := out.waitFor(t, "id='f1'")
		form := got[len(got)-1]
		if len(got) != 1 || !strings.Contains(form, "type='result'") || !strings.Contains(form, "type='form'") ||
			!strings.Contains(form, "<value>urn:xmpp:mam:2</value>") || !strings.Contains(form, "var='with'") ||
			!strings.Contains(form, "var='start'") || !strings.Contains(form, "var='end'") {
			t.Fatalf("form discovery: %q", got)
		}

		send(t, sb, `<iq type='set' id='q1'><query xmlns='urn:xmpp:mam:2'/></iq>`)
		got = out.waitFor(t, "id='q1'", "type='result'")
		all := strings.Join(got, "\n")
		if !strings.Contains(all, "с origin-id") || strings.Count(all, "<origin-id") != 1 {
			t.Fatalf("origin-ids in the archived message:\n%s", all)
		}
	})
}
