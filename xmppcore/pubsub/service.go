package pubsub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"strings"

	"mellium.im/xmpp/jid"

	"vestnik/roster"
	"vestnik/xmppcore"
)

// Namespaces.
const (
	NS       = "http://jabber.org/protocol/pubsub"
	NSOwner  = "http://jabber.org/protocol/pubsub#owner"
	NSEvent  = "http://jabber.org/protocol/pubsub#event"
	NSErrors = "http://jabber.org/protocol/pubsub#errors"

	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsBookmarks  = "urn:xmpp:bookmarks:1"
	nsStorage    = "storage:bookmarks" // XEP-0048 bookmarks in PEP (XEP-0223), kept by the chat service too
)

// Limits.
const (
	// MaxPayload bounds a published item's XML in bytes.
	MaxPayload = 64 << 10
	// MaxNodeName bounds a node name in bytes.
	MaxNodeName = 1024
	// MaxItemID bounds an item id in bytes.
	MaxItemID = 1024
	// MaxNodes bounds the nodes of one PEP account.
	MaxNodes = 256
	// MaxServiceNodes bounds the nodes of the pubsub.<domain> service.
	MaxServiceNodes = 10000
)

// Router is what the service needs from the XMPP server.
type Router interface {
	Route(ctx context.Context, el *xmppcore.Element)
	SendToAvailable(userID int64, el *xmppcore.Element)
	Online(userID int64) bool
}

// Options tune the service. Zero values are the documented defaults.
type Options struct {
	// Domain is the XMPP domain; the service is at "pubsub."+Domain.
	Domain string
	// Admins are the logins (or bare JIDs) of server admins: they may
	// create nodes on the service and act as owners of every node. With
	// no admins, any user of the server may create nodes.
	Admins []string
	// Bookmarks answers PEP requests for the node urn:xmpp:bookmarks:1
	// (the chat service's handler); nil: that node is kept here too.
	Bookmarks xmppcore.IQHandler
	// Photos, when set, gets a user's XEP-0084 avatar each time they
	// publish its metadata on PEP, for their vCard PHOTO (XEP-0398):
	// clients that read only vCards (Converse.js) see avatars set by
	// Conversations or Dino.
	Photos PhotoSetter
	Logger *slog.Logger
}

// PhotoSetter keeps the PHOTO of a user's vCard (xmppcore.Server).
type PhotoSetter interface {
	// SetVCardPhoto replaces the PHOTO of the account's vCard; an empty
	// binval removes it.
	SetVCardPhoto(ctx context.Context, login, mimeType, binval string) error
}

// Service serves PEP on bare JIDs and the pubsub.<domain> component.
type Service struct {
	store  *Store
	router Router
	users  *roster.Store
	opts   Options
	host   string
	admins map[string]bool
	log    *slog.Logger
}

// New returns the service; Register plugs it into the XMPP server.
func New(store *Store, router Router, users *roster.Store, opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Service{store: store, router: router, users: users, opts: opts, host: "pubsub." + opts.Domain,
		admins: map[string]bool{}, log: opts.Logger.With("component", "pubsub")}
	for _, a := range opts.Admins {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !strings.Contains(a, "@") {
			a += "@" + opts.Domain
		}
		s.admins[a] = true
	}
	return s
}

// Host is the component's domain, pubsub.<domain>.
func (s *Service) Host() string { return s.host }

// Register makes the service the component at Host() and the handler of
// pubsub IQs on users' own JIDs (PEP).
func (s *Service) Register(srv *xmppcore.Server) {
	srv.RegisterComponent(s.host, s)
	srv.HandleIQ(NS, s.pepIQ)
	srv.HandleIQ(NSOwner, s.pepIQ)
	if s.opts.Photos != nil {
		srv.AddAccountFeature(NSVCardConversion)
	}
	for _, f := range []string{NS + "#publish", NS + "#auto-create", NS + "#publish-options", NS + "#retract-items",
		NS + "#retrieve-items", NS + "#subscribe", NS + "#config-node", NS + "#config-node-max", NS + "#last-published", NS + "#persistent-items"} {
		srv.AddFeature(f)
	}
}

// IsAdmin reports whether bare is a server admin.
func (s *Service) IsAdmin(bare string) bool { return s.admins[bare] }

// perr is a protocol error with an optional pubsub#errors condition.
type perr struct {
	typ, cond, app, text string
}

func (e *perr) Error() string { return "pubsub: " + e.cond }

func errOf(typ, cond, app, text string) *perr {
	return &perr{typ: typ, cond: cond, app: app, text: text}
}

