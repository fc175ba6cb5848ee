package upload

import (
	"context"
	"errors"
	"log/slog"
	"strconv"

	"mellium.im/xmpp/jid"

	"vestnik/roster"
	"vestnik/xmppcore"
)

const (
	nsDiscoInfo = "http://jabber.org/protocol/disco#info"
	nsData      = "jabber:x:data"
	nsClient    = "jabber:client"
)

// Service is the upload.<domain> component: it answers disco and grants
// slots to the server's own users.
type Service struct {
	store *Store
	users *roster.Store
	srv   *xmppcore.Server
	host  string
	log   *slog.Logger
}

// NewService returns the component for upload.<domain>.
func NewService(store *Store, users *roster.Store, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{store: store, users: users, log: log}
}

// Register plugs the component into srv at upload.<domain>.
func (s *Service) Register(srv *xmppcore.Server) {
	s.srv = srv
	s.host = "upload." + srv.Domain()
	srv.RegisterComponent(s.host, s)
}

// HandleStanza implements xmppcore.Component.
func (s *Service) HandleStanza(ctx context.Context, from jid.JID, el *xmppcore.Element) {
	if el.Name.Local != "iq" {
		if t := el.AttrValue("type"); t != "error" && el.Name.Local == "message" {
			s.srv.Route(ctx, xmppcore.ErrorReply(el, xmppcore.ErrServiceUnavailable()))
		}
		return
	}
	typ := el.AttrValue("type")
	if typ == "result" || typ == "error" {
		return
	}
	el.SetAttr("from", from.String())
	payload := el.FirstChild()
	var res *xmppcore.Element
	var err error
	switch {
	case payload == nil:
		err = xmppcore.ErrBadRequest("empty IQ")
	case typ == "get" && payload.Name.Space == nsDiscoInfo && payload.Name.Local == "query" && payload.AttrValue("node") == "":
		res = s.discoInfo()
	case typ == "get" && payload.Name.Space == NS && payload.Name.Local == "request":
		res, err = s.request(ctx, from, payload)
	default:
		err = xmppcore.ErrServiceUnavailable()
	}
	if err != nil {
		var se *xmppcore.StanzaError
		if !errors.As(err, &se) {
			s.log.Error("upload: slot", "err", err)
			se = xmppcore.ErrInternal()
		}
		s.srv.Route(ctx, xmppcore.ErrorReply(el, se))
		return
	}
	reply := xmppcore.NewElement(nsClient, "iq", "type", "result", "id", el.AttrValue("id"), "from", s.host, "to", from.String())
	reply.AddChild(res)
	s.srv.Route(ctx, reply)
}

func (s *Service) discoInfo() *xmppcore.Element {
	q := xmppcore.NewElement(nsDiscoInfo, "query")
	q.AddChild(
		xmppcore.NewElement(nsDiscoInfo, "identity", "category", "store", "type", "file", "name", "HTTP File Upload"),
		xmppcore.NewElement(nsDiscoInfo, "feature", "var", NS),
		xmppcore.NewElement(nsDiscoInfo, "feature", "var", nsDiscoInfo),
	)
	// XEP-0363 §2 and XEP-0128: the size limit as a field of a form whose
	// FORM_TYPE is the upload namespace.
	formType := xmppcore.NewElement(nsData, "field", "var", "FORM_TYPE", "type", "hidden")
	formType.AddText(nsData, "value", NS)
	maxSize := xmppcore.NewElement(nsData, "field", "var", "max-file-size")
	maxSize.AddText(nsData, "value", strconv.FormatInt(s.store.MaxSize(), 10))
	x := xmppcore.NewElement(nsData, "x", "type", "result")
	x.AddChild(formType, maxSize)
	q.AddChild(x)
	return q
}

func (s *Service) request(ctx context.Context, from jid.JID, req *xmppcore.Element) (*xmppcore.Element, error) {
	if from.Domainpart() != s.srv.Domain() {
		return nil, xmppcore.ErrForbidden("uploads are for users of this server")
	}
	u, err := s.users.UserByLogin(ctx, from.Localpart())
	if errors.Is(err, roster.ErrNotFound) || (err == nil && !u.Active) {
		return nil, xmppcore.ErrForbidden("uploads are for users of this server")
	}
	if err != nil {
		return nil, err
	}
	size, perr := strconv.ParseInt(req.AttrValue("size"), 10, 64)
	if perr != nil || size <= 0 {
		return nil, xmppcore.ErrBadRequest("File size must be positive integer")
	}
	slot, err := s.store.Request(ctx, u.ID, req.AttrValue("filename"), size, req.AttrValue("content-type"))
	switch {
	case errors.Is(err, ErrTooLarge):
		// XEP-0363 §4: not-acceptable with the limit.
		e := xmppcore.ErrNotAcceptable("File too large")
		e.App = xmppcore.NewElement(NS, "file-too-large")
		e.App.AddText(NS, "max-file-size", strconv.FormatInt(s.store.MaxSize(), 10))
		return nil, e
	case errors.Is(err, ErrQuota):
		e := xmppcore.ErrResourceConstraint()
		e.Text = "upload quota exceeded: delete files or ask an administrator"
		return nil, e
	case errors.Is(err, ErrFull):
		e := xmppcore.ErrResourceConstraint()
		e.Text = "the server's file storage is full"
		return nil, e
	case errors.Is(err, ErrBadName):
		return nil, xmppcore.ErrBadRequest("Invalid filename")
	case errors.Is(err, ErrType):
		return nil, xmppcore.ErrNotAcceptable("File type not allowed")
	case err != nil:
		return nil, err
	}
	// The PUT's Authorization header (XEP-0363 §5), so that the URL,
	// shared as the download link, cannot upload.
	put := xmppcore.NewElement(NS, "put", "url", slot.PutURL)
	put.AddText(NS, "header", slot.Authorization).SetAttr("name", "Authorization")
	out := xmppcore.NewElement(NS, "slot")
	out.AddChild(xmppcore.NewElement(NS, "get", "url", slot.GetURL), put)
	return out, nil
}
