package stanza

import (
	"encoding/xml"
	"io"
	"strings"
	"unicode/utf8"
)

// Element is the server's parsed XML stanza: a small DOM that is cheap to
// copy and to serialize. Character data is kept in Text (mixed content is
// flattened: XMPP payloads do not rely on it). Namespace declarations are
// not attributes: each element carries its namespace in Name.Space and the
// serializer declares it where it changes.
type Element struct {
	Name     xml.Name
	Attr     []xml.Attr
	Children []*Element
	Text     string
}

// NewElement returns an element in namespace space with the given
// attributes as name, value pairs (an odd trailing name is ignored).
func NewElement(space, local string, attrs ...string) *Element {
	e := &Element{Name: xml.Name{Space: space, Local: local}}
	if len(attrs) > 1 {
		e.Attr = make([]xml.Attr, 0, len(attrs)/2)
		for i := 0; i+1 < len(attrs); i += 2 {
			e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
		}
	}
	return e
}

// AttrValue returns the value of the un-namespaced attribute local, or "".
func (e *Element) AttrValue(local string) string {
	for i := range e.Attr {
		if e.Attr[i].Name.Local == local && e.Attr[i].Name.Space == "" {
			return e.Attr[i].Value
		}
	}
	return ""
}

// HasAttr reports whether the un-namespaced attribute local is present.
func (e *Element) HasAttr(local string) bool {
	for i := range e.Attr {
		if e.Attr[i].Name.Local == local && e.Attr[i].Name.Space == "" {
			return true
		}
	}
	return false
}

// SetAttr sets the un-namespaced attribute local, replacing an old value.
func (e *Element) SetAttr(local, value string) *Element {
	for i := range e.Attr {
		if e.Attr[i].Name.Local == local && e.Attr[i].Name.Space == "" {
			e.Attr[i].Value = value
			return e
		}
	}
	e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Local: local}, Value: value})
	return e
}

// RemoveAttr deletes the un-namespaced attribute local.
func (e *Element) RemoveAttr(local string) *Element {
	for i := range e.Attr {
		if e.Attr[i].Name.Local == local && e.Attr[i].Name.Space == "" {
			e.Attr = append(e.Attr[:i:i], e.Attr[i+1:]...)
			return e
		}
	}
	return e
}

// Child returns the first child with the given namespace and local name
// (space "" matches any namespace), or nil.
func (e *Element) Child(space, local string) *Element {
	for _, c := range e.Children {
		if c.Name.Local == local && (space == "" || c.Name.Space == space) {
			return c
		}
	}
	return nil
}

// ChildText returns the text of the first matching child, or "".
func (e *Element) ChildText(space, local string) string {
	if c := e.Child(space, local); c != nil {
		return c.Text
	}
	return ""
}

// FirstChild returns the first child element, or nil.
func (e *Element) FirstChild() *Element {
	if len(e.Children) == 0 {
		return nil
	}
	return e.Children[0]
}

// AddChild appends c and returns e.
func (e *Element) AddChild(c ...*Element) *Element {
	e.Children = append(e.Children, c...)
	return e
}

// AddText appends a child space:local holding text, and returns the child.
func (e *Element) AddText(space, local, text string) *Element {
	c := &Element{Name: xml.Name{Space: space, Local: local}, Text: text}
	e.Children = append(e.Children, c)
	return c
}

// RemoveChildren deletes every child with the given namespace and name.
func (e *Element) RemoveChildren(space, local string) {
	out := e.Children[:0]
	for _, c := range e.Children {
		if !(c.Name.Local == local && (space == "" || c.Name.Space == space)) {
			out = append(out, c)
		}
	}
	for i := len(out); i < len(e.Children); i++ {
		e.Children[i] = nil
	}
	e.Children = out
}

// Copy returns a deep copy of e.
func (e *Element) Copy() *Element {
	if e == nil {
		return nil
	}
	c := &Element{Name: e.Name, Text: e.Text}
	if len(e.Attr) > 0 {
		c.Attr = make([]xml.Attr, len(e.Attr))
		copy(c.Attr, e.Attr)
	}
	if len(e.Children) > 0 {
		c.Children = make([]*Element, len(e.Children))
		for i, ch := range e.Children {
			c.Children[i] = ch.Copy()
		}
	}
	return c
}

// ShallowCopy copies e's name, attributes and text and shares its
// children: enough to readdress a stanza without touching the original.
func (e *Element) ShallowCopy() *Element {
	c := &Element{Name: e.Name, Text: e.Text, Children: e.Children}
	c.Attr = make([]xml.Attr, len(e.Attr), len(e.Attr)+2)
	copy(c.Attr, e.Attr)
	c.Children = e.Children[:len(e.Children):len(e.Children)]
	return c
}