var (
	errBadRequest   = errOf("modify", "bad-request", "", "")
	errNotFound     = errOf("cancel", "item-not-found", "", "")
	errForbidden    = errOf("auth", "forbidden", "", "")
	errNotImpl      = errOf("cancel", "feature-not-implemented", "", "")
	errNodeRequired = errOf("modify", "bad-request", "nodeid-required", "")
	errConflict     = errOf("cancel", "conflict", "", "")
)

func (e *perr) element() *xmppcore.Element {
	el := xmppcore.NewElement(xmppcore.NSClient, "error", "type", e.typ)
	el.AddChild(xmppcore.NewElement(xmppcore.NSStanzas, e.cond))
	if e.text != "" {
		el.AddText(xmppcore.NSStanzas, "text", e.text)
	}
	if e.app != "" {
		el.AddChild(xmppcore.NewElement(NSErrors, e.app))
	}
	return el
}

// request is one pubsub IQ being served.
type request struct {
	from    jid.JID // the requesting session
	bare    string  // its bare JID
	service string  // PEP owner's bare JID, or the service host
	pep     bool
	admin   bool
	// fromVCard: published by the server from a vCard PHOTO (XEP-0398),
	// not to be converted back.
	fromVCard bool
	iq        *xmppcore.Element
	after     []func() // notifications, sent once the IQ is answered
}

// later queues f to run after the answer to the request was sent.
func (r *request) later(f func()) { r.after = append(r.after, f) }

func (r *request) runAfter() {
	for _, f := range r.after {
		f()
	}
}

func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// pepIQ serves pubsub IQs on a user's own bare JID.
func (s *Service) pepIQ(ctx context.Context, sess *xmppcore.Session, iq *xmppcore.Element) (*xmppcore.Element, error) {
	from := sess.JID()
	service := from.Bare().String()
	if to := iq.AttrValue("to"); to != "" && to != service {
		tj, err := jid.Parse(to)
		if err != nil || tj.Localpart() == "" {
			return nil, xmppcore.ErrServiceUnavailable()
		}
		service = tj.Bare().String()
	}
	ps := iq.FirstChild()
	if ps == nil || len(ps.Children) == 0 {
		return nil, xmppcore.ErrBadRequest("")
	}
	if node := ps.Children[0].AttrValue("node"); s.opts.Bookmarks != nil && (node == nsBookmarks || node == nsStorage) && ps.Name.Space == NS {
		return s.opts.Bookmarks(ctx, sess, iq)
	}
	r := &request{from: from, bare: from.Bare().String(), service: service, pep: true, admin: false, iq: iq}
	res, err := s.serve(ctx, r, ps)
	if err == nil && len(r.after) > 0 {
		// Notifications follow the IQ result (clients wait for it).
		sess.AfterReply(r.runAfter)
	}
	var pe *perr
	if errors.As(err, &pe) {
		se := &xmppcore.StanzaError{Type: pe.typ, Condition: pe.cond, Text: pe.text}
		if pe.app != "" {
			se.App = xmppcore.NewElement(NSErrors, pe.app)
		}
		return nil, se
	}
	if err != nil {
		s.log.Error("pep request", "err", err)
		return nil, xmppcore.ErrInternal()
	}
	return res, nil
}

// HandleStanza implements xmppcore.Component for pubsub.<domain>.
func (s *Service) HandleStanza(ctx context.Context, from jid.JID, el *xmppcore.Element) {
	if el.Name.Local != "iq" {
		if el.Name.Local == "message" && el.AttrValue("type") != "error" {
			s.replyError(ctx, from, el, errOf("cancel", "service-unavailable", "", ""))
		}
		return
	}
	typ := el.AttrValue("type")
	if typ != "get" && typ != "set" {
		return
	}
	p := el.FirstChild()
	if p == nil {
		s.replyError(ctx, from, el, errBadRequest)
		return
	}
	to, err := jid.Parse(el.AttrValue("to"))
	if err != nil || to.Localpart() != "" || to.Resourcepart() != "" {
		s.replyError(ctx, from, el, errOf("cancel", "service-unavailable", "", ""))
		return
	}
	var res *xmppcore.Element
	req := &request{}
	switch {
	case p.Name.Space == nsDiscoInfo && typ == "get":
		res, err = s.discoInfo(ctx, p.AttrValue("node"))
	case p.Name.Space == nsDiscoItems && typ == "get":
		res, err = s.discoItems(ctx, p.AttrValue("node"))
	case p.Name.Space == "urn:xmpp:ping" && typ == "get":
	case p.Name.Space == NS || p.Name.Space == NSOwner:
		if len(p.Children) == 0 {
			err = errBadRequest
			break
		}
		req = &request{from: from, bare: from.Bare().String(), service: s.host, admin: s.admins[from.Bare().String()], iq: el}
		res, err = s.serve(ctx, req, p)
	default:
		err = errOf("cancel", "service-unavailable", "", "")
	}
	if err != nil {
		var pe *perr
		if !errors.As(err, &pe) {
			s.log.Error("pubsub request", "err", err)
			pe = errOf("wait", "internal-server-error", "", "")
		}
		s.replyError(ctx, from, el, pe)
		return
	}
	r := xmppcore.NewElement(xmppcore.NSClient, "iq", "type", "result", "id", el.AttrValue("id"), "from", s.host, "to", from.String())
	if res != nil {
		r.AddChild(res)
	}
	s.router.Route(ctx, r)
	req.runAfter()
}

