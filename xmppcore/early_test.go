package xmppcore

import (
	"strings"
	"testing"
	"time"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam/mamtest"
)

// On SQLite a message is routed before its commit. Messages routed while
// the disk is stalled reach an online recipient at once, and the sender's
// stream goes on meanwhile (its XEP-0198 h waits for the commit); one routed while
// its recipient was offline reaches the recipient's next session once,
// whether that session's offline delivery or the route after the commit
// gives it.
func TestRoutedBeforeCommit(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	e := newEnv(t, db)
	a := e.online("alice", "pc")
	carol := e.online("carol", "pc")
	dave := smOnline(e, "dave", "pc")
	release, stalled := mamtest.StallCommit(t, db, e.userID("carol"), e.userID("alice"))

	// alice's stream goes on while her messages wait for their commit.
	start := time.Now()
	for _, body := range []string{"while the disk is busy", "and another"} {
		a.send(`<message to='carol@%s' type='chat'><body>%s</body></message>`, testDomain, body)
		carol.expect(`<body>` + body + `</body>`)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("delivered after %v", d)
	}
	// dave's stream (XEP-0198) does not count his message handled until
	// it is stored, and says so unasked once it is.
	dave.send(`<message to='bob@%s' type='chat' id='off'><body>for later</body></message><r xmlns='urn:xmpp:sm:3'/>`, testDomain)
	dave.expect(`<a xmlns='urn:xmpp:sm:3' h='0'/>`)
	time.Sleep(100 * time.Millisecond) // routed to nobody: bob is offline
	online := make(chan *rawConn, 1)
	go func() {
		// A login writes: it waits for the stalled commit.
		r := e.pipe("bob/phone")
		r.login("bob", "phone", false)
		r.send(`<presence/><iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
		online <- r
	}()
	time.Sleep(100 * time.Millisecond)
	release()
	if err := stalled(); err != nil {
		t.Fatal(err)
	}
	dave.expect(`<a xmlns='urn:xmpp:sm:3' h='1'/>`)
	b := <-online
	got := b.upTo(`<iq type='result' id='sync'[^>]*/>`)
	time.Sleep(200 * time.Millisecond) // the route after the commit, if it gives it
	b.send(`<iq type='get' id='sync2'><ping xmlns='urn:xmpp:ping'/></iq>`)
	got += b.upTo(`<iq type='result' id='sync2'[^>]*/>`)
	if n := strings.Count(got, "<body>for later</body>"); n != 1 {
		t.Errorf("offline message given %d times: %q", n, clip([]byte(got)))
	}
	// By now all are stored.
	a.send(`<iq type='get' id='as'><ping xmlns='urn:xmpp:ping'/></iq>`)
	a.expect(`id='as'`)
	var n int
	if err := db.Get(&n, `SELECT COUNT(*) FROM messages WHERE body IN ('while the disk is busy', 'and another', 'for later')`); err != nil || n != 3 {
		t.Errorf("stored %d (%v), want 3", n, err)
	}
}
