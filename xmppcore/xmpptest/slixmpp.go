package xmpptest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// RunSlixmpp runs a slixmpp script with /usr/bin/python3 (which has
// python3-slixmpp, unlike a pyenv python3 on PATH) for at most a minute
// and fails the test unless it exits 0 having printed "OK". Without
// slixmpp the test is skipped, or fails under VESTNIK_REQUIRE_ALL=1.
func RunSlixmpp(t *testing.T, script string, args ...string) {
	t.Helper()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import slixmpp").Run(); err != nil {
		if os.Getenv("VESTNIK_REQUIRE_ALL") == "1" {
			t.Fatalf("python3-slixmpp is not available (%v) but VESTNIK_REQUIRE_ALL=1", err)
		}
		t.Skipf("python3-slixmpp not available: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, append([]string{script}, args...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	t.Logf("%s:\n%s", script, out)
}
