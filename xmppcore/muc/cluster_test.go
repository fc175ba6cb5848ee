package muc_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/cluster"
	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/xmpptest"
)

// newClusterWorld is newWorld as one node of a cluster on db.
func newClusterWorld(t *testing.T, db *sqlx.DB, node string) *world {
	t.Helper()
	w, _ := newClusterWorldNode(t, db, node, 100*time.Millisecond)
	return w
}

// newClusterWorldNode is newClusterWorld that also returns the node.
func newClusterWorldNode(t *testing.T, db *sqlx.DB, node string, heartbeat time.Duration) (*world, *cluster.Cluster) {
	t.Helper()
	ctx := context.Background()
	users := roster.NewStore(db)
	users.SetDomain(domain)
	if _, err := users.Import(ctx, roster.DemoSnapshot(), false); err != nil {
		t.Fatal(err)
	}
	cl, err := cluster.New(db, cluster.Options{NodeID: node, Heartbeat: heartbeat, Missed: 10, Discovery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	archive := mam.NewStore(db)
	srv := xmppcore.NewServer(db, users, archive,
		xmppcore.Options{Domain: domain, TLSConfig: xmpptest.SelfSigned(t, domain), AuthFailureDelay: -1, Logger: testLogger(), Cluster: cl})
	if err := cl.Start(ctx, srv.ClusterHandler()); err != nil {
		t.Fatal(err)
	}
	chats := muc.New(muc.NewStore(db), srv, archive, users, muc.Options{Domain: domain})
	chats.Register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeC2S(ln)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		cl.Shutdown(sctx)
	})
	return &world{db: db, users: users, archive: archive, srv: srv, chats: chats, addr: ln.Addr().String()}, cl
}

