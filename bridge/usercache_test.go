package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore/xmpptest"
)

// TestLoginRename: the bridge looks users up through the server's one
// user cache, which the change events keep current. After an HR import
// renames a login, a browser's message to that colleague goes to the new
// JID (not the old one the cache held), and the colleague's messages from
// the new JID reach the browser as theirs.
func TestLoginRename(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newTCPEnv(t, db)
		ctx := context.Background()
		petrova := e.user("petrova")
		wi := e.browser("ivanov")
		// Warm every cache with the old login.
		wi.call(Frame{"type": "send", "to": Frame{"user": petrova.ID}, "body": "до переименования"})

		snap := roster.DemoSnapshot()
		for i := range snap.Employees {
			if snap.Employees[i].Login == "petrova" {
				snap.Employees[i].Login = "m.petrova"
			}
		}
		if _, err := e.users.Import(ctx, snap, false); err != nil {
			t.Fatal(err)
		}
		// The change-event poller (every second) drops the user from the
		// caches; until then the old login may still be addressed.
		deadline := time.Now().Add(10 * time.Second)
		for {
			u, err := e.xs.UserByID(ctx, petrova.ID)
			if err == nil && u.Login == "m.petrova" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the server's cache still has %+v, %v", u, err)
			}
			time.Sleep(50 * time.Millisecond)
		}

		// Petrova is offline: the message is stored for her new JID.
		a := wi.call(Frame{"type": "send", "to": Frame{"user": petrova.ID}, "body": "после переименования"})
		if _, ok := a["message"].(map[string]any); !ok {
			t.Fatalf("send after the rename: %v", a)
		}
		renamed := xmpptest.Dial(t, e.addr, "m.petrova@localhost", "dino", roster.DemoPassword)
		renamed.Send(`<presence/>`)
		renamed.Expect("<message", "from='ivanov@localhost", "to='m.petrova@localhost", "после переименования")
		renamed.Send(`<message to='ivanov@localhost' type='chat' id='n-1'><body>уже m.petrova</body></message>`)
		if m := wi.expectMsg("уже m.petrova"); m["from"] != float64(petrova.ID) {
			t.Fatalf("after the rename: %v", m)
		}
	})
}
