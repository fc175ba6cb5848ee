package webclient

import (
	"testing"
	"time"
)

// TestConverse runs converse/run.mjs: Converse.js (the converse.js npm
// package, a devDependency) in real Chromium against the real `vestnik
// serve` over WebSocket: roster, group chats from bookmarks, MUC join and
// history, a message archived, file upload, an open chat opened (its
// bookmark makes a member).
func TestConverse(t *testing.T) {
	node := needBrowser(t, false, "converse.js/dist/converse.min.js")
	s := serve(t, "", "converse", nil, "--upload-origins", "*") // the page is served from another origin
	runNode(t, node, "converse/run.mjs", "converse", 2*time.Minute, "VESTNIK_URL="+s.base, "VESTNIK_TOKEN="+s.token)
}