func (s *Service) replyError(ctx context.Context, from jid.JID, el *xmppcore.Element, e *perr) {
	r := xmppcore.NewElement(xmppcore.NSClient, el.Name.Local, "type", "error", "id", el.AttrValue("id"), "from", el.AttrValue("to"), "to", from.String())
	r.Children = append(r.Children, el.Children...)
	r.AddChild(e.element())
	s.router.Route(ctx, r)
}

func (s *Service) discoInfo(ctx context.Context, node string) (*xmppcore.Element, error) {
	q := xmppcore.NewElement(nsDiscoInfo, "query")
	if node != "" {
		n, err := s.store.Node(ctx, s.host, node)
		if errors.Is(err, ErrNotFound) {
			return nil, errNotFound
		}
		if err != nil {
			return nil, err
		}
		q.SetAttr("node", node)
		q.AddChild(xmppcore.NewElement(nsDiscoInfo, "identity", "category", "pubsub", "type", "leaf"))
		q.AddChild(xmppcore.NewElement(nsDiscoInfo, "feature", "var", NS))
		meta := xmppcore.NewElement(NSData, "x", "type", "result")
		meta.AddChild(withValue(xmppcore.NewElement(NSData, "field", "var", "FORM_TYPE", "type", "hidden"), "http://jabber.org/protocol/pubsub#meta-data"))
		meta.AddChild(withValue(xmppcore.NewElement(NSData, "field", "var", "pubsub#title"), n.Config.Title))
		meta.AddChild(withValue(xmppcore.NewElement(NSData, "field", "var", "pubsub#access_model"), n.Config.AccessModel))
		q.AddChild(meta)
		return q, nil
	}
	q.AddChild(xmppcore.NewElement(nsDiscoInfo, "identity", "category", "pubsub", "type", "service", "name", "Publish-subscribe"))
	for _, f := range []string{nsDiscoInfo, nsDiscoItems, NS, NS + "#create-nodes", NS + "#delete-nodes", NS + "#publish", NS + "#retract-items",
		NS + "#retrieve-items", NS + "#subscribe", NS + "#config-node", NS + "#modify-affiliations", NS + "#publish-options",
		NS + "#persistent-items", NS + "#multi-items", NS + "#last-published", NS + "#purge-nodes", NS + "#retrieve-subscriptions"} {
		q.AddChild(xmppcore.NewElement(nsDiscoInfo, "feature", "var", f))
	}
	return q, nil
}

func (s *Service) discoItems(ctx context.Context, node string) (*xmppcore.Element, error) {
	q := xmppcore.NewElement(nsDiscoItems, "query")
	if node != "" {
		q.SetAttr("node", node)
		return q, nil
	}
	nodes, err := s.store.Nodes(ctx, s.host)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		it := xmppcore.NewElement(nsDiscoItems, "item", "jid", s.host, "node", n.Name)
		if n.Config.Title != "" {
			it.SetAttr("name", n.Config.Title)
		}
		q.AddChild(it)
	}
	return q, nil
}

