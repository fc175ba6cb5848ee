package xmppcore

import (
	"net"
	"testing"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/xmpptest"
)

// TestSlixmppInterop drives the server over TCP with python3-slixmpp:
// STARTTLS, SCRAM-SHA-256, roster groups, presence, messages both ways
// and offline delivery. Without slixmpp it is skipped, or fails under
// VESTNIK_REQUIRE_ALL=1.
func TestSlixmppInterop(t *testing.T) {
	e := newEnv(t, dbtest.Open(t, migrations.SQLite))
	_, port, _ := net.SplitHostPort(e.addr)
	xmpptest.RunSlixmpp(t, "testdata/interop.py", "127.0.0.1", port, testDomain, "secret")
}
