package mam

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"vestnik/xmppcore/stanza"
)

// XEP-0313 Message Archive Management over the store. This file reads the
// parsed <query/> element and builds the result messages and the <fin/>
// as elements, so the XMPP layer (which imports this package) only routes
// them: it registers HandleQuery for IQs to a user's bare JID, and the MUC
// service calls it for IQs to a room JID. The one parse on this path is
// of each archived payload, read from the store.

// Namespaces.
const (
	NS         = "urn:xmpp:mam:2"
	NSExtended = "urn:xmpp:mam:2#extended"
	NSRSM      = stanza.NSRSM
	NSForward  = stanza.NSForward
	NSDelay    = stanza.NSDelay
	NSData     = stanza.NSData
	NSStanzaID = stanza.NSStanzaID
	NSFulltext = "urn:xmpp:fulltext:0"
	NSRetract  = stanza.NSRetract
	// NSMessageState marks the state of a changed message for clients
	// that want it: <edited stamp/> in MAM results; the live notices
	// (xmppcore/edits.go) carry the archive id and reactions in it.
	NSMessageState = stanza.NSMessageState
	nsClient       = stanza.NSClient
)

// Features are the disco#info features of an archive (user or room).
var Features = []string{NS, NSExtended}

// queryForm is the answer to a get: the fields a query may filter on
// (XEP-0313 §4.1.1, §5.1.1 ids, XEP-0431 full text search).
func queryForm() *stanza.Element {
	ids := stanza.FormField("list-multi", "ids", "")
	ids.AddChild(stanza.NewElement("http://jabber.org/protocol/xdata-validate", "validate", "datatype", "xs:string").
		AddChild(stanza.NewElement("http://jabber.org/protocol/xdata-validate", "open")))
	return stanza.NewElement(NS, "query").AddChild(stanza.NewForm(stanza.FormForm, NS,
		stanza.FormField("jid-single", "with", ""),
		stanza.FormField("text-single", "start", ""),
		stanza.FormField("text-single", "end", ""),
		stanza.FormField("text-single", "before-id", ""),
		stanza.FormField("text-single", "after-id", ""),
		ids,
		stanza.FormField("text-single", "{"+NSFulltext+"}fulltext", "")))
}

// MaxQueryXML bounds the size of a <query/> element.
const MaxQueryXML = 16 << 10

// Error is a protocol error, the one stanza error type: the caller replies
// with it (type "modify", "cancel", "auth" and a condition).
type Error = stanza.Error

func badRequest(format string, args ...any) *Error {
	return &Error{Type: "modify", Condition: "bad-request", Text: fmt.Sprintf(format, args...)}
}

// Request is one MAM query IQ.
type Request struct {
	Viewer     int64           // the requesting user
	ChatID     int64           // 0: the viewer's personal archive; else the room's archive
	ArchiveJID string          // the queried archive: the viewer's bare JID or the room JID
	To         string          // the requester's full JID (to of the result messages)
	Query      *stanza.Element // the <query xmlns='urn:xmpp:mam:2'/> element
	// Get: the IQ is a get, which asks for the search form (XEP-0313
	// §4.1.1); queries are sets.
	Get bool
	// Reader: the viewer may read the chat without being a member (a
	// reader of an open chat): a room archive they have no window in is
	// empty to them, not forbidden.
	Reader bool
}

// Response is what the server sends: each of Results as a message, then
// Fin as the payload of the IQ result.
type Response struct {
	Results []*stanza.Element
	Fin     *stanza.Element
}

// rsmValue returns the text of an RSM child and whether it is present.
func rsmValue(set *stanza.Element, local string) (string, bool) {
	if set == nil {
		return "", false
	}
	c := set.Child("", local)
	if c == nil {
		return "", false
	}
	return c.Text, true
}

