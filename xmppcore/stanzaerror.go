package xmppcore

// NSStanzas is the namespace of stanza error conditions (RFC 6120 8.3).
const NSStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

// NSStreams is the namespace of stream error conditions (RFC 6120 4.9).
const NSStreams = "urn:ietf:params:xml:ns:xmpp-streams"

// Stanza error types.
const (
	ErrTypeAuth     = "auth"
	ErrTypeCancel   = "cancel"
	ErrTypeContinue = "continue"
	ErrTypeModify   = "modify"
	ErrTypeWait     = "wait"
)

// StanzaError is a protocol error a handler returns; the dispatcher turns
// it into an error reply. Text is sent to the client: keep it generic.
type StanzaError struct {
	Type      string // auth, cancel, continue, modify, wait
	Condition string // e.g. item-not-found
	Text      string
	// App is an optional application-specific condition (RFC 6120
	// 8.3.4), e.g. a pubsub#errors element.
	App *Element
}

func (e *StanzaError) Error() string {
	if e.Text != "" {
		return "xmppcore: stanza error " + e.Condition + ": " + e.Text
	}
	return "xmppcore: stanza error " + e.Condition
}

// Element returns the <error/> child for a reply.
func (e *StanzaError) Element() *Element {
	el := NewElement(NSClient, "error", "type", e.Type)
	el.AddChild(NewElement(NSStanzas, e.Condition))
	if e.Text != "" {
		el.AddText(NSStanzas, "text", e.Text)
	}
	if e.App != nil {
		el.AddChild(e.App)
	}
	return el
}

// Constructors for the common conditions.
func ErrBadRequest(text string) *StanzaError {
	return &StanzaError{Type: ErrTypeModify, Condition: "bad-request", Text: text}
}
func ErrFeatureNotImplemented() *StanzaError {
	return &StanzaError{Type: ErrTypeCancel, Condition: "feature-not-implemented"}
}
func ErrForbidden(text string) *StanzaError {
	return &StanzaError{Type: ErrTypeAuth, Condition: "forbidden", Text: text}
}
func ErrItemNotFound() *StanzaError {
	return &StanzaError{Type: ErrTypeCancel, Condition: "item-not-found"}
}
func ErrNotAllowed(text string) *StanzaError {
	return &StanzaError{Type: ErrTypeCancel, Condition: "not-allowed", Text: text}
}
func ErrNotAcceptable(text string) *StanzaError {
	return &StanzaError{Type: ErrTypeModify, Condition: "not-acceptable", Text: text}
}
func ErrServiceUnavailable() *StanzaError {
	return &StanzaError{Type: ErrTypeCancel, Condition: "service-unavailable"}
}
func ErrInternal() *StanzaError {
	return &StanzaError{Type: ErrTypeWait, Condition: "internal-server-error"}
}
func ErrJIDMalformed() *StanzaError {
	return &StanzaError{Type: ErrTypeModify, Condition: "jid-malformed"}
}
func ErrConflict(text string) *StanzaError {
	return &StanzaError{Type: ErrTypeCancel, Condition: "conflict", Text: text}
}
func ErrPolicyViolation(text string) *StanzaError {
	return &StanzaError{Type: ErrTypeModify, Condition: "policy-violation", Text: text}
}
func ErrRemoteServerNotFound() *StanzaError {
	return &StanzaError{Type: ErrTypeCancel, Condition: "remote-server-not-found"}
}
func ErrResourceConstraint() *StanzaError {
	return &StanzaError{Type: ErrTypeWait, Condition: "resource-constraint"}
}

// ErrorReply returns the error reply to stanza el: from and to swapped,
// type error, the original payload kept as RFC 6120 8.3.1 allows.
func ErrorReply(el *Element, e *StanzaError) *Element {
	r := &Element{Name: el.Name}
	if v := el.AttrValue("id"); v != "" {
		r.SetAttr("id", v)
	}
	if v := el.AttrValue("to"); v != "" {
		r.SetAttr("from", v)
	}
	if v := el.AttrValue("from"); v != "" {
		r.SetAttr("to", v)
	}
	r.SetAttr("type", "error")
	if el.Name.Local == "iq" || el.Name.Local == "message" {
		for _, c := range el.Children {
			if c.Name.Local != "error" {
				r.Children = append(r.Children, c)
			}
		}
	}
	r.Children = append(r.Children, e.Element())
	return r
}

// streamError builds a <stream:error/> with a condition and optional text.
func streamError(cond, text string) *Element {
	el := NewElement(NSStream, "error")
	el.AddChild(NewElement(NSStreams, cond))
	if text != "" {
		el.AddText(NSStreams, "text", text)
	}
	return el
}