// serve runs one pubsub or pubsub#owner request.
func (s *Service) serve(ctx context.Context, r *request, ps *xmppcore.Element) (*xmppcore.Element, error) {
	typ := r.iq.AttrValue("type")
	op := ps.Children[0]
	if ps.Name.Space == NSOwner {
		switch {
		case op.Name.Local == "configure" && typ == "get":
			return s.configureGet(ctx, r, op)
		case op.Name.Local == "configure" && typ == "set":
			return nil, s.configureSet(ctx, r, op)
		case op.Name.Local == "default" && typ == "get":
			cfg := DefaultConfig()
			if r.pep {
				cfg = DefaultPEPConfig()
			}
			return xmppcore.NewElement(NSOwner, "pubsub").AddChild(xmppcore.NewElement(NSOwner, "default").AddChild(cfg.Form())), nil
		case op.Name.Local == "delete" && typ == "set":
			return nil, s.delete(ctx, r, op)
		case op.Name.Local == "purge" && typ == "set":
			return nil, s.purge(ctx, r, op)
		case op.Name.Local == "affiliations" && typ == "get":
			return s.affiliationsGet(ctx, r, op)
		case op.Name.Local == "affiliations" && typ == "set":
			return nil, s.affiliationsSet(ctx, r, op)
		case op.Name.Local == "subscriptions" && typ == "get":
			return s.subscriptionsGet(ctx, r, op)
		}
		return nil, errNotImpl
	}
	switch {
	case op.Name.Local == "create" && typ == "set":
		return s.create(ctx, r, op, ps)
	case op.Name.Local == "publish" && typ == "set":
		return s.publish(ctx, r, op, ps)
	case op.Name.Local == "retract" && typ == "set":
		return nil, s.retract(ctx, r, op)
	case op.Name.Local == "subscribe" && typ == "set":
		return s.subscribe(ctx, r, op)
	case op.Name.Local == "unsubscribe" && typ == "set":
		return s.unsubscribe(ctx, r, op)
	case op.Name.Local == "items" && typ == "get":
		return s.items(ctx, r, op)
	case op.Name.Local == "subscriptions" && typ == "get":
		return s.mySubscriptions(ctx, r)
	}
	return nil, errNotImpl
}

// isOwner: the PEP owner, an admin, or an owner-affiliated JID.
func (s *Service) isOwner(ctx context.Context, r *request, n *Node) (bool, error) {
	if r.pep {
		return r.bare == r.service, nil
	}
	if r.admin {
		return true, nil
	}
	aff, err := s.store.AffiliationOf(ctx, n, r.bare)
	return aff == "owner", err
}

func (s *Service) node(ctx context.Context, r *request, op *xmppcore.Element) (*Node, error) {
	name := op.AttrValue("node")
	if name == "" {
		return nil, errNodeRequired
	}
	n, err := s.store.Node(ctx, r.service, name)
	if errors.Is(err, ErrNotFound) {
		return nil, errNotFound
	}
	return n, err
}

func (s *Service) ownedNode(ctx context.Context, r *request, op *xmppcore.Element) (*Node, error) {
	n, err := s.node(ctx, r, op)
	if err != nil {
		return nil, err
	}
	ok, err := s.isOwner(ctx, r, n)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errForbidden
	}
	return n, nil
}

// nodeLimit is how many nodes the request's service may hold.
func (s *Service) nodeLimit(r *request) int {
	if r.pep {
		return MaxNodes
	}
	return MaxServiceNodes
}

func validNodeName(name string) bool {
	return name != "" && len(name) <= MaxNodeName && !strings.ContainsAny(name, "\x00")
}

func (s *Service) create(ctx context.Context, r *request, op, ps *xmppcore.Element) (*xmppcore.Element, error) {
	name := op.AttrValue("node")
	cfg := DefaultConfig()
	if r.pep {
		if r.bare != r.service {
			return nil, errForbidden
		}
		cfg = DefaultPEPConfig()
	} else if !r.admin && (len(s.admins) > 0 || r.from.Domainpart() != s.opts.Domain) {
		return nil, errForbidden
	}
	instant := name == ""
	if instant {
		if r.pep {
			return nil, errNodeRequired
		}
		name = randomID()
	}
	if !validNodeName(name) {
		return nil, errBadRequest
	}
	if c := ps.Child(ps.Name.Space, "configure"); c != nil {
		if x := c.Child(NSData, "x"); x != nil {
			var err error
			if cfg, err = cfg.Apply(formValues(x)); err != nil {
				return nil, errOf("modify", "not-acceptable", "", err.Error())
			}
		}
	}
	if _, err := s.store.Create(ctx, r.service, name, cfg, r.bare, s.nodeLimit(r)); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, errConflict
		}
		if errors.Is(err, ErrTooMany) {
			return nil, errOf("wait", "resource-constraint", "", "too many nodes")
		}
		return nil, err
	}
	if instant {
		return xmppcore.NewElement(NS, "pubsub").AddChild(xmppcore.NewElement(NS, "create", "node", name)), nil
	}
	return nil, nil
}

