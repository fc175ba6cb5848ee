package xmppcore

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/cluster"
	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
)

// clusterNode starts a server on db that is one node of a cluster (NATS
// embedded, fast heartbeats); tune changes the cluster's options.
func clusterNode(t *testing.T, db *sqlx.DB, id string, tune func(*cluster.Options)) *testEnv {
	t.Helper()
	return clusterNodeWith(t, db, id, tune, nil)
}

// clusterNodeWith is clusterNode with the server's options changed by opts.
func clusterNodeWith(t *testing.T, db *sqlx.DB, id string, tune func(*cluster.Options), opts func(*Options)) *testEnv {
	t.Helper()
	co := cluster.Options{NodeID: id, Heartbeat: 100 * time.Millisecond, Missed: 10, Discovery: 200 * time.Millisecond}
	if tune != nil {
		tune(&co)
	}
	cl, err := cluster.New(db, co)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, db, testOrg, func(o *Options) {
		o.Cluster = cl
		if opts != nil {
			opts(o)
		}
	})
	if err := cl.Start(context.Background(), e.srv.ClusterHandler()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cl.Shutdown(ctx)
	})
	return e
}

// TestRoutedGapRepaired: a message routed between nodes is lost on the
// way (the cluster's test hook drops it on arrival). The next message to
// the same user arrives with a sequence two above the last one seen, and
// the lost one comes from the archive within GapRepairDelay and a flush:
// each of the three reaches the recipient once, and a later login gets
// none of them again.
func TestRoutedGapRepaired(t *testing.T) {
	db := dbtest.Open(t, migrations.Postgres)
	var routed, dropped atomic.Int64
	a := clusterNode(t, db, "gap_a", nil)
	b := clusterNode(t, db, "gap_b", func(o *cluster.Options) {
		o.DropRouted = func(userID, seq int64) bool {
			if routed.Add(1) == 2 {
				dropped.Store(seq)
				return true
			}
			return false
		}
	})
	bob := b.online("bob", "pc")
	alice := a.online("alice", "pc")
	deadline := time.Now().Add(5 * time.Second)
	for len(a.srv.cl.Sessions(mustID(t, a, "bob"))) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("node a never saw bob")
		}
		time.Sleep(10 * time.Millisecond)
	}

	for _, body := range []string{"one", "two", "three"} {
		alice.send(`<message to='bob@%s' type='chat' id='%s'><body>%s</body></message>`, testDomain, body, body)
	}
	bob.expect(`<body>one</body>`)
	bob.expect(`<body>three</body>`)
	t0 := time.Now()
	bob.expect(`<body>two</body>`)
	repair := time.Since(t0)
	t.Logf("lost stanza (sequence %d) repaired from the archive in %v", dropped.Load(), repair)
	if dropped.Load() == 0 {
		t.Fatal("the hook dropped nothing")
	}
	if repair > time.Second {
		t.Errorf("repair took %v, want under 1 s", repair)
	}
	// Nothing more comes (no copy of one or three).
	bob.send(`<iq type='get' id='settle'><ping xmlns='urn:xmpp:ping'/></iq>`)
	time.Sleep(2 * GapRepairDelay)
	bob.send(`<iq type='get' id='settle2'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if got := bob.upTo(`<iq type='result' id='settle2'[^>]*/>`); strings.Contains(got, "<body>") {
		t.Errorf("delivered again: %q", clip([]byte(got)))
	}
	if n := b.srv.Stats().GapRepairs; n != 1 {
		t.Errorf("got %d gap repairs, want 1", n)
	}

	// The mark passed all three: a login on node a gets none again.
	bob.send(`</stream:stream>`)
	bob.expectClosed()
	b2 := a.pipe("bob/laptop")
	b2.login("bob", "laptop", false)
	b2.send(`<presence/><iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if got := b2.upTo(`<iq type='result' id='sync'[^>]*/>`); regexp.MustCompile(`<body>(one|two|three)</body>`).MatchString(got) {
		t.Errorf("delivered again after login: %q", clip([]byte(got)))
	}
}

