package mam

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// XEP-0313 Message Archive Management over the store. This file works on
// the XML of the <query/> element and produces the XML of the result
// messages and the <fin/>, so the XMPP layer (which imports this package)
// only routes: it registers HandleQuery for IQs to a user's bare JID, and
// the MUC service calls it for IQs to a room JID.

// Namespaces.
const (
	NS         = "urn:xmpp:mam:2"
	NSExtended = "urn:xmpp:mam:2#extended"
	NSRSM      = "http://jabber.org/protocol/rsm"
	NSForward  = "urn:xmpp:forward:0"
	NSDelay    = "urn:xmpp:delay"
	NSData     = "jabber:x:data"
	NSStanzaID = "urn:xmpp:sid:0"
	NSFulltext = "urn:xmpp:fulltext:0"
	NSRetract  = "urn:xmpp:message-retract:1"
	// NSMessageState marks the state of a changed message for clients
	// that want it: <edited stamp/> in MAM results; the live notices
	// (xmppcore/edits.go) carry the archive id and reactions in it.
	NSMessageState = "urn:vestnik:message:0"
	nsClient       = "jabber:client"
)

// Features are the disco#info features of an archive (user or room).
var Features = []string{NS, NSExtended}

// MaxQueryXML bounds the size of a <query/> element.
const MaxQueryXML = 16 << 10

// Error is a protocol error; the caller turns it into a stanza error of the
// given type ("modify", "cancel", "auth") and condition.
type Error struct {
	Type, Condition, Text string
}

func (e *Error) Error() string { return "mam: " + e.Condition + ": " + e.Text }

func badRequest(format string, args ...any) *Error {
	return &Error{Type: "modify", Condition: "bad-request", Text: fmt.Sprintf(format, args...)}
}

// Request is one MAM query IQ.
type Request struct {
	Viewer     int64  // the requesting user
	ChatID     int64  // 0: the viewer's personal archive; else the room's archive
	ArchiveJID string // the queried archive: the viewer's bare JID or the room JID
	To         string // the requester's full JID (to of the result messages)
	Query      []byte // the <query xmlns='urn:xmpp:mam:2'/> element
}

// Response is what the server sends: each of Results as a message, then
// Fin as the payload of the IQ result.
type Response struct {
	Results []string
	Fin     string
}

type xQuery struct {
	XMLName xml.Name  `xml:"urn:xmpp:mam:2 query"`
	QueryID string    `xml:"queryid,attr"`
	Node    string    `xml:"node,attr"`
	Form    *xForm    `xml:"jabber:x:data x"`
	Set     *xSet     `xml:"http://jabber.org/protocol/rsm set"`
	Flip    *struct{} `xml:"urn:xmpp:mam:2 flip-page"`
}

type xForm struct {
	Type   string   `xml:"type,attr"`
	Fields []xField `xml:"field"`
}

type xField struct {
	Var    string   `xml:"var,attr"`
	Values []string `xml:"value"`
}

type xSet struct {
	Max    *string `xml:"max"`
	Before *string `xml:"before"`
	After  *string `xml:"after"`
	Index  *string `xml:"index"`
}

