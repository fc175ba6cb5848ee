package xmppcore

import (
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

func TestNegotiation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)

		t.Run("bad to domain", func(t *testing.T) {
			r := e.dial("c")
			r.send(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='other.test' version='1.0'>`)
			r.expect(`<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`)
			r.expectClosed()
		})
		t.Run("starttls required", func(t *testing.T) {
			r := e.dial("c")
			r.open()
			r.expect(`<required/></starttls></stream:features>`)
			r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth("alice", "secret"))
			r.expect(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><encryption-required/></failure>`)
			r.send(`<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>`)
			r.expect(`<stream:error><policy-violation `)
			r.expectClosed()
		})
		t.Run("plain refused without tls on pipe-less transport", func(t *testing.T) {
			// Over TLS the mechanisms include PLAIN; before TLS none are offered.
			r := e.dial("c")
			r.starttls()
			feats := r.expect(`<mechanisms[^>]*>(.*)</mechanisms>`)[1]
			for _, m := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"} {
				if !strings.Contains(feats, "<mechanism>"+m+"</mechanism>") {
					t.Errorf("mechanisms %q lack %s", feats, m)
				}
			}
			if strings.Contains(feats, "PLUS") {
				t.Errorf("mechanisms %q offer channel binding", feats)
			}
		})
		t.Run("wrong password, retry, success", func(t *testing.T) {
			r := e.dial("c")
			r.starttls()
			r.expect(`</stream:features>`)
			r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth("alice", "wrong"))
			r.expect(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>`)
			r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth("nobody", "secret"))
			r.expect(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>`)
			r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth("alice", "secret"))
			r.expect(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`)
			r.open()
			r.expect(`<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>`)
			r.send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>desk</resource></bind></iq>`)
			r.expect(`<iq type='result' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@example.test/desk</jid></bind></iq>`)
			r.send(`<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`)
			r.expect(`<iq type='result' id='s'`)
		})
		t.Run("too many failures", func(t *testing.T) {
			r := e.dial("c")
			r.starttls()
			r.expect(`</stream:features>`)
			for i := 0; i < MaxAuthFailures; i++ {
				r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth("alice", "wrong"))
				r.expect(`<not-authorized/></failure>`)
			}
			r.expect(`<stream:error><policy-violation `)
			r.expectClosed()
		})
		t.Run("unknown mechanism and -PLUS", func(t *testing.T) {
			r := e.dial("c")
			r.starttls()
			r.expect(`</stream:features>`)
			r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256-PLUS'>cD10bHMtdW5pcXVlLCxuPWFsaWNlLHI9YWJj</auth>`)
			r.expect(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><invalid-mechanism/></failure>`)
			// SCRAM with a channel-binding gs2 header that was not offered.
			r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>cD10bHMtdW5pcXVlLCxuPWFsaWNlLHI9YWJj</auth>`)
			r.expect(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>`)
		})
		t.Run("deactivated account", func(t *testing.T) {
			r := e.pipe("c")
			r.open()
			r.expect(`</stream:features>`)
			if _, err := e.db.Exec(`UPDATE users SET active = FALSE WHERE login = 'erin'`); err != nil {
				t.Fatal(err)
			}
			defer e.db.Exec(`UPDATE users SET active = TRUE WHERE login = 'erin'`)
			r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth("erin", "secret"))
			r.expect(`<not-authorized/></failure>`)
		})
		t.Run("dtd refused", func(t *testing.T) {
			r := e.pipe("c")
			r.send(`<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a "aaaa">]><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0'>`)
			r.expect(`<restricted-xml `)
			r.expectClosed()
		})
		t.Run("entity refused", func(t *testing.T) {
			r := e.pipe("c")
			r.login("bob", "x", false)
			r.send(`<message to='alice@example.test'><body>&xxe;</body></message>`)
			r.expect(`<not-well-formed `)
			r.expectClosed()
		})
		t.Run("oversized stanza", func(t *testing.T) {
			r := e.pipe("c")
			r.login("bob", "x", false)
			go r.send(`<message to='alice@example.test'><body>%s</body></message>`, strings.Repeat("a", MaxStanzaSize+10))
			r.expect(`<policy-violation `)
		})
		t.Run("deep nesting", func(t *testing.T) {
			r := e.pipe("c")
			r.login("bob", "x", false)
			r.send(`<message to='alice@example.test'>%s`, strings.Repeat("<a>", MaxDepth+1))
			r.expect(`<policy-violation `)
			r.expectClosed()
		})
		t.Run("auth timeout and stanza before auth", func(t *testing.T) {
			r := e.pipe("c")
			r.open()
			r.expect(`</stream:features>`)
			r.send(`<message to='alice@example.test'><body>hi</body></message>`)
			r.expect(`<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>`)
			r.expectClosed()
		})
		t.Run("resource conflict replaces the old session", func(t *testing.T) {
			a := e.pipe("a")
			a.login("carol", "same", false)
			b := e.pipe("b")
			b.login("carol", "same", false)
			a.expect(`<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>`)
			a.expectClosed()
			b.send(`<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`)
			b.expect(`<iq type='result' id='p'`)
		})
		t.Run("server chosen resource", func(t *testing.T) {
			r := e.pipe("c")
			j := r.login("dave", "", false)
			if !strings.HasPrefix(j, "dave@example.test/") || len(j) <= len("dave@example.test/") {
				t.Errorf("bound %q", j)
			}
			r.send(`</stream:stream>`)
			r.expect(`</stream:stream>`)
			r.expectClosed()
		})
	})
}

func TestAuthTimeout(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		e.srv.opts.AuthTimeout = 200 * time.Millisecond
		r := e.pipe("c")
		r.open()
		r.expect(`</stream:features>`)
		start := time.Now()
		r.expect(`<stream:error><connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`)
		r.expectClosed()
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("closed after %v", d)
		}
	})
}

func TestStreamManagement(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		r := e.pipe("c")
		r.open()
		r.expect(`</stream:features>`)
		r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth("bob", "secret"))
		r.expect(`<success `)
		r.open()
		r.expect(`<sm xmlns='urn:xmpp:sm:3'/>`)
		r.send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`)
		r.expect(`</bind></iq>`)
		r.send(`<enable xmlns='urn:xmpp:sm:3'/>`)
		r.expect(`<enabled xmlns='urn:xmpp:sm:3'/>`)
		r.send(`<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq><presence/><r xmlns='urn:xmpp:sm:3'/>`)
		r.expect(`<a xmlns='urn:xmpp:sm:3' h='2'/>`)
		r.send(`<resume xmlns='urn:xmpp:sm:3' previd='x' h='0'/>`)
		r.expect(`<failed xmlns='urn:xmpp:sm:3'><unexpected-request `)
	})
}
