package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// connect records the node, starts the embedded NATS server with routes to
// the nodes the table lists, then this process's client; or, with NATSURL,
// connects to an existing NATS cluster and records the node.
func (c *Cluster) connect(ctx context.Context) error {
	copts := []nats.Option{
		nats.Name("vestnik-" + c.id),
		nats.NoEcho(), // a node never hears itself
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) { c.c.reconnects.Add(1); c.log.Info("nats reconnected") }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil && c.ctx.Err() == nil {
				c.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				c.c.dropped.Add(1)
			}
			c.log.Warn("nats", "err", err)
		}),
	}
	if c.opts.NATSURL != "" {
		nc, err := nats.Connect(c.opts.NATSURL, copts...)
		if err != nil {
			return fmt.Errorf("cluster: connect to %s: %w", redact(c.opts.NATSURL), err)
		}
		c.nc = nc
		return c.insertNode(ctx)
	}
	secret := c.opts.Secret
	if secret == "" {
		var err error
		if secret, err = c.loadSecret(ctx); err != nil {
			return err
		}
	}
	host, port, err := listenAddr(c.opts.Listen)
	if err != nil {
		return err
	}
	adv := c.opts.Advertise
	if adv == "" {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			return fmt.Errorf("cluster: listen address %q is every interface: give the address other nodes reach it at (advertise)", c.opts.Listen)
		}
		adv = net.JoinHostPort(host, strconv.Itoa(port))
	}
	scheme := "nats-route"
	if c.opts.TLS != nil {
		scheme = "tls"
	}
	c.route = scheme + "://" + adv
	// The row goes in before the other nodes are read: of two nodes
	// starting at the same moment, the later reader sees the earlier one
	// and opens the route (one direction is enough).
	if err := c.insertNode(ctx); err != nil {
		return err
	}
	peers, err := c.routeRows(ctx)
	if err != nil {
		return err
	}
	c.sopts = &server.Options{
		ServerName: "vestnik-" + c.id,
		// The client port is on loopback and needs the credential; only
		// the node's own client uses it.
		Host: "127.0.0.1", Port: server.RANDOM_PORT,
		Username: routeUser, Password: secret,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: maxPayload,
		Cluster: server.ClusterOpts{
			Name: c.opts.Prefix, Host: host, Port: port, Advertise: adv,
			Username: routeUser, Password: secret,
			TLSConfig: c.opts.TLS, TLSTimeout: 2,
			// Liveness is the heartbeats' (1.2 s); route pings only close
			// a dead route, late enough that a node stalled for a few
			// seconds keeps its route and gets what was sent meanwhile.
			PingInterval: 5 * time.Second, MaxPingsOut: 2,
		},
		Routes: routeURLs(peers, secret),
	}
	ns, err := server.NewServer(c.sopts)
	if err != nil {
		return fmt.Errorf("cluster: nats server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return fmt.Errorf("cluster: nats server on %s did not start", c.opts.Listen)
	}
	c.ns = ns
	// The client connects over loopback TCP rather than NATS's in-process
	// pipe: the pipe's synchronous writes cost about 30% of throughput.
	nc, err := nats.Connect(ns.ClientURL(), append(copts, nats.UserInfo(routeUser, secret))...)
	if err != nil {
		return fmt.Errorf("cluster: nats client: %w", err)
	}
	c.nc = nc
	return nil
}

func (c *Cluster) closeNATS() {
	if c.nc != nil {
		c.nc.Close()
	}
	if c.ns != nil {
		c.ns.Shutdown()
		c.ns.WaitForShutdown()
	}
}

// routeURLs makes route URLs carrying the route credential.
func routeURLs(peers []string, secret string) []*url.URL {
	var out []*url.URL
	for _, p := range peers {
		u, err := url.Parse(p)
		if err != nil || u.Host == "" {
			continue
		}
		u.User = url.UserPassword(routeUser, secret)
		out = append(out, u)
	}
	return out
}

// listenAddr splits a route listen address, choosing a free port for 0
// (so the address recorded for the other nodes is known before start).
func listenAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("cluster: listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("cluster: listen address %q: bad port", addr)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if port == 0 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", 0, fmt.Errorf("cluster: listen address %q: %w", addr, err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	return host, port, nil
}

// redact hides a password in a URL for logs and errors.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(bad url)"
	}
	return u.Redacted()
}
