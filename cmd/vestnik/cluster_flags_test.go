package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClusterOptions(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "node"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert := write("cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyf := write("key.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	empty := write("empty.pem", nil)

	tests := []struct {
		name       string
		c          serveConfig
		wantErr    string // "" = no error
		wantTLS    bool
		wantSecret string
		envSecret  string
	}{
		{name: "plain", c: serveConfig{nodeID: "n1", clusterListen: "127.0.0.1:7001"}},
		{name: "secret from flag", c: serveConfig{clusterSecret: "s3cret"}, wantSecret: "s3cret", envSecret: "other"},
		{name: "secret from environment", envSecret: "env", wantSecret: "env"},
		{name: "tls", c: serveConfig{clusterTLSCert: cert, clusterTLSKey: keyf, clusterTLSCA: cert}, wantTLS: true},
		{name: "tls without ca", c: serveConfig{clusterTLSCert: cert, clusterTLSKey: keyf}, wantErr: "needs"},
		{name: "ca without certificates", c: serveConfig{clusterTLSCert: cert, clusterTLSKey: keyf, clusterTLSCA: empty}, wantErr: "no certificate"},
		{name: "missing key file", c: serveConfig{clusterTLSCert: cert, clusterTLSKey: filepath.Join(dir, "nope"), clusterTLSCA: cert}, wantErr: "cluster TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("VESTNIK_CLUSTER_SECRET", tt.envSecret)
			o, err := tt.c.clusterOptions()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (o.TLS != nil) != tt.wantTLS || o.Secret != tt.wantSecret || o.NodeID != tt.c.nodeID || o.Listen != tt.c.clusterListen {
				t.Errorf("got %+v, want TLS %v, secret %q", o, tt.wantTLS, tt.wantSecret)
			}
		})
	}
}
