package xmppcore

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sync"

	"vestnik/xmppcore/stanza"
)

// Errors of the stream reader. Each maps to a stream error condition.
var (
	errTooLarge      = stanza.ErrTooLarge
	errTooDeep       = stanza.ErrTooDeep
	errRestrictedXML = stanza.ErrRestrictedXML
	errStreamClosed  = errors.New("xmppcore: stream closed by peer")
)

// budgetReader fails once more than its budget has been read; the stream
// reader refills the budget at every top-level element. This bounds the
// memory any one stanza (or one huge text token) can make the decoder use.
type budgetReader struct {
	r      io.Reader
	budget int
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.budget <= 0 {
		return 0, errTooLarge
	}
	if len(p) > b.budget {
		p = p[:b.budget]
	}
	n, err := b.r.Read(p)
	b.budget -= n
	return n, err
}

// readBufSize is the read buffer of one stream: small, since most stanzas
// are small.
const readBufSize = 1024

// readBufPool holds read buffers: a stream holds one only while bytes wait
// in it, so idle connections keep none.
var readBufPool = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// pooledReader is the buffered byte reader under the decoder. Its buffer
// is taken from readBufPool to read and given back by release once empty.
type pooledReader struct {
	r        io.Reader
	buf      *[]byte
	pos, end int
}

func (p *pooledReader) fill() error {
	if p.buf == nil {
		p.buf = readBufPool.Get().(*[]byte)
	}
	for i := 0; i < 100; i++ {
		n, err := p.r.Read(*p.buf)
		p.pos, p.end = 0, n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

func (p *pooledReader) ReadByte() (byte, error) {
	if p.pos == p.end {
		if err := p.fill(); err != nil {
			return 0, err
		}
	}
	b := (*p.buf)[p.pos]
	p.pos++
	return b, nil
}

func (p *pooledReader) Read(b []byte) (int, error) {
	if p.pos == p.end {
		if err := p.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(b, (*p.buf)[p.pos:p.end])
	p.pos += n
	return n, nil
}

func (p *pooledReader) buffered() int { return p.end - p.pos }

// release gives the buffer back when nothing waits in it.
func (p *pooledReader) release() {
	if p.buf != nil && p.pos == p.end {
		readBufPool.Put(p.buf)
		p.buf = nil
	}
}

// streamEvent is what the stream reader yields: the opening of a stream
// (a stream header or an RFC 7395 <open/>), a top-level element, or the
// end of the stream.
type streamEvent struct {
	open  *Element // stream header attributes (to, version, xml:lang, …)
	el    *Element // a stanza or nonza
	close bool     // </stream:stream> or <close/>
}

// streamReader turns the bytes of a transport into stream events with the
// limits of limits.go: no DTD or directives, no processing instruction
// after the prolog, only the five predefined entities, bounded depth and
// stanza size.
type streamReader struct {
	lim      budgetReader
	br       *pooledReader
	dec      *xml.Decoder
	framed   bool // RFC 7395: elements are top-level, <open/>/<close/> frame the stream
	inStream bool
	sawToken bool
	lastEnd  int64             // input offset where the previous top-level element ended
	wrapErr  func(error) error // sr.wrap, made once (a method value allocates)
}

func newStreamReader(r io.Reader, framed bool) *streamReader {
	sr := &streamReader{framed: framed}
	sr.wrapErr = sr.wrap
	sr.reset(r)
	return sr
}

// reset starts a new XML stream on r (after STARTTLS or SASL success).
func (sr *streamReader) reset(r io.Reader) {
	sr.lim = budgetReader{r: r, budget: MaxStreamHeaderSize}
	if sr.br != nil {
		// Bytes left after a restart point (STARTTLS, SASL success) are
		// the peer's error: the new stream starts with fresh input.
		sr.br.pos = sr.br.end
		sr.br.release()
	}
	sr.br = &pooledReader{r: &sr.lim}
	sr.dec = stanza.NewDecoder(sr.br) // only the five predefined entities
	sr.inStream = false
	sr.sawToken = false
	sr.lastEnd = 0
}

// buffered reports whether bytes read from the transport wait in the
// reader. Between top-level elements the decoder itself holds none.
func (sr *streamReader) buffered() bool { return sr.br.buffered() > 0 }

// release gives back the read buffer when it is empty (the connection idles).
func (sr *streamReader) release() { sr.br.release() }

// next returns the next stream event.
func (sr *streamReader) next() (streamEvent, error) {
	for {
		tok, err := sr.dec.Token()
		if err != nil {
			return streamEvent{}, sr.wrap(err)
		}
		first := !sr.sawToken
		sr.sawToken = true
		switch t := tok.(type) {
		case xml.ProcInst:
			if !first || t.Target != "xml" {
				return streamEvent{}, errRestrictedXML
			}
		case xml.Directive, xml.Comment:
			return streamEvent{}, errRestrictedXML
		case xml.CharData:
			// Whitespace keepalives and text between stanzas are ignored.
		case xml.EndElement:
			if !sr.framed && sr.inStream {
				return streamEvent{close: true}, nil
			}
			return streamEvent{}, fmt.Errorf("xmppcore: unexpected end element %s", t.Name.Local)
		case xml.StartElement:
			if !sr.framed && !sr.inStream {
				if t.Name.Space != NSStream || t.Name.Local != "stream" {
					return streamEvent{}, errBadStreamHeader
				}
				sr.inStream = true
				sr.lim.budget = MaxStanzaSize + 2*readBufSize
				sr.lastEnd = sr.dec.InputOffset()
				return streamEvent{open: stanza.Head(t)}, nil
			}
			el, err := stanza.ReadElement(sr.dec, t, sr.wrapErr)
			if err != nil {
				return streamEvent{}, err
			}
			end := sr.dec.InputOffset()
			if end-sr.lastEnd > MaxStanzaSize {
				return streamEvent{}, errTooLarge
			}
			sr.lastEnd = end
			sr.lim.budget = MaxStanzaSize + 2*readBufSize
			if sr.framed && el.Name.Space == NSFraming {
				switch el.Name.Local {
				case "open":
					sr.inStream = true
					return streamEvent{open: el}, nil
				case "close":
					return streamEvent{close: true}, nil
				}
			}
			if sr.framed && !sr.inStream {
				return streamEvent{}, errBadStreamHeader
			}
			return streamEvent{el: el}, nil
		}
	}
}

var errBadStreamHeader = errors.New("xmppcore: bad stream header")

func (sr *streamReader) wrap(err error) error {
	if errors.Is(err, errTooLarge) {
		return errTooLarge
	}
	if err == io.EOF {
		return io.EOF
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		if sr.lim.budget <= 0 {
			return errTooLarge
		}
		return &notWellFormed{Err: err}
	}
	return err
}

// notWellFormed wraps an XML syntax error (stream error not-well-formed).
type notWellFormed = stanza.NotWellFormed