func mustID(t testing.TB, e *testEnv, login string) int64 {
	t.Helper()
	acc, err := e.srv.users.byLogin(context.Background(), login)
	if err != nil {
		t.Fatal(err)
	}
	return acc.ID
}

// TestResumeOnAnotherNode: bob's XEP-0198 session lives on node a, which
// goes away (its cluster leaves) with two messages bob had not
// acknowledged. Bob's client tries to resume on node b: it gets <failed/>
// at once (the id is node a's), binds, and the two come by offline
// delivery, once; the one it acknowledged does not come again.
func TestResumeOnAnotherNode(t *testing.T) {
	db := dbtest.Open(t, migrations.Postgres)
	a := clusterNode(t, db, "res_a", nil)
	b := clusterNode(t, db, "res_b", nil)
	alice := b.online("alice", "pc")
	bob, id := smResumable(a, "phone")
	deadline := time.Now().Add(5 * time.Second)
	for len(b.srv.cl.Sessions(mustID(t, b, "bob"))) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("node b never saw bob")
		}
		time.Sleep(10 * time.Millisecond)
	}
	alice.send(`<message to='bob@%s' type='chat'><body>one</body></message>`, testDomain)
	// h counts every stanza since <enabled/> (presence from node b may
	// come before "one").
	h := stanzaCount(bob.upTo(`<body>one</body>`))
	bob.send(`<a xmlns='urn:xmpp:sm:3' h='%d'/>`, h)
	alice.send(`<message to='bob@%s' type='chat'><body>two</body></message>`, testDomain)
	alice.send(`<message to='bob@%s' type='chat'><body>three</body></message>`, testDomain)
	bob.expect(`<body>three</body>`)
	time.Sleep(300 * time.Millisecond) // node a stores the mark ("one")

	// Node a is gone for the others; bob's connection to it breaks.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.srv.cl.(*cluster.Cluster).Shutdown(ctx)
	bob.c.Close()

	b2 := b.dial("bob/phone2")
	b2.authOnly("bob")
	t0 := time.Now()
	b2.send(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='%d'/>`, id, h+2)
	b2.expect(`<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>`)
	failedIn := time.Since(t0)
	b2.send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>phone</resource></bind></iq>`)
	b2.expect(`<jid>bob@`)
	b2.send(`<presence/><iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
	got := b2.upTo(`<iq type='result' id='sync'[^>]*/>`)
	time.Sleep(ClusterLateFlush + 300*time.Millisecond) // the late flush adds nothing
	b2.send(`<iq type='get' id='sync2'><ping xmlns='urn:xmpp:ping'/></iq>`)
	got += b2.upTo(`<iq type='result' id='sync2'[^>]*/>`)
	t.Logf("resumption on another node failed in %v", failedIn)
	for body, want := range map[string]int{"one": 0, "two": 1, "three": 1} {
		if n := strings.Count(got, "<body>"+body+"</body>"); n != want {
			t.Errorf("%q: got %d, want %d; got %s", body, n, want, clip([]byte(got)))
		}
	}
	if failedIn > time.Second {
		t.Errorf("<failed/> after %v, want at once", failedIn)
	}
}

// stanzaCount counts the top-level stanzas that start in a stream excerpt.
func stanzaCount(x string) int {
	return len(regexp.MustCompile(`<(message|presence|iq)[ >]`).FindAllString(x, -1)) -
		len(regexp.MustCompile(`<forwarded`).FindAllString(x, -1))
}

// BenchmarkRoutedStanza measures what a stanza routed from another node
// costs the receiving node (clusterHandler.Stanza: parse, route to a
// session without XEP-0198, confirm): with its delivery sequence carried
// in the header, and without (looked up in the archive, one query per
// stanza, as before). PostgreSQL.
func BenchmarkRoutedStanza(b *testing.B) {
	for _, carried := range []bool{true, false} {
		name := "sequence carried"
		if !carried {
			name = "sequence looked up"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, dbtest.Open(b, migrations.Postgres))
			e.srv.opts.RateStanzas = -1
			bob := e.online("bob", "pc")
			bob.c.SetReadDeadline(time.Time{})
			go io.Copy(io.Discard, bob.c)
			ctx := context.Background()
			from, to := mustID(b, e, "alice"), mustID(b, e, "bob")
			type routed struct{ id, seq int64 }
			msgs := make([]routed, b.N)
			for i := range msgs {
				m := &mam.Message{Kind: mam.KindChat, FromID: from, ToID: to, Body: "routed"}
				if _, err := e.arch.Append(ctx, m); err != nil {
					b.Fatal(err)
				}
				msgs[i] = routed{m.ID, m.Seq}
			}
			h := e.srv.ClusterHandler()
			b.ResetTimer()
			for i, m := range msgs {
				if i%100 == 99 {
					// Let the writer drain bob's queue (its bound would
					// close a slow consumer).
					b.StopTimer()
					time.Sleep(20 * time.Millisecond)
					b.StartTimer()
				}
				seq := m.seq
				if !carried {
					seq = 0
				}
				h.Stanza(to, "", seq, fmt.Sprintf(`<message xmlns='jabber:client' from='alice@%s/pc' to='bob@%s' type='chat'><body>routed</body><stanza-id xmlns='urn:xmpp:sid:0' id='%d' by='bob@%s'/></message>`,
					testDomain, testDomain, m.id, testDomain))
			}
			b.StopTimer()
			u := e.srv.router.entry(to)
			if u == nil {
				b.Fatal("bob's session ended")
			}
			u.deliverMu.Lock()
			mark := u.dl.mark.Seq
			u.deliverMu.Unlock()
			if last := msgs[len(msgs)-1].seq; mark != last {
				b.Errorf("mark %d, want %d", mark, last)
			}
		})
	}
}

// TestSubscriptionAcrossNodes: alice (node a) asks dave (node b), who is
// no colleague of hers by the org structure; the request reaches dave on
// his node, his approval reaches alice with the push on hers, and his
// presence then flows to her between the nodes.
func TestSubscriptionAcrossNodes(t *testing.T) {
	db := dbtest.Open(t, migrations.Postgres)
	a := clusterNode(t, db, "sub_a", nil)
	b := clusterNode(t, db, "sub_b", nil)
	dave := b.online("dave", "x")
	alice := a.online("alice", "pc")
	deadline := time.Now().Add(5 * time.Second)
	for len(a.srv.cl.Sessions(mustID(t, a, "dave"))) == 0 || len(b.srv.cl.Sessions(mustID(t, b, "alice"))) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the nodes never saw each other's sessions")
		}
		time.Sleep(10 * time.Millisecond)
	}
	alice.send(`<presence type='subscribe' to='dave@example.test'><preauth xmlns='urn:xmpp:pars:0' token='x1'/></presence>`)
	alice.expect(`<item jid='dave@example.test' subscription='none' ask='subscribe'/>`)
	dave.expect(`<presence type='subscribe' to='dave@example.test[^']*' from='alice@example.test'><preauth xmlns='urn:xmpp:pars:0' token='x1'/></presence>`)
	dave.send(`<presence type='subscribed' to='alice@example.test'/>`)
	dave.expect(`<item jid='alice@example.test' subscription='from'/>`)
	alice.expect(`<presence type='subscribed' to='[^']+' from='dave@example.test'/>`)
	alice.expect(`<item jid='dave@example.test' subscription='to'/>`)
	alice.expect(`<presence from='dave@example.test/x' to='[^']+'`)
	dave.send(`<presence><show>away</show></presence>`)
	alice.expect(`<presence from='dave@example.test/x' to='alice@example.test[^']*'><show>away</show>`)
}
