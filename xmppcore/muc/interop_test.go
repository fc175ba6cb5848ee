package muc_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore/muc"
)

// TestSlixmppMUC drives the MUC service with python3-slixmpp's XEP-0045
// and XEP-0048 plugins over TCP (STARTTLS, SCRAM-SHA-256). Without
// slixmpp it is skipped, or fails under VESTNIK_REQUIRE_ALL=1.
func TestSlixmppMUC(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import slixmpp").Run(); err != nil {
		if os.Getenv("VESTNIK_REQUIRE_ALL") == "1" {
			t.Fatalf("python3-slixmpp is not available (%v) but VESTNIK_REQUIRE_ALL=1", err)
		}
		t.Skipf("python3-slixmpp not available: %v", err)
	}
	ctx := context.Background()
	w := newWorld(t, dbtest.Open(t, migrations.SQLite))
	c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "Interop", Type: muc.TypeClosed, OwnerID: w.user(t, "ivanov").ID,
		Members: []int64{w.user(t, "smirnov").ID}})
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(w.addr)
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, python, "testdata/muc_interop.py", "127.0.0.1", port, domain, roster.DemoPassword,
		w.chats.RoomJID(c)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("muc_interop.py: %v\n%s", err, out)
	}
}
