package stanza

// Namespaces more than one package needs. A namespace used by one
// package only stays beside its code there.
const (
	NSClient  = "jabber:client"                        // RFC 6120 stanzas
	NSStream  = "http://etherx.jabber.org/streams"     // RFC 6120 stream
	NSFraming = "urn:ietf:params:xml:ns:xmpp-framing"  // RFC 7395 WebSocket framing
	NSXML     = "http://www.w3.org/XML/1998/namespace" // xml:lang
	NSStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"  // RFC 6120 8.3 stanza error conditions
	NSStreams = "urn:ietf:params:xml:ns:xmpp-streams"  // RFC 6120 4.9 stream error conditions

	NSData      = "jabber:x:data"                         // XEP-0004 data forms
	NSRSM       = "http://jabber.org/protocol/rsm"        // XEP-0059 result set management
	NSForward   = "urn:xmpp:forward:0"                    // XEP-0297
	NSDelay     = "urn:xmpp:delay"                        // XEP-0203
	NSStanzaID  = "urn:xmpp:sid:0"                        // XEP-0359
	NSHints     = "urn:xmpp:hints"                        // XEP-0334
	NSRetract   = "urn:xmpp:message-retract:1"            // XEP-0424
	NSOOB       = "jabber:x:oob"                          // XEP-0066
	NSDiscoInfo = "http://jabber.org/protocol/disco#info" // XEP-0030

	// NSMessageState marks the state of a changed message for clients
	// that want it: <edited stamp/> in MAM results; the live notices
	// carry the archive id and reactions in it.
	NSMessageState = "urn:vestnik:message:0"
)
