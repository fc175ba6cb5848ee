package xmppcore

import (
	"testing"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// TestMAMOverStream scripts XEP-0313 on a real session: the query, its
// results and <fin/>, prefs and metadata are elements the archive builds
// and the stream writes as they are.
func TestMAMOverStream(t *testing.T) {
	e := newEnv(t, dbtest.Open(t, migrations.SQLite))
	alice := e.online("alice", "pc")
	alice.send(`<message to='bob@example.test' type='chat' id='m1'><body>a &amp; b</body><active xmlns='http://jabber.org/protocol/chatstates'/><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>`)
	alice.send(`<iq type='set' id='q1'><query xmlns='urn:xmpp:mam:2' queryid='f'><set xmlns='http://jabber.org/protocol/rsm'><max>10</max></set></query></iq>`)
	got := alice.expect(`<message from='alice@example.test' to='alice@example.test/pc'><result xmlns='urn:xmpp:mam:2' queryid='f' id='(\d+)'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='[^']+'/>` +
		`<message xmlns='jabber:client' from='alice@example.test/pc' to='bob@example.test' type='chat' id='o1'><body>a &amp; b</body><active xmlns='http://jabber.org/protocol/chatstates'/><origin-id xmlns='urn:xmpp:sid:0' id='o1'/>` +
		`<stanza-id xmlns='urn:xmpp:sid:0' id='(\d+)' by='alice@example.test'/></message></forwarded></result></message>`)
	if got[1] != got[2] {
		t.Fatalf("result id %s, stanza-id %s", got[1], got[2])
	}
	alice.expect(`<iq [^>]*id='q1'[^>]*><fin xmlns='urn:xmpp:mam:2' queryid='f' complete='true'><set xmlns='http://jabber.org/protocol/rsm'><first>` + got[1] + `</first><last>` + got[1] + `</last></set></fin></iq>`)

	alice.send(`<iq type='set' id='p1'><prefs xmlns='urn:xmpp:mam:2' default='always'><never><jid>bob@example.test</jid></never></prefs></iq>`)
	alice.expect(`<iq [^>]*id='p1'[^>]*><prefs xmlns='urn:xmpp:mam:2' default='always'><always/><never><jid>bob@example.test</jid></never></prefs></iq>`)
	alice.send(`<iq type='set' id='p2'><prefs xmlns='urn:xmpp:mam:2' default='sometimes'/></iq>`)
	alice.expect(`<iq [^>]*id='p2'[^>]*type='error'.*<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>`)
	alice.send(`<iq type='get' id='md'><metadata xmlns='urn:xmpp:mam:2'/></iq>`)
	alice.expect(`<iq [^>]*id='md'[^>]*><metadata xmlns='urn:xmpp:mam:2'><start id='` + got[1] + `' timestamp='[^']+'/><end id='` + got[1] + `' timestamp='[^']+'/></metadata></iq>`)
	alice.send(`<iq type='get' id='form'><query xmlns='urn:xmpp:mam:2'/></iq>`)
	alice.expect(`<iq [^>]*id='form'[^>]*><query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>`)
}
