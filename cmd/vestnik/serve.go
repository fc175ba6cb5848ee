package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"vestnik/api"
	"vestnik/bridge"
	"vestnik/cluster"
	"vestnik/metrics"
	"vestnik/migrations"
	"vestnik/roster"
	"vestnik/webclient"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/pubsub"
	"vestnik/xmppcore/upload"
)

// serveConfig is what `vestnik serve` is told by flags and environment.
type serveConfig struct {
	domain  string
	dbURL   string
	httpAt  string
	c2sAt   string
	tlsCert string
	tlsKey  string
	dataDir string
	demo    string

	hideHistory bool
	webOrigins  string
	secureWeb   bool
	// admins: comma-separated logins of server admins (pubsub node creation).
	admins string
	// cluster: share sessions with other nodes on the same PostgreSQL.
	cluster bool
	nodeID  string
	// retention: how long the archive keeps messages (0 = forever).
	retention time.Duration
	// editWindow: how long authors may edit or delete a message (0 = no limit).
	editWindow time.Duration
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.domain, "domain", "localhost", "XMPP domain")
	fs.StringVar(&c.dbURL, "db", defaultDB, "database URL: sqlite:PATH or postgres://…")
	fs.StringVar(&c.httpAt, "http", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&c.c2sAt, "c2s", "127.0.0.1:5222", "XMPP client-to-server listen address")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate file (PEM)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS key file (PEM)")
	fs.StringVar(&c.dataDir, "data", "./data", "data directory (self-signed certificate, uploads)")
	fs.BoolVar(&c.hideHistory, "hide-history", false, "default for hide_history when members are added to a chat")
	fs.StringVar(&c.admins, "admins", "", "comma-separated logins of server admins (create pubsub nodes, own every chat room in XMPP)")
	fs.StringVar(&c.webOrigins, "widget-origins", "", "comma-separated portal origins (https://portal.example.com) whose pages may show /widget.js with the user's unread counts")
	fs.BoolVar(&c.secureWeb, "secure-cookie", false, "mark the web session cookie Secure (set when users reach the server over HTTPS, e.g. through a proxy)")
	fs.StringVar(&c.demo, "demo", "auto", "load the demo company: auto (into an empty database), on, off")
	fs.DurationVar(&c.retention, "retention", 0, "delete archived messages older than this (e.g. 8760h); 0 keeps them forever")
	fs.DurationVar(&c.editWindow, "edit-window", mam.DefaultEditWindow, "how long after sending authors may edit or delete a message (XEP-0308/0424, the browser, REST); 0: no limit")
	fs.BoolVar(&c.cluster, "cluster", true, "on PostgreSQL, serve as one node of several sharing the database (ignored on SQLite)")
	fs.StringVar(&c.nodeID, "node-id", "", "cluster node id ([a-z0-9_], default random)")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	switch c.demo {
	case "auto", "on", "off":
	default:
		return fmt.Errorf("serve: --demo must be auto, on or off, not %q", c.demo)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return errors.New("serve: --tls-cert and --tls-key go together")
	}
	if err := os.MkdirAll(c.dataDir, 0o750); err != nil {
		return fmt.Errorf("serve: data directory: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	tlsConf, err := tlsConfig(c.tlsCert, c.tlsKey, c.dataDir, c.domain)
	if err != nil {
		return err
	}
	db, err := openDB(ctx, c.dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	ckptCtx, stopCheckpoints := context.WithCancel(context.Background())
	defer stopCheckpoints()
	go migrations.Checkpoints(ckptCtx, db, log.With("component", "sqlite"))
	rosterStore := roster.NewStore(db)
	if err := loadDemo(ctx, rosterStore, c.demo, stdout); err != nil {
		return err
	}
	if c.retention < 0 {
		return errors.New("serve: --retention must not be negative")
	}
	if c.editWindow < 0 {
		return errors.New("serve: --edit-window must not be negative")
	}
	editWindow := c.editWindow
	if editWindow == 0 {
		editWindow = -1 // no limit
	}
	archive := mam.NewStoreOptions(db, mam.Options{Retention: c.retention, EditWindow: editWindow})
	retention := archive.Retention(log.With("component", "retention"))
	go retention.Serve()
	defer retention.Shutdown(context.Background())
	xopts := xmppcore.Options{Domain: c.domain, TLSConfig: tlsConf, Logger: log}
	var node *cluster.Cluster
	if c.cluster && db.DriverName() == migrations.Postgres {
		node, err = cluster.New(db, c.dbURL, cluster.Options{NodeID: c.nodeID, Logger: log})
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		xopts.Cluster = node
	}
	xmpp := xmppcore.NewServer(db, rosterStore, archive, xopts)
	if node != nil {
		if err := node.Start(ctx, xmpp.ClusterHandler()); err != nil {
			xmpp.Shutdown(context.Background())
			return fmt.Errorf("serve: %w", err)
		}
		defer func() {
			// After xmpp.Shutdown: the sessions' goodbyes are queued.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			node.Shutdown(ctx)
		}()
	}

	reg := metrics.New()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reg)
	if node != nil {
		clusterMetrics(reg, node)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := db.PingContext(r.Context()); err != nil {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	users := roster.NewStore(db)
	users.SetDomain(c.domain)
	chats := muc.NewStore(db)
	// Chats: the MUC service at conference.<domain>, and the REST API.
	var admins []string
	for _, a := range strings.Split(c.admins, ",") {
		if a = strings.TrimSpace(a); a != "" {
			admins = append(admins, a)
		}
	}
	chatService := muc.New(chats, xmpp, archive, users, muc.Options{Domain: c.domain, HideHistory: c.hideHistory, Admins: admins, Logger: log})
	chatService.Register(xmpp)
	xmpp.SetDirectInviter(chatService)
	// PEP on users' JIDs and the pubsub.<domain> service; the bookmarks
	// node stays with the chat service.
	pep := pubsub.New(pubsub.NewStore(db), xmpp, users, pubsub.Options{Domain: c.domain, Admins: admins,
		Bookmarks: chatService.BookmarksIQ(), Logger: log})
	pep.Register(xmpp)
	xmpp.SetPEP(pep)
	// The web client and its bridge (/, /s/…, /widget.js, /login, /logout, /session, /ws).
	web := bridge.New(db, users, chats, bridge.XMPP(xmpp, users, chats, chatService, archive, log), bridge.NewArchive(archive, chats), bridge.Options{Logger: log, SecureCookie: c.secureWeb, WidgetOrigins: splitList(c.webOrigins)})
	xmppMetrics(reg, xmpp)
	reg.Func("vestnik_bridge_connections", "Open web client WebSocket connections.", metrics.Gauge,
		func() float64 { return float64(web.Connections()) })
	web.Register(mux)
	webclient.New().Register(mux)
	restAPI := api.New(users, chatService, xmpp, api.Options{Logger: log, Archive: archive, LoginToken: web.LoginTokenHandler})
	mux.Handle(api.Prefix+"/", restAPI.Handler())
	mux.Handle("GET /avatars/chat/{id}", restAPI.AvatarHandler())

	mux.Handle("GET /xmpp-websocket", xmpp.WebSocketHandler())

	// HTTP file upload (XEP-0363) at upload.<domain>, files under --data.
	uploads, err := upload.NewStore(db, filepath.Join(c.dataDir, "uploads"), upload.Options{PublicURL: publicURL(c.httpAt, c.domain)})
	if err != nil {
		return err
	}
	upload.NewService(uploads, users, log).Register(xmpp)
	mux.Handle("/upload/", uploads.Handler())

	c2sLn, err := net.Listen("tcp", c.c2sAt)
	if err != nil {
		return fmt.Errorf("serve: c2s: %w", err)
	}
	httpLn, err := net.Listen("tcp", c.httpAt)
	if err != nil {
		return fmt.Errorf("serve: http: %w", err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(httpLn) }()
	c2sErr := make(chan error, 1)
	go func() { c2sErr <- xmpp.ServeC2S(c2sLn) }()

	fmt.Fprintf(stdout, "Vestnik is running: open http://%s (database %s, data %s)\n", httpLn.Addr(), c.dbURL, filepath.Clean(c.dataDir))
	select {
	case <-ctx.Done():
	case err := <-errc:
		xmpp.Shutdown(context.Background())
		return fmt.Errorf("serve: http: %w", err)
	case err := <-c2sErr:
		xmpp.Shutdown(context.Background())
		return fmt.Errorf("serve: c2s: %w", err)
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	web.Shutdown(sctx)
	if err := xmpp.Shutdown(sctx); err != nil {
		log.Warn("xmpp shutdown", "err", err)
	}
	return hs.Shutdown(sctx)
}

// publicURL is the base URL clients reach the HTTP listener at: the listen
// address, with the XMPP domain standing in for a wildcard host.
func publicURL(httpAt, domain string) string {
	host, port, err := net.SplitHostPort(httpAt)
	if err != nil {
		return "http://" + httpAt
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = domain
	}
	return "http://" + net.JoinHostPort(host, port)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// statMetric is one figure exported from a snapshot of counters of type S.
type statMetric[S any] struct {
	name, help string
	kind       metrics.Kind
	read       func(S) int64
}

// registerStats exports figures read from a fresh snapshot at each scrape.
func registerStats[S any](reg *metrics.Registry, snapshot func() S, ms []statMetric[S]) {
	for _, m := range ms {
		read := m.read
		reg.Func(m.name, m.help, m.kind, func() float64 { return float64(read(snapshot())) })
	}
}

// xmppMetrics exports the XMPP server's counters and gauges.
func xmppMetrics(reg *metrics.Registry, srv *xmppcore.Server) {
	type s = xmppcore.Stats
	registerStats(reg, srv.Stats, []statMetric[s]{
		{"vestnik_xmpp_connections", "Open XMPP client streams (TCP and WebSocket).", metrics.Gauge, func(s s) int64 { return s.Connections }},
		{"vestnik_online_users", "Users with at least one session on this node.", metrics.Gauge, func(s s) int64 { return s.Users }},
		{"vestnik_sessions", "Bound sessions on this node, web client included.", metrics.Gauge, func(s s) int64 { return s.Sessions }},
		{"vestnik_xmpp_stanzas_in_total", "Stanzas read from XMPP client streams.", metrics.Counter, func(s s) int64 { return s.StanzasIn }},
		{"vestnik_auth_failures_total", "Failed SASL authentication attempts.", metrics.Counter, func(s s) int64 { return s.AuthFailures }},
	})
	for reason := range srv.Stats().Closed {
		reg.Func(`vestnik_sessions_closed_total{reason="`+reason+`"}`, "Sessions ended, by close reason.", metrics.Counter,
			func() float64 { return float64(srv.Stats().Closed[reason]) })
	}
}

// clusterMetrics exports the cluster node's counters.
func clusterMetrics(reg *metrics.Registry, node *cluster.Cluster) {
	type s = cluster.Stats
	registerStats(reg, node.Stats, []statMetric[s]{
		{"vestnik_cluster_sent_total", "Messages sent to other nodes.", metrics.Counter, func(s s) int64 { return s.Sent }},
		{"vestnik_cluster_received_total", "Messages received from other nodes.", metrics.Counter, func(s s) int64 { return s.Received }},
		{"vestnik_cluster_spooled_total", "Large messages sent through the spool table.", metrics.Counter, func(s s) int64 { return s.Spooled }},
		{"vestnik_cluster_dropped_total", "Messages to other nodes dropped by a full queue.", metrics.Counter, func(s s) int64 { return s.Dropped }},
		{"vestnik_cluster_send_errors_total", "Batches to other nodes that failed.", metrics.Counter, func(s s) int64 { return s.SendErrors }},
		{"vestnik_cluster_reconnects_total", "Listener reconnections.", metrics.Counter, func(s s) int64 { return s.Reconnects }},
		{"vestnik_cluster_gaps_total", "Sequence gaps in messages from other nodes.", metrics.Counter, func(s s) int64 { return s.Gaps }},
		{"vestnik_cluster_nodes", "Other live nodes.", metrics.Gauge, func(s s) int64 { return s.Nodes }},
		{"vestnik_cluster_remote_sessions", "Sessions held by other nodes.", metrics.Gauge, func(s s) int64 { return s.RemoteSessions }},
	})
}