// HandleQuery answers a MAM query on the viewer's own archive (ChatID 0)
// or on a chat's archive, with the access rule applied to every message.
// Errors are *Error for protocol problems.
func (s *Store) HandleQuery(ctx context.Context, dir Directory, req Request) (*Response, error) {
	if len(req.Query) > MaxQueryXML {
		return nil, &Error{Type: "modify", Condition: "policy-violation", Text: "query too large"}
	}
	var xq xQuery
	d := xml.NewDecoder(strings.NewReader(string(req.Query)))
	d.Strict = true
	if err := d.Decode(&xq); err != nil {
		return nil, badRequest("malformed query")
	}
	if xq.Node != "" {
		return nil, &Error{Type: "cancel", Condition: "item-not-found", Text: "no such node"}
	}
	q := Query{Viewer: req.Viewer, ChatID: req.ChatID}
	if req.ChatID != 0 {
		// A room archive is readable by members only; the windows are
		// applied per message, this only refuses outsiders clearly.
		var n int
		if err := s.db.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM chat_periods WHERE chat_id = ? AND user_id = ?`),
			req.ChatID, req.Viewer); err != nil {
			return nil, fmt.Errorf("mam: periods: %w", err)
		}
		if n == 0 {
			return nil, &Error{Type: "auth", Condition: "forbidden", Text: "not a member of this chat"}
		}
	}
	empty := false // a filter that matches nothing (unknown with)
	if xq.Form != nil {
		for _, f := range xq.Form.Fields {
			v := ""
			if len(f.Values) > 0 {
				v = strings.TrimSpace(f.Values[0])
			}
			switch f.Var {
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
					return nil, badRequest("%s is not an XEP-0082 date-time", f.Var)
				}
				if f.Var == "start" {
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
				if f.Var == "before-id" {
					q.BeforeID = id
				} else {
					q.AfterID = id
				}
			case "ids":
				if len(f.Values) > MaxIDs {
					return nil, &Error{Type: "modify", Condition: "policy-violation", Text: "too many ids"}
				}
				for _, sv := range f.Values {
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
				q.Text = strings.Join(f.Values, " ")
			default:
				return nil, &Error{Type: "cancel", Condition: "feature-not-implemented", Text: "unsupported field " + f.Var}
			}
		}
	}
	q.Limit = DefaultLimit
	countOnly := false
	if xq.Set != nil {
		if xq.Set.Index != nil {
			return nil, &Error{Type: "cancel", Condition: "feature-not-implemented", Text: "RSM index is not supported"}
		}
		if xq.Set.Max != nil {
			n, err := strconv.Atoi(strings.TrimSpace(*xq.Set.Max))
			if err != nil || n < 0 {
				return nil, badRequest("bad RSM max")
			}
			q.Limit = min(n, MaxLimit)
			countOnly = n == 0
		}
		if xq.Set.After != nil && strings.TrimSpace(*xq.Set.After) != "" {
			id, err := s.rsmID(ctx, req.Viewer, *xq.Set.After)
			if err != nil {
				return nil, err
			}
			q.AfterID = max(q.AfterID, id)
		}
		if xq.Set.Before != nil {
			q.Reverse = true
			if v := strings.TrimSpace(*xq.Set.Before); v != "" {
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
	if xq.Flip != nil {
		msgs = make([]Message, len(page.Messages))
		for i, m := range page.Messages {
			msgs[len(msgs)-1-i] = m
		}
	}
	for i := range msgs {
		x, err := resultXML(ctx, dir, req, xq.QueryID, &msgs[i])
		if err != nil {
			return nil, err
		}
		resp.Results = append(resp.Results, x)
	}
	var b strings.Builder
	b.WriteString(`<fin xmlns='` + NS + `'`)
	if xq.QueryID != "" {
		writeAttr(&b, "queryid", xq.QueryID)
	}
	fmt.Fprintf(&b, " complete='%t'><set xmlns='%s'>", page.Complete, NSRSM)
	if len(msgs) > 0 {
		fmt.Fprintf(&b, "<first>%d</first><last>%d</last>", msgs[0].ID, msgs[len(msgs)-1].ID)
	}
	if countOnly {
		fmt.Fprintf(&b, "<count>%d</count>", count)
	}
	b.WriteString("</set></fin>")
	resp.Fin = b.String()
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

// resultXML is one <message><result><forwarded>… for m.
func resultXML(ctx context.Context, dir Directory, req Request, queryID string, m *Message) (string, error) {
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
			return "", err
		}
	case KindHeadline:
		typ = "headline"
		if to, err = dir.UserJID(ctx, m.ToID); err != nil {
			return "", err
		}
		if m.FromID != 0 {
			from, err = dir.UserJID(ctx, m.FromID)
		} else if _, d, ok := strings.Cut(to, "@"); ok {
			from = d
		}
	default:
		typ = "chat"
		if from, err = dir.UserJID(ctx, m.FromID); err != nil {
			return "", err
		}
		if m.FromResource != "" {
			from += "/" + m.FromResource
		}
		to, err = dir.UserJID(ctx, m.ToID)
	}
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("<message xmlns='" + nsClient + "'")
	writeAttr(&b, "from", req.ArchiveJID)
	if req.To != "" {
		writeAttr(&b, "to", req.To)
	}
	b.WriteString("><result xmlns='" + NS + "'")
	if queryID != "" {
		writeAttr(&b, "queryid", queryID)
	}
	writeAttr(&b, "id", strconv.FormatInt(m.ID, 10))
	b.WriteString("><forwarded xmlns='" + NSForward + "'><delay xmlns='" + NSDelay + "'")
	writeAttr(&b, "stamp", m.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z"))
	b.WriteString("/><message xmlns='" + nsClient + "'")
	writeAttr(&b, "from", from)
	if to != "" {
		writeAttr(&b, "to", to)
	}
	writeAttr(&b, "type", typ)
	id := m.OriginID
	if id == "" {
		id = strconv.FormatInt(m.ID, 10)
	}
	writeAttr(&b, "id", id)
	b.WriteString(">")
	if m.Body != "" {
		b.WriteString("<body>")
		xml.EscapeText(&b, []byte(m.Body))
		b.WriteString("</body>")
	}
	b.WriteString(m.Payload)
	if m.EditedAt != nil && !m.Deleted {
		b.WriteString("<edited xmlns='" + NSMessageState + "'")
		writeAttr(&b, "stamp", m.EditedAt.UTC().Format(time.RFC3339))
		b.WriteString("/>")
	}
	if m.Deleted {
		b.WriteString("<retracted xmlns='" + NSRetract + "'")
		if m.EditedAt != nil {
			writeAttr(&b, "stamp", m.EditedAt.UTC().Format(time.RFC3339))
		}
		b.WriteString("/>")
	}
	if m.OriginID != "" {
		b.WriteString("<origin-id xmlns='" + NSStanzaID + "'")
		writeAttr(&b, "id", m.OriginID)
		b.WriteString("/>")
	}
	b.WriteString("<stanza-id xmlns='" + NSStanzaID + "'")
	writeAttr(&b, "id", strconv.FormatInt(m.ID, 10))
	writeAttr(&b, "by", req.ArchiveJID)
	b.WriteString("/></message></forwarded></result></message>")
	return b.String(), nil
}

func writeAttr(b *strings.Builder, name, value string) {
	b.WriteString(" " + name + "='")
	xml.EscapeText(b, []byte(value))
	b.WriteString("'")
}
