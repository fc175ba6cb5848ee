package xmppcore

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"sort"
	"strings"
	"sync"
	"time"
)

// NSCaps is the namespace of entity capabilities (XEP-0115).
const NSCaps = "http://jabber.org/protocol/caps"

// nsPubsub is the namespace of pubsub requests; PEP requests in it may be
// addressed to a contact's bare JID (the PEP service decides access).
const nsPubsub = "http://jabber.org/protocol/pubsub"

// MaxCapsEntries bounds the entity-capabilities cache (ver → features).
const MaxCapsEntries = 1024

// PEP is what the core needs from the personal eventing service
// (package xmppcore/pubsub): the disco#items of an account and the last
// items sent when a session becomes available (XEP-0163 §6.2).
type PEP interface {
	// NodeItems returns the disco#items <query/> of owner's PEP nodes as
	// seen by viewer (bare JIDs).
	NodeItems(ctx context.Context, owner, viewer string) (*Element, error)
	// SendLastItems sends toFull the last item of each of owner's nodes
	// that toFull may read and wants (nil: every node).
	SendLastItems(ctx context.Context, owner, toFull string, wants func(node string) bool) error
}

// AvatarPublisher is a PEP service that publishes a vCard PHOTO as the
// owner's XEP-0084 avatar (XEP-0398); binval "" disables the avatar.
type AvatarPublisher interface {
	PublishAvatar(ctx context.Context, owner, mimeType, binval string) error
}

// SetPEP installs the PEP service: disco on accounts lists its nodes and
// entity capabilities make it send last items. Call before serving.
func (s *Server) SetPEP(p PEP) {
	s.extMu.Lock()
	s.pep = p
	s.extMu.Unlock()
}

func (s *Server) pepService() PEP {
	s.extMu.RLock()
	defer s.extMu.RUnlock()
	return s.pep
}

// AfterReply schedules f to run once the IQ being handled has been
// answered: an IQ handler's notifications follow its result.
func (sess *Session) AfterReply(f func()) { sess.afterReply(f) }

// SendToAvailable delivers el to the user's sessions that have sent
// available presence (PEP notifications, RFC 6121 8.5.2.1.1 for
// headlines), setting 'to' to each; in a cluster, also to the sessions
// on other nodes. It never blocks.
//
// A session whose client's features are known (XEP-0115) and lack the
// event's node+notify is left out (XEP-0163 §4.3: notifications go to
// the resources that asked for them); one without known caps (the web
// client, a client that sent none) gets them all.
func (s *Server) SendToAvailable(userID int64, el *Element) {
	node := ""
	if ev := el.FirstChild(); ev != nil {
		if c := ev.FirstChild(); c != nil {
			node = c.AttrValue("node")
		}
	}
	for _, sess := range s.router.sessions(userID) {
		if !sess.available.Load() {
			continue
		}
		if node != "" && !s.wantsNotify(sess, node) {
			continue
		}
		c := el.ShallowCopy()
		c.SetAttr("to", sess.jidStr)
		sess.deliver(c)
	}
	s.sendRemoteEvery(userID, el)
}

// wantsNotify reports whether sess may get events of node: its client's
// known features include node+notify, or its features are not known.
func (s *Server) wantsNotify(sess *Session, node string) bool {
	v := sess.capsVer.Load()
	if v == nil {
		return true
	}
	cc := &s.caps
	cc.mu.Lock()
	f, ok := cc.known[*v]
	cc.mu.Unlock()
	if !ok {
		return true
	}
	for _, x := range f {
		if x == node+"+notify" {
			return true
		}
	}
	return false
}

// capsCache maps a verified caps ver to the client's features, and
// remembers the discovery requests in flight. Leaf lock.
type capsCache struct {
	mu      sync.Mutex
	known   map[string][]string   // ver → features (bounded)
	pending map[string]*capsQuery // ver → query in flight (bounded)
	// contacts: requests of contacts' accounts in flight, by
	// contactCapsKey, → the caps node (bounded).
	contacts map[string]string
}

type capsQuery struct {
	node    string
	asked   time.Time
	waiting []*Session
}

// capsRetry is how long a discovery request may stay unanswered before
// another client with the same ver is asked.
const capsRetry = 30 * time.Second