// String serializes e with its namespace declared.
func (e *Element) String() string {
	return string(e.AppendXML(nil, ""))
}

// WriteTo writes e, with its namespace declared, to w.
func (e *Element) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(e.AppendXML(nil, ""))
	return int64(n), err
}

// AppendXML appends the serialization of e to b. parentNS is the default
// namespace in effect where e is written: the xmlns attribute is emitted
// only when e's namespace differs from it.
func (e *Element) AppendXML(b []byte, parentNS string) []byte {
	b = append(b, '<')
	b = append(b, e.Name.Local...)
	if e.Name.Space != parentNS {
		b = append(b, " xmlns='"...)
		b = AppendEscaped(b, e.Name.Space, true)
		b = append(b, '\'')
	}
	nsN := 0
	for _, a := range e.Attr {
		switch a.Name.Space {
		case "":
			if a.Name.Local == "xmlns" {
				continue
			}
			b = append(b, ' ')
		case NSXML, "xml":
			b = append(b, " xml:"...)
		case "xmlns":
			continue
		default:
			nsN++
			p := "ns" + string(rune('0'+nsN%10))
			b = append(b, " xmlns:"...)
			b = append(b, p...)
			b = append(b, "='"...)
			b = AppendEscaped(b, a.Name.Space, true)
			b = append(b, "' "...)
			b = append(b, p...)
			b = append(b, ':')
		}
		b = append(b, a.Name.Local...)
		b = append(b, "='"...)
		b = AppendEscaped(b, a.Value, true)
		b = append(b, '\'')
	}
	if len(e.Children) == 0 && e.Text == "" {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = AppendEscaped(b, e.Text, false)
	for _, c := range e.Children {
		b = c.AppendXML(b, e.Name.Space)
	}
	b = append(b, "</"...)
	b = append(b, e.Name.Local...)
	return append(b, '>')
}

// AppendEscaped appends s escaped for character data or (attr) a quoted
// attribute value; characters not allowed in XML are dropped.
func AppendEscaped(b []byte, s string, attr bool) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '&' && c != '<' && c != '>' && c != '\'' && c != '"' {
			i++
			continue
		}
		var esc string
		width := 1
		switch c {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\'':
			if attr {
				esc = "&apos;"
			} else {
				i++
				continue
			}
		case '"':
			if attr {
				esc = "&quot;"
			} else {
				i++
				continue
			}
		case '\t', '\n':
			if !attr {
				i++
				continue
			}
			if c == '\t' {
				esc = "&#x9;"
			} else {
				esc = "&#xA;"
			}
		case '\r':
			esc = "&#xD;"
		default:
			if c < 0x20 {
				esc = "" // not allowed in XML 1.0
			} else {
				r, w := utf8.DecodeRuneInString(s[i:])
				if (r == utf8.RuneError && w == 1) || r == 0xFFFE || r == 0xFFFF {
					esc, width = "\uFFFD", w
				} else {
					i += w
					continue
				}
			}
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		i += width
		last = i
	}
	return append(b, s[last:]...)
}

// EscapeAttr returns s escaped for an attribute value.
func EscapeAttr(s string) string {
	if !strings.ContainsAny(s, "&<>'\"\r\n\t") {
		return s
	}
	return string(AppendEscaped(nil, s, true))
}

// LangAttr is the attribute xml:lang='lang'.
func LangAttr(lang string) xml.Attr {
	return xml.Attr{Name: xml.Name{Space: NSXML, Local: "lang"}, Value: lang}
}

// Lang returns e's xml:lang, or "".
func (e *Element) Lang() string { return e.AttrNS(NSXML, "lang") }

// AttrNS returns the value of the attribute space:local (xml:lang is
// found under NSXML or the prefix "xml"), or "".
func (e *Element) AttrNS(space, local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local && (a.Name.Space == space || (space == NSXML && a.Name.Space == "xml")) {
			return a.Value
		}
	}
	return ""
}

// Size is about the length of e serialized: the bytes of its names,
// attributes and text, unescaped, plus the markup around them. It bounds
// a parsed request without serializing it.
func (e *Element) Size() int {
	n := 2*len(e.Name.Local) + len(e.Name.Space) + len(e.Text) + 5
	for _, a := range e.Attr {
		n += len(a.Name.Local) + len(a.Value) + 4
	}
	for _, c := range e.Children {
		n += c.Size()
	}
	return n
}
