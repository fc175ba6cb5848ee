package muc_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// next returns the next stanza the client receives, in order.
func (c *client) next() string {
	c.t.Helper()
	select {
	case s := <-c.in:
		return s
	case <-time.After(5 * time.Second):
		c.t.Fatalf("%s: no stanza", c.jid)
		return ""
	}
}

// A join that creates a room (and so a bookmark) answers with the
// self-presence (201 before the item, 110 after it) and the subject
// before the bookmark push: clients and the conformance suite expect the
// join to complete first.
func TestJoinAnswersBeforeBookmarkPush(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		p := w.login(t, "petrova", "pc")
		p.seen = nil
		room := "garden@conference." + domain
		p.send(`<presence to='` + room + `/Мария'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		self := p.next()
		if !strings.HasPrefix(self, "<presence") || !strings.Contains(self, "from='"+room+"/Мария'") {
			t.Fatalf("first stanza after join: %s", self)
		}
		i201, iItem, i110 := strings.Index(self, "code='201'"), strings.Index(self, "<item"), strings.Index(self, "code='110'")
		if i201 < 0 || iItem < 0 || i110 < 0 || !(i201 < iItem && iItem < i110) {
			t.Fatalf("self-presence status order: %s", self)
		}
		if strings.Contains(self, "code='100'") || strings.Contains(self, "code='170'") {
			t.Fatalf("self-presence has 100/170: %s", self)
		}
		if subj := p.next(); !strings.Contains(subj, "<subject") {
			t.Fatalf("second stanza after join: %s", subj)
		}
		if bm := p.next(); !strings.Contains(bm, "urn:xmpp:bookmarks:1") || !strings.Contains(bm, "id='"+room+"'") {
			t.Fatalf("third stanza after join: %s", bm)
		}
	})
}
