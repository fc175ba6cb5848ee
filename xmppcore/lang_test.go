package xmppcore

import (
	"context"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// TestMessageLang: a message's xml:lang is the stanza's, else the
// stream's; the live copy, offline delivery and MAM results carry it as
// the client gave it; a message from REST has none; a tag too long is
// refused and nothing is stored.
func TestMessageLang(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		alice := e.pipe("alice/pc")
		alice.lang = "de"
		alice.login("alice", "pc", false)
		alice.send(`<presence/>`)
		bob := e.online("bob", "pc")
		alice.expect(`<presence from='bob@example.test/pc'`)

		// Live: the stream's language on a stanza without one; the
		// stanza's own kept as sent.
		alice.send(`<message to='bob@example.test' type='chat' id='l1'><body>Hallo</body></message>`)
		got := bob.expect(`<message [^>]*id='l1'[^>]*>`)[0]
		if !strings.Contains(got, `xml:lang='de'`) {
			t.Errorf("live message without xml:lang: got %s, want xml:lang='de'", got)
		}
		alice.send(`<message to='bob@example.test' type='chat' id='l2' xml:lang='fr-CA'><body>Allo</body></message>`)
		got = bob.expect(`<message [^>]*id='l2'[^>]*>`)[0]
		if !strings.Contains(got, `xml:lang='fr-CA'`) || strings.Contains(got, `'de'`) {
			t.Errorf("live message with xml:lang: got %s, want fr-CA only", got)
		}
		// REST: no language known.
		if _, err := e.srv.SendPersonal(context.Background(), 1, 2, "from REST"); err != nil {
			t.Fatal(err)
		}
		bob.expect(`from REST`)
		// Too long: refused, not stored.
		long := strings.Repeat("a", 36)
		alice.send(`<message to='bob@example.test' type='chat' id='l3' xml:lang='%s'><body>long</body></message>`, long)
		alice.expect(`<message [^>]*id='l3'[^>]*type='error'.*?<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>`)

		// MAM: each message with its language, the REST one without.
		bob.send(`<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='f'/></iq>`)
		var results []string
		for i := 0; i < 3; i++ {
			results = append(results, bob.expect(`<forwarded xmlns='urn:xmpp:forward:0'><delay [^>]*/>(<message [^>]*>)`)[1])
		}
		bob.expect(`<iq [^>]*id='q'[^>]*><fin [^>]*complete='true'`)
		want := []string{`xml:lang='de'`, `xml:lang='fr-CA'`, ""}
		for i, r := range results {
			if want[i] == "" {
				if strings.Contains(r, "xml:lang") {
					t.Errorf("MAM result %d (REST): got %s, want no xml:lang", i, r)
				}
			} else if !strings.Contains(r, want[i]) {
				t.Errorf("MAM result %d: got %s, want %s", i, r, want[i])
			}
		}
		if strings.Contains(strings.Join(results, ""), "long") {
			t.Errorf("refused message archived: %v", results)
		}

		// Offline delivery: carol gets it with the language it was sent in.
		alice.send(`<message to='carol@example.test' type='chat' id='l4'><body>Später</body></message>`)
		alice.send(`<message to='carol@example.test' type='chat' id='l5' xml:lang='ru'><body>Потом</body></message>`)
		alice.send(`<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
		alice.expect(`id='sync'`)
		carol := e.pipe("carol/pc")
		carol.login("carol", "pc", false)
		carol.send(`<presence/>`)
		got = carol.expect(`<message [^>]*id='l4'[^>]*>`)[0]
		if !strings.Contains(got, `xml:lang='de'`) {
			t.Errorf("offline message: got %s, want xml:lang='de'", got)
		}
		got = carol.expect(`<message [^>]*id='l5'[^>]*>`)[0]
		if !strings.Contains(got, `xml:lang='ru'`) {
			t.Errorf("offline message: got %s, want xml:lang='ru'", got)
		}
	})
}
