package xmppcore

import "vestnik/xmppcore/stanza"

// The XML model lives in the leaf package stanza; these names keep the
// core's code and its importers unchanged.

// Namespaces of the stream layer.
const (
	NSClient  = stanza.NSClient
	NSStream  = stanza.NSStream
	NSFraming = stanza.NSFraming
	nsXML     = stanza.NSXML
)

// Element is the server's parsed XML stanza (stanza.Element).
type Element = stanza.Element

// NewElement returns an element in namespace space with the given
// attributes as name, value pairs (stanza.NewElement).
func NewElement(space, local string, attrs ...string) *Element {
	return stanza.NewElement(space, local, attrs...)
}

func appendEscaped(b []byte, s string, attr bool) []byte { return stanza.AppendEscaped(b, s, attr) }

func escapeString(s string) string { return stanza.EscapeAttr(s) }

// ParseFragment parses a sequence of elements serialized with jabber:client
// as the default namespace, an archived payload (stanza.ParseFragment).
func ParseFragment(s string) ([]*Element, error) { return stanza.ParseFragment(s) }
