package main

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// TestPushThroughComponent: `vestnik serve --components ADDR --component
// NAME=SECRET`, slixmpp's ComponentXMPP as the XEP-0357 app server; a
// slixmpp client enables push and goes offline, another user writes to
// it, and the component receives the publish (testdata/push.py).
func TestPushThroughComponent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import slixmpp").Run(); err != nil {
		t.Skipf("python3-slixmpp not available: %v", err)
	}
	bin := buildBinary(t)
	compAt := freeAddr(t)
	s := startServer(t, bin, dbtest.URL(t, migrations.SQLite), "--demo", "on",
		"--components", compAt, "--component", "push.example.test=app-secret")
	_, port, _ := net.SplitHostPort(s.c2sAt)
	_, cport, _ := net.SplitHostPort(compAt)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "testdata/push.py", "127.0.0.1", port, cport, "example.test", "demo",
		"push.example.test", "app-secret").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("push.py: %v\n%s\nserver:\n%s", err, out, s.out)
	}
}
