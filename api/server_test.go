package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
)

// newServer starts a real XMPP server (no listener: tests attach sessions
// through the Sink API or dial it themselves).
func newServer(t testing.TB, db *sqlx.DB, users *roster.Store, archive *mam.Store) (*xmppcore.Server, Messenger) {
	t.Helper()
	users.SetDomain("example.test")
	srv := xmppcore.NewServer(db, users, archive, xmppcore.Options{Domain: "example.test", AuthFailureDelay: -1, TLSConfig: selfSigned(t)})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, srv
}

// selfSigned is a certificate for example.test, so that TCP clients can
// log in (STARTTLS is required).
func selfSigned(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "example.test"}, DNSNames: []string{"example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

var _ muc.Router = (*xmppcore.Server)(nil)
