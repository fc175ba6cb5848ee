package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"vestnik/cluster"
)

// clusterOptions turns the cluster flags into cluster.Options.
func (c *serveConfig) clusterOptions() (cluster.Options, error) {
	o := cluster.Options{NodeID: c.nodeID, Listen: c.clusterListen, Advertise: c.clusterAdvertise,
		Secret: c.clusterSecret, NATSURL: c.natsURL}
	if o.Secret == "" {
		o.Secret = os.Getenv("VESTNIK_CLUSTER_SECRET")
	}
	if c.clusterTLSCert == "" && c.clusterTLSKey == "" && c.clusterTLSCA == "" {
		return o, nil
	}
	if c.clusterTLSCert == "" || c.clusterTLSKey == "" || c.clusterTLSCA == "" {
		return o, errors.New("cluster TLS needs --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca")
	}
	cert, err := tls.LoadX509KeyPair(c.clusterTLSCert, c.clusterTLSKey)
	if err != nil {
		return o, fmt.Errorf("cluster TLS: %w", err)
	}
	ca, err := os.ReadFile(c.clusterTLSCA)
	if err != nil {
		return o, fmt.Errorf("cluster TLS: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return o, fmt.Errorf("cluster TLS: no certificate in %s", c.clusterTLSCA)
	}
	o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	return o, nil
}