// capsPresence handles the caps of an available presence from sess,
// before it is broadcast: it prepares a request for the features of an
// unknown ver (once per ver; sendCapsQuery sends it), or returns the known features, whose last
// items the caller sends after the broadcast (sendLastItems).
func (s *Server) capsPresence(sess *Session, el *Element) (features []string, known bool) {
	c := el.Child(NSCaps, "c")
	if c == nil || s.pepService() == nil {
		return nil, false
	}
	ver, node := c.AttrValue("ver"), c.AttrValue("node")
	if ver == "" || node == "" || len(ver) > 128 || len(node) > 1024 {
		return nil, false
	}
	if old := sess.capsVer.Swap(&ver); old != nil && *old == ver {
		return nil, false // the same client state: its items were sent already
	}
	cc := &s.caps
	cc.mu.Lock()
	if f, ok := cc.known[ver]; ok {
		cc.mu.Unlock()
		return f, true
	}
	if q := cc.pending[ver]; q != nil && time.Since(q.asked) < capsRetry {
		// Asked already: this client is asked too (each account's PEP
		// asks its own clients, as Prosody's does), and whichever
		// answers first serves both.
		if len(q.waiting) < 1000 {
			q.waiting = append(q.waiting, sess)
		}
		cc.mu.Unlock()
		sess.capsIQ = capsQueryIQ(sess.bareStr, sess.jidStr, node, ver)
		return nil, false
	}
	if len(cc.pending) >= MaxCapsEntries {
		cc.pending = nil // clients that never answered
	}
	if cc.pending == nil {
		cc.pending = map[string]*capsQuery{}
	}
	cc.pending[ver] = &capsQuery{node: node, asked: time.Now(), waiting: []*Session{sess}}
	cc.mu.Unlock()
	sess.capsIQ = capsQueryIQ(sess.bareStr, sess.jidStr, node, ver)
	return nil, false
}

// capsQueryIQ is the disco#info request of an account (from, a bare JID)
// for a client's caps (XEP-0115 §6.3).
func capsQueryIQ(from, to, node, ver string) *Element {
	iq := NewElement(NSClient, "iq", "type", "get", "id", "disco", "from", from, "to", to)
	iq.AddChild(NewElement(NSDiscoInfo, "query", "node", node+"#"+ver))
	return iq
}

// contactCapsKey names a request of account asker (bare JID) for the caps
// ver of a contact's session (full JID).
func contactCapsKey(asker, full, ver string) string { return asker + "\x00" + full + "\x00" + ver }

// askContactsCaps is the contacts' side of XEP-0115 with PEP (XEP-0163
// §5.1): each account that got sess's presence with caps it does not
// know asks the client for its features, from its own bare JID; the
// answer (contactCapsResult) decides which of its nodes' last items the
// client wants. watchers are the bare JIDs that got the presence.
func (s *Server) askContactsCaps(sess *Session, el *Element, watchers []string) {
	c := el.Child(NSCaps, "c")
	if c == nil || len(watchers) == 0 || s.pepService() == nil {
		return
	}
	ver, node := c.AttrValue("ver"), c.AttrValue("node")
	if ver == "" || node == "" || len(ver) > 128 || len(node) > 1024 {
		return
	}
	cc := &s.caps
	cc.mu.Lock()
	if _, ok := cc.known[ver]; ok {
		cc.mu.Unlock()
		return
	}
	if cc.contacts == nil || len(cc.contacts) >= MaxCapsEntries {
		cc.contacts = map[string]string{}
	}
	for _, w := range watchers {
		cc.contacts[contactCapsKey(w, sess.jidStr, ver)] = node
	}
	cc.mu.Unlock()
	for _, w := range watchers {
		sess.deliver(capsQueryIQ(w, sess.jidStr, node, ver))
	}
}

// contactCapsResult takes a client's answer to a contact account's caps
// request (to, that account's bare JID): a verified ver joins the cache,
// and the account's last items the client wants are sent to it.
func (s *Server) contactCapsResult(ctx context.Context, sess *Session, to string, el *Element) {
	res, qnode, i, ok := capsAnswer(el)
	if !ok {
		return
	}
	ver := qnode[i+1:]
	key := contactCapsKey(to, sess.jidStr, ver)
	cc := &s.caps
	cc.mu.Lock()
	node, ok := cc.contacts[key]
	if ok && node == qnode[:i] {
		delete(cc.contacts, key)
	}
	cc.mu.Unlock()
	if !ok || node != qnode[:i] {
		return
	}
	var features []string
	for _, f := range res.Children {
		if f.Name.Space == NSDiscoInfo && f.Name.Local == "feature" {
			features = append(features, f.AttrValue("var"))
		}
	}
	if capsVer(res) == ver {
		cc.mu.Lock()
		if cc.known == nil {
			cc.known = map[string][]string{}
		}
		if len(cc.known) < MaxCapsEntries {
			cc.known[ver] = features
		}
		cc.mu.Unlock()
	}
	p := s.pepService()
	notify := map[string]bool{}
	for _, f := range features {
		if n, ok := strings.CutSuffix(f, "+notify"); ok && n != "" {
			notify[n] = true
		}
	}
	if p == nil || len(notify) == 0 {
		return
	}
	if err := p.SendLastItems(ctx, to, sess.jidStr, func(node string) bool { return notify[node] }); err != nil {
		sess.logger().Warn("pep last items", "err", err)
	}
}

// sendCapsQuery sends the caps request capsPresence prepared, right
// before the presence is broadcast (clients see it ahead of their own
// presence, as from other servers).
func (s *Server) sendCapsQuery(sess *Session) {
	if iq := sess.capsIQ; iq != nil {
		sess.capsIQ = nil
		sess.deliver(iq)
	}
}

// capsAnswer takes apart a client's answer to a caps request: the
// disco#info result, its node ("node#ver") and where the '#' is.
func capsAnswer(el *Element) (res *Element, qnode string, hash int, ok bool) {
	res = el.Child(NSDiscoInfo, "query")
	if el.AttrValue("type") != "result" || res == nil {
		return nil, "", 0, false
	}
	qnode = res.AttrValue("node")
	hash = strings.LastIndexByte(qnode, '#')
	return res, qnode, hash, hash >= 0
}

