package muc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"os"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
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
	return &world{db: db, users: users, archive: archive, srv: srv, chats: chats, addr: ln.Addr().String()}
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
	c.send(`<presence/>`)
	// Stanzas of a session are handled in order: once the ping is
	// answered, the initial presence is in effect.
	c.send(`<iq type='get' id='ready' to='` + domain + `'><ping xmlns='urn:xmpp:ping'/></iq>`)
	c.expect("id='ready'")
	return c
}

// testLogger logs at debug level when VESTNIK_TEST_DEBUG is set.
func testLogger() *slog.Logger {
	if os.Getenv("VESTNIK_TEST_DEBUG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func selfSigned(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// The adapters below connect the real roster and archive stores to the
// XMPP server's interfaces, until xmppcore publishes its own.

type dirAdapter struct{ r *roster.Store }

func account(u *roster.User) *xmppcore.Account {
	return &xmppcore.Account{ID: u.ID, Login: u.Login, Name: u.Name, Email: u.Email, Title: u.Title, Active: u.Active}
}

func mapErr(err error) error {
	if errors.Is(err, roster.ErrNotFound) || errors.Is(err, mam.ErrNotFound) {
		return xmppcore.ErrNotFound
	}
	return err
}

func (d dirAdapter) Credentials(ctx context.Context, login string) (*xmppcore.Credentials, error) {
	c, err := d.r.Credentials(ctx, login)
	if err != nil {
		return nil, mapErr(err)
	}
	return &xmppcore.Credentials{UserID: c.UserID, Salt: c.Salt, Iterations: c.Iterations, SHA1Stored: c.SHA1Stored,
		SHA1Server: c.SHA1Server, SHA256Stored: c.SHA256Stored, SHA256Server: c.SHA256Server}, nil
}
func (d dirAdapter) UserByLogin(ctx context.Context, login string) (*xmppcore.Account, error) {
	u, err := d.r.UserByLogin(ctx, login)
	if err != nil {
		return nil, mapErr(err)
	}
	return account(u), nil
}
func (d dirAdapter) UserByID(ctx context.Context, id int64) (*xmppcore.Account, error) {
	u, err := d.r.UserByID(ctx, id)
	if err != nil {
		return nil, mapErr(err)
	}
	return account(u), nil
}
func (d dirAdapter) Roster(ctx context.Context, userID int64) ([]xmppcore.RosterItem, error) {
	items, err := d.r.Roster(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]xmppcore.RosterItem, 0, len(items))
	for _, it := range items {
		j := it.JID
		if j == "" {
			j = it.Login + "@" + domain
		}
		out = append(out, xmppcore.RosterItem{JID: j, ContactID: it.ContactID, Name: it.Name, Groups: it.Groups,
			Subscription: it.Subscription, Ask: it.Ask, Approved: it.Approved})
	}
	return out, nil
}
func (d dirAdapter) SetRosterItem(ctx context.Context, userID int64, it xmppcore.RosterItem) error {
	return d.r.SetItem(ctx, userID, roster.Item{JID: it.JID, ContactID: it.ContactID, Name: it.Name, Groups: it.Groups,
		Subscription: it.Subscription, Ask: it.Ask, Approved: it.Approved})
}
func (d dirAdapter) RemoveRosterItem(ctx context.Context, userID int64, jid string) error {
	return d.r.RemoveItem(ctx, userID, jid)
}
func (d dirAdapter) Events(ctx context.Context, afterID int64, limit int) ([]xmppcore.Event, error) {
	evs, err := d.r.Events(ctx, afterID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]xmppcore.Event, len(evs))
	for i, e := range evs {
		out[i] = xmppcore.Event{ID: e.ID, Kind: e.Kind, UserID: e.UserID, ContactID: e.ContactID}
	}
	return out, nil
}
func (d dirAdapter) LastEventID(ctx context.Context) (int64, error) { return d.r.LastEventID(ctx) }

type archAdapter struct{ m *mam.Store }

func (a archAdapter) Append(ctx context.Context, m *xmppcore.ArchivedMessage) (bool, error) {
	mm := &mam.Message{Kind: mam.KindChat, FromID: m.FromID, ToID: m.ToID, FromResource: m.FromResource, OriginID: m.OriginID,
		Body: m.Body, Payload: m.Payload}
	nc, err := a.m.Append(ctx, mm)
	m.ID, m.CreatedAt = mm.ID, mm.CreatedAt
	return nc, err
}
func (a archAdapter) Undelivered(ctx context.Context, userID int64, limit int) ([]xmppcore.ArchivedMessage, error) {
	ms, err := a.m.Undelivered(ctx, userID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]xmppcore.ArchivedMessage, len(ms))
	for i, m := range ms {
		out[i] = xmppcore.ArchivedMessage{ID: m.ID, CreatedAt: m.CreatedAt, FromID: m.FromID, ToID: m.ToID,
			FromResource: m.FromResource, OriginID: m.OriginID, Body: m.Body, Payload: m.Payload}
	}
	return out, nil
}
func (a archAdapter) MarkDelivered(ctx context.Context, userID, upToID int64) error {
	return a.m.MarkDelivered(ctx, userID, upToID)
}

func newXMPPServer(t testing.TB, db *sqlx.DB, users *roster.Store, archive *mam.Store) *xmppcore.Server {
	return xmppcore.NewServerWith(db, dirAdapter{users}, archAdapter{archive},
		xmppcore.Options{Domain: domain, TLSConfig: selfSigned(t), AuthFailureDelay: -1, Logger: testLogger()})
}