// canPublish applies the publish model.
func (s *Service) canPublish(ctx context.Context, r *request, n *Node) (bool, error) {
	if r.pep {
		return r.bare == r.service, nil
	}
	if r.admin {
		return true, nil
	}
	aff, err := s.store.AffiliationOf(ctx, n, r.bare)
	if err != nil {
		return false, err
	}
	switch {
	case aff == "owner" || aff == "publisher":
		return true, nil
	case aff == "outcast":
		return false, nil
	case n.Config.PublishModel == "open":
		return true, nil
	case n.Config.PublishModel == "subscribers":
		subs, err := s.store.Subscribers(ctx, n)
		if err != nil {
			return false, err
		}
		for _, sub := range subs {
			if sub.JID == r.bare || strings.HasPrefix(sub.JID, r.bare+"/") {
				return true, nil
			}
		}
	}
	return false, nil
}

func (s *Service) publish(ctx context.Context, r *request, op, ps *xmppcore.Element) (*xmppcore.Element, error) {
	name := op.AttrValue("node")
	if name == "" {
		return nil, errNodeRequired
	}
	if !validNodeName(name) {
		return nil, errBadRequest
	}
	var opts map[string][]string
	if po := ps.Child(NS, "publish-options"); po != nil {
		if x := po.Child(NSData, "x"); x != nil {
			opts = formValues(x)
		}
	}
	n, err := s.store.Node(ctx, r.service, name)
	if errors.Is(err, ErrNotFound) {
		if !r.pep {
			return nil, errNotFound
		}
		if r.bare != r.service {
			return nil, errForbidden
		}
		cfg := DefaultPEPConfig()
		if opts != nil {
			if cfg, err = cfg.Apply(opts); err != nil {
				return nil, errOf("modify", "not-acceptable", "", err.Error())
			}
			opts = nil
		}
		n, err = s.store.Create(ctx, r.service, name, cfg, r.bare, s.nodeLimit(r))
		if errors.Is(err, ErrConflict) {
			n, err = s.store.Node(ctx, r.service, name)
		}
		if errors.Is(err, ErrTooMany) {
			return nil, errOf("wait", "resource-constraint", "", "too many nodes")
		}
	}
	if err != nil {
		return nil, err
	}
	if ok, err := s.canPublish(ctx, r, n); err != nil || !ok {
		if err == nil {
			err = errForbidden
		}
		return nil, err
	}
	if opts != nil {
		if f := n.Config.Matches(opts); f != "" {
			return nil, errOf("cancel", "conflict", "precondition-not-met", "Field does not match: "+f)
		}
	}
	items := make([]*xmppcore.Element, 0, 1)
	for _, c := range op.Children {
		if c.Name.Local == "item" {
			items = append(items, c)
		}
	}
	if len(items) > 1 {
		return nil, errOf("modify", "bad-request", "invalid-payload", "")
	}
	it := Item{Publisher: r.bare}
	var payload *xmppcore.Element
	if len(items) == 1 {
		it.ID = items[0].AttrValue("id")
		if len(items[0].Children) > 1 {
			return nil, errOf("modify", "bad-request", "invalid-payload", "")
		}
		payload = items[0].FirstChild()
	}
	if it.ID == "" {
		it.ID = randomID()
	}
	if len(it.ID) > MaxItemID {
		return nil, errBadRequest
	}
	if payload != nil {
		it.Payload = string(payload.AppendXML(nil, xmppcore.NSClient))
		if len(it.Payload) > MaxPayload {
			return nil, errOf("modify", "not-acceptable", "payload-too-big", "")
		}
	}
	if _, err := s.store.Publish(ctx, n, it); err != nil {
		return nil, err
	}
	dctx := context.WithoutCancel(ctx)
	r.later(func() { s.notifyItem(dctx, r.service, n, it, payload) })
	if r.pep && n.Name == nsAvatarMeta && s.opts.Photos != nil && !r.fromVCard {
		r.later(func() { s.avatarToVCard(dctx, r.service, payload) })
	}
	return xmppcore.NewElement(NS, "pubsub").AddChild(
		xmppcore.NewElement(NS, "publish", "node", n.Name).AddChild(xmppcore.NewElement(NS, "item", "id", it.ID))), nil
}

func (s *Service) retract(ctx context.Context, r *request, op *xmppcore.Element) error {
	n, err := s.node(ctx, r, op)
	if err != nil {
		return err
	}
	if ok, err := s.canPublish(ctx, r, n); err != nil || !ok {
		if err == nil {
			err = errForbidden
		}
		return err
	}
	it := op.Child(NS, "item")
	if it == nil || it.AttrValue("id") == "" {
		return errOf("modify", "bad-request", "item-required", "")
	}
	if err := s.store.Retract(ctx, n, it.AttrValue("id")); err != nil {
		if errors.Is(err, ErrNotFound) {
			return errNotFound
		}
		return err
	}
	if n.Config.NotifyRetract || op.AttrValue("notify") == "1" || op.AttrValue("notify") == "true" {
		ev := xmppcore.NewElement(NSEvent, "items", "node", n.Name).AddChild(xmppcore.NewElement(NSEvent, "retract", "id", it.AttrValue("id")))
		dctx := context.WithoutCancel(ctx)
		r.later(func() { s.notify(dctx, r.service, n, ev) })
	}
	return nil
}

