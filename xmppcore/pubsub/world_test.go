package pubsub_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/pubsub"
	"vestnik/xmppcore/xmpptest"
)

const domain = "example.test"

// world is a real server: the demo company, the XMPP server listening on
// TCP with STARTTLS, the archive and the chat service registered.
type world struct {
	db      *sqlx.DB
	users   *roster.Store
	archive *mam.Store
	srv     *xmppcore.Server
	chats   *muc.Service
	ps      *pubsub.Service
	addr    string
}

func newWorld(t testing.TB, db *sqlx.DB) *world {
	t.Helper()
	ctx := context.Background()
	users := roster.NewStore(db)
	users.SetDomain(domain)
	if _, err := users.Import(ctx, roster.DemoSnapshot(), false); err != nil {
		t.Fatal(err)
	}
	archive := mam.NewStore(db)
	srv := newXMPPServer(t, db, users, archive)
	chats := muc.New(muc.NewStore(db), srv, archive, users, muc.Options{Domain: domain})
	chats.Register(srv)
	ps := pubsub.New(pubsub.NewStore(db), srv, users, pubsub.Options{Domain: domain, Admins: []string{"ivanov"},
		Bookmarks: chats.BookmarksIQ(), Photos: srv, Logger: testLogger()})
	ps.Register(srv)
	srv.SetPEP(ps)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeC2S(ln)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	return &world{db: db, users: users, archive: archive, srv: srv, chats: chats, ps: ps, addr: ln.Addr().String()}
}

func (w *world) user(t testing.TB, login string) *roster.User {
	t.Helper()
	u, err := w.users.UserByLogin(context.Background(), login)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// login connects a real client as login@domain/resource.
func (w *world) login(t testing.TB, login, resource string) *client {
	t.Helper()
	c := dial(t, w.addr, login+"@"+domain, resource, roster.DemoPassword)
	c.Send(`<presence/>`)
	// Stanzas of a session are handled in order: once the ping is
	// answered, the initial presence is in effect.
	c.Send(`<iq type='get' id='ready' to='` + domain + `'><ping xmlns='urn:xmpp:ping'/></iq>`)
	c.Expect("id='ready'")
	return c
}

// testLogger logs at debug level when VESTNIK_TEST_DEBUG is set.
func testLogger() *slog.Logger {
	if os.Getenv("VESTNIK_TEST_DEBUG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newXMPPServer(t testing.TB, db *sqlx.DB, users *roster.Store, archive *mam.Store) *xmppcore.Server {
	return xmppcore.NewServer(db, users, archive,
		xmppcore.Options{Domain: domain, TLSConfig: xmpptest.SelfSigned(t, domain), AuthFailureDelay: -1, Logger: testLogger()})
}
