package xmppcore

import "vestnik/xmppcore/stanza"

// NSStanzas is the namespace of stanza error conditions (RFC 6120 8.3).
const NSStanzas = stanza.NSStanzas

// NSStreams is the namespace of stream error conditions (RFC 6120 4.9).
const NSStreams = stanza.NSStreams

// Stanza error types.
const (
	ErrTypeAuth     = stanza.ErrTypeAuth
	ErrTypeCancel   = stanza.ErrTypeCancel
	ErrTypeContinue = stanza.ErrTypeContinue
	ErrTypeModify   = stanza.ErrTypeModify
	ErrTypeWait     = stanza.ErrTypeWait
)

// StanzaError is the one stanza error type (stanza.Error): a handler
// returns it and the dispatcher turns it into an error reply.
type StanzaError = stanza.Error

// Constructors for the common conditions (see package stanza).
var (
	ErrBadRequest            = stanza.ErrBadRequest
	ErrFeatureNotImplemented = stanza.ErrFeatureNotImplemented
	ErrForbidden             = stanza.ErrForbidden
	ErrItemNotFound          = stanza.ErrItemNotFound
	ErrNotAllowed            = stanza.ErrNotAllowed
	ErrNotAcceptable         = stanza.ErrNotAcceptable
	ErrServiceUnavailable    = stanza.ErrServiceUnavailable
	ErrInternal              = stanza.ErrInternal
	ErrJIDMalformed          = stanza.ErrJIDMalformed
	ErrConflict              = stanza.ErrConflict
	ErrPolicyViolation       = stanza.ErrPolicyViolation
	ErrRemoteServerNotFound  = stanza.ErrRemoteServerNotFound
	ErrResourceConstraint    = stanza.ErrResourceConstraint
)

// ErrorReply returns the error reply to stanza el (stanza.ErrorReply).
func ErrorReply(el *Element, e *StanzaError) *Element { return stanza.ErrorReply(el, e) }

// streamError builds a <stream:error/> with a condition and optional text.
func streamError(cond, text string) *Element { return stanza.StreamError(cond, text) }
