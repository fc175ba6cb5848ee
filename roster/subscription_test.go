package roster

import (
	"context"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// st is a compact SubState for the transition table: subscription, then
// flags a (ask), p (approved), i (pending in), g (generated), h (item).
func st(sub, flags string) SubState {
	s := SubState{Subscription: sub}
	for _, f := range flags {
		switch f {
		case 'a':
			s.Ask = true
		case 'p':
			s.Approved = true
		case 'i':
			s.PendingIn = true
		case 'g':
			s.Generated = true
		case 'h':
			s.HasItem = true
		}
	}
	return s
}

func TestTransition(t *testing.T) {
	for _, tc := range []struct {
		name     string
		op       SubOp
		from, to SubState
	}{
		{"subscribe from nothing", OutSubscribe, st("none", ""), st("none", "ah")},
		{"subscribe again", OutSubscribe, st("none", "ah"), st("none", "ah")},
		{"subscribe while subscribed", OutSubscribe, st("to", "h"), st("to", "h")},
		{"subscribe with from", OutSubscribe, st("from", "h"), st("from", "ah")},
		{"request arrives", InSubscribe, st("none", ""), st("none", "i")},
		{"request from a subscriber", InSubscribe, st("from", "h"), st("from", "h")},
		{"pre-approved request", InSubscribe, st("none", "ph"), st("from", "h")},
		{"pre-approved request with to", InSubscribe, st("to", "ph"), st("both", "h")},
		{"approve a request", OutSubscribed, st("none", "i"), st("from", "h")},
		{"approve with to", OutSubscribed, st("to", "ahi"), st("both", "ah")},
		{"pre-approve", OutSubscribed, st("none", ""), st("none", "ph")},
		{"approve a subscriber again", OutSubscribed, st("both", "h"), st("both", "h")},
		{"approval arrives", InSubscribed, st("none", "ah"), st("to", "h")},
		{"approval arrives with from", InSubscribed, st("from", "ah"), st("both", "h")},
		{"unasked approval ignored", InSubscribed, st("none", "h"), st("none", "h")},
		{"unsubscribe", OutUnsubscribe, st("both", "h"), st("from", "h")},
		{"unsubscribe while asking", OutUnsubscribe, st("none", "ah"), st("none", "h")},
		{"unsubscribe arrives", InUnsubscribe, st("both", "h"), st("to", "h")},
		{"unsubscribe arrives with a request", InUnsubscribe, st("none", "i"), st("none", "")},
		{"cancel", OutUnsubscribed, st("from", "ph"), st("none", "h")},
		{"deny a request", OutUnsubscribed, st("none", "i"), st("none", "")},
		{"cancellation arrives", InUnsubscribed, st("both", "h"), st("from", "h")},
		{"denial arrives", InUnsubscribed, st("none", "ah"), st("none", "h")},
		{"generated never changes", OutUnsubscribe, st("both", "gh"), st("both", "gh")},
		{"generated request", InSubscribe, st("both", "gh"), st("both", "gh")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Transition(tc.op, tc.from); got != tc.to {
				t.Errorf("got %+v, want %+v", got, tc.to)
			}
		})
	}
}

func subscribe(t *testing.T, s *Store, user int64, peer Peer, op SubOp, req string) SubResult {
	t.Helper()
	r, err := s.Subscribe(context.Background(), user, peer, op, req)
	if err != nil {
		t.Fatalf("subscribe op %d of %d: %v", op, user, err)
	}
	return r
}