// canSubscribe applies the access model. In Vestnik every user sees every
// colleague's presence, so presence and roster nodes are open to users of
// this server.
func (s *Service) canSubscribe(ctx context.Context, r *request, n *Node) (bool, error) {
	if owner, err := s.isOwner(ctx, r, n); err != nil || owner {
		return owner, err
	}
	aff, err := s.store.AffiliationOf(ctx, n, r.bare)
	if err != nil {
		return false, err
	}
	if aff == "outcast" {
		return false, nil
	}
	switch n.Config.AccessModel {
	case "open":
		return true, nil
	case "presence", "roster":
		return r.from.Domainpart() == s.opts.Domain, nil
	default:
		return aff == "member" || aff == "publisher" || aff == "publish-only", nil
	}
}

func (s *Service) subscribe(ctx context.Context, r *request, op *xmppcore.Element) (*xmppcore.Element, error) {
	n, err := s.node(ctx, r, op)
	if err != nil {
		return nil, err
	}
	sj, err := jid.Parse(op.AttrValue("jid"))
	if err != nil {
		return nil, errOf("modify", "bad-request", "invalid-jid", "")
	}
	if !sj.Bare().Equal(r.from.Bare()) {
		return nil, errOf("modify", "bad-request", "invalid-jid", "")
	}
	if ok, err := s.canSubscribe(ctx, r, n); err != nil || !ok {
		if err == nil {
			err = errOf("cancel", "not-allowed", "closed-node", "")
			if n.Config.AccessModel == "presence" || n.Config.AccessModel == "roster" {
				err = errOf("auth", "not-authorized", "presence-subscription-required", "")
			}
		}
		return nil, err
	}
	if _, err := s.store.Subscribe(ctx, n, sj.String(), randomID()); err != nil {
		return nil, err
	}
	if n.Config.SendLast == "on_sub" || n.Config.SendLast == "on_sub_and_presence" {
		last, err := s.store.Items(ctx, n, nil, 1)
		if err != nil {
			return nil, err
		}
		if len(last) == 1 {
			ev := xmppcore.NewElement(NSEvent, "items", "node", n.Name).AddChild(s.itemElement(NSEvent, r.service, n, &last[0], true))
			dctx := context.WithoutCancel(ctx)
			r.later(func() { s.sendEvent(dctx, r.service, sj.String(), n, ev) })
		}
	}
	return xmppcore.NewElement(NS, "pubsub").AddChild(
		xmppcore.NewElement(NS, "subscription", "node", n.Name, "jid", sj.String(), "subscription", "subscribed")), nil
}

func (s *Service) unsubscribe(ctx context.Context, r *request, op *xmppcore.Element) (*xmppcore.Element, error) {
	n, err := s.node(ctx, r, op)
	if err != nil {
		return nil, err
	}
	sj, err := jid.Parse(op.AttrValue("jid"))
	if err != nil || !sj.Bare().Equal(r.from.Bare()) {
		owner, oerr := s.isOwner(ctx, r, n)
		if err != nil || oerr != nil || !owner {
			return nil, errOf("modify", "bad-request", "invalid-jid", "")
		}
	}
	if err := s.store.Unsubscribe(ctx, n, sj.String()); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, errOf("cancel", "unexpected-request", "not-subscribed", "")
		}
		return nil, err
	}
	return xmppcore.NewElement(NS, "pubsub").AddChild(
		xmppcore.NewElement(NS, "subscription", "node", n.Name, "jid", sj.String(), "subscription", "none")), nil
}

func (s *Service) items(ctx context.Context, r *request, op *xmppcore.Element) (*xmppcore.Element, error) {
	n, err := s.node(ctx, r, op)
	if err != nil {
		return nil, err
	}
	if ok, err := s.canSubscribe(ctx, r, n); err != nil || !ok {
		if err == nil {
			err = errForbidden
		}
		return nil, err
	}
	var ids []string
	for _, c := range op.Children {
		if c.Name.Local == "item" && c.AttrValue("id") != "" {
			ids = append(ids, c.AttrValue("id"))
		}
	}
	max := 0
	if v := op.AttrValue("max_items"); v != "" {
		if max, err = strconv.Atoi(v); err != nil || max < 1 {
			return nil, errBadRequest
		}
	}
	list, err := s.store.Items(ctx, n, ids, max)
	if err != nil {
		return nil, err
	}
	out := xmppcore.NewElement(NS, "items", "node", n.Name)
	for i := len(list) - 1; i >= 0; i-- { // oldest first
		out.AddChild(s.itemElement(NS, r.service, n, &list[i], true))
	}
	return xmppcore.NewElement(NS, "pubsub").AddChild(out), nil
}

