package bridge

import (
	"bytes"
	"context"
	"testing"
	"time"

	"vestnik/cluster"
	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/upload"
)

// TestPresenceAndTypingAcrossNodes: two nodes on one PostgreSQL database,
// routed over NATS. A browser on node B sees at once (no poll) a user on
// node A come online, change presence, type in a chat they share, set a
// new photo and go offline.
func TestPresenceTypingPhotoAcrossNodes(t *testing.T) {
	node := clusterNodes(t)
	ea, svcA := node("pres_a")
	eb, _ := node("pres_b")
	ivanov, petrova := ea.user("ivanov"), eb.user("petrova")
	c, err := svcA.Create(context.Background(), ivanov.ID, muc.NewChat{Title: "Печатает", Type: muc.TypeClosed, Members: []int64{petrova.ID}})
	if err != nil {
		t.Fatal(err)
	}

	wp, _, err := eb.dial(eb.login("petrova"), eb.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	wp.hello(0)
	presence := func(user int64, show string) map[string]any {
		t.Helper()
		return wp.take(func(f map[string]any) bool {
			return f["type"] == "presence" && f["user"] == float64(user) && f["show"] == show
		}, "presence "+show)
	}

	t0 := time.Now()
	wi, _, err := ea.dial(ea.login("ivanov"), ea.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	wi.hello(0)
	presence(ivanov.ID, "online")
	wi.call(Frame{"type": "presence", "show": "dnd", "status": "на встрече"})
	if f := presence(ivanov.ID, "dnd"); f["status"] != "на встрече" {
		t.Errorf("got %v, want the status", f)
	}
	wi.send(Frame{"type": "typing", "to": Frame{"chat": c.ID}, "state": "composing"})
	wp.take(func(f map[string]any) bool {
		return f["type"] == "typing" && f["chat"] == float64(c.ID) && f["user"] == float64(ivanov.ID) && f["state"] == "composing"
	}, "typing in the chat")
	// Typing in one-to-one conversations crosses as a chat state.
	wi.send(Frame{"type": "typing", "to": Frame{"user": petrova.ID}, "state": "paused"})
	wp.take(func(f map[string]any) bool {
		return f["type"] == "typing" && f["user"] == float64(ivanov.ID) && f["state"] == "paused"
	}, "typing to petrova")
	// A new photo set on node A reaches the browser on node B.
	photosA := upload.NewPhotos(ea.db, ea.users, nil, nil)
	ea.b.usePhotos(photosA)
	eb.b.usePhotos(upload.NewPhotos(ea.db, ea.users, nil, nil))
	ver, err := photosA.Set(context.Background(), ivanov.ID, bytes.NewReader(testPNG(t)))
	if err != nil {
		t.Fatal(err)
	}
	wp.take(func(f map[string]any) bool {
		return f["type"] == "photo" && f["user"] == float64(ivanov.ID) && f["photo"] == photoURL(ivanov.ID, ver)
	}, "the photo from node A")
	wi.ws.Close()
	if f := presence(ivanov.ID, "offline"); f["last_seen"] == nil {
		t.Errorf("got %v, want last_seen", f)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("presence and typing across nodes took %v", d)
	}
}

// clusterNodes prepares one PostgreSQL database with the demo company and
// returns a maker of nodes on it: each a core on the cluster (NATS, node
// id name), its chat service and a bridge, all stopped at the test's end.
func clusterNodes(t *testing.T) func(name string) (*env, *muc.Service) {
	t.Helper()
	u := dbtest.URL(t, migrations.Postgres)
	db, err := migrations.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := migrations.Up(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	users := roster.NewStore(db)
	if _, err := users.Import(context.Background(), roster.DemoSnapshot(), false); err != nil {
		t.Fatal(err)
	}
	return func(name string) (*env, *muc.Service) {
		cl, err := cluster.New(db, cluster.Options{NodeID: name, Heartbeat: 100 * time.Millisecond, Missed: 3})
		if err != nil {
			t.Fatal(err)
		}
		arch := mam.NewStore(db)
		srv := xmppcore.NewServer(db, users, arch, xmppcore.Options{Domain: "localhost", Cluster: cl})
		if err := cl.Start(context.Background(), srv.ClusterHandler()); err != nil {
			t.Fatal(err)
		}
		svc := muc.New(muc.NewStore(db), srv, arch, users, muc.Options{Domain: "localhost"})
		svc.Register(srv)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			cl.Shutdown(ctx)
		})
		return newEnv(t, db, XMPP(srv, users, muc.NewStore(db), svc, arch, nil)), svc
	}
}