// TestOccupantsOfEarlierNodes: a node that starts after an occupant
// joined through another node lists that occupant to its own joiners.
func TestOccupantsOfEarlierNodes(t *testing.T) {
	db := dbtest.Open(t, migrations.Postgres)
	ctx := context.Background()
	a := newClusterWorld(t, db, "occ_a")
	ivanov, smirnov := a.user(t, "ivanov"), a.user(t, "smirnov")
	c, err := a.chats.Create(ctx, 0, muc.NewChat{Title: "Смена", Type: muc.TypeClosed, OwnerID: ivanov.ID, Members: []int64{smirnov.ID}})
	if err != nil {
		t.Fatal(err)
	}
	room := a.chats.RoomJID(c)
	ci := a.login(t, "ivanov", "pc")
	join(ci, room, "Иван")

	b := newClusterWorld(t, db, "occ_b")
	cs := b.login(t, "smirnov", "pc")
	deadline := time.Now().Add(3 * time.Second)
	for {
		cs.Send(fmt.Sprintf(`<presence to='%s/smirnov'><x xmlns='http://jabber.org/protocol/muc'/></presence>`, room))
		self := ""
		for !strings.Contains(self, "code='110'") {
			self = cs.Next()
			if strings.Contains(self, "from='"+room+"/Иван'") {
				return // listed before the self-presence
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node b never listed Иван, joined through node a before b started; got:\n%s", strings.Join(cs.Seen, "\n"))
		}
		// Not yet: leave and join again.
		cs.Send(fmt.Sprintf(`<presence to='%s/smirnov' type='unavailable'/>`, room))
		cs.Expect("type='unavailable'", "code='110'")
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNickRaceAcrossNodes: two users join one room under one nick on two
// nodes at the same moment; exactly one keeps it, the other gets a
// conflict error.
func TestNickRaceAcrossNodes(t *testing.T) {
	db := dbtest.Open(t, migrations.Postgres)
	ctx := context.Background()
	a := newClusterWorld(t, db, "race_a")
	b := newClusterWorld(t, db, "race_b")
	ivanov, petrova := a.user(t, "ivanov"), a.user(t, "petrova")
	c, err := a.chats.Create(ctx, 0, muc.NewChat{Title: "Дежурство", Type: muc.TypeClosed, OwnerID: ivanov.ID, Members: []int64{petrova.ID}})
	if err != nil {
		t.Fatal(err)
	}
	room := a.chats.RoomJID(c)
	ci := a.login(t, "ivanov", "pc")
	cp := b.login(t, "petrova", "pc")
	const nick = "Дежурный"
	p := fmt.Sprintf(`<presence to='%s/%s'><x xmlns='http://jabber.org/protocol/muc'/></presence>`, room, nick)
	go ci.Send(p)
	cp.Send(p)
	time.Sleep(500 * time.Millisecond)
	conflict := func(cl *xmpptest.Client) bool {
		for {
			select {
			case s := <-cl.In:
				cl.Seen = append(cl.Seen, s)
			default:
				for _, s := range cl.Seen {
					if strings.Contains(s, "type='error'") && strings.Contains(s, "<conflict") {
						return true
					}
				}
				return false
			}
		}
	}
	ki, kp := conflict(ci), conflict(cp)
	held := len(a.chats.Occupants(c.ID)) + len(b.chats.Occupants(c.ID))
	if ki == kp || held != 1 {
		t.Errorf("conflict for ivanov %v, petrova %v; %d occupants hold the nick: want exactly one winner", ki, kp, held)
	}
}

// TestNickTieBreak: an occupant notice from another node for a nick a
// local occupant holds: the earlier join keeps the nick, and the local
// loser gets a conflict error while the others see it leave.
func TestNickTieBreak(t *testing.T) {
	db := dbtest.Open(t, migrations.Postgres)
	ctx := context.Background()
	w := newWorld(t, db)
	ivanov, smirnov, petrova := w.user(t, "ivanov"), w.user(t, "smirnov"), w.user(t, "petrova")
	c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "Ничья", Type: muc.TypeClosed, OwnerID: ivanov.ID, Members: []int64{smirnov.ID, petrova.ID}})
	if err != nil {
		t.Fatal(err)
	}
	room := w.chats.RoomJID(c)
	ci := w.login(t, "ivanov", "pc")
	join(ci, room, "Иван")
	cs := w.login(t, "smirnov", "pc")
	join(cs, room, "smirnov")
	notice := func(user int64, full, nick string, joined int64) *xmppcore.Element {
		x := fmt.Sprintf(`<occupant xmlns='urn:vestnik:muc:occupant:0' from='conference.%s' chat='%d' full='%s' user='%d' nick='%s' joined='%d' node='zz'><presence xmlns='jabber:client'/></occupant>`,
			domain, c.ID, full, user, nick, joined)
		els, err := xmppcore.ParseFragment(x)
		if err != nil || len(els) != 1 {
			t.Fatalf("parse %s: %v", x, err)
		}
		return els[0]
	}
	// Joined later than Иван: the remote one loses; nothing changes here.
	w.chats.HandleCluster(ctx, notice(petrova.ID, "petrova@"+domain+"/far", "Иван", time.Now().UnixNano()))
	ci.ExpectNone(200*time.Millisecond, "<conflict")
	if n := len(w.chats.Occupants(c.ID)); n != 2 {
		t.Fatalf("got %d local occupants, want 2", n)
	}
	// Joined earlier than smirnov: smirnov is out with a conflict error.
	w.chats.HandleCluster(ctx, notice(petrova.ID, "petrova@"+domain+"/near", "smirnov", 1))
	cs.Expect("type='error'", "from='"+room+"/smirnov'", "<conflict")
	ci.Expect("from='"+room+"/smirnov'", "type='unavailable'")
	if got := w.chats.Occupants(c.ID); len(got) != 1 || !strings.HasPrefix(got[0], "ivanov@") {
		t.Errorf("got occupants %v, want ivanov alone", got)
	}
}

// TestRoomTrafficPerChat: room messages cross only to the nodes that
// have occupants of the room (the chat's subject): a node with none gets
// nothing of them; once a user joins through it, it gets them.
func TestRoomTrafficPerChat(t *testing.T) {
	db := dbtest.Open(t, migrations.Postgres)
	ctx := context.Background()
	// Heartbeats 2 s apart: what node b receives in the window is
	// traffic, but for at most one heartbeat.
	a, _ := newClusterWorldNode(t, db, "chat_a", 2*time.Second)
	b, clB := newClusterWorldNode(t, db, "chat_b", 2*time.Second)
	ivanov, smirnov := a.user(t, "ivanov"), a.user(t, "smirnov")
	c, err := a.chats.Create(ctx, 0, muc.NewChat{Title: "Узлы", Type: muc.TypeClosed, OwnerID: ivanov.ID, Members: []int64{smirnov.ID}})
	if err != nil {
		t.Fatal(err)
	}
	room := a.chats.RoomJID(c)
	ci := a.login(t, "ivanov", "pc")
	join(ci, room, "Иван")
	time.Sleep(200 * time.Millisecond) // the occupant notice reaches b
	before := clB.Stats().Received
	for i := 0; i < 5; i++ {
		ci.Send(fmt.Sprintf(`<message to='%s' type='groupchat' id='g%d'><body>тихо %d</body></message>`, room, i, i))
		ci.Expect("тихо " + fmt.Sprint(i))
	}
	time.Sleep(200 * time.Millisecond)
	if got := clB.Stats().Received - before; got > 1 {
		t.Errorf("node b, with no occupant, got %d messages while 5 went to the room, want at most a heartbeat", got)
	}
	cs := b.login(t, "smirnov", "pc")
	join(cs, room, "smirnov")
	ci.Send(fmt.Sprintf(`<message to='%s' type='groupchat' id='loud'><body>громко</body></message>`, room))
	cs.Expect("type='groupchat'", "громко")
}

// TestPrivateAndModerationAcrossNodes: occupants joined through two nodes
// exchange private messages (XEP-0045 §7.5), and the owner on one node
// revokes and grants the voice of, kicks and bans an occupant on the
// other, with the same stanzas as on one node (roles, 307/301, actor and
// reason) for the target and for everyone else.
func TestPrivateAndModerationAcrossNodes(t *testing.T) {
	db := dbtest.Open(t, migrations.Postgres)
	ctx := context.Background()
	a := newClusterWorld(t, db, "mod_a")
	b := newClusterWorld(t, db, "mod_b")
	ivanov, smirnov, petrova := a.user(t, "ivanov"), a.user(t, "smirnov"), a.user(t, "petrova")
	c, err := a.chats.Create(ctx, 0, muc.NewChat{Title: "Через узлы", Type: muc.TypeOpen, OwnerID: ivanov.ID, Members: []int64{smirnov.ID, petrova.ID}})
	if err != nil {
		t.Fatal(err)
	}
	room := a.chats.RoomJID(c)
	i := a.login(t, "ivanov", "pc")  // the owner, on a
	s := b.login(t, "smirnov", "pc") // on b
	p := a.login(t, "petrova", "pc") // on a, watching
	join(i, room, "boss")
	join(s, room, "alex")
	join(p, room, "maria")
	i.Expect("from='"+room+"/alex'", "role='participant'")
	s.Expect("from='" + room + "/maria'")

	// Private messages both ways, from the occupant JIDs.
	i.Send(`<message to='` + room + `/alex' type='chat' id='pm1'><body>лично тебе</body></message>`)
	s.Expect("<message", "from='"+room+"/boss'", "type='chat'", "лично тебе", "http://jabber.org/protocol/muc#user")
	s.Send(`<message to='` + room + `/boss' type='chat' id='pm2'><body>и тебе</body></message>`)
	i.Expect("<message", "from='"+room+"/alex'", "type='chat'", "и тебе")
	p.ExpectNone(200*time.Millisecond, "лично тебе")
	// A nick nobody holds is still item-not-found.
	i.Send(`<message to='` + room + `/nobody' type='chat' id='pm3'><body>?</body></message>`)
	i.Expect("id='pm3'", "type='error'", "item-not-found")

	// Voice revoked from a: the occupant on b cannot post; granted back.
	admin := func(id, item string) {
		i.Send(`<iq type='set' id='` + id + `' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'>` + item + `</query></iq>`)
		i.Expect("id='"+id+"'", "type='result'")
	}
	admin("v1", `<item nick='alex' role='visitor'/>`)
	for _, cl := range []*xmpptest.Client{s, p, i} {
		cl.Expect("from='"+room+"/alex'", "role='visitor'")
	}
	s.Send(`<message to='` + room + `' type='groupchat' id='m1'><body>молчу?</body></message>`)
	s.Expect("id='m1'", "type='error'", "forbidden")
	admin("v2", `<item nick='alex' role='participant'/>`)
	for _, cl := range []*xmpptest.Client{s, p, i} {
		cl.Expect("from='"+room+"/alex'", "role='participant'")
	}

	// Kick: the target on b gets 307 and 110 with the actor and reason,
	// the occupants on a see it go the same way; still a member.
	admin("k1", `<item nick='alex' role='none'><reason>остынь</reason></item>`)
	s.Expect("from='"+room+"/alex'", "type='unavailable'", "code='307'", "code='110'", "остынь", "nick='boss'")
	for _, cl := range []*xmpptest.Client{i, p} {
		cl.Expect("from='"+room+"/alex'", "type='unavailable'", "code='307'", "остынь", "nick='boss'")
	}
	if got := b.chats.Occupants(c.ID); len(got) != 0 {
		t.Errorf("after the kick, node b holds occupants %v", got)
	}
	if ok, _ := a.chats.Store().IsMember(ctx, c.ID, smirnov.ID); !ok {
		t.Fatal("a kick removed the membership")
	}
	join(s, room, "alex")
	i.Expect("from='"+room+"/alex'", "role='participant'")

	// Ban by nick: 301 and outcast on b, seen on a; no rejoin.
	admin("b1", `<item nick='alex' affiliation='outcast'><reason>спам</reason></item>`)
	s.Expect("from='"+room+"/alex'", "type='unavailable'", "code='301'", "affiliation='outcast'", "спам")
	p.Expect("from='"+room+"/alex'", "type='unavailable'", "code='301'")
	s.Send(`<presence to='` + room + `/alex'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
	s.Expect("from='"+room+"/alex'", "type='error'", "forbidden")
}

// TestOccupantTrafficPerChat: occupant notices and chat states cross only
// to the nodes watching the chat: joins, presence changes and leaves on
// two nodes reach no third node without occupants or followers of it; a
// chat state crosses to the occupants on the other node; a member added
// on one node reaches a following session on another (its node was not
// watching the chat yet).
func TestOccupantTrafficPerChat(t *testing.T) {
	db := dbtest.Open(t, migrations.Postgres)
	ctx := context.Background()
	a, _ := newClusterWorldNode(t, db, "occ_per_a", 2*time.Second)
	b, _ := newClusterWorldNode(t, db, "occ_per_b", 2*time.Second)
	d, clD := newClusterWorldNode(t, db, "occ_per_d", 2*time.Second)
	ivanov, smirnov, popov := a.user(t, "ivanov"), a.user(t, "smirnov"), a.user(t, "popov")
	c, err := a.chats.Create(ctx, 0, muc.NewChat{Title: "Двое", Type: muc.TypeClosed, OwnerID: ivanov.ID, Members: []int64{smirnov.ID}})
	if err != nil {
		t.Fatal(err)
	}
	room := a.chats.RoomJID(c)
	ci := a.login(t, "ivanov", "pc")
	cs := b.login(t, "smirnov", "pc")
	time.Sleep(200 * time.Millisecond) // the creation's event and the sessions' presence settle
	// What node d receives beside the presence streams (sessions,
	// heartbeats).
	traffic := func() int64 { st := clD.Stats(); return st.Received - st.Stream }
	before := traffic()
	join(ci, room, "Иван")
	join(cs, room, "smirnov")
	ci.Expect("from='" + room + "/smirnov'")
	cs.Send(`<presence to='` + room + `/smirnov'><show>away</show></presence>`)
	ci.Expect("from='"+room+"/smirnov'", "<show>away</show>")
	// A chat state (not archived) crosses to the occupant on a.
	cs.Send(`<message to='` + room + `' type='groupchat' id='cs1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`)
	ci.Expect("from='"+room+"/smirnov'", "<composing")
	cs.Send(`<presence to='` + room + `/smirnov' type='unavailable'/>`)
	ci.Expect("from='"+room+"/smirnov'", "type='unavailable'")
	time.Sleep(200 * time.Millisecond)
	// Node d got nothing of the room but the joins' questions (<sync/>,
	// one from each node: d answers them, with nothing).
	if got := traffic() - before; got > 2 {
		t.Errorf("node d, with no occupant, got %d messages while two nodes used the room, want at most 2 (the joins' questions)", got)
	}

	// popov follows his chats on d (as a bridge session does); added to
	// the chat on a, his session on d gets the event and the messages.
	sink := make(chanSink, 100)
	sess, err := d.srv.Attach(ctx, popov.ID, "web", sink)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := d.chats.Follow(ctx, popov.ID, sess.JID().String()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the session's subject reaches a
	if _, err := a.chats.AddMembers(ctx, ivanov.ID, c.ID, []int64{popov.ID}, nil, true); err != nil {
		t.Fatal(err)
	}
	sink.expect(t, "chat-event", "kind='members_added'")
	ci.Send(`<message to='` + room + `' type='groupchat' id='after'><body>для новенького</body></message>`)
	sink.expect(t, "для новенького")
	sink.expectNone(t, 200*time.Millisecond, "chat-event")
}

// TestRoomNoticesAcrossNodes: what the room tells every occupant when the
// chat changes — the subject, a configuration notice (104), the room
// destroyed — reaches the occupants joined through another node.
func TestRoomNoticesAcrossNodes(t *testing.T) {
	db := dbtest.Open(t, migrations.Postgres)
	ctx := context.Background()
	a := newClusterWorld(t, db, "note_a")
	b := newClusterWorld(t, db, "note_b")
	ivanov, smirnov, petrova := a.user(t, "ivanov"), a.user(t, "smirnov"), a.user(t, "petrova")
	c, err := a.chats.Create(ctx, 0, muc.NewChat{Title: "Новости", Type: muc.TypeClosed, OwnerID: ivanov.ID, Members: []int64{smirnov.ID, petrova.ID}})
	if err != nil {
		t.Fatal(err)
	}
	room := a.chats.RoomJID(c)
	i := a.login(t, "ivanov", "pc")
	s := b.login(t, "smirnov", "pc")
	join(i, room, "boss")
	join(s, room, "alex")
	i.Expect("from='" + room + "/alex'")
	// The subject the owner sets on a: from the owner's occupant JID.
	i.Send(`<message to='` + room + `' type='groupchat' id='s1'><subject>Планёрка в 10</subject></message>`)
	s.Expect("<subject>Планёрка в 10</subject>", "from='"+room+"/boss'")
	// A new title through the core on a: 104 on b.
	title := "Новости отдела"
	if _, err := a.chats.Update(ctx, ivanov.ID, c.ID, muc.Update{Title: &title}); err != nil {
		t.Fatal(err)
	}
	s.Expect("type='groupchat'", "code='104'")
	// The owner's second session, on b, is told of a ban made on a of a
	// member who is not in the room (301).
	i2 := b.login(t, "ivanov", "phone")
	join(i2, room, "boss")
	if err := a.chats.Ban(ctx, ivanov.ID, c.ID, petrova.ID, "спам"); err != nil {
		t.Fatal(err)
	}
	i2.Expect("<message", "code='301'", "affiliation='outcast'", "petrova@")
	s.ExpectNone(200*time.Millisecond, "affiliation='outcast'")
	// A new owner (through the core on a): his occupant on b is
	// announced again with the new affiliation, on a too.
	if _, err := a.chats.Update(ctx, ivanov.ID, c.ID, muc.Update{OwnerID: &smirnov.ID}); err != nil {
		t.Fatal(err)
	}
	i.Expect("from='"+room+"/alex'", "affiliation='owner'")
	if n := b.chats.RemoteOccupants(c.ID); n != 1 {
		t.Fatalf("node b knows %d occupants joined through a, want 1", n)
	}
	// Destroyed on a: the occupant on b leaves with <destroy/>.
	if err := a.chats.Destroy(ctx, 0, c.ID, "переехали", ""); err != nil {
		t.Fatal(err)
	}
	s.Expect("from='"+room+"/alex'", "type='unavailable'", "<destroy", "переехали")
	if got := b.chats.Occupants(c.ID); len(got) != 0 {
		t.Errorf("after the room was destroyed, node b holds occupants %v", got)
	}
	waitUntil(t, "node b to forget the destroyed room's occupants on a", func() bool { return b.chats.RemoteOccupants(c.ID) == 0 })
}

// waitUntil polls cond until it holds (5 s at most).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