func (s *Service) mySubscriptions(ctx context.Context, r *request) (*xmppcore.Element, error) {
	subs, err := s.store.SubscriptionsOf(ctx, r.service, r.bare)
	if err != nil {
		return nil, err
	}
	out := xmppcore.NewElement(NS, "subscriptions")
	for _, sub := range subs {
		out.AddChild(xmppcore.NewElement(NS, "subscription", "node", sub.Node, "jid", sub.JID, "subscription", "subscribed", "subid", sub.SubID))
	}
	return xmppcore.NewElement(NS, "pubsub").AddChild(out), nil
}

func (s *Service) configureGet(ctx context.Context, r *request, op *xmppcore.Element) (*xmppcore.Element, error) {
	n, err := s.ownedNode(ctx, r, op)
	if err != nil {
		return nil, err
	}
	return xmppcore.NewElement(NSOwner, "pubsub").AddChild(
		xmppcore.NewElement(NSOwner, "configure", "node", n.Name).AddChild(n.Config.Form())), nil
}

func (s *Service) configureSet(ctx context.Context, r *request, op *xmppcore.Element) error {
	n, err := s.ownedNode(ctx, r, op)
	if err != nil {
		return err
	}
	x := op.Child(NSData, "x")
	if x == nil {
		return errBadRequest
	}
	if x.AttrValue("type") == "cancel" {
		return nil
	}
	cfg, err := n.Config.Apply(formValues(x))
	if err != nil {
		return errOf("modify", "not-acceptable", "", err.Error())
	}
	return s.store.Configure(ctx, n, cfg)
}

func (s *Service) delete(ctx context.Context, r *request, op *xmppcore.Element) error {
	n, err := s.ownedNode(ctx, r, op)
	if err != nil {
		return err
	}
	subs, err := s.store.Delete(ctx, n)
	if errors.Is(err, ErrNotFound) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	if n.Config.NotifyDelete {
		dctx := context.WithoutCancel(ctx)
		r.later(func() {
			for _, sub := range subs {
				s.sendEvent(dctx, r.service, sub, n, xmppcore.NewElement(NSEvent, "delete", "node", n.Name))
			}
		})
	}
	return nil
}

func (s *Service) purge(ctx context.Context, r *request, op *xmppcore.Element) error {
	n, err := s.ownedNode(ctx, r, op)
	if err != nil {
		return err
	}
	if err := s.store.Purge(ctx, n); err != nil {
		return err
	}
	dctx := context.WithoutCancel(ctx)
	r.later(func() { s.notify(dctx, r.service, n, xmppcore.NewElement(NSEvent, "purge", "node", n.Name)) })
	return nil
}

func (s *Service) affiliationsGet(ctx context.Context, r *request, op *xmppcore.Element) (*xmppcore.Element, error) {
	n, err := s.ownedNode(ctx, r, op)
	if err != nil {
		return nil, err
	}
	affs, err := s.store.Affiliations(ctx, n)
	if err != nil {
		return nil, err
	}
	out := xmppcore.NewElement(NSOwner, "affiliations", "node", n.Name)
	for _, a := range affs {
		out.AddChild(xmppcore.NewElement(NSOwner, "affiliation", "affiliation", a.Affiliation, "jid", a.JID))
	}
	return xmppcore.NewElement(NSOwner, "pubsub").AddChild(out), nil
}

var affiliations = []string{"owner", "publisher", "publish-only", "member", "none", "outcast"}

