package xmppcore

import (
	"net"
	"testing"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/xmpptest"
)

// TestSlixmppXEPs runs testdata/xeps.py core: the rows of docs/xmpp.md's
// table checked one by one with slixmpp (direct TLS, caps in the stream
// features, contact addresses, ping, last activity, vcard-temp, chat
// states/receipts/markers, direct invitations, fulltext and RSM paging
// of MAM, carbons, a subscription to a non-colleague, roster versioning,
// CSI, blocking). Its PEP part runs in xmppcore/pubsub, its XEP-0215
// part in xmppcore/extdisco.
func TestSlixmppXEPs(t *testing.T) {
	e := newEnvWith(t, dbtest.Open(t, migrations.SQLite), testOrg, func(o *Options) {
		o.ContactAddresses = map[string][]string{"admin": {"mailto:it@example.test", "xmpp:alice@" + testDomain}}
	})
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.srv.ServeC2STLS(tlsLn)
	_, port, _ := net.SplitHostPort(e.addr)
	_, tlsPort, _ := net.SplitHostPort(tlsLn.Addr().String())
	xmpptest.RunSlixmpp(t, "testdata/xeps.py", "core", "127.0.0.1", port, tlsPort, testDomain, "secret")
}
