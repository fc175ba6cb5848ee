package muc_test

import (
	"context"
	"net"
	"testing"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/xmpptest"
)

// TestSlixmppMUC drives the MUC service with python3-slixmpp's XEP-0045
// and XEP-0048 plugins over TCP (STARTTLS, SCRAM-SHA-256), with XEP-0402
// bookmarks, XEP-0421 occupant ids and XEP-0410 self-ping. Without
// slixmpp it is skipped, or fails under VESTNIK_REQUIRE_ALL=1.
func TestSlixmppMUC(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, dbtest.Open(t, migrations.SQLite))
	c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "Interop", Type: muc.TypeClosed, OwnerID: w.user(t, "ivanov").ID,
		Members: []int64{w.user(t, "smirnov").ID}})
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(w.addr)
	xmpptest.RunSlixmpp(t, "testdata/muc_interop.py", "127.0.0.1", port, domain, roster.DemoPassword, w.chats.RoomJID(c))
}
