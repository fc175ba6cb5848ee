package webclient

import (
	"testing"
	"time"
)

// TestBrowser runs the end-to-end suite (e2e/run.mjs) in real Chromium
// against the real `vestnik serve` with a fresh SQLite database, the demo
// company, and a slixmpp client on the c2s port.
func TestBrowser(t *testing.T) {
	node := needBrowser(t, true, "playwright-core/package.json")
	s := serve(t, "", "e2e", nil, "--upload-max-size", "2M")
	runNode(t, node, "e2e/run.mjs", "webclient e2e", 3*time.Minute,
		"VESTNIK_URL="+s.base, "VESTNIK_C2S="+s.c2sAt, "VESTNIK_TOKEN="+s.token)
}