func (s *Service) affiliationsSet(ctx context.Context, r *request, op *xmppcore.Element) error {
	n, err := s.ownedNode(ctx, r, op)
	if err != nil {
		return err
	}
	for _, a := range op.Children {
		if a.Name.Local != "affiliation" {
			continue
		}
		j, err := jid.Parse(a.AttrValue("jid"))
		if err != nil || !oneOf(a.AttrValue("affiliation"), affiliations) {
			return errBadRequest
		}
		if err := s.store.SetAffiliation(ctx, n, j.Bare().String(), a.AttrValue("affiliation")); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) subscriptionsGet(ctx context.Context, r *request, op *xmppcore.Element) (*xmppcore.Element, error) {
	n, err := s.ownedNode(ctx, r, op)
	if err != nil {
		return nil, err
	}
	subs, err := s.store.Subscribers(ctx, n)
	if err != nil {
		return nil, err
	}
	out := xmppcore.NewElement(NSOwner, "subscriptions", "node", n.Name)
	for _, sub := range subs {
		out.AddChild(xmppcore.NewElement(NSOwner, "subscription", "jid", sub.JID, "subscription", "subscribed", "subid", sub.SubID))
	}
	return xmppcore.NewElement(NSOwner, "pubsub").AddChild(out), nil
}

// itemElement renders a stored item in namespace space. The service
// names the publisher; PEP does so only with itemreply=publisher.
func (s *Service) itemElement(space, service string, n *Node, it *Item, payload bool) *xmppcore.Element {
	el := xmppcore.NewElement(space, "item", "id", it.ID)
	if service == s.host || n.Config.ItemReply == "publisher" {
		el.SetAttr("publisher", it.Publisher)
	}
	if payload && n.Config.Payloads && it.Payload != "" {
		if kids, err := xmppcore.ParseFragment(it.Payload); err == nil {
			el.Children = append(el.Children, kids...)
		}
	}
	return el
}

// notifyItem tells the node's audience about a published item.
func (s *Service) notifyItem(ctx context.Context, service string, n *Node, it Item, payload *xmppcore.Element) {
	el := xmppcore.NewElement(NSEvent, "item", "id", it.ID)
	if service == s.host || n.Config.ItemReply == "publisher" {
		el.SetAttr("publisher", it.Publisher)
	}
	if payload != nil && n.Config.Payloads {
		el.AddChild(payload)
	}
	s.notify(ctx, service, n, xmppcore.NewElement(NSEvent, "items", "node", n.Name).AddChild(el))
}

// notify sends an event to the node's audience: its subscribers and, on
// PEP, the owner's sessions and online contacts (unless the node is
// whitelist or authorize).
func (s *Service) notify(ctx context.Context, service string, n *Node, ev *xmppcore.Element) {
	if !n.Config.Notify {
		return
	}
	subs, err := s.store.Subscribers(ctx, n)
	if err != nil {
		s.log.Error("pubsub subscribers", "err", err)
		return
	}
	sent := map[int64]bool{}
	if service != s.host {
		owner, err := s.userOf(ctx, service)
		if err != nil {
			return
		}
		s.router.SendToAvailable(owner.ID, s.eventMessage(service, n, ev))
		sent[owner.ID] = true
		if n.Config.AccessModel != "whitelist" && n.Config.AccessModel != "authorize" {
			items, err := s.users.Roster(ctx, owner.ID)
			if err != nil {
				s.log.Error("pep roster", "err", err)
			}
			for _, it := range items {
				// The presence access model: contacts subscribed to the
				// owner's presence (generated colleagues always).
				if it.Subscription != roster.SubFrom && it.Subscription != roster.SubBoth {
					continue
				}
				if it.ContactID == 0 || sent[it.ContactID] || !s.router.Online(it.ContactID) {
					continue
				}
				sent[it.ContactID] = true
				s.router.SendToAvailable(it.ContactID, s.eventMessage(service, n, ev))
			}
		}
	}
	for _, sub := range subs {
		if u, err := s.userOf(ctx, sub.JID); err == nil && sent[u.ID] {
			continue
		}
		s.sendEvent(ctx, service, sub.JID, n, ev)
	}
}

func (s *Service) eventMessage(service string, n *Node, ev *xmppcore.Element) *xmppcore.Element {
	typ := n.Config.NotificationType
	if typ == "" {
		typ = "headline"
	}
	m := xmppcore.NewElement(xmppcore.NSClient, "message", "from", service, "type", typ, "id", "ps-"+randomID())
	return m.AddChild(xmppcore.NewElement(NSEvent, "event").AddChild(ev))
}

func (s *Service) sendEvent(ctx context.Context, service, to string, n *Node, ev *xmppcore.Element) {
	m := s.eventMessage(service, n, ev)
	m.SetAttr("to", to)
	s.router.Route(ctx, m)
}

// userOf maps a JID of this server to its user.
func (s *Service) userOf(ctx context.Context, j string) (*roster.User, error) {
	pj, err := jid.Parse(j)
	if err != nil || pj.Domainpart() != s.opts.Domain || pj.Localpart() == "" {
		return nil, ErrNotFound
	}
	return s.users.UserByLogin(ctx, pj.Localpart())
}
