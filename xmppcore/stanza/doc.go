// Package stanza is the XML model every part of the server shares: the
// parsed element (Element), the bounded parser that builds it (ReadElement,
// ParseFragment), the one stanza error type (Error), XEP-0004 data forms
// and the namespace constants more than one package needs.
//
// It imports only the standard library, so the core (xmppcore) and its
// services (mam, muc, pubsub, upload) and doors (bridge, api) hand each
// other *Element values instead of serialising and re-parsing XML text.
package stanza
