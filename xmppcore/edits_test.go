package xmppcore

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
)

// TestChangesOverXMPP: reactions and a retraction in the older XEP-0424
// form (inside a XEP-0422 <apply-to/>), between Jabber clients: stored,
// relayed to the peer and as carbons to the sender's other resource, and
// refused once one blocked the other.
func TestChangesOverXMPP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		alice := e.online("alice", "pc")
		phone := e.online("alice", "phone")
		phone.send(`<iq type='set' id='cb'><enable xmlns='urn:xmpp:carbons:2'/></iq>`)
		phone.expect(`id='cb'`)
		bob := e.online("bob", "pc")
		aliceID, bobID := e.userID("alice"), e.userID("bob")

		alice.send(`<message to='bob@example.test' type='chat' id='a1'><body>Отчёт готов</body></message>`)
		id := bob.expect(`<message [^>]*id='a1'.*?<stanza-id xmlns='urn:xmpp:sid:0' id='(\d+)'`)[1]

		bob.send(`<message to='alice@example.test' type='chat' id='r1'><reactions xmlns='urn:xmpp:reactions:0' id='a1'><reaction>👍</reaction><reaction>🎉</reaction></reactions><store xmlns='urn:xmpp:hints'/></message>`)
		alice.expect(`<reactions xmlns='urn:xmpp:reactions:0' id='a1'><reaction>👍</reaction><reaction>🎉</reaction></reactions>.*?<reactions xmlns='urn:vestnik:message:0' id='` + id +
			`'><reaction emoji='👍' users='` + itoa(bobID) + `'/><reaction emoji='🎉' users='` + itoa(bobID) + `'/></reactions>`)
		sum, err := e.arch.Reactions(ctx, []int64{atoi(t, id)})
		if err != nil || len(sum[atoi(t, id)]) != 2 {
			t.Fatalf("stored reactions: %v %v", sum, err)
		}

		alice.send(`<message to='bob@example.test' type='chat' id='a2'><body>.</body><apply-to xmlns='urn:xmpp:fasten:0' id='a1'><retract xmlns='urn:xmpp:message-retract:0'/></apply-to></message>`)
		bob.expect(`<retract xmlns='urn:xmpp:message-retract:1' id='a1'/>`)
		phone.expect(`<sent xmlns='urn:xmpp:carbons:2'>.*?<retract xmlns='urn:xmpp:message-retract:1' id='a1'/>`)
		m, err := e.arch.Get(ctx, atoi(t, id))
		if err != nil || !m.Deleted || m.Body != "" {
			t.Fatalf("archive after the retraction: %+v %v", m, err)
		}
		if sum, _ := e.arch.Reactions(ctx, []int64{m.ID}); len(sum) != 0 {
			t.Fatalf("reactions of a retracted message: %v", sum)
		}

		alice.send(`<message to='bob@example.test' type='chat' id='a3'><body>Второй</body></message>`)
		id3 := bob.expect(`<message [^>]*id='a3'.*?<stanza-id xmlns='urn:xmpp:sid:0' id='(\d+)'`)[1]
		alice.send(`<iq type='set' id='bl'><block xmlns='urn:xmpp:blocking'><item jid='bob@example.test'/></block></iq>`)
		alice.expect(`id='bl'`)
		_, _, err = e.srv.SetReactions(ctx, ChangeRequest{User: bobID, Ref: mam.Ref{ID: atoi(t, id3)}}, []string{"👎"})
		if !errors.Is(err, ErrBlocked) {
			t.Fatalf("reaction from a blocked user: got %v, want ErrBlocked", err)
		}
		if _, err := e.srv.EditMessage(ctx, ChangeRequest{User: aliceID, Ref: mam.Ref{ID: atoi(t, id3)}}, "x"); !errors.Is(err, ErrBlocked) {
			t.Fatalf("edit towards a blocked user: got %v, want ErrBlocked", err)
		}
	})
}

func (e *testEnv) userID(login string) int64 {
	e.t.Helper()
	u, err := e.rs.UserByLogin(context.Background(), login)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.ID
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
