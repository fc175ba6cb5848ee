package muc

import (
	"encoding/xml"

	"mellium.im/xmpp/jid"

	"vestnik/xmppcore"
)

// Namespaces served or used by the service.
const (
	nsClient      = "jabber:client"
	NSMUC         = "http://jabber.org/protocol/muc"
	NSMUCUser     = "http://jabber.org/protocol/muc#user"
	NSMUCOwner    = "http://jabber.org/protocol/muc#owner"
	NSMUCAdmin    = "http://jabber.org/protocol/muc#admin"
	NSDiscoInfo   = "http://jabber.org/protocol/disco#info"
	NSDiscoItems  = "http://jabber.org/protocol/disco#items"
	NSData        = "jabber:x:data"
	NSConference  = "jabber:x:conference" // XEP-0249 direct invitations
	NSStanzaID    = "urn:xmpp:sid:0"
	NSDelay       = "urn:xmpp:delay"
	NSStanzas     = "urn:ietf:params:xml:ns:xmpp-stanzas"
	NSPubSub      = "http://jabber.org/protocol/pubsub"
	NSPubSubEvent = "http://jabber.org/protocol/pubsub#event"
	NSBookmarks   = "urn:xmpp:bookmarks:1" // XEP-0402
	NSPrivate     = "jabber:iq:private"
	NSStorage     = "storage:bookmarks" // XEP-0048
	NSRoomConfig  = "http://jabber.org/protocol/muc#roomconfig"
	NSRoomInfo    = "http://jabber.org/protocol/muc#roominfo"
	NSVCard       = "vcard-temp"
	NSVestnik     = "urn:vestnik:chat:0"     // <chat id='…' system='true'/> on chat messages
	NSOccupantID  = "urn:xmpp:occupant-id:0" // XEP-0421
)

// el builds an element; attrs are name, value pairs.
func el(space, local string, attrs ...string) *xmppcore.Element {
	e := &xmppcore.Element{Name: xml.Name{Space: space, Local: local}}
	for i := 0; i+1 < len(attrs); i += 2 {
		e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
	}
	return e
}

// add appends children and returns e.
func add(e *xmppcore.Element, children ...*xmppcore.Element) *xmppcore.Element {
	e.Children = append(e.Children, children...)
	return e
}

// text returns an element holding character data.
func text(space, local, s string) *xmppcore.Element {
	e := el(space, local)
	e.Text = s
	return e
}

// attr returns the value of the unqualified attribute local.
func attr(e *xmppcore.Element, local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local && (a.Name.Space == "" || local == "lang") {
			return a.Value
		}
	}
	return ""
}

// setAttr sets (or adds) the unqualified attribute local.
func setAttr(e *xmppcore.Element, local, value string) {
	for i, a := range e.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			e.Attr[i].Value = value
			return
		}
	}
	e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Local: local}, Value: value})
}

// child returns the first child with that name (space "" matches any).
func child(e *xmppcore.Element, space, local string) *xmppcore.Element {
	if e == nil {
		return nil
	}
	for _, c := range e.Children {
		if c.Name.Local == local && (space == "" || c.Name.Space == space) {
			return c
		}
	}
	return nil
}

// childText is the character data of the named child, "" if absent.
func childText(e *xmppcore.Element, space, local string) string {
	if c := child(e, space, local); c != nil {
		return c.Text
	}
	return ""
}

// addressed returns a shallow copy of e with new from and to: the
// children are shared, which is safe because stanzas are never changed
// after they are handed to the router.
func addressed(e *xmppcore.Element, from, to string) *xmppcore.Element {
	c := *e
	c.Attr = make([]xml.Attr, 0, len(e.Attr)+2)
	for _, a := range e.Attr {
		if a.Name.Space == "" && (a.Name.Local == "from" || a.Name.Local == "to") {
			continue
		}
		c.Attr = append(c.Attr, a)
	}
	c.Attr = append(c.Attr, xml.Attr{Name: xml.Name{Local: "from"}, Value: from}, xml.Attr{Name: xml.Name{Local: "to"}, Value: to})
	return &c
}

// stanzaError builds an error reply to e: from and to swapped, type
// error, the original children kept for IQs only.
func stanzaError(e *xmppcore.Element, typ, condition, msg string) *xmppcore.Element {
	r := el(nsClient, e.Name.Local, "from", attr(e, "to"), "to", attr(e, "from"), "type", "error")
	if id := attr(e, "id"); id != "" {
		setAttr(r, "id", id)
	}
	if e.Name.Local == "iq" || e.Name.Local == "presence" {
		for _, c := range e.Children {
			if c.Name.Space == NSMUC || e.Name.Local == "iq" {
				r.Children = append(r.Children, c)
				break
			}
		}
	}
	// by: the room (or the service) that refused (RFC 6120 §8.3.2).
	by := attr(e, "to")
	if j, err := jid.Parse(by); err == nil {
		by = j.Bare().String()
	}
	er := add(el(nsClient, "error", "type", typ, "by", by), el(NSStanzas, condition))
	if msg != "" {
		er.Children = append(er.Children, text(NSStanzas, "text", msg))
	}
	r.Children = append(r.Children, er)
	return r
}

// iqResult builds the result reply to an IQ with an optional payload.
func iqResult(iq *xmppcore.Element, payload *xmppcore.Element) *xmppcore.Element {
	r := el(nsClient, "iq", "from", attr(iq, "to"), "to", attr(iq, "from"), "type", "result", "id", attr(iq, "id"))
	if payload != nil {
		r.Children = append(r.Children, payload)
	}
	return r
}

// dataForm builds a jabber:x:data form of the given type with a FORM_TYPE.
func dataForm(typ, formType string, fields ...*xmppcore.Element) *xmppcore.Element {
	x := el(NSData, "x", "type", typ)
	x.Children = append(x.Children, add(el(NSData, "field", "var", "FORM_TYPE", "type", "hidden"), text(NSData, "value", formType)))
	x.Children = append(x.Children, fields...)
	return x
}

// field builds a form field with a label and values.
func field(typ, name, label string, values ...string) *xmppcore.Element {
	f := el(NSData, "field", "var", name, "type", typ)
	if label != "" {
		setAttr(f, "label", label)
	}
	for _, v := range values {
		f.Children = append(f.Children, text(NSData, "value", v))
	}
	return f
}

// formValues reads a submitted form's single values by var.
func formValues(x *xmppcore.Element) map[string]string {
	out := make(map[string]string)
	for _, f := range x.Children {
		if f.Name.Local != "field" {
			continue
		}
		out[attr(f, "var")] = childText(f, "", "value")
	}
	return out
}
