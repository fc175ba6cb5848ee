package xmppcore

import (
	"crypto/tls"
	"encoding/xml"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsBufferPool lends write buffers to WebSocket connections only while
// they write, so idle connections hold none.
var wsBufferPool = &sync.Pool{}

// wsTransport is XMPP over WebSocket (RFC 7395): one complete element per
// message, the stream framed by <open/> and <close/>.
type wsTransport struct {
	ws     *websocket.Conn
	secure bool
	r      io.Reader // the current message being read
}

func (t *wsTransport) Read(p []byte) (int, error) {
	for {
		if t.r == nil {
			typ, r, err := t.ws.NextReader()
			if err != nil {
				if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
					return 0, io.EOF
				}
				return 0, err
			}
			if typ != websocket.TextMessage {
				continue
			}
			t.r = r
		}
		n, err := t.r.Read(p)
		if err == io.EOF {
			t.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (t *wsTransport) WriteOpen(from, id, lang string) error {
	el := NewElement(NSFraming, "open", "from", from, "id", id, "version", "1.0")
	if lang != "" {
		el.Attr = append(el.Attr, xmlLangAttr(lang))
	}
	return t.WriteElement(el)
}

func (t *wsTransport) WriteClose() error {
	t.WriteElement(NewElement(NSFraming, "close"))
	t.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return nil
}

// scratchPool holds the buffers elements are serialized into for one
// WebSocket message.
var scratchPool = sync.Pool{New: func() any { return new([]byte) }}

func (t *wsTransport) WriteElement(el *Element) error {
	bp := scratchPool.Get().(*[]byte)
	b := (*bp)[:0]
	if el.Name.Space == NSStream {
		b = append(b, "<stream:"...)
		b = append(b, el.Name.Local...)
		b = append(b, " xmlns:stream='"+NSStream+"'"...)
		b = append(b, '>')
		for _, c := range el.Children {
			b = c.AppendXML(b, NSStream)
		}
		b = append(b, "</stream:"...)
		b = append(b, el.Name.Local...)
		b = append(b, '>')
	} else {
		b = el.AppendXML(b, "")
	}
	err := t.ws.WriteMessage(websocket.TextMessage, b)
	if cap(b) <= 64<<10 {
		*bp = b
		scratchPool.Put(bp)
	}
	return err
}

func (t *wsTransport) Flush() error                       { return nil }
func (t *wsTransport) StartTLS(*tls.Config) error         { return errNoTLS }
func (t *wsTransport) Secure() bool                       { return t.secure }
func (t *wsTransport) Framed() bool                       { return true }
func (t *wsTransport) SetReadDeadline(d time.Time) error  { return t.ws.SetReadDeadline(d) }
func (t *wsTransport) SetWriteDeadline(d time.Time) error { return t.ws.SetWriteDeadline(d) }
func (t *wsTransport) RemoteAddr() string                 { return t.ws.RemoteAddr().String() }
func (t *wsTransport) Close() error                       { return t.ws.Close() }

// WebSocketHandler serves XMPP over WebSocket (RFC 7395) with the
// subprotocol "xmpp"; mount it at /xmpp-websocket. A connection counts as
// secure when the HTTP request came over TLS.
func (s *Server) WebSocketHandler() http.Handler {
	up := websocket.Upgrader{
		Subprotocols:    []string{"xmpp"},
		ReadBufferSize:  readBufSize,
		WriteBufferSize: 2048,
		WriteBufferPool: wsBufferPool,
		// Web XMPP clients are served from other origins (Converse.js on
		// the portal): the stream itself authenticates with SASL, no cookie.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			http.Error(w, "XMPP over WebSocket (RFC 7395) only", http.StatusBadRequest)
			return
		}
		tk := s.admit.admit(r.RemoteAddr, true)
		if tk == nil {
			w.Header().Set("Retry-After", "10")
			http.Error(w, "too many connections", http.StatusServiceUnavailable)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			tk.release()
			return // Upgrade answered the client
		}
		if ws.Subprotocol() != "xmpp" {
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseProtocolError, "subprotocol xmpp required"), time.Now().Add(time.Second))
			ws.Close()
			tk.release()
			return
		}
		ws.SetReadLimit(MaxStanzaSize)
		t := &wsTransport{ws: ws, secure: r.TLS != nil}
		s.serveTransport(t, tk)
	})
}

func xmlLangAttr(lang string) xml.Attr {
	return xml.Attr{Name: xml.Name{Space: "xml", Local: "lang"}, Value: lang}
}
