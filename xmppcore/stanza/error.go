package stanza

// Stanza error types (RFC 6120 8.3.2).
const (
	ErrTypeAuth     = "auth"
	ErrTypeCancel   = "cancel"
	ErrTypeContinue = "continue"
	ErrTypeModify   = "modify"
	ErrTypeWait     = "wait"
)

// Error is the one stanza error (RFC 6120 8.3): a handler returns it and
// the dispatcher turns it into an error reply. Text is sent to the
// client: keep it generic.
type Error struct {
	Type      string // auth, cancel, continue, modify, wait
	Condition string // e.g. item-not-found
	Text      string
	// App is an optional application-specific condition (RFC 6120
	// 8.3.4), e.g. a pubsub#errors element.
	App *Element
}

func (e *Error) Error() string {
	if e.Text != "" {
		return "xmppcore: stanza error " + e.Condition + ": " + e.Text
	}
	return "xmppcore: stanza error " + e.Condition
}

// Element returns the <error/> child for a reply.
func (e *Error) Element() *Element {
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

func ErrBadRequest(text string) *Error {
	return &Error{Type: ErrTypeModify, Condition: "bad-request", Text: text}
}
func ErrFeatureNotImplemented() *Error {
	return &Error{Type: ErrTypeCancel, Condition: "feature-not-implemented"}
}
func ErrForbidden(text string) *Error {
	return &Error{Type: ErrTypeAuth, Condition: "forbidden", Text: text}
}
func ErrItemNotFound() *Error {
	return &Error{Type: ErrTypeCancel, Condition: "item-not-found"}
}
func ErrNotAllowed(text string) *Error {
	return &Error{Type: ErrTypeCancel, Condition: "not-allowed", Text: text}
}
func ErrNotAcceptable(text string) *Error {
	return &Error{Type: ErrTypeModify, Condition: "not-acceptable", Text: text}
}
func ErrServiceUnavailable() *Error {
	return &Error{Type: ErrTypeCancel, Condition: "service-unavailable"}
}
func ErrInternal() *Error {
	return &Error{Type: ErrTypeWait, Condition: "internal-server-error"}
}
func ErrJIDMalformed() *Error {
	return &Error{Type: ErrTypeModify, Condition: "jid-malformed"}
}
func ErrConflict(text string) *Error {
	return &Error{Type: ErrTypeCancel, Condition: "conflict", Text: text}
}
func ErrPolicyViolation(text string) *Error {
	return &Error{Type: ErrTypeModify, Condition: "policy-violation", Text: text}
}
func ErrRemoteServerNotFound() *Error {
	return &Error{Type: ErrTypeCancel, Condition: "remote-server-not-found"}
}
func ErrResourceConstraint() *Error {
	return &Error{Type: ErrTypeWait, Condition: "resource-constraint"}
}

// ErrorReply returns the error reply to stanza el: from and to swapped,
// type error, the original payload kept as RFC 6120 8.3.1 allows.
func ErrorReply(el *Element, e *Error) *Element {
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

// StreamError builds a <stream:error/> with a condition and optional text.
func StreamError(cond, text string) *Element {
	el := NewElement(NSStream, "error")
	el.AddChild(NewElement(NSStreams, cond))
	if text != "" {
		el.AddText(NSStreams, "text", text)
	}
	return el
}