// HandleQuery answers a MAM query on the viewer's own archive (ChatID 0)
// or on a chat's archive, with the access rule applied to every message.
// Errors are *Error for protocol problems.
func (s *Store) HandleQuery(ctx context.Context, dir Directory, req Request) (*Response, error) {
	xq := req.Query
	if xq == nil || xq.Name.Space != NS || xq.Name.Local != "query" {
		return nil, badRequest("malformed query")
	}
	if xq.Size() > MaxQueryXML {
		return nil, &Error{Type: "modify", Condition: "policy-violation", Text: "query too large"}
	}
	if xq.AttrValue("node") != "" {
		return nil, &Error{Type: "cancel", Condition: "item-not-found", Text: "no such node"}
	}
	if req.Get {
		return &Response{Fin: queryForm()}, nil
	}
	queryID := xq.AttrValue("queryid")
	q := Query{Viewer: req.Viewer, ChatID: req.ChatID}
	if req.ChatID != 0 {
		// A room archive is readable by members only; the windows are
		// applied per message, this only refuses outsiders clearly.
		var n int
		if err := s.db.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM chat_periods WHERE chat_id = ? AND user_id = ?`),
			req.ChatID, req.Viewer); err != nil {
			return nil, fmt.Errorf("mam: periods: %w", err)
		}
		if n == 0 && !req.Reader {
			return nil, &Error{Type: "auth", Condition: "forbidden", Text: "not a member of this chat"}
		}
	}
	empty := false // a filter that matches nothing (unknown with)
	if form := xq.Child(NSData, "x"); form != nil {
		for _, f := range form.Children {
			if f.Name.Local != "field" {
				continue
			}
			var values []string
			for _, c := range f.Children {
				if c.Name.Local == "value" {
					values = append(values, c.Text)
				}
			}
			v := ""
			if len(values) > 0 {
				v = strings.TrimSpace(values[0])
			}
			fvar := f.AttrValue("var")
			switch fvar {
			case "FORM_TYPE":
				if v != NS {
					return nil, badRequest("FORM_TYPE must be %s", NS)
				}
			case "with":
				if v == "" {
					continue
				}
				if bare, nick, ok := strings.Cut(v, "/"); ok && req.ChatID != 0 && strings.EqualFold(bare, req.ArchiveJID) {
					q.nick = nick // an occupant of this room
					continue
				}
				id, err := dir.UserByJID(ctx, v)
				if errors.Is(err, ErrNotFound) {
					empty = true
					continue
				}
				if err != nil {
					return nil, err
				}
				q.With = id
			case "start", "end":
				if v == "" {
					continue
				}
				t, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					return nil, badRequest("%s is not an XEP-0082 date-time", fvar)
				}
				if fvar == "start" {
					q.Start = t
				} else {
					q.End = t
				}
			case "before-id", "after-id":
				if v == "" {
					continue
				}
				id, err := strconv.ParseInt(v, 10, 64)
				if err != nil || id <= 0 {
					return nil, &Error{Type: "cancel", Condition: "item-not-found", Text: "unknown archive id " + v}
				}
				if fvar == "before-id" {
					q.BeforeID = id
				} else {
					q.AfterID = id
				}
			case "ids":
				if len(values) > MaxIDs {
					return nil, &Error{Type: "modify", Condition: "policy-violation", Text: "too many ids"}
				}
				for _, sv := range values {
					id, err := strconv.ParseInt(strings.TrimSpace(sv), 10, 64)
					if err != nil {
						return nil, &Error{Type: "cancel", Condition: "item-not-found", Text: "unknown archive id " + sv}
					}
					q.IDs = append(q.IDs, id)
				}
				if len(q.IDs) == 0 {
					empty = true
				}
			case "{" + NSFulltext + "}fulltext", "withtext":
				q.Text = strings.Join(values, " ")
			default:
				return nil, &Error{Type: "cancel", Condition: "feature-not-implemented", Text: "unsupported field " + fvar}
			}
		}
	}
	q.Limit = DefaultLimit
	countOnly := false
	if set := xq.Child(NSRSM, "set"); set != nil {
		if _, ok := rsmValue(set, "index"); ok {
			return nil, &Error{Type: "cancel", Condition: "feature-not-implemented", Text: "RSM index is not supported"}
		}
		if max, ok := rsmValue(set, "max"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(max))
			if err != nil || n < 0 {
				return nil, badRequest("bad RSM max")
			}
			q.Limit = min(n, MaxLimit)
			countOnly = n == 0
		}
		if after, ok := rsmValue(set, "after"); ok && strings.TrimSpace(after) != "" {
			id, err := s.rsmID(ctx, req.Viewer, after)
			if err != nil {
				return nil, err
			}
			q.AfterID = max(q.AfterID, id)
		}
		if before, ok := rsmValue(set, "before"); ok {
			q.Reverse = true
			if v := strings.TrimSpace(before); v != "" {
				id, err := s.rsmID(ctx, req.Viewer, v)
				if err != nil {
					return nil, err
				}
				if q.BeforeID == 0 || id < q.BeforeID {
					q.BeforeID = id
				}
			}
		}
	}
	prefs, err := s.Prefs(ctx, req.Viewer)
	if err != nil {
		return nil, err
	}
	if req.ChatID == 0 {
		hidden, err := prefs.hidden(ctx, dir, q.With)
		if err != nil {
			return nil, err
		}
		empty = empty || hidden
		if q.With == 0 {
			q.exclude, q.only, err = prefs.filters(ctx, dir)
			if err != nil {
				return nil, err
			}
		}
	}

	resp := &Response{}
	var page *Page
	var count int64
	switch {
	case empty:
		page = &Page{Complete: true}
	case countOnly:
		count, err = s.Count(ctx, q)
		if err != nil {
			return nil, err
		}
		page = &Page{Complete: count == 0}
	default:
		page, err = s.Query(ctx, q)
		if err != nil {
			return nil, err
		}
	}
	msgs := page.Messages
	if xq.Child(NS, "flip-page") != nil {
		msgs = make([]Message, len(page.Messages))
		for i, m := range page.Messages {
			msgs[len(msgs)-1-i] = m
		}
	}
	resp.Results = make([]*stanza.Element, 0, len(msgs))
	for i := range msgs {
		x, err := resultElement(ctx, dir, req, queryID, &msgs[i])
		if err != nil {
			return nil, err
		}
		resp.Results = append(resp.Results, x)
	}
	fin := stanza.NewElement(NS, "fin")
	if queryID != "" {
		fin.SetAttr("queryid", queryID)
	}
	fin.SetAttr("complete", strconv.FormatBool(page.Complete))
	set := stanza.NewElement(NSRSM, "set")
	if len(msgs) > 0 {
		set.AddText(NSRSM, "first", strconv.FormatInt(msgs[0].ID, 10))
		set.AddText(NSRSM, "last", strconv.FormatInt(msgs[len(msgs)-1].ID, 10))
	}
	if countOnly {
		set.AddText(NSRSM, "count", strconv.FormatInt(count, 10))
	}
	resp.Fin = fin.AddChild(set)
	return resp, nil
}

// rsmID parses an RSM before/after id: it must name a message the viewer
// may read, else item-not-found.
func (s *Store) rsmID(ctx context.Context, viewer int64, v string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, &Error{Type: "cancel", Condition: "item-not-found", Text: "unknown RSM id"}
	}
	ok, err := s.CanRead(ctx, viewer, id)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, &Error{Type: "cancel", Condition: "item-not-found", Text: "unknown RSM id"}
	}
	return id, nil
}

// resultElement is one <message><result><forwarded>… for m. The archived
// payload is parsed here, once; a payload that does not parse is left out.
func resultElement(ctx context.Context, dir Directory, req Request, queryID string, m *Message) (*stanza.Element, error) {
	var from, to, typ string
	var err error
	switch m.Kind {
	case KindGroupchat, KindSystem:
		typ = "groupchat"
		// The MUC service records the author's nick as FromResource.
		if m.FromResource != "" && m.Kind == KindGroupchat {
			from, err = dir.Occupant(ctx, m.ChatID, 0)
			from += "/" + m.FromResource
		} else {
			from, err = dir.Occupant(ctx, m.ChatID, m.FromID)
		}
		if err != nil {
			return nil, err
		}
	case KindHeadline:
		typ = "headline"
		if to, err = dir.UserJID(ctx, m.ToID); err != nil {
			return nil, err
		}
		if m.FromID != 0 {
			from, err = dir.UserJID(ctx, m.FromID)
		} else if _, d, ok := strings.Cut(to, "@"); ok {
			from = d
		}
	default:
		typ = "chat"
		if from, err = dir.UserJID(ctx, m.FromID); err != nil {
			return nil, err
		}
		if m.FromResource != "" {
			from += "/" + m.FromResource
		}
		to, err = dir.UserJID(ctx, m.ToID)
	}
	if err != nil {
		return nil, err
	}
	archiveID := strconv.FormatInt(m.ID, 10)
	inner := stanza.NewElement(nsClient, "message", "from", from)
	if to != "" {
		inner.SetAttr("to", to)
	}
	inner.SetAttr("type", typ)
	id := m.OriginID
	if id == "" {
		id = archiveID
	}
	inner.SetAttr("id", id)
	if m.Lang != "" {
		inner.Attr = append(inner.Attr, stanza.LangAttr(m.Lang))
	}
	payload, _ := stanza.ParseFragment(m.Payload)
	inner.Children = make([]*stanza.Element, 0, len(payload)+4)
	if m.Body != "" {
		inner.AddText(nsClient, "body", m.Body)
	}
	inner.AddChild(payload...)
	if m.EditedAt != nil && !m.Deleted {
		inner.AddChild(stanza.NewElement(NSMessageState, "edited", "stamp", m.EditedAt.UTC().Format(time.RFC3339)))
	}
	if m.Deleted {
		r := stanza.NewElement(NSRetract, "retracted")
		if m.EditedAt != nil {
			r.SetAttr("stamp", m.EditedAt.UTC().Format(time.RFC3339))
		}
		inner.AddChild(r)
	}
	// The payload of a client's message keeps its own <origin-id/>;
	// one is added only for messages that came without it (REST, bridge).
	if m.OriginID != "" && inner.Child(NSStanzaID, "origin-id") == nil {
		inner.AddChild(stanza.NewElement(NSStanzaID, "origin-id", "id", m.OriginID))
	}
	inner.AddChild(stanza.NewElement(NSStanzaID, "stanza-id", "id", archiveID, "by", req.ArchiveJID))

	forwarded := stanza.NewElement(NSForward, "forwarded").AddChild(
		stanza.NewElement(NSDelay, "delay", "stamp", m.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z")),
		inner)
	result := stanza.NewElement(NS, "result")
	if queryID != "" {
		result.SetAttr("queryid", queryID)
	}
	result.SetAttr("id", archiveID)
	msg := stanza.NewElement(nsClient, "message", "from", req.ArchiveJID)
	if req.To != "" {
		msg.SetAttr("to", req.To)
	}
	return msg.AddChild(result.AddChild(forwarded)), nil
}