// capsResult takes a client's answer to the server's caps request (an IQ
// result to the user's bare JID with the asked node).
func (s *Server) capsResult(ctx context.Context, sess *Session, el *Element) {
	res, qnode, i, ok := capsAnswer(el)
	if !ok {
		return
	}
	ver := qnode[i+1:]
	cc := &s.caps
	cc.mu.Lock()
	q := cc.pending[ver]
	asked := false
	if q != nil && q.node == qnode[:i] {
		for _, w := range q.waiting {
			asked = asked || w == sess
		}
	}
	if !asked {
		cc.mu.Unlock()
		return
	}
	delete(cc.pending, ver)
	cc.mu.Unlock()
	var features []string
	for _, f := range res.Children {
		if f.Name.Space == NSDiscoInfo && f.Name.Local == "feature" {
			features = append(features, f.AttrValue("var"))
		}
	}
	waiting := q.waiting
	if capsVer(res) == ver {
		// A verified ver is shared by every client that sends it.
		cc.mu.Lock()
		if len(cc.known) >= MaxCapsEntries {
			for k := range cc.known {
				delete(cc.known, k)
				break
			}
		}
		if cc.known == nil {
			cc.known = map[string][]string{}
		}
		cc.known[ver] = features
		cc.mu.Unlock()
	} else {
		// An unverifiable answer serves the asking session only.
		waiting = []*Session{sess}
	}
	for _, w := range waiting {
		if v := w.capsVer.Load(); v != nil && *v == ver && w.available.Load() {
			s.sendLastItems(ctx, w, features)
		}
	}
}

// sendLastItems sends sess the last items of the user's own nodes and of
// online contacts' nodes that the client asked to be notified of.
func (s *Server) sendLastItems(ctx context.Context, sess *Session, features []string) {
	p := s.pepService()
	if p == nil {
		return
	}
	notify := map[string]bool{}
	for _, f := range features {
		if n, ok := strings.CutSuffix(f, "+notify"); ok && n != "" {
			notify[n] = true
		}
	}
	if len(notify) == 0 {
		return
	}
	wants := func(node string) bool { return notify[node] }
	if err := p.SendLastItems(ctx, sess.bareStr, sess.jidStr, wants); err != nil {
		sess.logger().Warn("pep last items", "err", err)
	}
	items, err := s.dir.Roster(ctx, sess.userID)
	if err != nil {
		sess.logger().Warn("pep last items: roster", "err", err)
		return
	}
	for _, it := range items {
		if it.ContactID == 0 || it.ContactID == sess.userID || !s.anyAvailable(it.ContactID) {
			continue
		}
		if it.Subscription != "to" && it.Subscription != "both" {
			continue // not subscribed to the contact's presence
		}
		if err := p.SendLastItems(ctx, it.JID, sess.jidStr, wants); err != nil {
			sess.logger().Warn("pep last items", "err", err)
		}
	}
}

// capsVer computes the XEP-0115 §5.1 SHA-1 verification string of a
// disco#info result.
func capsVer(q *Element) string {
	var ids, feats []string
	type form struct {
		typ    string
		fields []string
	}
	var forms []form
	for _, c := range q.Children {
		switch {
		case c.Name.Space == NSDiscoInfo && c.Name.Local == "identity":
			lang := ""
			for _, a := range c.Attr {
				if a.Name.Local == "lang" && a.Name.Space != "" {
					lang = a.Value
				}
			}
			ids = append(ids, c.AttrValue("category")+"/"+c.AttrValue("type")+"/"+lang+"/"+c.AttrValue("name"))
		case c.Name.Space == NSDiscoInfo && c.Name.Local == "feature":
			feats = append(feats, c.AttrValue("var"))
		case c.Name.Space == "jabber:x:data" && c.Name.Local == "x":
			var f form
			for _, fl := range c.Children {
				if fl.Name.Local != "field" {
					continue
				}
				var vals []string
				for _, v := range fl.Children {
					if v.Name.Local == "value" {
						vals = append(vals, v.Text)
					}
				}
				if fl.AttrValue("var") == "FORM_TYPE" {
					if len(vals) > 0 {
						f.typ = vals[0]
					}
					continue
				}
				sort.Strings(vals)
				f.fields = append(f.fields, fl.AttrValue("var")+"<"+strings.Join(vals, "<"))
			}
			sort.Strings(f.fields)
			forms = append(forms, f)
		}
	}
	sort.Strings(ids)
	sort.Strings(feats)
	sort.Slice(forms, func(i, j int) bool { return forms[i].typ < forms[j].typ })
	var b strings.Builder
	for _, s := range ids {
		b.WriteString(s + "<")
	}
	for _, s := range feats {
		b.WriteString(s + "<")
	}
	for _, f := range forms {
		b.WriteString(f.typ + "<")
		for _, fl := range f.fields {
			b.WriteString(fl + "<")
		}
	}
	sum := sha1.Sum([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(sum[:])
}
