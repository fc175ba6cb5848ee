package api

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/xmpptest"
)

// newServer starts a real XMPP server (no listener: tests attach sessions
// through the Sink API or dial it themselves).
func newServer(t testing.TB, db *sqlx.DB, users *roster.Store, archive *mam.Store) (*xmppcore.Server, Messenger) {
	t.Helper()
	users.SetDomain("example.test")
	srv := xmppcore.NewServer(db, users, archive, xmppcore.Options{Domain: "example.test", AuthFailureDelay: -1, TLSConfig: xmpptest.SelfSigned(t, "example.test")})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, srv
}

var _ muc.Router = (*xmppcore.Server)(nil)
