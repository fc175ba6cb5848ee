package pubsub_test

import (
	"net"
	"testing"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore/xmpptest"
)

// TestSlixmppPEP runs ../testdata/xeps.py's PEP part against a server with
// this PEP service: slixmpp publishes on PEP (XEP-0060, XEP-0163) and a
// colleague gets the event and reads the item; a XEP-0084 avatar becomes
// the vCard PHOTO (XEP-0398).
func TestSlixmppPEP(t *testing.T) {
	w := newWorld(t, dbtest.Open(t, migrations.SQLite))
	_, port, _ := net.SplitHostPort(w.addr)
	xmpptest.RunSlixmpp(t, "../testdata/xeps.py", "pep", "127.0.0.1", port, domain, roster.DemoPassword)
}
