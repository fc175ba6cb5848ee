package xmppcore

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
)

// Discovery of the server itself: its disco#info with the XEP-0157
// contact addresses, its XEP-0115 capabilities in the stream features
// (so a client knows the server's features without asking), and the
// XEP-0156 host-meta documents that tell web clients (Converse.js) where
// the RFC 7395 WebSocket endpoint is.

// Namespaces of server discovery.
const (
	NSServerInfo = "http://jabber.org/network/serverinfo" // XEP-0157 FORM_TYPE
	nsXRD        = "http://docs.oasis-open.org/ns/xri/xrd-1.0"
	relWebSocket = "urn:xmpp:alt-connections:websocket"
	// CapsNode is the node of the server's XEP-0115 capabilities.
	CapsNode = "https://vestnik.invalid/server"
)

// ContactKinds are the XEP-0157 kinds of contact address, in the order
// the form lists them.
var ContactKinds = []string{"abuse", "admin", "feedback", "sales", "security", "status", "support"}

// serverInfo is the disco#info result of the server's domain.
func (s *Server) serverInfo() *Element {
	res := NewElement(NSDiscoInfo, "query")
	res.AddChild(NewElement(NSDiscoInfo, "identity", "category", "server", "type", "im", "name", "Vestnik"))
	s.extMu.RLock()
	for _, f := range s.features {
		res.AddChild(NewElement(NSDiscoInfo, "feature", "var", f))
	}
	s.extMu.RUnlock()
	if len(s.opts.ContactAddresses) > 0 {
		x := NewElement("jabber:x:data", "x", "type", "result")
		ft := NewElement("jabber:x:data", "field", "type", "hidden", "var", "FORM_TYPE")
		ft.AddText("jabber:x:data", "value", NSServerInfo)
		x.AddChild(ft)
		for _, kind := range ContactKinds {
			f := NewElement("jabber:x:data", "field", "type", "list-multi", "var", kind+"-addresses")
			for _, a := range s.opts.ContactAddresses[kind] {
				f.AddText("jabber:x:data", "value", a)
			}
			x.AddChild(f)
		}
		res.AddChild(x)
	}
	return res
}

// serverCaps is the server's XEP-0115 <c/> for the stream features: the
// verification string of serverInfo, computed once after the features
// last changed.
func (s *Server) serverCaps() *Element {
	s.extMu.RLock()
	c := s.capsEl
	s.extMu.RUnlock()
	if c != nil {
		return c
	}
	c = NewElement(NSCaps, "c", "hash", "sha-1", "node", CapsNode, "ver", capsVer(s.serverInfo()))
	s.extMu.Lock()
	s.capsEl = c
	s.extMu.Unlock()
	return c
}

// HostMetaHandler serves XEP-0156 /.well-known/host-meta (XRD) and
// /.well-known/host-meta.json with the WebSocket endpoint: base (the
// public URL, e.g. https://chat.example.com) with ws(s):// and
// /xmpp-websocket; with base "", the request's own host and scheme
// (X-Forwarded-Proto behind a proxy). Web clients on other origins read
// it, so it allows any origin.
func HostMetaHandler(base string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws := webSocketURL(base, r)
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Cache-Control", "max-age=3600")
		if strings.HasSuffix(r.URL.Path, ".json") {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"links": []map[string]string{{"rel": relWebSocket, "href": ws}}})
			return
		}
		w.Header().Set("Content-Type", "application/xrd+xml")
		var b strings.Builder
		b.WriteString(xml.Header)
		b.WriteString("<XRD xmlns='" + nsXRD + "'>\n  <Link rel='" + relWebSocket + "' href='")
		xml.EscapeText(&b, []byte(ws))
		b.WriteString("'/>\n</XRD>\n")
		w.Write([]byte(b.String()))
	})
}

// webSocketURL is the RFC 7395 endpoint's URL for a base URL or, with
// none, for the request.
func webSocketURL(base string, r *http.Request) string {
	if base == "" {
		scheme := "http"
		if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	base = strings.TrimRight(base, "/")
	switch {
	case strings.HasPrefix(base, "https://"):
		base = "wss://" + strings.TrimPrefix(base, "https://")
	case strings.HasPrefix(base, "http://"):
		base = "ws://" + strings.TrimPrefix(base, "http://")
	}
	return base + "/xmpp-websocket"
}