func itemOf(t *testing.T, s *Store, user int64, login, jid string) *Item {
	t.Helper()
	items, err := s.Roster(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	for i := range items {
		if (login != "" && items[i].Login == login) || (jid != "" && items[i].JID == jid) {
			return &items[i]
		}
	}
	return nil
}

func TestSubscriptionStore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		s.SetDomain("example.test")
		mustImport(t, s, testSnapshot())
		sam, dora, ann := uid(t, s, "sam"), uid(t, s, "dora"), uid(t, s, "ann")

		// An empty roster's version: "1", never taken as current.
		v0, err := s.RosterVersion(ctx, dora, nil)
		if err != nil || v0 != "1" || VersionCurrent("1", v0) {
			t.Fatalf("first version: %q, %v", v0, err)
		}

		// sam asks dora (not a colleague by the org structure).
		r := subscribe(t, s, sam, Peer{ID: dora}, OutSubscribe, "")
		if !r.ItemChanged || !r.After.Ask || r.After.Subscription != SubNone {
			t.Fatalf("outbound subscribe: %+v", r)
		}
		if it := itemOf(t, s, sam, "dora", ""); it == nil || !it.Ask || it.Subscription != SubNone || it.Name != "" || it.Generated {
			t.Fatalf("sam's item for dora: %+v", it)
		}
		req := `<presence xmlns="jabber:client" type="subscribe" from="sam@example.test" to="dora@example.test"><preauth xmlns="urn:xmpp:pars:0" token="tok"/></presence>`
		r = subscribe(t, s, dora, Peer{ID: sam}, InSubscribe, req)
		if r.ItemChanged || !r.After.PendingIn || r.Version != 1 {
			t.Fatalf("inbound subscribe: %+v", r)
		}
		// The whole request is kept; a repeated one changes nothing.
		if r2 := subscribe(t, s, dora, Peer{ID: sam}, InSubscribe, "<presence/>"); r2.Before.PendingIn != true || r2.Version != 1 {
			t.Fatalf("repeated request: %+v", r2)
		}
		pend, err := s.PendingRequests(ctx, dora)
		if err != nil || len(pend) != 1 || pend[0].ContactID != sam || pend[0].Login != "sam" || pend[0].Stanza != req {
			t.Fatalf("pending: %+v, %v", pend, err)
		}
		// dora's roster has no item yet; its version moved.
		if it := itemOf(t, s, dora, "sam", ""); it != nil {
			t.Fatalf("dora's roster before answering: %+v", it)
		}
		if v, _ := s.RosterVersion(ctx, dora, nil); v != "1" {
			t.Fatalf("dora's version: %q", v)
		}

		// dora approves: from for her, to for sam.
		r = subscribe(t, s, dora, Peer{ID: sam}, OutSubscribed, "")
		if !r.ItemChanged || r.After.Subscription != SubFrom || r.After.PendingIn || r.Version != 2 {
			t.Fatalf("approve: %+v", r)
		}
		if pend, _ := s.PendingRequests(ctx, dora); len(pend) != 0 {
			t.Fatalf("pending after approval: %+v", pend)
		}
		r = subscribe(t, s, sam, Peer{ID: dora}, InSubscribed, "")
		if r.After.Subscription != SubTo || r.After.Ask {
			t.Fatalf("approval at sam: %+v", r)
		}
		// A rename keeps the state (a roster set does not subscribe).
		if err := s.SetItem(ctx, sam, Item{ContactID: dora, Name: "Dora D", Groups: []string{"Friends"}}); err != nil {
			t.Fatal(err)
		}
		if it := itemOf(t, s, sam, "dora", ""); it == nil || it.Subscription != SubTo || it.Name != "Dora D" {
			t.Fatalf("renamed: %+v", it)
		}

		// Pre-approval: sam approves dora before she asks.
		r = subscribe(t, s, sam, Peer{ID: dora}, OutSubscribed, "")
		if !r.After.Approved || r.After.Subscription != SubTo {
			t.Fatalf("pre-approval: %+v", r)
		}
		subscribe(t, s, dora, Peer{ID: sam}, OutSubscribe, "")
		r = subscribe(t, s, sam, Peer{ID: dora}, InSubscribe, "<presence/>")
		if r.After.Subscription != SubBoth || r.After.Approved || r.After.PendingIn {
			t.Fatalf("pre-approved request: %+v", r)
		}
		subscribe(t, s, dora, Peer{ID: sam}, InSubscribed, "")
		if st, _ := s.SubscriptionState(ctx, dora, Peer{ID: sam}); st.Subscription != SubBoth || st.Ask {
			t.Fatalf("dora's state: %+v", st)
		}

		// Removing the item drops the state, and a waiting request.
		quinn := uid(t, s, "quinn")
		subscribe(t, s, dora, Peer{ID: quinn}, InSubscribe, "<presence/>")
		for _, who := range []string{"sam@example.test", "quinn@example.test"} {
			if err := s.RemoveItem(ctx, dora, who); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []int64{sam, quinn} {
			if st, _ := s.SubscriptionState(ctx, dora, Peer{ID: p}); st != (SubState{Subscription: SubNone}) {
				t.Fatalf("after removal of %d: %+v", p, st)
			}
		}

		// Generated colleagues stay both whatever is sent.
		for _, op := range []SubOp{OutUnsubscribe, InUnsubscribed, OutUnsubscribed} {
			r = subscribe(t, s, sam, Peer{ID: ann}, op, "")
			if r.ItemChanged || !r.After.Generated || r.After.Subscription != SubBoth {
				t.Fatalf("generated, op %d: %+v", op, r)
			}
		}

		// Another server's JID: pending out, stored by its bare JID.
		r = subscribe(t, s, sam, Peer{JID: "Romeo@Other.Example"}, OutSubscribe, "")
		if !r.ItemChanged {
			t.Fatalf("foreign subscribe: %+v", r)
		}
		if it := itemOf(t, s, sam, "", "romeo@other.example"); it == nil || !it.Ask {
			t.Fatalf("foreign item: %+v", it)
		}
		if _, err := s.Subscribe(ctx, sam, Peer{JID: "a@b/c"}, OutSubscribe, ""); err == nil {
			t.Error("a full JID was accepted")
		}

		// The generated part moves the version too.
		before, _ := s.RosterVersion(ctx, sam, nil)
		items, _ := s.Roster(ctx, sam)
		after, _ := s.RosterVersion(ctx, sam, items)
		again, _ := s.RosterVersion(ctx, sam, items)
		if before == after || after != again || !VersionCurrent(again, after) {
			t.Errorf("versions: %q, %q, %q", before, after, again)
		}
	})
}
