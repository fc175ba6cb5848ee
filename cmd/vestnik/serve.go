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
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vestnik/api"
	"vestnik/bridge"
	"vestnik/cluster"
	"vestnik/metrics"
	"vestnik/migrations"
	"vestnik/roster"
	"vestnik/webclient"
	"vestnik/xmppcore"
	"vestnik/xmppcore/extdisco"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/pubsub"
	"vestnik/xmppcore/push"
	"vestnik/xmppcore/upload"
	"vestnik/xmppcore/webhook"
)

// serveConfig is what `vestnik serve` is told by flags and environment.
type serveConfig struct {
	domain  string
	dbURL   string
	httpAt  string
	c2sAt   string
	c2sTLS  string // XEP-0368 direct TLS listen address; "" = none
	tlsCert string
	tlsKey  string
	dataDir string
	demo    string

	hideHistory bool
	webOrigins  string
	secureWeb   bool
	// admins: comma-separated logins of server admins (pubsub node creation).
	admins string
	// adminContact, contacts: XEP-0157 contact addresses; roomMessageRate: muc.Options.MessageRate.
	adminContact, contacts string
	// extServices: a JSON file of XEP-0215 external services (STUN/TURN).
	extServices     string
	roomMessageRate float64
	// cluster: share sessions with other nodes on the same PostgreSQL.
	cluster bool
	nodeID  string
	// The cluster's NATS: the embedded server's route address, the address
	// recorded for other nodes, the route credential, route TLS files, or
	// an existing NATS cluster to join instead.
	clusterListen, clusterAdvertise, clusterSecret string
	clusterTLSCert, clusterTLSKey, clusterTLSCA    string
	natsURL                                        string
	// retention: how long the archive keeps messages (0 = forever).
	retention time.Duration
	// The file store: size limit and per-user quota (parseSize), the
	// public base URL of slot and file URLs, CORS origins for /upload/.
	uploadMaxSize, uploadQuota string
	uploadTypes                string // --upload-allowed-types; "" = every type
	uploadTotal, uploadReserve string
	uploadOrphans              time.Duration
	publicURL, uploadOrigins   string
	// Connection caps (xmppcore.Options) and HTTP timeouts.
	maxConns, maxConnsPerIP, maxUnauth, maxUnauthPerIP int
	httpRead, httpWrite, httpIdle, httpHeader          time.Duration
	// maxDeactivated: share of employees PUT /org may deactivate unforced.
	maxDeactivated float64
	// editWindow: how long authors may edit or delete a message (0 = no limit).
	editWindow time.Duration
	// webhookDeny: hosts, addresses or CIDR ranges webhooks may not point at.
	webhookDeny string
	// debugAt: where Go's profiler (net/http/pprof) listens; empty: nowhere.
	debugAt string
	// XEP-0114 components: listen address, NAME=SECRET pairs, a file of them.
	componentsAt, componentFile string
	components                  componentList
	// pushBody: XEP-0357 notifications carry the message text.
	pushBody bool
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	atLeastTwoPs()
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.domain, "domain", "localhost", "XMPP domain")
	fs.StringVar(&c.dbURL, "db", defaultDB, "database URL: sqlite:PATH or postgres://…")
	fs.StringVar(&c.httpAt, "http", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&c.c2sAt, "c2s", "127.0.0.1:5222", "XMPP client-to-server listen address")
	fs.StringVar(&c.c2sTLS, "c2s-tls", "", "XMPP direct TLS (XEP-0368) listen address, e.g. :5223; empty: none")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate file (PEM)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS key file (PEM)")
	fs.StringVar(&c.dataDir, "data", "./data", "data directory (self-signed certificate, uploads)")
	fs.BoolVar(&c.hideHistory, "hide-history", false, "default for hide_history when members are added to a chat")
	fs.StringVar(&c.admins, "admins", "", "comma-separated logins of server admins (create pubsub nodes, own every chat room in XMPP, XEP-0133 ad-hoc commands)")
	fs.StringVar(&c.adminContact, "admin-contact", "", "comma-separated operator addresses shown to XMPP clients (XEP-0157), e.g. mailto:it@example.com,xmpp:admin@example.com")
	fs.StringVar(&c.extServices, "external-services", "", "JSON file of STUN/TURN and other services offered to XMPP clients (XEP-0215): [{\"type\":\"turn\",\"host\":\"turn.example.com\",\"port\":3478,\"transport\":\"udp\",\"secret\":\"shared TURN REST secret\"},…]; empty: none")
	fs.StringVar(&c.contacts, "contact-addresses", "", "more XEP-0157 addresses as KIND=URI,… (KIND: abuse, admin, feedback, sales, security, status, support)")
	fs.Float64Var(&c.roomMessageRate, "room-message-rate", muc.DefaultMessageRate, "messages per second one person may post to one chat, sustained (bursts of 20; negative: no limit)")
	fs.StringVar(&c.webOrigins, "widget-origins", "", "comma-separated portal origins (https://portal.example.com) whose pages may show /widget.js: live counts and pop-ups over /ws with a widget credential from a one-time login link")
	fs.BoolVar(&c.secureWeb, "secure-cookie", false, "mark the web session cookie Secure (set when users reach the server over HTTPS, e.g. through a proxy)")
	fs.StringVar(&c.demo, "demo", "auto", "load the demo company: auto (into an empty database), on, off")
	fs.DurationVar(&c.retention, "retention", 0, "delete archived messages older than this (e.g. 8760h); 0 keeps them forever")
	fs.StringVar(&c.debugAt, "debug-listen", "", "address serving Go's profiler at /debug/pprof/ (e.g. 127.0.0.1:6060; keep it on loopback); empty: none")
	fs.StringVar(&c.webhookDeny, "webhook-deny-hosts", "", "comma-separated hosts, addresses or CIDR ranges (10.0.0.0/8) outgoing webhooks may not point at; empty: any")
	fs.DurationVar(&c.editWindow, "edit-window", mam.DefaultEditWindow, "how long after sending authors may edit or delete a message (XEP-0308/0424, the browser, REST); 0: no limit")
	fs.BoolVar(&c.cluster, "cluster", true, "on PostgreSQL, serve as one node of several sharing the database (ignored on SQLite)")
	fs.StringVar(&c.nodeID, "node-id", "", "cluster node id ([a-z0-9_], default random)")
	fs.StringVar(&c.clusterListen, "cluster-listen", cluster.DefaultListen, "address the embedded NATS server listens on for routes from other nodes (port 0: any free one)")
	fs.StringVar(&c.clusterAdvertise, "cluster-advertise", "", "host:port other nodes reach this node's routes at, recorded in the database (default: --cluster-listen; required when it listens on every interface)")
	fs.StringVar(&c.clusterSecret, "cluster-secret", "", "route credential every node presents (default: one made by the first node and kept in the database; or VESTNIK_CLUSTER_SECRET)")
	fs.StringVar(&c.clusterTLSCert, "cluster-tls-cert", "", "TLS certificate (PEM) for routes between nodes: with --cluster-tls-key and --cluster-tls-ca, routes require TLS both ways")
	fs.StringVar(&c.clusterTLSKey, "cluster-tls-key", "", "TLS key (PEM) for routes between nodes")
	fs.StringVar(&c.clusterTLSCA, "cluster-tls-ca", "", "CA certificates (PEM) that sign the other nodes' route certificates")
	fs.StringVar(&c.natsURL, "nats-url", "", "join an existing NATS cluster (nats://user:pass@host:4222,…) instead of embedding a NATS server")
	fs.StringVar(&c.uploadMaxSize, "upload-max-size", "100M", "largest file users may upload (bytes, or with K, M, G)")
	fs.StringVar(&c.uploadTypes, "upload-allowed-types", "", "comma-separated media types users may upload, a whole type as image/* (e.g. text/plain,image/*); checked on the type sniffed from the bytes at every door; empty: every type")
	fs.StringVar(&c.uploadQuota, "upload-quota", "5G", "bytes of files each user may store (K, M, G; 0: unlimited)")
	fs.StringVar(&c.uploadTotal, "upload-total", "0", "bytes of files all users together may store (K, M, G, T; 0: no cap but --upload-disk-reserve)")
	fs.StringVar(&c.uploadReserve, "upload-disk-reserve", "1G", "disk space a new file must leave free under --data (K, M, G; 0: none)")
	fs.DurationVar(&c.uploadOrphans, "upload-orphan-after", upload.DefaultOrphanAfter, "delete a file no live message carries (never sent, retracted, or removed by --retention) once it is this old")
	fs.StringVar(&c.publicURL, "public-url", "", "base URL users reach the HTTP server at, for file URLs (e.g. https://chat.example.com behind a proxy; default http://<--http>)")
	fs.StringVar(&c.uploadOrigins, "upload-origins", "", "comma-separated web origins (or *) allowed by CORS to PUT and GET files under /upload/ (browser XMPP clients such as Converse.js); default: --widget-origins")
	fs.IntVar(&c.maxConns, "max-connections", 0, fmt.Sprintf("open XMPP and WebSocket connections on this node (default %d, lowered to fit the descriptor limit; -1: no cap)", xmppcore.MaxConnections))
	fs.IntVar(&c.maxConnsPerIP, "max-connections-per-ip", xmppcore.MaxConnectionsPerIP, "open XMPP and WebSocket connections from one address (an IPv6 /64; -1: no cap)")
	fs.IntVar(&c.maxUnauth, "max-unauthenticated", xmppcore.MaxUnauthenticated, "XMPP streams that have not logged in yet (-1: no cap)")
	fs.IntVar(&c.maxUnauthPerIP, "max-unauthenticated-per-ip", xmppcore.MaxUnauthenticatedPerIP, "XMPP streams from one address that have not logged in yet (-1: no cap)")
	fs.DurationVar(&c.httpHeader, "http-read-header-timeout", HTTPReadHeaderTimeout, "time to read an HTTP request header")
	fs.DurationVar(&c.httpRead, "http-read-timeout", HTTPReadTimeout, "time to read a whole HTTP request, body included (uploads get 10m)")
	fs.DurationVar(&c.httpWrite, "http-write-timeout", HTTPWriteTimeout, "time to answer an HTTP request (WebSockets are not affected; downloads get 10m)")
	fs.DurationVar(&c.httpIdle, "http-idle-timeout", HTTPIdleTimeout, "time an idle keep-alive HTTP connection stays open")
	fs.Float64Var(&c.maxDeactivated, "max-deactivated-share", roster.MaxDeactivatedShare, "share of active employees PUT /api/v1/org may deactivate without ?force=true (0 < share <= 1)")
	fs.StringVar(&c.componentsAt, "components", "", "XEP-0114 external components listen address, e.g. 127.0.0.1:5347; empty: none")
	fs.Var(&c.components, "component", "an external component as NAME=SECRET (NAME a domain such as push.example.com; repeatable, or comma-separated)")
	fs.BoolVar(&c.pushBody, "push-body", false, "XEP-0357 push notifications carry the message's text (last-message-body); off: only the count and the sender reach the app server and the phone vendor")
	fs.StringVar(&c.componentFile, "component-file", "", "file of external components, one NAME=SECRET a line (# comments), kept out of the process list")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	comps, err := components(c.components, c.componentFile)
	if err != nil {
		return err
	}
	if c.maxDeactivated <= 0 || c.maxDeactivated > 1 {
		return errors.New("serve: --max-deactivated-share must be in (0, 1]")
	}
	for _, d := range []time.Duration{c.httpHeader, c.httpRead, c.httpWrite, c.httpIdle} {
		if d <= 0 {
			return errors.New("serve: HTTP timeouts must be positive")
		}
	}
	switch c.demo {
	case "auto", "on", "off":
	default:
		return fmt.Errorf("serve: --demo must be auto, on or off, not %q", c.demo)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return errors.New("serve: --tls-cert and --tls-key go together")
	}
	uploadOpts, err := uploadOptions(c)
	if err != nil {
		return err
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
	reg := metrics.New()
	lat := newLatencies(reg)
	// Outgoing events: queued in the archive's transaction, delivered by
	// the webhook dispatcher (started below, stopped after the XMPP server).
	hooks, err := webhook.New(db, webhook.Options{DenyHosts: splitList(c.webhookDeny), Logger: log, OnDelivery: webhookMetrics(reg)})
	if err != nil {
		return fmt.Errorf("serve: --webhook-deny-hosts: %w", err)
	}
	reg.Func("vestnik_webhook_dropped_total", "Webhook events dropped because the webhook's queue was full.", metrics.Counter,
		func() float64 { return float64(hooks.Dropped()) })
	archive := mam.NewStoreOptions(db, mam.Options{Retention: c.retention, EditWindow: editWindow, OnCommit: lat.commit, OnChange: hooks.ArchiveChange})
	// The file store, under --data, for every door (XEP-0363, REST, web).
	files, err := upload.NewStore(db, filepath.Join(c.dataDir, "uploads"), archive, uploadOpts)
	if err != nil {
		return err
	}
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	defer stopSweep()
	go files.SweepLoop(sweepCtx, log.With("component", "files"))
	retention := archive.Retention(log.With("component", "retention"))
	go retention.Serve()
	defer retention.Shutdown(context.Background())
	if c.maxConns == 0 {
		var lowered bool
		if c.maxConns, lowered = fitDescriptors(xmppcore.MaxConnections); lowered {
			log.Warn("connection cap lowered to fit the descriptor limit (raise ulimit -n)", "max_connections", c.maxConns)
		}
	}
	xopts := xmppcore.Options{Domain: c.domain, TLSConfig: tlsConf, Logger: log,
		MaxConnections: c.maxConns, MaxConnectionsPerIP: c.maxConnsPerIP,
		MaxUnauthenticated: c.maxUnauth, MaxUnauthenticatedPerIP: c.maxUnauthPerIP, Files: files,
		OnMessage: lat.message, OnLogin: lat.login,
		OnNotificationAction: func(ctx context.Context, a xmppcore.NotificationAnswer) {
			hooks.NotificationAction(ctx, webhook.Answer{NotificationID: a.ID, UserID: a.UserID, SenderID: a.SenderID, Tag: a.Tag, Value: a.Value, Link: a.Link})
		}}
	if xopts.ContactAddresses, err = contactAddresses(c.adminContact, c.contacts); err != nil {
		return err
	}
	// Admins run the XEP-0133 ad-hoc commands (announce, online users, end sessions).
	for _, a := range strings.Split(c.admins, ",") {
		if a = strings.TrimSpace(a); a != "" {
			xopts.Admins = append(xopts.Admins, a)
		}
	}
	var node *cluster.Cluster
	if c.cluster && db.DriverName() == migrations.Postgres {
		copts, err := c.clusterOptions()
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		copts.Logger = log
		node, err = cluster.New(db, copts)
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
	chatService := muc.New(chats, xmpp, archive, users, muc.Options{Domain: c.domain, HideHistory: c.hideHistory, Admins: admins, Files: files, Logger: log,
		MessageRate: c.roomMessageRate, OnMembersAdded: hooks.MembersAdded})
	chatService.Register(xmpp)
	// A keyboard button pressed at any door (the core checked it) is an
	// outgoing event.
	xmpp.OnKeyboardPress(func(ctx context.Context, p xmppcore.KeyboardPress) {
		hooks.KeyboardPressed(ctx, webhook.KeyPress{MessageID: p.MessageID, ChatID: p.ChatID, AuthorID: p.AuthorID, ToID: p.ToID,
			UserID: p.UserID, Button: p.Button, Text: p.Text, Command: p.Command, Params: p.Params})
	})
	xmpp.SetDirectInviter(chatService)
	// PEP on users' JIDs and the pubsub.<domain> service; the bookmarks
	// node stays with the chat service.
	pep := pubsub.New(pubsub.NewStore(db), xmpp, users, pubsub.Options{Domain: c.domain, Admins: admins,
		Bookmarks: chatService.BookmarksIQ(), Photos: xmpp, Logger: log})
	pep.Register(xmpp)
	xmpp.SetPEP(pep)
	// Users' photos: uploaded in the browser, set by Jabber clients, or from HR.
	photos := upload.NewPhotos(db, users, xmpp, log)
	xmpp.SetPhotoListener(photos)
	// The web client and its bridge (/, /s/…, /widget.js, /login, /logout, /session, /ws).
	web := bridge.New(db, users, chats, bridge.XMPP(xmpp, users, chats, chatService, archive, log), bridge.NewArchive(archive, chats), bridge.Options{Logger: log, SecureCookie: c.secureWeb, WidgetOrigins: splitList(c.webOrigins), Admit: xmpp.Admit, Guard: xmpp.Throttle(), Files: files,
		Photos: photos})
	xmppMetrics(reg, xmpp)
	reg.Func("vestnik_bridge_connections", "Open web client WebSocket connections.", metrics.Gauge,
		func() float64 { return float64(web.Connections()) })
	web.Register(mux)
	webclient.New().Register(mux)
	restAPI := api.New(users, chatService, xmpp, api.Options{Logger: log, Archive: archive, LoginToken: web.LoginTokenHandler, MaxDeactivatedShare: c.maxDeactivated, Files: files, Webhooks: hooks})
	mux.Handle(api.Prefix+"/", restAPI.Handler())
	mux.Handle(api.BitrixPrefix, restAPI.Handler()) // the Bitrix24-compatible facade
	mux.Handle("GET /avatars/chat/{id}", restAPI.AvatarHandler())

	mux.Handle("GET /xmpp-websocket", xmpp.WebSocketHandler())
	mux.Handle("/http-bind", xmpp.BOSHHandler()) // XEP-0206: POST, and OPTIONS for other origins
	// XEP-0156: where web clients find the WebSocket endpoint.
	mux.Handle("GET /.well-known/host-meta", xmppcore.HostMetaHandler(c.publicURL))
	mux.Handle("GET /.well-known/host-meta.json", xmppcore.HostMetaHandler(c.publicURL))

	// HTTP file upload (XEP-0363) at upload.<domain>; capability URLs.
	upload.NewService(files, users, log).Register(xmpp)
	// XEP-0357: push notifications for users with no connected client.
	push.New(push.NewStore(db), xmpp, push.Options{Body: c.pushBody, Logger: log}).Register(xmpp)
	if c.extServices != "" {
		services, err := extdisco.Load(c.extServices)
		if err != nil {
			return err
		}
		extdisco.Register(xmpp, services)
	}
	mux.Handle("/upload/", files.Handler())

	c2sLn, err := net.Listen("tcp", c.c2sAt)
	if err != nil {
		return fmt.Errorf("serve: c2s: %w", err)
	}
	httpLn, err := net.Listen("tcp", c.httpAt)
	if err != nil {
		return fmt.Errorf("serve: http: %w", err)
	}
	hs := &http.Server{Handler: reg.Instrument(drainRefused(longTransfers(mux))), ReadHeaderTimeout: c.httpHeader, ReadTimeout: c.httpRead,
		WriteTimeout: c.httpWrite, IdleTimeout: c.httpIdle, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(httpLn) }()
	if c.debugAt != "" {
		debugLn, err := net.Listen("tcp", c.debugAt)
		if err != nil {
			return fmt.Errorf("serve: debug: %w", err)
		}
		ds := &http.Server{Handler: debugMux(), ReadHeaderTimeout: c.httpHeader}
		go ds.Serve(debugLn)
		defer ds.Close()
	}
	c2sErr := make(chan error, 2)
	go func() { c2sErr <- xmpp.ServeC2S(c2sLn) }()
	if c.c2sTLS != "" {
		tlsLn, err := net.Listen("tcp", c.c2sTLS)
		if err != nil {
			xmpp.Shutdown(context.Background())
			return fmt.Errorf("serve: c2s-tls: %w", err)
		}
		go func() { c2sErr <- xmpp.ServeC2STLS(tlsLn) }()
	}

	compErr, err := serveComponents(xmpp, c.componentsAt, comps)
	if err != nil {
		xmpp.Shutdown(context.Background())
		return err
	}

	hooks.Start()
	defer hooks.Shutdown(context.Background())
	fmt.Fprintf(stdout, "Vestnik is running: open http://%s (database %s, data %s)\n", httpLn.Addr(), c.dbURL, filepath.Clean(c.dataDir))
	select {
	case <-ctx.Done():
	case err := <-errc:
		xmpp.Shutdown(context.Background())
		return fmt.Errorf("serve: http: %w", err)
	case err := <-c2sErr:
		xmpp.Shutdown(context.Background())
		return fmt.Errorf("serve: c2s: %w", err)
	case err := <-compErr:
		xmpp.Shutdown(context.Background())
		return fmt.Errorf("serve: components: %w", err)
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

// contactAddresses reads --admin-contact (URIs: mailto:, xmpp:, http(s):,
// tel:, sip:, …; a bare e-mail address becomes mailto:) and
// --contact-addresses (KIND=URI pairs).
func contactAddresses(admin, more string) (map[string][]string, error) {
	out := map[string][]string{}
	add := func(flag, kind, a string) error {
		if !strings.Contains(a, ":") && strings.Contains(a, "@") {
			a = "mailto:" + a
		}
		u, err := url.Parse(a)
		if err != nil || u.Scheme == "" || strings.ContainsAny(a, " <>'\"") {
			return fmt.Errorf("serve: %s: %q is not an address like mailto:it@example.com or xmpp:admin@example.com", flag, a)
		}
		out[kind] = append(out[kind], a)
		return nil
	}
	for _, a := range splitList(admin) {
		if err := add("--admin-contact", "admin", a); err != nil {
			return nil, err
		}
	}
	for _, p := range splitList(more) {
		kind, a, ok := strings.Cut(p, "=")
		if !ok || !slices.Contains(xmppcore.ContactKinds, kind) {
			return nil, fmt.Errorf("serve: --contact-addresses: %q is not KIND=URI with KIND one of %s", p, strings.Join(xmppcore.ContactKinds, ", "))
		}
		if err := add("--contact-addresses", kind, a); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// uploadOptions reads the file store's flags.
func uploadOptions(c serveConfig) (upload.Options, error) {
	o := upload.Options{PublicURL: c.publicURL, Origins: splitList(c.uploadOrigins), AllowedTypes: splitList(c.uploadTypes)}
	if o.PublicURL == "" {
		o.PublicURL = publicURL(c.httpAt, c.domain)
	} else if u, err := url.Parse(o.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return o, fmt.Errorf("serve: --public-url must be an http(s) URL like https://chat.example.com, not %q", c.publicURL)
	}
	if len(o.Origins) == 0 {
		o.Origins = splitList(c.webOrigins)
	}
	var err error
	if o.MaxSize, err = parseSize(c.uploadMaxSize); err != nil || o.MaxSize <= 0 {
		return o, fmt.Errorf("serve: --upload-max-size must be a positive size like 100M, not %q", c.uploadMaxSize)
	}
	if o.Quota, err = parseSize(c.uploadQuota); err != nil {
		return o, fmt.Errorf("serve: --upload-quota must be a size like 5G (0: unlimited), not %q", c.uploadQuota)
	}
	if o.Quota == 0 {
		o.Quota = -1
	}
	if o.Total, err = parseSize(c.uploadTotal); err != nil || o.Total < 0 {
		return o, fmt.Errorf("serve: --upload-total must be a size like 500G (0: no cap), not %q", c.uploadTotal)
	}
	if o.DiskReserve, err = parseSize(c.uploadReserve); err != nil || o.DiskReserve < 0 {
		return o, fmt.Errorf("serve: --upload-disk-reserve must be a size like 1G (0: none), not %q", c.uploadReserve)
	}
	if o.DiskReserve == 0 {
		o.DiskReserve = -1
	}
	if c.uploadOrphans <= 0 {
		return o, fmt.Errorf("serve: --upload-orphan-after must be positive, not %s", c.uploadOrphans)
	}
	o.OrphanAfter = c.uploadOrphans
	return o, nil
}

// parseSize reads a byte count with an optional K, M or G suffix (powers
// of 1024; T too; a trailing B or iB is allowed).
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	switch {
	case strings.HasSuffix(t, "K"):
		mult = 1 << 10
	case strings.HasSuffix(t, "M"):
		mult = 1 << 20
	case strings.HasSuffix(t, "G"):
		mult = 1 << 30
	case strings.HasSuffix(t, "T"):
		mult = 1 << 40
	}
	if mult > 1 {
		t = t[:len(t)-1]
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
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

// xmppMetrics exports the XMPP server's counters and gauges, read from one
// snapshot per scrape.
func xmppMetrics(reg *metrics.Registry, srv *xmppcore.Server) {
	type s = xmppcore.Stats
	metrics.Snapshot(reg, srv.Stats, []metrics.Stat[s]{
		{Name: "vestnik_xmpp_connections", Help: "Open XMPP client streams (TCP and WebSocket).", Kind: metrics.Gauge, Read: func(s s) float64 { return float64(s.Connections) }},
		{Name: "vestnik_online_users", Help: "Users with at least one session on this node.", Kind: metrics.Gauge, Read: func(s s) float64 { return float64(s.Users) }},
		{Name: "vestnik_sessions", Help: "Bound sessions on this node, web client included.", Kind: metrics.Gauge, Read: func(s s) float64 { return float64(s.Sessions) }},
		{Name: "vestnik_xmpp_stanzas_in_total", Help: "Stanzas read from XMPP client streams.", Kind: metrics.Counter, Read: func(s s) float64 { return float64(s.StanzasIn) }},
		{Name: "vestnik_xmpp_unauthenticated", Help: "XMPP client streams that have not logged in yet.", Kind: metrics.Gauge, Read: func(s s) float64 { return float64(s.Unauthenticated) }},
		{Name: "vestnik_connections_refused_total", Help: "Connections refused by a connection cap (XMPP and WebSocket doors).", Kind: metrics.Counter, Read: func(s s) float64 { return float64(s.Refused) }},
		{Name: "vestnik_accept_errors_total", Help: "Failed accepts of XMPP client connections (out of descriptors).", Kind: metrics.Counter, Read: func(s s) float64 { return float64(s.AcceptErrors) }},
	}, metrics.LabeledStat[s]{Name: "vestnik_sessions_closed_total", Help: "Sessions ended, by close reason.", Label: "reason", Kind: metrics.Counter,
		Read: func(s s) map[string]int64 { return s.Closed }})
	type t = xmppcore.ThrottleStats
	th := srv.Throttle()
	metrics.Snapshot(reg, th.Stats, nil,
		metrics.LabeledStat[t]{Name: "vestnik_auth_failures_total", Help: "Failed password checks, by door (SASL: xmpp; POST /login: web).", Label: "door", Kind: metrics.Counter,
			Read: func(s t) map[string]int64 { return s.Failures }},
		metrics.LabeledStat[t]{Name: "vestnik_auth_throttled_total", Help: "Login attempts refused unchecked by the password-guessing throttle, by door.", Label: "door", Kind: metrics.Counter,
			Read: func(s t) map[string]int64 { return s.Throttled }})
}

// latencies are the server's latency histograms, fed by the core's hooks.
type latencies struct {
	commitDur, commitSize, messageDur, loginDur *prometheus.HistogramVec
}

func newLatencies(reg *metrics.Registry) *latencies {
	return &latencies{
		commitDur: reg.Histogram("vestnik_archive_commit_seconds", "Time of one archive group commit (a transaction storing one or more messages).", nil),
		commitSize: reg.Histogram("vestnik_archive_commit_messages", "Messages stored by one archive group commit.",
			[]float64{1, 2, 4, 8, 16, 32, 64, 128, 256}),
		messageDur: reg.Histogram("vestnik_message_handling_seconds", "Time from a client's message with a body to it being stored and queued to every recipient's sessions, by type (chat, groupchat).", nil, "type"),
		loginDur:   reg.Histogram("vestnik_xmpp_login_seconds", "Time from a stream's start to a bound session (TLS, SASL, bind); web logins are the POST /login route of vestnik_http_request_duration_seconds.", nil),
	}
}

func (l *latencies) commit(took time.Duration, n int) {
	l.commitDur.WithLabelValues().Observe(took.Seconds())
	l.commitSize.WithLabelValues().Observe(float64(n))
}

func (l *latencies) message(typ string, took time.Duration) {
	l.messageDur.WithLabelValues(typ).Observe(took.Seconds())
}

func (l *latencies) login(took time.Duration) { l.loginDur.WithLabelValues().Observe(took.Seconds()) }

// clusterMetrics exports the cluster node's counters.
func clusterMetrics(reg *metrics.Registry, node *cluster.Cluster) {
	type s = cluster.Stats
	c := func(name, help string, read func(s) int64) metrics.Stat[s] {
		return metrics.Stat[s]{Name: name, Help: help, Kind: metrics.Counter, Read: func(s s) float64 { return float64(read(s)) }}
	}
	g := func(name, help string, read func(s) int64) metrics.Stat[s] {
		return metrics.Stat[s]{Name: name, Help: help, Kind: metrics.Gauge, Read: func(s s) float64 { return float64(read(s)) }}
	}
	metrics.Snapshot(reg, node.Stats, []metrics.Stat[s]{
		c("vestnik_cluster_sent_total", "Messages sent to other nodes.", func(s s) int64 { return s.Sent }),
		c("vestnik_cluster_received_total", "Messages received from other nodes.", func(s s) int64 { return s.Received }),
		c("vestnik_cluster_dropped_total", "Publish errors and NATS slow-consumer events between nodes.", func(s s) int64 { return s.Dropped }),
		c("vestnik_cluster_reconnects_total", "NATS client reconnections.", func(s s) int64 { return s.Reconnects }),
		c("vestnik_cluster_gaps_total", "Gaps seen in other nodes' session streams (repaired by a snapshot).", func(s s) int64 { return s.Gaps }),
		c("vestnik_cluster_snapshots_total", "Session snapshots taken from other nodes.", func(s s) int64 { return s.Snapshots }),
		c("vestnik_cluster_nodes_expired_total", "Nodes taken for dead after missed heartbeats.", func(s s) int64 { return s.NodesExpired }),
		g("vestnik_cluster_routes", "NATS routes of the embedded server.", func(s s) int64 { return s.Routes }),
		g("vestnik_cluster_nodes", "Other live nodes.", func(s s) int64 { return s.Nodes }),
		g("vestnik_cluster_remote_sessions", "Sessions held by other nodes.", func(s s) int64 { return s.RemoteSessions }),
	})
}

// webhookMetrics counts webhook attempts by outcome and observes how long
// a delivered event waited in the queue.
func webhookMetrics(reg *metrics.Registry) func(ok bool, attempt, queued time.Duration) {
	var delivered, failed atomic.Int64
	reg.Func("vestnik_webhook_delivered_total", "Webhook events delivered (2xx).", metrics.Counter,
		func() float64 { return float64(delivered.Load()) })
	reg.Func("vestnik_webhook_failed_attempts_total", "Webhook delivery attempts that failed (retried later).", metrics.Counter,
		func() float64 { return float64(failed.Load()) })
	return func(ok bool, attempt, queued time.Duration) {
		if ok {
			delivered.Add(1)
		} else {
			failed.Add(1)
		}
	}
}

// atLeastTwoPs gives the scheduler two Ps on a machine (or CPU set) of
// one CPU, unless GOMAXPROCS says otherwise. A single P busy with ready
// goroutines looks for network input only when it runs out of them or
// when sysmon polls, at most every 10 ms, so under load a message waits
// up to that long before its reader runs; with a second P one thread
// waits in the poller and takes input as it comes (docs/performance.md:
// p99 from tsung's stamp to the recipient's socket 35-50 ms -> 9-24 ms).
func atLeastTwoPs() {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
}
