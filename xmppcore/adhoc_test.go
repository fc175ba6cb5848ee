package xmppcore

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/xmpptest"
)

// TestAdminCommands: XEP-0050/0133 for the admins. The commands are
// listed only to an admin; a non-admin is refused with forbidden; an
// announcement reaches every online session as a headline; the online
// users are counted and listed; ending a user's sessions closes them and
// refuses a JID that is no account without ending anything.
func TestAdminCommands(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnvWith(t, db, testOrg, func(o *Options) { o.Admins = []string{"alice"} })
		admin, _ := e.loginUntil("alice", "gajim")
		bob, _ := e.loginUntil("bob", "phone")
		carol, _ := e.loginUntil("carol", "pc")

		admin.send(`<iq type='get' id='i1' to='example.test'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		if info := admin.expect(`<iq type='result' id='i1'[^>]*>.*?</iq>`)[0]; !strings.Contains(info, "var='http://jabber.org/protocol/commands'") {
			t.Fatalf("server disco#info without commands: %s", info)
		}
		admin.send(`<iq type='get' id='l1' to='example.test'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>`)
		list := admin.expect(`<iq type='result' id='l1'[^>]*>.*?</iq>`)[0]
		for _, node := range []string{CmdAnnounce, CmdOnlineUsersList, CmdOnlineUsersNum, CmdEndUserSession} {
			if !strings.Contains(list, "node='"+node+"'") {
				t.Errorf("commands list lacks %s: %s", node, list)
			}
		}
		bob.send(`<iq type='get' id='l2' to='example.test'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>`)
		if got := bob.expect(`<iq type='result' id='l2'[^>]*>.*?</iq>|<iq type='result' id='l2'[^>]*/>`)[0]; strings.Contains(got, "<item") {
			t.Errorf("a non-admin sees commands: %s", got)
		}
		for _, node := range []string{CmdAnnounce, CmdEndUserSession, CmdOnlineUsersList} {
			bob.send(`<iq type='set' id='x1' to='example.test'><command xmlns='http://jabber.org/protocol/commands' node='%s' action='execute'/></iq>`, node)
			bob.expect(`<iq [^>]*id='x1'[^>]*type='error'>.*?<forbidden `)
		}

		// Announce: the form, then the submitted form.
		admin.send(`<iq type='set' id='a1' to='example.test'><command xmlns='http://jabber.org/protocol/commands' node='` + CmdAnnounce + `' action='execute'/></iq>`)
		form := admin.expect(`<iq type='result' id='a1'[^>]*>(.*?)</iq>`)[1]
		if !strings.Contains(form, "status='executing'") || !strings.Contains(form, "var='announcement'") {
			t.Fatalf("announce form: %s", form)
		}
		sid := between(form, "sessionid='", "'")
		admin.send(`<iq type='set' id='a2' to='example.test'><command xmlns='http://jabber.org/protocol/commands' node='%s' sessionid='%s'><x xmlns='jabber:x:data' type='submit'>
			<field var='FORM_TYPE'><value>http://jabber.org/protocol/admin</value></field>
			<field var='subject'><value>Maintenance</value></field>
			<field var='announcement'><value>Server restarts at 22:00</value><value>Save your work</value></field></x></command></iq>`, CmdAnnounce, sid)
		const headline = `<message type='headline' from='example.test'[^>]*><subject>Maintenance</subject><body>Server restarts at 22:00
Save your work</body></message>`
		admin.expect(headline) // the admin is online too: sent before the answer
		done := admin.expect(`<iq type='result' id='a2'[^>]*>(.*?)</iq>`)[1]
		if !strings.Contains(done, "status='completed'") || !strings.Contains(done, "sessionid='"+sid+"'") || !strings.Contains(done, "Sent to 3 sessions") {
			t.Fatalf("announce result: %s", done)
		}
		for _, r := range []*rawConn{bob, carol} {
			r.expect(headline)
		}
		// An empty announcement is refused.
		admin.send(`<iq type='set' id='a3' to='example.test'><command xmlns='http://jabber.org/protocol/commands' node='` + CmdAnnounce + `'><x xmlns='jabber:x:data' type='submit'><field var='announcement'/></x></command></iq>`)
		admin.expect(`<iq [^>]*id='a3'[^>]*type='error'>.*?<not-acceptable `)

		// Online users: counted and listed (bare JIDs, sorted, max_items).
		admin.send(`<iq type='set' id='n1' to='example.test'><command xmlns='http://jabber.org/protocol/commands' node='` + CmdOnlineUsersNum + `' action='execute'/></iq>`)
		admin.expect(`<iq type='result' id='n1'[^>]*>.*?status='completed'.*?var='onlineusersnum'[^>]*><value>3</value>`)
		admin.send(`<iq type='set' id='o1' to='example.test'><command xmlns='http://jabber.org/protocol/commands' node='` + CmdOnlineUsersList + `'><x xmlns='jabber:x:data' type='submit'><field var='max_items'><value>2</value></field></x></command></iq>`)
		admin.expect(`<iq type='result' id='o1'[^>]*>.*?var='onlineuserjids'[^>]*><value>alice@example.test</value><value>bob@example.test</value></field>`)

		// Ending sessions: a JID that is no account ends nothing…
		admin.send(`<iq type='set' id='e1' to='example.test'><command xmlns='http://jabber.org/protocol/commands' node='` + CmdEndUserSession + `'><x xmlns='jabber:x:data' type='submit'><field var='accountjids'><value>bob@example.test</value><value>nobody@example.test</value></field></x></command></iq>`)
		admin.expect(`<iq [^>]*id='e1'[^>]*type='error'>.*?<item-not-found `)
		bob.send(`<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>`)
		bob.expect(`<iq type='result' id='p2'`)
		// …a good list ends every session of the account.
		admin.send(`<iq type='set' id='e2' to='example.test'><command xmlns='http://jabber.org/protocol/commands' node='` + CmdEndUserSession + `'><x xmlns='jabber:x:data' type='submit'><field var='accountjids'><value>bob@example.test</value></field></x></command></iq>`)
		admin.expect(`<iq type='result' id='e2'[^>]*>.*?status='completed'`)
		bob.expectClosed()
		admin.send(`<iq type='set' id='n2' to='example.test'><command xmlns='http://jabber.org/protocol/commands' node='` + CmdOnlineUsersNum + `'/></iq>`)
		admin.expect(`<iq type='result' id='n2'[^>]*>.*?var='onlineusersnum'[^>]*><value>2</value>`)

		// Unknown node; cancel.
		admin.send(`<iq type='set' id='u1' to='example.test'><command xmlns='http://jabber.org/protocol/commands' node='nope'/></iq>`)
		admin.expect(`<iq [^>]*id='u1'[^>]*type='error'>.*?<item-not-found `)
		admin.send(`<iq type='set' id='c1' to='example.test'><command xmlns='http://jabber.org/protocol/commands' node='` + CmdAnnounce + `' sessionid='s1' action='cancel'/></iq>`)
		admin.expect(`<iq type='result' id='c1'[^>]*>.*?status='canceled'`)
	})
}

// between returns the text of s after the first from and before the next to.
func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	out, _, _ := strings.Cut(rest, to)
	return out
}

// TestSlixmppAdminCommands runs testdata/adhoc.py: slixmpp's XEP-0050
// client lists, fills in and completes the XEP-0133 forms.
func TestSlixmppAdminCommands(t *testing.T) {
	e := newEnvWith(t, dbtest.Open(t, migrations.SQLite), testOrg, func(o *Options) { o.Admins = []string{"alice"} })
	_, port, _ := net.SplitHostPort(e.addr)
	xmpptest.RunSlixmpp(t, "testdata/adhoc.py", "127.0.0.1", port, testDomain, "secret")
}

// TestAdminCommandsAcrossNodes: with two nodes, an admin on one reaches
// the sessions on the other with an announcement, and counts and lists
// the users online on both.
func TestAdminCommandsAcrossNodes(t *testing.T) {
	db := dbtest.Open(t, migrations.Postgres)
	admins := func(o *Options) { o.Admins = []string{"alice"} }
	a := clusterNodeWith(t, db, "adm_a", nil, admins)
	b := clusterNodeWith(t, db, "adm_b", nil, admins)
	admin, _ := a.loginUntil("alice", "gajim")
	bob, _ := b.loginUntil("bob", "phone")
	carol, _ := b.loginUntil("carol", "pc")
	deadline := time.Now().Add(5 * time.Second)
	for {
		admin.send(`<iq type='set' id='n0' to='example.test'><command xmlns='http://jabber.org/protocol/commands' node='` + CmdOnlineUsersNum + `'/></iq>`)
		got := admin.expect(`<iq type='result' id='n0'[^>]*>.*?var='onlineusersnum'[^>]*><value>(\d+)</value>`)[1]
		if got == "3" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("online users across two nodes: %s, want 3", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	admin.send(`<iq type='set' id='o1' to='example.test'><command xmlns='http://jabber.org/protocol/commands' node='` + CmdOnlineUsersList + `'><x xmlns='jabber:x:data' type='submit'><field var='max_items'><value>none</value></field></x></command></iq>`)
	admin.expect(`<iq type='result' id='o1'[^>]*>.*?var='onlineuserjids'[^>]*><value>alice@example.test</value><value>bob@example.test</value><value>carol@example.test</value></field>`)

	admin.send(`<iq type='set' id='a2' to='example.test'><command xmlns='http://jabber.org/protocol/commands' node='%s'><x xmlns='jabber:x:data' type='submit'>
		<field var='FORM_TYPE'><value>http://jabber.org/protocol/admin</value></field>
		<field var='announcement'><value>Всем узлам</value></field></x></command></iq>`, CmdAnnounce)
	const headline = `<message type='headline' from='example.test'[^>]*><body>Всем узлам</body></message>`
	admin.expect(headline)
	admin.expect(`<iq type='result' id='a2'[^>]*>.*?status='completed'.*?Sent to 3 sessions \(2 on other nodes\)`)
	bob.expect(headline)
	carol.expect(headline)

	// bob leaves node b: the others count him out.
	bob.c.Close()
	deadline = time.Now().Add(5 * time.Second)
	for {
		admin.send(`<iq type='set' id='n1' to='example.test'><command xmlns='http://jabber.org/protocol/commands' node='` + CmdOnlineUsersNum + `'/></iq>`)
		got := admin.expect(`<iq type='result' id='n1'[^>]*>.*?var='onlineusersnum'[^>]*><value>(\d+)</value>`)[1]
		if got == "2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("online users after bob left: %s, want 2", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
