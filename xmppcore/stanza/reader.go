package stanza

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits of one stanza; the stream reader (xmppcore) and ParseFragment
// enforce them.
const (
	// MaxSize is the largest top-level element (stanza or nonza) a peer
	// may send, in bytes of XML.
	MaxSize = 256 << 10
	// MaxDepth is the deepest element nesting allowed inside a stanza.
	MaxDepth = 32
	// MaxAttrs is the number of attributes one element may carry.
	MaxAttrs = 64
	// MaxFragmentSize bounds the XML ParseFragment reads (an archived
	// payload, a stored item).
	MaxFragmentSize = 2 * MaxSize
)

// Errors of the parser. Each maps to a stream error condition.
var (
	ErrTooLarge      = errors.New("xmppcore: stanza too large")
	ErrTooDeep       = errors.New("xmppcore: xml nested too deep")
	ErrRestrictedXML = errors.New("xmppcore: restricted xml (dtd, comment, processing instruction or entity)")
)

// NotWellFormed wraps an XML syntax error (stream error not-well-formed).
type NotWellFormed struct{ Err error }

func (e *NotWellFormed) Error() string { return "xmppcore: not well-formed: " + e.Err.Error() }
func (e *NotWellFormed) Unwrap() error { return e.Err }

// NewDecoder returns a strict decoder over r that knows only the five
// predefined entities.
func NewDecoder(r io.Reader) *xml.Decoder {
	d := xml.NewDecoder(r)
	d.Strict = true
	d.Entity = nil
	return d
}

// Head returns the element opened by t, without children; namespace
// declarations are dropped (the namespace lives in Name.Space).
func Head(t xml.StartElement) *Element {
	el := &Element{Name: t.Name}
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		el.Attr = append(el.Attr, a)
	}
	return el
}

// ReadElement reads from dec the rest of the element started by start,
// within MaxDepth and MaxAttrs. wrap, if not nil, maps a decoder error
// (the stream reader turns a spent byte budget into ErrTooLarge).
func ReadElement(dec *xml.Decoder, start xml.StartElement, wrap func(error) error) (*Element, error) {
	if len(start.Attr) > MaxAttrs {
		return nil, ErrTooLarge
	}
	if wrap == nil {
		wrap = wrapSyntax
	}
	root := Head(start)
	stack := make([]*Element, 1, 8)
	stack[0] = root
	for {
		tok, err := dec.Token()
		if err != nil {
			if err == io.EOF {
				return nil, &NotWellFormed{io.ErrUnexpectedEOF}
			}
			return nil, wrap(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= MaxDepth {
				return nil, ErrTooDeep
			}
			if len(t.Attr) > MaxAttrs {
				return nil, ErrTooLarge
			}
			c := Head(t)
			p := stack[len(stack)-1]
			p.Children = append(p.Children, c)
			stack = append(stack, c)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return root, nil
			}
		case xml.CharData:
			top := stack[len(stack)-1]
			if top.Text == "" {
				top.Text = string(t)
			} else {
				top.Text += string(t)
			}
		case xml.ProcInst, xml.Directive, xml.Comment:
			return nil, ErrRestrictedXML
		}
	}
}

func wrapSyntax(err error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return &NotWellFormed{err}
	}
	return err
}

// ParseFragment parses a sequence of elements serialized with jabber:client
// as the default namespace (an archived payload, a stored item).
func ParseFragment(s string) ([]*Element, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if len(s) > MaxFragmentSize {
		return nil, fmt.Errorf("xmppcore: parse payload: %w", ErrTooLarge)
	}
	dec := NewDecoder(io.MultiReader(strings.NewReader("<x xmlns='jabber:client'>"), strings.NewReader(s), strings.NewReader("</x>")))
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("xmppcore: parse payload: %w", wrapSyntax(err))
		}
		switch t := tok.(type) {
		case xml.StartElement:
			el, err := ReadElement(dec, t, nil)
			if err != nil {
				return nil, fmt.Errorf("xmppcore: parse payload: %w", err)
			}
			return el.Children, nil
		default:
			return nil, fmt.Errorf("xmppcore: parse payload: %w", ErrRestrictedXML)
		}
	}
}

// Parse parses one element serialized with jabber:client as the default
// namespace.
func Parse(s string) (*Element, error) {
	els, err := ParseFragment(s)
	if err != nil {
		return nil, err
	}
	if len(els) != 1 {
		return nil, fmt.Errorf("xmppcore: parse element: want one element, got %d", len(els))
	}
	return els[0], nil
}
